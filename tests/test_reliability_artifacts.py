"""Router artifacts under SIGKILL: a process saving a router over and over (in place, and as new
version directories) is killed at a random point. Every artifact left behind either loads, or —
only when the kill fell between the weights and the sidecar of an in-place overwrite — is refused
by its sha256 with one line; never a torn file, never a half-filled version directory.

(The refusals of flipped, truncated and mismatched artifacts are in tests/test_router.py.)
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from lrcal.errors import LrcalError

SAVER = """
import itertools, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from lrcal.router import load_router, save_router
router = load_router(sys.argv[1])
out = Path(sys.argv[2])
print("ready", flush=True)
for i in itertools.count():
    save_router(router, out / "live")  # in place: temp file + rename, weights first
    save_router(router, out / f"v{i:05d}")  # a new version: staging directory + rename
"""


@pytest.fixture(scope="module")
def saved_router(tmp_path_factory):
    import torch

    from lrcal.evaluation.synthetic import synthetic_outcomes
    from lrcal.features import fit_feature_spec
    from lrcal.router import RouterConfig, RouterData, save_router, train_router

    torch.set_num_threads(1)
    table = synthetic_outcomes(n=60, n_models=3, seed=5)
    spec = fit_feature_spec(table.tasks, table.metadata)
    config = RouterConfig(hidden=16, query_tokens=2, capsules=2, layers=1, heads=2, warmup_max_steps=20,
                          warmup_patience=4, latent_max_steps=10, patience=2, batch_size=64)  # fmt: skip
    router = train_router(RouterData.from_table(table, spec), spec, config, seed=0, ensemble=1)
    path = tmp_path_factory.mktemp("router") / "r1"
    save_router(router, path)
    return path


def _kill_a_saver(source, out, rng: random.Random) -> dict:
    from lrcal.router import load_router, read_sidecar, save_router

    out.mkdir()
    save_router(load_router(source), out / "live")
    proc = subprocess.Popen([sys.executable, "-c", SAVER, str(source), str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.05, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    read_sidecar(out / "live")  # the sidecar is always whole (atomic replace)
    try:
        load_router(out / "live")
        live = "loaded"
    except LrcalError as exc:
        assert "sha256" in str(exc) and "\n" not in str(exc), exc
        live = "refused by sha256"
    versions = sorted(p for p in out.iterdir() if p.name.startswith("v"))
    for version in versions:  # a version directory appears whole or not at all
        assert sorted(p.name for p in version.iterdir()) == ["router.json", "router.pt"], version
        load_router(version)
    return {"live": live, "versions": len(versions)}


def test_a_killed_save_leaves_loadable_or_refused_artifacts(saved_router, tmp_path):
    _kill_a_saver(saved_router, tmp_path / "t", random.Random(5))


@pytest.mark.slow
def test_twenty_killed_saves(saved_router, tmp_path):
    rng = random.Random(17)
    started = time.monotonic()
    results = [_kill_a_saver(saved_router, tmp_path / f"t{i}", rng) for i in range(20)]
    refused = sum(r["live"] != "loaded" for r in results)
    assert any(r["versions"] for r in results), results  # the kills landed inside the save loop
    print(
        f"\nrouter artifacts: 20 SIGKILL trials in {time.monotonic() - started:.0f} s; in-place artifact loaded "
        f"{20 - refused}, refused by sha256 {refused}; {sum(r['versions'] for r in results)} version directories "
        "left, every one complete and loadable"
    )
