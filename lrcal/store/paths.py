"""Paths stored in the database are relative to the home, so a home can be moved or copied.

A path inside the home (content-addressed images, router artifacts, sets imported into the
home) is written as a relative POSIX path and turned back into an absolute one when read.
A path outside the home (a built-in set, an imported CSV) stays absolute.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath


def to_stored(home: Path | None, path: str | os.PathLike[str] | None) -> str | None:
    """What goes into a ``path`` column: relative to ``home`` when inside it."""
    if path is None:
        return None
    if home is None:
        return os.fspath(path)
    absolute = Path(os.path.abspath(os.fspath(path)))
    for base in _spellings(home):
        try:
            return absolute.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(absolute)


def from_stored(home: Path | None, stored: str | None) -> str | None:
    """The absolute path a ``path`` column names (relative ones are under ``home``)."""
    if stored is None or stored == "" or home is None or os.path.isabs(stored):
        return stored
    return str(Path(home).joinpath(*PurePosixPath(stored).parts))


def _spellings(home: Path) -> list[Path]:
    """The home as given and with symlinks resolved (a path may be written either way)."""
    given = Path(os.path.abspath(home))
    real = Path(os.path.realpath(home))
    return [given] if given == real else [given, real]


def relative_from_layout(path: str, marker: str) -> str | None:
    """``<anything>/<marker>...`` -> ``<marker>...``: where a stored absolute path of a known
    home layout (``images/ab/<sha>``, ``routers/<version>``) starts inside its home."""
    normalized = path.replace(os.sep, "/")
    index = normalized.rfind("/" + marker)
    if index < 0:
        return None
    return normalized[index + 1 :]
