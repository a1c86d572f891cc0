"""Recognising calibration examples in incoming requests.

Every example of the given sets is indexed by (sha256 of its image bytes, normalized
question). A request matches an example when its image hash is the example's and its
prompt *contains* the example's question (so a client may wrap the question in
instructions). Sets are read duck-typed: anything with ``examples`` whose items have
``id, task_group, question, answer, answer_type, choices, tolerance, image_sha256, meta``
(``lrcal.calsets.CalibrationSet`` is one).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


def normalize_question(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_key(image_sha256: str | None, question: str) -> str:
    """A stable id for (image, question): same content, same key, whatever set it came from."""
    text = f"{image_sha256 or '-'}\x00{normalize_question(question)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class SimExample:
    id: str
    set_name: str
    task_group: str
    question: str
    answer: str
    answer_type: str
    choices: tuple[str, ...] | None
    tolerance: float | None
    difficulty: float  # 0.5 when the set does not say
    subtype: str | None
    image_sha256: str | None

    @property
    def key(self) -> str:
        return content_key(self.image_sha256, self.question)


def sim_example(example: Any, set_name: str = "") -> SimExample:
    meta = getattr(example, "meta", None) or {}
    difficulty = meta.get("difficulty") if isinstance(meta, Mapping) else None
    if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)):
        difficulty = 0.5
    subtype = meta.get("subtype") if isinstance(meta, Mapping) else None
    choices = getattr(example, "choices", None)
    tolerance = getattr(example, "tolerance", None)
    return SimExample(
        id=str(example.id),
        set_name=set_name,
        task_group=str(example.task_group),
        question=str(example.question),
        answer=str(example.answer),
        answer_type=str(example.answer_type),
        choices=tuple(str(c) for c in choices) if choices else None,
        tolerance=float(tolerance) if isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) else None,
        difficulty=min(1.0, max(0.0, float(difficulty))),
        subtype=subtype if isinstance(subtype, str) else None,
        image_sha256=getattr(example, "image_sha256", None),
    )


class ExampleIndex:
    """Lookup of known examples by image hash and question."""

    def __init__(self, examples: Iterable[SimExample] = ()) -> None:
        self._by_image: dict[str | None, list[tuple[str, SimExample]]] = defaultdict(list)
        self._by_key: dict[str, SimExample] = {}
        self._answers: dict[tuple[str, str], list[str]] = defaultdict(list)
        for example in examples:
            self.add(example)

    @classmethod
    def from_sets(cls, sets: Iterable[Any]) -> "ExampleIndex":
        index = cls()
        for cset in sets:
            name = str(getattr(cset, "name", ""))
            for example in cset.examples:
                index.add(sim_example(example, name))
        return index

    def add(self, example: SimExample) -> None:
        key = example.key
        if key in self._by_key:  # the same content from another set (e.g. a subset): keep the first
            return
        self._by_key[key] = example
        self._by_image[example.image_sha256].append((normalize_question(example.question), example))
        answers = self._answers[(example.task_group, example.answer_type)]
        if example.answer not in answers:
            answers.append(example.answer)

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self):
        return iter(self._by_key.values())

    def lookup(self, question: str, image_sha256: str | None) -> SimExample | None:
        candidates = self._by_image.get(image_sha256)
        if not candidates:
            return None
        prompt = normalize_question(question)
        best: SimExample | None = None
        best_len = -1
        for normalized, example in candidates:
            if normalized == prompt:
                return example
            if normalized and normalized in prompt and len(normalized) > best_len:
                best, best_len = example, len(normalized)
        return best

    def other_answers(self, example: SimExample) -> list[str]:
        """Reference answers of other examples of the same group and answer type."""
        answers = self._answers.get((example.task_group, example.answer_type), [])
        return sorted(a for a in answers if a != example.answer)  # sorted: independent of load order
