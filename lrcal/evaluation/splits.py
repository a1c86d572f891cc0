"""Stratified train / validation / test splits and k-fold partitions (by task)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _strata(tasks: Sequence[str | None]) -> dict[str, np.ndarray]:
    groups: dict[str, list[int]] = {}
    for i, task in enumerate(tasks):
        groups.setdefault(task or "", []).append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in sorted(groups.items())}


def stratified_split(tasks: Sequence[str | None], seed: int, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> Split:
    """Per task: shuffle with ``seed``, then the first 70% train, next 10% validation, rest test."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for idx in _strata(tasks).values():
        idx = rng.permutation(idx)
        n = len(idx)
        a = int(round(fractions[0] * n))
        b = a + int(round(fractions[1] * n))
        train.append(idx[:a])
        val.append(idx[a:b])
        test.append(idx[b:])
    cat = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return Split(cat(train), cat(val), cat(test))


def stratified_folds(tasks: Sequence[str | None], n_folds: int, seed: int) -> list[np.ndarray]:
    """Disjoint folds covering every row once, each stratified by task."""
    rng = np.random.default_rng(seed)
    folds: list[list[np.ndarray]] = [[] for _ in range(n_folds)]
    offset = 0
    for idx in _strata(tasks).values():
        idx = rng.permutation(idx)
        for j in range(n_folds):
            folds[(j + offset) % n_folds].append(idx[j::n_folds])
        offset += len(idx) % n_folds  # keep fold sizes balanced across strata
    return [np.sort(np.concatenate(parts)) for parts in folds]
