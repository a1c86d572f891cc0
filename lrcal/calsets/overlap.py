"""Checks that two sets share no example: no id, no image bytes, no (image, question) pair.

Questions are compared normalized (case, whitespace, Unicode form): "What colour?" and
"what  colour?" ask the same thing of the same image."""

from __future__ import annotations

from dataclasses import dataclass

from lrcal.calsets.format import CalibrationSet, normalize_question


@dataclass(frozen=True)
class Overlap:
    ids: frozenset[str]
    images: frozenset[str]  # sha256 of shared image bytes
    pairs: frozenset[tuple[str, str]]  # (image sha256, normalized question)

    def __bool__(self) -> bool:
        return bool(self.ids or self.images or self.pairs)

    def describe(self) -> str:
        return f"{len(self.ids)} shared ids, {len(self.images)} shared images, {len(self.pairs)} shared (image, question) pairs"


def overlap(a: CalibrationSet, b: CalibrationSet) -> Overlap:
    def pairs(s: CalibrationSet) -> set[tuple[str, str]]:
        return {(e.image_sha256 or "", normalize_question(e.question)) for e in s.examples}

    return Overlap(
        ids=frozenset({e.id for e in a.examples} & {e.id for e in b.examples}),
        images=frozenset(
            {e.image_sha256 for e in a.examples if e.image_sha256}
            & {e.image_sha256 for e in b.examples if e.image_sha256}
        ),
        pairs=frozenset(pairs(a) & pairs(b)),
    )


def duplicate_images(s: CalibrationSet) -> set[str]:
    """Image hashes used by more than one example of the same set."""
    seen: set[str] = set()
    dupes: set[str] = set()
    for e in s.examples:
        if e.image_sha256:
            (dupes if e.image_sha256 in seen else seen).add(e.image_sha256)
    return dupes
