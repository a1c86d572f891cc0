"""Model detail: per-task measured accuracy vs the predicted interval, latency histogram,
cost, errors by kind, last validation and its reasons, event history."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from lrcal.tui import fmt
from lrcal.services.review import TOKEN_TRAINED, ModelDetail
from lrcal.tui.models_view import ModelsPane, status_style, token_text
from lrcal.tui.widgets import Notice, theme_colors

BAR = "█"
EVENTS_SHOWN = 50


def histogram_text(bins: list[tuple[float, float, int]], width: int = 24) -> Text:
    if not bins:
        return Text("no successful calls", style="dim")
    top = max(count for _, _, count in bins) or 1
    text = Text()
    for i, (lo, hi, count) in enumerate(bins):
        if i:
            text.append("\n")
        text.append(f"{fmt.ms(lo):>6}–{fmt.ms(hi):<6} ", style="dim")
        text.append(BAR * max(1 if count else 0, round(width * count / top)))
        text.append(f" {count}", style="dim")
    return text


def adaptive_text(summary: dict):
    """The adaptive calibration: examples spent per task group and the posterior interval of the
    model's quality there against the incumbents' level, which settled (or not) the decision."""
    head = Text.assemble(
        ("Adaptive calibration: ", "bold"),
        f"{summary['used']} of {summary['budget']} examples, stopped: {summary['stop']}",
    )
    table = Table(box=None, padding=(0, 1))
    for label, justify in (("task", "left"), ("spent", "right"), ("quality [90% posterior]", "right"),
                           ("best incumbent", "right"), ("decision", "left")):
        table.add_column(label, justify=justify)
    for g in summary["groups"]:  # Text cells: a str cell is read as markup (a task group `t[/x]` crashed it)
        table.add_row(Text(g["group"]), str(g["n"]),
                      Text(f"{fmt.quality(g['mean'])} [{fmt.quality(g['low'])}–{fmt.quality(g['high'])}]"),
                      fmt.quality(g["incumbents"]), Text(g["verdict"]))
    return Group(head, table)


class ModelDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("e", "enable", "enable"),
        Binding("x", "disable", "disable"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.model_name = name
        self.detail: ModelDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body"):
            yield Notice(f"Loading {self.model_name}…", id="detail-message")
            yield Static(id="detail-head")
            yield Static(id="detail-validation")
            yield Static(Text("Per task: calibration accuracy vs the interval onboarding predicted · live = validation",
                              style="bold"), classes="section")  # fmt: skip
            yield DataTable(id="detail-tasks", cursor_type="row", zebra_stripes=True)
            yield Static(id="detail-adaptive")
            with Horizontal(id="detail-middle"):
                yield Static(id="detail-latency")
                yield Static(id="detail-errors")
            yield Static(Text("Event history (newest first)", style="bold"), classes="section")
            yield DataTable(id="detail-events", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = self.model_name
        # Read-only tables: keys scroll the page (arrows, page up/down) instead of moving a cursor.
        for table in self.query(DataTable):
            table.can_focus = False
        self.query_one("#detail-body").focus()
        tasks = self.query_one("#detail-tasks", DataTable)
        for label, width in (("task", 10), ("n", 4), ("measured", 8), ("predicted [90% interval]", 24), ("", 8),
                             ("live (n)", 10)):  # fmt: skip
            tasks.add_column(label, width=width)
        events = self.query_one("#detail-events", DataTable)
        for label, width in (("time (UTC)", 19), ("event", 14), ("message", 60)):
            events.add_column(label, width=width)
        self.load()

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        try:
            with self.app.service.connect() as review:
                detail = review.model_detail(self.model_name)
        except Exception as exc:  # an LrcalError (model removed) or a locked database
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self.show_detail, detail)

    def _failed(self, message: str) -> None:
        notice = self.query_one("#detail-message", Notice)
        notice.update(message)
        notice.add_class("-error")
        notice.display = True  # hidden once a detail was shown; a reload can fail (model removed)

    def show_detail(self, detail: ModelDetail) -> None:
        self.detail = detail
        colors = theme_colors(self.app)
        self.query_one("#detail-message").display = False
        row, cal = detail.row, detail.calibration
        head = Text.assemble(
            (detail.model["name"], "bold"),
            "  ",
            (row.status, status_style(row.status, colors)),
            f"  · {row.source}",
            f"  · ${fmt.price(row.price_in_per_mtok)} in / ${fmt.price(row.price_out_per_mtok)} out per Mtok",
            "  · token ",
            token_text(row, colors),
            "\n",
            ("Calibration: ", "bold"),
            f"{cal['n']} outcomes, accuracy {fmt.accuracy(cal['accuracy'])}, latency p50 {fmt.ms(cal['latency_ms_p50'])}"
            f" / p95 {fmt.ms(cal['latency_ms_p95'])}, cost {fmt.usd(cal['cost_usd_mean'])}/query, "
            f"{cal['errors']} errors",
        )
        self.query_one("#detail-head", Static).update(head)

        tasks = self.query_one("#detail-tasks", DataTable)
        tasks.clear()
        for t in detail.tasks:
            if t.predicted is None:
                interval = Text("learned with the router" if row.token == TOKEN_TRAINED else fmt.DASH, style="dim")
                verdict = Text("")
            else:
                interval = Text(f"{fmt.quality(t.predicted)} [{fmt.quality(t.low)}–{fmt.quality(t.high)}]")
                inside = t.inside
                verdict = Text("inside" if inside else "below", style=colors["winner"] if inside else colors["error"])
            live = f"{fmt.quality(t.live)} ({t.live_n})" if t.live is not None else fmt.DASH
            tasks.add_row(Text(t.task), str(t.n), fmt.quality(t.measured), interval, verdict, live)  # Text: not markup

        latency = Group(Text("Latency of successful calibration calls", style="bold"), histogram_text(detail.latency_bins))
        self.query_one("#detail-latency", Static).update(latency)
        errors = Table(box=None, show_header=False, padding=(0, 1))
        for kind, count in detail.errors.items():
            errors.add_row(Text(kind), str(count))
        self.query_one("#detail-errors", Static).update(
            Group(Text("Errors by kind", style="bold"), errors if detail.errors else Text("none", style="dim"))
        )
        self.query_one("#detail-validation", Static).update(self._validation_text(detail, colors))
        adaptive = self.query_one("#detail-adaptive", Static)
        adaptive.display = detail.adaptive is not None
        if detail.adaptive is not None:
            adaptive.update(adaptive_text(detail.adaptive))

        events = self.query_one("#detail-events", DataTable)
        events.clear()
        for event in detail.events[:EVENTS_SHOWN]:
            # Text: reasons are the user's words (`[WIP] canary` lost "[WIP]" as markup, `c[/x]` crashed)
            events.add_row(fmt.timestamp(event["ts"]), Text(event["kind"]), Text(event["message"] or ""))

    @staticmethod
    def _validation_text(detail: ModelDetail, colors: dict):
        v = detail.validation
        if v is None:
            return Group(Text("Validation", style="bold"), Text("not validated yet (`lrcal live-validate NAME`)", style="dim"))
        decision = v["decision"]
        head = Text.assemble(
            ("Validation: ", "bold"),
            (decision, f"bold {colors['winner'] if decision == 'validated' else colors['error']}"),
            f" on {v.get('set_name') or '?'} ({v['results'].get('n', '?')} queries, router {v.get('router_version')})",
        )
        policies = v["results"].get("policies", {})
        lines = [head]
        if "router_with" in policies and "router_without" in policies:
            w, wo = policies["router_with"], policies["router_without"]
            lines.append(
                Text(
                    f"with: quality {fmt.quality(w['quality'])}, p95 {fmt.ms(w['latency_ms_p95'])}, "
                    f"{fmt.usd(w['cost_usd_mean'])}/query · without: quality {fmt.quality(wo['quality'])}, "
                    f"p95 {fmt.ms(wo['latency_ms_p95'])}, {fmt.usd(wo['cost_usd_mean'])}/query",
                    style="dim",
                )
            )
        for reason in v["reasons"]:
            lines.append(Text("• " + reason))
        return Group(*lines)

    def action_enable(self) -> None:
        self.app.post_message(ModelsPane.ChangeStatus(self.model_name, True))

    def action_disable(self) -> None:
        self.app.post_message(ModelsPane.ChangeStatus(self.model_name, False))
