"""Where lrcal keeps its database and artifacts.

Resolution order: an explicit ``--home`` option, then ``LRCAL_HOME``, then the
platform user-data directory (``platformdirs``).
"""

from __future__ import annotations

import os
from pathlib import Path

from lrcal.errors import UsageError

HOME_ENV_VAR = "LRCAL_HOME"
DB_FILENAME = "lrcal.db"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The home directory. An explicit empty path is refused: it would mean the current directory."""
    if explicit is not None:
        text = os.fspath(explicit)
        if not text.strip():
            raise UsageError("--home is empty; give a directory (or leave --home out to use $LRCAL_HOME)")
        if "\x00" in text:
            raise UsageError("--home contains a NUL character")
        return Path(text).expanduser().resolve()
    env = os.environ.get(HOME_ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("lrcal", appauthor=False)).resolve()


def db_path(home: Path) -> Path:
    return home / DB_FILENAME


def missing_home_message(home: Path) -> str:
    where = "is not a directory" if home.exists() and not home.is_dir() else (
        "has no lrcal.db" if home.is_dir() else "does not exist"
    )
    return (
        f"no lrcal home at {home} (it {where}); check --home / ${HOME_ENV_VAR}, or start one with "
        "`lrcal add-model`, `lrcal import-outcomes` or `lrcal demo`"
    )


def routers_dir(home: Path) -> Path:
    return home / "routers"


def sets_dir(home: Path) -> Path:
    """Calibration sets imported or generated into this home."""
    return home / "sets"


def reports_dir(home: Path) -> Path:
    return home / "reports"
