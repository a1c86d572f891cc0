"""The sequential gate holds its error rate: null simulations through the gate's own intervals,
verdicts and spending plan -- and a fixed-n interval recomputed after every batch does not."""

from __future__ import annotations

import numpy as np
import pytest

from lrcal.gate.intervals import PairedOutcomes, p95_ratio, quality_difference, upper_quantile
from lrcal.gate.rules import ABOVE, BELOW, FAIL, PASS, Rule, judged
from lrcal.gate.sequential import boundaries, look_sizes, plan_looks, spent_alpha

ALPHA = 0.05
LOOKS = look_sizes(144, 24)  # the demo's holdout, batches of 24: 6 looks


def test_plan_spends_exactly_alpha_with_boundaries_wider_than_fixed_n():
    plan = plan_looks(144, 24, ALPHA)
    assert plan.looks == (24, 48, 72, 96, 120, 144)
    assert spent_alpha(1.0, ALPHA) == pytest.approx(ALPHA) and spent_alpha(0.0, ALPHA) == 0.0
    fixed = upper_quantile(ALPHA)
    assert all(z > fixed for z in plan.z)  # every look pays for the others
    assert plan.z[0] == pytest.approx(upper_quantile(spent_alpha(1 / 6, ALPHA)))
    assert boundaries((144,), ALPHA) == (pytest.approx(fixed),)  # one look: the fixed-n test
    assert boundaries(LOOKS, ALPHA) == boundaries(LOOKS, ALPHA)  # deterministic


def _false_pass_rate(rule_at_look, draw, z_per_look, trials: int, seed: int) -> float:
    """Share of trials where the rule's *first* decision is a pass although the truth sits
    exactly on its threshold (the worst case of its null hypothesis)."""
    rng = np.random.default_rng(seed)
    passes = 0
    for trial in range(trials):
        paired = draw(rng, LOOKS[-1])
        for k, n in enumerate(LOOKS):
            rule = rule_at_look(_prefix(paired, n), z_per_look[k], seed=trial * 10 + k)
            if rule.verdict in (PASS, FAIL):
                passes += rule.verdict == PASS
                break
    return passes / trials


def _prefix(paired: PairedOutcomes, n: int) -> PairedOutcomes:
    return PairedOutcomes(*(np.asarray(getattr(paired, f))[:n] for f in PairedOutcomes.__dataclass_fields__))


def _noninferiority(paired: PairedOutcomes, z: float, seed: int) -> Rule:
    interval = quality_difference(paired, paired.resampled_rows(200, seed), z)
    return judged(Rule("quality_holds", "quality holds", ("saving",), -0.02, ABOVE, interval, "points"), paired.n)


def _quality_on_the_margin(rng, n: int) -> PairedOutcomes:
    # d = with − without ∈ {−1, 0, +1} with mean exactly −0.02: the non-inferiority margin
    d = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.11, 0.80, 0.09])
    zeros = np.zeros(n)
    return PairedOutcomes(d, zeros, zeros, zeros, zeros, zeros)


def test_sequential_noninferiority_holds_its_error_rate_and_repeated_fixed_n_does_not():
    trials = 2000
    sequential = _false_pass_rate(_noninferiority, _quality_on_the_margin, boundaries(LOOKS, ALPHA), trials, seed=1)
    naive = _false_pass_rate(_noninferiority, _quality_on_the_margin, [upper_quantile(ALPHA)] * len(LOOKS), trials,
                             seed=1)  # fmt: skip
    margin = 3 * np.sqrt(ALPHA * (1 - ALPHA) / trials)  # Monte Carlo error of the estimate
    assert sequential <= ALPHA + margin, sequential
    assert naive > ALPHA + margin, naive  # a fixed-n interval looked at six times: the test can fail
    print(f"\nnon-inferiority on the margin, {trials} null runs: false pass {sequential:.3f} sequential "
          f"(α = {ALPHA}), {naive:.3f} with a fixed-n interval at every look")


