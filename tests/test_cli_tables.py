"""Every CLI table at 80 and 120 columns: text snapshots (syrupy), no line wider than the
terminal, names never cut, and a line naming the columns a narrow table hid.

The data is `tui_fixed_home` (the simulated zoo recorded with a fixed clock), read through the
real commands; the tables of reports (calibrate, route, live-validate, demo) render reports
built from that home's stored outcomes and validations. Update after an intended change with
`pytest tests/test_cli_tables.py --snapshot-update` and review tests/__snapshots__/test_cli_tables.ambr.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tests.fixtures.tui import CANDIDATES, DEMO_INCUMBENTS

WIDTHS = pytest.mark.parametrize("width", [80, 120])
NAMES = (*DEMO_INCUMBENTS, *CANDIDATES)


@pytest.fixture
def run(tui_fixed_home):
    """run(width, *args) -> stdout of `lrcal --home <a copy of the fixed home> ARGS` at that width.

    The copy lives at a path of fixed length (wherever the checkout and pytest's temporary
    directories are), so that a column cut at the terminal's width cuts the same text; the
    checkout's own path (the built-in sets) reads REPO."""
    import shutil
    import tempfile
    from pathlib import Path

    from typer.testing import CliRunner

    from lrcal.cli import app
    from tests.conftest import REPO_ROOT
    from tests.fixtures.tui import copy_home

    root = Path(tempfile.mkdtemp(prefix="lrcal-tables-copy-", dir="/tmp"))
    home = copy_home(tui_fixed_home, root / "home")

    def invoke(width: int, *args: str) -> str:
        result = CliRunner().invoke(app, ["--home", str(home), *args], env={"COLUMNS": str(width)},
                                    catch_exceptions=False)  # fmt: skip
        assert result.exit_code == 0, result.output
        return (result.stdout.replace(str(home), "HOME").replace(str(tui_fixed_home), "HOME")
                .replace(str(REPO_ROOT), "REPO"))

    yield invoke
    shutil.rmtree(root, ignore_errors=True)


def fits(text: str, width: int) -> str:
    from rich.cells import cell_len

    too_wide = [line for line in text.splitlines() if cell_len(line) > width]
    assert not too_wide, f"lines wider than {width}: {too_wide}"
    return text


def rendered(width: int, print_fn, *args) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    print_fn(*args, console=console)
    return console.file.getvalue()


@WIDTHS
def test_models(run, snapshot, width):
    out = fits(run(width, "models"), width)
    assert all(name in out for name in NAMES)
    assert out == snapshot


@WIDTHS
def test_models_all_columns_says_what_it_hid(run, snapshot, width):
    out = fits(run(width, "models", "--all"), width)
    if width == 80:
        assert "Hidden at 80 columns:" in out and "--json or --csv give every field" in out
    assert out == snapshot


@WIDTHS
def test_events(run, snapshot, width):
    out = fits(run(width, "events", "-n", "8"), width)
    assert "prior None" not in out
    assert out == snapshot


@WIDTHS
def test_outcomes(run, snapshot, width):
    out = fits(run(width, "outcomes", "-n", "6"), width)
    assert out == snapshot


@WIDTHS
def test_outcomes_of_one_model(run, snapshot, width):
    out = fits(run(width, "outcomes", CANDIDATES[0], "-n", "6", "--wrong"), width)
    assert out == snapshot


@WIDTHS
def test_router_list(run, snapshot, width):
    out = fits(run(width, "router", "list"), width)
    assert "r1-fixture" in out
    assert out == snapshot


@WIDTHS
def test_sets_list_and_show(run, snapshot, width):
    out = fits(run(width, "sets", "list") + run(width, "sets", "show", "builtin-v1", "--examples", "3"), width)
    assert out == snapshot


@WIDTHS
def test_sim_zoo(run, snapshot, width):
    out = fits(run(width, "sim", "zoo"), width)
    assert out == snapshot


def calibration_report(home, name: str) -> dict:
    """`lrcal calibrate`'s report for a stored calibration run, with the model's fitted token."""
    from lrcal.services.calibration import build_report
    from lrcal.store import Store

    store = Store.open(home)
    try:
        model = store.get_model(name)
        run = next(r for r in store.runs(model["id"], kind="calibration"))
        rset = store.get_set_by_id(run["set_id"])
        rows = store.run_outcomes(run["id"])
        report = build_report(name, rset["name"], rset["version"], len(rows), rows)
        report["status"] = model["status"]
        report["token"] = {"fitted": True, "per_task": store.latest_token_per_task(model["id"]), "method": "profile",
                           "router_version": "r1-fixture", "n_examples": len(rows), "fit_seconds": 0.5}  # fmt: skip
        return report
    finally:
        store.close()


def print_calibration(report: dict, console) -> None:
    from lrcal.cli.output import print_table
    from lrcal.cli.calibrate import report_rows

    rows, columns = report_rows(report)
    print_table(rows, columns, title=f"{report['model']} on {report['set']}", console=console)


@WIDTHS
def test_calibrate_report_keeps_the_interval_whole(tui_fixed_home, snapshot, width):
    report = calibration_report(tui_fixed_home, CANDIDATES[0])
    out = fits(rendered(width, print_calibration, report), width)
    assert all(f"({pred['low']:.2f}–{pred['high']:.2f})" in out for pred in report["token"]["per_task"].values())
    assert out == snapshot


