"""Secrets: an API key lives only in the environment variable whose *name* the store keeps.

A sentinel key goes through add-model (with its probe), calibrate, live-validate with a report,
route, the listings and the TUI's data layer; afterwards no file under the home or the report
directory and no captured output contains it — while the simulated server, which answers 401 to
anything but ``Authorization: Bearer <sentinel>``, proves that every model received it.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.fixtures.flows import point_models_at

HOLDOUT = 144  # builtin-v1-holdout

SENTINEL = "sk-SENTINEL-rel7-9d2c4b1a"
KEY_ENV = "LRCAL_SENTINEL_KEY"
NEWCOMER = "newcomer-spatial"  # not in the flow home: registered here with --api-key-env
NEWCOMER_API_MODEL = "sim-spatial-m"  # the simulated model it is served by (an incumbent too)
REJECTED = "sim-legacy-xl"  # calibrated and validated in the flow home


def _runner(home, captured: list[str]):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)
        captured.extend([result.stdout, result.stderr])
        # live-validate exits 3 on a rejection, 4 when undecided: still a clean run
        assert result.exit_code in ((0, 3, 4) if args[0] == "live-validate" else (0,)), (args, result.output)
        return result

    return invoke


def _use_key_env(home, name: str) -> None:
    """The flow home's models were registered without a key: name the variable for them too
    (only the name is stored, as `lrcal add-model --api-key-env` does)."""
    with sqlite3.connect(home / "lrcal.db") as conn:
        conn.execute("update models set api_key_env = ? where source = 'endpoint'", [name])


def _tui_data_layer(home) -> list[str]:
    """Everything the review service shows `lrcal tui`, rendered to text."""
    from lrcal.services.review import ReviewService

    service = ReviewService(home)
    with service.connect() as review:
        shown = [repr(review.home_state()), repr(review.models_table())]
        snap = review.snapshot()  # writes the prediction cache into the home
        table = service.route(snap, 0.5, 0.1)
        shown += [repr(snap), repr(table), repr(service.diff(snap, snap.models, snap.default_included))]
        for task in snap.task_groups:
            shown += [repr(view) for view in review.examples_for(snap, task, routed=table)]
        for name in snap.models:
            shown.append(repr(review.model_detail(name)))
        shown += [repr(review.quality_latency_points(snap)), repr(review.validation_frontiers())]
    return shown


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["quick", "full"])
def test_sentinel_key_never_leaves_the_environment(flow_home, sim_server, builtin_sets, tmp_path, monkeypatch, full):
    """quick: the newcomer is calibrated without the token fit, a flow candidate is validated on
    the held-out queries its sequential run did not need; full (slow): the newcomer is calibrated, fitted and validated."""
    home, _ = flow_home
    monkeypatch.setenv(KEY_ENV, SENTINEL)
    server = sim_server(sets=builtin_sets, latency_scale=0.01, api_key=SENTINEL)
    point_models_at(home, server.url)
    _use_key_env(home, KEY_ENV)
    captured: list[str] = []
    cli = _runner(home, captured)
    report_dir = tmp_path / "report"

    cli("add-model", NEWCOMER, "--base-url", server.url, "--api-key-env", KEY_ENV, "--api-model", NEWCOMER_API_MODEL,
        "--price-in", "0.3", "--price-out", "1.2", "--max-concurrency", "16")  # probe on: it sends the key  # fmt: skip
    calibrate = ["calibrate", NEWCOMER, "--json"] + ([] if full else ["--limit", "24", "--no-fit"])
    calibration = json.loads(cli(*calibrate).stdout)
    assert calibration["errors"] == 0, calibration
    validated = NEWCOMER if full else REJECTED
    # the whole held-out set at one look: the queries the flow's sequential run did not need go live
    validation = cli("live-validate", validated, "--no-sequential", "--report", str(report_dir), "--json")
    validation = json.loads(validation.stdout)
    assert validation["n"] == HOLDOUT and validation["requests"] > 0
    cli("route", "--question", "What is the total on this receipt?", "--task", "document", "--json")
    cli("route", "--question", "Which bar is tallest?", "--models", f"{validated},sim-lite-s")
    for listing in (["models", "--json"], ["models"], ["events", "--json"], ["events", validated],
                    ["router", "list"], ["home"]):  # fmt: skip
        cli(*listing)
    captured += _tui_data_layer(home)

    # Not vacuous: the key was sent, as a bearer token, by every model that was asked.
    with sqlite3.connect(home / "lrcal.db") as conn:
        enabled = [name for (name,) in conn.execute("select name from models where status = 'enabled'")]
    asked = server.request_counts
    served_by = {NEWCOMER: NEWCOMER_API_MODEL}
    assert all(asked.get(served_by.get(name, name), 0) > 0 for name in [NEWCOMER, validated, *enabled]), asked
    with sqlite3.connect(home / "lrcal.db") as conn:  # a missing or wrong key would be a 401
        assert conn.execute("select count(*) from outcomes where error_kind is not null").fetchone()[0] == 0
    assert {"report.json", "report.md"} <= {p.name for p in report_dir.iterdir()}
    assert (home / "cache").is_dir()  # the TUI's cache was written and is searched below

    files = [p for root in (home, report_dir) for p in root.rglob("*") if p.is_file()]
    # The search does see what is stored: the variable's name is there, its value nowhere.
    assert any(KEY_ENV.encode() in p.read_bytes() for p in files)
    leaks = [str(p) for p in files if SENTINEL.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, text in enumerate(captured) if SENTINEL in text]
    assert not leaks, f"the key leaked into {leaks}"
    print(f"\nsentinel ({'full' if full else 'quick'}): {sum(asked.values())} requests carried the key "
          f"({len(asked)} models); searched {len(files)} files, "
          f"{sum(p.stat().st_size for p in files):,} bytes, {len(captured)} outputs: no leak (pytest -s)")


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{SENTINEL}@api.example.com/v1",
        f"http://{SENTINEL}@127.0.0.1:8000/v1",
        f"https://api.example.com/v1?api_key={SENTINEL}",
    ],
)
def test_credentials_in_the_base_url_are_refused_without_echoing_them(cli, home, url):
    result = cli("add-model", "m", "--base-url", url, "--no-probe")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert SENTINEL not in result.output
    if "@" in url:
        assert "--api-key-env" in lines[0]
    assert json.loads(cli("models", "--json").stdout) == []
    assert not [p for p in home.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]


def test_a_key_given_as_the_env_var_name_is_refused_without_echoing_it(cli, home):
    result = cli("add-model", "m", "--base-url", "http://127.0.0.1:8000/v1", "--api-key-env", SENTINEL, "--no-probe")
    assert result.exit_code == 2 and "NAME" in result.stderr and SENTINEL not in result.output
    assert json.loads(cli("models", "--json").stdout) == []
