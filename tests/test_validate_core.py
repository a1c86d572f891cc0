"""Live-validation core: policies, frontiers and the gate on hand-made live outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from lrcal.gate.frontier import dominates, frontier_area, frontiers
from lrcal.gate.decision import GateConfig, decide, wilson_interval
from lrcal.gate.policies import LiveOutcomes, measure, oracle_choice
from lrcal.router.policy import Policy, policy_choice


def _live(n=200, seed=0):
    rng = np.random.default_rng(seed)
    tasks = ["ocr"] * (n // 2) + ["chart"] * (n - n // 2)
    # model 0: good at chart, model 1: good at ocr (candidate), model 2: cheap and weak
    p = np.array([[0.5, 0.9, 0.3] if t == "ocr" else [0.85, 0.4, 0.3] for t in tasks])
    score = (rng.random((n, 3)) < p).astype(float)
    cost = np.tile([0.010, 0.004, 0.001], (n, 1))
    latency = np.tile([800.0, 300.0, 100.0], (n, 1)) * rng.uniform(0.8, 1.2, (n, 3))
    return LiveOutcomes(models=["strong", "cand", "cheap"], tasks=tasks, score=score, cost_usd=cost, latency_ms=latency), p


def test_measure_and_shares():
    live, _ = _live()
    res = measure("fixed", np.zeros(live.n, dtype=int), live)
    assert res.share == {"strong": 1.0, "cand": 0.0, "cheap": 0.0}
    assert res.cost_usd_mean == pytest.approx(0.010)
    assert set(res.per_task) == {"ocr", "chart"}


def _router(predicted, cost, lat, available, pool=None, **lambdas) -> set[int]:
    choice = policy_choice(predicted, np.asarray(available, bool), Policy(**lambdas), expected_cost=cost,
                           expected_latency=lat, pool=pool).choice  # fmt: skip
    return set(choice.tolist())


def test_router_policy_respects_availability_pool_and_lambda():
    predicted = np.array([[0.9, 0.8, 0.1]] * 4)
    cost, lat = np.array([10.0, 1.0, 0.1]), np.array([1.0, 1.0, 1.0])
    assert _router(predicted, cost, lat, [1, 1, 1]) == {0}
    assert _router(predicted, cost, lat, [0, 1, 1]) == {1}
    # A large cost weight moves traffic to the cheaper model.
    assert _router(predicted, cost, lat, [1, 1, 1], lambda_cost=1.0) == {1}
    # Normalized over the available pair alone, model 1 is the dearest and pays the whole λ...
    assert _router(predicted, cost, lat, [0, 1, 1], lambda_cost=0.75) == {2}
    # ...over the whole pool (as the gate's without-candidate policy is) it pays a tenth of it.
    assert _router(predicted, cost, lat, [0, 1, 1], pool=np.ones(3, bool), lambda_cost=0.75) == {1}
    # An unknown expected cost counts as the pool's dearest.
    assert _router(predicted, np.array([np.nan, 1.0, 0.1]), lat, [1, 1, 0], lambda_cost=0.5) == {1}


def test_oracle_prefers_cheaper_on_ties():
    live = LiveOutcomes(models=["a", "b"], tasks=["t"], score=np.array([[1.0, 1.0]]),
                        cost_usd=np.array([[2.0, 1.0]]), latency_ms=np.array([[1.0, 1.0]]))
    assert oracle_choice(live, np.array([1, 1]))[0] == 1


def test_frontier_area_and_dominance():
    cheap_good = [{"quality": 0.8, "cost_usd_mean": 0.1, "latency_ms_p95": 1}]
    dear_bad = [{"quality": 0.6, "cost_usd_mean": 0.9, "latency_ms_p95": 1}]
    assert frontier_area(cheap_good, "cost", (0.0, 1.0)) > frontier_area(dear_bad, "cost", (0.0, 1.0))
    assert dominates(cheap_good, dear_bad, "cost") and not dominates(dear_bad, cheap_good, "cost")


def _gate(live, p, available_with, available_without, predicted_by_task, config=None):
    expected_cost = live.cost_usd.mean(axis=0)
    expected_latency = np.median(live.latency_ms, axis=0)
    def router(available) -> np.ndarray:  # the gate's: normalized over the whole pool
        return policy_choice(p, np.asarray(available, bool), expected_cost=expected_cost,
                             expected_latency=expected_latency, pool=np.ones(len(live.models), bool)).choice

    with_res = measure("with", router(available_with), live)
    without_res = measure("without", router(available_without), live)
    rows = np.arange(live.n)
    cand = live.models.index("cand")
    by_task = {}
    for t in set(live.tasks):
        mask = np.array(live.tasks) == t
        by_task[t] = (float(live.score[mask, cand].sum()), int(mask.sum()))
    return decide(
        "cand", with_res, without_res,
        with_scores=live.score[rows, with_res.choice], without_scores=live.score[rows, without_res.choice],
        live_candidate_by_task=by_task, predicted_by_task=predicted_by_task, config=config or GateConfig(),
    ), frontiers(live, p, expected_cost, expected_latency, available_with, available_without)


def test_gate_enables_a_real_specialist():
    live, p = _live()
    decision, front = _gate(live, p, np.array([1, 1, 1]), np.array([1, 0, 1]),
                            {"ocr": {"predicted": 0.88, "low": 0.8, "high": 0.95}})
    assert decision.decision == "validated", decision.reasons
    assert decision.checks["gain"] > 0.1
    assert front["cost"]["area_with"] >= front["cost"]["area_without"]


def test_gate_rejects_when_prediction_was_too_optimistic():
    live, p = _live()
    decision, _ = _gate(live, p, np.array([1, 1, 1]), np.array([1, 0, 1]),
                        {"ocr": {"predicted": 0.99, "low": 0.985, "high": 1.0}})
    assert decision.decision == "rejected"
    assert any("BELOW" in r for r in decision.reasons)


def test_gate_rejects_a_model_that_gets_no_traffic():
    live, p = _live()
    p = p.copy()
    p[:, 1] = 0.0  # the router never prefers the candidate
    decision, _ = _gate(live, p, np.array([1, 1, 1]), np.array([1, 0, 1]), {})
    assert decision.decision == "rejected"
    assert decision.reasons[-1].startswith("REJECT")


def test_wilson_interval_contains_the_estimate():
    lo, hi = wilson_interval(15, 20)
    assert lo < 0.75 < hi and 0 <= lo and hi <= 1
