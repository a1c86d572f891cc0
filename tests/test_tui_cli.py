"""`lrcal tui` from the command line: a real process in a pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

ANSI = re.compile(rb"\x1b\[[0-9;?<>=$]*[A-Za-z~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]")


def run_in_terminal(args: list[str], wait_for: str, keys: bytes, size=(80, 24), timeout: float = 60.0):
    """Start ``lrcal ARGS`` on a pty of ``size``; once ``wait_for`` is on screen send ``keys``.
    Returns (seconds until it was seen or None, exit code, plain text seen)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "lrcal", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True, start_new_session=True)  # fmt: skip
    os.close(slave)
    raw, seen_at, text = b"", None, ""
    try:
        while time.monotonic() - started < timeout and proc.poll() is None:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    raw += os.read(master, 65536)
                except OSError:
                    break
                text = ANSI.sub(b"", raw).decode("utf-8", "replace")
                if seen_at is None and wait_for in text:
                    seen_at = time.monotonic() - started
                    os.write(master, keys)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return seen_at, code, text


def test_tui_on_an_empty_home_shows_what_to_run_and_quits(tmp_path):
    home = tmp_path / "empty-home"
    home.mkdir()  # an empty directory is an empty home; a missing one is refused (tests/test_reliability_home.py)
    seen, code, text = run_in_terminal(["--home", str(home), "tui"], "lrcal demo", b"q")
    assert seen is not None, text[-2000:]
    assert code == 0
    assert "No models in this home yet" in text
    assert "Traceback" not in text


def test_tui_options(cli):
    result = cli("tui", "--help")
    assert result.exit_code == 0
    for option in ("--set", "--lambda-cost", "--lambda-latency"):
        assert option in result.output
    bad = cli("tui", "--lambda-cost", "-1")
    assert bad.exit_code == 2 and "Error:" in bad.output
