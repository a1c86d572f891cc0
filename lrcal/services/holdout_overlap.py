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
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from lrcal.store import Store

TRAINING_KINDS = ("calibration", "import")
PIXEL_CACHE = "pixel-digests.json"
EXTRA_IMAGES = "extra_image_sha256"


def normalized_question(text: str | None) -> str:
    return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())


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
            if run["kind"] in TRAINING_KINDS:
                out.setdefault(run["set_id"], f"the router's data ({name}'s {run['kind']} outcomes)")
    return out


class PixelDigests:
    """Byte hash -> digest of the decoded pixels (RGBA and size), cached in the home."""

    def __init__(self, store: Store) -> None:
        self.store = store
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


def _content(examples: list[dict], pixels: PixelDigests) -> tuple[set, set, set]:
    ids, queries, pictures = set(), set(), set()
    for ex in examples:
        ids.add(ex["example_id"])
        shas = [ex["image_sha256"]] if ex.get("image_sha256") else []
        meta = ex.get("metadata") or {}
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                meta = {}
        extra = meta.get(EXTRA_IMAGES) if isinstance(meta, dict) else None
        shas += [s for s in (extra or []) if isinstance(s, str)]
        seen = tuple(sorted(pixels(s) for s in shas))
        pictures.update(seen)
        question = normalized_question(ex.get("question"))
        if question or seen:
            queries.add((seen, question))
    return ids, queries, pictures


def overlap(store: Store, set_a: int, set_b: int, pixels: PixelDigests | None = None) -> Overlap:
    pixels = pixels or PixelDigests(store)
    ids_a, queries_a, pictures_a = _content(store.set_examples(set_a), pixels)
    ids_b, queries_b, pictures_b = _content(store.set_examples(set_b), pixels)
    return Overlap(examples=len(ids_a & ids_b), queries=len(queries_a & queries_b),
                   images=len(pictures_a & pictures_b))
