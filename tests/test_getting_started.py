"""docs/getting-started.md is executable: its `bash` blocks run in order, as one shell script,
against the simulator in a temporary home, and every `text` block shown after a command block
must appear in that block's output (line by line, in order; "…" skips). So the walkthrough
cannot drift from the tool (issue 19, defect 6: it once calibrated to 0.000 without a warning)."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "getting-started.md"
DOC_PORT = "8700"
FENCE = re.compile(r"(<!-- docs-test: skip -->\s*\n)?```(\w+)\n(.*?)```", re.S)


def doc_blocks(text: str) -> list[dict]:
    """Every fenced block: its language, code, and whether the doc marks it as not run."""
    return [{"skip": bool(m.group(1)), "lang": m.group(2), "code": m.group(3)} for m in FENCE.finditer(text)]


def runnable(blocks: list[dict]) -> list[tuple[str, list[str]]]:
    """(bash code, lines expected in its output) for every bash block that runs."""
    out: list[tuple[str, list[str]]] = []
    for block in blocks:
        if block["lang"] == "bash" and not block["skip"]:
            out.append((block["code"], []))
        elif block["lang"] == "text" and out:
            out[-1][1].extend(block["code"].splitlines())
    return out


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _script(steps: list[tuple[str, list[str]]], port: str) -> str:
    parts = ["set -euo pipefail", "exec 2>&1", "trap 'kill $SIM_PID 2>/dev/null || true' EXIT", "SIM_PID="]
    for i, (code, _) in enumerate(steps):
        parts += [f"echo '@@step {i}@@'", code.replace(DOC_PORT, port)]
    return "\n".join(parts) + "\n"


def _found_in_order(expected: list[str], output: str, port: str) -> list[str]:
    """The expected lines missing from ``output``: each searched after the previous one; a "…"
    line skips any number of lines, a "…" inside a line any text (a timestamp, a path)."""
    missing, at = [], 0
    for line in expected:
        pieces = [p.strip() for p in line.replace(DOC_PORT, port).split("…") if p.strip()]
        start = at
        for piece in pieces:
            found = output.find(piece, start)
            if found < 0:
                missing.append(line.strip())
                break
            start = found + len(piece)
        else:
            at = start
    return missing


def test_the_walkthrough_registers_the_zoos_real_prices_and_routes_only_after_enabling():
    from lrcal.sim import load_zoo

    blocks = doc_blocks(DOC.read_text())
    code = "\n".join(c for c, _ in runnable(blocks))
    prices = {m.name: (m.price_in_per_mtok, m.price_out_per_mtok) for m in load_zoo("default").models}
    added = re.findall(r"add-model (\S+) .*?--price-in (\S+)\s+--price-out (\S+)", code)
    assert len(added) == 7
    for name, price_in, price_out in added:
        assert (float(price_in), float(price_out)) == prices[name], name
    assert code.index("live-validate sim-docreader-m --enable") < code.index("lrcal route --")
    for image in re.findall(r"--image (\S+)", code):
        assert (REPO / image).is_file(), image
    assert "--set" not in code.split("lrcal sim serve", 1)[1].split("\n", 1)[0]  # --set adds, no need here


@pytest.mark.slow
def test_getting_started_runs_as_written(tmp_path):
    """Every bash block of the walkthrough, as one script (a minute and a half alone, three
    minutes beside the rest of the suite: `make test-slow`)."""
    steps = runnable(doc_blocks(DOC.read_text()))
    port = _free_port()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "lrcal"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lrcal "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    # the walkthrough reads the store with sqlite-utils, installed beside lrcal
    (bin_dir / "sqlite-utils").symlink_to(Path(sys.executable).parent / "sqlite-utils")
    env = {**os.environ, "LRCAL_HOME": str(tmp_path / "home"), "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"}  # fmt: skip
    done = subprocess.run(["bash", "-c", _script(steps, port)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    pieces = re.split(r"@@step (\d+)@@\n", done.stdout)
    by_step = {int(pieces[i]): pieces[i + 1] for i in range(1, len(pieces), 2)}
    for i, (code, expected) in enumerate(steps):
        missing = _found_in_order(expected, by_step.get(i, ""), port)
        assert not missing, (code, missing, by_step.get(i, "")[-3000:])
