"""What ``--help`` shows: plain placeholders and examples.

Typer writes a flag's type as ``<bool>`` and a required argument as ``{name}``; lrcal's help
reads like its docs instead: flags carry no type, arguments are ``NAME`` (``[NAME]`` when
optional), and value types are ``TEXT``, ``INTEGER``, ``NUMBER``, ``PATH``.
"""

from __future__ import annotations

from types import SimpleNamespace

try:  # typer >= 0.20 vendors click and has its own parameter classes
    from typer.core import TyperArgument, TyperOption
except ImportError:  # pragma: no cover
    TyperArgument = TyperOption = None  # type: ignore[assignment,misc]

TYPE_WORDS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "path": "PATH", "bool": "BOOLEAN"}


def examples(*lines: str) -> str:
    """An epilog listing example command lines (kept one per line by the help formatter)."""
    return "\b\n[bold]Examples[/]\n" + "\n".join(f"  {line}" for line in lines)


def example_lines(epilog: str | None) -> list[str]:
    """The command lines of an `examples` epilog (for docs/cli.md)."""
    if not epilog or not epilog.startswith("\b\n"):
        return []
    return [line.strip() for line in epilog.splitlines()[2:] if line.strip()]


if TyperArgument is not None:

    class PlainArgument(TyperArgument):
        @property
        def display_name_raw(self) -> str:
            return self.metavar or (self.name or "").upper()

        def _usage_display_name(self) -> str:
            name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
            return name + ("..." if self.nargs != 1 else "")

        def display_type_rich(self, ctx) -> str | None:
            return _type_word(super().display_type_rich(ctx))

    class PlainOption(TyperOption):
        def display_type_rich(self, ctx) -> str | None:
            if self.is_flag or self.count:
                return None
            return _type_word(super().display_type_rich(ctx))


def _type_word(label: str | None) -> str | None:
    """'<int range>' -> 'INTEGER', '<str>' -> 'TEXT'; choices and metavars unchanged."""
    if not label or not (label.startswith("<") and label.endswith(">")):
        return label
    inner = label[1:-1].removesuffix(" range")
    return TYPE_WORDS.get(inner, inner.upper())


def plain_params(command, help_option_names: list[str]) -> None:
    """Give ``command`` and every command under it the plain placeholders (in place)."""
    if TyperArgument is None:  # pragma: no cover
        return
    # The help option is made on first use: make it now (it only needs the names) to retype it too.
    help_option = command.get_help_option(SimpleNamespace(help_option_names=help_option_names))
    for param in [*getattr(command, "params", []), help_option]:
        if type(param) is TyperArgument:
            param.__class__ = PlainArgument
        elif type(param) is TyperOption:
            param.__class__ = PlainOption
    for sub in (getattr(command, "commands", None) or {}).values():
        plain_params(sub, help_option_names)
