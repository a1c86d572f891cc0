"""Faults of the home itself: moved, missing, written by a newer lrcal, damaged, full, shared by
two trainings. Each one ends with one line and nothing stored wrong (issue 20)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

MODEL = "sim-docreader-m"
OTHER = "sim-chartqa-m"


def lrcal(home: Path | str | None, *args: str, env: dict | None = None):
    from lrcal.cli import app

    prefix = [] if home is None else ["--home", str(home)]
    return CliRunner().invoke(app, [*prefix, *args], env=env, catch_exceptions=False)


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def outcome_rows(home: Path, model: str) -> list[dict]:
    conn = sqlite3.connect(home / "lrcal.db")
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute(
        "select o.*, e.example_id as ex from outcomes o join runs r on r.id = o.run_id join models m "
        "on m.id = r.model_id join examples e on e.id = o.example_id where m.name = ?", [model])]  # fmt: skip
    conn.close()
    return rows


# ---- 1. a moved home -----------------------------------------------------------------------


def test_a_moved_home_keeps_working(tmp_path, zoo_server):
    """Paths were stored absolute: after `mv A B`, calibrate sent requests without the image and
    recorded every answer as wrong (accuracy 0.000, 0 errors, exit 0)."""
    a, b = tmp_path / "A", tmp_path / "B"
    assert lrcal(a, "add-model", MODEL, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    first = lrcal(a, "calibrate", MODEL, "--limit", "24", "--no-fit", "--json")
    assert first.exit_code == 0, first.output
    shutil.move(str(a), str(b))
    assert lrcal(b, "add-model", OTHER, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    result = lrcal(b, "calibrate", OTHER, "--limit", "24", "--no-fit", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["errors"] == 0 and report["accuracy"] > 0.2, report
    # every request carried its image: the simulator recognized every example (no generic non-answers)
    assert report["health"]["non_answers"] == 0
    conn = sqlite3.connect(b / "lrcal.db")
    paths = [r[0] for r in conn.execute("select path from images")] + [r[0] for r in conn.execute(
        "select path from calibration_sets where path like ?", [str(b) + "%"])]  # fmt: skip
    conn.close()
    assert paths and all(not os.path.isabs(p) for p in paths[:-1] if p.startswith("images/"))


def test_old_absolute_paths_are_migrated_even_after_a_move(tmp_path, zoo_server):
    """A home written before paths were relative, then moved: the migration finds the old home from
    the layout lrcal writes (<home>/images/ab/<sha>) and makes every path relative."""
    from lrcal.store import Store

    home = tmp_path / "home"
    assert lrcal(home, "add-model", MODEL, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    assert lrcal(home, "calibrate", MODEL, "--limit", "6", "--no-fit").exit_code == 0
    (home / "routers" / "r1-00000000").mkdir(parents=True)
    old = "/nonexistent/old-home"
    conn = sqlite3.connect(home / "lrcal.db")
    conn.execute("update images set path = ? || '/' || path", [old])
    conn.execute("insert into router_versions (version, path, created_at, pinned) values ('r1-00000000', ?, 'x', 0)",
                 [old + "/routers/r1-00000000"])  # fmt: skip
    conn.execute("insert into calibration_sets (name, version, path, kind) values ('mine', 'v', ?, 'calibration')",
                 [old + "/sets/mine"])  # fmt: skip
    conn.execute("delete from _sqlite_migrations where name like 'm004%'")
    conn.commit()
    conn.close()
    store = Store.open(home)
    try:
        stored = store.query("select path from images") + store.query("select path from router_versions")
        assert stored and all(not r["path"].startswith("/") for r in stored), stored
        assert store.find_set("mine")["path"] == str(home / "sets" / "mine")
        sha = store.query_one("select sha256 from images")["sha256"]
        assert store.image_bytes(sha) is not None
        builtin = store.find_set("builtin-v1")["path"]
        assert builtin.startswith("/") and Path(builtin).is_dir()  # outside the home: stays absolute
    finally:
        store.close()


def test_a_missing_image_is_an_error_never_a_request_without_it(tmp_path, zoo_server):
    home = tmp_path / "home"
    assert lrcal(home, "add-model", MODEL, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    assert lrcal(home, "calibrate", MODEL, "--limit", "12", "--no-fit").exit_code == 0
    conn = sqlite3.connect(home / "lrcal.db")
    images = [home / r[0] for r in conn.execute(
        "select distinct i.path from outcomes o join examples e on e.id = o.example_id "
        "join images i on i.sha256 = e.image_sha256 order by i.path")]  # fmt: skip
    conn.close()
    assert len(images) == 12
    for image in images[:7]:
        image.unlink()
    before = sum(zoo_server.request_counts.values())
    assert lrcal(home, "add-model", OTHER, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    result = lrcal(home, "calibrate", OTHER, "--limit", "12", "--no-fit", "--json")
    assert result.exit_code == 1  # 7 of 12 requests could not be made: not calibrated
    assert "7 of 12 requests failed (missing_image 7)" in one_error_line(result)
    rows = outcome_rows(home, OTHER)
    missing = [r for r in rows if r["error_kind"] == "missing_image"]
    assert len(missing) == 7 and all(r["attempts"] == 0 and r["score"] is None for r in missing)
    assert sum(zoo_server.request_counts.values()) - before == 5  # only the examples that have their image


# ---- 5. a schema written by a newer lrcal ----------------------------------------------------


@pytest.mark.parametrize("command", [["models"], ["add-model", "x", "--base-url", "http://127.0.0.1:9/v1", "--no-probe"],
                                     ["calibrate", MODEL], ["router", "list"], ["sets", "list"], ["events"]])  # fmt: skip
def test_a_newer_schema_is_refused_and_left_untouched(tmp_path, command):
    home = tmp_path / "home"
    assert lrcal(home, "add-model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    conn = sqlite3.connect(home / "lrcal.db")
    conn.execute("insert into _sqlite_migrations (migration_set, name, applied_at) values ('lrcal', 'm099_future', 'x')")
    conn.execute("alter table outcomes drop column cost_usd")  # what the newer lrcal might have done
    conn.commit()
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    before = (home / "lrcal.db").read_bytes()
    result = lrcal(home, *command)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "newer lrcal" in line and "m099_future" in line and "schema version" in line, line
    from lrcal.store.migrations import migrations

    assert migrations._migrations[-1].name in line  # this lrcal's own version is named too
    assert (home / "lrcal.db").read_bytes() == before
    wal = home / "lrcal.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0


# ---- 6. a full disk during calibrate ---------------------------------------------------------

FULL_DISK_SCRIPT = r"""
set -u
mount -t tmpfs -o size=6m tmpfs "$FS" || exit 90
H="$FS/home"
L="$PY -m lrcal --home $H"
$L add-model sim-docreader-m --base-url "$URL" --no-probe > /dev/null || exit 91
$L calibrate sim-docreader-m --limit 2 --no-fit > /dev/null || exit 92
avail=$(df -k --output=avail "$FS" | tail -1)
dd if=/dev/zero of="$FS/ballast" bs=1k count=$((avail - 120)) 2> /dev/null
$L calibrate sim-docreader-m --no-fit > "$OUT/full.out" 2> "$OUT/full.err"
echo $? > "$OUT/full.code"
$PY - "$H/lrcal.db" > "$OUT/after-full.json" <<'PYEOF'
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(json.dumps({"runs": [r[0] for r in conn.execute("select status from runs")],
                  "locks": conn.execute("select count(*) from locks").fetchone()[0],
                  "outcomes": conn.execute("select count(*) from outcomes").fetchone()[0]}))
