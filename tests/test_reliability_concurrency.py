"""Several lrcal processes on one home: different models run together, the same model is locked."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

LRCAL = [sys.executable, "-m", "lrcal"]


def _env(home):
    return {**os.environ, "LRCAL_HOME": str(home)}


def _add(home, name, url):
    subprocess.run(LRCAL + ["add-model", name, "--base-url", url, "--no-probe", "--max-concurrency", "8"],
                   env=_env(home), check=True, capture_output=True)  # fmt: skip


def test_two_models_calibrate_at_once_without_lock_errors(home, sim_server, builtin_sets):
    server = sim_server(sets=builtin_sets, latency_scale=0.02)
    for name in ("sim-docreader-m", "sim-chartqa-m"):
        _add(home, name, server.url)
    procs = [
        subprocess.Popen(LRCAL + ["calibrate", name, "--json"], env=_env(home), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)  # fmt: skip
        for name in ("sim-docreader-m", "sim-chartqa-m")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        assert "locked" not in err
        assert json.loads(out)["completed"] == 128
    conn = sqlite3.connect(home / "lrcal.db")
    assert conn.execute("select count(*) from outcomes").fetchone()[0] == 256
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_second_calibration_of_the_same_model_refuses(home, sim_server, builtin_sets):
    server = sim_server(sets=builtin_sets, latency_scale=0.5)  # slow: the first run is still going
    _add(home, "sim-docreader-m", server.url)
    first = subprocess.Popen(LRCAL + ["calibrate", "sim-docreader-m"], env=_env(home),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        # wait until it holds the lock (generous: on a loaded 2-core machine starting the
        # first process alone took over 30 s, and a second run started before it then ran alone)
        deadline, held = time.time() + 120, 0
        while time.time() < deadline and first.poll() is None:
            try:
                conn = sqlite3.connect(home / "lrcal.db")
                held = conn.execute("select count(*) from locks").fetchone()[0]
                conn.close()
                if held:
                    break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.05)
        assert held and first.poll() is None, "the first calibrate never held its lock while running"
        second = subprocess.run(LRCAL + ["calibrate", "sim-docreader-m"], env=_env(home), capture_output=True,
                                text=True, timeout=60)  # fmt: skip
        assert second.returncode == 1
        assert second.stderr.startswith("Error: calibrate:sim-docreader-m is already running in process")
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        first.kill()
        first.wait()
    # The owner is gone: its lock is stale and the next run takes over and finishes.
    done = subprocess.run(LRCAL + ["calibrate", "sim-docreader-m", "--limit", "6", "--json"], env=_env(home),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(home / "lrcal.db")
    assert conn.execute("select count(*) from locks").fetchone()[0] == 0  # released on exit
    conn.close()
