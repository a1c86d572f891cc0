"""`lrcal sets list|show|import`: sets on disk and in the store."""

from __future__ import annotations

import json
import shutil

from tests.conftest import REPO_ROOT


def test_list_shows_builtin_sets(cli):
    rows = json.loads(cli("sets", "list", "--json").stdout)
    names = {r["name"]: r for r in rows}
    assert names["builtin-v1"]["examples"] == 128 and names["builtin-v1-quick"]["examples"] == 64
    assert names["builtin-v1-holdout"]["examples"] >= 128


def test_show_describes_groups(cli):
    info = json.loads(cli("sets", "show", "builtin-v1", "--json").stdout)
    assert set(info["task_groups"]) == {"ocr", "chart", "document", "spatial", "vqa", "math"}
    assert sum(g["n"] for g in info["task_groups"].values()) == 128


def test_import_copies_registers_and_is_usable_by_name(cli, home, tmp_path):
    src = tmp_path / "mine"
    shutil.copytree(REPO_ROOT / "calibration_sets" / "builtin-v1-quick", src)
    result = cli("sets", "import", str(src), "--name", "team-set", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["size"] == 64 and (home / "sets" / "team-set" / "manifest.jsonl").exists()
    assert "team-set" in {r["name"] for r in json.loads(cli("sets", "list", "--json").stdout)}
    # Same content again: fine; different content under the same name: refused.
    assert cli("sets", "import", str(src), "--name", "team-set").exit_code == 0
    (src / "manifest.jsonl").write_text((src / "manifest.jsonl").read_text().replace("?", "? ", 1))
    again = cli("sets", "import", str(src), "--name", "team-set")
    assert again.exit_code == 1 and "already imported" in again.stderr


def test_import_of_a_broken_set_writes_nothing(cli, home, tmp_path):
    src = tmp_path / "broken"
    shutil.copytree(REPO_ROOT / "calibration_sets" / "builtin-v1-quick", src)
    next((src / "images").iterdir()).unlink()
    result = cli("sets", "import", str(src))
    assert result.exit_code == 1 and result.stderr.startswith("Error:")
    assert not (home / "sets").exists() or not any((home / "sets").iterdir())
