"""Splits, baselines, metrics and the router benchmark (tiny configs; the real-data numbers
are in docs/benchmarks.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrcal.evaluation import baselines as B
from lrcal.evaluation.metrics import ece, frontier, level_slope, mean_std, nauc, pick_stats, pool_cost_range, qnc
from lrcal.evaluation.router_bench import bench_router
from lrcal.evaluation.splits import stratified_folds, stratified_split
from lrcal.evaluation.synthetic import synthetic_outcomes
from lrcal.router import RouterConfig

TINY = RouterConfig(hidden=16, query_tokens=2, capsules=2, layers=1, heads=2, warmup_max_steps=80,
                    warmup_patience=5, latent_max_steps=20, patience=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_stratified_split_is_70_10_20_per_task_and_deterministic():
    tasks = ["a"] * 100 + ["b"] * 50 + [None] * 10
    split = stratified_split(tasks, seed=3)
    assert np.array_equal(split.train, stratified_split(tasks, seed=3).train)
    assert not np.array_equal(split.train, stratified_split(tasks, seed=4).train)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert set().union(*parts) == set(range(160)) and sum(len(p) for p in parts) == 160
    t = np.asarray(tasks, dtype=object)
    assert (t[split.train] == "a").sum() == 70 and (t[split.val] == "a").sum() == 10 and (t[split.test] == "a").sum() == 20
    assert (t[split.test] == "b").sum() == 10
    folds = stratified_folds(tasks, 5, seed=0)
    assert sorted(np.concatenate(folds).tolist()) == list(range(160))
    assert all(abs(len(f) - 32) <= 2 for f in folds)


def test_baselines_on_a_hand_made_table():
    y_train = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, np.nan]], dtype=float)
    tasks_train = ["x", "x", "y", "y"]
    y_test = np.array([[0, 1, 0], [1, 0, 1], [np.nan, np.nan, np.nan]], dtype=float)
    bs = B.best_single(y_train, 3)
    assert B.routed(bs, y_test).tolist() == [0, 0, -1]
    pt = B.per_task_best(y_train, tasks_train, ["y", "x", "z"])
    assert B.routed(pt, y_test).tolist() == [1, 0, -1]
    assert B.accuracy_of(B.routed(pt, y_test), y_test) == 1.0
    assert B.random_accuracy(y_test) == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert B.oracle_accuracy(y_test) == 1.0
    X_train = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], dtype=float)
    knn = B.knn_predict(X_train, y_train, np.array([[0, 1], [1, 0]], dtype=float), k=2)
    assert knn.argmax(1).tolist() == [1, 0]


def test_logistic_floor_learns_a_linear_signal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.stack([(X[:, 0] > 0), (X[:, 0] <= 0)], 1).astype(float)
    pred, l2 = B.logistic_per_model(X[:200], y[:200], X[200:250], y[200:250], X[250:])
    assert B.accuracy_of(B.routed(pred, y[250:]), y[250:]) > 0.9 and l2 in B.LOGISTIC_L2


def test_metrics():
    assert pick_stats(np.array([0, 0, 2, -1]), ["a", "b", "c"]) == {"distinct_models": 2, "top_pick": "a",
                                                                    "top_pick_share": pytest.approx(2 / 3)}
    points = [{"lambda": 0, "accuracy": 0.8, "cost": 10.0}, {"lambda": 1, "accuracy": 0.6, "cost": 2.0}]
    assert nauc(points, 0.0, 10.0) == pytest.approx(0.6 * 0.8, abs=0.01)  # 0 below 0.2, then 0.6 up to 1
    assert qnc(points, 0.6, 4.0) == pytest.approx(0.5)
    assert qnc(points, 0.9, 4.0) is None
    assert mean_std([0.1, 0.3]) == (pytest.approx(0.2), pytest.approx(np.std([0.1, 0.3], ddof=1)))
    y = np.array([[1, 0], [0, 1]], dtype=float)
    cost = np.array([[1.0, 3.0], [1.0, 3.0]])
    assert pool_cost_range(y, cost) == (1.0, 3.0)
    pts = frontier(np.array([[0.9, 0.1], [0.1, 0.9]]), y, cost, np.array([1.0, 3.0]), lambdas=(0.0, 5.0))
    assert pts[0]["accuracy"] == 1.0 and pts[0]["cost"] == 2.0
    assert pts[1]["accuracy"] == 0.5 and pts[1]["cost"] == 1.0  # expensive model priced out


def test_mu_calibration_metrics():
    rng = np.random.default_rng(0)
    acc = np.array([0.3, 0.5, 0.7, 0.9])
    y = (rng.random((4000, 4)) < acc).astype(float)
    y[:100, 0] = np.nan  # not run
    exact = np.broadcast_to(acc, y.shape).copy()
    squeezed = 0.6 + 0.25 * (exact - 0.6)  # the model gaps shown 4x smaller
    assert level_slope(exact, y) == pytest.approx(1.0, abs=0.05)
    assert level_slope(squeezed, y) == pytest.approx(4.0, abs=0.2)
    assert level_slope(exact[:, :1], y[:, :1]) is None  # one model: no slope
    ok = np.isfinite(y)
    assert ece(exact[ok], y[ok]) < 0.02
    assert ece(np.full(1000, 0.9), np.r_[np.ones(500), np.zeros(500)]) == pytest.approx(0.4)


def test_bench_router_structure_and_costs():
    table = synthetic_outcomes(n=160, n_models=4, seed=1, with_costs=True)
    result = bench_router(table, seeds=(0, 1), config=TINY, ensemble=1)
    json.dumps(result)  # serializable
    assert result["seeds"] == [0, 1]
    for name in ("router", "best_single", "per_task_best", "knn", "logistic", "random", "oracle"):
        entry = result["methods"][name]
        assert 0.0 <= entry["accuracy_mean"] <= 1.0 and len(entry["accuracy_per_seed"]) == 2
    methods = result["methods"]
    assert methods["oracle"]["accuracy_mean"] >= methods["router"]["accuracy_mean"] >= methods["random"]["accuracy_mean"]
    assert 1 <= methods["router"]["distinct_models_mean"] <= 4
    assert 0.0 <= methods["router"]["mu_ece_mean"] <= 1.0 and methods["router"]["level_slope_mean"] is not None
    paired = result["paired_router_minus"]["per_task_best"]
    diffs = [a - b for a, b in zip(methods["router"]["accuracy_per_seed"], methods["per_task_best"]["accuracy_per_seed"])]
    assert paired["diff_per_seed"] == pytest.approx(diffs)
    lo, hi = paired["ci95"]
    assert lo <= paired["diff_mean"] <= hi
    assert set(result["costs"]) == {"nauc", "ps", "qnc"}
    assert 0.0 <= result["costs"]["nauc"]["mean"] <= 1.0


def test_cross_fitting_tests_every_row_once_per_seed():
    from lrcal.evaluation.router_bench import units_for

    tasks = [("a", "b", "c")[i % 3] for i in range(97)]
    units = units_for(tasks, seeds=[0, 1], folds=5)
    assert len(units) == 10
    for seed in (0, 1):
        tests = np.concatenate([u.test for u in units if u.seed == seed])
        assert sorted(tests.tolist()) == list(range(97))
    for u in units:  # train, validation and test never share a row
        assert not (set(u.train) & set(u.val) or set(u.train) & set(u.test) or set(u.val) & set(u.test))
        assert len(u.train) + len(u.val) + len(u.test) == 97


def test_null_table_permutes_queries_within_tasks_and_keeps_outcomes():
    from lrcal.evaluation.router_bench import null_table

    table = synthetic_outcomes(n=120, n_models=3, seed=4)
    permuted = null_table(table, seed=0)
    assert np.array_equal(permuted.scores, table.scores) and permuted.tasks == table.tasks
    assert permuted.questions != table.questions
    for task in set(table.tasks):
        rows = [i for i, t in enumerate(table.tasks) if t == task]
        assert sorted(permuted.questions[i] for i in rows) == sorted(table.questions[i] for i in rows)


def test_paired_interval_covers_a_known_difference():
    from lrcal.evaluation.router_bench import paired_interval

    rng = np.random.default_rng(0)
    diff = (rng.random(4000) < 0.55).astype(float) - (rng.random(4000) < 0.5).astype(float)
    mean, lo, hi = paired_interval(diff)
    assert lo < 0.05 < hi and hi - lo < 0.06
    assert paired_interval(np.zeros(50)) == (0.0, 0.0, 0.0)


def test_bench_router_folds_null_and_ablation_run_on_the_same_rows():
    table = synthetic_outcomes(n=150, n_models=3, seed=6)
    result = bench_router(table, seeds=(0,), folds=3, null=True, ablate=["latent"], config=TINY, ensemble=1)
    assert result["null"] and result["folds"] == 3 and len(result["per_unit"]) == 3
    assert "ablate:latent" in result["methods"] and "ablate:latent" in result["paired_router_minus"]
    with pytest.raises(Exception, match="unknown ablation"):
        bench_router(table, seeds=(0,), folds=3, ablate=["nope"], config=TINY, ensemble=1)


def test_cli_bench_router_json_and_table(cli, tmp_path):
    from tests.fixtures.tables import write_wide_csv

    path = write_wide_csv(synthetic_outcomes(n=160, n_models=3, seed=2), tmp_path / "outcomes.csv")
    out = cli("bench", "router", "--outcomes", str(path), "--seeds", "1", "--ensemble", "1", "--threads", "1", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["dataset"] == "outcomes" and data["n_models"] == 3
    assert set(data["methods"]) >= {"router", "best_single", "per_task_best", "knn", "random", "oracle"}
    bad = tmp_path / "bad.csv"
    bad.write_text("sample_id,question\n1,q\n")
    out = cli("bench", "router", "--outcomes", str(bad))
    assert out.exit_code == 1 and "no '<model>_correct' column" in out.output and "Traceback" not in out.output


def test_cli_bench_features_and_forward(cli):
    out = cli("bench", "features", "--queries", "12", "--size", "64", "--threads", "1", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["queries"] == 12 and data["deterministic"] is True and data["ratio_to_decode"] > 0
    out = cli("bench", "forward", "--models", "3", "--repeats", "1", "--threads", "1", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["parameters"] <= 1_000_000 and {r["batch"] for r in data["rows"]} == {256, 1}
    out = cli("bench", "forward", "--models", "x")
    assert out.exit_code == 2 and "--models" in out.output
