"""`lrcal calibrate NAME --adaptive` end to end against the simulated zoo (issue 21): examples
chosen batch by batch from the candidate pool, the stop and its reason reported, the token
fitted, live validation enables the model; a killed run resumes the same sequence."""

from __future__ import annotations

import json
import time

import pytest

from lrcal.errors import UsageError
from lrcal.router.adaptive import SamplerConfig
from tests.fixtures.flows import point_models_at

SPECIALIST = "sim-docreader-m"


def _cli(home):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def kill_after(outcomes: int):
    """An ``on_outcome`` callback that interrupts the run at its ``outcomes``-th stored outcome,
    as a Ctrl-C there would."""
    seen = []

    def killer(example, fields):
        seen.append(example["id"])
        if len(seen) == outcomes:
            raise KeyboardInterrupt

    return killer


def _fresh_specialist(home, server):
    """The flow home with the specialist removed and registered again: no outcomes, no token."""
    cli = _cli(home)
    point_models_at(home, server.url)
    assert cli("models", "remove", SPECIALIST, "--yes", "--purge").exit_code == 0
    model = next(m for m in server.zoo.models if m.name == SPECIALIST)
    added = cli("add-model", SPECIALIST, "--base-url", server.url, "--price-in", str(model.price_in_per_mtok),
                "--price-out", str(model.price_out_per_mtok), "--max-concurrency", "8", "--timeout", "10", "--no-probe")
    assert added.exit_code == 0, added.output
    return cli


