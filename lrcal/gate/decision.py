"""The enable/reject decision of live validation, with its reasons in words.

Default rule (every threshold overridable from the CLI):

* **gain path** — routing with the candidate raises quality by at least ``min_gain``
  (absolute), the paired bootstrap says the gain is positive with probability at least
  ``min_confidence``, and p95 latency and mean cost rise by no more than
  ``max_p95_increase`` / ``max_cost_increase`` (relative);
* **saving path** — quality stays within ``quality_tolerance`` while mean cost or p95
  latency falls by at least ``min_saving`` (relative);
* and in both cases the **prediction check** holds: for every task group the candidate
  wins (gets most of the group's traffic), its live accuracy is inside or above the
  interval onboarding predicted — with the live estimate's own sampling error allowed
  (its Wilson upper bound must reach the predicted lower bound);
* and the candidate receives some traffic at all (``min_share``).
Otherwise the candidate is rejected.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from lrcal.gate.policies import PolicyResult


@dataclass
class GateConfig:
    lambda_cost: float = 0.0
    lambda_latency: float = 0.0
    min_gain: float = 0.02
    min_confidence: float = 0.8
    max_p95_increase: float = 0.10
    max_cost_increase: float = 0.10
    quality_tolerance: float = 0.005
    min_saving: float = 0.15
    min_share: float = 0.02
    bootstrap: int = 2000
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Decision:
    decision: str  # "validated" | "rejected"
    reasons: list[str]
    checks: dict = field(default_factory=dict)


def relative_change(new: float, old: float) -> float:
    if abs(old) <= 1e-12:
        return 0.0 if abs(new) <= 1e-12 else math.inf
    return (new - old) / abs(old)


def gain_confidence(with_scores: np.ndarray, without_scores: np.ndarray, n_boot: int, seed: int) -> float:
    """Paired bootstrap probability that mean(with − without) > 0."""
    diff = np.asarray(with_scores, dtype=float) - np.asarray(without_scores, dtype=float)
    if diff.size == 0:
        return 0.0
    if np.allclose(diff, 0.0):
        return 0.0
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_boot, diff.size))
    means = diff[idx].mean(axis=1)
    return float(np.mean(means > 0))


def wilson_interval(successes: float, n: int, z: float = 1.645) -> tuple[float, float]:
    """90% Wilson score interval of a proportion (scores in [0,1] are summed as successes)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def prediction_check(
    candidate: str,
    with_result: PolicyResult,
    live_candidate_by_task: dict[str, tuple[float, int]],
    predicted_by_task: dict[str, dict],
) -> tuple[bool, list[dict]]:
    """For task groups the candidate wins: live accuracy inside or above the predicted interval."""
    rows = []
    ok = True
    for task, stats in with_result.per_task.items():
        share = stats["share"].get(candidate, 0.0)
        if share < 0.5:
            continue
        pred = predicted_by_task.get(task)
        total, n = live_candidate_by_task.get(task, (0.0, 0))
        live_acc = total / n if n else None
        live_lo, live_hi = wilson_interval(total, n)
        if pred is None or live_acc is None:
            rows.append({"task": task, "share": share, "live": live_acc, "predicted": None, "pass": True,
                         "note": "no prediction for this group"})
            continue
        passed = live_hi >= pred["low"]
        ok = ok and passed
        rows.append(
            {
                "task": task,
                "share": share,
                "live": live_acc,
                "live_low": live_lo,
                "live_high": live_hi,
                "predicted": pred["predicted"],
                "low": pred["low"],
                "high": pred["high"],
                "pass": passed,
            }
        )
    return ok, rows


