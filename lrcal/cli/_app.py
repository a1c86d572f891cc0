"""The root typer app, its error handling and helpers shared by command modules.

Command modules import only typer/rich at module level; heavy libraries
(torch, textual, numpy, pillow, httpx) are imported inside the commands so that
``lrcal --help`` stays instant (a test guards this).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click; its exception classes are the ones raised
    from typer import _click as click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on real click
    import click
    from click import exceptions as click_exceptions

from lrcal.errors import LrcalError


class LrcalGroup(TyperGroup):
    """Turns expected failures into a one-line ``Error: ...`` and an exit code.

    Wrapping ``invoke`` of the root group covers every sub-command, and works the
    same under ``CliRunner`` as from the shell. Its help placeholders are plain (`help_text`).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from lrcal.cli.help_text import plain_params

        plain_params(self, HELP_OPTION_NAMES)

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[override]
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_exceptions.NoArgsIsHelpError:
            raise
        except click_exceptions.UsageError as exc:  # bad root-level option
            _print_usage_error(exc)
            raise typer.Exit(exc.exit_code) from None

    def invoke(self, ctx) -> Any:
        try:
            return super().invoke(ctx)
        except LrcalError as exc:
            _print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except click_exceptions.NoArgsIsHelpError:
            raise
        except click_exceptions.UsageError as exc:
            _print_usage_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except click_exceptions.ClickException as exc:
            _print_error(exc.format_message())
            raise typer.Exit(exc.exit_code) from None


def _print_usage_error(exc) -> None:
    # One line instead of typer's multi-line rich panel.
    path = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "lrcal"
    message = exc.format_message()
    if _not_finite_input(exc):
        # a range check fails on NaN whatever the bound, so pydantic named the wrong bound
        message = f"Invalid value for {_option_name(exc)}: must be a finite number"
    _print_error(f"{message} (see '{path} --help')")


def _not_finite_input(exc) -> bool:
    import math

    errors = getattr(exc.__cause__, "errors", None)
    if not callable(errors):
        return False
    for error in errors():
        try:
            if not math.isfinite(float(error.get("input"))):
                return True
        except (TypeError, ValueError):
            continue
    return False


def _option_name(exc) -> str:
    param = getattr(exc, "param", None)
    names = [name for name in (getattr(param, "opts", None) or []) if name.startswith("--")]
    return f"'{names[0]}'" if names else "a number"


def _print_error(message: str) -> None:
    typer.echo(f"Error: {one_line(message)}", err=True)


def one_line(message: object) -> str:
    """``message`` on one line without control characters: an endpoint's error text must not be
    able to move the cursor, retitle the terminal or fake a second line."""
    text = "".join(ch if ch.isprintable() or ch.isspace() else " " for ch in str(message))
    return " ".join(text.split())


HELP_OPTION_NAMES = ["-h", "--help"]

app = typer.Typer(
    cls=LrcalGroup,
    name="lrcal",
    help="Onboard new multimodal models into a learned router: calibrate, fit, validate, review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # never print locals (they may hold secrets)
    context_settings={"help_option_names": HELP_OPTION_NAMES},
)


# Commands that may start a new home; every other command needs an existing one (a typo in
# --home must not silently create an empty home and report "No models yet").
# An existing empty directory is a new home for every command.
CREATES_HOME = frozenset({"add-model", "import-outcomes", "sets import", "demo", "router train"})
# Read-only views of the built-in sets: without a home they show an empty one (nothing is created).
WORKS_WITHOUT_HOME = frozenset({"sets list", "sets show"})


@dataclass
class CliState:
    """Per-invocation state: the resolved home and a lazily opened store."""

    home: Path
    command: str = ""  # the invoked command, e.g. 'sets import' (set by `state`)
    _store: Any = field(default=None, repr=False)

    def store(self):
        if self._store is None:
            from lrcal.home import db_path
            from lrcal.store import Store

            command = self.command
            if not db_path(self.home).exists() and command not in CREATES_HOME and not _is_empty_dir(self.home):
                if command in WORKS_WITHOUT_HOME:
                    self._store = Store.empty()  # the built-in sets, seen without creating a home
                    return self._store
                self.require_home()
            self._store = Store.open(self.home)
            problem = self._store.integrity_problem()
            if problem:
                typer.echo(
                    f"warning: {db_path(self.home)} fails SQLite's integrity check ({one_line(problem)}); "
                    "back it up and recover it (`sqlite3 lrcal.db .recover`) before writing more to it",
                    err=True,
                )
        return self._store

    def require_home(self, *, empty_dir_ok: bool = False) -> None:
        """Refuse with one line unless the home holds a database (or is an empty directory)."""
        from lrcal.home import db_path, missing_home_message

        if not db_path(self.home).exists() and not (empty_dir_ok and _is_empty_dir(self.home)):
            raise LrcalError(missing_home_message(self.home))


def _is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and next(path.iterdir(), None) is None
    except OSError:
        return False


def _command_name(ctx) -> str:
    """The invoked command without the program name: 'models', 'sets import'."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


@app.callback()
def root(
    ctx: typer.Context,
    home: Optional[str] = typer.Option(
        None,
        "--home",
        help="Directory holding lrcal.db and router artifacts (default: $LRCAL_HOME, else the user data dir).",
        show_default=False,
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=lambda on: _print_version(on), help="Print the version and exit."
    ),
) -> None:
    from lrcal.home import resolve_home

    ctx.obj = CliState(home=resolve_home(home))


def _print_version(on: bool) -> None:
    if on:
        from lrcal import __version__

        typer.echo(f"lrcal {__version__}")
        raise typer.Exit()


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # invoked without the root callback (tests of sub-apps)
        from lrcal.home import resolve_home

        obj = CliState(home=resolve_home(None))
        ctx.find_root().obj = obj
    obj.command = _command_name(ctx)
    return obj


# ---- output helpers (lrcal.cli.output has the tables, JSON and CSV) ------------------------

from lrcal.cli.output import print_json  # noqa: E402,F401  (re-exported for the command modules)


def err_console():
    from rich.console import Console

    return Console(stderr=True)
