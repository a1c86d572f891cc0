"""Values JSON does not know, as JSON writes them: numpy arrays and scalars as lists / numbers, paths as strings."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def json_default(value: Any) -> Any:
    """``json.dumps(..., default=json_default)``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