def _p95_bound(paired: PairedOutcomes, z: float, seed: int) -> Rule:
    interval = p95_ratio(paired, paired.resampled_rows(200, seed), z)
    return judged(Rule("p95_bound", "p95 latency", ("gain", "saving"), 1.10, BELOW, interval, "ratio"), paired.n)


def _latency_on_the_bound(rng, n: int) -> PairedOutcomes:
    # the candidate's latency is the incumbent's distribution × 1.10: p95 ratio exactly the bound
    without = rng.lognormal(np.log(400.0), 0.4, n)
    with_ = 1.10 * rng.lognormal(np.log(400.0), 0.4, n)
    zeros = np.zeros(n)
    return PairedOutcomes(zeros, zeros, zeros, zeros, with_, without)


@pytest.mark.slow
def test_sequential_p95_bound_holds_its_error_rate():
    trials = 1000
    rate = _false_pass_rate(_p95_bound, _latency_on_the_bound, boundaries(LOOKS, ALPHA), trials, seed=2)
    assert rate <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / trials), rate
    print(f"\np95 ratio on the bound, {trials} null runs: false pass {rate:.3f} sequential (α = {ALPHA})")


def test_a_look_where_the_candidate_was_routed_nothing_decides_no_ratio_rule():
    """The two policies' columns were identical (no query routed to the candidate): every
    bootstrap ratio was 1, the interval [1, 1], and the p95 and cost bounds passed and the
    saving failed at that look -- verdicts kept for the rest of the run, whatever the candidate
    did later (a 60 % slower candidate validated)."""
    from lrcal.gate.intervals import mean_cost_ratio
    from lrcal.gate.rules import UNDECIDED, FAIL, keep_decided

    rng = np.random.default_rng(3)
    latency = rng.lognormal(np.log(400.0), 0.4, 24)
    cost = rng.uniform(0.001, 0.002, 24)
    zeros = np.zeros(24)
    nothing_routed = PairedOutcomes(zeros, zeros, cost, cost, latency, latency)
    rows = nothing_routed.resampled_rows(200, 0)
    z = upper_quantile(0.01)
    first = {}
    for key, interval, threshold in (("p95_bound", p95_ratio(nothing_routed, rows, z), 1.10),
                                     ("cost_bound", mean_cost_ratio(nothing_routed, rows, z), 1.10),
                                     ("cost_saving", mean_cost_ratio(nothing_routed, rows, z), 0.85)):
        rule = judged(Rule(key, key, ("gain", "saving"), threshold, BELOW, interval, "ratio"), 24)
        assert rule.verdict == UNDECIDED and interval.high == np.inf, (key, interval)
        first[key] = rule
    # the next look: half of 96 queries go to a candidate 60 % slower; the p95 bound now fails
    without = rng.lognormal(np.log(400.0), 0.4, 96)
    with_ = np.where(np.arange(96) % 2 == 0, 1.6 * without, without)
    later = PairedOutcomes(np.zeros(96), np.zeros(96), np.zeros(96), np.zeros(96), with_, without)
    rule = _p95_bound(later, z, 0)
    assert rule.verdict == FAIL
    assert keep_decided(first, [rule])[0].verdict == FAIL


@pytest.mark.parametrize("p, dof, expected", [(0.95, 1, 6.3138), (0.95, 2, 2.9200), (0.95, 3, 2.3534),
                                              (0.995, 5, 4.0321), (0.975, 10, 2.2281), (0.975, 30, 2.0423),
                                              (0.975, 120, 1.9799), (0.975, 1000, 1.9623)])
def test_student_t_quantiles_match_the_tables_at_every_dof(p, dof, expected):
    """The two-term Cornish–Fisher expansion alone gave 4.59 for 6.31 at one degree of freedom:
    a look of 2 queries (--batch allows it) got an interval far too narrow."""
    from lrcal.gate.intervals import student_t

    assert student_t(upper_quantile(1 - p), dof) == pytest.approx(expected, abs=1e-4)
