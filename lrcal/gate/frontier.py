"""Quality–cost and quality–latency frontiers of router policies over a fixed λ grid.

The x axis is normalized over the *pool* (the range between the cheapest/fastest and
the most expensive/slowest single-model policy), never over a policy's own span, so
a router that always picks one model cannot score a large area by shrinking its axis.
"""

from __future__ import annotations

import numpy as np

from lrcal.gate.policies import LiveOutcomes, measure, restricted
from lrcal.router.policy import Policy, policy_choice

# Fixed grid (documented; not tuned per run). λ is in units of quality per unit of
# pool-normalized cost/latency: λ = 1 trades the whole pool's cost range for 1.0 accuracy.
LAMBDA_GRID: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def sweep(
    live: LiveOutcomes,
    predicted: np.ndarray,
    expected_cost: np.ndarray,
    expected_latency: np.ndarray,
    available: np.ndarray,
    *,
    axis: str,
    pool: np.ndarray | None = None,
    grid: tuple[float, ...] = LAMBDA_GRID,
    capable: np.ndarray | None = None,
) -> list[dict]:
    """The router's policy over ``available`` at each λ of ``grid`` on one axis, measured live;
    cost/latency are normalized over ``pool`` (default: the available models). ``capable``
    [N, M]: which models may take each query (an image never goes to a text-only model)."""
    points = []
    allowed = restricted(available, capable)
    pool = np.asarray(available, dtype=bool) if pool is None else pool
    for lam in grid:
        policy = Policy(lambda_cost=lam) if axis == "cost" else Policy(lambda_latency=lam)
        choice = policy_choice(predicted, allowed, policy, expected_cost=expected_cost,
                               expected_latency=expected_latency, pool=pool).choice  # fmt: skip
        result = measure("sweep", choice, live, with_tasks=False)
        points.append(
            {
                "lambda": lam,
                "quality": result.quality,
                "cost_usd_mean": result.cost_usd_mean,
                "latency_ms_p95": result.latency_ms_p95,
            }
        )
    return points


def pool_range(live: LiveOutcomes, available: np.ndarray, axis: str) -> tuple[float, float]:
    """x range spanned by the single-model policies of the available pool."""
    idx = np.flatnonzero(np.asarray(available, dtype=bool))
    values = []
    for j in idx:
        answered = ~live.errors[:, j]
        if not answered.any():
            continue
        column = live.cost_usd[answered, j] if axis == "cost" else live.latency_ms[answered, j]
        values.append(float(column.mean()) if axis == "cost" else float(np.percentile(column, 95)))
    return (min(values), max(values)) if values else (0.0, 0.0)


def _x(point: dict, axis: str) -> float:
    return point["cost_usd_mean"] if axis == "cost" else point["latency_ms_p95"]


def frontier_area(points: list[dict], axis: str, x_range: tuple[float, float]) -> float:
    """Area under the best-quality-at-or-below-x step function, x normalized to [0, 1]."""
    lo, hi = x_range
    span = hi - lo
    if span <= 1e-12:
        return max(p["quality"] for p in points) if points else 0.0
    xs = np.linspace(0.0, 1.0, 201)
    norm = [(min(max((_x(p, axis) - lo) / span, 0.0), 1.0), p["quality"]) for p in points]
    values = []
    for x in xs:
        reachable = [q for px, q in norm if px <= x + 1e-9]
        values.append(max(reachable) if reachable else 0.0)
    return float(np.trapezoid(values, xs))


def dominates(a: list[dict], b: list[dict], axis: str, tolerance: float = 1e-9) -> bool:
    """True when every point of b is matched by a point of a that is at least as good and as cheap."""
    for pb in b:
        if not any(pa["quality"] >= pb["quality"] - tolerance and _x(pa, axis) <= _x(pb, axis) + tolerance for pa in a):
            return False
    return True


def frontiers(
    live: LiveOutcomes,
    predicted_with: np.ndarray,
    predicted_without: np.ndarray,
    expected_cost: np.ndarray,
    expected_latency: np.ndarray,
    with_mask: np.ndarray,
    without_mask: np.ndarray,
    *,
    capable: np.ndarray | None = None,
) -> dict:
    """Both router policies swept over λ; "without" routes on predictions made with the
    candidate out of the pool (``predicted_without``), as it would be in production."""
    out: dict = {"lambda_grid": list(LAMBDA_GRID)}
    pool = np.asarray(with_mask, dtype=bool) | np.asarray(without_mask, dtype=bool)  # one λ scale for both
    for axis in ("cost", "latency"):
        with_points = sweep(live, predicted_with, expected_cost, expected_latency, with_mask, axis=axis, pool=pool,
                            capable=capable)
        without_points = sweep(live, predicted_without, expected_cost, expected_latency, without_mask, axis=axis,
                               pool=pool, capable=capable)  # fmt: skip
        x_range = pool_range(live, with_mask, axis)
        out[axis] = {
            "router_with": with_points,
            "router_without": without_points,
            "area_with": frontier_area(with_points, axis, x_range),
            "area_without": frontier_area(without_points, axis, x_range),
            "x_range": list(x_range),
            "with_dominates_without": dominates(with_points, without_points, axis),
        }
    return out
