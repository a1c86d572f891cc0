"""Calibration sets: the format, loading + validation, answer scoring, and the pillow
generator of the built-in sets (``lrcal.calsets.generator``, imported on first use)."""

from __future__ import annotations

from typing import Any

from lrcal.calsets.format import (
    ANSWER_TYPES,
    MANIFEST_NAME,
    MAX_IMAGE_PIXELS,
    SET_INFO_NAME,
    TASK_GROUPS,
    CalibrationSet,
    Example,
    Problem,
    SetError,
)
from lrcal.calsets.loader import (
    image_data_url,
    image_mime_type,
    load_set,
    mime_type_for_bytes,
    read_image_bytes,
    validate_set,
)
from lrcal.calsets.prompt import build_prompt
from lrcal.calsets.resolve import BUILTIN_SET_NAMES, builtin_set_names, resolve_set
from lrcal.calsets.scoring import Score, score_answer
from lrcal.calsets.subset import stratified_subset

__all__ = [
    "ANSWER_TYPES",
    "BUILTIN_SET_NAMES",
    "MANIFEST_NAME",
    "MAX_IMAGE_PIXELS",
    "SET_INFO_NAME",
    "TASK_GROUPS",
    "CalibrationSet",
    "Example",
    "Problem",
    "Score",
    "SetError",
    "build_prompt",
    "builtin_set_names",
    "generate_set",
    "image_data_url",
    "image_mime_type",
    "load_set",
    "mime_type_for_bytes",
    "read_image_bytes",
    "resolve_set",
    "score_answer",
    "stratified_subset",
    "validate_set",
]


def __getattr__(name: str) -> Any:
    if name == "generate_set":  # pillow + numpy: only when generating
        from lrcal.calsets.generator import generate_set

        return generate_set
    raise AttributeError(f"module 'lrcal.calsets' has no attribute {name!r}")
