"""The routing policy: stored in the home, set with `lrcal policy set` or by a passing
`live-validate --enable`, and the default λ of `route`, `live-validate` and `lrcal tui`."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.fixtures.flows import point_models_at

SPECIALIST = "sim-docreader-m"


def test_policy_defaults_to_quality_only_and_keeps_its_history(cli, store):
    shown = cli("policy", "show", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["lambda_cost"] == 0.0
    assert "never set" in cli("policy", "show").stdout
    assert cli("policy", "set", "--lambda-cost", "0.3", "--reason", "cheaper").exit_code == 0
    assert cli("policy", "set", "--lambda-latency", "0.2").exit_code == 0  # λ_cost kept
    assert json.loads(cli("policy", "show", "--json").stdout) | {"created_at": None} == {
        "id": 2, "lambda_cost": 0.3, "lambda_latency": 0.2, "source": "policy set", "reason": "", "created_at": None,
    }  # fmt: skip
    history = json.loads(cli("policy", "show", "--history", "--json").stdout)
    assert [(h["lambda_cost"], h["lambda_latency"]) for h in history] == [(0.3, 0.2), (0.3, 0.0)]
    assert [e["kind"] for e in store.events()].count("policy_set") == 2


@pytest.mark.parametrize("args", [[], ["--lambda-cost", "-1"], ["--lambda-latency", "nan"]])
def test_policy_set_refuses_bad_input_in_one_line(cli, args):
    result = cli("policy", "set", *args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_route_live_validate_and_tui_start_from_the_stored_policy(flow_home, sim_server, builtin_sets, monkeypatch):
    from typer.testing import CliRunner

    from lrcal.cli import app

    home, _ = flow_home
    point_models_at(home, sim_server(sets=builtin_sets, latency_scale=0.01).url)
    runner = CliRunner()
    cli = lambda *args: runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)  # noqa: E731
    assert cli("policy", "set", "--lambda-cost", "0.5", "--lambda-latency", "0.2").exit_code == 0
    routed = json.loads(cli("route", "--question", "What is the invoice total?", "--task", "document", "--json").stdout)
    assert routed["policy"]["lambda_cost"] == 0.5 and routed["policy"]["lambda_latency"] == 0.2
    explicit = cli("route", "--question", "What is the invoice total?", "--lambda-cost", "0", "--json")
    assert json.loads(explicit.stdout)["policy"]["lambda_cost"] == 0.0 and json.loads(explicit.stdout)["policy"][
        "lambda_latency"] == 0.2  # fmt: skip
    validated = json.loads(cli("live-validate", SPECIALIST, "--json").stdout)
    assert (validated["parameters"]["lambda_cost"], validated["parameters"]["lambda_latency"]) == (0.5, 0.2)

    from lrcal.tui.app import LrcalApp

    import lrcal.cli.tui

    seen = {}
    monkeypatch.setattr(lrcal.cli.tui, "interactive_terminal", lambda: True)  # CliRunner's streams are no tty
    monkeypatch.setattr(LrcalApp, "run", lambda self: seen.setdefault("lambdas", self.initial_lambdas))
    assert cli("tui").exit_code == 0 and seen["lambdas"] == (0.5, 0.2)
    assert cli("tui", "--lambda-cost", "0.1").exit_code == 0 and seen["lambdas"] == (0.5, 0.2)  # first call kept
    seen.clear()
    assert cli("tui", "--lambda-cost", "0.1").exit_code == 0 and seen["lambdas"] == (0.1, 0.2)


def test_a_passing_validation_saves_the_recommended_lambda_only_with_enable(flow_home, monkeypatch, sim_server,
                                                                           builtin_sets):
    from typer.testing import CliRunner

    from lrcal.cli import app

    home, _ = flow_home
    # a λ other than the one the stored outcomes were validated at may need more live examples
    point_models_at(home, sim_server(sets=builtin_sets, latency_scale=0.01).url)
    runner = CliRunner()
    cli = lambda *args: runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)  # noqa: E731
    with sqlite3.connect(home / "lrcal.db") as conn:  # as if it had just been calibrated
        conn.execute("update models set status = 'calibrated' where name = ?", [SPECIALIST])
        conn.execute("delete from routing_policies")
    plain = json.loads(cli("live-validate", SPECIALIST, "--json").stdout)  # stored outcomes: no request
    assert plain["decision"] == "validated" and plain["status"] == "validated" and plain["policy_saved"] is None
    assert json.loads(cli("policy", "show", "--json").stdout)["source"] == "default"
    assert plain["recommended_policy"]["current_lambda_cost"] == 0.0
    # Whatever the frontier recommends is what --enable saves (here a point made up for the test).
    import lrcal.services.live_validation as service

    real = service.recommend_lambda

    def recommending(*args, **kwargs):
        return {**real(*args, **kwargs), "lambda_cost": 0.3}

    monkeypatch.setattr(service, "recommend_lambda", recommending)
    enabled = json.loads(cli("live-validate", SPECIALIST, "--enable", "--json").stdout)
    assert enabled["status"] == "enabled"
    stored = json.loads(cli("policy", "show", "--json").stdout)
    assert (stored["lambda_cost"], stored["lambda_latency"]) == (0.3, 0.0)
    assert stored["source"] == f"live-validate {SPECIALIST}" and enabled["policy_saved"]["id"] == stored["id"]
    again = json.loads(cli("live-validate", SPECIALIST, "--enable", "--json").stdout)
    assert again["policy_saved"] is None  # already the policy: nothing new is written
