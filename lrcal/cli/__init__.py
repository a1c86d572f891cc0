"""lrcal command-line interface.

Each module registers its commands on the shared root ``app``. Modules import only
typer/rich at import time; everything heavy is imported inside the commands.
"""

from __future__ import annotations

import sys

from lrcal.cli._app import app

# Registration order is the order shown in `lrcal --help`.
from lrcal.cli import home as _home  # noqa: E402,F401
from lrcal.cli import models as _models  # noqa: E402,F401
from lrcal.cli import outcomes as _outcomes  # noqa: E402,F401
from lrcal.cli import calibrate as _calibrate  # noqa: E402,F401
from lrcal.cli import sets as _sets  # noqa: E402,F401
from lrcal.cli import imports as _imports  # noqa: E402,F401
from lrcal.cli import router as _router  # noqa: E402,F401
from lrcal.cli import validate as _validate  # noqa: E402,F401
from lrcal.cli import policy as _policy  # noqa: E402,F401
from lrcal.cli import demo as _demo  # noqa: E402,F401
from lrcal.cli import tui as _tui  # noqa: E402,F401
from lrcal.cli import sim as _sim  # noqa: E402,F401
from lrcal.cli import local as _local  # noqa: E402,F401
from lrcal.cli import bench as _bench  # noqa: E402,F401
from lrcal.cli import serve as _serve  # noqa: E402,F401
from lrcal.cli import traffic as _traffic  # noqa: E402,F401

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    app(args=argv if argv is not None else sys.argv[1:], prog_name="lrcal")
