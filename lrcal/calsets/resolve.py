"""Finding a set by path or by name (built-in sets, then sets under the home)."""

from __future__ import annotations

import os
from pathlib import Path

from lrcal.calsets.format import MANIFEST_NAME
from lrcal.errors import NotFound

BUILTIN_SET_NAMES: tuple[str, ...] = ("builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", "builtin-v1-pool")


def builtin_sets_dirs() -> list[Path]:
    """Where built-in sets may live: the repository's ``calibration_sets/`` (editable
    install) and ``lrcal/_calibration_sets`` (wheel, force-included by pyproject)."""
    import lrcal

    package = Path(lrcal.__file__).resolve().parent
    return [package.parent / "calibration_sets", package / "_calibration_sets"]


def builtin_set_path(name: str) -> Path | None:
    for root in builtin_sets_dirs():
        candidate = root / name
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    return None


def builtin_set_names() -> list[str]:
    """The built-in sets present in this installation."""
    return [name for name in BUILTIN_SET_NAMES if builtin_set_path(name) is not None]


def home_set_names(home: Path | None) -> list[str]:
    if home is None:
        return []
    root = home / "sets"
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    return [entry.name for entry in entries if (entry / MANIFEST_NAME).is_file()]


def resolve_set(name_or_path: str | os.PathLike[str], home: Path | None = None) -> Path:
    """The directory of a set given as a path, a built-in name, or a name under ``home/sets``."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.is_file() and path.name == MANIFEST_NAME:
        return path.parent
    if _is_plain_name(text):
        found = builtin_set_path(text)
        if found is not None:
            return found
        if home is not None and (home / "sets" / text / MANIFEST_NAME).is_file():
            return home / "sets" / text
    available = builtin_set_names() + [n for n in home_set_names(home) if n not in BUILTIN_SET_NAMES]
    raise NotFound(
        f"unknown calibration set {text!r}: not a directory, and not one of "
        f"{', '.join(available) if available else '(no sets installed)'}"
    )


def _is_plain_name(text: str) -> bool:
    return bool(text) and text not in (".", "..") and "/" not in text and "\\" not in text and "\x00" not in text
