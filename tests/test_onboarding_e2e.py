"""Onboarding end to end against the simulated endpoints (issue 4, acceptance 5): incumbents
calibrated, `lrcal router train`, the left-out specialist calibrated on 128 examples — its
predicted per-task quality matches what it measures on held-out queries, and `lrcal route`
sends it queries of its speciality."""

from __future__ import annotations

import json
import sqlite3

import pytest

SPECIALIST = "sim-docreader-m"


def _cli(home):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def test_predicted_per_task_quality_matches_the_holdout(flow_home):
    home, _ = flow_home
    conn = sqlite3.connect(home / "lrcal.db")
    conn.row_factory = sqlite3.Row
    token = conn.execute(
        "select t.* from model_tokens t join models m on m.id = t.model_id where m.name = ? and t.stale = 0 "
        "order by t.id desc limit 1", [SPECIALIST]).fetchone()
    assert token is not None and token["n_examples"] == 128
    per_task = json.loads(token["per_task"])
    details = json.loads(token["details"])
    assert details["method"] in {"profile", "residual"} and "cv_table" in details
    # measured on the held-out set during live validation (different queries from calibration)
    measured = {
        row["task_group"]: (row["acc"], row["n"])
        for row in conn.execute(
            "select e.task_group, avg(o.correct) as acc, count(*) as n from outcomes o join runs r on r.id = o.run_id "
            "join models m on m.id = r.model_id join examples e on e.id = o.example_id "
            "where m.name = ? and r.kind = 'validation' group by e.task_group", [SPECIALIST])
    }
    assert set(measured) <= set(per_task)
    inside = 0
    for group, (acc, n) in measured.items():
        p = per_task[group]
        assert p["low"] <= p["predicted"] <= p["high"]
        # the holdout measurement itself is a binomial draw of n queries: allow its standard error
        slack = (acc * (1 - acc) / n) ** 0.5
        inside += p["low"] - slack <= acc <= p["high"] + slack
    assert inside >= (len(measured) + 1) // 2 + 1, (per_task, measured)  # most task groups
    # the speciality is visible in the prediction: ocr and document above the rest
    strong = min(per_task["ocr"]["predicted"], per_task["document"]["predicted"])
    weak = max(per_task[g]["predicted"] for g in per_task if g not in {"ocr", "document"})
    assert strong > weak


@pytest.mark.parametrize("question,task", [
    ("What is the invoice number printed in the top right corner of this document?", "document"),
    ("Read the word written on the sign.", "ocr"),
])
def test_route_sends_speciality_queries_to_the_specialist(flow_home, question, task):
    home, _ = flow_home
    result = _cli(home)("route", "--question", question, "--task", task, "--json")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision["choice"] == SPECIALIST, decision
    # μ̃ (the network's own estimate) and the decision score the utility ranks are both shown
    for row in decision["models"]:
        assert 0.0 <= row["network_score"] <= 1.0 and 0.0 <= row["score"] <= 1.0
        assert abs(row["network_score"] - min(1.0, max(0.0, row["mu"] + row["delta"]))) < 0.05, row
