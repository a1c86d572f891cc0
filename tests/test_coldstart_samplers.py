"""`bench coldstart --sampler uniform,adaptive --repeats N`: both samplers on the same folds and
draws, draws independent of the k list, intervals over draws and folds."""

from __future__ import annotations

import pytest

from lrcal.errors import UsageError
from lrcal.evaluation.coldstart import GAIN_TARGETS, bench_coldstart, examples_to_gain
from lrcal.evaluation.synthetic import synthetic_outcomes
from lrcal.router import RouterConfig
from lrcal.router.adaptive import SamplerConfig
from lrcal.router.token_fit import OnboardConfig

TINY = RouterConfig(hidden=16, query_tokens=2, capsules=2, layers=1, heads=2, warmup_max_steps=24,
                    warmup_patience=8, latent_max_steps=6, patience=2, batch_size=64)
ONBOARD = OnboardConfig(max_steps=6, folds=2, bootstrap=5)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def table():
    return synthetic_outcomes(n=240, n_models=4, seed=5, keyword_bonus=0.4)


def _bench(table, ks, samplers=("uniform", "adaptive"), repeats=2):
    return bench_coldstart(table, ["model1", "model3"], ks=ks, folds=2, repeats=repeats, config=TINY,
                           onboard_config=ONBOARD, samplers=samplers)


def test_both_samplers_on_the_same_folds_with_intervals_and_curves(table):
    result = _bench(table, [16, 32])
    assert set(result["samplers"]) == {"uniform", "adaptive"}
    uniform, adaptive = result["samplers"]["uniform"], result["samplers"]["adaptive"]
    for k in ("16", "32"):
        # the uniform sampler is the protocol's onboarding: the same numbers as `k`
        assert uniform["k"][k]["gain_recovered"] == result["k"][k]["gain_recovered"]
        assert uniform["k"][k]["harm"] == result["k"][k]["harm"]
        assert uniform["k"][k]["examples_used"] == int(k)
        used = adaptive["k"][k]["examples_used"]
        assert 16 <= used <= int(k)
        assert sum(adaptive["k"][k]["stops"].values()) == 2 * 2 * 2  # folds x models x draws
        for entry in (uniform["k"][k], adaptive["k"][k]):
            for value, interval in ((entry["gain_recovered"], entry["gain_interval"]), (entry["harm"], entry["harm_interval"])):
                assert (value is None) == (interval is None)
                if interval is not None:
                    assert interval[0] <= interval[1]
            assert set(entry["per_model_gain"]) == set(result["headroom_models"])
    for row in result["per_model"]:
        assert set(row["U_k_adaptive"]) == {"16", "32"}
    assert set(uniform["examples_to_gain"]) == {f"{t:g}" for t in GAIN_TARGETS}
    # adaptive at each k against uniform at every k as large or larger, paired
    assert [(r["adaptive_k"], r["uniform_k"]) for r in result["adaptive_minus_uniform"]] == [(16, 16), (16, 32), (32, 32)]
    for row in result["adaptive_minus_uniform"]:
        gains = (adaptive["k"][str(row["adaptive_k"])]["gain_recovered"], uniform["k"][str(row["uniform_k"])]["gain_recovered"])
        if None not in gains and row["gain_difference"] is not None:
            assert abs(row["gain_difference"] - (gains[0] - gains[1])) < 1e-9


def test_draws_do_not_depend_on_the_k_list(table):
    """The rows drawn for (seed, fold, model, k, draw) are the same whichever other k are asked:
    every per-model routed accuracy at k = 32 is identical, for both samplers."""
    both = _bench(table, [16, 32], repeats=1)
    alone = _bench(table, [32], repeats=1)
    for a, b in zip(both["per_model"], alone["per_model"]):
        assert a["U_k"]["32"] == b["U_k"]["32"]
        assert a["U_k_adaptive"]["32"] == b["U_k_adaptive"]["32"]


def test_examples_to_gain_is_the_smallest_k_within_the_harm_limit():
    entry = {"16": {"gain_recovered": 0.7, "harm": 0.01}, "32": {"gain_recovered": 0.76, "harm": 0.001},
             "64": {"gain_recovered": 0.95, "harm": 0.0}}
    assert examples_to_gain(entry, [16, 32, 64]) == {"0.6": 32, "0.75": 32, "0.9": 64}


def test_the_uniform_sampler_is_always_run(table):
    with pytest.raises(UsageError, match="--sampler"):
        bench_coldstart(table, ["model1"], ks=[16], folds=2, samplers=("adaptive",))
    with pytest.raises(UsageError, match="--sampler"):
        bench_coldstart(table, ["model1"], ks=[16], folds=2, samplers=("uniform", "greedy"))


