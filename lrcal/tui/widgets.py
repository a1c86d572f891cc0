"""Small shared widgets: confirmation dialog, empty/loading messages, theme colours.

Text from the store, the user or a file (model and set names, paths, error messages) is shown
literally everywhere in the TUI: `markup=False` on widgets and notifications, `rich.text.Text`
in tables. As markup, a set named `logs [/x]` crashed the app and a reason `[WIP] canary`
lost its first word.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


def dialog_css(screen: str, box: str, width: int, border: str = "$primary", max_width: str = "95%") -> str:
    """The CSS of a centred dialog: ``screen``'s ``box`` container, bordered, on the surface colour."""
    return f"""
    {screen} {{ align: center middle; }}
    {screen} > {box} {{
        width: {width};
        max-width: {max_width};
        height: auto;
        max-height: 100%;
        padding: 1 2;
        border: thick {border} 80%;
        background: $surface;
    }}
    """


class ConfirmScreen(ModalScreen[bool]):
    """Yes / no before anything that changes the store (y / n / escape)."""

    # A Vertical, not a Grid: the grid's auto row gave the message one line, so a longer
    # question lost its end ("… stops sending it" without "traffic.").
    DEFAULT_CSS = dialog_css("ConfirmScreen", "Vertical", 64) + """
    ConfirmScreen #confirm-message { width: 100%; height: auto; margin-bottom: 1; }
    ConfirmScreen Horizontal { height: 3; align-horizontal: right; }
    ConfirmScreen Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n", "answer(False)", "no"),
        Binding("escape", "answer(False)", "cancel", show=False),
    ]

    def __init__(self, message: str, confirm_label: str = "Yes", *, warning: bool = False) -> None:
        super().__init__()
        self.message = message
        self.confirm_label = confirm_label
        self.warning = warning

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.message, id="confirm-message", markup=False)
            with Horizontal():
                yield Button(self.confirm_label, variant="error" if self.warning else "primary", id="confirm-yes")
                yield Button("Cancel", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ReasonScreen(ModalScreen[str | None]):
    """A forced change: says what it means and asks why; dismissed with the reason (stored in
    the audit log), or None when cancelled. The reason may not be empty."""

    DEFAULT_CSS = dialog_css("ReasonScreen", "Vertical", 68, border="$error") + """
    ReasonScreen #reason-message { width: 100%; height: auto; margin-bottom: 1; }
    ReasonScreen #reason-problem { color: $text-error; height: 1; }
    ReasonScreen Horizontal { height: 3; align-horizontal: right; }
    ReasonScreen Button { margin-left: 2; }
    """

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, message: str, confirm_label: str) -> None:
        super().__init__()
        self.message = message
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.message, id="reason-message", markup=False)
            yield Label("", id="reason-problem")
            yield Input(placeholder="reason (recorded in the audit log)", id="reason-input")
            with Horizontal():
                yield Button(self.confirm_label, variant="error", id="reason-yes")
                yield Button("Cancel", id="reason-no")

    def on_mount(self) -> None:
        self.query_one("#reason-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "reason-yes":
            self._confirm()
        else:
            self.dismiss(None)

    def _confirm(self) -> None:
        reason = " ".join(self.query_one("#reason-input", Input).value.split())
        if not reason:
            self.query_one("#reason-problem", Label).update("Say why: a forced change needs a reason.")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Notice(Static):
    """A centred explanatory message (empty states, errors, loading), shown literally: it
    carries paths, set names and error messages."""

    DEFAULT_CSS = """
    Notice {
        width: 100%;
        height: auto;
        padding: 1 2;
        color: $text-muted;
    }
    Notice.-error { color: $text-error; }
    """

    def __init__(self, content="", *, markup: bool = False, **kwargs) -> None:
        super().__init__(content, markup=markup, **kwargs)


def theme_colors(app) -> dict[str, str]:
    """The current theme's colours as rich colour strings, so table cells follow the theme."""
    theme = app.current_theme
    return {
        "winner": theme.success or "green",
        "accent": theme.accent or theme.primary or "magenta",
        "warning": theme.warning or "yellow",
        "error": theme.error or "red",
        "primary": theme.primary or "blue",
    }
