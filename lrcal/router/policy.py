"""Routing policy: utility = mu_tilde - lambda_cost * cost_norm - lambda_latency * latency_norm
[- kappa * sigma], argmax over the available models. `policy_choice` is the one decision that
every surface routes with: `Router.route` (through `utility` and `choose`), `lrcal route`, live
validation's router policies and frontiers, and the review service behind `lrcal tui`.

Expected cost and latency are *predicted before the call* -- a model's prices times its
expected token counts, its latency profile -- never the realized values of the query being
routed. They are min-max normalized over the *pool* of the decision (by default the available
models; live validation normalizes its with- and without-candidate policies over the same
pool), not over the models a router happens to pick, so lambda means the same thing whichever
model wins. An unknown (NaN) expected cost or latency counts as the pool's worst.

Imports numpy only (no torch): the TUI re-routes cached predictions with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrcal.errors import UsageError


@dataclass(frozen=True)
class Policy:
    lambda_cost: float = 0.0
    lambda_latency: float = 0.0
    risk_kappa: float = 0.0  # utility uses mu_tilde - kappa * sigma

    def __post_init__(self) -> None:
        for name in ("lambda_cost", "lambda_latency", "risk_kappa"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise UsageError(f"{name.replace('_', '-')} must be a finite number >= 0 (got {value})")


@dataclass(frozen=True)
class PolicyChoice:
    choice: np.ndarray  # [N] index of the chosen model, -1 where none is available
    utility: np.ndarray  # [N, K], -inf for unavailable models


def expected_cost_usd(price_in_per_mtok: float, price_out_per_mtok: float, input_tokens: float, output_tokens: float) -> float:
    """Cost of one call predicted from prices (USD per million tokens) and expected token counts."""
    return (price_in_per_mtok * input_tokens + price_out_per_mtok * output_tokens) / 1e6


def normalize_over_pool(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Min-max normalize per row over the pool's models (``pool``: [N, K] mask); unknown (NaN)
    values count as the pool's worst (1.0); a pool where all known values are equal gives 0."""
    values = np.asarray(values, dtype=np.float64)
    pool = np.asarray(pool, dtype=bool)
    if values.ndim == 1:
        values = np.broadcast_to(values, pool.shape)
    known = pool & np.isfinite(values)
    big = np.where(known, values, -np.inf).max(axis=1, keepdims=True)
    small = np.where(known, values, np.inf).min(axis=1, keepdims=True)
    span = big - small
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(span > 0, (values - small) / np.where(span > 0, span, 1.0), 0.0)
    norm = np.where(np.isfinite(values), norm, 1.0)
    return np.where(pool, np.clip(norm, 0.0, 1.0), 0.0)


def utility(
    score: np.ndarray,
    available: np.ndarray,
    policy: Policy = Policy(),
    *,
    sigma: np.ndarray | None = None,
    expected_cost: np.ndarray | None = None,
    expected_latency: np.ndarray | None = None,
    pool: np.ndarray | None = None,
) -> np.ndarray:
    """[N, K] utility; unavailable models get -inf. ``available`` and ``pool``: [K] or [N, K]
    masks (``pool``, default ``available``: the models cost/latency are normalized over; it
    always includes the available ones). expected_cost / expected_latency: [K] or [N, K]."""
    score = np.asarray(score, dtype=np.float64)
    available = np.broadcast_to(np.asarray(available, dtype=bool), score.shape)
    pool = available if pool is None else available | np.broadcast_to(np.asarray(pool, dtype=bool), score.shape)
    u = score.copy()
    if policy.risk_kappa and sigma is not None:
        u = u - policy.risk_kappa * np.asarray(sigma, dtype=np.float64)
    if policy.lambda_cost and expected_cost is not None:
        u = u - policy.lambda_cost * normalize_over_pool(expected_cost, pool)
    if policy.lambda_latency and expected_latency is not None:
        u = u - policy.lambda_latency * normalize_over_pool(expected_latency, pool)
    return np.where(available, u, -np.inf)


def choose(util: np.ndarray) -> np.ndarray:
    """Index of the best available model per row (-1 where none is available)."""
    util = np.asarray(util, dtype=np.float64)
    pick = util.argmax(axis=1)
    none = ~np.isfinite(util).any(axis=1)
    pick[none] = -1
    return pick


def policy_choice(score: np.ndarray, available: np.ndarray, policy: Policy = Policy(), **inputs) -> PolicyChoice:
    """The routing decision: per query, the available model of highest `utility` (and the
    utilities). ``inputs``: `utility`'s sigma, expected_cost, expected_latency and pool."""
    util = utility(score, available, policy, **inputs)
    return PolicyChoice(choice=choose(util), utility=util)
