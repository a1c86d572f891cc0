"""Reading a file the user named (a CSV, a zoo), with one-line errors that say which path and why;
and the check that an id or a name shows every character it holds."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from lrcal.errors import LrcalError


def read_input_bytes(
    path: Path, kind: str, *, max_bytes: int | None = None, error: type[LrcalError] = LrcalError
) -> bytes:
    """The bytes of ``path``, a ``kind`` ("CSV file"); ``error`` when it is missing, a directory,
    unreadable or (with ``max_bytes``) too large."""
    try:
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise error(f"{path}: {kind} is larger than {max_bytes} bytes")
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a {kind}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None


def has_hidden_characters(text: str) -> bool:
    """Whether ``text`` holds a control, format, private-use or unassigned character (Unicode
    category C): two ids or names that differ only by one look the same wherever they are shown."""
    return any(unicodedata.category(ch)[0] == "C" for ch in text)
