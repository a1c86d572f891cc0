"""`lrcal tui`: the Textual app. A thin layer over the review service it is handed
(`lrcal.services.review.ReviewService`, built by `lrcal tui`): every number comes from it, and
so does every change of state (the lifecycle's checks and audit log). The app never opens the
store.

Reads run in thread workers, each on its own session (SQLite connection), so the UI never
waits on the database or on the router (the snapshot's one forward pass, or its cache).
"""

from __future__ import annotations

import sqlite3
import threading
import time

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, TabbedContent, TabPane
from textual.worker import get_current_worker

from lrcal import lifecycle
from lrcal.errors import LrcalError
from lrcal.services.review import HomeState, ModelRow, ReviewService, RoutingSnapshot, ScatterPoint
from lrcal.tui.charts_view import ChartsPane
from lrcal.tui.detail_view import ModelDetailScreen
from lrcal.tui.examples_view import ExamplesScreen
from lrcal.tui.models_view import ModelsPane
from lrcal.tui.routing_view import RoutingPane
from lrcal.tui.help_view import HelpScreen
from lrcal.tui.widgets import ConfirmScreen, Notice, ReasonScreen

TABS = ("routing", "models", "charts")


class LrcalApp(App[None]):
    TITLE = "lrcal"
    CSS_PATH = "app.tcss"
    AUTO_FOCUS = "#routing-table"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "keys", key_display="?"),
        Binding("1", "show_tab('routing')", "routing view", show=False),
        Binding("2", "show_tab('models')", "models view", show=False),
        Binding("3", "show_tab('charts')", "charts view", show=False),
        Binding("ctrl+r", "reload", "reload from the store", show=False),
    ]

    def __init__(
        self,
        service: ReviewService,
        *,
        set_ref: str | None = None,
        lambda_cost: float = 0.0,
        lambda_latency: float = 0.0,
    ) -> None:
        super().__init__()
        self.service = service
        self.set_ref = set_ref
        self.initial_lambdas = (float(lambda_cost), float(lambda_latency))
        self.state: HomeState | None = None
        self.models: list[ModelRow] = []
        self.snapshot: RoutingSnapshot | None = None
        self.chart_data: tuple | None = None  # (label, points, frontiers, candidate) for the charts
        self.loaded = False  # True once the first load finished (tests and the tmux check wait on it)

    # ---- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Notice("", id="empty-state")
        with TabbedContent(initial="routing", id="tabs"):
            with TabPane("1 Routing", id="routing"):
                yield RoutingPane(lambda_cost=self.initial_lambdas[0], lambda_latency=self.initial_lambdas[1],
                                  id="routing-pane")  # fmt: skip
            with TabPane("2 Models", id="models"):
                yield ModelsPane(id="models-pane")
            with TabPane("3 Charts", id="charts"):
                yield Notice("Loading the charts…", id="charts-message")  # the pane: _build_charts
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#empty-state").display = False
        self.load_all()

    # ---- loading (workers) -------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load")
    def load_all(self) -> None:
        """Routing first (the main view), then the models table, then the charts."""
        try:
            review = self.service.connect()
        except LrcalError as exc:  # not a database, or not readable
            self.call_from_thread(self._load_failed, str(exc))
            return
        try:
            state = review.home_state()
            if state.empty:
                self.call_from_thread(self._home_loaded, state)
                return
            snap, error = None, None
            try:
                snap = review.snapshot(self.set_ref)
            except LrcalError as exc:
                error = str(exc)
            # One hop to the UI thread (call_from_thread waits for it) for the main view.
            self.call_from_thread(self._snapshot_loaded, state, snap, error)
            # The other views wait until the routing table is on screen: loading them first held
            # its first paint back by ~0.3 s (measured on a busy 2-core machine; docs/tui.md).
            if not self._wait_for_paint():
                return
            self.call_from_thread(self._build_charts)
            rows = review.models_table()
            self.call_from_thread(self._models_loaded, rows)
            label, points = review.quality_latency_points(snap, rows)
            frontiers = review.validation_frontiers()
            self.call_from_thread(self._charts_loaded, label, points, frontiers)
        except (LrcalError, sqlite3.Error) as exc:  # a locked or damaged database: say so, do not crash
            self.call_from_thread(self._load_failed, f"{type(exc).__name__}: {exc}" if isinstance(exc, sqlite3.Error)
                                  else str(exc))  # fmt: skip
        finally:
            review.close()

    def _wait_for_paint(self, limit_s: float = 2.0) -> bool:
        """In the loader: wait (at most ``limit_s``) for the screen's next refresh; False if the
        app is closing (its workers are cancelled) meanwhile."""
        painted = threading.Event()
        self.call_from_thread(self.call_after_refresh, painted.set)
        worker = get_current_worker()
        deadline = time.monotonic() + limit_s
        while not painted.wait(0.02) and time.monotonic() < deadline:
            if worker.is_cancelled:
                return False
        return not worker.is_cancelled

    def _home_loaded(self, state: HomeState) -> None:
        self.state = state
        self.sub_title = f"{state.models} models · router {state.router_version or 'none'}"
        empty = self.query_one("#empty-state", Notice)
        if state.empty:
            empty.update(f"{state.next_step()}\n\nHome: {self.service.home}\n\nPress q to quit.")
            empty.display = True
            self.query_one("#tabs").display = False
            self.loaded = True
            return
        empty.display = False
        self.query_one("#tabs").display = True

    def _snapshot_loaded(self, state: HomeState, snap: RoutingSnapshot | None, error: str | None) -> None:
        self._home_loaded(state)
        pane = self.query_one(RoutingPane)
        self.snapshot = snap
        if snap is None:
            hint = self.state.next_step() if self.state else ""
            pane.show_message(f"{error}\n\n{hint}".strip(), error=True)
        else:
            pane.set_snapshot(snap)
        self._focus_tab(self.query_one(TabbedContent).active)

    def _models_loaded(self, rows: list[ModelRow]) -> None:
        self.models = rows
        self.query_one(ModelsPane).set_rows(rows)
        self._focus_tab(self.query_one(TabbedContent).active)

    def _charts_loaded(self, label: str, points: list[ScatterPoint], frontiers: dict[str, dict]) -> None:
        self.chart_data = (label, points, frontiers, self.query_one(RoutingPane).candidate)
        charts = self.query(ChartsPane)
        if charts:  # else it is built later (_build_charts) and picks chart_data up when mounted
            charts.first().set_data(*self.chart_data)
        self.loaded = True

    def _build_charts(self) -> None:
        """Mount the charts pane once (it imports textual-plotext): after the routing table's
        first paint, or as soon as the charts tab is opened if that comes first."""
        if self.query(ChartsPane):
            return
        self.query_one("#charts-message").display = False
        self.query_one("#charts", TabPane).mount(ChartsPane(id="charts-pane"))

    def _load_failed(self, message: str) -> None:
        self.query_one(RoutingPane).show_message(message, error=True)
        self.query_one(ModelsPane).show_message(message, error=True)
        self.query_one("#models-table").display = False
        self.loaded = True

    # ---- navigation --------------------------------------------------------------------------
    def action_show_tab(self, tab: str) -> None:
        if self.state is not None and self.state.empty:
            return
        self.query_one(TabbedContent).active = tab
        self._focus_tab(tab)

    def _focus_tab(self, tab: str) -> None:
        target = {"routing": "#routing-table", "models": "#models-table", "charts": "#charts-pane"}.get(tab)
        widgets = self.query(target) if target else []
        if widgets and widgets.first().display:  # the charts are built lazily
            widgets.first().focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "charts":
            self._build_charts()
        self._focus_tab(event.pane.id or "")

    def action_reload(self) -> None:
        self.load_all()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    @staticmethod
    def help_sections() -> list[tuple[str, list[Binding]]]:
        """Every view's bindings, for the `?` screen."""
        from lrcal.tui.charts_view import ChartsPane

        return [("Everywhere", LrcalApp.BINDINGS), ("Routing view", RoutingPane.BINDINGS),
                ("Models view", ModelsPane.BINDINGS), ("Charts", ChartsPane.BINDINGS),
                ("Model detail", ModelDetailScreen.BINDINGS), ("Examples", ExamplesScreen.BINDINGS),
                ("Confirmations", ConfirmScreen.BINDINGS)]  # fmt: skip

    def on_routing_pane_open_examples(self, message: RoutingPane.OpenExamples) -> None:
        if self.snapshot is not None:
            self.push_screen(ExamplesScreen(self.snapshot, message.routed, message.task, message.model))

    def on_routing_pane_candidate_changed(self, message: RoutingPane.CandidateChanged) -> None:
        if self.chart_data is not None:
            self.chart_data = (*self.chart_data[:3], message.model)
        charts = self.query(ChartsPane)
        if charts and charts.first().frontiers:
            charts.first().show_model(message.model)

    def on_routing_pane_open_model(self, message: RoutingPane.OpenModel) -> None:
        self.push_screen(ModelDetailScreen(message.model))

    def on_models_pane_open_model(self, message: ModelsPane.OpenModel) -> None:
        self.push_screen(ModelDetailScreen(message.model))

    # ---- enable / disable ----------------------------------------------------------------------
    def on_models_pane_change_status(self, message: ModelsPane.ChangeStatus) -> None:
        shown = next((r for r in self.models if r.name == message.model), None)
        if shown is None:
            return
        name = shown.name
        # The dialog is built from the store's row now, not the view's: another process may have
        # removed, enabled or disabled the model since the view was loaded.
        try:
            with self.service.connect() as review:
                state = review.model_state(name)
                stale = state is None or state[0] != shown.status
                needs_check = not stale and message.enable and state[0] != lifecycle.ENABLED
                problem = review.enable_problem(name) if needs_check and state[1] == "endpoint" else None
        except (LrcalError, sqlite3.Error) as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        if stale:
            self._stale_model(name, state)
            return
        status, source = state
        if message.enable:
            if status == lifecycle.ENABLED:
                self.notify(f"{name} is already enabled.", markup=False)
                return
            if source != "endpoint":
                self.notify(f"{name} was imported from outcome logs and has no endpoint to route to.", severity="error",
                            markup=False)  # fmt: skip
                return
            if problem is None:
                question, force, label = f"Enable {name}? The router will send it live traffic.", False, "Enable"
            else:
                why = (f"{name} is {status}: it has not passed live validation"
                       if not lifecycle.can_transition(status, lifecycle.ENABLED) else problem.split(";")[0])
                question = (f"{why}. Enable it anyway? "
                            "This is a forced change: it is recorded in the audit log with your reason.")  # fmt: skip

                def reasoned(reason: str | None) -> None:
                    if reason:
                        self.change_status(name, True, True, reason, expected_status=status)

                self.push_screen(ReasonScreen(question, "Force enable"), reasoned)
                return
        else:
            if status != lifecycle.ENABLED:
                self.notify(f"{name} is {status}, not enabled.", severity="warning", markup=False)
                return
            question, force, label = f"Disable {name}? The router stops sending it traffic.", False, "Disable"

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.change_status(name, message.enable, force, expected_status=status)

        self.push_screen(ConfirmScreen(question, label, warning=force or not message.enable), answered)

    @work(thread=True, exclusive=True, group="status")
    def change_status(self, name: str, enable: bool, force: bool, reason: str = "", *,
                      expected_status: str | None = None) -> None:  # fmt: skip
        """Enable or disable ``name``; ``expected_status``: its status when the dialog was opened
        (a change made elsewhere while the dialog was open is reported, and nothing is done)."""
        try:
            with self.service.connect() as review:
                if expected_status is not None:
                    current = review.model_state(name)
                    if current is None or current[0] != expected_status:
                        self.call_from_thread(self._stale_model, name, current)
                        return
                if enable:
                    row = review.enable(name, force=force, reason=reason or "enabled in lrcal tui")
                else:
                    row = review.disable(name, reason="disabled in lrcal tui")
        except (LrcalError, sqlite3.Error) as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        self.call_from_thread(self._status_changed, name, row["status"])

    def _stale_model(self, name: str, state: tuple[str, str] | None) -> None:
        """The model changed since the view was loaded: say so in one line and reload the views."""
        now = "was removed" if state is None else f"is {state[0]} now"
        self.notify(f"{name} {now} (changed since the view was loaded); nothing done, the views are reloaded.",
                    severity="warning", markup=False)  # fmt: skip
        self._reload_views()

    def _status_changed(self, name: str, status: str) -> None:
        self.notify(f"{name} is now {status}.", markup=False)
        self._reload_views()

    def _reload_views(self) -> None:
        self.load_all()
        if isinstance(self.screen, ModelDetailScreen):
            self.screen.load()
