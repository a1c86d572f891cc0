"""Run `lrcal sim serve` in a subprocess (its own process, as a real endpoint would be)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from typing import Iterator


@contextlib.contextmanager
def sim_process(args: list[str], timeout_s: float = 60.0) -> Iterator[str]:
    """Start `lrcal sim serve --port 0 ARGS...`; yields its base URL; stops it on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrcal", "sim", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + timeout_s
        base_url = None
        lines: list[str] = []
        while time.time() < deadline and proc.poll() is None:
            line = proc.stdout.readline() if proc.stdout else ""
            lines.append(line)
            match = re.search(r"base_url:\s*(\S+)", line or "")
            if match:
                base_url = match.group(1)
                break
        if base_url is None:
            from lrcal.errors import LrcalError

            last = " ".join("".join(lines).split())[-300:]
            raise LrcalError(f"the simulated server did not start: {last or 'no output'}")
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
