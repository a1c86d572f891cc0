"""Crash safety: SIGKILL at random points, then resume — exactly one outcome per example,
nothing lost, nothing duplicated, and the database passes `PRAGMA integrity_check`.

The loops are long (≥ 20 kills each) and run with `make test-slow` (CI runs it too);
one quick trial of each runs in the normal suite.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

LRCAL = [sys.executable, "-m", "lrcal"]
MODEL = "sim-docreader-m"


def _env(home):
    return {**os.environ, "LRCAL_HOME": str(home)}


def _count(home, kind: str) -> tuple[int, int]:
    try:
        conn = sqlite3.connect(home / "lrcal.db", timeout=5)
        total, distinct = conn.execute(
            "select count(*), count(distinct r.model_id || ':' || o.example_id) from outcomes o "
            "join runs r on r.id = o.run_id where r.kind = ?",
            [kind],
        ).fetchone()
        conn.close()
        return total, distinct
    except sqlite3.OperationalError:
        return 0, 0


def _kill_then_resume(home, args: list[str], kind: str, expected: int, rng: random.Random) -> dict:
    proc = subprocess.Popen(LRCAL + args, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.3, 2.5))  # anywhere: start-up, set registration, mid-requests, the end
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at, _ = _count(home, kind)
    done = subprocess.run(LRCAL + args, env=_env(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    total, distinct = _count(home, kind)
    conn = sqlite3.connect(home / "lrcal.db")
    integrity = conn.execute("pragma integrity_check").fetchone()[0]
    conn.close()
    assert integrity == "ok"
    assert total == distinct == expected, (killed_at, total, distinct)
    return {"killed_at": killed_at, "total": total}


def _calibration_trials(tmp_path, sim_server, builtin_sets, trials: int, seed: int) -> list[dict]:
    server = sim_server(sets=builtin_sets, latency_scale=0.15)
    rng = random.Random(seed)
    results = []
    for trial in range(trials):
        home = tmp_path / f"home-{trial}"
        home.mkdir()
        subprocess.run(LRCAL + ["add-model", MODEL, "--base-url", server.url, "--no-probe", "--max-concurrency", "8"],
                       env=_env(home), check=True, capture_output=True)  # fmt: skip
        results.append(_kill_then_resume(home, ["calibrate", MODEL, "--no-fit"], "calibration", 128, rng))
    return results


def test_one_calibration_kill_and_resume(tmp_path, sim_server, builtin_sets):
    _calibration_trials(tmp_path, sim_server, builtin_sets, trials=1, seed=1)


@pytest.mark.slow
def test_twenty_calibration_kills(tmp_path, sim_server, builtin_sets):
    results = _calibration_trials(tmp_path, sim_server, builtin_sets, trials=20, seed=7)
    killed = [r["killed_at"] for r in results]
    # The kills really landed at different points, including mid-run.
    assert any(0 < k < 128 for k in killed), killed
