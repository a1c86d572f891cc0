"""`bench coldstart --jobs N`: worker processes give the same numbers as one process."""

from __future__ import annotations

import pytest

from lrcal.errors import UsageError
from lrcal.evaluation.coldstart import bench_coldstart
from lrcal.evaluation.synthetic import synthetic_outcomes
from lrcal.router import RouterConfig
from lrcal.router.token_fit import OnboardConfig

TINY = RouterConfig(hidden=16, query_tokens=2, capsules=2, layers=1, heads=2, warmup_max_steps=24,
                    warmup_patience=8, latent_max_steps=6, patience=2, batch_size=64)
TIMINGS = ("seconds", "router_train_seconds", "fit_seconds", "jobs", "worker_processes")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(table, jobs: int, messages: list[str]) -> dict:
    return bench_coldstart(table, ["model2", "model3"], ks=[16], folds=2, seeds=[0], repeats=2, config=TINY,
                           onboard_config=OnboardConfig(max_steps=10, folds=2, bootstrap=5), jobs=jobs,
                           progress=messages.append)


def test_two_worker_processes_give_the_numbers_of_one_process():
    table = synthetic_outcomes(n=200, n_models=4, seed=2)
    said_in_process, said_by_pool = [], []
    in_process = _run(table, 1, said_in_process)
    pooled = _run(table, 2, said_by_pool)
    assert (in_process["jobs"], in_process["worker_processes"]) == (1, 0)
    assert (pooled["jobs"], pooled["worker_processes"]) == (2, 2)
    assert pooled["torch_threads"] == in_process["torch_threads"] == 1
    # every number, bit for bit: accuracy, gain, harm, per model, baselines, calibration error
    for key in in_process:
        if key not in TIMINGS:
            assert pooled[key] == in_process[key], key
    assert [row["model"] for row in pooled["per_model"]] == ["model2", "model3"]
    assert all(0.0 < row["U_without"] < 1.0 for row in pooled["per_model"])  # real routing happened
    assert pooled["fit_seconds"]["mean"] > 0
    # progress from the parent: one line per unit (2 folds + 2 x 2 held-out models) and per finished fold
    for said in (said_in_process, said_by_pool):
        assert sum("full-pool router trained" in m for m in said) == 2
        assert sum("routed accuracy without it" in m for m in said) == 4
        assert sum(m.endswith("s)") and " done (" in m for m in said) == 2
        assert "[6/6 units]" in " ".join(said)


def test_negative_jobs_is_a_usage_error(cli, tmp_path):
    table = synthetic_outcomes(n=40, n_models=3, seed=1)
    with pytest.raises(UsageError, match="--jobs"):
        bench_coldstart(table, ["model2"], ks=[16], folds=2, jobs=-1)
    path = tmp_path / "outcomes.csv"
    path.write_text("sample_id,task,question,a_correct,b_correct\n1,t,q,1,0\n2,t,q,0,1\n")
    out = cli("bench", "coldstart", "--outcomes", str(path), "--jobs", "-2")
    assert out.exit_code == 2
    assert "Error: Invalid value for '--jobs': Input should be greater than or equal to 0" in out.output
    assert "Traceback" not in out.output


def test_cli_refit_rule_reaches_the_benchmark(cli, tmp_path):
    """`bench coldstart --refit-rule`: every router without the held-out model fits its own rule
    (fitted on the other 2 models), and the JSON says so."""
    import json

    from tests.fixtures.tables import write_wide_csv

    path = write_wide_csv(synthetic_outcomes(n=120, n_models=3, seed=4), tmp_path / "outcomes.csv")
    out = cli("bench", "coldstart", "--outcomes", str(path), "--holdout", "model1", "--k", "16", "--folds", "2",
              "--refit-rule", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["refit_rule"] is True and sum(data["rules_without"].values()) == 2
    assert all(key.endswith("(fitted on 2 models)") for key in data["rules_without"]), data["rules_without"]


def test_cli_prints_the_paired_sampler_differences(cli, tmp_path):
    """With both samplers the table output ends with adaptive minus uniform, paired."""
    from tests.fixtures.tables import write_wide_csv

    path = write_wide_csv(synthetic_outcomes(n=120, n_models=3, seed=4), tmp_path / "outcomes.csv")
    out = cli("bench", "coldstart", "--outcomes", str(path), "--holdout", "model1", "--k", "16", "--folds", "2",
              "--sampler", "uniform,adaptive", "--repeats", "2")
    assert out.exit_code == 0, out.output
    assert "adaptive minus uniform, paired over the same folds and draws" in out.output
