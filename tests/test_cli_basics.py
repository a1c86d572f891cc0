"""CLI basics: lazy imports, home resolution, one-line errors."""

from __future__ import annotations

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