def test_adaptive_calibration_then_live_validation_enables_it(flow_home, sim_server, builtin_sets):
    from tests.fixtures.flows import FLOW_VALIDATION_LIMIT

    home, _ = flow_home
    server = sim_server(sets=builtin_sets, latency_scale=0.01)
    cli = _fresh_specialist(home, server)
    import sqlite3

    def stored_sets() -> list[tuple]:
        with sqlite3.connect(home / "lrcal.db") as conn:
            return conn.execute("select name, (select count(*) from examples) from calibration_sets order by id").fetchall()

    before = stored_sets()
    assert "builtin-v1-pool" not in [name for name, _ in before]
    too_big = cli("calibrate", SPECIALIST, "--adaptive", "--budget", "600")  # the pool has 512
    assert too_big.exit_code == 2 and "larger than the budget" in too_big.output
    assert stored_sets() == before  # a usage error stores nothing (the 512-example pool was imported first)
    result = cli("calibrate", SPECIALIST, "--adaptive", "--budget", "64", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    adaptive = report["adaptive"]
    assert report["set"] == "builtin-v1-pool" and report["token"]["fitted"]
    assert 16 <= adaptive["used"] <= 64 and adaptive["stop"] in {"settled", "budget spent"}
    assert report["examples"] == report["completed"] == adaptive["used"]
    assert server.request_counts[SPECIALIST] == adaptive["used"]  # nothing asked twice, nothing beyond the sequence
    groups = {g["group"]: g for g in adaptive["groups"]}
    assert set(groups) == {"ocr", "chart", "document", "spatial", "vqa", "math"}
    assert sum(g["n"] for g in groups.values()) == adaptive["used"]
    assert all(g["n"] >= 4 for g in groups.values())  # the stratified first batch
    assert all(g["low"] <= g["mean"] <= g["high"] for g in groups.values())
    # the text report says how many were used and why it stopped, and shows the groups
    text = cli("calibrate", SPECIALIST, "--adaptive", "--budget", "64")
    assert text.exit_code == 0, text.output
    assert f"adaptive: {adaptive['used']} of 64 examples used" in text.stdout and "stopped: " in text.stdout
    assert "posterior" in text.stdout and "spent" in text.stdout
    assert server.request_counts[SPECIALIST] == adaptive["used"]  # the rerun replays the stored outcomes
    limit = [] if FLOW_VALIDATION_LIMIT is None else ["--limit", str(FLOW_VALIDATION_LIMIT)]
    validated = cli("live-validate", SPECIALIST, *limit, "--enable", "--json")
    assert validated.exit_code == 0, validated.output
    from lrcal.store import Store

    store = Store.open(home)
    try:
        assert store.get_model(SPECIALIST)["status"] == "enabled"
    finally:
        store.close()


def test_a_killed_adaptive_run_resumes_the_same_sequence(flow_home, sim_server, builtin_sets, tmp_path):
    """Killed in its second batch, the run resumes: it asks only what was not stored, and ends
    with the examples an uninterrupted run with the same seed asked."""
    from lrcal.services.adaptive_calibration import AdaptivePlan
    from lrcal.services.calibration import CalibrateRequest, calibrate
    from lrcal.store import Store
    from tests.fixtures.flows import copy_home

    home, _ = flow_home
    server = sim_server(sets=builtin_sets, latency_scale=0.01)
    _fresh_specialist(home, server)
    twin = copy_home(home, tmp_path / "twin")
    request = CalibrateRequest(model=SPECIALIST, set_ref="builtin-v1-pool", adaptive=AdaptivePlan(budget=48, batch=8))

    def asked(store, report):
        return sorted(r["example_id"] for r in store.run_outcomes(report["run_id"]))

    store = Store.open(twin)
    try:
        whole = calibrate(store, request)
        whole_asked = asked(store, whole)
    finally:
        store.close()
    first = whole["adaptive"]["groups"]
    store = Store.open(home)
    try:
        with pytest.raises(KeyboardInterrupt):
            calibrate(store, request, on_outcome=kill_after(28))  # the first batch is 24: stop inside the second
        run = store.latest_run(store.get_model(SPECIALIST)["id"], store.get_set("builtin-v1-pool")["id"], "calibration")
        stored = len(store.done_example_pks(run["id"]))
        assert 24 <= stored < 48
        time.sleep(0.5)  # requests in flight at the kill may still reach the server: count after them
        before = server.request_counts[SPECIALIST]
        resumed = calibrate(store, request)
        assert resumed["resumed"] is True
        assert asked(store, resumed) == whole_asked
        assert server.request_counts[SPECIALIST] - before == resumed["adaptive"]["used"] - stored
    finally:
        store.close()
    assert [g["n"] for g in resumed["adaptive"]["groups"]] == [g["n"] for g in first]


def test_a_run_stored_before_the_prior_scale_resumes_holding_the_prior_fully(flow_home, sim_server, builtin_sets,
                                                                              tmp_path):
    """A run an earlier version stored has no ``prior_scale`` in its plan: that sampler held the
    router's prior at full strength. Resumed by this version (default half strength), it
    replays its own sequence and ends with the examples an uninterrupted full-strength run asks,
    not those of a half-strength one (which differ here, or the test would prove nothing)."""
    from lrcal.services.adaptive_calibration import AdaptivePlan
    from lrcal.services.calibration import CalibrateRequest, calibrate
    from lrcal.store import Store
    from tests.fixtures.flows import copy_home

    home, _ = flow_home
    server = sim_server(sets=builtin_sets, latency_scale=0.01)
    _fresh_specialist(home, server)

    def request(scale):
        return CalibrateRequest(model=SPECIALIST, set_ref="builtin-v1-pool",
                                adaptive=AdaptivePlan(budget=48, batch=8, prior_scale=scale))

    def run_whole(scale, where):
        store = Store.open(copy_home(home, tmp_path / where))
        try:
            report = calibrate(store, request(scale))
            return sorted(r["example_id"] for r in store.run_outcomes(report["run_id"]))
        finally:
            store.close()

    full_strength, half_strength = run_whole(1.0, "full"), run_whole(0.5, "half")
    assert full_strength != half_strength
    store = Store.open(home)
    try:
        with pytest.raises(KeyboardInterrupt):
            calibrate(store, request(1.0), on_outcome=kill_after(28))  # the first batch is 24: stop inside the second
        run = store.latest_run(store.get_model(SPECIALIST)["id"], store.get_set("builtin-v1-pool")["id"], "calibration")
        parameters = dict(run["parameters"])
        parameters["adaptive"] = {k: v for k, v in parameters["adaptive"].items() if k != "prior_scale"}
        store.update_run(run["id"], parameters=parameters)  # as an earlier version stored it
        time.sleep(0.5)  # requests in flight at the kill may still reach the server
        resumed = calibrate(store, request(SamplerConfig.prior_scale))
        assert resumed["resumed"] is True and resumed["adaptive"]["prior_scale"] == 1.0
        assert sorted(r["example_id"] for r in store.run_outcomes(resumed["run_id"])) == full_strength
        # another budget is still refused
        with pytest.raises(UsageError, match="--budget 48"):
            calibrate(store, CalibrateRequest(model=SPECIALIST, set_ref="builtin-v1-pool",
                                              adaptive=AdaptivePlan(budget=40, batch=8)))
    finally:
        store.close()


@pytest.fixture
def adaptive_home(flow_home, sim_server, builtin_sets):
    """The flow home after `lrcal calibrate SPECIALIST --adaptive --budget 48`: (home, its summary)."""
    home, _ = flow_home
    server = sim_server(sets=builtin_sets, latency_scale=0.01)
    result = _fresh_specialist(home, server)("calibrate", SPECIALIST, "--adaptive", "--budget", "48", "--json")
    assert result.exit_code == 0, result.output
    return home, json.loads(result.stdout)["adaptive"]


async def test_the_tui_model_detail_shows_the_adaptive_spend_and_intervals(adaptive_home):
    from rich.console import Console

    from lrcal.services.review import ReviewService
    from lrcal.tui.app import LrcalApp
    from lrcal.tui.detail_view import ModelDetailScreen

    home, summary = adaptive_home
    app = LrcalApp(ReviewService(home))
    async with app.run_test(size=(110, 40)) as pilot:
        await pilot.pause()
        app.push_screen(ModelDetailScreen(SPECIALIST))
        for _ in range(200):
            await pilot.pause(0.05)
            if getattr(app.screen, "detail", None) is not None:
                break
        screen = app.screen
        assert screen.detail.adaptive == summary
        console = Console(width=110, color_system=None, record=True, file=__import__("io").StringIO())
        console.print(screen.query_one("#detail-adaptive").content)
        text = console.export_text()
        assert f"{summary['used']} of 48 examples, stopped: {summary['stop']}" in text
        for g in summary["groups"]:
            line = next(row for row in text.splitlines() if row.strip().startswith(g["group"]))
            assert f" {g['n']} " in line and "[" in line and "–" in line


# ---- a review of what a token rests on (docs/reliability.md) ---------------------------------


def test_a_plain_calibration_on_the_pool_starts_its_own_run_and_refit_follows_the_latest(adaptive_home):
    """A plain `calibrate --set builtin-v1-pool` resumed the adaptive run: it asked the rest of
    the 512-example pool under the adaptive run's id while its summary still said 48 were used.
    And `--refit` after `--adaptive` looked for a builtin-v1 run and sent the user to a paid one."""
    home, summary = adaptive_home
    cli = _cli(home)
    refit = cli("calibrate", SPECIALIST, "--refit", "--json")  # the latest run: the adaptive one
    assert refit.exit_code == 0, refit.output
    report = json.loads(refit.stdout)
    assert report["set"] == "builtin-v1-pool" and report["examples"] == report["completed"] == summary["used"]
    assert report["token"]["fitted"] is True and report["token"]["n_examples"] == summary["used"]
    adaptive_run = report["run_id"]
    plain = cli("calibrate", SPECIALIST, "--set", "builtin-v1-pool", "--limit", "12", "--no-fit", "--json")
    assert plain.exit_code == 0, plain.output
    plain_report = json.loads(plain.stdout)
    assert plain_report["run_id"] != adaptive_run and plain_report["resumed"] is False
    assert plain_report["examples"] == 12
    again = json.loads(cli("calibrate", SPECIALIST, "--refit", "--set", "builtin-v1-pool", "--json").stdout)
    assert again["run_id"] == plain_report["run_id"]  # the latest run on the set


def test_an_adaptive_run_does_not_resume_against_a_refitted_incumbent(flow_home, sim_server, builtin_sets):
    """The sequence is chosen against the incumbents' cards: a refit of one between the kill and
    the resume changed the examples asked without a word."""
    from lrcal.errors import UsageError
    from lrcal.services.adaptive_calibration import AdaptivePlan
    from lrcal.services.calibration import CalibrateRequest, calibrate, calibrate_and_fit
    from lrcal.store import Store

    home, _ = flow_home
    _fresh_specialist(home, sim_server(sets=builtin_sets, latency_scale=0.01))
    request = CalibrateRequest(model=SPECIALIST, set_ref="builtin-v1-pool", adaptive=AdaptivePlan(budget=48, batch=8))
    store = Store.open(home)
    try:
        with pytest.raises(KeyboardInterrupt):
            calibrate(store, request, on_outcome=kill_after(28))  # the first batch is 24: stop inside the second
        incumbent = "sim-chartqa-m"  # trained with the router: --refit onboards it from its outcomes
        assert calibrate_and_fit(store, CalibrateRequest(model=incumbent, set_ref=None), refit=True)["token"]["fitted"] is True
        with pytest.raises(UsageError, match="capability token changed since the adaptive run"):
            calibrate(store, request)
    finally:
        store.close()


def test_errors_of_a_run_the_breaker_stopped_are_asked_again_on_resume(flow_home, sim_server, builtin_sets,
                                                                      monkeypatch):
    """A wrong key opened the circuit breaker after 8 failures; the fixed rerun kept those 8
    errors as spent budget (used 56, token on 48). Resumed, the errors of the batch the run
    stopped in are asked again: none is left, and the token rests on every example used."""
    home, _ = flow_home
    server = sim_server(sets=builtin_sets, latency_scale=0.01, api_key="right-key")
    cli = _fresh_specialist(home, server)
    assert cli("models", "set", SPECIALIST, "--api-key-env", "SIM_KEY_FOR_TEST").exit_code == 0
    monkeypatch.setenv("SIM_KEY_FOR_TEST", "wrong-key")
    stopped = cli("calibrate", SPECIALIST, "--adaptive", "--budget", "48", "--batch", "8")
    assert stopped.exit_code == 1 and "stopped" in stopped.output, stopped.output
    monkeypatch.setenv("SIM_KEY_FOR_TEST", "right-key")
    resumed = cli("calibrate", SPECIALIST, "--adaptive", "--budget", "48", "--batch", "8", "--json")
    assert resumed.exit_code == 0, resumed.output
    report = json.loads(resumed.stdout)
    assert report["resumed"] is True and report["errors"] == 0, report
    assert report["token"]["n_examples"] == report["adaptive"]["used"]
