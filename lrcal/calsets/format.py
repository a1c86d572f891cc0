"""The calibration-set format: constants, the loaded types, and problem reports.

A set is a directory holding ``manifest.jsonl`` (one example per line), the images
it references, and optionally ``set.json`` (name, declared task groups,
description). See docs/calibration-sets.md for every field and rule.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lrcal.errors import LrcalError

MANIFEST_NAME = "manifest.jsonl"
SET_INFO_NAME = "set.json"

TASK_GROUPS: tuple[str, ...] = ("ocr", "chart", "document", "spatial", "vqa", "math")
ANSWER_TYPES: tuple[str, ...] = ("multiple_choice", "exact", "number", "anls", "yes_no")

# Hostile-input limits (documented in docs/calibration-sets.md).
MAX_LINE_BYTES = 1 << 20  # one manifest line
MAX_MANIFEST_BYTES = 256 << 20  # the whole manifest
MAX_SET_INFO_BYTES = 1 << 20  # set.json
MAX_IMAGE_BYTES = 50 << 20  # one image file
MAX_IMAGE_PIXELS = 40_000_000  # decoded width x height (decompression-bomb guard)
MAX_ID_CHARS = 256
MAX_PATH_CHARS = 1024

SHORT_VERSION_CHARS = 12
MAX_SET_NAME_CHARS = 64


def set_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a set (it becomes a folder under <home>/sets), or None. One rule for
    `sets generate`, set.json's name, `sets validate` and `sets import`."""
    if not isinstance(name, str) or not name or len(name) > MAX_SET_NAME_CHARS or not all(
        c.isascii() and (c.isalnum() or c in "._-") for c in name
    ):
        return f"set name {name!r} must be 1-{MAX_SET_NAME_CHARS} characters from A-Z a-z 0-9 . _ -"
    if name.startswith((".", "-")):
        return f"set name {name!r} must not start with '.' or '-'"
    return None


def normalize_question(question: str) -> str:
    """The question as a reader compares it: NFKC, case-folded, whitespace collapsed (the same
    rule as ``lrcal.sim.index.normalize_question``, which keys simulated answers by it)."""
    return " ".join(unicodedata.normalize("NFKC", question).casefold().split())


class SetError(LrcalError):
    """A calibration set cannot be used. The message is one line; ``problems`` lists all."""

    def __init__(self, message: str, problems: list["Problem"] | None = None):
        super().__init__(message)
        self.problems: list[Problem] = list(problems or [])


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a set. ``line`` is 1-based; None when not about a manifest line."""

    file: str
    line: int | None
    example_id: str | None
    kind: str
    message: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        return f"{self.location}: {self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "example_id": self.example_id,
            "kind": self.kind,
            "message": self.message,
        }


@dataclass(frozen=True)
class Example:
    """One calibration example, as validated from its manifest line."""

    id: str
    task_group: str
    question: str
    answer: str
    answer_type: str
    choices: tuple[str, ...] | None = None
    image: str | None = None  # relative path inside the set directory, as written
    tolerance: float | None = None  # relative, for answer_type "number"
    meta: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    image_path: Path | None = None  # absolute
    image_sha256: str | None = None
    line: int | None = field(default=None, compare=False)  # 1-based manifest line

    @property
    def difficulty(self) -> float | None:
        value = self.meta.get("difficulty") if self.meta else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def subtype(self) -> str | None:
        value = self.meta.get("subtype") if self.meta else None
        return value if isinstance(value, str) else None

    def to_manifest_dict(self) -> dict[str, Any]:
        """The manifest record, fields in manifest order (the generator writes its lines with it)."""
        record: dict[str, Any] = {
            "id": self.id,
            "task_group": self.task_group,
            "question": self.question,
            "answer": self.answer,
            "answer_type": self.answer_type,
        }
        if self.choices is not None:
            record["choices"] = list(self.choices)
        if self.tolerance is not None:
            record["tolerance"] = self.tolerance
        if self.image is not None:
            record["image"] = self.image
        if self.meta:
            record["meta"] = dict(self.meta)
        return record


@dataclass(frozen=True)
class CalibrationSet:
    """A validated set. ``version`` is the content hash (see ``loader.set_version``)."""

    name: str
    path: Path
    version: str
    examples: tuple[Example, ...]
    task_groups: tuple[str, ...]
    description: str | None = None

    @property
    def short_version(self) -> str:
        return self.version[:SHORT_VERSION_CHARS]

    def __len__(self) -> int:
        return len(self.examples)

    def group_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {group: 0 for group in self.task_groups}
        for example in self.examples:
            counts[example.task_group] = counts.get(example.task_group, 0) + 1
        return counts

    def by_id(self) -> dict[str, Example]:
        return {example.id: example for example in self.examples}


def ordered_groups(groups: set[str] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Known groups in canonical order first, then the others alphabetically."""
    present = set(groups)
    known = [g for g in TASK_GROUPS if g in present]
    return tuple(known + sorted(present - set(TASK_GROUPS)))
