"""`lrcal live-validate` and `lrcal demo`: the gate on live outcomes (simulated endpoints)."""

from __future__ import annotations

import json
import sqlite3

from PIL import Image

from tests.fixtures.flows import FLOW_VALIDATION_LIMIT, point_models_at

SPECIALIST, DOMINATED = "sim-docreader-m", "sim-legacy-xl"


def _cli(home):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def test_demo_flow_enables_the_specialist_and_rejects_the_dominated_model(flow_home):
    home, result = flow_home
    decisions = {c["model"]: c for c in result.candidates}
    assert decisions[SPECIALIST]["decision"] == "validated" and decisions[SPECIALIST]["status"] == "enabled"
    assert decisions[DOMINATED]["decision"] == "rejected" and decisions[DOMINATED]["status"] == "rejected"
    assert decisions[SPECIALIST]["quality_with"] > decisions[SPECIALIST]["quality_without"]
    conn = sqlite3.connect(home / "lrcal.db")
    rows = conn.execute(
        "select m.name, v.decision, v.reasons from validations v join models m on m.id = v.model_id"
    ).fetchall()
    assert {(name, decision) for name, decision, _ in rows} == {(SPECIALIST, "validated"), (DOMINATED, "rejected")}
    assert all(len(json.loads(reasons)) >= 2 for _, _, reasons in rows)
    kinds = [k for (k,) in conn.execute(
        "select e.kind from events e join models m on m.id = e.model_id where m.name = ? order by e.id", [SPECIALIST])]
    assert kinds[:2] == ["added", "calibrated"] and "token_fitted" in kinds
    assert kinds[-2:] == ["validated", "enabled"]


def test_rerun_reuses_stored_outcomes_and_makes_no_requests(flow_home, sim_server, builtin_sets):
    home, _ = flow_home
    server = sim_server(sets=builtin_sets, latency_scale=0.01)
    point_models_at(home, server.url)
    result = _cli(home)("live-validate", SPECIALIST, "--limit", str(FLOW_VALIDATION_LIMIT), "--json")
    assert result.exit_code == 0, result.output
    assert sum(server.request_counts.values()) == 0
    assert json.loads(result.stdout)["n"] == FLOW_VALIDATION_LIMIT


def test_overlapping_holdout_is_refused(flow_home):
    home, _ = flow_home
    result = _cli(home)("live-validate", SPECIALIST, "--set", "builtin-v1-quick")
    assert result.exit_code == 1
    assert "overlaps" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_report_has_markdown_json_and_two_readable_plots(flow_home, tmp_path):
    home, _ = flow_home
    out = tmp_path / "report"
    result = _cli(home)("live-validate", DOMINATED, "--limit", str(FLOW_VALIDATION_LIMIT), "--report", str(out))
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    assert "decision: rejected" in md and "## Policies" in md and "oracle" in md
    data = json.loads((out / "report.json").read_text())
    assert set(data["policies"]) == {"router_with", "router_without", "candidate_only", "strongest", "cheapest",
                                     "random", "oracle"}  # fmt: skip
    for name in ("quality_vs_p95_latency.png", "quality_vs_cost.png"):
        with Image.open(out / name) as im:
            assert im.size[0] >= 600 and im.size[1] >= 400


def test_failures_count_against_the_failing_model_only(flow_home, sim_server, builtin_sets):
    home, _ = flow_home
    limit = "96"  # 48 queries are stored already; the other 48 go live, under faults
    clean = sim_server(sets=builtin_sets, latency_scale=0.01)
    chaotic = sim_server(sets=builtin_sets, latency_scale=0.01, fail_rate=0.2, retry_after_s=0.02)
    point_models_at(home, chaotic.url)
    # Few retries so that some failures survive and are recorded.
    conn = sqlite3.connect(home / "lrcal.db")
    conn.execute("update models set metadata = json_set(coalesce(metadata, '{}'), '$.max_retries', 0)")
    conn.commit()
    result = _cli(home)("live-validate", SPECIALIST, "--limit", limit, "--json")
    assert result.exit_code == 0, result.output
    rows = conn.execute(
        "select m.name, e.example_id, o.score, o.error_kind, o.raw_answer from outcomes o "
        "join runs r on r.id = o.run_id join models m on m.id = r.model_id join examples e on e.id = o.example_id "
        "where r.kind = 'validation'"
    ).fetchall()
    failed = [r for r in rows if r[3] is not None]
    assert failed, "a 20% fault rate with no retries should leave failures"
    assert all(score is None for _, _, score, _, _ in failed)  # an error has no score: it is not a wrong answer
    # Every successful answer scores exactly what a fault-free server's answer scores for that
    # model: a failure of one model never changes another model's outcome.
    from lrcal.calsets import build_prompt, load_set, resolve_set, score_answer

    examples = {ex.id: ex for ex in load_set(resolve_set("builtin-v1-holdout")).examples}
    successes = [r for r in rows if r[3] is None]
    for name, example_id, score, _error, _answer in successes:
        ex = examples[example_id]
        expected = clean.backend.answer(name, build_prompt(ex), ex.image_path.read_bytes()).text
        assert score == score_answer(ex, expected).score, (name, example_id)
    # And the policies were measured on those same stored scores (a failure is a 0 for its model).
    report = json.loads(result.stdout)
    assert report["n"] == int(limit)


def test_models_cannot_be_enabled_without_validation(flow_home):
    home, _ = flow_home
    cli = _cli(home)
    assert cli("enable", DOMINATED).exit_code == 1
    forced = cli("enable", DOMINATED, "--force", "--reason", "testing")
    assert forced.exit_code == 0
    events = json.loads(cli("events", DOMINATED, "--json").stdout)
    assert events[0]["kind"] == "enabled" and events[0]["data"]["forced"] is True
