"""Time one live re-route of `lrcal tui`'s routing view (what a λ key or the candidate toggle does).

    .venv/bin/python scripts/measure_tui_reroute.py --home /tmp/tui-demo-home --repeats 50

Runs the app headless (Textual's `run_test`, 100×30) on HOME, waits for the first load, then
times ``RoutingPane.refresh_routing()`` — route + candidate Δ (the argmax of the routing
policy over the cached predictions) and the re-render of the table, summary and Δ widgets —
over a walk up the λ_cost ladder with the candidate toggled every step. The terminal paint
that follows is Textual's and is not included.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def measure(home: Path, repeats: int) -> list[float]:
    from lrcal.services.review import ReviewService
    from lrcal.tui.app import LrcalApp
    from lrcal.tui.routing_view import RoutingPane, lambda_ladder

    app = LrcalApp(ReviewService(home))
    times: list[float] = []
    async with app.run_test(size=(100, 30)) as pilot:
        while not app.loaded:
            await pilot.pause(0.05)
        pane = app.query_one(RoutingPane)
        if pane.snap is None:
            raise SystemExit(f"{home} has nothing to route")
        ladder = lambda_ladder()
        for i in range(repeats):
            pane.lambda_cost = ladder[i % len(ladder)]
            if pane.candidate:
                pane.with_candidate = not pane.with_candidate
            started = time.perf_counter()
            pane.refresh_routing()
            times.append(time.perf_counter() - started)
            await pilot.pause()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    load_before = os.getloadavg()
    times = asyncio.run(measure(args.home, args.repeats))
    ms = sorted(t * 1000 for t in times)
    print(f"refresh_routing: median {statistics.median(ms):.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms "
          f"({len(ms)} re-routes)")  # fmt: skip
    load = os.getloadavg()
    print(f"load average (1/5/15 min) before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    main()
