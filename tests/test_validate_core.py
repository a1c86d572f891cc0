"""Live-validation core: policies, frontiers and the gate on hand-made live outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from lrcal.gate.decision import GateConfig, LookEvidence, decide
from lrcal.gate.frontier import dominates, frontier_area, frontiers
from lrcal.gate.intervals import upper_quantile, wilson
from lrcal.gate.operating_point import recommend_lambda
from lrcal.gate.policies import LiveOutcomes, measure, oracle_choice, paired_outcomes
from lrcal.router.policy import Policy, policy_choice

Z = upper_quantile(0.05)  # one look: the fixed-n boundary


def _live(n=200, seed=0):
    rng = np.random.default_rng(seed)
    tasks = ["ocr"] * (n // 2) + ["chart"] * (n - n // 2)
    # column 0: the candidate, good at ocr; 1: strong at chart; 2: cheap and weak
    p = np.array([[0.9, 0.5, 0.3] if t == "ocr" else [0.4, 0.85, 0.3] for t in tasks])
    score = (rng.random((n, 3)) < p).astype(float)
    cost = np.tile([0.004, 0.010, 0.001], (n, 1))
    latency = np.tile([300.0, 800.0, 100.0], (n, 1)) * rng.uniform(0.8, 1.2, (n, 3))
    return LiveOutcomes(models=["cand", "strong", "cheap"], tasks=tasks, score=score, cost_usd=cost,
                        latency_ms=latency), p  # fmt: skip


def test_measure_and_shares():
    live, _ = _live()
    res = measure("fixed", np.ones(live.n, dtype=int), live)
    assert res.share == {"cand": 0.0, "strong": 1.0, "cheap": 0.0}
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


def test_oracle_prefers_cheaper_on_ties_and_skips_failed_requests():
    live = LiveOutcomes(models=["a", "b"], tasks=["t", "t"], score=np.array([[1.0, 1.0], [1.0, 0.0]]),
                        cost_usd=np.array([[2.0, 1.0], [2.0, 1.0]]), latency_ms=np.ones((2, 2)),
                        errors=np.array([[False, False], [True, False]]))  # fmt: skip
    assert oracle_choice(live, np.array([1, 1])).tolist() == [1, 1]


def test_frontier_area_and_dominance():
    cheap_good = [{"quality": 0.8, "cost_usd_mean": 0.1, "latency_ms_p95": 1}]
    dear_bad = [{"quality": 0.6, "cost_usd_mean": 0.9, "latency_ms_p95": 1}]
    assert frontier_area(cheap_good, "cost", (0.0, 1.0)) > frontier_area(dear_bad, "cost", (0.0, 1.0))
    assert dominates(cheap_good, dear_bad, "cost") and not dominates(dear_bad, cheap_good, "cost")


def _gate(live, predicted, predicted_by_task=None, config=None, z=Z, predicted_without=None):
    """The gate with the candidate in column 0 (as live validation builds the pool)."""
    expected_cost = live.cost_usd.mean(axis=0)
    expected_latency = np.median(live.latency_ms, axis=0)
    pool = np.ones(len(live.models), bool)
    without_mask = pool.copy()
    without_mask[0] = False
    without_scores = predicted if predicted_without is None else predicted_without

    def router(scores, available) -> np.ndarray:  # the gate's: normalized over the whole pool
        return policy_choice(scores, available, expected_cost=expected_cost, expected_latency=expected_latency,
                             pool=pool).choice  # fmt: skip

    with_choice, without_choice = router(predicted, pool), router(without_scores, without_mask)
    tasks = np.asarray(live.tasks)
    answered = ~live.errors[:, 0]
    by_task = {t: (float(live.score[(tasks == t) & answered, 0].sum()), int(((tasks == t) & answered).sum()))
               for t in set(live.tasks)}  # fmt: skip
    paired, _ = paired_outcomes(live, with_choice, without_choice)
    evidence = LookEvidence(
        candidate="cand", n=live.n, paired=paired, candidate_calls=live.n,
        candidate_errors=int(live.errors[:, 0].sum()), routed_to_candidate=int((with_choice == 0).sum()),
        with_result=measure("with", with_choice, live), without_result=measure("without", without_choice, live),
        live_candidate_by_task=by_task, predicted_by_task=predicted_by_task or {},
    )  # fmt: skip
    decision = decide(evidence, config or GateConfig(bootstrap=1000), z)
    return decision, frontiers(live, predicted, without_scores, expected_cost, expected_latency, pool, without_mask)


def test_gate_enables_a_real_specialist_on_the_gain_path():
    live, p = _live()
    decision, front = _gate(live, p, {"ocr": {"predicted": 0.88, "low": 0.8, "high": 0.95}})
    assert decision.decision == "validated" and decision.path == "gain", decision.reasons
    rules = decision.rules_by_key()
    assert rules["quality_gain"].interval.low > 0.01 and rules["quality_gain"].verdict == "pass"
    assert front["cost"]["area_with"] >= front["cost"]["area_without"]


def test_gate_rejects_when_prediction_was_too_optimistic():
    live, p = _live()
    decision, _ = _gate(live, p, {"ocr": {"predicted": 0.99, "low": 0.985, "high": 1.0}})
    assert decision.decision == "rejected"
    assert decision.rules_by_key()["prediction"].verdict == "fail"
    assert "live accuracy vs prediction" in decision.reasons[-1]


def test_gate_rejects_a_model_that_gets_no_traffic():
    live, p = _live()
    p = p.copy()
    p[:, 0] = 0.0  # the router never prefers the candidate
    decision, _ = _gate(live, p)
    assert decision.decision == "rejected"
    assert decision.rules_by_key()["share"].verdict == "fail"
    assert decision.reasons[-1].startswith("REJECT") and "traffic to candidate" in decision.reasons[-1]


def _twins(n=240, seed=1, latency_factor=1.0, cost_factor=0.5, worse=0, better=0):
    """A candidate that answers like the incumbent (same draws) but for ``worse`` queries it gets
    wrong and ``better`` ones it gets right, at other prices and speeds."""
    rng = np.random.default_rng(seed)
    incumbent = (rng.random(n) < 0.8).astype(float)
    candidate = incumbent.copy()
    right, wrong = np.flatnonzero(incumbent == 1.0), np.flatnonzero(incumbent == 0.0)
    candidate[right[:worse]] = 0.0
    candidate[wrong[:better]] = 1.0
    base = rng.lognormal(np.log(400.0), 0.3, n)
    latency = np.stack([latency_factor * base * rng.uniform(0.97, 1.03, n), base], axis=1)
    live = LiveOutcomes(models=["cand", "incumbent"], tasks=["doc"] * n, score=np.stack([candidate, incumbent], 1),
                        cost_usd=np.tile([0.010 * cost_factor, 0.010], (n, 1)), latency_ms=latency)  # fmt: skip
    predicted = np.tile([0.81, 0.80], (n, 1))  # the router prefers the candidate everywhere
    return live, predicted


def test_a_cheaper_candidate_that_adds_25_percent_p95_is_rejected_by_the_latency_rule():
    live, predicted = _twins(latency_factor=1.25)
    decision, _ = _gate(live, predicted)
    rules = decision.rules_by_key()
    assert rules["cost_bound"].verdict == "pass" and rules["saving"].verdict == "pass"  # it does save: -50 %
    assert rules["p95_bound"].verdict == "fail" and rules["p95_bound"].interval.low > 1.10
    assert rules["p95_bound"].interval.estimate == pytest.approx(1.25, abs=0.03)
    assert decision.decision == "rejected" and decision.path == "both"
    assert "p95 latency" in decision.reasons[-1] and "+25%" in decision.reasons[-1]


def test_saving_path_needs_the_lower_bound_not_the_point_estimate():
    """Defect 3: "quality within −0.5 points" on a point estimate. A candidate whose quality is
    0.3 points lower (inside the old tolerance) but uncertain by several points is not passed on
    the saving path, and the reasons say which rule is open -- never "quality holds"."""
    live, predicted = _twins(n=300, worse=10, better=9, seed=3)
    config = GateConfig(bootstrap=1000, quality_tolerance=0.005)
    decision, _ = _gate(live, predicted, config=config)
    rules = decision.rules_by_key()
    assert rules["quality_holds"].interval.low < -0.005 < rules["quality_holds"].interval.high
    assert rules["quality_holds"].verdict == "undecided" and rules["saving"].verdict == "pass"
    assert decision.decision != "validated"
    assert not any("holds" in r and "— pass" in r for r in decision.reasons)
    # The gain rule is named too: the old reasons never said whether it held.
    assert any(r.startswith("Gain path is undecided") and "quality gain" in r for r in decision.reasons)
    assert decision.reasons[-1].startswith("UNDECIDED") and "more examples would be needed" in decision.reasons[-1]


def test_every_path_has_a_latency_bound_and_an_error_rate_bound():
    live, p = _live()
    config = GateConfig()
    decision, _ = _gate(live, p, config=config)
    by_key = decision.rules_by_key()
    for key in ("p95_bound", "error_rate"):
        assert set(by_key[key].paths) == {"gain", "saving"}


def test_failed_requests_are_excluded_not_wrong_answers_and_bounded_by_the_error_rate():
    live, p = _live(n=400, seed=5)
    clean, _ = _gate(live, p, {"ocr": {"predicted": 0.88, "low": 0.8, "high": 0.95}})
    errors = np.zeros_like(live.errors)
    rng = np.random.default_rng(0)
    errors[rng.random(live.n) < 0.2, 0] = True  # a fifth of the candidate's requests fail...
    score = live.score.copy()
    score[errors] = 0.0  # ...and were stored with score 0
    failing = LiveOutcomes(models=live.models, tasks=live.tasks, score=score, cost_usd=live.cost_usd,
                           latency_ms=live.latency_ms, errors=errors)  # fmt: skip
    decision, _ = _gate(failing, p, {"ocr": {"predicted": 0.88, "low": 0.8, "high": 0.95}})
    gain_clean = clean.rules_by_key()["quality_gain"].interval.estimate
    gain_failing = decision.rules_by_key()["quality_gain"].interval.estimate
    # Counted as wrong answers the failures would cost ~0.2 × 0.9 × share ≈ 9 points of quality.
    assert abs(gain_failing - gain_clean) < 0.03
    assert decision.rules_by_key()["error_rate"].verdict == "fail"
    assert decision.decision == "rejected" and "candidate error rate" in decision.reasons[-1]
    with_result = measure("with", np.zeros(failing.n, dtype=int), failing)
    assert with_result.error_rate == pytest.approx(errors[:, 0].mean())
    assert with_result.quality == pytest.approx(live.score[~errors[:, 0], 0].mean())


def test_without_uses_its_own_predictions():
    """Defect 4: the without-candidate policy routes on predictions made with the candidate out
    of the pool; here they differ from the with-candidate ones and change its choices."""
    live, p = _live()
    without = p.copy()
    without[:, 2] = 1.0  # predicted without the candidate, the cheap model looks best
    decision, front = _gate(live, p, predicted_without=without)
    assert decision.rules_by_key()["quality_gain"].interval.estimate > 0.3  # "without" now routes to the cheap one
    assert all(point["quality"] < 0.4 for point in front["cost"]["router_without"])


def test_recommended_lambda_is_cheaper_and_quality_safe():
    live, p = _live(n=400, seed=2)
    p = p.copy()
    p[:, 2] = p[:, 0] - 0.001  # the cheap model is predicted almost as good: λ > 0 moves traffic to it
    live.score[:, 2] = live.score[:, 0]  # ...and it is, live
    point = recommend_lambda(live, p, live.cost_usd.mean(axis=0), np.median(live.latency_ms, axis=0),
                             np.ones(3, bool), Policy(),
                             GateConfig(quality_tolerance=0.02, max_p95_increase=0.1, error_rate=0.05, bootstrap=500))  # fmt: skip
    assert point["lambda_cost"] > 0 and point["cost_usd_mean"] < point["current_cost_usd_mean"]
    assert point["versus_current"]["quality"]["low"] >= -0.02


def test_wilson_interval_contains_the_estimate():
    interval = wilson(15, 20, 1.645)
    assert interval.low < 0.75 < interval.high and 0 <= interval.low and interval.high <= 1


def test_a_query_with_an_image_is_routed_only_among_models_that_take_images():
    """Live validation's policies, its λ frontier and its recommended λ routed queries with an
    image to text-only models, which the gateway never does."""
    import numpy as np

    from lrcal.gate.policies import restricted
    from lrcal.router.policy import Policy, policy_choice

    available = np.array([True, True, False])
    capable = np.array([[True, False, True], [False, False, True], [True, True, True]])
    allowed = restricted(available, capable)
    # row 1: no available model may take it, so it keeps the pool (a -1 would index the last column)
    assert allowed.tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert restricted(available, None) is not None and restricted(available, None).tolist() == available.tolist()
    scores = np.array([[0.2, 0.9, 0.5], [0.2, 0.9, 0.5], [0.2, 0.9, 0.5]])
    choice = policy_choice(scores, allowed, Policy(lambda_cost=0.1), expected_cost=np.array([1.0, 2.0, 0.0]),
                           pool=available).choice
    assert choice.tolist() == [0, 1, 1]
