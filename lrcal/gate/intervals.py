"""Intervals behind the gate's rules: paired bootstrap over the same queries, Wilson for shares.

Each interval is ``estimate ± z·SE`` (on the log scale for ratios), with SE the standard
deviation of the paired bootstrap replicates: every replicate resamples *queries*, and each
resampled query keeps both of its outcomes (with the candidate, without it), so the
correlation between the two policies -- same query, same difficulty -- stays in. A normal
interval with a bootstrap SE (rather than bootstrap percentiles) because the sequential gate
asks for z far in the tail (``lrcal.gate.sequential``), where 2,000 percentiles say little.

``z`` comes from the caller: the sequential plan's boundary at the current look (a normal
quantile). The bootstrap intervals widen it to the Student t quantile of the same tail with
n − 1 degrees of freedom and correct the plug-in SE by sqrt(n / (n − 1)): at 24 queries a normal
interval around a bootstrap SE misses a one-sided 1.3 % tail about 1.8 % of the time
(tests/test_gate_sequential.py measured it), the t version holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    se: float  # on the scale the interval was built (log for ratios)

    def as_dict(self) -> dict:
        return {"estimate": _finite(self.estimate), "low": _finite(self.low), "high": _finite(self.high),
                "se": _finite(self.se)}  # fmt: skip


def upper_quantile(tail: float) -> float:
    """z with P(Z > z) = ``tail`` for a standard normal Z."""
    return NormalDist().inv_cdf(1.0 - tail)


_CORNISH_FISHER_FROM = 200  # degrees of freedom where the two-term expansion is within 1e-4 of exact


def student_t(z: float, dof: int) -> float:
    """The Student t quantile with the tail of the normal quantile ``z``: exact (the closed-form
    t distribution of integer degrees of freedom, inverted by bisection) below 200 degrees of
    freedom, the two-term Cornish–Fisher expansion from there. The expansion alone was far too
    narrow at the small looks `--batch` allows: 10.5 against 25.3 at one degree of freedom for
    z = 2.24, 5.1 against 6.2 at two."""
    if dof < 1 or not math.isfinite(z):
        return math.inf
    expansion = z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)
    if dof >= _CORNISH_FISHER_FROM or z <= 0:
        return expansion
    tail = 1.0 - NormalDist().cdf(z)
    low, high = z, max(expansion, z + 1.0)
    while t_upper_tail(high, dof) > tail:  # the expansion undershoots where the tail is heavy
        low, high = high, high * 2
    for _ in range(100):
        mid = 0.5 * (low + high)
        if t_upper_tail(mid, dof) > tail:
            low = mid
        else:
            high = mid
        if high - low < 1e-10 * high:
            break
    return 0.5 * (low + high)


def t_upper_tail(t: float, dof: int) -> float:
    """P(T > t) for a Student t of integer ``dof`` and t ≥ 0 (Abramowitz & Stegun 26.7.3–4)."""
    theta = math.atan(t / math.sqrt(dof))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if dof % 2 == 1:
        total, term = 0.0, s * math.cos(theta)
        for k in range(1, (dof - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        inside = (2 / math.pi) * (theta + total) if dof > 1 else 2 * theta / math.pi
    else:
        total, term = 0.0, 1.0
        for k in range(dof // 2):
            total += term
            term *= c2 * (2 * k + 1) / (2 * k + 2)
        inside = s * total
    return max(0.0, (1.0 - inside) / 2)


def _bootstrap_se(replicates: np.ndarray, n: int) -> float:
    """SD of the bootstrap replicates, corrected for the plug-in variance's (n − 1) / n."""
    return float(np.std(replicates)) * math.sqrt(n / max(n - 1, 1))


@dataclass
class PairedOutcomes:
    """What the two policies got on the same queries (one entry per query, both columns)."""

    quality_with: np.ndarray
    quality_without: np.ndarray
    cost_with: np.ndarray
    cost_without: np.ndarray
    latency_with: np.ndarray
    latency_without: np.ndarray

    @property
    def n(self) -> int:
        return int(len(self.quality_with))

    def resampled_rows(self, n_boot: int, seed: int) -> np.ndarray:
        """[n_boot, n] query indices, drawn with replacement (one paired bootstrap replicate per row)."""
        return np.random.default_rng(seed).integers(0, self.n, size=(n_boot, self.n))


def quality_difference(paired: PairedOutcomes, rows: np.ndarray, z: float) -> Interval:
    """Mean quality with the candidate − without it, in score units (1.0 = 100 points).

    The SE is never below that of one full-point difference among n + 2 queries: without it a
    sample where no outcome happened to differ would claim a zero-width interval."""
    diff = np.asarray(paired.quality_with, float) - np.asarray(paired.quality_without, float)
    n = diff.size
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, math.inf)
    estimate = float(diff.mean())
    se = max(_bootstrap_se(diff[rows].mean(axis=1), n), math.sqrt(1.0 / ((n + 2) * n)))
    t = student_t(z, n - 1)
    return Interval(estimate, estimate - t * se, estimate + t * se, se)


def p95_ratio(paired: PairedOutcomes, rows: np.ndarray, z: float) -> Interval:
    """p95 latency with the candidate / without it."""
    return _ratio(lambda a: np.percentile(a, 95, axis=-1), paired.latency_with, paired.latency_without, rows, z)


def mean_cost_ratio(paired: PairedOutcomes, rows: np.ndarray, z: float) -> Interval:
    """Mean cost per query with the candidate / without it."""
    return _ratio(lambda a: np.mean(a, axis=-1), paired.cost_with, paired.cost_without, rows, z)


def _ratio(statistic, with_values: np.ndarray, without_values: np.ndarray, rows: np.ndarray, z: float) -> Interval:
    a, b = np.asarray(with_values, float), np.asarray(without_values, float)
    if a.size == 0:
        return Interval(math.nan, 0.0, math.inf, math.inf)
    if not np.any(a != b):
        # the candidate changed no query's value yet (it was routed none): every replicate is
        # 1 and the SE 0, an interval [1, 1] that passed the bounds and failed the saving for
        # good at the first look; nothing about the candidate is measured, so nothing is decided
        return Interval(1.0, 0.0, math.inf, math.inf)
    num, den = float(statistic(a)), float(statistic(b))
    if den <= 0.0:  # free models (or no latency): a ratio only when both are zero
        return Interval(1.0, 1.0, 1.0, 0.0) if num <= 0.0 else Interval(math.inf, math.inf, math.inf, 0.0)
    if num <= 0.0:
        return Interval(0.0, 0.0, 0.0, 0.0)
    num_b, den_b = statistic(a[rows]), statistic(b[rows])
    ok = (num_b > 0) & (den_b > 0)
    log_ratio = math.log(num / den)
    se = _bootstrap_se(np.log(num_b[ok] / den_b[ok]), a.size) if ok.any() else math.inf
    t = student_t(z, a.size - 1)
    return Interval(num / den, math.exp(log_ratio - t * se), math.exp(log_ratio + t * se), se)


def wilson(successes: float, n: int, z: float) -> Interval:
    """Wilson score interval of a proportion (``z`` standard errors each side)."""
    if n <= 0:
        return Interval(math.nan, 0.0, 1.0, math.inf)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), math.sqrt(p * (1 - p) / n))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
