"""Metadata features: task one-hot against the training vocabulary (+ unknown / absent
flags) and signed-hashed ``column=value`` tokens for the categorical metadata columns."""

from __future__ import annotations

import numpy as np

from lrcal.features.spec import FeatureSpec, iter_categorical_tokens
from lrcal.features.text import signed_bucket


def task_position(vocab: tuple[str, ...], task: str, index: dict[str, int] | None = None) -> int | None:
    """``task``'s index in the training vocabulary: the exact label, else the one label equal to
    it but for case and spacing (`--task jigsaw` and a header "Jigsaw " are the task Jigsaw);
    None when it names no training task."""
    lookup = index if index is not None else {t: i for i, t in enumerate(vocab)}
    position = lookup.get(task)
    if position is None:
        key = _folded(task)
        matches = [i for i, label in enumerate(vocab) if _folded(label) == key]
        position = matches[0] if len(matches) == 1 else None
    return position


def _folded(label: str) -> str:
    return " ".join(label.split()).casefold()


def task_features(spec: FeatureSpec, task: str | None, index: dict[str, int] | None = None) -> np.ndarray:
    vocab = spec.task_vocab
    out = np.zeros(len(vocab) + 2, dtype=np.float32)
    if not task:
        out[len(vocab) + 1] = 1.0
        return out
    position = task_position(vocab, task, index)
    out[len(vocab) if position is None else position] = 1.0
    return out


def metadata_features(spec: FeatureSpec, metadata: dict[str, str]) -> np.ndarray:
    out = np.zeros(spec.meta_dim, dtype=np.float32)
    for token in iter_categorical_tokens(spec, metadata):
        key = signed_bucket("m:" + token, spec.meta_dim)
        out[abs(key) - 1] += 1.0 if key > 0 else -1.0
    return out
