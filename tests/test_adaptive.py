"""The adaptive calibration sampler (lrcal.router.adaptive): numpy only, fast."""

from __future__ import annotations

import numpy as np
import pytest

from lrcal.router.adaptive import (
    STOP_BUDGET,
    STOP_SETTLED,
    AdaptiveSampler,
    CandidatePool,
    GroupPrior,
    SamplerConfig,
    beta_binomial_pmfs,
    beta_interval,
    posterior,
    value_of_information,
)

GROUPS = ("ocr", "chart", "document", "spatial", "vqa", "math")


def world(seed: int, n_per_group: int = 200, incumbent: float = 0.6):
    """6 groups; the incumbents' best scores vary within each group around ``incumbent``."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(GROUPS)), n_per_group)
    best = np.clip(incumbent + rng.normal(0, 0.08, len(groups)), 0, 1)
    return CandidatePool(groups=groups, incumbent_best=best, labels=GROUPS)


def test_beta_binomial_pmfs_are_distributions_with_the_right_mean():
    pmf = beta_binomial_pmfs(20, 3.0, 5.0)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-12)
    for m in (0, 1, 7, 20):
        assert (pmf[m] * np.arange(21)).sum() == pytest.approx(m * 3.0 / 8.0, abs=1e-9)
        assert np.all(pmf[m, m + 1:] == 0)


def test_posterior_is_the_profile_smoothing():
    counts, sums = np.array([4.0, 4, 0, 4, 4, 4]), np.array([4.0, 0, 0, 2, 2, 2])
    a, b = posterior(GroupPrior(strength=8.0), counts, sums)
    overall = (sums.sum() + 1) / (counts.sum() + 2)
    np.testing.assert_allclose(a / (a + b), (sums + 8 * overall) / (counts + 8))
    low, high = beta_interval(float(a[0]), float(b[0]), 0.9)
    assert low < a[0] / (a[0] + b[0]) < high


def test_value_of_information_is_zero_where_the_decision_is_settled_and_positive_where_open():
    pool = world(0)
    # group 0: far below every incumbent with much evidence; group 1: near the incumbents, little evidence
    alpha = np.array([20.0, 3.0, 20, 20, 20, 20])
    beta = np.array([80.0, 2.0, 80, 80, 80, 80])
    voi = value_of_information(pool, alpha, beta, np.full(6, 32))
    assert voi[0][-1] < 1e-6 and voi[1][-1] > 1e-3
    assert all(np.all(np.diff(v) >= -1e-12) for v in voi)  # more outcomes never lower the expected value


def run_sampler(pool, truth, config, seed, prior=GroupPrior(strength=4.0), seen=None):
    """The sampler run to its end against outcomes drawn at each group's ``truth``; ``seen``
    (a dict) collects row -> outcome."""
    rng = np.random.default_rng(seed + 1000)
    seen = {} if seen is None else seen

    def answer(rows):
        out = [float(rng.random() < truth[pool.groups[i]]) for i in rows]
        seen.update(zip(rows, out))
        return out

    sampler = AdaptiveSampler(pool, prior, config, seed=seed)
    return sampler, sampler.run(answer)


def card_means(pool, truth, config, seed, prior):
    """Per group, the estimate the newcomer's card gets from the rows the sampler chose: the
    router's prior at full strength (the sampler itself holds it at ``prior_scale``)."""
    seen = {}
    _, state = run_sampler(pool, truth, config, seed, prior, seen)
    counts = np.bincount(pool.groups[state.asked], minlength=pool.n_groups).astype(float)
    sums = np.bincount(pool.groups[state.asked], weights=[seen[i] for i in state.asked], minlength=pool.n_groups)
    a, b = posterior(prior, counts, sums)
    return a / (a + b), state


