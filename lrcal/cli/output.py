"""How commands print: tables that fit the terminal, and every field as JSON or CSV.

Every command that lists rows takes the same three flags, as sqlite-utils does: ``--table``
(the default), ``--json`` and ``--csv``. JSON and CSV always carry every field. A table
shows what fits: when the terminal is narrow it first cuts its long text columns down to a
readable width, then hides whole columns in a fixed order (each `Column`'s ``drop`` rank, the
highest first), and says below the table which ones it hid. A column with ``drop=0`` is never
hidden, and names (the first column) are never cut.

Only rich is imported here (``lrcal --help`` stays fast).
"""

from __future__ import annotations

import csv
import functools
import inspect
import json
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import typer

from lrcal.errors import UsageError
from lrcal.jsonable import finite_json, json_default

GAP = 2  # characters between two columns (one of padding, one of the box's blank divider)
HIDDEN_HINT = "--json or --csv give every field"


def table_option() -> Any:
    return typer.Option(False, "--table", "-t", help="A table that fits the terminal (the default).")


def json_option() -> Any:
    return typer.Option(False, "--json", help="JSON with every field.")


def csv_option() -> Any:
    return typer.Option(False, "--csv", help="CSV with every field.")


def output_format(table: bool = False, as_json: bool = False, as_csv: bool = False) -> str:
    """The one format asked for by ``--table`` / ``--json`` / ``--csv`` (default: table)."""
    chosen = [name for name, on in (("table", table), ("json", as_json), ("csv", as_csv)) if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one output format, not {' and '.join('--' + c for c in chosen)}")
    return chosen[0] if chosen else "table"


def with_output_format(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command that lists rows the ``--table`` / ``--json`` / ``--csv`` flags (after its
    own options); it is called with the one chosen as its ``fmt`` argument.

    Put it below ``@app.command``: typer reads the signature this returns.
    """
    own = inspect.signature(command, eval_str=True)
    params = [p for name, p in own.parameters.items() if name != "fmt"]
    flags = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option(), annotation=bool)
        for name, option in (("table", table_option), ("as_json", json_option), ("as_csv", csv_option))
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, table: bool = False, as_json: bool = False, as_csv: bool = False, **kwargs: Any) -> Any:
        return command(*args, fmt=output_format(table, as_json, as_csv), **kwargs)

    wrapper.__signature__ = own.replace(parameters=params + flags)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params + flags}
    return wrapper


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(finite_json(obj), indent=2, default=json_default, ensure_ascii=False,
                                allow_nan=False) + "\n")


def print_json_or_text(value: Any, as_json: bool, print_text: Callable[[Any], None]) -> None:
    """What a command shows: ``value`` as JSON with ``--json``, else as ``print_text`` writes it."""
    if as_json:
        print_json(value)
    else:
        print_text(value)


def print_csv(rows: Sequence[dict], fields: Sequence[str] | None = None) -> None:
    """Every field of every row (nested values as JSON); ``fields`` fixes the header when there are no rows."""
    fields = list(fields or (rows[0].keys() if rows else []))
    for row in rows:  # a field only some rows have still gets its column
        fields.extend(k for k in row if k not in fields)
    # RFC 4180 line ends (as sqlite-utils writes): with "\n" alone a cell holding a bare "\r" (a model's
    # reply, an imported question) went out unquoted and split its row for every CSV reader
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row.get(k)) for k in fields})


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=json_default, ensure_ascii=False)
    return value


def cell(value: Any) -> str:
    """A stored value as table text: '' for None, yes/no, floats to 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True)
class Column:
    """One table column.

    ``drop``: 0 = always shown; otherwise the column is hidden when the table does not fit,
    highest rank first. ``shrink_to``: a long text column may be cut (``…``) or, with
    ``wrap``, wrapped down to this width before any column is hidden.
    """

    key: str
    header: str
    drop: int = 0
    justify: str = "left"
    shrink_to: int | None = None
    wrap: bool = False

    def width_floor(self, natural: int, longest_word: int = 0) -> int:
        """The narrowest this column gets: ``shrink_to`` (a wrapped one: at least its longest word)."""
        if not self.shrink_to:
            return natural
        return min(natural, max(self.shrink_to, longest_word if self.wrap else 0))


@dataclass
class FittedTable:
    columns: list[Column]
    widths: list[int]
    hidden: list[Column]


def _plain(value: Any) -> str:
    from rich.text import Text

    return value.plain if isinstance(value, Text) else str(value)


def _natural_widths(columns: Sequence[Column], rows: Sequence[dict]) -> list[int]:
    from rich.cells import cell_len

    def length(value: Any) -> int:
        return max((cell_len(line) for line in _plain(value).split("\n")), default=0)

    return [max([length(c.header)] + [length(row.get(c.key, "")) for row in rows]) for c in columns]


def _longest_words(columns: Sequence[Column], rows: Sequence[dict]) -> list[int]:
    from rich.cells import cell_len

    return [max((cell_len(w) for row in rows for w in _plain(row.get(c.key, "")).split()), default=0)
            for c in columns]  # fmt: skip


def _total(widths: Iterable[int]) -> int:
    widths = list(widths)
    return sum(widths) + GAP * max(len(widths) - 1, 0)


def fit_columns(columns: Sequence[Column], rows: Sequence[dict], width: int) -> FittedTable:
    """Which columns to show and how wide, so that the table fits ``width`` characters."""
    natural = dict(zip((c.key for c in columns), _natural_widths(columns, rows)))
    floor = {c.key: c.width_floor(natural[c.key], w) for c, w in zip(columns, _longest_words(columns, rows))}
    shown = list(columns)
    hidden: list[Column] = []

    def floor_total() -> int:
        return _total(floor[c.key] for c in shown)

    for column in sorted((c for c in columns if c.drop), key=lambda c: -c.drop):
        if floor_total() <= width:
            break
        shown.remove(column)
        hidden.append(column)
    widths = {c.key: natural[c.key] for c in shown}
    excess = _total(widths.values()) - width
    # Cut the shrinkable columns, the least important (highest drop rank) and widest first.
    for column in sorted((c for c in shown if c.shrink_to), key=lambda c: (-c.drop, -natural[c.key])):
        if excess <= 0:
            break
        cut = min(excess, widths[column.key] - floor[column.key])
        widths[column.key] -= cut
        excess -= cut
    return FittedTable(columns=shown, widths=[widths[c.key] for c in shown], hidden=hidden)


def terminal_width() -> int:
    from rich.console import Console

    return Console().width


def render_table(
    rows: Sequence[dict],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    width: int | None = None,
    caption: str | None = None,
):
    """(the rich Table that fits ``width``, the columns it hid). Cells are str or rich Text."""
    from rich import box
    from rich.table import Table

    width = width or terminal_width()
    fitted = fit_columns(columns, rows, width)
    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
        collapse_padding=True,
        title_justify="left",
        caption_justify="left",
    )
    for column, w in zip(fitted.columns, fitted.widths):
        table.add_column(
            column.header,
            justify=column.justify,  # type: ignore[arg-type]
            width=w,
            no_wrap=not column.wrap,
            overflow="fold" if column.wrap else "ellipsis",
        )
    for row in rows:
        table.add_row(*[as_text(row.get(c.key, "")) for c in fitted.columns])
    return table, fitted.hidden


