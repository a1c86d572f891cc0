"""Routing metrics: accuracy, pick diversity, quality-cost frontier (nAUC, Ps, QNC), paired
differences over seeds."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lrcal.router.policy import Policy, policy_choice

LAMBDA_GRID = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


def pick_stats(pick: np.ndarray, models: Sequence[str]) -> dict:
    ok = pick[pick >= 0]
    if ok.size == 0:
        return {"distinct_models": 0, "top_pick": None, "top_pick_share": float("nan")}
    counts = np.bincount(ok, minlength=len(models))
    top = int(counts.argmax())
    return {"distinct_models": int((counts > 0).sum()), "top_pick": models[top], "top_pick_share": float(counts[top] / ok.size)}


def realized(pick: np.ndarray, values: np.ndarray) -> float:
    ok = pick >= 0
    v = values[np.flatnonzero(ok), pick[ok]]
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def frontier(
    score: np.ndarray,
    y: np.ndarray,
    realized_cost: np.ndarray,
    expected_cost: np.ndarray,
    lambdas: Sequence[float] = LAMBDA_GRID,
) -> list[dict]:
    """Quality and realized mean cost on the test rows for each lambda. The policy sees only
    ``expected_cost`` (per model, from training rows); ``realized_cost`` is for scoring."""
    avail = np.isfinite(y)
    points = []
    for lam in lambdas:
        pick = policy_choice(score, avail, Policy(lambda_cost=lam), expected_cost=expected_cost).choice
        ok = pick >= 0
        points.append({
            "lambda": float(lam),
            "accuracy": float(y[np.flatnonzero(ok), pick[ok]].mean()) if ok.any() else float("nan"),
            "cost": realized(pick, realized_cost),
        })
    return points


def pool_cost_range(y: np.ndarray, realized_cost: np.ndarray) -> tuple[float, float]:
    """Cheapest and dearest model's mean realized cost on these rows (the pool's range)."""
    means = []
    for k in range(y.shape[1]):
        c = realized_cost[:, k]
        c = c[np.isfinite(c) & np.isfinite(y[:, k])]
        if c.size:
            means.append(float(c.mean()))
    return (min(means), max(means)) if means else (0.0, 0.0)


def nauc(points: list[dict], cost_lo: float, cost_hi: float) -> float:
    """Area under the best-quality-at-or-below-cost curve, cost normalized to the pool's
    range [cheapest model, dearest model] (never to the router's own span)."""
    span = cost_hi - cost_lo
    if span <= 0:
        return float(max((p["accuracy"] for p in points), default=float("nan")))
    pts = sorted(((min(max((p["cost"] - cost_lo) / span, 0.0), 1.0), p["accuracy"]) for p in points
                  if np.isfinite(p["cost"]) and np.isfinite(p["accuracy"])))
    if not pts:
        return float("nan")
    grid = np.linspace(0.0, 1.0, 201)
    best = np.zeros_like(grid)
    for c, a in pts:
        best = np.where(grid >= c, np.maximum(best, a), best)
    return float(np.trapezoid(best, grid) if hasattr(np, "trapezoid") else np.trapz(best, grid))


def qnc(points: list[dict], target_accuracy: float, reference_cost: float) -> float | None:
    """Cheapest frontier cost reaching ``target_accuracy`` / ``reference_cost`` (None: never)."""
    reach = [p["cost"] for p in points if np.isfinite(p["accuracy"]) and p["accuracy"] >= target_accuracy - 1e-12
             and np.isfinite(p["cost"])]
    if not reach or not reference_cost or reference_cost <= 0:
        return None
    return float(min(reach) / reference_cost)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of predicted qualities ``p`` against outcomes ``y`` (equal-width bins)."""
    p = np.asarray(p, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(float(p[m].mean()) - float(y[m].mean()))
    return total / max(len(p), 1)


def level_slope(mu: np.ndarray, y: np.ndarray) -> float | None:
    """Slope of each model's measured accuracy on its mean predicted quality, across the
    models of ``mu`` / ``y`` [N, K] (NaN = not run): 1 when the predicted gaps between models
    are the measured ones, above 1 when the predictions squeeze the models together."""
    ok = np.isfinite(y)
    cols = [j for j in range(y.shape[1]) if ok[:, j].any()]
    if len(cols) < 2:
        return None
    pred = np.array([mu[ok[:, j], j].mean() for j in cols])
    meas = np.array([y[ok[:, j], j].mean() for j in cols])
    pc, mc = pred - pred.mean(), meas - meas.mean()
    denom = float((pc * pc).sum())
    return float((pc * mc).sum() / denom) if denom > 0 else None