def test_the_stop_value_sets_how_early_the_adaptive_sampler_stops(table):
    """--stop-value: a threshold no run can reach stops every run once a token has its 16
    outcomes; 0 stops only where no decision can move, so it never uses fewer examples than the
    default; the value used is in the result."""
    def run(stop_value):
        return bench_coldstart(table, ["model1"], ks=[32], folds=2, repeats=1, config=TINY, onboard_config=ONBOARD,
                               samplers=("uniform", "adaptive"), stop_value=stop_value)

    eager, default, never = run(1.0), run(SamplerConfig.stop_value), run(0.0)
    assert eager["adaptive_stop_value"] == 1.0 and never["adaptive_stop_value"] == 0.0
    assert eager["samplers"]["adaptive"]["k"]["32"]["examples_used"] == 16
    assert eager["samplers"]["adaptive"]["k"]["32"]["stops"] == {"settled": 2}
    used = lambda result: result["samplers"]["adaptive"]["k"]["32"]["examples_used"]  # noqa: E731
    assert used(eager) <= used(default) <= used(never)
    with pytest.raises(UsageError, match="--stop-value"):
        run(-1.0)


def test_the_cli_stop_value_and_prior_scale_defaults_are_the_samplers():
    import inspect

    from lrcal.cli.bench import bench_coldstart_command

    parameters = inspect.signature(bench_coldstart_command).parameters
    assert parameters["stop_value"].default.default == SamplerConfig.stop_value
    assert parameters["prior_scale"].default.default == SamplerConfig.prior_scale


def test_the_prior_scale_reaches_the_adaptive_sampler(table):
    """--prior-scale: the adaptive draws change with it, the uniform ones do not, and the value
    used is in the result."""
    def run(scale):
        return bench_coldstart(table, ["model1"], ks=[32], folds=2, repeats=2, config=TINY, onboard_config=ONBOARD,
                               samplers=("uniform", "adaptive"), prior_scale=scale)

    default, believed = run(SamplerConfig.prior_scale), run(1.0)
    assert default["adaptive_prior_scale"] == SamplerConfig.prior_scale and believed["adaptive_prior_scale"] == 1.0
    assert default["per_model"][0]["U_k"] == believed["per_model"][0]["U_k"]
    used = [r["samplers"]["adaptive"]["k"]["32"]["examples_used"] for r in (default, believed)]
    assert used[0] != used[1] or default["per_model"][0]["U_k_adaptive"] != believed["per_model"][0]["U_k_adaptive"]
    with pytest.raises(UsageError, match="--prior-scale"):
        run(0.0)


def test_more_seeds_do_not_narrow_the_interval_without_new_rows():
    """Each seed re-splits the same rows: resampling every seed's fold units as independent
    narrowed the interval by about 1/sqrt(seeds) (a review: 90 % intervals covered 0.53 with
    four seeds). The same rows under 1 and 4 seeds must give intervals of about one width."""
    from types import SimpleNamespace

    import numpy as np

    from lrcal.evaluation.coldstart import draw_intervals

    rng = np.random.default_rng(0)
    n, folds = 500, 5
    without = (rng.random(n) < 0.5).astype(float)
    full = np.maximum(without, (rng.random(n) < 0.2).astype(float))
    routed = np.where(rng.random(n) < 0.6, full, without)
    plan = SimpleNamespace(holdout=["h"], ks=[64], repeats=1)

    def width(seeds: int) -> float:
        units, sums, results = [], {}, {}
        for si in range(seeds):
            fold_of = np.random.default_rng(100 + si).permutation(n) % folds
            for f in range(folds):
                te = np.flatnonzero(fold_of == f)
                units.append((si, 100 + si, f, te))
                sums[(si, f)] = (full[te].sum(),)
                results[(si, f, 0)] = SimpleNamespace(without_sum=without[te].sum(), n_test=len(te),
                                                      routed={"m": {64: [routed[te].sum()]}})
        low, high = draw_intervals(plan, units, sums, results, "m", ["h"], [], replicates=400)[64]["gain_interval"]
        return high - low

    one, four = width(1), width(4)
    assert four > 0.8 * one, (one, four)