def decide(
    candidate: str,
    with_result: PolicyResult,
    without_result: PolicyResult,
    *,
    with_scores: np.ndarray,
    without_scores: np.ndarray,
    live_candidate_by_task: dict[str, tuple[float, int]],
    predicted_by_task: dict[str, dict],
    config: GateConfig,
) -> Decision:
    gain = with_result.quality - without_result.quality
    confidence = gain_confidence(with_scores, without_scores, config.bootstrap, config.seed)
    p95_change = relative_change(with_result.latency_ms_p95, without_result.latency_ms_p95)
    cost_change = relative_change(with_result.cost_usd_mean, without_result.cost_usd_mean)
    share = with_result.share.get(candidate, 0.0)
    predictions_ok, prediction_rows = prediction_check(
        candidate, with_result, live_candidate_by_task, predicted_by_task
    )

    gain_path = (
        gain >= config.min_gain
        and confidence >= config.min_confidence
        and p95_change <= config.max_p95_increase
        and cost_change <= config.max_cost_increase
    )
    saving_path = gain >= -config.quality_tolerance and (
        cost_change <= -config.min_saving or p95_change <= -config.min_saving
    )
    gets_traffic = share >= config.min_share
    accepted = (gain_path or saving_path) and predictions_ok and gets_traffic

    reasons: list[str] = []
    headline = (
        f"Routing with {candidate} gives quality {with_result.quality:.3f} vs {without_result.quality:.3f} without it "
        f"({_pts(gain)}, P(gain > 0) = {confidence:.2f}); p95 latency {with_result.latency_ms_p95:.0f} ms vs "
        f"{without_result.latency_ms_p95:.0f} ms ({_pct(p95_change)}); mean cost ${with_result.cost_usd_mean:.6f} vs "
        f"${without_result.cost_usd_mean:.6f} ({_pct(cost_change)}); {candidate} gets {share:.0%} of the queries."
    )
    reasons.append(headline)
    if gain_path:
        reasons.append(
            f"Quality gain {_pts(gain)} ≥ the required {_pts(config.min_gain)} with cost and p95 latency within "
            f"the allowances (+{config.max_cost_increase:.0%} / +{config.max_p95_increase:.0%})."
        )
    elif saving_path:
        reasons.append(
            f"Quality holds (within {_pts(config.quality_tolerance)}) while "
            + ("mean cost" if cost_change <= -config.min_saving else "p95 latency")
            + f" falls by at least {config.min_saving:.0%}."
        )
    else:
        if gain < config.min_gain:
            reasons.append(f"Quality gain {_pts(gain)} is below the required {_pts(config.min_gain)}.")
        elif confidence < config.min_confidence:
            reasons.append(
                f"The gain is not reliable: P(gain > 0) = {confidence:.2f} < {config.min_confidence:.2f} "
                f"on {len(with_scores)} queries."
            )
        if p95_change > config.max_p95_increase:
            reasons.append(f"p95 latency rises {_pct(p95_change)}, over the +{config.max_p95_increase:.0%} allowance.")
        if cost_change > config.max_cost_increase:
            reasons.append(f"Mean cost rises {_pct(cost_change)}, over the +{config.max_cost_increase:.0%} allowance.")
        if not (cost_change <= -config.min_saving or p95_change <= -config.min_saving):
            reasons.append(f"No material saving either (cost or p95 latency down ≥ {config.min_saving:.0%}).")
    if not gets_traffic:
        reasons.append(f"The router sends {candidate} only {share:.1%} of queries (< {config.min_share:.0%}).")
    for row in prediction_rows:
        if row.get("predicted") is None:
            continue
        verdict = "inside or above" if row["pass"] else "BELOW"
        reasons.append(
            f"Prediction check, {row['task']} ({row['share']:.0%} of its queries go to {candidate}): live accuracy "
            f"{row['live']:.3f} (90% CI {row['live_low']:.2f}–{row['live_high']:.2f}) is {verdict} the predicted "
            f"{row['predicted']:.3f} ({row['low']:.2f}–{row['high']:.2f})."
        )
    reasons.append(("ENABLE: " if accepted else "REJECT: ") + _verdict(accepted, gain_path, saving_path, predictions_ok, gets_traffic))
    checks = {
        "gain": gain,
        "gain_confidence": confidence,
        "p95_change": _finite(p95_change),
        "cost_change": _finite(cost_change),
        "candidate_share": share,
        "gain_path": gain_path,
        "saving_path": saving_path,
        "predictions_ok": predictions_ok,
        "prediction_rows": prediction_rows,
        "gets_traffic": gets_traffic,
    }
    return Decision("validated" if accepted else "rejected", reasons, checks)


def _verdict(accepted: bool, gain_path: bool, saving_path: bool, predictions_ok: bool, gets_traffic: bool) -> str:
    if accepted:
        return "the candidate improves the live trade-off" + (" (quality gain)" if gain_path else " (saving)")
    if not (gain_path or saving_path):
        return "no quality gain and no material saving over routing without the candidate"
    if not predictions_ok:
        return "live accuracy fell below what onboarding predicted on the groups it would win"
    return "the router would send it almost no traffic"


def _pts(value: float) -> str:
    return f"{value * 100:+.1f} points"


def _pct(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value * 100:+.0f}%"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
