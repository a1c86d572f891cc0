"""The per-task routing view: task groups × models, λ controls, candidate toggle and diff.

Re-routing is the review service's `route` on the snapshot (the routing policy's argmax over
stored predictions), so λ and pool changes update the table on the UI thread without touching
the network or torch.
"""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Checkbox, DataTable, Input, Label, Select, Static

from lrcal.tui import fmt
from lrcal.services.review import RoutingDiff, RoutingSnapshot, RoutingTable
from lrcal.tui.widgets import Notice, theme_colors

TASK_COLUMN = "__task__"
TOTAL_ROW = "__all__"
CELL_WIDTH = 22  # "100% .94/.88±.09 118ms"


def lambda_ladder() -> tuple[float, ...]:
    """The λ steps of the keys: the validation's frontier grid (the same trade-offs it measured)."""
    from lrcal.gate.frontier import LAMBDA_GRID

    return tuple(sorted(set(LAMBDA_GRID)))


def step_lambda(value: float, direction: int) -> float:
    ladder = lambda_ladder()
    if direction > 0:
        return next((v for v in ladder if v > value + 1e-12), ladder[-1])
    return next((v for v in reversed(ladder) if v < value - 1e-12), ladder[0])


# The CLI's bound on every λ (`lrcal policy set`, `lrcal tui`, `lrcal route`: `max=1000.0` in their
# typer options, which this package cannot import without typer); tests check they agree.
LAMBDA_MAX = 1000.0


def lambda_problem(text: str) -> str | None:
    """Why ``text`` is not a λ, to follow "λ cost " (None: it is one)."""
    shown = text.strip()
    try:
        value = float(text)
    except ValueError:
        return f"must be a number from 0 to {LAMBDA_MAX:g}" + (f", not {shown!r}" if shown else "")
    if not math.isfinite(value):
        return f"must be a finite number from 0 to {LAMBDA_MAX:g}, not {shown}"
    if not 0 <= value <= LAMBDA_MAX:
        return f"must be from 0 to {LAMBDA_MAX:g}, not {shown}"
    return None


def parse_lambda(text: str) -> float | None:
    """The λ typed in a box, or None when it is not one (`lambda_problem` says why)."""
    return None if lambda_problem(text) is not None else float(text)


class LambdaInput(Input):
    """A λ box: takes a number, and lets every other key through to the bindings (q quits,
    [ ] , step λ) instead of swallowing it as text."""

    NUMBER_CHARACTERS = frozenset("0123456789.eE+-")

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character is not None and character in self.NUMBER_CHARACTERS

    async def _on_key(self, event) -> None:
        # Textual calls each class's handler along the MRO; prevent_default skips Input's, which
        # would swallow the key. The event then bubbles on to the bindings.
        if event.is_printable and event.character not in self.NUMBER_CHARACTERS:
            event.prevent_default()


