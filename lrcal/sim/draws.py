"""Deterministic pseudo-random draws keyed by strings (same key, same value, any process)."""

from __future__ import annotations

import hashlib
import math
import random


def _digest(parts: tuple[object, ...]) -> bytes:
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()


def unit(*parts: object) -> float:
    """A uniform draw in [0, 1) determined by ``parts``."""
    return int.from_bytes(_digest(parts), "big") / 2.0**64


def rng(*parts: object) -> random.Random:
    """A ``random.Random`` seeded by ``parts`` (for several related draws)."""
    return random.Random(int.from_bytes(_digest(parts), "big"))


def lognormal_factor(spread: float, *parts: object) -> float:
    """exp(N(0, spread²)): a multiplicative jitter with median 1."""
    if spread <= 0:
        return 1.0
    return math.exp(rng(*parts).gauss(0.0, spread))
