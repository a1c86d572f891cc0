"""`lrcal sets validate` and `lrcal sets generate` through the real typer app."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lrcal.cli import app
from tests.test_calsets_loader import make_set, record

REPO = Path(__file__).resolve().parent.parent


def run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_validate_builtin_sets_by_name_and_path():
    for name in ("builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", "builtin-v1-pool"):
        result = run("sets", "validate", name)
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"OK {name}: ")
        assert "ocr " in result.output and "version " in result.output
    result = run("sets", "validate", str(REPO / "calibration_sets" / "builtin-v1"), "--json")
    payload = json.loads(result.output)
    assert payload["ok"] is True and payload["examples"] == 128 and len(payload["version"]) == 64


def test_validate_lists_every_problem_and_exits_1(tmp_path):
    root = make_set(
        tmp_path / "broken",
        [record(0), record(1, image="images/missing.png"), record(0), record(3, answer_type="essay"), "{oops"],
    )
    result = run("sets", "validate", str(root))
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line]
    manifest = root / "manifest.jsonl"
    assert lines == [
        f"{manifest}:2: missing_image: image 'images/missing.png' does not exist",
        f"{manifest}:3: duplicate_id: duplicate id 'ex-0' (first on line 1)",
        f"{manifest}:4: unknown_answer_type: answer_type 'essay' is not one of multiple_choice, exact, number, anls, yes_no",
        f"{manifest}:5: invalid_json: invalid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
    ]
    assert result.stderr.strip() == f"Error: 4 problems in {root}"


def test_validate_json_reports_problems(tmp_path):
    root = make_set(tmp_path / "b", [record(0, question="")])
    result = run("sets", "validate", str(root), "--json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    assert payload["problems"] == [
        {"file": str(root / "manifest.jsonl"), "line": 1, "example_id": "ex-0", "kind": "empty_value", "message": "question is empty"}
    ]


def test_validate_unknown_name_is_a_one_line_error():
    result = run("sets", "validate", "no-such-set")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "unknown calibration set 'no-such-set'" in result.stderr


def test_generate_writes_a_valid_set_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "gen"
    result = run("sets", "generate", str(out), "--name", "mine", "--n", "12", "--seed", "4")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Wrote 12 examples to {out} (ocr 2, chart 2, document 2, spatial 2, vqa 2, math 2)")
    first = (out / "manifest.jsonl").read_bytes()
    assert json.loads(first.splitlines()[0])["id"] == "mine-ocr-0000"
    assert run("sets", "validate", str(out)).exit_code == 0

    again = run("sets", "generate", str(out), "--name", "mine", "--n", "6", "--seed", "4")
    assert again.exit_code == 1 and "not empty (use --force" in again.stderr
    assert (out / "manifest.jsonl").read_bytes() == first  # untouched

    forced = run("sets", "generate", str(out), "--name", "mine", "--n", "6", "--seed", "4", "--force")
    assert forced.exit_code == 0
    assert (out / "manifest.jsonl").read_bytes().splitlines() == first.splitlines()[:6]  # prefix-stable


def test_generate_defaults_name_to_directory_and_accepts_groups(tmp_path):
    result = run("sets", "generate", str(tmp_path / "my-set"), "--n", "4", "--groups", "math,vqa")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "my-set" / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["my-set-math-0000", "my-set-vqa-0001", "my-set-math-0002", "my-set-vqa-0003"]


def test_generate_usage_errors_exit_2(tmp_path):
    for args in (["--n", "0"], ["--seed", "-3"], ["--groups", "ocr,cooking"], ["--name", "bad name"]):
        result = run("sets", "generate", str(tmp_path / "x"), *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("Error: ")
    assert not (tmp_path / "x").exists()
