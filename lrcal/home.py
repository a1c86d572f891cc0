"""Where lrcal keeps its database and artifacts.

Resolution order: an explicit ``--home`` option, then ``LRCAL_HOME``, then the
platform user-data directory (``platformdirs``).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV_VAR = "LRCAL_HOME"
DB_FILENAME = "lrcal.db"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(HOME_ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_data_dir("lrcal", appauthor=False)).resolve()


def db_path(home: Path) -> Path:
    return home / DB_FILENAME


def routers_dir(home: Path) -> Path:
    return home / "routers"


def sets_dir(home: Path) -> Path:
    """Calibration sets imported or generated into this home."""
    return home / "sets"


def reports_dir(home: Path) -> Path:
    return home / "reports"