def test_budget_batches_and_the_stratified_first_batch():
    pool = world(1)
    truth = np.array([0.3, 0.62, 0.3, 0.3, 0.3, 0.3])
    config = SamplerConfig(budget=64, batch=16, stop_value=0.0)
    sampler, state = run_sampler(pool, truth, config, seed=3)
    assert state.stop == STOP_BUDGET and state.used == 64
    assert state.batches[0] == sampler.first_batch()
    assert np.bincount(pool.groups[state.batches[0]], minlength=6).tolist() == [4] * 6
    assert all(len(b) <= 16 for b in state.batches[1:]) and len(set(state.asked)) == 64
    spent = {g.label: g.n for g in state.groups}
    # the open group (near the incumbents) gets more than any group far below them
    assert spent["chart"] > max(v for k, v in spent.items() if k != "chart")


def test_it_stops_when_every_decision_is_settled_and_says_why():
    pool = world(2)
    truth = np.full(6, 0.05)  # far below the incumbents everywhere
    _, state = run_sampler(pool, truth, SamplerConfig(budget=128, batch=16), seed=0)
    assert state.stop == STOP_SETTLED and 16 <= state.used < 128
    assert all(g.verdict == "below" for g in state.groups)
    assert state.value_left < SamplerConfig().stop_value
    # never settled before the minimum a token needs, even with a tiny first batch
    _, short = run_sampler(pool, truth, SamplerConfig(budget=64, batch=16, first_per_group=1), seed=0)
    assert short.used >= 16


def test_endpoint_errors_do_not_count_toward_the_minimum_before_it_settles():
    """A review: with 3 endpoint errors in the first batch it stopped settled after 16 asked,
    13 of them outcomes, budget left; the token fit then refused (16 are needed) and a rerun
    replayed the same stop."""
    pool = world(2)
    for budget, seed in ((20, 2), (32, 2), (32, 0)):
        rng = np.random.default_rng(seed)
        first = [True]

        def answer(rows):
            out = [float(rng.random() < 0.05) for _ in rows]
            if first[0]:
                out[:3] = [None] * 3
                first[0] = False
            return out

        state = AdaptiveSampler(pool, GroupPrior(strength=4.0), SamplerConfig(budget=budget, batch=16),
                                seed=seed).run(answer)
        assert sum(g.n for g in state.groups) >= 16, (budget, state.stop, state.used)
        assert state.used <= budget


