"""The Models view: every model with status, prices, calibration numbers, token state and
last validation; enable / disable (confirmed) and open a model."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from lrcal import lifecycle
from lrcal.tui import fmt
from lrcal.services.review import TOKEN_FITTED, TOKEN_NONE, TOKEN_STALE, TOKEN_TRAINED, ModelRow
from lrcal.tui.widgets import Notice, theme_colors

# (key, label): the model column is pinned, the others follow in order of importance and scroll
# sideways when the terminal is narrow; each is as wide as its widest cell.
COLUMNS = (
    ("name", "model"),
    ("status", "status"),
    ("token", "token"),
    ("validation", "decision"),
    ("accuracy", "cal. acc (n)"),
    ("latency", "p50/p95"),
    ("cost", "$/query"),
    ("price", "$/Mtok in/out"),
)


def status_style(status: str, colors: dict) -> str:
    return {
        lifecycle.ENABLED: f"bold {colors['winner']}",
        lifecycle.VALIDATED: colors["primary"],
        lifecycle.REJECTED: colors["error"],
        lifecycle.DISABLED: "dim",
        lifecycle.REGISTERED: "dim",
    }.get(status, "")


def token_text(row: ModelRow, colors: dict) -> Text:
    styles = {TOKEN_FITTED: colors["winner"], TOKEN_TRAINED: "", TOKEN_STALE: colors["warning"], TOKEN_NONE: "dim"}
    return Text(row.token, style=styles.get(row.token, ""))


class ModelsPane(Vertical):
    BINDINGS = [
        Binding("e", "enable", "enable"),
        Binding("x", "disable", "disable"),
        Binding("o", "open", "open", show=False),
    ]

    class OpenModel(Message):
        def __init__(self, model: str) -> None:
            super().__init__()
            self.model = model

    class ChangeStatus(Message):
        def __init__(self, model: str, enable: bool) -> None:
            super().__init__()
            self.model, self.enable = model, enable

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[ModelRow] = []

    def compose(self) -> ComposeResult:
        yield Notice("Loading models…", id="models-message")
        yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
        yield Static(
            Text.assemble(("enter", "bold"), " open · ", ("e", "bold"), "/", ("x", "bold"),
                          " enable/disable (asks first; recorded in the audit log) · decision: the last live "
                          "validation · token: trained = learned with the router, fitted = onboarded with it frozen", style="dim"),  # fmt: skip
            id="models-help",
        )

    def on_mount(self) -> None:
        table = self.query_one("#models-table", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.fixed_columns = 1
        table.display = False
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.rows and self.set_rows(self.rows))

    def show_message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#models-message", Notice)
        message.update(text)
        message.set_class(error, "-error")
        message.display = True

    def set_rows(self, rows: list[ModelRow]) -> None:
        self.rows = rows
        table = self.query_one("#models-table", DataTable)
        colors = theme_colors(self.app)
        cursor_name = self.current_name()
        table.clear()
        for row in rows:
            accuracy = fmt.accuracy(row.calibration_accuracy)
            if row.calibration_n:
                accuracy += f" ({row.calibration_n})"
            decision = row.validation_decision or fmt.DASH
            decision_style = colors["winner"] if decision == "validated" else colors["error"] if decision == "rejected" else "dim"
            table.add_row(
                Text(row.name, style="bold"),
                Text(row.status, style=status_style(row.status, colors)),
                token_text(row, colors),
                Text(decision, style=decision_style),
                accuracy,
                f"{fmt.ms_cell(row.latency_ms_p50)}/{fmt.ms_cell(row.latency_ms_p95)}",
                fmt.usd(row.cost_usd_mean),
                f"{fmt.price(row.price_in_per_mtok)}/{fmt.price(row.price_out_per_mtok)}",
                key=row.name,
            )
        self.query_one("#models-message").display = not rows
        if not rows:
            self.show_message("No models yet.")
        table.display = bool(rows)
        names = [r.name for r in rows]
        if cursor_name in names:
            table.move_cursor(row=names.index(cursor_name), animate=False)

    def current_name(self) -> str | None:
        table = self.query_one("#models-table", DataTable)
        if not table.row_count:
            return None
        row = table.cursor_coordinate.row
        return self.rows[row].name if row < len(self.rows) else None

    def action_open(self) -> None:
        name = self.current_name()
        if name:
            self.post_message(self.OpenModel(name))

    def action_enable(self) -> None:
        name = self.current_name()
        if name:
            self.post_message(self.ChangeStatus(name, True))

    def action_disable(self) -> None:
        name = self.current_name()
        if name:
            self.post_message(self.ChangeStatus(name, False))

    @on(DataTable.RowSelected, "#models-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.post_message(self.OpenModel(event.row_key.value))
