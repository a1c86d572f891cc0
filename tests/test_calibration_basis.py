"""What a capability token rests on (`lrcal.services.calibration_basis`): a refused run, a run
on a since-edited set and runs before `--fresh` are left out of the fit, router training and the
counts -- against the onboarded flow home and the simulated zoo on 127.0.0.1."""

from __future__ import annotations

import json
import shutil

import numpy as np

from tests.fixtures.flows import point_models_at

SPECIALIST = "sim-docreader-m"


def _cli(home):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def _copy_set(tmp_path, name: str, *, id_prefix: str, question=lambda q: q, keep=lambda line: True):
    """builtin-v1-quick under another name and ids (other queries: the sim still answers them by
    image and question), questions rewritten by ``question``, lines kept by ``keep``."""
    from lrcal.calsets import resolve_set

    src = resolve_set("builtin-v1-quick")
    dst = tmp_path / name
    shutil.copytree(src, dst)
    meta = json.loads((dst / "set.json").read_text())
    meta["name"] = name
    meta.pop("generator", None)
    (dst / "set.json").write_text(json.dumps(meta))
    lines = []
    for line in (dst / "manifest.jsonl").read_text().splitlines():
        example = json.loads(line)
        if not keep(example):
            continue
        example["id"] = id_prefix + example["id"]
        example["question"] = question(example["question"])
        lines.append(json.dumps(example))
    (dst / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def _token(cli) -> dict:
    result = cli("calibrate", SPECIALIST, "--refit", "--set", "builtin-v1", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["token"]


def _calibrated_count(cli) -> int:
    return next(m for m in json.loads(cli("models", "--json").stdout) if m["name"] == SPECIALIST)["calibrated_examples"]


def test_a_refused_run_never_reaches_a_token(flow_home, sim_server, builtin_sets, tmp_path):
    """A run whose replies were mostly unreadable was refused, but the next `--refit` fitted its
    non-answers (scored 0) into the enabled model's token; `--refit` on that run fitted it too."""
    home, _ = flow_home
    point_models_at(home, sim_server(sets=builtin_sets, latency_scale=0.01).url)
    cli = _cli(home)
    before = _token(cli)
    count = _calibrated_count(cli)
    garbled = _copy_set(tmp_path, "garbled", id_prefix="g-", question=lambda q: q[::-1])  # the sim cannot read them
    refused = cli("calibrate", SPECIALIST, "--set", str(garbled))
    assert refused.exit_code == 1 and "not calibrated by this run" in refused.output
    after = _token(cli)
    assert after["n_examples"] == before["n_examples"]
    assert any("not trusted" in line for line in after["left_out_runs"]), after["left_out_runs"]
    assert _calibrated_count(cli) == count  # `lrcal models` counts the same runs
    on_it = cli("calibrate", SPECIALIST, "--refit", "--set", str(garbled))
    assert on_it.exit_code == 1 and "cannot be trusted" in on_it.output
    latest = cli("calibrate", SPECIALIST, "--refit")  # no --set: the latest run, the refused one
    assert latest.exit_code == 1 and "cannot be trusted" in latest.output
    # the advice points at that run's set (it retried the default set's run, which never cleared it)
    assert f"calibrate {SPECIALIST} --set {garbled} --retry-errors" in " ".join(latest.output.split())


def test_fresh_and_an_edited_set_replace_what_they_replace(flow_home, sim_server, builtin_sets, tmp_path):
    """`--fresh` promised the stored outcomes were not reused, yet the token was fitted on them
    (96 of 128 rows from the model behind the previous endpoint); examples removed from an edited
    set stayed in the fit with their outcomes."""
    home, _ = flow_home
    point_models_at(home, sim_server(sets=builtin_sets, latency_scale=0.01).url)
    cli = _cli(home)
    base = _token(cli)["n_examples"]
    mine = _copy_set(tmp_path, "mine", id_prefix="m-")
    first = cli("calibrate", SPECIALIST, "--set", str(mine), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["token"]["n_examples"] == base + 64  # other ids: other queries
    edited = _copy_set(tmp_path / "v2", "mine", id_prefix="m-", keep=lambda ex: ex["task_group"] not in {"chart", "math"})
    second = cli("calibrate", SPECIALIST, "--set", str(edited), "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    kept = report["examples"]
    assert kept < 64 and report["token"]["n_examples"] == base + kept
    assert any("since calibrated on version" in line for line in report["token"]["left_out_runs"])
    fresh = cli("calibrate", SPECIALIST, "--fresh", "--limit", "32", "--json")
    assert fresh.exit_code == 0, fresh.output
    token = json.loads(fresh.stdout)["token"]
    assert token["n_examples"] == 32 and all("before the --fresh run" in line for line in token["left_out_runs"])
    assert _calibrated_count(cli) == 32
    # the TUI's Models tab counts the same runs (it showed the 128 rows before --fresh)
    from lrcal.services.review.models import models_table
    from lrcal.store import Store

    store = Store.open(home)
    try:
        assert next(r for r in models_table(store) if r.name == SPECIALIST).calibration_n == 32
    finally:
        store.close()


def test_a_failed_run_on_an_edited_set_does_not_drop_the_good_runs(store):
    """A review: the latest run on a set name fixed its version whatever became of it, so a run
    on an edited set with the endpoint down (or killed before its first outcome) left the model
    with nothing counted: 0 in `lrcal models`, out of training, `--refit` refused."""
    from lrcal.services.calibration_basis import calibration_basis
    from lrcal.store import ModelEndpoint

    model = store.add_model("m", ModelEndpoint("http://127.0.0.1:9/v1"))
    examples = [{"example_id": f"e{i}", "task_group": "ocr", "question": f"q{i}", "answer": "a",
                 "image_sha256": None} for i in range(6)]  # fmt: skip
    v1 = store.insert_imported_set("mine", "v1v1v1v1v1v1", "-", ["ocr"], examples)
    v2 = store.insert_imported_set("mine", "v2v2v2v2v2v2", "-", ["ocr"], examples[:3])
    good = store.create_run(model["id"], v1["id"], "calibration")
    for pk in store.example_pks(v1["id"]).values():
        store.record_outcome(good, pk, {"score": 1.0, "correct": 1, "raw_answer": "a", "parsed_answer": "a"})
    down = store.create_run(model["id"], v2["id"], "calibration")
    for pk in store.example_pks(v2["id"]).values():
        store.record_outcome(down, pk, {"score": None, "correct": None, "error_kind": "connect"})
    killed = store.create_run(model["id"], v2["id"], "calibration")  # no outcome at all
    basis = calibration_basis(store, model["id"])
    assert basis.runs == [good], basis.left_out
    assert "not trusted" in basis.left_out[down] and "since calibrated on version v1v1" in basis.left_out[killed]
    # once a trusted run on the edited version exists, it is the set's version
    fixed = store.create_run(model["id"], v2["id"], "calibration")
    for pk in store.example_pks(v2["id"]).values():
        store.record_outcome(fixed, pk, {"score": 0.0, "correct": 0, "raw_answer": "b", "parsed_answer": "b"})
    basis = calibration_basis(store, model["id"])
    assert basis.runs == [killed, fixed] and "since calibrated on version v2v2" in basis.left_out[good]


def test_expected_cost_and_latency_read_the_runs_that_count(store):
    """A review: `lrcal route`, the gateway and live validation priced a model from every
    calibration run, so after `models set --api-model` and `calibrate --fresh` its expected cost
    and latency mixed both endpoints' tokens and times ($0.000739 / 20 ms instead of $0.001151 /
    39 ms), and a cost weight picked it over a cheaper model."""
    from types import SimpleNamespace

    from lrcal.services.router_context import RoutingContext
    from lrcal.store import ModelEndpoint

    model = store.add_model("m", ModelEndpoint("http://127.0.0.1:9/v1", price_in_per_mtok=1.0,
                                               price_out_per_mtok=1.0))
    examples = [{"example_id": f"e{i}", "task_group": "ocr", "question": f"q{i}", "answer": "a",
                 "image_sha256": None} for i in range(4)]  # fmt: skip
    cset = store.insert_imported_set("mine", "v1v1v1v1v1v1", "-", ["ocr"], examples)
    for tokens, latency, fresh in ((100, 10.0, False), (1000, 50.0, True)):
        run = store.create_run(model["id"], cset["id"], "calibration", {"fresh": fresh})
        for pk in store.example_pks(cset["id"]).values():
            store.record_outcome(run, pk, {"score": 1.0, "correct": 1, "raw_answer": "a", "parsed_answer": "a",
                                           "input_tokens": tokens, "output_tokens": tokens, "latency_ms": latency})
    context = RoutingContext(store, "v", router=SimpleNamespace(cards={}))
    assert context.expected_costs(["m"])[0] == 2000 / 1e6
    assert context.expected_latencies(["m"])[0] == 50.0


def test_the_newcomers_pool_reads_the_incumbents_counted_runs(store):
    """A review: the token fit's pool scores read every run of an incumbent, so a refused run
    (every reply unreadable, scored 0) made it wrong on every row the newcomer was ranked
    against, pushing the newcomer up."""
    from lrcal.services.calibration_basis import calibration_basis
    from lrcal.services.onboarding import _pool_scores
    from lrcal.store import ModelEndpoint

    model = store.add_model("inc", ModelEndpoint("http://127.0.0.1:9/v1"))
    examples = [{"example_id": f"e{i}", "task_group": "ocr", "question": f"q{i}", "answer": "a",
                 "image_sha256": None} for i in range(6)]  # fmt: skip
    cset = store.insert_imported_set("mine", "v1v1v1v1v1v1", "-", ["ocr"], examples)
    good = store.create_run(model["id"], cset["id"], "calibration")
    refused = store.create_run(model["id"], cset["id"], "calibration")
    for pk in store.example_pks(cset["id"]).values():
        store.record_outcome(good, pk, {"score": 1.0, "correct": 1, "raw_answer": "a", "parsed_answer": "a"})
        store.record_outcome(refused, pk, {"score": 0.0, "correct": 0, "raw_answer": "???", "parsed_answer": None})
    assert refused in calibration_basis(store, model["id"]).left_out
    keys = [row["query_key"] for row in store.model_outcomes(model["id"])]
    np.testing.assert_array_equal(_pool_scores(store, ["inc"], keys), np.ones((6, 1)))


def test_the_same_outcomes_in_another_arrival_order_fit_the_same_token(flow_home):
    """A review: the fit's folds and bootstrap drew rows by position, and the rows came in the
    order outcomes arrived (concurrent requests finish in any order): the same outcomes fitted
    other tokens (the residual kept or not, held-out scores 0.06 apart)."""
    import sqlite3

    home, _ = flow_home
    cli = _cli(home)
    before = _token(cli)
    conn = sqlite3.connect(home / "lrcal.db")
    with conn:  # the specialist's calibration outcomes stored again, in reverse arrival order
        columns = [r[1] for r in conn.execute("pragma table_info(outcomes)") if r[1] != "id"]
        ids = [r[0] for r in conn.execute(
            "select o.id from outcomes o join runs r on r.id = o.run_id join models m on m.id = r.model_id "
            "where m.name = ? and r.kind = 'calibration' order by o.id", [SPECIALIST])]
        rows = [conn.execute(f"select {', '.join(columns)} from outcomes where id = ?", [i]).fetchone() for i in ids]
        conn.execute(f"delete from outcomes where id in ({','.join('?' * len(ids))})", ids)
        conn.executemany(f"insert into outcomes ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                         list(reversed(rows)))
    conn.close()
    after = _token(cli)
    assert len(ids) >= 64
    assert after["per_task"] == before["per_task"] and after["method"] == before["method"]


def test_an_adaptive_fresh_run_leaves_the_earlier_runs_out_once_finished(flow_home, sim_server, builtin_sets):
    """The adaptive run's summary replaced its stored parameters, "fresh" with them: once it had
    finished, the earlier runs (e.g. the previous endpoint's outcomes) were back in the token fit."""
    home, _ = flow_home
    point_models_at(home, sim_server(sets=builtin_sets, latency_scale=0.01).url)
    cli = _cli(home)
    result = cli("calibrate", SPECIALIST, "--adaptive", "--fresh", "--budget", "32", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    token = report["token"]
    assert token["n_examples"] == report["adaptive"]["used"]
    assert token["left_out_runs"] and all("before the --fresh run" in line for line in token["left_out_runs"])
    refit = json.loads(cli("calibrate", SPECIALIST, "--refit", "--json").stdout)["token"]  # read back from the store
    assert refit["n_examples"] == report["adaptive"]["used"]
    assert _calibrated_count(cli) == report["adaptive"]["used"]
