"""The sequential gate's plan: when it looks, and how wide each look's intervals are.

Group-sequential **alpha spending** (Lan & DeMets 1983) with the Pocock-type spending
function α(t) = α·ln(1 + (e − 1)·t), t = examples seen / examples planned. The looks are
planned before the first request (every ``batch`` examples up to the planned maximum), and
look k's boundary z_k is set so that, for a statistic whose look-by-look z-scores behave like
a Brownian motion in information time (a mean, a ratio of means, a quantile -- each
asymptotically), the chance of crossing on the wrong side *for the first time* at look k is
α(t_k) − α(t_{k−1}). Summed over every look, a rule's verdict is wrong with probability at
most α, however many looks are taken and wherever the run stops. The boundaries come from the
exact joint law of the look statistics (correlation sqrt(n_j / n_k)), by Monte Carlo with a
fixed seed, so the same plan always gives the same z's.

Why spending and not a confidence sequence: the gate's statistics are a mean difference of
bounded scores, a ratio of p95 latencies and a ratio of mean costs; time-uniform confidence
sequences (Howard et al. 2021) need bounded or sub-Gaussian increments, which a ratio of
latency quantiles does not have. The gate only ever looks after a batch, so a planned set of
looks costs nothing, and Pocock-type spending spends early, where stopping saves requests.
A fixed-n interval recomputed after every batch does *not* hold its error rate
(tests/test_gate_sequential.py measures both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lrcal.gate.intervals import upper_quantile

MONTE_CARLO_PATHS = 400_000
MONTE_CARLO_CELLS = 20_000_000  # paths × looks held in memory at most


def spent_alpha(fraction: float, alpha: float) -> float:
    """Pocock-type spending: α(t) = α·ln(1 + (e − 1)·t), with α(0) = 0 and α(1) = α."""
    t = min(max(fraction, 0.0), 1.0)
    return alpha * math.log(1.0 + (math.e - 1.0) * t)


def look_sizes(planned: int, batch: int | None) -> tuple[int, ...]:
    """Examples seen at each look: every ``batch`` up to ``planned`` (one look without a batch)."""
    if planned < 1:
        return ()
    if batch is None or batch >= planned:
        return (planned,)
    sizes = list(range(batch, planned, batch))
    return tuple(sizes + [planned])


@dataclass(frozen=True)
class LookPlan:
    looks: tuple[int, ...]  # examples seen at each look
    alpha: float  # error rate per rule, over all looks
    z: tuple[float, ...]  # one-sided boundary of each look

    @property
    def planned(self) -> int:
        return self.looks[-1] if self.looks else 0

    def spent(self, look: int) -> float:
        """Error rate spent up to and including ``look`` (0-based)."""
        return spent_alpha(self.looks[look] / self.planned, self.alpha)

    def as_dict(self) -> dict:
        return {"method": "alpha spending (Lan-DeMets, Pocock-type)", "alpha": self.alpha,
                "looks": list(self.looks), "z": [round(z, 4) for z in self.z]}  # fmt: skip


def plan_looks(planned: int, batch: int | None, alpha: float) -> LookPlan:
    looks = look_sizes(planned, batch)
    return LookPlan(looks=looks, alpha=alpha, z=boundaries(looks, alpha))


@lru_cache(maxsize=64)
def boundaries(looks: tuple[int, ...], alpha: float) -> tuple[float, ...]:
    """One-sided z boundary per look for the Pocock-type spending of ``alpha``."""
    if not looks:
        return ()
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"error rate must be in (0, 0.5), got {alpha}")
    planned = looks[-1]
    spent = [spent_alpha(n / planned, alpha) for n in looks]
    steps = [spent[0]] + [b - a for a, b in zip(spent, spent[1:])]
    if len(looks) == 1:
        return (upper_quantile(steps[0]),)
    # Z_k = W(n_k) / sqrt(n_k) for a standard Brownian motion W: independent normal increments.
    paths = max(20_000, min(MONTE_CARLO_PATHS, MONTE_CARLO_CELLS // len(looks)))
    rng = np.random.default_rng(20240519)
    increments = rng.standard_normal((paths, len(looks)), dtype=np.float32)
    increments *= np.sqrt(np.diff((0,) + looks)).astype(np.float32)
    z_paths = np.cumsum(increments, axis=1) / np.sqrt(np.asarray(looks, np.float32))
    alive = np.ones(paths, dtype=bool)
    result = [upper_quantile(steps[0])]
    alive &= z_paths[:, 0] <= result[0]
    for k in range(1, len(looks)):
        crossings = int(round(steps[k] * paths))
        remaining = np.sort(z_paths[alive, k])[::-1]
        if crossings < 1 or crossings >= remaining.size:
            z = upper_quantile(steps[k])  # too little to spend for the sample: the Bonferroni bound
        else:
            z = float((remaining[crossings - 1] + remaining[crossings]) / 2.0)
        result.append(z)
        alive &= z_paths[:, k] <= z
    return tuple(result)