def print_validation(result: dict, console) -> None:
    from lrcal.cli.output import print_table
    from lrcal.cli.validate import POLICY_COLUMNS, policy_rows

    print_table(policy_rows(result), POLICY_COLUMNS, title=f"Live validation of {result['model']}", console=console)


def latest_validation_result(home) -> dict:
    """The home's latest live validation as `live-validate` returns it (model + results)."""
    from lrcal.store import Store

    store = Store.open(home)
    try:
        validation = store.latest_validations()[-1]
    finally:
        store.close()
    return {"model": validation["model"], **validation["results"]}


@WIDTHS
def test_live_validate_traffic_stays_short(tui_fixed_home, snapshot, width):
    result = latest_validation_result(tui_fixed_home)
    out = fits(rendered(width, print_validation, result), width)
    assert len(out.splitlines()) <= 3 + 2 * len(result["policies"]) + 1, out  # a traffic cell: two lines at most
    assert out == snapshot


def print_route(decision: dict, console) -> None:
    from lrcal.cli.output import print_table
    from lrcal.cli.router import ROUTE_COLUMNS, route_table_row

    rows = [route_table_row(row, decision["choice"]) for row in decision["models"]]
    print_table(rows, ROUTE_COLUMNS, title=f"Route: → {decision['choice']}", console=console)


@WIDTHS
def test_route_keeps_names_and_costs_whole(snapshot, width):
    decision = {
        "choice": "sim-chartqa-m",
        "models": [
            {"model": name, "mu": 0.8 - 0.05 * i, "sigma": 0.4, "delta": 0.01 * i, "network_score": 0.81 - 0.04 * i,
             "score": 0.8 - 0.05 * i,
             "expected_cost_usd": cost, "expected_latency_ms": 40.0 + 30 * i, "utility": 0.8 - 0.05 * i}
            for i, (name, cost) in enumerate(zip(NAMES, (0.0076, 0.000036, 0.00061, 0.00074, 0.0121)))
        ],
    }  # fmt: skip
    out = fits(rendered(width, print_route, decision), width)
    assert all(name in out for name in NAMES) and "$0.000036" in out and "…" not in out
    assert out == snapshot


def test_csv_and_json_give_every_field(run):
    import csv
    import json

    listed = json.loads(run(80, "models", "--json"))
    rows = list(csv.DictReader(io.StringIO(run(80, "models", "--csv"))))
    assert [r["name"] for r in rows] == [m["name"] for m in listed] == list(NAMES)
    assert set(rows[0]) == set(listed[0])  # every field, whatever the width
    assert {"base_url", "api_key_env", "max_concurrency", "token", "token_router_version"} <= set(rows[0])
    events = json.loads(run(80, "events", "--json"))
    assert {"id", "ts", "model", "kind", "message", "data"} <= set(events[0])
    assert set(next(csv.DictReader(io.StringIO(run(80, "outcomes", "--csv"))))) >= {
        "question", "reference", "answer", "score", "latency_ms", "error_kind", "model", "set_name"}


def test_one_output_format_at_a_time(tmp_path):
    from typer.testing import CliRunner

    from lrcal.cli import app

    result = CliRunner().invoke(app, ["--home", str(tmp_path), "models", "--json", "--csv"])
    assert result.exit_code == 2 and "choose one output format" in result.output


def test_fit_columns_drops_in_order_and_never_cuts_a_name():
    from lrcal.cli.output import Column, fit_columns

    columns = [Column("name", "name"), Column("a", "a", drop=1), Column("b", "b", drop=2),
               Column("text", "text", shrink_to=8)]  # fmt: skip
    rows = [{"name": "x" * 30, "a": "a" * 10, "b": "b" * 10, "text": "t" * 30}]
    wide = fit_columns(columns, rows, 200)
    assert [c.key for c in wide.columns] == ["name", "a", "b", "text"] and not wide.hidden
    narrow = fit_columns(columns, rows, 56)
    assert [c.key for c in narrow.hidden] == ["b"]  # the highest drop rank goes first
    assert narrow.widths[0] == 30 and sum(narrow.widths) + 2 * (len(narrow.widths) - 1) <= 56
    tiny = fit_columns(columns, rows, 40)
    assert [c.key for c in tiny.hidden] == ["b", "a"] and tiny.widths == [30, 8]


def test_the_rules_verdicts_are_coloured_not_markup_text(tui_fixed_home):
    """A verdict cell was the markup string '[green]pass[/]': shown literally once table cells
    stopped being read as markup (stored text must not be)."""
    from lrcal.cli.output import print_table
    from lrcal.cli.validate import RULE_COLUMNS, rule_rows

    result = latest_validation_result(tui_fixed_home)
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system="standard")
    print_table(rule_rows(result), RULE_COLUMNS, console=console)
    out = console.file.getvalue()
    assert "[/]" not in out and "[green]" not in out and "[red]" not in out
    verdicts = {rule["verdict"] for rule in result["rules"]}
    assert verdicts and all(v in out for v in verdicts) and "\x1b[" in out  # coloured
