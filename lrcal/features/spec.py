"""`FeatureSpec`: everything that fixes the meaning of a feature vector.

A router artifact stores its spec; loading with a different spec is refused, because a
weight trained on hashed bucket 17 meaning one thing must not read a vector where it means
another. The only fitted parts are the task vocabulary and the list of categorical metadata
columns, both read from the training table (never from outcomes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Iterable, Sequence

from lrcal.errors import LrcalError

FEATURE_FORMAT_VERSION = 1
# How pixels are decoded (`lrcal.features.image.load_working_copy`): 1, `convert("RGB")` as
# pillow gives it (16-bit and float images clipped, transparency onto black, EXIF orientation
# ignored); 2, `lrcal.pixels.to_rgb` after the EXIF orientation. A spec saved without the field
# is version 1, so a router keeps reading pixels as it was trained to.
IMAGE_DECODE_VERSION = 2

# Metadata columns that can carry the answer or an outcome; never features.
FORBIDDEN_METADATA = frozenset(
    {
        "answer", "answers", "gt", "gt_answer", "ground_truth", "label", "labels", "target",
        "solution", "solutions", "rationale", "explanation", "reference", "reference_answer",
        "correct", "score", "cost", "latency_ms", "tokens", "prediction", "response", "output",
        "difficulty",
    }
)
FORBIDDEN_METADATA_SUFFIXES = ("_correct", "_cost", "_token", "_tokens", "_latency_ms", "_prediction", "_error",
                               "_score", "_answer", "_response", "_output")
# Answer options are part of what the model is shown: text, not a category.
CHOICE_COLUMNS = ("choices", "options")
# Columns whose values identify the sample rather than describe it.
ID_LIKE = frozenset({"sample_id", "dataset_idx", "id", "pid", "idx", "image", "image_paths", "image_path", "images",
                     "question", "query", "prompt", "task"})


@dataclass(frozen=True)
class FeatureSpec:
    word_dim: int = 512
    char_dim: int = 512
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    max_text_chars: int = 4000
    thumb_size: int = 16
    image_proj_dim: int = 32
    max_images: int = 4
    meta_dim: int = 64
    seed: int = 0
    task_vocab: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    version: int = FEATURE_FORMAT_VERSION
    image_decode: int = IMAGE_DECODE_VERSION
    blocks: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "word_ngrams", tuple(self.word_ngrams))
        object.__setattr__(self, "char_ngrams", tuple(self.char_ngrams))
        object.__setattr__(self, "task_vocab", tuple(self.task_vocab))
        object.__setattr__(self, "categorical_columns", tuple(self.categorical_columns))
        from lrcal.features.image import IMAGE_STAT_NAMES
        from lrcal.features.text import CUE_NAMES

        sizes = [
            ("word", self.word_dim),
            ("char", self.char_dim),
            ("cues", len(CUE_NAMES)),
            ("image", len(IMAGE_STAT_NAMES) + self.image_proj_dim),
            ("task", len(self.task_vocab) + 2),  # + unknown, + absent
            ("meta", self.meta_dim),
        ]
        start, blocks = 0, {}
        for name, size in sizes:
            blocks[name] = (start, start + size)
            start += size
        object.__setattr__(self, "blocks", blocks)

    @property
    def dim(self) -> int:
        return max(end for _, end in self.blocks.values())

    def block(self, name: str) -> slice:
        start, end = self.blocks[name]
        return slice(start, end)

    # ---- persistence ---------------------------------------------------------
    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "blocks"}
        if out["image_decode"] == 1:  # as specs were saved before the field: same JSON, same fingerprint
            del out["image_decode"]
        out = json.loads(json.dumps(out))  # tuples -> lists
        out["dim"] = self.dim
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        if not isinstance(data, dict):
            raise LrcalError("feature spec: expected an object")
        version = data.get("version")
        if version != FEATURE_FORMAT_VERSION:
            raise LrcalError(f"feature spec version {version!r} is not supported (this lrcal reads version {FEATURE_FORMAT_VERSION})")
        known = {f.name for f in fields(cls)} - {"blocks"}
        data = {"image_decode": 1, **data}  # saved before pixels were decoded by lrcal.pixels
        if data["image_decode"] not in (1, IMAGE_DECODE_VERSION):
            raise LrcalError(f"feature spec image decoding {data['image_decode']!r} is not supported (this lrcal reads "
                             f"1 and {IMAGE_DECODE_VERSION})")
        try:
            spec = cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise LrcalError(f"feature spec is malformed ({exc})") from None
        if "dim" in data and data["dim"] != spec.dim:
            raise LrcalError(f"feature spec declares dim {data['dim']} but its fields give {spec.dim}")
        return spec

    def fingerprint(self) -> str:
        payload = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(payload).hexdigest()[:16]

    def check_same(self, other: "FeatureSpec", what: str = "router artifact") -> None:
        """Refuse a spec mismatch with the first differing field named."""
        mine, theirs = self.to_dict(), other.to_dict()
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                raise LrcalError(
                    f"{what}: feature spec mismatch on '{key}' (expected {_brief(theirs.get(key))}, got {_brief(mine.get(key))})"
                )


def _brief(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def is_forbidden_metadata(column: str) -> bool:
    low = column.strip().lower()
    return low in FORBIDDEN_METADATA or low.endswith(FORBIDDEN_METADATA_SUFFIXES)


def fit_feature_spec(
    tasks: Sequence[str | None],
    metadata: Sequence[dict[str, str]],
    *,
    max_categorical_values: int = 64,
    min_task_count: int = 1,
    **overrides,
) -> FeatureSpec:
    """The spec for a training table: task vocabulary and categorical metadata columns.

    A column is categorical when it is not an id/answer/outcome column and has at most
    ``max_categorical_values`` distinct values that each repeat (so free text and ids are not).
    """
    counts: dict[str, int] = {}
    for task in tasks:
        if task:
            counts[task] = counts.get(task, 0) + 1
    vocab = tuple(sorted(t for t, c in counts.items() if c >= min_task_count))
    values: dict[str, dict[str, int]] = {}
    for meta in metadata:
        for column, value in meta.items():
            values.setdefault(column, {})
            bucket = values[column]
            if len(bucket) <= max_categorical_values:
                key = _norm_value(value)
                bucket[key] = bucket.get(key, 0) + 1
    categorical = []
    for column, bucket in values.items():
        low = column.strip().lower()
        if is_forbidden_metadata(column) or low in ID_LIKE or low in CHOICE_COLUMNS:
            continue
        if 1 <= len(bucket) <= max_categorical_values and sum(bucket.values()) >= 2 * len(bucket):
            categorical.append(column)
    return FeatureSpec(task_vocab=vocab, categorical_columns=tuple(sorted(categorical)), **overrides)


def _norm_value(value: str) -> str:
    return " ".join(str(value).split()).lower()[:200]


def choice_texts(metadata: dict[str, str]) -> list[str]:
    """Answer options shown to the model (a JSON list, or a newline/"|"-separated string)."""
    for column, value in metadata.items():
        if column.strip().lower() in CHOICE_COLUMNS and value and value.strip():
            text = value.strip()
            if text.startswith("["):
                try:
                    items = json.loads(text)
                    if isinstance(items, list):
                        return [str(x) for x in items][:26]
                except (json.JSONDecodeError, RecursionError):
                    pass
            sep = "\n" if "\n" in text else ("|" if "|" in text else None)
            return [x.strip() for x in (text.split(sep) if sep else [text]) if x.strip()][:26]
    return []


def iter_categorical_tokens(spec: FeatureSpec, metadata: dict[str, str]) -> Iterable[str]:
    for column in spec.categorical_columns:
        value = metadata.get(column)
        if value is not None and str(value).strip():
            yield f"{column}={_norm_value(value)}"
