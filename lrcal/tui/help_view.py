"""The `?` screen: every key of every view, read from the views' own bindings (so it cannot
fall behind them), plus the table keys Textual provides."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from lrcal.tui.routing_view import LAMBDA_MAX
from lrcal.tui.widgets import dialog_css

# Keys that the views get from Textual's widgets rather than from their own bindings.
WIDGET_KEYS: dict[str, list[tuple[str, str]]] = {
    "Routing view": [("arrows, mouse", "move between cells"), ("enter", "examples of the cell (all row: every group)"),
                     ("type in the λ boxes",
                      f"any λ from 0 to {LAMBDA_MAX:g}; enter or escape returns to the table")],
    "Models view": [("arrows, mouse", "move between models"), ("enter", "open the model")],
    "Examples": [("up / down", "previous / next example")],
}


def key_rows(app, bindings: list[Binding]) -> list[tuple[str, str]]:
    """(key as shown, what it does) for each binding that has a description."""
    rows = []
    for binding in bindings:
        description = binding.tooltip or binding.description
        if description:
            rows.append((app.get_key_display(binding), description))
    return rows


def keys_table(title: str, rows: list[tuple[str, str]]) -> Group:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column(style="bold", no_wrap=True, width=20)
    table.add_column()
    for key, description in rows:  # Text: a key shown as "[" is not markup
        table.add_row(Text(key), Text(description))
    return Group(Text(title, style="bold underline"), table, Text(""))


class HelpScreen(ModalScreen[None]):
    """Every key, by view. ``sections``: (view name, its bindings), in the order shown."""

    DEFAULT_CSS = dialog_css("HelpScreen", "VerticalScroll", 76, max_width="100%") + """
    HelpScreen > VerticalScroll { padding: 0 2; }
    """
    BINDINGS = [
        Binding("escape", "dismiss", "close"),
        Binding("question_mark", "dismiss", "close", show=False),
        Binding("q", "dismiss", "close", show=False),
    ]

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        parts = [Text("Keys (escape or ? closes this)", style="bold"), Text("")]
        for title, bindings in self.sections:
            rows = key_rows(self.app, bindings) + WIDGET_KEYS.get(title, [])
            if rows:
                parts.append(keys_table(title, rows))
        with VerticalScroll():
            yield Static(Group(*parts), id="help-keys")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
