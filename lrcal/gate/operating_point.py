"""The recommended λ operating point on the quality–cost frontier (router with the candidate).

Among the λ_cost values of the fixed grid at or above the current one, the recommendation is
the cheapest routing (mean live cost) whose quality is non-inferior to routing at the current
λ -- the paired lower bound of the quality difference ≥ −tolerance -- and whose p95 latency
rises by no more than the latency bound (the paired upper bound). Each grid point is tested at
error rate α / (number of points tried), so picking the cheapest survivor among many noisy
comparisons does not inflate the chance of a quality loss (the winner's curse). The current λ
itself is always eligible: when no cheaper point is safe, it is the recommendation.
"""

from __future__ import annotations

import numpy as np

from lrcal.gate.decision import GateConfig
from lrcal.gate.frontier import LAMBDA_GRID
from lrcal.gate.intervals import mean_cost_ratio, p95_ratio, quality_difference, upper_quantile
from lrcal.gate.policies import LiveOutcomes, measure, paired_outcomes, restricted
from lrcal.router.policy import Policy, policy_choice


def recommend_lambda(
    live: LiveOutcomes,
    predicted: np.ndarray,
    expected_cost: np.ndarray,
    expected_latency: np.ndarray,
    available: np.ndarray,
    current: Policy,
    gate: GateConfig,
    grid: tuple[float, ...] = LAMBDA_GRID,
    *,
    capable: np.ndarray | None = None,
) -> dict:
    """The recommended point; ``gate`` gives the quality tolerance, the p95 bound, the error
    rate α and the bootstrap (size and seed). ``capable`` [N, M]: which models may take each
    query (an image never goes to a text-only model); cost and latency stay normalized over
    ``available``."""
    allowed = restricted(available, capable)

    def choice(lambda_cost: float) -> np.ndarray:
        policy = Policy(lambda_cost=lambda_cost, lambda_latency=current.lambda_latency, risk_kappa=current.risk_kappa)
        return policy_choice(predicted, allowed, policy, expected_cost=expected_cost,
                             expected_latency=expected_latency, pool=available).choice  # fmt: skip

    base = choice(current.lambda_cost)
    base_result = measure("current", base, live, with_tasks=False)
    tried = [lam for lam in grid if lam > current.lambda_cost]
    z = upper_quantile(gate.error_rate / max(1, len(tried)))
    best = _point(current.lambda_cost, base_result, None)
    for lam in tried:
        routed = choice(lam)
        paired, _ = paired_outcomes(live, routed, base)
        if paired.n == 0:
            continue
        rows = paired.resampled_rows(gate.bootstrap, gate.seed)
        quality, p95 = quality_difference(paired, rows, z), p95_ratio(paired, rows, z)
        result = measure("lambda", routed, live, with_tasks=False)
        safe = quality.low >= -gate.quality_tolerance and p95.high <= 1 + gate.max_p95_increase
        if safe and result.cost_usd_mean < best["cost_usd_mean"] - 1e-15:
            best = _point(lam, result, {"quality": quality.as_dict(), "p95_ratio": p95.as_dict(),
                                        "cost_ratio": mean_cost_ratio(paired, rows, z).as_dict()})  # fmt: skip
    best.update(lambda_latency=current.lambda_latency, current_lambda_cost=current.lambda_cost,
                current_quality=base_result.quality, current_cost_usd_mean=base_result.cost_usd_mean,
                points_tried=len(tried), z=z)  # fmt: skip
    return best


def _point(lambda_cost: float, result, versus_current: dict | None) -> dict:
    return {"lambda_cost": lambda_cost, "quality": result.quality, "cost_usd_mean": result.cost_usd_mean,
            "latency_ms_p95": result.latency_ms_p95, "versus_current": versus_current}  # fmt: skip
