"""CLI basics: lazy imports, home resolution, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_cli_does_not_import_torch_or_textual():
    code = (
        "import sys, lrcal.cli; "
        "heavy = [m for m in ('torch', 'textual', 'numpy', 'PIL', 'httpx', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"lrcal.cli imported heavy modules at import time: {out}"


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "lrcal", "--help"], capture_output=True, text=True, check=True).stdout
    assert "home" in out


def test_home_resolution_order(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()
    monkeypatch.setenv("LRCAL_HOME", str(tmp_path / "env-home"))
    assert runner.invoke(app, ["home", "--dir"]).stdout.strip() == str(tmp_path / "env-home")
    explicit = runner.invoke(app, ["--home", str(tmp_path / "opt-home"), "home", "--dir"]).stdout.strip()
    assert explicit == str(tmp_path / "opt-home")
    monkeypatch.delenv("LRCAL_HOME")
    default = runner.invoke(app, ["home", "--dir"]).stdout.strip()
    assert default and "lrcal" in default


def test_usage_errors_are_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "lrcal", "no-such-command"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")


def _leaf_commands(command, path=()):
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from _leaf_commands(sub, path + (name,))
    else:
        yield " ".join(path), command


def test_every_number_option_has_a_range_so_nan_and_inf_are_refused():
    """The option parser accepts "nan", "inf" and 1e999 for a number without bounds (and NaN
    passes a one-sided bound); either would end up stored as a price or threshold, or compared
    as garbage. Every int and float option of every command therefore has a min and a max."""
    import typer

    from lrcal.cli import app

    unbounded = []
    for path, command in _leaf_commands(typer.main.get_command(app)):
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is None or descriptor.annotation not in (int, float) or getattr(param, "is_flag", False):
                continue
            if param.min is None or param.max is None:
                unbounded.append(f"{path} {param.opts[0]}")
    assert not unbounded, f"number options without both bounds: {unbounded}"


def test_nan_and_inf_get_a_one_line_usage_error(tmp_path):
    from typer.testing import CliRunner

    from lrcal.cli import app

    for args in (["live-validate", "m", "--min-gain", "nan"], ["live-validate", "m", "--max-cost-increase", "inf"],
                 ["policy", "set", "--lambda-cost", "inf"], ["serve", "--max-body-mb", "nan"],
                 ["models", "set", "m", "--timeout", "1e999"]):
        result = CliRunner().invoke(app, ["--home", str(tmp_path), *args])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("Error: Invalid value") and len(result.output.strip().splitlines()) == 1
        # a range check fails on NaN whatever the bound: it used to say "less than or equal to 1000"
        assert "must be a finite number" in result.output, (args, result.output)
    in_range = CliRunner().invoke(app, ["--home", str(tmp_path), "policy", "set", "--lambda-cost", "5000"])
    assert "less than or equal to 1000" in in_range.output


def test_serve_refuses_an_empty_host(tmp_path):
    """`lrcal serve --host ''` listened on every interface and printed http://:8400/v1."""
    from typer.testing import CliRunner

    from lrcal.cli import app

    for host in ("", "   "):
        result = CliRunner().invoke(app, ["--home", str(tmp_path), "serve", "--host", host])
        assert result.exit_code == 2 and "--host must not be empty" in result.output, result.output


def test_traffic_since_is_a_time_with_its_offset_honoured(tmp_path):
    """--since was compared as a string: 'notadate' said "no traffic yet" (exit 0) and an offset
    was ignored. It is parsed as a time, moved to UTC, and a bad one is a usage error."""
    from typer.testing import CliRunner

    from lrcal.cli import app
    from lrcal.services.traffic import parse_since
    from lrcal.store import Store

    assert parse_since("2026-12-06T20:00-05:00") == "2026-12-07T01:00:00.000+00:00"
    assert parse_since("2026-01-31") == "2026-01-31T00:00:00.000+00:00"
    assert parse_since("2026-01-31T08:30:00Z") == "2026-01-31T08:30:00.000+00:00"
    store = Store.open(tmp_path)
    with store.write():
        store.db["traffic"].insert_all([
            {"request_id": "a", "created_at": "2026-12-06T21:20:00.000+00:00", "requested_model": "m", "routed": 0,
             "served_model": "m", "status_code": 200, "latency_ms": 10.0},
            {"request_id": "b", "created_at": "2026-12-07T02:00:00.000+00:00", "requested_model": "m", "routed": 0,
             "served_model": "m", "status_code": 200, "latency_ms": 10.0},
        ])  # fmt: skip
    store.close()

    def requests(*args) -> int:
        result = CliRunner().invoke(app, ["--home", str(tmp_path), "traffic", "--json", *args])
        assert result.exit_code == 0, result.output
        return sum(row["requests"] for row in json.loads(result.stdout))

    assert requests() == 2
    assert requests("--since", "2026-12-06T20:00-05:00") == 1  # = 01:00 UTC on the 7th
    assert requests("--since", "2026-12-06T21:00") == 2
    for bad in ("notadate", "yesterday", "9999-12-31T23:00-05:00"):  # the last leaves the calendar in UTC
        result = CliRunner().invoke(app, ["--home", str(tmp_path), "traffic", "--since", bad])
        assert result.exit_code == 2 and "--since: expected an ISO 8601 date or time" in result.output


def test_a_models_list_that_names_nothing_is_a_usage_error(tmp_path):
    """`--models ,,` silently meant every model (the default set)."""
    from typer.testing import CliRunner

    from lrcal.cli import app

    for args in (["router", "train", "--models", ",,"], ["route", "-q", "hi", "--models", " , "]):
        result = CliRunner().invoke(app, ["--home", str(tmp_path), *args])
        assert result.exit_code == 2 and "--models: no model names" in result.output, result.output


def test_json_output_is_strict_json_without_nan(capsys):
    """live-validate --json wrote `"gain": NaN` where no query paired (every chosen model failed):
    jq, JavaScript and SQLite's json_valid refuse it."""
    import json
    import math

    import numpy as np
    import pytest

    from lrcal.cli.output import print_json

    print_json({"gain": math.nan, "bounds": [math.inf, 1.5], "se": np.float64("nan"), "n": np.int64(3),
                "rows": np.array([0.5, np.nan])})
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "gain": None, "bounds": [None, 1.5], "se": None, "n": 3, "rows": [0.5, None]}
