"""CSV plumbing of the outcome readers: a file's rows with one-line errors that name the
file, the row, the line and the column, and the parsers of single cells."""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Sequence

from lrcal.errors import LrcalError
from lrcal.input_files import read_input_bytes

_MAX_CELL_IN_MESSAGE = 40
# One cell longer than this is hostile input, not data (the manifest's line limit is 1 MiB too):
# a real question, answer or prediction is a few KiB.
MAX_CELL_CHARS = 1 << 20
_TRUE = {"true", "yes"}
_FALSE = {"false", "no"}
# a number as a spreadsheet writes it: float() also reads Python's "0_1" (as 1.0) and other
# scripts' digits ("١"), which no outcome log means as those numbers
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:nan|inf|infinity)", re.IGNORECASE | re.ASCII)


def shown(value: str) -> str:
    """A cell as error messages quote it (long values cut)."""
    text = value if len(value) <= _MAX_CELL_IN_MESSAGE else value[: _MAX_CELL_IN_MESSAGE - 1] + "…"
    return repr(text)


class CsvRows:
    """Reads a CSV file into (data_row_number, line_number, dict) with one-line errors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        text = self._read_text()
        # Lift the csv module's 128 KiB default so that an over-long cell is reported below,
        # by row and column, rather than as a malformed line.
        csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1, MAX_CELL_CHARS + 1))
        # strict: the lenient default read an unclosed quote in the last column to the end of the
        # file (every later row swallowed into one cell, the field count still right) and a stray
        # quote inside a quoted cell was dropped without a word
        self.reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        self.header = self._read_header()

    def _read_text(self) -> str:
        raw = read_input_bytes(self.path, "CSV file")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise LrcalError(f"{self.path}: line {line}: not valid UTF-8 text (byte {exc.start})") from None
        if "\x00" in text:
            line = text[: text.index("\x00")].count("\n") + 1
            raise LrcalError(f"{self.path}: line {line}: contains a NUL byte (not a text CSV)")
        return text

    def _read_header(self) -> list[str]:
        try:
            header = next(self.reader)
        except StopIteration:
            raise LrcalError(f"{self.path}: empty file (no header row)") from None
        except csv.Error as exc:
            raise LrcalError(f"{self.path}: line 1: malformed CSV header ({exc})") from None
        # utf-8-sig takes one byte-order mark; a file saved twice by a BOM-adding editor has two, and
        # str.strip() keeps it: "\ufeffsample_id" was no id column, so ids became row numbers
        header = [h.strip().lstrip("\ufeff").strip() for h in header]
        if not any(header):
            raise LrcalError(f"{self.path}: empty header row")
        seen: dict[str, int] = {}
        for i, name in enumerate(header):
            if not name:
                raise LrcalError(f"{self.path}: header column {i + 1} has no name")
            if name in seen:
                raise LrcalError(f"{self.path}: header: column '{name}' appears twice (columns {seen[name] + 1} and {i + 1})")
            seen[name] = i
        return header

    def __iter__(self):
        row_number = 0
        while True:
            start_line = self.reader.line_num + 1
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise LrcalError(f"{self.path}: line {start_line}: malformed CSV ({_explained(exc)})") from None
            if not cells or all(not c.strip() for c in cells):
                continue  # blank line
            row_number += 1
            if len(cells) != len(self.header):
                raise LrcalError(
                    f"{self.path}: row {row_number} (line {start_line}): has {len(cells)} fields, "
                    f"the header has {len(self.header)}"
                )
            if max(map(len, cells)) > MAX_CELL_CHARS:
                longest = max(range(len(cells)), key=lambda i: len(cells[i]))
                raise LrcalError(
                    f"{self.where(row_number, start_line, self.header[longest])}: cell of "
                    f"{len(cells[longest]):,} characters; the limit is {MAX_CELL_CHARS:,}"
                )
            yield row_number, start_line, dict(zip(self.header, cells))

    def where(self, row: int, line: int, column: str | None = None) -> str:
        spot = f"{self.path}: row {row} (line {line})"
        return f"{spot}, column '{column}'" if column else spot


def _explained(exc: csv.Error) -> str:
    """The csv module's message, with what it means in a file for the strict reader's two cases."""
    text = str(exc)
    if text == "unexpected end of data":
        return "a quoted cell is never closed"
    if text.endswith("expected after '\"'"):
        return 'a quote inside a quoted cell must be doubled ("")'
    return text


def first_present(header: Sequence[str], aliases: Sequence[str]) -> str | None:
    """The header's column named by the first alias it has (case, spaces and hyphens aside:
    `Sample ID` is `sample_id`), else None."""
    lowered = {h.lower().replace(" ", "_").replace("-", "_"): h for h in header}
    for alias in aliases:
        if alias in lowered:
            return lowered[alias]
    return None


def plain_float(text: str) -> float:
    """``float(text)`` for a plain decimal or scientific number (or nan/inf, which callers
    refuse with their own message); ValueError for anything else."""
    if not _PLAIN_NUMBER.fullmatch(text):
        raise ValueError(text)
    return float(text)


def parse_score(rows: CsvRows, row: int, line: int, column: str, cell: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    low = text.lower()
    if low in _TRUE:
        return 1.0
    if low in _FALSE:
        return 0.0
    try:
        value = plain_float(text)
    except ValueError:
        raise LrcalError(f"{rows.where(row, line, column)}: score {shown(text)} is not a number") from None
    if not math.isfinite(value):
        raise LrcalError(f"{rows.where(row, line, column)}: score {shown(text)} is not finite (leave the cell empty for 'not available')")
    if value < 0.0 or value > 1.0:
        raise LrcalError(f"{rows.where(row, line, column)}: score {shown(text)} outside [0, 1]")
    return value


# The largest value one call can plausibly have: beyond it a cell is a unit or export mistake
# (and a token count past SQLite's integer range made the import fail with a traceback).
PER_CALL_LIMITS = {"token count": 1e9, "cost": 1e6, "latency": 1e8}  # tokens, USD, ms (~28 h)


def parse_nonnegative(rows: CsvRows, row: int, line: int, column: str, cell: str, what: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = plain_float(text)
    except ValueError:
        raise LrcalError(f"{rows.where(row, line, column)}: {what} {shown(text)} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise LrcalError(f"{rows.where(row, line, column)}: {what} {shown(text)} must be a finite number >= 0")
    limit = PER_CALL_LIMITS.get(what)
    if limit is not None and value > limit:
        raise LrcalError(f"{rows.where(row, line, column)}: {what} {shown(text)} is more than one call can have "
                         f"(at most {limit:g})")
    if what == "token count" and value != int(value):
        raise LrcalError(f"{rows.where(row, line, column)}: {what} {shown(text)} is not a whole number")
    return value


# what an error column holds for a call that did not fail (anything else: the error's text or a flag)
# an error cell that says the call did not fail: a word, or what pandas and R write for a missing
# value of a float or boolean column
NO_ERROR = frozenset({"0", "false", "no", "none", "null", "ok", "success", "n/a", "-",
                      "nan", "na", "<na>", "nat"})


def parse_error_flag(cell: str) -> bool:
    """An outcome log's error cell: empty, a "no error" word, a missing value or a number equal
    to 0 ("0.0", what a float column writes) is no error; 1, true or an error message is one."""
    text = cell.strip().lower()
    if not text or text in NO_ERROR:
        return False
    try:
        number = plain_float(text)
    except ValueError:
        return True  # an error message
    return number == number and number != 0.0  # NaN: a missing value