PYEOF
rm "$FS/ballast"
$L calibrate sim-docreader-m --no-fit --json > "$OUT/resume.json" 2> "$OUT/resume.err"
echo $? > "$OUT/resume.code"
"""


def _namespace_prefix() -> list[str] | None:
    """A private mount namespace (root), or a user namespace mapped to root (unprivileged)."""
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        if shutil.which("unshare") and subprocess.run([*prefix, "mount", "-t", "tmpfs", "tmpfs", "/mnt"],
                                                      capture_output=True).returncode == 0:  # fmt: skip
            return prefix
    return None


def test_a_full_disk_during_calibrate_is_one_line_and_resumes(tmp_path, zoo_server):
    """A full disk printed 5 tracebacks and left the run 'running' with its lock row in place."""
    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("needs a private tmpfs (unshare --mount, or a user namespace)")
    fs, out = tmp_path / "fs", tmp_path / "out"
    fs.mkdir()
    out.mkdir()
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "FS": str(fs), "OUT": str(out), "PY": sys.executable, "URL": zoo_server.url,
           "PYTHONPATH": str(repo)}  # fmt: skip
    done = subprocess.run([*prefix, "bash", "-c", textwrap.dedent(FULL_DISK_SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    err = (out / "full.err").read_text()
    assert (out / "full.code").read_text().strip() == "1", err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "disk is full" in lines[0] and "run the same command again" in lines[0], err
    assert "Traceback" not in err and "asyncio" not in err
    after = json.loads((out / "after-full.json").read_text())
    assert after["runs"] == ["interrupted"] and after["locks"] == 0, after
    assert (out / "resume.code").read_text().strip() == "0", (out / "resume.err").read_text()
    report = json.loads((out / "resume.json").read_text())
    assert report["completed"] == report["examples"] == 128 and report["status"] == "calibrated"
    assert report["requested"] == 128 - after["outcomes"]  # nothing stored before the stop was lost


# ---- 10. smaller items ---------------------------------------------------------------------


def test_an_empty_home_option_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = lrcal("", "models")
    assert result.exit_code == 2 and "--home is empty" in one_error_line(result)
    assert not (tmp_path / "lrcal.db").exists()


@pytest.mark.parametrize("command", [["models"], ["events"], ["router", "list"], ["calibrate", MODEL],
                                     ["route", "-q", "What is the total?"], ["live-validate", MODEL], ["tui"]])  # fmt: skip
def test_a_read_command_on_a_missing_home_says_so(tmp_path, command):
    typo = tmp_path / "typo" / "dir"
    result = lrcal(typo, *command)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert f"no lrcal home at {typo}" in line and "does not exist" in line, line
    assert not typo.exists() and not typo.parent.exists()


def test_builtin_sets_are_listed_without_a_home(tmp_path):
    typo = tmp_path / "nowhere"
    result = lrcal(typo, "sets", "list", "--json")
    assert result.exit_code == 0 and "builtin-v1" in result.stdout
    assert not typo.exists()


def test_a_damaged_database_gets_a_warning(tmp_path):
    home = tmp_path / "home"
    assert lrcal(home, "add-model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    conn = sqlite3.connect(home / "lrcal.db")
    conn.execute("create table filler (x)")
    conn.executemany("insert into filler values (?)", [("x" * 500,) for _ in range(200)])
    root = conn.execute("select rootpage from sqlite_master where name = 'filler'").fetchone()[0]
    page_size = conn.execute("pragma page_size").fetchone()[0]
    conn.commit()
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    with open(home / "lrcal.db", "r+b") as fh:  # scribble over the filler table's root page
        fh.seek((root - 1) * page_size)
        fh.write(b"\x0d" + b"\xff" * 64)
    result = lrcal(home, "models")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if "integrity check" in line]
    assert len(warning) == 1 and "warning:" in warning[0] and ".recover" in warning[0], result.stderr


def test_tui_refuses_a_non_terminal(tmp_path):
    result = lrcal(tmp_path, "tui")  # the runner's stdout is not a terminal
    assert result.exit_code == 1 and "needs an interactive terminal" in one_error_line(result)


def test_router_train_takes_a_lock_and_clears_a_killed_training_and_its_home_can_move(tmp_path, one_torch_thread):
    from lrcal.evaluation.synthetic import synthetic_outcomes
    from lrcal.store import Store
    from tests.fixtures.tables import write_wide_csv

    home = tmp_path / "home"
    csv = write_wide_csv(synthetic_outcomes(n=80, n_models=3, seed=5), tmp_path / "outcomes.csv")
    assert lrcal(home, "import-outcomes", str(csv)).exit_code == 0
    leftover = home / "routers" / ".r1-deadbeef.x1y2z3.staging"  # what a SIGKILLed training leaves
    leftover.mkdir(parents=True)
    (leftover / "router.pt").write_bytes(b"half")
    # another training holds the lock (a live process: this test's parent)
    store = Store.open(home)
    with store.write():
        store.db["locks"].insert({"name": "router:train", "pid": os.getppid(), "host": __import__("socket").gethostname(),
                                  "acquired_at": "now", "purpose": "router train"})  # fmt: skip
    store.close()
    busy = lrcal(home, "router", "train", "--ensemble", "1")
    assert busy.exit_code == 1 and "router:train is already running" in one_error_line(busy)
    assert leftover.exists()
    conn = sqlite3.connect(home / "lrcal.db")
    conn.execute("delete from locks")
    conn.commit()
    conn.close()
    trained = lrcal(home, "router", "train", "--ensemble", "1", "--json")
    assert trained.exit_code == 0, trained.output
    assert not leftover.exists()
    assert not [p for p in (home / "routers").iterdir() if p.name.startswith(".")]
    # 1. a moved home still loads its router (`route` said "no router artifact")
    from lrcal.services.router_context import load_routing

    moved = tmp_path / "moved"
    shutil.move(str(home), str(moved))
    store = Store.open(moved)
    try:
        routing = load_routing(store)
        assert routing.router.info["artifact"] == str(moved / "routers" / routing.version)
    finally:
        store.close()
    listed = lrcal(moved, "router", "list", "--json")
    assert listed.exit_code == 0 and str(moved) in listed.stdout


# ---- probes beyond the issue -----------------------------------------------------------------


def test_a_damaged_image_in_the_home_is_never_sent(tmp_path, zoo_server):
    """A bit-flipped image file was sent as the example's image: the answer was scored against
    an image the example does not have."""
    home = tmp_path / "home"
    assert lrcal(home, "add-model", MODEL, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    assert lrcal(home, "calibrate", MODEL, "--limit", "6", "--no-fit").exit_code == 0
    conn = sqlite3.connect(home / "lrcal.db")
    path = home / conn.execute(
        "select i.path from outcomes o join examples e on e.id = o.example_id join images i "
        "on i.sha256 = e.image_sha256 limit 1").fetchone()[0]  # fmt: skip
    conn.close()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert lrcal(home, "add-model", OTHER, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    lrcal(home, "calibrate", OTHER, "--limit", "6", "--no-fit")
    damaged = [r for r in outcome_rows(home, OTHER) if r["error_kind"]]
    assert len(damaged) == 1 and damaged[0]["error_kind"] == "missing_image" and "damaged" in damaged[0]["error_message"]


@pytest.mark.parametrize("kind", ["text file", "foreign SQLite database", "directory", "FIFO"])
def test_a_database_that_is_not_lrcal_s_is_refused_and_left_alone(tmp_path, kind):
    home = tmp_path / "home"
    home.mkdir()
    db = home / "lrcal.db"
    if kind == "text file":
        db.write_text("hello\n")
    elif kind == "foreign SQLite database":
        with sqlite3.connect(db) as conn:
            conn.execute("create table models (x)")
            conn.execute("insert into models values (1)")
    elif kind == "directory":
        db.mkdir()
    else:
        os.mkfifo(db)
    before = db.read_bytes() if db.is_file() else None
    for command in (["models"], ["add-model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--no-probe"]):
        if kind == "FIFO":  # in a subprocess with a timeout: a FIFO must not hang it
            done = subprocess.run([sys.executable, "-m", "lrcal", "--home", str(home), *command], capture_output=True,
                                  text=True, timeout=60)  # fmt: skip
            code, stderr = done.returncode, done.stderr
        else:
            result = lrcal(home, *command)
            code, stderr = result.exit_code, result.stderr
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), stderr
    if before is not None:
        assert db.read_bytes() == before
    if kind == "foreign SQLite database":
        assert "is not an lrcal database" in lines[0] and "models" in lines[0]


def test_one_sets_import_per_name_at_a_time(tmp_path):
    from lrcal.store import Store
    from tests.fixtures.sim import write_tiny_set

    home = tmp_path / "home"
    store = Store.open(home)
    with store.write():  # another import of this name is running (a live process: this test's parent)
        store.db["locks"].insert({"name": "sets import:incoming", "pid": os.getppid(),
                                  "host": __import__("socket").gethostname(), "acquired_at": "now", "purpose": "x"})  # fmt: skip
    store.close()
    result = lrcal(home, "sets", "import", str(write_tiny_set(tmp_path / "incoming")))
    assert result.exit_code == 1 and "sets import:incoming is already running" in one_error_line(result)
    assert not (home / "sets").exists() or not any((home / "sets").iterdir())


@pytest.mark.parametrize("option", [["--timeout", "inf"], ["--timeout", "nan"], ["--price-in", "nan"],
                                    ["--price-out", "inf"], ["--timeout", "1e309"]])  # fmt: skip
def test_non_finite_numbers_in_options_are_usage_errors(tmp_path, option):
    result = lrcal(tmp_path / "home", "add-model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--no-probe", *option)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert option[0] in line or "finite" in line, line
    assert not (tmp_path / "home" / "lrcal.db").exists() or lrcal(tmp_path / "home", "models", "--json").stdout.strip() == "[]"