def _paired_units(adaptive_shift: float, seed: int = 0):
    """Five fold units of one headroom model with fold-to-fold spread that both samplers share;
    the adaptive draws route ``adaptive_shift`` of each unit's rows better than the uniform."""
    from types import SimpleNamespace

    import numpy as np

    rng = np.random.default_rng(seed)
    plan = SimpleNamespace(holdout=["h"], ks=[64, 128], repeats=3)
    units, sums, results = [], {}, {}
    for f in range(5):
        n = 200
        without = 80.0 + rng.normal(0, 8)
        full = without + 10.0 + rng.normal(0, 4)  # a headroom of 10 rows, varying by fold
        shared = rng.uniform(0.2, 0.8)  # how much of it this fold's onboarding recovers, both samplers
        uniform = {k: list(without + shared * (full - without) + rng.normal(0, 0.3, 3)) for k in (64, 128)}
        adaptive = {k: [v + adaptive_shift * n for v in uniform[k]] for k in (64, 128)}
        units.append((0, 0, f, np.arange(n)))
        sums[(0, f)] = (full,)
        results[(0, f, 0)] = SimpleNamespace(without_sum=without, n_test=n, routed={"onboard": uniform, "adaptive": adaptive})
    return plan, units, sums, results


def test_adaptive_minus_uniform_is_paired_over_the_same_folds_and_draws():
    """The difference is the two samplers' pooled gains subtracted, for adaptive at k against
    uniform at every k' >= k; its interval leaves out the fold spread both samplers share, so a
    small real advantage shows where the samplers' own intervals overlap almost entirely."""
    from lrcal.evaluation.coldstart import draw_intervals, sampler_differences

    plan, units, sums, results = _paired_units(adaptive_shift=0.005)
    rows = sampler_differences(plan, units, sums, results, ["h"], [], replicates=400)
    assert [(r["adaptive_k"], r["uniform_k"]) for r in rows] == [(64, 64), (64, 128), (128, 128)]
    own = {m: draw_intervals(plan, units, sums, results, m, ["h"], [], replicates=400) for m in ("onboard", "adaptive")}
    row = rows[0]
    # the difference of the point gains (per-model gain = pooled gain with one headroom model)
    point = own["adaptive"][64]["per_model_gain"]["h"]["gain"] - own["onboard"][64]["per_model_gain"]["h"]["gain"]
    assert abs(row["gain_difference"] - point) < 1e-12
    low, high = row["gain_difference_interval"]
    assert 0 < low <= row["gain_difference"] <= high
    assert row["adaptive_at_least_as_good"] == 1.0
    # unpaired, the two samplers' intervals overlap
    a, u = own["adaptive"][64]["gain_interval"], own["onboard"][64]["gain_interval"]
    assert a[0] < u[1]
    assert high - low < 0.5 * (u[1] - u[0])


def test_no_difference_between_the_samplers_gives_an_interval_around_zero():
    from lrcal.evaluation.coldstart import sampler_differences

    plan, units, sums, results = _paired_units(adaptive_shift=0.0)
    for row in sampler_differences(plan, units, sums, results, ["h"], [], replicates=200):
        low, high = row["gain_difference_interval"]
        assert low <= 0 <= high
        if row["uniform_k"] == row["adaptive_k"]:
            assert row["gain_difference"] == 0.0 and row["adaptive_at_least_as_good"] == 1.0


def test_every_router_without_a_model_fits_its_own_rule(table, monkeypatch):
    """A fold's routers without a model each fit their own decision rule, as a home's router
    without the newcomer did: by default on the full-pool router's out-of-fold predictions
    without the model's column (no new networks), with --refit-rule on fold networks of their
    own. The JSON says what each rule was fitted on; the default trains 2 folds x 4 fewer networks."""
    import lrcal.router.api as router_api

    calls = []
    real_fit_network = router_api.fit_network
    monkeypatch.setattr(router_api, "fit_network", lambda *a, **kw: calls.append(1) or real_fit_network(*a, **kw))
    columns = bench_coldstart(table, ["model1"], ks=[16], folds=2, config=TINY, onboard_config=ONBOARD)
    trained_columns, calls[:] = len(calls), []
    refit = bench_coldstart(table, ["model1"], ks=[16], folds=2, config=TINY, onboard_config=ONBOARD,
                            refit_rule=True)
    assert columns["refit_rule"] is False and refit["refit_rule"] is True
    assert sum(columns["rules_without"].values()) == sum(refit["rules_without"].values()) == 2
    for result in (columns, refit):
        assert all(key.endswith("(fitted on 3 models)") for key in result["rules_without"]), result["rules_without"]
    assert len(calls) - trained_columns == 2 * TINY.decision_folds
