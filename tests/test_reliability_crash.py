"""Crash safety: SIGKILL at random points, then resume — exactly one outcome per example,
nothing lost, nothing duplicated, and the database passes `PRAGMA integrity_check`.

The loops are long (≥ 20 kills each) and run with `make test-slow` (CI runs it too);
one quick trial of each runs in the normal suite.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.fixtures.flows import copy_home, point_models_at

LRCAL = [sys.executable, "-m", "lrcal"]
MODEL = "sim-docreader-m"


def _env(home):
    return {**os.environ, "LRCAL_HOME": str(home)}


def _outcome_ids(home, kind: str) -> dict[int, tuple[int, int, float]]:
    """Stored outcomes of one run kind: id -> (model, example, score)."""
    try:
        conn = sqlite3.connect(home / "lrcal.db", timeout=5)
        rows = conn.execute(
            "select o.id, r.model_id, o.example_id, o.score from outcomes o join runs r on r.id = o.run_id "
            "where r.kind = ?",
            [kind],
        ).fetchall()
        conn.close()
    except sqlite3.OperationalError:  # killed before the schema existed
        return {}
    return {row[0]: tuple(row[1:]) for row in rows}


def _count(home, kind: str) -> tuple[int, int]:
    """(outcomes, distinct model × example) of one run kind."""
    rows = _outcome_ids(home, kind)
    return len(rows), len({(model, example) for model, example, _ in rows.values()})


def _kill_at(delay: float) -> Callable[[subprocess.Popen], None]:
    def kill(proc: subprocess.Popen) -> None:
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # a no-op when the run has already finished

    return kill


def _kill_when_stored(home, kind: str, target: int) -> Callable[[subprocess.Popen], None]:
    """Kill as soon as ``target`` outcomes of ``kind`` are stored (mid-requests, by construction)."""

    def kill(proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 120
        while _count(home, kind)[0] < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)

    return kill


def _trial_kill(rng: random.Random, trial: int, home, kind: str, seconds: tuple[float, float],
                stored: tuple[int, int]) -> Callable[[subprocess.Popen], None]:
    """Trial ``trial`` of a kill loop: even trials kill after a random delay in ``seconds``,
    odd ones as soon as a random number of outcomes in ``stored`` (inclusive) are stored."""
    if trial % 2 == 0:
        return _kill_at(rng.uniform(*seconds))
    return _kill_when_stored(home, kind, rng.randint(*stored))


def _kill_trials(
    base: Path, kind: str, args: list[str], prepare: Callable[[Path], int], server, *, seed: int,
    seconds: tuple[float, float], exit_code: int = 0, check: Callable[[dict], None] | None = None, trials: int = 20,
) -> None:
    """``trials`` kill-and-resume trials of ``args``, each in a fresh home under ``base`` that
    ``prepare(home)`` sets up (it returns the outcomes expected after the run). Even trials kill
    after a random delay in ``seconds``, odd ones at a random point of the requests."""
    rng = random.Random(seed)
    started = time.monotonic()
    results = []
    for trial in range(trials):
        home = base / f"home-{trial}"
        expected = prepare(home)
        before = _count(home, kind)[0]
        kill = _trial_kill(rng, trial, home, kind, seconds, (before + 1, expected - 1))
        result = _kill_then_resume(home, args, kind, expected, kill, server, exit_code)
        if check is not None:
            check(result)
        results.append(result)
    _summary(kind, results, expected, time.monotonic() - started)
    killed = [r["killed_at"] for r in results]
    # The kills really landed at different points, many of them mid-run.
    assert sum(r["before"] < r["killed_at"] < expected for r in results) >= 5, killed


def _drain(server, quiet_s: float = 0.5, limit_s: float = 15.0) -> None:
    """Wait until the killed run's requests have all reached the server and finished: requests
    still in a socket backlog at the kill are handled (and counted) after it."""
    deadline = time.monotonic() + limit_s
    last, quiet_since = None, time.monotonic()
    while time.monotonic() < deadline:
        stats = server.stats()
        now = (stats["total_requests"], sum(stats["in_flight"].values()))
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif not now[1] and time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.05)


def _kill_then_resume(
    home, args: list[str], kind: str, expected: int, kill: Callable[[subprocess.Popen], None], server=None,
    exit_code: int = 0,
) -> dict:
    before = _count(home, kind)[0]
    proc = subprocess.Popen(LRCAL + args, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill(proc)
    proc.wait()
    at_kill = _outcome_ids(home, kind)
    if server is not None:
        _drain(server)
        server.reset_stats()
    started = time.monotonic()
    done = subprocess.run(LRCAL + args, env=_env(home), capture_output=True, text=True, timeout=300)
    resume_s = time.monotonic() - started
    assert done.returncode == exit_code, done.stderr
    after = _outcome_ids(home, kind)
    total, distinct = len(after), len({(m, e) for m, e, _ in after.values()})
    conn = sqlite3.connect(home / "lrcal.db")
    integrity = conn.execute("pragma integrity_check").fetchone()[0]
    locks = conn.execute("select count(*) from locks").fetchone()[0]
    conn.close()
    assert integrity == "ok"
    assert total == distinct == expected, (len(at_kill), total, distinct)
    # Nothing stored before the kill was lost or rewritten...
    assert all(after.get(i) == row for i, row in at_kill.items())
    # ...the resumed run asked only for what was missing, and released its lock.
    if server is not None:
        assert sum(server.request_counts.values()) == expected - len(at_kill)
    assert locks == 0
    return {"before": before, "killed_at": len(at_kill), "total": total, "resume_s": resume_s, "stdout": done.stdout}


# ---- calibration ---------------------------------------------------------------------------


CALIBRATION = ["calibrate", MODEL, "--no-fit"]


def _calibration_home(home, server) -> None:
    home.mkdir()
    subprocess.run(LRCAL + ["add-model", MODEL, "--base-url", server.url, "--no-probe", "--max-concurrency", "8"],
                   env=_env(home), check=True, capture_output=True)  # fmt: skip


def test_one_calibration_kill_and_resume(tmp_path, sim_server, builtin_sets):
    server = sim_server(sets=builtin_sets, latency_scale=0.15)
    _calibration_home(tmp_path / "home", server)
    kill = _kill_when_stored(tmp_path / "home", "calibration", 128 // 3)
    result = _kill_then_resume(tmp_path / "home", CALIBRATION, "calibration", 128, kill, server)
    assert 0 < result["killed_at"] < 128, result  # the kill landed mid-requests


@pytest.mark.slow
def test_twenty_calibration_kills(tmp_path, sim_server, builtin_sets):
    server = sim_server(sets=builtin_sets, latency_scale=0.15)

    def prepare(home) -> int:
        _calibration_home(home, server)
        return 128

    # timed kills anywhere: start-up, set registration, mid-requests, the end
    _kill_trials(tmp_path, "calibration", CALIBRATION, prepare, server, seed=7, seconds=(0.3, 6.0))


# ---- live validation -----------------------------------------------------------------------

CANDIDATE = "sim-legacy-xl"  # validated sequentially in the flow home, rejected
HOLDOUT = 144  # builtin-v1-holdout: the whole set at one look, so what the flow did not need goes live
VALIDATE = ["live-validate", CANDIDATE, "--no-sequential", "--json"]
REJECTED_EXIT = 3  # live-validate's exit code for a rejection


def _validation_home(template, home, server) -> int:
    """A copy of the onboarded flow home pointed at ``server``; returns the outcomes expected
    after validation (candidate + every enabled model, one per held-out query)."""
    copy_home(template, home)
    point_models_at(home, server.url)
    with sqlite3.connect(home / "lrcal.db") as conn:
        enabled = conn.execute("select count(*) from models where status = 'enabled' and name != ?", [CANDIDATE])
        return (enabled.fetchone()[0] + 1) * HOLDOUT


def _check_validation_report(result: dict) -> None:
    report = json.loads(result["stdout"])
    assert report["n"] == HOLDOUT and report["skipped_examples"] == 0


def test_one_validation_kill_mid_requests_and_resume(flow_home_template, tmp_path, sim_server, builtin_sets):
    template, _ = flow_home_template
    server = sim_server(sets=builtin_sets, latency_scale=0.05)
    home = tmp_path / "home"
    expected = _validation_home(template, home, server)
    before = _count(home, "validation")[0]
    target = before + (expected - before) // 3  # a third of the way through the requests
    result = _kill_then_resume(home, VALIDATE, "validation", expected,
                               _kill_when_stored(home, "validation", target), server, REJECTED_EXIT)  # fmt: skip
    assert before < result["killed_at"] < expected, result  # the kill landed mid-requests
    _check_validation_report(result)


@pytest.mark.slow
def test_twenty_validation_kills(flow_home_template, tmp_path, sim_server, builtin_sets):
    template, _ = flow_home_template
    server = sim_server(sets=builtin_sets, latency_scale=0.1)
    # timed kills anywhere in a ~10 s run (start-up: torch, router; requests, evaluation, the end)
    _kill_trials(tmp_path, "validation", VALIDATE, lambda home: _validation_home(template, home, server), server,
                 seed=11, seconds=(0.5, 12.0), exit_code=REJECTED_EXIT, check=_check_validation_report)


def _summary(what: str, results: list[dict], expected: int, seconds: float) -> None:
    """One line for docs/reliability.md (shown with `pytest -s`)."""
    start_up = sum(r["killed_at"] == r["before"] for r in results)
    mid = sum(r["before"] < r["killed_at"] < expected for r in results)
    end = sum(r["killed_at"] == expected for r in results)
    print(
        f"\n{what}: {len(results)} SIGKILL trials in {seconds:.0f} s; killed before the first new outcome {start_up}, "
        f"mid-requests {mid}, after the last {end}; stored at kill {sorted(r['killed_at'] for r in results)}; "
        f"every resume: {expected} outcomes, 0 duplicates, 0 lost, integrity ok"
    )
