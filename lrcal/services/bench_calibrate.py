"""Calibration throughput benchmark: wall time vs the ideal for a fixed-latency model.

A simulated model that always takes ``latency_ms`` serves ``n`` examples at
``concurrency``; the ideal wall time is ceil(n / concurrency) × latency. The ratio
measured / ideal is the overhead of everything lrcal does per request (prompt and
image encoding, HTTP, SSE parsing, scoring, one SQLite transaction per outcome).
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path


def run_calibration_benchmark(
    *, n: int = 128, concurrency: int = 16, latency_ms: float = 100.0, repeats: int = 3, set_ref: str = "builtin-v1"
) -> dict:
    from lrcal.calsets import load_set, resolve_set
    from lrcal.services.calibration import CalibrateRequest, calibrate
    from lrcal.services.models import add_model
    from lrcal.sim import load_zoo
    from lrcal.sim.process import sim_process
    from lrcal.store import Store

    cset = load_set(resolve_set(set_ref))
    n = min(n, len(cset.examples))
    ideal_s = math.ceil(n / concurrency) * latency_ms / 1000.0
    walls: list[float] = []
    model_name = load_zoo("default").models[0].name
    # The endpoint runs in its own process, as a real one would (no GIL shared with lrcal).
    with sim_process(["--set", set_ref, "--fixed-latency-ms", str(latency_ms)]) as base_url, \
            tempfile.TemporaryDirectory(prefix="lrcal-bench-") as tmp:  # fmt: skip
        store = Store.open(Path(tmp))
        add_model(store, model_name, base_url=base_url, max_concurrency=concurrency, probe=False)
        request = CalibrateRequest(model=model_name, set_ref=set_ref, limit=n, concurrency=concurrency, fresh=True)
        # The first run in a new home also registers the set (copies its images into the home).
        start = time.perf_counter()
        calibrate(store, request)
        first_wall = time.perf_counter() - start
        # Then, like onboarding one more model into an existing home: a fresh run each time.
        for _ in range(repeats):
            start = time.perf_counter()
            report = calibrate(store, request)
            walls.append(time.perf_counter() - start)
            if report["completed"] != n:
                raise RuntimeError(f"benchmark run completed {report['completed']} of {n}")
        store.close()
    best = min(walls)
    median = sorted(walls)[len(walls) // 2]
    return {
        "examples": n,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "ideal_s": ideal_s,
        "first_run_wall_s": first_wall,
        "first_run_ratio": first_wall / ideal_s,
        "wall_s": walls,
        "best_wall_s": best,
        "median_wall_s": median,
        "ratio_best": best / ideal_s,
        "ratio_median": median / ideal_s,
        "target_ratio": 1.5,
    }

