"""`lrcal models set|remove`, `lrcal outcomes`, `lrcal home`, `--version`, the help text and
Ctrl-C during `lrcal calibrate`: against real SQLite homes and simulated endpoints on 127.0.0.1."""

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
from tests.fixtures.tui import CANDIDATES, DEMO_INCUMBENTS, copy_home

MODEL = "sim-docreader-m"


def rows(home, sql: str, params=()) -> list[dict]:
    conn = sqlite3.connect(home / "lrcal.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def calibration_costs(home, model: str) -> list[tuple[float, int, int]]:
    """(cost, input tokens, output tokens) of the model's calibration outcomes, oldest first."""
    return [(r["cost_usd"], r["input_tokens"], r["output_tokens"]) for r in rows(home,
            "select o.* from outcomes o join runs r on r.id = o.run_id join models m on m.id = r.model_id "
            "where m.name = ? order by o.id", [model])]  # fmt: skip


# ---- models set ------------------------------------------------------------------------------------


def test_models_set_changes_prices_from_then_on_and_logs_it(cli, home, zoo_server):
    register_zoo(cli, zoo_server, names={MODEL})
    assert cli("calibrate", MODEL, "--limit", "6", "--no-fit").exit_code == 0
    before = calibration_costs(home, MODEL)
    result = cli("models", "set", MODEL, "--price-in", "10", "--price-out", "20", "--max-concurrency", "2")
    assert result.exit_code == 0, result.output
    assert "price_in_per_mtok 0.4 → 10" in result.stdout
    model = rows(home, "select * from models where name = ?", [MODEL])[0]
    assert (model["price_in_per_mtok"], model["price_out_per_mtok"], model["max_concurrency"]) == (10.0, 20.0, 2)
    event = json.loads(cli("events", MODEL, "--json", "-n", "1").stdout)[0]
    assert event["kind"] == "changed"
    assert event["message"] == (f"{MODEL}: price in (USD/Mtok) 0.4 → 10; price out (USD/Mtok) 1.2 → 20; "
                                "max concurrency 16 → 2")  # fmt: skip
    assert event["data"]["before"]["price_in_per_mtok"] == 0.4 and event["data"]["after"]["price_out_per_mtok"] == 20

    # Stored outcomes keep the price they were measured at; new ones cost the new price.
    assert cli("calibrate", MODEL, "--limit", "12", "--no-fit").exit_code == 0
    after = calibration_costs(home, MODEL)
    assert after[: len(before)] == before
    for cost, tin, tout in before:
        assert cost == pytest.approx((0.4 * tin + 1.2 * tout) / 1e6)
    for cost, tin, tout in after[len(before):]:
        assert cost == pytest.approx((10 * tin + 20 * tout) / 1e6)


def test_models_set_points_a_model_at_a_new_endpoint(cli, home, zoo_server):
    assert cli("add-model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0  # dead port
    assert cli("models", "set", MODEL, "--base-url", zoo_server.url).exit_code == 0
    result = cli("calibrate", MODEL, "--limit", "6", "--no-fit", "--fresh", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["completed"] == 6


def test_models_set_refuses_bad_input_in_one_line(cli, home):
    cli("add-model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--no-probe")
    for args, words in (
        ([], "nothing to change"),
        (["--api-style", "grpc"], "--api-style must be one of"),
        (["--api-key-env", "sk-abcdefghijklmnopqrstuvwxyz0123456789"], "NAME of an environment variable"),
        (["--base-url", "ftp://x"], "base"),
        (["--api-model", "a\nb"], "--api-model must be one line"),
        (["--api-model", "m" * 300], "--api-model must be one line"),
        (["--api-key-env", "K" * 5000], "at most 128 characters"),
    ):
        result = cli("models", "set", MODEL, *args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output and len(result.output.strip().splitlines()) == 1
    for args in (["--price-in", "inf"], ["--price-out", "1e999"], ["--price-in", "nan"], ["--timeout", "inf"],
                 ["--timeout", "nan"], ["--max-concurrency", "99999999999999999999"], ["--price-in", "2e6"]):
        result = cli("models", "set", MODEL, *args)  # never stored: a price or limit that is not a number
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("Error:") and len(result.output.strip().splitlines()) == 1
    model = rows(home, "select * from models where name = ?", [MODEL])[0]
    assert (model["price_in_per_mtok"], model["price_out_per_mtok"], model["timeout_s"]) == (0.0, 0.0, 60.0)
    alias = cli("add-model", "lrcal/auto", "--base-url", "http://127.0.0.1:9/v1", "--no-probe")
    assert alias.exit_code == 2 and "routing alias" in alias.output
    unknown = cli("models", "set", "nope", "--price-in", "1")
    assert unknown.exit_code == 1 and "unknown model 'nope'" in unknown.output
    same = cli("models", "set", MODEL, "--max-concurrency", "4")
    assert same.exit_code == 0 and "nothing changed" in same.stdout
    assert not [e for e in json.loads(cli("events", "--json").stdout) if e["kind"] == "changed"]


# ---- models remove ---------------------------------------------------------------------------------


@pytest.fixture
def fixed_copy(tui_fixed_home, tmp_path):
    return copy_home(tui_fixed_home, tmp_path / "home")


def test_models_remove_keeps_outcomes_for_audit(fixed_copy):
    from typer.testing import CliRunner

    from lrcal.cli import app

    def run(*args):
        return CliRunner().invoke(app, ["--home", str(fixed_copy), *args], catch_exceptions=False)

    name = CANDIDATES[1]
    count = "select count(*) as n from outcomes o join runs r on r.id = o.run_id join models m on m.id = r.model_id " \
            "where m.name = ?"  # fmt: skip
    held = rows(fixed_copy, count, [name])[0]["n"]
    assert held > 0
    refused = run("models", "remove", name)  # no terminal to confirm on: refuse, change nothing
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    result = run("models", "remove", name, "--yes", "--reason", "superseded")
    assert result.exit_code == 0, result.output
    assert f"its {held} outcomes are kept for audit" in result.stdout
    assert rows(fixed_copy, count, [name])[0]["n"] == held
    assert name not in [m["name"] for m in json.loads(run("models", "--json").stdout)]
    assert name in [m["name"] for m in json.loads(run("models", "--json", "--removed").stdout)]
    assert len(json.loads(run("outcomes", name, "-n", "0", "--json").stdout)) == held  # still browsable
    event = json.loads(run("events", name, "--json", "-n", "1").stdout)[0]
    assert event["kind"] == "removed" and event["message"].endswith("kept for audit: superseded")
    assert event["data"]["outcomes"] == held
    again = run("add-model", name, "--base-url", "http://127.0.0.1:9/v1", "--no-probe")
    assert again.exit_code == 1 and "--purge" in again.output
    runs_before = rows(fixed_copy, "select count(*) as n from runs")[0]["n"]
    for args in ([], ["--fresh"], ["--retry-errors"]):  # never asked again: nothing sent, nothing stored
        calibrated = run("calibrate", name, "--limit", "4", "--no-fit", *args)
        assert calibrated.exit_code == 1 and "was removed" in calibrated.output, calibrated.output
    assert rows(fixed_copy, count, [name])[0]["n"] == held
    assert rows(fixed_copy, "select count(*) as n from runs")[0]["n"] == runs_before
    enable = run("enable", name, "--force")
    assert enable.exit_code == 1 and "was removed" in enable.output
    # The review (TUI) does not show it any more.
    from lrcal.services.review import ReviewService

    with ReviewService(fixed_copy).connect() as review:
        assert name not in [r.name for r in review.models_table()]


def test_models_remove_and_set_refuse_while_the_model_is_being_calibrated(fixed_copy):
    """A calibration (or validation) of the model holds its lock: remove refuses in one line and
    changes nothing, where it used to remove (or purge) the rows under the running command."""
    from typer.testing import CliRunner

    from lrcal.cli import app
    from lrcal.store import Store

    name = CANDIDATES[1]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for lock in (f"calibrate:{name}", f"validate:{name}"):
            store = Store.open(fixed_copy)
            with store.write():
                store.db["locks"].insert({"name": lock, "pid": holder.pid, "host": __import__("socket").gethostname(),
                                          "acquired_at": "2026-12-06T00:00:00Z", "purpose": "test"})
            for args in (["remove", name, "--yes"], ["remove", name, "--yes", "--purge"],
                         # a price or endpoint change under a running calibration was ignored by it
                         ["set", name, "--price-in", "123"]):
                result = CliRunner().invoke(app, ["--home", str(fixed_copy), "models", *args])
                assert result.exit_code == 1 and f"{lock} is already running in process {holder.pid}" in result.output
                assert len(result.output.strip().splitlines()) == 1
            row = rows(fixed_copy, "select status, price_in_per_mtok from models where name = ?", [name])[0]
            assert row["status"] != "removed" and row["price_in_per_mtok"] != 123
            with store.write():
                store.db["locks"].delete(lock)
            store.close()
    finally:
        holder.kill()
        holder.wait()
    assert CliRunner().invoke(app, ["--home", str(fixed_copy), "models", "remove", name, "--yes"]).exit_code == 0


def test_models_remove_with_purge_deletes_outcomes_and_frees_the_name(fixed_copy):
    from typer.testing import CliRunner

    from lrcal.cli import app

    def run(*args):
        return CliRunner().invoke(app, ["--home", str(fixed_copy), *args], catch_exceptions=False)

    name = CANDIDATES[1]
    model_id = rows(fixed_copy, "select id from models where name = ?", [name])[0]["id"]
    events_before = rows(fixed_copy, "select count(*) as n from events where model_id = ?", [model_id])[0]["n"]
    result = run("models", "remove", name, "--yes", "--purge", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["purged"] and report["outcomes"] > 0 and report["tokens"] == 1 and report["validations"] == 1
    for table, column in (("runs", "model_id"), ("model_tokens", "model_id"), ("validations", "model_id")):
        assert rows(fixed_copy, f"select count(*) as n from {table} where {column} = ?", [model_id])[0]["n"] == 0
    assert rows(fixed_copy, "select count(*) as n from outcomes o left join runs r on r.id = o.run_id "
                            "where r.id is null")[0]["n"] == 0  # fmt: skip
    # The audit log is append-only: every event stays, the purge one added.
    events = rows(fixed_copy, "select kind from events where model_id = ? order by id", [model_id])
    assert len(events) == events_before + 1 and events[-1]["kind"] == "purged"
    assert run("add-model", name, "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    other = DEMO_INCUMBENTS[0]
    assert len(json.loads(run("outcomes", other, "-n", "0", "--json").stdout)) > 0  # others untouched
    conn = sqlite3.connect(fixed_copy / "lrcal.db")
    assert conn.execute("pragma foreign_key_check").fetchall() == []
    conn.close()


# ---- outcomes --------------------------------------------------------------------------------------


def test_outcomes_filters_and_json(fixed_copy):
    from typer.testing import CliRunner

    from lrcal.cli import app

    def outcomes(*args) -> list[dict]:
        result = CliRunner().invoke(app, ["--home", str(fixed_copy), "outcomes", *args, "--json"],
                                    catch_exceptions=False)  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    everything = outcomes("-n", "0")
    assert len(everything) == rows(fixed_copy, "select count(*) as n from outcomes")[0]["n"]
    assert [o["id"] for o in everything] == sorted((o["id"] for o in everything), reverse=True)  # newest first
    newest = outcomes()
    assert newest == everything[:20]
    assert {"question", "reference", "answer", "score", "latency_ms", "error_kind", "model", "set_name",
            "task_group", "example_id", "cost_usd"} <= set(newest[0])  # fmt: skip
    assert len(outcomes("-n", "5")) == 5

    mine = outcomes(MODEL, "-n", "0")
    assert mine and {o["model"] for o in mine} == {MODEL}
    on_set = outcomes("--set", "builtin-v1-holdout", "-n", "0")
    assert on_set and {o["set_name"] for o in on_set} == {"builtin-v1-holdout"}
    charts = outcomes(MODEL, "--task", "chart", "-n", "0")
    assert charts and {o["task_group"] for o in charts} == {"chart"}
    wrong = outcomes(MODEL, "--wrong", "-n", "0")
    assert wrong and all(o["correct"] is False and o["error_kind"] is None for o in wrong)
    assert len(wrong) == sum(1 for o in mine if o["correct"] is False and not o["error_kind"])
    assert outcomes("--errors", "-n", "0") == [o for o in everything if o["error_kind"]]


def test_outcomes_shows_errors_and_bad_filters_in_one_line(cli, home, sim_server, builtin_sets):
    server = sim_server(sets=builtin_sets, latency_scale=0.02, permanent={"builtin-v1-ocr-0000": "http_500"})
    register_zoo(cli, server, names={MODEL})
    assert cli("calibrate", MODEL, "--limit", "6", "--no-fit").exit_code == 0
    errors = json.loads(cli("outcomes", "--errors", "--json").stdout)
    assert [o["example_id"] for o in errors] == ["builtin-v1-ocr-0000"] and errors[0]["error_kind"]
    table = cli("outcomes", "--errors", env={"COLUMNS": "160"}).stdout
    assert "builtin-v1-ocr-0000" in table and errors[0]["error_kind"] in table
    for args, code, words in ((["--task", "nope"], 2, "no outcome has task group 'nope'"),
                              (["--errors", "--wrong"], 2, "exclude each other"),
                              (["ghost"], 1, "unknown model 'ghost'"),
                              (["--set", "nope"], 1, "unknown calibration set")):  # fmt: skip
        result = cli("outcomes", *args)
        assert result.exit_code == code and words in result.output, (args, result.output)
    assert cli("outcomes", "--wrong", MODEL).exit_code == 0


# ---- home, version, help ---------------------------------------------------------------------------


def test_home_prints_the_home_and_database_paths(cli, home):
    lines = cli("home").stdout.splitlines()
    assert lines[0].split() == ["home", str(home)] and lines[1].split()[:2] == ["database", str(home / "lrcal.db")]
    assert cli("home", "--db").stdout.strip() == str(home / "lrcal.db")
    assert json.loads(cli("home", "--json").stdout)["database"] == str(home / "lrcal.db")


def test_version():
    from lrcal import __version__

    proc = subprocess.run([sys.executable, "-m", "lrcal", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"lrcal {__version__}"


def help_of(*command: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "lrcal", *command, "--help"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", [("calibrate",), ("models", "set"), ("outcomes",), ("live-validate",),
                                     ("add-model",), ("route",), ("router", "train")])  # fmt: skip
def test_help_reads_plainly_and_has_examples(command):
    text = help_of(*command)
    assert "<bool>" not in text and "{" not in text and "<str>" not in text
    assert "Examples" in text and f"lrcal {' '.join(command)} " in text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    if command in (("calibrate",), ("models", "set"), ("add-model",)):
        assert usage.rstrip().endswith("NAME")


# ---- Ctrl-C during calibrate ------------------------------------------------------------------------


def test_ctrl_c_during_calibrate_says_how_far_it_got_and_exits_130(cli, home, sim_server, builtin_sets):
    slow = sim_server(sets=builtin_sets, latency_scale=0.3)  # slow enough to interrupt mid-run
    assert cli("add-model", MODEL, "--base-url", slow.url, "--max-concurrency", "4", "--no-probe").exit_code == 0
    # SIGINT at its default in the child: a disposition of "ignored" is inherited across exec
    # (a background job of a non-interactive shell starts that way), and then Ctrl-C never arrives
    proc = subprocess.Popen([sys.executable, "-m", "lrcal", "--home", str(home), "calibrate", MODEL],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    count = "select count(*) as n from outcomes"
    deadline = time.time() + 60
    seen = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
        try:
            seen = rows(home, count)[0]["n"]
        except sqlite3.OperationalError:
            continue  # tables not there yet
        if seen >= 10:
            break
    assert proc.poll() is None, f"calibrate ended before it could be interrupted ({seen} rows seen)"
    proc.send_signal(signal.SIGINT)
    out, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stderr, out[-2000:])
    stored = rows(home, count)[0]["n"]
    assert 0 < stored < 128
    assert f"{stored} of 128 stored; run the same command to resume." in stderr
    assert "Traceback" not in stderr


def test_model_names_differing_only_in_case_are_refused(cli, home):
    """`Qwen-VL` and `qwen-vl` were both accepted: a client's `model` field, `route --models`
    and outcome logs could then mean either. The second is refused before any probe, and a
    name typed in the wrong case is pointed at the stored one."""
    assert cli("add-model", "Qwen-VL", "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    result = cli("add-model", "qwen-vl", "--base-url", "http://127.0.0.1:9/v1")  # the probe would fail first
    assert result.exit_code != 0
    assert "a model named 'Qwen-VL' already exists; names differing only in case are refused" in result.output
    assert [r["name"] for r in rows(home, "select name from models")] == ["Qwen-VL"]
    result = cli("disable", "qwen-vl", "--yes")
    assert result.exit_code != 0 and "did you mean 'Qwen-VL'?" in result.output