class RoutingPane(Vertical):
    """Main view. The app hands it a snapshot; everything else happens here."""

    BINDINGS = [
        Binding("left_square_bracket", "lambda_cost(-1)", "λcost−", key_display="["),
        Binding("right_square_bracket", "lambda_cost(1)", "λcost+", key_display="]"),
        Binding("comma", "lambda_latency(-1)", "λlat−", key_display=","),
        Binding("full_stop", "lambda_latency(1)", "λlat+", key_display="."),
        Binding("0", "reset_lambdas", "both λ to 0", show=False),
        Binding("t", "toggle_candidate", "in/out"),
        Binding("n", "next_candidate", "next cand.", show=False),
        Binding("d", "detail", "model", show=False),
        Binding("escape", "focus_table", "back to the table", show=False),
    ]

    class OpenExamples(Message):
        def __init__(self, task: str | None, model: str | None, routed: RoutingTable) -> None:
            super().__init__()
            self.task, self.model, self.routed = task, model, routed

    class OpenModel(Message):
        def __init__(self, model: str) -> None:
            super().__init__()
            self.model = model

    class CandidateChanged(Message):
        def __init__(self, model: str | None) -> None:
            super().__init__()
            self.model = model

    def __init__(self, *, lambda_cost: float = 0.0, lambda_latency: float = 0.0, id: str | None = None) -> None:
        super().__init__(id=id)
        self.snap: RoutingSnapshot | None = None
        self.routed: RoutingTable | None = None
        self.diff: RoutingDiff | None = None
        self.lambda_cost = lambda_cost
        self.lambda_latency = lambda_latency
        self.candidate: str | None = None
        self.with_candidate = False
        self.column_models: list[str] = []  # the table's model columns, in order (the candidate's first)
        self.reroutes = 0  # how many times the table was re-routed (coalescing is tested)
        self._syncing = False
        self._reroute_pending = False

    # ---- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="routing-controls"):
            yield Label("λ cost", classes="control-label")
            yield LambdaInput(fmt.lam(self.lambda_cost), id="lambda-cost", compact=True, type="number",
                        tooltip="λ_cost: quality given up per unit of pool-normalized expected cost ([ / ])")  # fmt: skip
            yield Label("λ latency", classes="control-label")
            yield LambdaInput(fmt.lam(self.lambda_latency), id="lambda-latency", compact=True, type="number",
                        tooltip="λ_latency: quality given up per unit of pool-normalized expected latency (, / .)")  # fmt: skip
            yield Label("cand.", classes="control-label")
            yield Select([], id="candidate", compact=True, allow_blank=True, prompt="(none)")
            yield Checkbox("include", id="include", compact=True)
        yield Static(id="lambda-problem", markup=False)  # shown while a λ box holds no valid λ
        yield Static(id="routing-info")
        yield Notice("Loading the routing snapshot…", id="routing-message")
        yield DataTable(id="routing-table", cursor_type="cell", zebra_stripes=True, header_height=2)
        yield Static(id="routing-summary")
        yield Static(id="routing-diff")

    def on_mount(self) -> None:
        # Cell colours come from the theme: redraw when the user switches themes.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.refresh_routing())

    # ---- data in ------------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#routing-message", Notice)
        message.update(text)
        message.set_class(error, "-error")
        message.display = True
        self.query_one("#routing-table").display = not error

    def set_snapshot(self, snap: RoutingSnapshot) -> None:
        """A new snapshot (first load, or after enable/disable): keep λ and the candidate if possible."""
        previous = self.candidate
        self.snap = snap
        self._syncing = True
        try:
            select = self.query_one("#candidate", Select)
            select.set_options([(Text(name), name) for name in snap.candidates])  # Text: names are not markup
            candidate = previous if previous in snap.candidates else snap.default_candidate
            self._set_candidate(candidate)
            if candidate is not None:
                select.value = candidate
            else:
                select.clear()
            select.disabled = not snap.candidates
        finally:
            self._syncing = False
        self.query_one("#routing-message").display = False
        table = self.query_one("#routing-table", DataTable)
        table.display = True
        self.refresh_routing()

    def _set_candidate(self, name: str | None) -> None:
        if name != self.candidate:
            self.post_message(self.CandidateChanged(name))
        self.candidate = name
        self.with_candidate = bool(self.snap and name and name in self.snap.default_included)
        checkbox = self.query_one("#include", Checkbox)
        previous, self._syncing = self._syncing, True
        try:
            checkbox.value = self.with_candidate
            checkbox.disabled = name is None
        finally:
            self._syncing = previous

    # ---- pools -------------------------------------------------------------------------------
    def base_pool(self) -> frozenset[str]:
        assert self.snap is not None
        return self.snap.default_included - ({self.candidate} if self.candidate else set())

    def included(self) -> frozenset[str]:
        base = self.base_pool()
        return base | {self.candidate} if (self.candidate and self.with_candidate) else base

    # ---- routing -----------------------------------------------------------------------------
    def schedule_reroute(self) -> None:
        """Re-route once after the keys already queued are handled: six quick presses of ] move λ
        six steps (each reads the λ the previous one set) and re-route the table once or twice."""
        if not self._reroute_pending:
            self._reroute_pending = True
            self.call_after_refresh(self._run_reroute)

    def _run_reroute(self) -> None:
        self._reroute_pending = False
        self.refresh_routing()

    def refresh_routing(self) -> None:
        if self.snap is None:
            return
        self.reroutes += 1
        snap = self.snap
        if self.candidate:
            self.diff = self.app.service.diff(snap, self.base_pool() | {self.candidate}, self.base_pool(),
                                              self.lambda_cost, self.lambda_latency)  # fmt: skip
            # The table is what the gateway would do with the pool shown: the diff's "with" side
            # (normalized over that same pool), or without the candidate the enabled pool alone.
            # The diff's "without" side normalizes cost and latency over the pool with the
            # candidate (as live validation compares), so merely picking an expensive candidate
            # moved enabled models' traffic at λ > 0 when the table showed that side.
            self.routed = (self.diff.after if self.with_candidate else
                           self.app.service.route(snap, self.lambda_cost, self.lambda_latency, self.included()))
        else:
            self.diff = None
            self.routed = self.app.service.route(snap, self.lambda_cost, self.lambda_latency, self.included())
        self._render_table()
        self._render_info()
        self._render_summary()
        self._render_diff()

    def _render_info(self) -> None:
        snap = self.snap
        what = "last validation" if snap.source == "validation" else "calibration"
        info = Text.assemble(
            (f"{len(snap.examples)} queries", "bold"),
            f" · {snap.set_name} ({what}) · router {snap.router_version} · cell: ",
            ("share", "bold"),
            " quality predicted/measured±90% CI, p50 · enter: examples · ?: keys",
        )
        if snap.pool_note:  # no model is enabled: this routing is hypothetical, not live traffic
            info.append("\n")
            info.append(f"⚠ {snap.pool_note}", style="bold")
        self.query_one("#routing-info", Static).update(info)

    def _render_table(self) -> None:
        table = self.query_one("#routing-table", DataTable)
        snap, routed = self.snap, self.routed
        colors = theme_colors(self.app)
        cursor = table.cursor_coordinate
        table.clear(columns=True)
        # The task column and the candidate's are pinned; the other models scroll sideways.
        pinned = [self.candidate] if self.candidate in snap.models else []
        self.column_models = pinned + [m for m in snap.models if m not in pinned]
        table.add_column(Text("task\ngroup (n)", style="bold"), key=TASK_COLUMN, width=13)
        for name in self.column_models:
            on = name in routed.included
            status = snap.statuses.get(name, "")
            role = "cand. " if name in pinned else ""
            state = f"● {role}{status}" if on else f"○ off · {role}{status}"  # ≤ CELL_WIDTH
            label = Text.assemble((name, "bold" if on else "dim"), "\n", (state, "" if on else "dim"))
            table.add_column(label, key=name, width=max(CELL_WIDTH, len(name)))
        for task in routed.tasks:
            cells = [Text(f"{task} ({routed.group_sizes[task]})", style="bold")]
            for name in self.column_models:
                cells.append(self._cell_text(routed, task, name, colors))
            table.add_row(*cells, key=task)
        totals = [Text(f"all ({len(snap.examples)})", style="bold italic")]
        for name in self.column_models:
            cell = routed.totals[name]
            totals.append(self._format_cell(cell, name in routed.included, False, colors))
        table.add_row(*totals, key=TOTAL_ROW)
        table.fixed_columns = 1 + len(pinned)
        if table.row_count:  # keep the cursor; start on the first model's cell, not on the labels
            table.move_cursor(row=min(cursor.row, table.row_count - 1),
                              column=min(max(cursor.column, 1), len(table.columns) - 1), animate=False)  # fmt: skip

    def _cell_text(self, routed: RoutingTable, task: str, name: str, colors: dict) -> Text:
        return self._format_cell(routed.cell(task, name), name in routed.included, routed.winners.get(task) == name, colors)

    @staticmethod
    def _format_cell(cell, included: bool, winner: bool, colors: dict) -> Text:
        if not included:
            return Text("off", style="dim")
        if cell.n == 0:
            return Text("  ·", style="dim")
        share = f"{cell.share * 100:3.0f}%"
        text = Text(share, style=f"bold {colors['winner']}" if winner else "bold")
        text.append(f" {fmt.quality(cell.predicted)}/{fmt.quality(cell.measured)}")
        text.append(fmt.plus_minus(cell.measured_low, cell.measured_high), style="dim")
        text.append(f" {fmt.ms_cell(cell.latency_ms_p50)}", style="dim")
        return text

    def _render_summary(self) -> None:
        routed = self.routed
        text = Text.assemble(
            ("Routed: ", "bold"),
            f"quality predicted {fmt.quality(routed.quality_predicted)} / measured {fmt.quality(routed.quality_measured)}",
            f" · expected cost {fmt.usd(routed.expected_cost_mean)}/query",
            f" · p50 {fmt.ms(routed.latency_ms_p50)}",
        )
        self.query_one("#routing-summary", Static).update(text)

    def _render_diff(self) -> None:
        widget = self.query_one("#routing-diff", Static)
        d, cand = self.diff, self.candidate
        if d is None or cand is None:
            widget.update(Text("No candidate to compare: every model with a token is in the pool.", style="dim"))
            return
        state = "included" if self.with_candidate else "excluded"
        b, a = d.before, d.after
        head = Text.assemble(
            ("Δ ", "bold"),
            (f"Including {cand}", "bold"),
            f" ({state} now, t toggles) ",
        )
        if not d.moved:
            head.append(f"changes no routing decision at these λ: it wins none of the {d.n} queries.")
            widget.update(head)
            return
        head.append(
            f"moves {d.moved} of {d.n} queries ({d.moved / d.n:.0%}); quality predicted "
            f"{fmt.quality(b.quality_predicted)}→{fmt.quality(a.quality_predicted)}, measured "
            f"{fmt.quality(b.quality_measured)}→{fmt.quality(a.quality_measured)}; expected cost "
            f"{fmt.usd(b.expected_cost_mean)}→{fmt.usd(a.expected_cost_mean)}"
        )
        table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, header_style="bold dim", expand=False)
        table.add_column("task")
        table.add_column("loses", no_wrap=True)
        table.add_column("→ to", no_wrap=True)
        table.add_column("queries", justify="right")
        table.add_column("pred.", justify="right")
        table.add_column("meas.", justify="right")
        for move in d.moves:
            table.add_row(  # Text cells: a str cell is read as markup (a task group `t[/x]` crashed it)
                Text(move.task),
                Text(move.from_model or "(none)"),
                Text("→ " + (move.to_model or "(none)")),
                f"{move.n} ({move.share_of_group:.0%})",
                f"{fmt.quality(move.predicted_before)}→{fmt.quality(move.predicted_after)}",
                f"{fmt.quality(move.measured_before)}→{fmt.quality(move.measured_after)}",
            )
        from rich.console import Group

        widget.update(Group(head, table))

    # ---- actions -----------------------------------------------------------------------------
    def _set_lambda(self, which: str, value: float) -> None:
        """Take the new λ at once (the next key steps from it), show it, and re-route once the
        keys already queued are handled."""
        setattr(self, which, value)
        box = self.query_one("#lambda-cost" if which == "lambda_cost" else "#lambda-latency", Input)
        box.value = fmt.lam(value)  # its Changed event finds λ already equal: no second re-route
        box.remove_class("-invalid")
        self._show_lambda_problems()
        self.schedule_reroute()

    def action_lambda_cost(self, direction: int) -> None:
        self._set_lambda("lambda_cost", step_lambda(self.lambda_cost, direction))

    def action_lambda_latency(self, direction: int) -> None:
        self._set_lambda("lambda_latency", step_lambda(self.lambda_latency, direction))

    def action_reset_lambdas(self) -> None:
        self._set_lambda("lambda_cost", 0.0)
        self._set_lambda("lambda_latency", 0.0)

    def action_toggle_candidate(self) -> None:
        if self.candidate is None:
            self.notify("No candidate to toggle: every model with a token is already routed.", severity="warning",
                        markup=False)
            return
        self.query_one("#include", Checkbox).toggle()  # Checkbox.Changed re-routes

    def action_next_candidate(self) -> None:
        if not self.snap or not self.snap.candidates:
            return
        names = self.snap.candidates
        i = names.index(self.candidate) if self.candidate in names else -1
        self.query_one("#candidate", Select).value = names[(i + 1) % len(names)]

    def action_focus_table(self) -> None:
        self.query_one("#routing-table").focus()

    def action_detail(self) -> None:
        table = self.query_one("#routing-table", DataTable)
        if self.snap is None or not table.row_count:
            return
        column = table.cursor_coordinate.column
        if column == 0:
            self.notify("Move to a model's column to open it.", severity="information", markup=False)
            return
        self.post_message(self.OpenModel(self.column_models[column - 1]))

    # ---- events ------------------------------------------------------------------------------
    @on(Input.Changed, "#lambda-cost")
    def _lambda_cost_changed(self, event: Input.Changed) -> None:
        self._typed_lambda("lambda_cost", event.input)

    @on(Input.Changed, "#lambda-latency")
    def _lambda_latency_changed(self, event: Input.Changed) -> None:
        self._typed_lambda("lambda_latency", event.input)

    def _typed_lambda(self, which: str, box: Input) -> None:
        # The box's text now, not the event's: after quick ] presses, older Changed events still
        # carry the values the keys stepped through.
        value = parse_lambda(box.value)
        box.set_class(value is None, "-invalid")
        self._show_lambda_problems()
        if value is not None and value != getattr(self, which):
            setattr(self, which, value)
            self.schedule_reroute()

    def _show_lambda_problems(self) -> None:
        """Say what is wrong with a typed λ (routing keeps the last valid one meanwhile)."""
        problems = []
        for which, label in (("lambda_cost", "λ cost"), ("lambda_latency", "λ latency")):
            box = self.query_one("#lambda-cost" if which == "lambda_cost" else "#lambda-latency", Input)
            problem = lambda_problem(box.value)
            if problem:
                problems.append(f"{label} {problem}; routing keeps {label} = {fmt.lam(getattr(self, which))}.")
        widget = self.query_one("#lambda-problem", Static)
        widget.update(" ".join(problems))
        widget.display = bool(problems)

    @on(Input.Submitted)
    def _input_submitted(self) -> None:
        self.query_one("#routing-table").focus()

    @on(Checkbox.Changed, "#include")
    def _include_changed(self, event: Checkbox.Changed) -> None:
        # The echo of set_snapshot's own change arrives after it: no second re-route for it.
        if self._syncing or self.candidate is None or event.value == self.with_candidate:
            return
        self.with_candidate = event.value
        self.refresh_routing()

    @on(Select.Changed, "#candidate")
    def _candidate_changed(self, event: Select.Changed) -> None:
        if self._syncing or self.snap is None:
            return
        value = event.value if isinstance(event.value, str) else None
        if value == self.candidate:
            return
        self._set_candidate(value)
        self.refresh_routing()

    @on(DataTable.CellSelected, "#routing-table")
    def _cell_selected(self, event: DataTable.CellSelected) -> None:
        if self.snap is None or self.routed is None:
            return
        task = event.cell_key.row_key.value
        column = event.cell_key.column_key.value
        model = None if column == TASK_COLUMN else column
        if task == TOTAL_ROW:  # every group's queries (the examples screen filters by group)
            task = None
        self.post_message(self.OpenExamples(task, model, self.routed))
