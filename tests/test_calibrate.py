"""`lrcal add-model` + `lrcal calibrate` against real simulated endpoints on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.fixtures.flows import register_zoo

MODEL = "sim-docreader-m"


def _outcomes(home, model=MODEL):
    conn = sqlite3.connect(home / "lrcal.db")
    conn.row_factory = sqlite3.Row
    rows = conn.execute(
        "select o.*, e.task_group, e.example_id as ex from outcomes o join runs r on r.id = o.run_id "
        "join models m on m.id = r.model_id join examples e on e.id = o.example_id "
        "where m.name = ? and r.kind = 'calibration'",
        [model],
    ).fetchall()
    conn.close()
    return [dict(r) for r in rows]


def test_calibrate_stores_one_outcome_per_example_and_reports_them(cli, home, zoo_server):
    added = register_zoo(cli, zoo_server)
    assert len(added) >= 7
    result = cli("calibrate", MODEL, "--set", "builtin-v1", "--json", "--concurrency", "16")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = _outcomes(home)
    assert report["examples"] == report["completed"] == len(rows) == 128
    assert len({r["run_id"] for r in rows}) == 1
    assert all(r["latency_ms"] > 0 and r["input_tokens"] > 0 and r["output_tokens"] > 0 for r in rows)
    assert all(r["cost_usd"] > 0 for r in rows)
    # The JSON's per-task accuracies are exactly what is stored.
    for group, stats in report["per_task"].items():
        group_rows = [r for r in rows if r["task_group"] == group]
        assert stats["n"] == len(group_rows)
        assert stats["accuracy"] == pytest.approx(sum(r["correct"] for r in group_rows) / len(group_rows))
    assert report["accuracy"] == pytest.approx(sum(r["correct"] for r in rows) / 128)
    models = json.loads(cli("models", "--json").stdout)
    mine = next(m for m in models if m["name"] == MODEL)
    assert mine["status"] == "calibrated" and mine["calibrated_examples"] == 128
    assert {"name", "status", "base_url", "api_model", "price_in_per_mtok", "price_out_per_mtok",
            "calibrated_examples", "token_fitted", "enabled"} <= set(mine)  # fmt: skip


def test_rerun_resumes_without_new_requests(cli, home, zoo_server):
    register_zoo(cli, zoo_server, names={MODEL})
    assert cli("calibrate", MODEL, "--limit", "12").exit_code == 0
    before = zoo_server.request_counts.get(MODEL, 0)
    again = cli("calibrate", MODEL, "--limit", "12", "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["completed"] == 12
    assert zoo_server.request_counts.get(MODEL, 0) == before
    assert len(_outcomes(home)) == 12


def test_a_rerun_asking_fewer_examples_leaves_the_finished_run_as_it_was(cli, home, zoo_server):
    """A completed run asked again for a smaller --limit sends nothing, stays completed (it was
    left 'running'), and keeps the widest limit it holds outcomes for (it was overwritten)."""
    register_zoo(cli, zoo_server, names={MODEL})
    assert cli("calibrate", MODEL, "--limit", "12", "--no-fit").exit_code == 0
    before = zoo_server.request_counts.get(MODEL, 0)
    smaller = cli("calibrate", MODEL, "--limit", "6", "--no-fit", "--json")
    assert smaller.exit_code == 0, smaller.output
    assert json.loads(smaller.stdout)["completed"] == 6
    assert zoo_server.request_counts.get(MODEL, 0) == before
    conn = sqlite3.connect(home / "lrcal.db")
    (status, parameters), = conn.execute("select status, parameters from runs").fetchall()
    conn.close()
    assert status == "completed" and json.loads(parameters)["limit"] == 12
    wider = cli("calibrate", MODEL, "--limit", "18", "--no-fit", "--json")  # resumes: 6 more, limit 18
    assert wider.exit_code == 0 and json.loads(wider.stdout)["completed"] == 18
    conn = sqlite3.connect(home / "lrcal.db")
    (status, parameters), = conn.execute("select status, parameters from runs").fetchall()
    conn.close()
    assert status == "completed" and json.loads(parameters)["limit"] == 18
    assert len(_outcomes(home)) == 18
    # an unfinished run is judged (and finished) on the selection asked now, not a wider one
    conn = sqlite3.connect(home / "lrcal.db")
    conn.execute("update runs set status = 'interrupted', parameters = json_set(parameters, '$.limit', 30)")
    conn.commit()
    conn.close()
    again = cli("calibrate", MODEL, "--limit", "12", "--no-fit", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["completed"] == 12
    conn = sqlite3.connect(home / "lrcal.db")
    (status, parameters), = conn.execute("select status, parameters from runs").fetchall()
    conn.close()
    assert status == "completed" and json.loads(parameters)["limit"] == 12


def test_limit_is_stratified_by_task_group(cli, home, zoo_server):
    register_zoo(cli, zoo_server, names={MODEL})
    report = json.loads(cli("calibrate", MODEL, "--limit", "12", "--json").stdout)
    assert set(report["per_task"]) == {"ocr", "chart", "document", "spatial", "vqa", "math"}
    assert all(stats["n"] == 2 for stats in report["per_task"].values())


def test_sigkill_halfway_then_resume_gives_exactly_one_outcome_per_example(home, sim_server, builtin_sets):
    server = sim_server(sets=builtin_sets, latency_scale=0.3)  # slow enough to kill mid-run
    env = {**os.environ, "LRCAL_HOME": str(home)}
    lrcal = [sys.executable, "-m", "lrcal"]
    subprocess.run(lrcal + ["add-model", MODEL, "--base-url", server.url, "--max-concurrency", "4"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    proc = subprocess.Popen(lrcal + ["calibrate", MODEL], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.1)
        try:
            if len(_outcomes(home)) >= 40:
                break
        except sqlite3.OperationalError:
            pass  # tables not there yet
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(_outcomes(home))
    assert 0 < partial < 128, "the kill should land mid-run"
    done = subprocess.run(lrcal + ["calibrate", MODEL, "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = _outcomes(home)
    assert len(rows) == 128
    assert len({(r["run_id"], r["example_id"]) for r in rows}) == 128
    assert len({r["run_id"] for r in rows}) == 1
    conn = sqlite3.connect(home / "lrcal.db")
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_transient_faults_are_retried_and_errors_recorded_by_kind(cli, home, sim_server, builtin_sets):
    server = sim_server(sets=builtin_sets, latency_scale=0.01, fail_rate=0.3, retry_after_s=0.05)
    register_zoo(cli, server, names={MODEL})
    result = cli("calibrate", MODEL, "--json", "--concurrency", "16")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = _outcomes(home)
    assert report["completed"] == len(rows) == 128
    retried_ok = [r for r in rows if r["attempts"] > 1 and r["error_kind"] is None]
    assert retried_ok, "some requests should have succeeded after a retry"
    assert all(json.loads(r["retried_errors"]) for r in retried_ok)
    errors = [r for r in rows if r["error_kind"] is not None]
    assert report["errors"] == len(errors)
    assert set(report["errors_by_kind"]) <= {"http_5xx", "http_4xx", "timeout", "connection", "malformed_response"}
    assert all(r["correct"] == 0 and r["score"] == 0 for r in errors)


def test_permanent_fault_is_recorded_not_fatal(cli, home, sim_server, builtin_sets):
    from lrcal.calsets import load_set, resolve_set

    first_id = load_set(resolve_set("builtin-v1")).examples[0].id
    server = sim_server(sets=builtin_sets, latency_scale=0.01, permanent={first_id: "http_500"})
    register_zoo(cli, server, names={MODEL})
    report = json.loads(cli("calibrate", MODEL, "--limit", "6", "--json").stdout)
    assert report["completed"] == 6
    failed = [r for r in _outcomes(home) if r["ex"] == first_id]
    assert failed and failed[0]["error_kind"] == "http_5xx" and failed[0]["attempts"] > 1


def test_api_key_value_never_reaches_the_database(cli, home, sim_server, builtin_sets, monkeypatch):
    sentinel = "sk-SENTINEL-4f1c9e0b7a2d"
    monkeypatch.setenv("LRCAL_TEST_KEY", sentinel)
    server = sim_server(sets=builtin_sets, latency_scale=0.01, api_key=sentinel)
    register_zoo(cli, server, names={MODEL}, extra=("--api-key-env", "LRCAL_TEST_KEY"))
    result = cli("calibrate", MODEL, "--limit", "6", "--json")
    assert result.exit_code == 0 and sentinel not in result.output
    assert json.loads(result.stdout)["errors"] == 0  # the key was sent and accepted
    for path in home.rglob("*"):
        if path.is_file():
            assert sentinel.encode() not in path.read_bytes(), f"key leaked into {path}"


def test_bad_input_gives_one_line_errors(cli, zoo_server):
    def error_of(*args):
        result = cli(*args)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return result.exit_code, lines

    code, lines = error_of("calibrate", "nope")
    assert code == 1 and len(lines) == 1 and "unknown model 'nope'" in lines[0]
    code, lines = error_of("add-model", "m", "--base-url", "not a url", "--no-probe")
    assert code == 2 and len(lines) == 1
    code, lines = error_of("add-model", "m", "--base-url", "https://user:pw@example.com/v1", "--no-probe")
    assert code == 2 and "api-key-env" in lines[0]
    code, lines = error_of("add-model", "m", "--base-url", zoo_server.url, "--price-in", "-1")
    assert code == 2 and len(lines) == 1
    code, lines = error_of("add-model", "m", "--base-url", zoo_server.url, "--max-concurrency", "0")
    assert code == 2 and len(lines) == 1
    code, lines = error_of("add-model", "m", "--base-url", "http://127.0.0.1:9/v1")  # nothing listens there
    assert code == 1 and len(lines) == 1
    assert json.loads(cli("models", "--json").stdout) == []  # nothing was written
    code, lines = error_of("calibrate", "x", "--set", "no-such-set")
    assert code == 1 and len(lines) == 1


def test_concurrency_above_the_models_limit_is_refused_and_below_it_is_honoured(cli, home, sim_server, builtin_sets):
    # the registered limit is the endpoint's: --concurrency used to replace it, so `--concurrency 64`
    # on a model registered at 4 sent 64 requests at once
    server = sim_server(sets=builtin_sets, fixed_latency_ms=40)
    register_zoo(cli, server, names={MODEL}, extra=("--max-concurrency", "4"))
    refused = cli("calibrate", MODEL, "--limit", "16", "--concurrency", "12")
    assert refused.exit_code == 2
    assert "above sim-docreader-m's max concurrency 4" in refused.output
    assert "lrcal models set sim-docreader-m --max-concurrency 12" in refused.output
    assert not _outcomes(home)
    result = cli("calibrate", MODEL, "--limit", "16", "--concurrency", "2", "--no-fit", "--json")
    assert result.exit_code == 0, result.output
    assert len(_outcomes(home)) == 16
    assert server.stats()["max_in_flight"][MODEL] == 2


def test_a_requested_concurrency_lowers_the_endpoint_limit_and_never_raises_it():
    # live-validate's --concurrency is per model: each model keeps its own registered limit
    from lrcal.services.collection import endpoint_config

    model = {"base_url": "http://127.0.0.1:1/v1", "api_model": "m", "name": "m", "api_style": "openai",
             "api_key_env": None, "timeout_s": 5.0, "max_concurrency": 4, "metadata": {}}
    assert endpoint_config(model).max_concurrency == 4
    assert endpoint_config(model, 2).max_concurrency == 2
    assert endpoint_config(model, 64).max_concurrency == 4
