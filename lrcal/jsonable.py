"""Values JSON does not know, as JSON writes them: numpy arrays and scalars as lists / numbers, paths as strings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite number as None, recursively: ``json.dumps`` writes
    them as the bare ``NaN`` / ``Infinity`` no strict parser (jq, JavaScript, SQLite's
    ``json_valid``) reads."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return finite_json(value.tolist())
    return value