# control characters other than newline and tab, shown as escapes (a stored question's ESC
# sequence must not restyle or clear the terminal)
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\t"}


def as_text(value: Any):
    """A table cell as rich Text: stored text is shown as it is, never read as console markup
    (a question holding ``[/x]`` stopped `lrcal outcomes` with a MarkupError), control
    characters escaped. Text the code styled (rich Text) passes through."""
    from rich.text import Text

    if isinstance(value, Text):
        return value
    return Text(str(value).translate(_CONTROL))


def hidden_note(hidden: Sequence[Column], width: int) -> str:
    names = ", ".join(c.header.strip() or c.key for c in hidden)
    return f"Hidden at {width} columns: {names}. {HIDDEN_HINT}."


def print_table(
    rows: Sequence[dict],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    caption: str | None = None,
    console=None,
) -> None:
    """Print a fitted table, then one line naming the columns it hid."""
    from rich.console import Console

    console = console or Console()
    table, hidden = render_table(rows, columns, title=title, caption=caption, width=console.width)
    console.print(table)
    if hidden:
        console.print(hidden_note(hidden, console.width), style="dim", highlight=False)


def print_rows(
    rows: Sequence[dict],
    fmt: str,
    columns: Sequence[Column],
    *,
    title: str | None = None,
    table_rows: Sequence[dict] | None = None,
) -> None:
    """``rows`` as JSON / CSV (every field), or as a fitted table of ``columns`` (``table_rows``:
    the rows formatted for the table, default: ``rows`` through `cell`)."""
    if fmt == "json":
        print_json(list(rows))
        return
    if fmt == "csv":
        print_csv(list(rows), [c.key for c in columns])
        return
    if table_rows is None:
        table_rows = [{c.key: cell(row.get(c.key)) for c in columns} for row in rows]
    print_table(table_rows, columns, title=title)
