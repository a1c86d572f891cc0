"""Is a live-validation set held out? It must share nothing with the data behind the decision:
the candidate's calibration sets and every set the router's models were calibrated or trained
on (their calibration runs and imported outcome logs). Otherwise the gate compares routing with
and without the candidate on queries the router, or the candidate's token, has already seen.

Shared means any of: an example id; a question on the same image (or, for text-only examples,
the same question), compared after Unicode normalisation, case folding and whitespace collapse;
an image, compared by its decoded pixels (a lossless re-encode or a format conversion has other
bytes and the same picture). Pixel digests are cached per home by byte hash (images are content
addressed, so a digest never goes stale).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from lrcal.calsets.format import normalize_question
from lrcal.services.tables import TRAINING_RUN_KINDS, example_image_hashes
from lrcal.store import Store

PIXEL_CACHE = "pixel-digests.json"


@dataclass(frozen=True)
class Overlap:
    examples: int  # shared example ids
    queries: int  # shared (picture, question) pairs, text-only questions included
    images: int  # shared pictures

    def __bool__(self) -> bool:
        return bool(self.examples or self.queries or self.images)

    def describe(self) -> str:
        return (f"{self.examples} shared example ids, {self.queries} shared questions on the same picture, "
                f"{self.images} shared pictures")


def sets_behind(store: Store, candidate: dict, router_models) -> dict[int, str]:
    """set id -> whose data it is: the candidate's calibration sets first, then every set a model
    of the router (trained or onboarded) has calibration or imported outcomes on."""
    out: dict[int, str] = {}
    for run in store.runs(model_id=candidate["id"], kind="calibration"):
        out.setdefault(run["set_id"], f"{candidate['name']}'s calibration data")
    for name in router_models:
        model = store.find_model(name)
        if model is None or model["id"] == candidate["id"]:
            continue
        for run in store.runs(model_id=model["id"]):
            if run["kind"] in TRAINING_RUN_KINDS:
                out.setdefault(run["set_id"], f"the router's data ({name}'s {run['kind']} outcomes)")
    return out


def shas_to_decode(store: Store, one: set[str], other: set[str]) -> set[str]:
    """The images of ``one`` and ``other`` (byte hashes) that could show the same picture as an
    image on the other side: those whose stored size (width and height in either order, as
    read from the file) occurs on both sides, and those of unknown size. Two pictures of
    different sizes never have the same pixels, so every other image is compared by its bytes
    and never decoded (a home of 2,000 imported photos and a holdout of other sizes decodes
    none of them)."""
    shas = sorted(one | other)
    sizes: dict[str, tuple[int, int] | None] = {
        sha: (min(w, h), max(w, h)) if isinstance(w, int) and isinstance(h, int) else None
        for sha, (w, h) in store.image_sizes(shas).items()}
    unknown = {sha for sha in shas if sizes.get(sha) is None}
    on_one = {sizes[sha] for sha in one if sha not in unknown}
    on_other = {sizes[sha] for sha in other if sha not in unknown}
    both = on_one & on_other
    return unknown | {sha for sha in shas if sha not in unknown and sizes[sha] in both}


class PixelDigests:
    """Byte hash -> digest of the decoded pixels (RGBA and size), cached in the home.
    ``decode``: the only images worth decoding (`shas_to_decode`; None: every one); any other
    is compared by its bytes."""

    def __init__(self, store: Store, decode: set[str] | None = None) -> None:
        self.store = store
        self.decode = decode
        self.path = Path(store.home) / "cache" / PIXEL_CACHE if store.home is not None else None
        self.cache: dict[str, str] = {}
        self.dirty = False
        if self.path is not None and self.path.exists():
            try:
                loaded = json.loads(self.path.read_text())
                self.cache = {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, str)}
            except (OSError, ValueError, AttributeError):
                self.cache = {}  # a damaged cache is rebuilt, never trusted

    def __call__(self, sha: str) -> str:
        if sha not in self.cache and self.decode is not None and sha not in self.decode:
            return "bytes:" + sha  # no picture of its size on the other side: its pixels cannot match
        if sha not in self.cache:
            self.cache[sha] = self._digest(sha)
            self.dirty = True
        return self.cache[sha]

    def _digest(self, sha: str) -> str:
        from PIL import Image

        data = self.store.image_bytes(sha)
        if data is None:
            return "bytes:" + sha  # the file is gone: its byte hash is all there is to compare
        try:
            with Image.open(io.BytesIO(data)) as image:
                rgba = image.convert("RGBA")
                return "pixels:" + hashlib.sha256(f"{rgba.size}".encode() + rgba.tobytes()).hexdigest()
        except Exception:  # noqa: BLE001 - an undecodable image is compared by its bytes
            return "bytes:" + sha

    def save(self) -> None:
        if not self.dirty or self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.cache))
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass  # a cache that cannot be written only costs time next run


def examples_with_images(store: Store, set_id: int) -> list[tuple[dict, list[str]]]:
    """The set's examples, each with its image hashes."""
    kind = store.get_set_by_id(set_id)["kind"]
    return [(ex, example_image_hashes(ex, kind)) for ex in store.set_examples(set_id)]


@dataclass(frozen=True)
class SetContent:
    """What a stored set holds, as `Overlap` compares it."""

    ids: frozenset[str]
    queries: frozenset[tuple[tuple[str, ...], str]]  # (pictures, normalised question)
    pictures: frozenset[str]

    @classmethod
    def of(cls, store: Store, set_id: int, pixels: PixelDigests) -> "SetContent":
        return cls.from_examples(examples_with_images(store, set_id), pixels)

    @classmethod
    def from_examples(cls, examples: list[tuple[dict, list[str]]], pixels: PixelDigests) -> "SetContent":
        """From `examples_with_images` of a set."""
        ids, queries, pictures = set(), set(), set()
        for ex, shas in examples:
            ids.add(ex["example_id"])
            seen = tuple(sorted(pixels(sha) for sha in shas))
            pictures.update(seen)
            question = normalize_question(ex.get("question") or "")
            if question or seen:
                queries.add((seen, question))
        return cls(frozenset(ids), frozenset(queries), frozenset(pictures))

    def shared_with(self, other: "SetContent") -> Overlap:
        return Overlap(examples=len(self.ids & other.ids), queries=len(self.queries & other.queries),
                       images=len(self.pictures & other.pictures))


def overlap(store: Store, set_a: int, set_b: int, pixels: PixelDigests | None = None) -> Overlap:
    pixels = pixels or PixelDigests(store)
    return SetContent.of(store, set_a, pixels).shared_with(SetContent.of(store, set_b, pixels))