def test_replay_from_stored_outcomes_resumes_the_same_sequence():
    pool = world(3)
    truth = np.array([0.55, 0.62, 0.3, 0.7, 0.58, 0.2])
    config = SamplerConfig(budget=64, batch=16)
    sampler, full = run_sampler(pool, truth, config, seed=7)
    rng = np.random.default_rng(7 + 1000)
    answers = {}
    for batch in full.batches:  # the outcomes the run saw, in its order
        for i in batch:
            answers[i] = float(rng.random() < truth[pool.groups[i]])
    # killed after two batches and half of the third: replay says which rows are still pending
    seen = [i for b in full.batches[:2] for i in b] + full.batches[2][: len(full.batches[2]) // 2]
    partial = AdaptiveSampler(pool, GroupPrior(strength=4.0), config, seed=7).replay({i: answers[i] for i in seen})
    assert partial.batches == full.batches[:3]
    assert partial.pending == full.batches[2][len(full.batches[2]) // 2:]
    assert partial.stop is None
    done = sampler.replay(answers)
    assert done.batches == full.batches and done.stop == full.stop and done.pending == []
    # an endpoint error is asked but carries no evidence
    with_error = dict(answers)
    with_error[full.batches[0][0]] = None
    state = sampler.replay(with_error)
    assert state.batches[0] == full.batches[0]
    assert sum(g.n for g in state.groups) == state.used - 1


def realized_value(pool, truth, means):
    """Routed accuracy gained over all traffic by sending the newcomer the rows where its
    estimated quality beats the best incumbent's score, at its true quality."""
    total = 0.0
    for t in range(pool.n_groups):
        best = pool.incumbent_best[pool.groups == t]
        total += pool.shares[t] * float(np.mean(np.where(means[t] > best, truth[t] - best, 0.0)))
    return total


def test_adaptive_loses_less_routed_accuracy_than_uniform_at_equal_budget():
    """The point of the sampler, in the setting it is built for: each group's true quality is
    drawn from the prior the sampler believes (Beta, strength 4, centre 0.5), incumbents vary
    within groups around 0.6. After 48 examples, route each row where the posterior mean beats
    the best incumbent there; the regret against deciding with the true quality, summed over
    the same 100 worlds, is smaller when the examples were chosen by value of information than
    when spread evenly (8 per group); both judged by the card's estimate (the prior at full
    strength). Measured: 1.315 against 1.587; 1.23 with the sampler holding the prior at full
    strength, which is right here (the default half strength pays for the next test)."""
    regret = {"adaptive": 0.0, "uniform": 0.0}
    for seed in range(100):
        pool = world(seed, incumbent=0.6)
        truth = np.random.default_rng(seed + 5000).beta(2.0, 2.0, 6)
        best_possible = realized_value(pool, truth, truth)
        means, state = card_means(pool, truth, SamplerConfig(budget=48, batch=8, stop_value=0.0), seed,
                                  GroupPrior(strength=4.0))
        assert state.used == 48
        regret["adaptive"] += best_possible - realized_value(pool, truth, means)
        rng = np.random.default_rng(seed + 2000)
        counts = np.full(6, 8.0)
        sums = np.array([rng.binomial(8, p) for p in truth], dtype=float)
        a, b = posterior(GroupPrior(strength=4.0), counts, sums)
        regret["uniform"] += best_possible - realized_value(pool, truth, a / (a + b))
    assert regret["adaptive"] < 0.85 * regret["uniform"]


def test_holding_the_prior_loosely_finds_a_newcomer_strong_where_the_population_is_weak():
    """The models worth onboarding are the ones that deviate from the population the prior was
    fitted on. Here the prior (strength 16) puts "math" 1.2 logits below the newcomer's other
    groups, where it is right 30 % of the time against incumbents at 0.6; on math it is right
    85 % of the time. Believing the prior at full strength, the sampler never asks math beyond
    its first 4 rows and stops early; the card never sends math to the newcomer. At the default
    half strength it keeps asking math, and the card sends it math in some worlds. Both are
    judged by the routed accuracy of the card's estimates (the prior at full strength either
    way), summed over 60 worlds. Measured: asked on math 4.0 against 12.2 a world, math sent
    in 0 against 9 worlds, value -0.044 against +0.296 (0.25: 13.9, 8, +0.275)."""
    offsets = np.array([0.0, 0.0, 0.0, 0.0, 0.0, -1.2])
    prior = GroupPrior(strength=16.0, offsets=offsets)
    truth = np.array([0.3, 0.3, 0.3, 0.3, 0.3, 0.85])
    value, asked_math, math_sent = {1.0: 0.0, 0.5: 0.0}, {1.0: 0, 0.5: 0}, {1.0: 0, 0.5: 0}
    for seed in range(60):
        pool = world(seed, incumbent=0.6)
        for scale in value:
            means, state = card_means(pool, truth, SamplerConfig(budget=48, batch=8, prior_scale=scale), seed, prior)
            value[scale] += realized_value(pool, truth, means)
            asked_math[scale] += int(np.sum(pool.groups[state.asked] == 5))
            math_sent[scale] += int(means[5] > 0.6)
    assert asked_math[0.5] > 2 * asked_math[1.0]
    assert math_sent[0.5] >= 5 and math_sent[0.5] > 2 * math_sent[1.0]
    assert value[0.5] > value[1.0] + 0.2


def test_config_refuses_nonsense():
    with pytest.raises(ValueError):
        SamplerConfig(budget=0)
    with pytest.raises(ValueError):
        SamplerConfig(stop_value=float("nan"))
    for scale in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError):
            SamplerConfig(prior_scale=scale)
    with pytest.raises(ValueError):
        CandidatePool(groups=np.array([0, 7]), incumbent_best=np.array([0.5, 0.5]), labels=("a", "b"))
