"""`lrcal sim zoo` and `lrcal sim serve` (a real process, stopped with Ctrl-C)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.fixtures.sim import TINY_EXAMPLES


def test_zoo_json_lists_every_model_as_simulated(cli):
    result = cli("sim", "zoo", "--json")
    assert result.exit_code == 0, result.output
    zoo = json.loads(result.stdout)
    assert zoo["simulated"] is True and len(zoo["models"]) >= 7
    for model in zoo["models"]:
        assert model["simulated"] is True and model["name"].startswith("sim-")
        assert set(model["skills"]) >= {"ocr", "chart", "document", "spatial", "vqa", "math"}
        assert model["price_out_per_mtok"] >= 0 and model["median_latency_ms"] > 0


def test_zoo_table(cli):
    result = cli("sim", "zoo")
    assert result.exit_code == 0
    assert "SIMULATED zoo 'default'" in result.stdout and "sim-legacy-xl" in result.stdout


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["--fail-rate", "2"], 2, "'--fail-rate': Input should be less than or equal to 1"),
        (["--fail-rate", "nan"], 2, "'--fail-rate': must be a finite number"),
        (["--zoo", "/no/such/zoo.json"], 1, "zoo.json: no such file"),
        (["--chaos", "boom=0.1"], 2, "unknown fault kind 'boom'"),
        (["--chaos", "http_429"], 2, "--chaos takes KIND=RATE"),
        (["--chaos-model", "gpt-4o", "--fail-rate", "0.1"], 2, "not in the zoo: gpt-4o"),
        (["--port", "70000"], 2, "'--port': Input should be less than or equal to 65535"),
        (["--api-key-env", "LRCAL_SIM_UNSET_KEY"], 2, "is not set"),
        (["--set", "/no/such/set"], 1, "unknown calibration set"),
    ],
)
def test_serve_rejects_bad_options_with_one_line(cli, args, code, needle):
    result = cli("sim", "serve", "--port", "0", *args)
    assert result.exit_code == code
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0]


def _read_lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


def test_serve_prints_url_and_models_then_stops_cleanly_on_ctrl_c(tiny_set_dir, home):
    env = {**os.environ, "LRCAL_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lrcal", "sim", "serve", "--port", "0", "--set", str(tiny_set_dir),
         "--latency-scale", "0.02", "--seed", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while not any(line.startswith("serving until Ctrl-C") for line in seen):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, process.stderr.read()
            seen.append(line)
        assert "SIMULATED model server" in seen[0]
        # --set adds the tiny set to the built-in ones; it never replaces them (issue 19, defect 6)
        known = int(seen[0].split(" known examples")[0].rsplit(" ", 1)[1])
        # builtin-v1 (128; quick is a subset), the holdout (144) and the adaptive pool (512)
        assert known == 128 + 144 + 512 + len(TINY_EXAMPLES) and "builtin-v1-holdout" in seen[0], seen[0]
        base_url = next(line.split(": ", 1)[1] for line in seen if line.startswith("base_url: "))
        models = [line.split()[2] for line in seen if line.startswith("SIMULATED model: ")]
        assert len(models) >= 7 and "sim-generalist-xl" in models
        listed = httpx.get(base_url + "/models", timeout=5).json()
        assert [m["id"] for m in listed["data"]] == models
        body = {"model": "sim-lite-s", "messages": [{"role": "user", "content": "hello?"}]}
        assert httpx.post(base_url + "/chat/completions", json=body, timeout=5).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0
    assert "Traceback" not in process.stderr.read()
