"""How values go into SQLite columns and come back: JSON text and ISO-8601 UTC timestamps."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from lrcal.jsonable import json_default


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def dumps(value: Any) -> str | None:
    """JSON text for a column (None stays NULL); numpy arrays and paths are written as lists / strings."""
    return None if value is None else json.dumps(value, sort_keys=True, default=json_default)


def loads(value: str | None, default: Any = None) -> Any:
    if value in (None, ""):
        return default
    return json.loads(value)
