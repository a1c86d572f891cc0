"""Profile prior: task-adjusted centres and the strength chosen by simulated cold starts."""

from __future__ import annotations

import numpy as np
import pytest

from lrcal.errors import LrcalError
from lrcal.router.profiles import (N_GLOBAL, PRIOR_STRENGTHS, ProfilePrior, compute_profiles, fit_profile_prior,
                                  task_centers)


def _outcomes(task_acc: np.ndarray, rows_per_task: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bernoulli outcomes [N, K] of K models with per-task accuracies ``task_acc`` [K, V]."""
    rng = np.random.default_rng(seed)
    k, v = task_acc.shape
    tasks = np.repeat(np.arange(v), rows_per_task)
    scores = (rng.random((len(tasks), k)) < task_acc[:, tasks].T).astype(float)
    return tasks, scores


def test_task_centres_average_to_the_overall_accuracy():
    overall = np.array([0.3, 0.6, 0.9])
    counts = np.array([[10.0, 0, 5, 5], [1, 1, 1, 1], [0, 0, 0, 0]])
    offsets = np.array([-1.0, 0.5, 0.0, 1.5])
    centres = task_centers(overall, counts, offsets)
    weights = np.where(counts.sum(1, keepdims=True) > 0, counts / np.maximum(counts.sum(1, keepdims=True), 1), 0.25)
    assert np.allclose((weights * centres).sum(1), overall, atol=1e-6)
    # the task pattern is kept: centres follow the offsets' order for every model
    assert all(np.array_equal(np.argsort(c), np.argsort(offsets)) for c in centres)
    assert np.allclose(task_centers(overall, counts, None), overall[:, None])


def test_hard_task_does_not_inherit_a_strong_models_average():
    # every model is near chance on task 0 and good on task 1: a strong newcomer with no rows on
    # task 0 is centred low there with the task centre, at its overall accuracy without it
    offsets = np.array([-1.5, 1.5])
    counts = np.array([[0.0, 20.0]])
    sums = np.array([[0.0, 18.0]])
    scores = np.concatenate([np.ones(18), np.zeros(2)])[:, None]
    tasks = np.ones(20, dtype=np.int64)
    plain = compute_profiles(tasks, 2, scores, smoothing=8.0)
    adjusted = compute_profiles(tasks, 2, scores, smoothing=8.0, task_offsets=offsets)
    assert counts.sum() == 20 and sums.sum() == 18
    assert plain.task_accuracy[0, 0] == pytest.approx(plain.task_accuracy[0, 2])  # the overall accuracy
    assert adjusted.task_accuracy[0, 0] < 0.5 < adjusted.task_accuracy[0, 1]


def test_small_task_effects_get_strong_shrinkage_large_ones_light():
    rng = np.random.default_rng(0)
    v, k = 12, 14
    strength = rng.uniform(-1.0, 1.0, size=(k, 1))
    # small effects: every model's tasks within a few points of its level
    small = 1 / (1 + np.exp(-(strength + rng.normal(0, 0.1, size=(k, v)))))
    # specialists: one task each far above the model's level
    big = 1 / (1 + np.exp(-(strength - 0.5 + 3.5 * (np.arange(v)[None, :] == (np.arange(k) % v)[:, None]))))
    chosen = {}
    for name, acc in (("small", small), ("big", big)):
        tasks, scores = _outcomes(acc, 60, seed=1)
        chosen[name] = fit_profile_prior(tasks, v, scores)
    assert chosen["small"].strength >= 16
    assert chosen["big"].strength <= 8
    assert chosen["small"].strength > chosen["big"].strength
    for prior in chosen.values():
        assert prior.chosen_by.startswith("simulated cold starts")
        assert len(prior.scores) == 2 * len(PRIOR_STRENGTHS)  # both centres, every strength


def test_task_centre_is_chosen_when_tasks_differ_in_difficulty():
    rng = np.random.default_rng(2)
    v, k = 10, 12
    difficulty = np.linspace(-2.0, 2.0, v)
    acc = 1 / (1 + np.exp(-(rng.uniform(-0.5, 0.5, size=(k, 1)) + difficulty[None, :] + rng.normal(0, 0.1, (k, v)))))
    tasks, scores = _outcomes(acc, 60, seed=3)
    prior = fit_profile_prior(tasks, v, scores)
    assert prior.center == "task"
    d = prior.offsets(v)
    assert np.corrcoef(d, difficulty)[0, 1] > 0.95


def test_prior_without_tasks_or_rows_is_the_fixed_default():
    assert fit_profile_prior(np.zeros(10, dtype=np.int64), 0, np.ones((10, 2))) == ProfilePrior()
    assert fit_profile_prior(np.full(10, -1), 3, np.ones((10, 2))).chosen_by == "fixed"


def test_prior_round_trips_and_refuses_malformed_input():
    prior = ProfilePrior(strength=16.0, center="task", task_offsets=(0.5, -0.5), chosen_by="simulated cold starts")
    again = ProfilePrior.from_dict(prior.to_dict())
    assert again == prior and again.offsets(2).tolist() == [0.5, -0.5]
    with pytest.raises(LrcalError, match="task offsets"):
        prior.offsets(3)
    for bad in ({"strength": -1, "center": "task"}, {"strength": 4, "center": "median"}, {"center": "task"}, []):
        with pytest.raises(LrcalError, match="malformed profile prior"):
            ProfilePrior.from_dict(bad)


def test_partial_coverage_and_fractional_scores_are_handled():
    rng = np.random.default_rng(4)
    tasks = np.repeat(np.arange(5), 80)
    scores = rng.random((400, 6))  # fractional scores in [0, 1]
    scores[rng.random((400, 6)) < 0.3] = np.nan  # models not run on every row
    scores[tasks == 4, 2] = np.nan  # a model never run on one task
    prior = fit_profile_prior(tasks, 5, scores)
    assert prior.strength in PRIOR_STRENGTHS and prior.center in ("overall", "task")
    assert np.all(np.isfinite(prior.offsets(5))) if prior.center == "task" else prior.task_offsets == ()
    assert fit_profile_prior(tasks, 5, scores[:, :1]).chosen_by == "simulated cold starts, expected log-likelihood"  # nobody to route against


@pytest.fixture(scope="module")
def small_router():
    from lrcal.evaluation.synthetic import synthetic_outcomes
    from lrcal.features import fit_feature_spec
    from lrcal.router import RouterConfig, RouterData, train_router

    cfg = RouterConfig(hidden=16, query_tokens=2, capsules=2, layers=1, heads=2, warmup_max_steps=60,
                       latent_max_steps=10, patience=2, batch_size=64)
    table = synthetic_outcomes(n=300, n_models=6, seed=5)
    spec = fit_feature_spec(table.tasks, table.metadata)
    data = RouterData.from_table(table, spec)
    return train_router(data, spec, cfg, seed=0, ensemble=1), data, cfg, table


def test_router_fits_saves_and_uses_its_prior(tmp_path, small_router):
    from lrcal.router import load_router, read_sidecar, save_router

    router, data, _cfg, _table = small_router
    prior = router.profile_prior
    assert prior.chosen_by.startswith("simulated cold starts")
    assert router.info["profile_prior"]["strength"] == prior.strength
    # every profile the router makes uses it: a newcomer's per-task accuracy is the prior's estimate
    rows = np.arange(64)
    _, task_acc = router.profile_from_outcomes(data.task_ids[rows], data.scores[rows, 0])
    v = len(router.spec.task_vocab)
    expected = compute_profiles(data.task_ids[rows], v, data.scores[rows, :1], smoothing=prior.strength,
                                task_offsets=prior.offsets(v), task_weights=router.traffic_task_mix()).task_accuracy[0]
    assert np.allclose(task_acc, expected)
    save_router(router, tmp_path / "r")
    assert read_sidecar(tmp_path / "r")["profile_prior"]["center"] == prior.center
    assert load_router(tmp_path / "r").profile_prior == prior


def test_artifact_without_a_prior_loads_with_the_old_fixed_one(tmp_path, small_router):
    import json

    from lrcal.router import load_router, save_router

    router, _data, _cfg, _table = small_router
    save_router(router, tmp_path / "r")
    sidecar = json.loads((tmp_path / "r" / "router.json").read_text())
    del sidecar["profile_prior"]
    (tmp_path / "r" / "router.json").write_text(json.dumps(sidecar))
    legacy = load_router(tmp_path / "r").profile_prior
    assert (legacy.center, legacy.strength, legacy.chosen_by) == ("overall", router.config.profile_smoothing, "fixed")
    sidecar["profile_prior"] = {"strength": 8.0, "center": "task", "task_offsets": [0.1]}  # wrong vocabulary size
    (tmp_path / "r" / "router.json").write_text(json.dumps(sidecar))
    with pytest.raises(LrcalError, match="task offsets"):
        load_router(tmp_path / "r")


def test_fixed_prior_config_keeps_the_overall_centre(small_router):
    from lrcal.features import fit_feature_spec
    from lrcal.router import RouterData, train_router

    _router, _data, cfg, table = small_router
    spec = fit_feature_spec(table.tasks, table.metadata)
    fixed = train_router(RouterData.from_table(table, spec), spec, cfg.replace(profile_prior="fixed", profile_smoothing=6.0),
                         seed=0, ensemble=1)
    assert (fixed.profile_prior.center, fixed.profile_prior.strength) == ("overall", 6.0)
    with pytest.raises(LrcalError, match="profile_prior"):
        cfg.replace(profile_prior="sometimes")


def test_router_states_a_newcomers_overall_accuracy_for_its_training_task_mix(small_router):
    router, data, _cfg, _table = small_router
    v = len(router.spec.task_vocab)
    mix = router.traffic_task_mix()
    trained_rows = np.bincount(data.task_ids[data.task_ids >= 0], minlength=v) * len(data.models)
    assert np.allclose(mix, trained_rows)  # every model was trained on every row
    # rows of one task only: the overall level is the mix-weighted per-task estimate, not that task's mean
    rows = np.flatnonzero(data.task_ids == 0)[:40]
    _, task_acc = router.profile_from_outcomes(data.task_ids[rows], data.scores[rows, 0])
    assert task_acc[-1] == pytest.approx(float((task_acc[:v] * mix / mix.sum()).sum()), abs=1e-6)
    # an onboarded card's calibration rows are not the traffic: they do not move the mix
    from lrcal.router.cards import ModelCard

    onboarded = ModelCard(name="newcomer", profile=router.cards[data.models[0]].profile.copy(),
                          task_accuracy=router.cards[data.models[0]].task_accuracy.copy(), n_rows=40,
                          source="onboarded")
    router.add_model(onboarded)
    try:
        assert np.allclose(router.traffic_task_mix(), mix)
    finally:
        router.remove_model("newcomer")


def test_overall_accuracy_is_post_stratified_to_the_traffic_task_mix():
    # a model asked mostly where it is weak (an adaptive calibration spends its examples on the
    # open task groups): its rows' raw mean understates what the traffic sees
    tasks = np.repeat([0, 1], [60, 10])
    scores = np.r_[np.ones(12), np.zeros(48), np.ones(9), np.zeros(1)][:, None]  # 0.2 on task 0, 0.9 on task 1
    raw = compute_profiles(tasks, 2, scores, smoothing=4.0)
    mixed = compute_profiles(tasks, 2, scores, smoothing=4.0, task_weights=np.array([1.0, 1.0]))
    assert raw.task_accuracy[0, 2] == pytest.approx(22 / 72)
    assert np.allclose(mixed.task_accuracy[0, :2], raw.task_accuracy[0, :2])  # per-task estimates unchanged
    assert mixed.task_accuracy[0, 2] == pytest.approx(mixed.task_accuracy[0, :2].mean())
    assert mixed.task_accuracy[0, 2] > raw.task_accuracy[0, 2] + 0.15  # (0.21 + 0.73) / 2 against 0.31
    # the profile's overall feature and its per-task deviations follow
    assert mixed.vectors[0, 0] == pytest.approx(mixed.task_accuracy[0, 2])
    assert np.allclose(mixed.vectors[0, N_GLOBAL:N_GLOBAL + 2], mixed.task_accuracy[0, :2] - mixed.task_accuracy[0, 2])
    # rows that are a sample of the traffic (equal counts, equal shares): the raw mean
    even = compute_profiles(np.repeat([0, 1], 30), 2, np.r_[np.ones(6), np.zeros(24), np.ones(27), np.zeros(3)][:, None],
                            smoothing=4.0, task_weights=np.array([1.0, 1.0]))
    assert even.task_accuracy[0, 2] == pytest.approx(34 / 62, abs=2e-3)  # between 33 / 60 and its Beta(1, 1) smoothing
    # rows outside the router's tasks: their share of the traffic is unknown, the raw mean stays
    unknown = compute_profiles(np.r_[tasks, [-1, -1]], 2, np.r_[scores, [[1.0], [1.0]]], smoothing=4.0,
                               task_weights=np.array([1.0, 1.0]))
    assert unknown.task_accuracy[0, 2] == pytest.approx(24 / 74)
    with pytest.raises(ValueError):
        compute_profiles(tasks, 2, scores, task_weights=np.array([1.0]))


def test_post_stratified_overall_is_closer_to_the_truth_under_unbalanced_calibration():
    # truth: 0.2 / 0.9 / 0.6 on three equally frequent tasks (0.567 overall); the calibration
    # asked 40 / 8 / 16 rows there, as an adaptive run might
    truth = np.array([0.2, 0.9, 0.6])
    counts = np.array([40, 8, 16])
    tasks = np.repeat(np.arange(3), counts)
    raw_err, mixed_err = [], []
    for seed in range(200):
        y = (np.random.default_rng(seed).random(len(tasks)) < truth[tasks]).astype(float)[:, None]
        raw_err.append(compute_profiles(tasks, 3, y, smoothing=4.0).task_accuracy[0, 3] - truth.mean())
        mixed_err.append(compute_profiles(tasks, 3, y, smoothing=4.0, task_weights=np.ones(3)).task_accuracy[0, 3]
                         - truth.mean())
    assert np.mean(raw_err) < -0.15  # the raw mean is dragged to the task asked most
    assert abs(np.mean(mixed_err)) < abs(np.mean(raw_err)) / 2
    assert np.mean(np.square(mixed_err)) < np.mean(np.square(raw_err)) / 2


def test_cli_router_train_reports_the_chosen_prior(cli, tmp_path):
    import json

    from lrcal.evaluation.synthetic import synthetic_outcomes
    from tests.fixtures.tables import write_wide_csv

    path = write_wide_csv(synthetic_outcomes(n=160, n_models=3, seed=2), tmp_path / "outcomes.csv")
    out = cli("router", "train", "--outcomes", str(path), "--ensemble", "1")
    assert out.exit_code == 0, out.output
    assert "1 network)." in out.stdout
    assert "Per-task accuracy in profiles: shrunk toward" in out.stdout and "chosen by simulated cold starts" in out.stdout
    out = cli("router", "list", "--json")
    assert out.exit_code == 0, out.output
    out = cli("router", "train", "--ensemble", "1", "--json")
    data = json.loads(out.stdout)
    assert data["profile_prior"]["center"] in ("overall", "task") and data["profile_prior"]["strength"] in PRIOR_STRENGTHS


def test_a_task_only_one_model_ran_does_not_break_the_prior_fit():
    """A review: a task only one model has outcomes on (a specialist's own log) gave inf - inf in
    the simulated cold starts, then `min()` of nothing: `router train` crashed."""
    import math

    from lrcal.router.profiles import fit_profile_prior

    rng = np.random.default_rng(0)
    task = np.repeat([0, 1, 2], 200)
    scores = (rng.random((600, 3)) < 0.6).astype(float)
    scores[task == 2, :2] = np.nan
    prior = fit_profile_prior(task, 3, scores)
    assert prior.strength > 0 and all(math.isfinite(v) for v in prior.scores.values())
