"""Time from starting `lrcal tui` until its per-task routing table is on screen, in tmux.

    .venv/bin/python scripts/measure_tui_startup.py --home /tmp/tui-demo-home --runs 5
    .venv/bin/python scripts/measure_tui_startup.py --home /tmp/tui-demo-home --runs 3 --cold

Each run starts ``lrcal --home HOME tui`` in a new detached tmux session of ``--size`` (a real
terminal), polls ``tmux capture-pane -p`` every ``--poll`` seconds and stops the clock when
the pane shows the routing table: its header row (``task``) and its ``all (N)`` total row.
The clock starts just before ``tmux new-session``, so it includes tmux starting the process.
Then it presses ``q`` and waits for the session to end. ``--cold`` deletes the home's TUI cache
(``<home>/cache/tui``) before every run, so each launch imports torch and runs the router.

Prints every run, min / median / max, and the load averages (``os.getloadavg``) before and
after, since the number depends on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_LRCAL = Path(sys.executable).with_name("lrcal")


def table_visible(screen: str) -> bool:
    lines = screen.splitlines()
    header = any(line.strip().startswith("task ") for line in lines)
    total = any(line.strip().startswith("all (") for line in lines)
    return header and total


def one_launch(lrcal: Path, home: Path, size: tuple[int, int], poll: float, timeout: float, session: str) -> float:
    command = f"{lrcal} --home {home} tui"
    started = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), command],
                   check=True)  # fmt: skip
    screen = ""
    try:
        while True:
            elapsed = time.perf_counter() - started
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout  # fmt: skip
            if table_visible(screen):
                return elapsed
            if elapsed > timeout:
                raise SystemExit(f"no routing table after {timeout:.0f} s; the pane shows:\n{screen}")
            time.sleep(poll)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", default="100x30", help="tmux window size, COLSxROWS")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between pane captures")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cold", action="store_true", help="delete <home>/cache/tui before every run")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--lrcal", type=Path, default=DEFAULT_LRCAL)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is not installed")
    if not (args.home / "lrcal.db").exists():
        raise SystemExit(f"{args.home} has no lrcal.db (make one with `lrcal --home {args.home} demo`)")
    cols, rows = (int(v) for v in args.size.lower().split("x"))

    load_before = os.getloadavg()
    times = []
    for run in range(args.runs):
        if args.cold:
            shutil.rmtree(args.home / "cache" / "tui", ignore_errors=True)
        seconds = one_launch(args.lrcal, args.home.resolve(), (cols, rows), args.poll, args.timeout,
                             session=f"lrcal-tui-startup-{os.getpid()}-{run}")  # fmt: skip
        times.append(seconds)
        if not args.json:
            print(f"run {run + 1}: routing table visible after {seconds:.2f} s", flush=True)
        time.sleep(args.pause)
    load_after = os.getloadavg()

    result = {
        "home": str(args.home),
        "size": f"{cols}x{rows}",
        "cache": "cold" if args.cold else "as found (warm after the first launch or `lrcal demo`)",
        "seconds": [round(t, 3) for t in times],
        "min": round(min(times), 3),
        "median": round(statistics.median(times), 3),
        "max": round(max(times), 3),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"min {result['min']:.2f} s · median {result['median']:.2f} s · max {result['max']:.2f} s "
              f"({args.runs} launches, {result['size']}, cache {result['cache']})")  # fmt: skip
        before, after = (" ".join(f"{v:.2f}" for v in load) for load in (load_before, load_after))
        print(f"load average (1/5/15 min) before {before}, after {after} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
