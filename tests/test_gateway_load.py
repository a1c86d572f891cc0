"""`lrcal serve` under load (64 concurrent asyncio clients: nothing lost or doubled in the log),
with two uvicorn workers on one home, with shadow traffic, and `lrcal traffic` / `lrcal bench serve`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.fixtures.gateway import example_of, image_messages, wait_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


async def load(url: str, bodies: list[dict], clients: int, seconds: float) -> list[str]:
    """``clients`` clients cycling through ``bodies`` for ``seconds``; the request ids answered."""
    answered: list[str] = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        deadline = time.monotonic() + seconds

        async def client(i: int) -> None:
            n = i
            while time.monotonic() < deadline:
                body = bodies[n % len(bodies)]
                n += 1
                if body.get("stream"):
                    async with http.stream("POST", url, json=body) as response:
                        text = "".join([line async for line in response.aiter_lines()])
                        assert response.status_code == 200 and "[DONE]" in text, text[:300]
                else:
                    response = await http.post(url, json=body)
                    assert response.status_code == 200, response.text[:300]
                answered.append(response.headers["x-request-id"])

        await asyncio.gather(*(client(i) for i in range(clients)))
    return answered


def load_bodies(builtin_sets) -> list[dict]:
    bodies = []
    for i, task in enumerate(("document", "chart", "ocr", "vqa", "math", "spatial")):
        messages = image_messages(example_of(builtin_sets, task))
        bodies.append({"model": "lrcal/auto", "messages": messages, "stream": i % 2 == 1})
    bodies.append({"model": "sim-lite-s", "messages": [{"role": "user", "content": "What is 2+2?"}]})
    return bodies


def check_log(home, answered: list[str]) -> dict:
    from lrcal.store import Store

    store = Store.open(home)
    try:
        rows = store.traffic_requests()
        counts = store.traffic_counts()
    finally:
        store.close()
    ids = [r["request_id"] for r in rows]
    assert len(answered) == len(set(answered))
    assert sorted(ids) == sorted(answered), "lost or extra log rows"
    assert counts["traffic"] == counts["traffic_ids"] == counts["attempts"] == len(answered)
    assert all(r["status_code"] == 200 and r["served_model"] and r["error_kind"] is None for r in rows)
    return {"rows": len(rows), "pids": {r["worker_pid"] for r in rows}}


def run_load(gateway, served_home, builtin_sets, seconds: float) -> dict:
    gw = gateway(reload_s=1.0)
    answered = asyncio.run(load(gw.url + "/chat/completions", load_bodies(builtin_sets), 64, seconds))
    gw.stop()  # the log writer flushes on shutdown
    return {"answered": len(answered), **check_log(served_home, answered)}


def test_64_concurrent_clients_lose_and_double_no_log_row(gateway, served_home, builtin_sets):
    result = run_load(gateway, served_home, builtin_sets, seconds=3.0)
    assert result["answered"] >= 64


@pytest.mark.slow
def test_64_concurrent_clients_for_60_s_lose_and_double_no_log_row(gateway, served_home, builtin_sets):
    result = run_load(gateway, served_home, builtin_sets, seconds=60.0)
    assert result["answered"] > 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_share_one_home_and_the_log_stays_consistent(served_home, builtin_sets):
    port = free_port()
    env = {**os.environ, "LRCAL_HOME": str(served_home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lrcal", "serve", "--workers", "2", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"

        def worker_pids():  # a new connection each time: the workers race to accept it
            try:
                return {httpx.get(base + "/health", timeout=2).json()["pid"] for _ in range(20)}
            except httpx.HTTPError:
                return set()

        pids: set[int] = set()

        def both_workers_seen() -> bool:
            if proc.poll() is not None:
                return True
            pids.update(worker_pids())
            return len(pids) >= 2

        wait_for(both_workers_seen, timeout_s=120, step_s=0.5)
        assert proc.poll() is None, proc.stderr.read()
        assert len(pids) == 2  # two worker processes serve the port
        answered = asyncio.run(load(base + "/v1/chat/completions", load_bodies(builtin_sets), 16, 4.0))
    finally:
        proc.send_signal(signal.SIGINT)  # uvicorn's supervisor stops the workers; each flushes its log
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "lrcal serve: http://127.0.0.1" in out and "2 workers" in out
    result = check_log(served_home, answered)  # every answer logged once, whichever worker gave it
    assert result["pids"] <= pids, result


def test_shadow_traffic_is_logged_apart_and_never_returned(gateway, served_home, builtin_sets, served_cli):
    from lrcal.store import Store

    candidate = "sim-docreader-m"
    store = Store.open(served_home)
    store.set_status(candidate, "validated", reason="a candidate to shadow (test)")
    store.close()
    from lrcal.errors import LrcalError
    from lrcal.gateway.config import GatewayConfig
    from lrcal.gateway.runner import check_config

    with pytest.raises(LrcalError, match="shadow traffic goes to a validated model"):
        check_config(GatewayConfig(home=str(served_home), shadow="sim-legacy-xl"))
    gw = gateway(shadow=candidate, shadow_rate=1.0)
    bodies = [b for b in load_bodies(builtin_sets) if b["model"] == "lrcal/auto"]
    answered = asyncio.run(load(gw.url + "/chat/completions", bodies, 4, 2.0))
    wait_for(lambda: gw.gateway.traffic.written >= len(answered))
    time.sleep(1.0)  # shadow calls finish after their requests
    gw.stop()
    store = Store.open(served_home)
    requests, shadows = store.traffic_requests(), store.traffic_shadow()
    store.close()
    assert len(shadows) == len(requests) == len(answered)
    assert all(r["served_model"] != candidate for r in requests)
    assert all(s["model"] == candidate and s["error_kind"] is None and s["agrees"] in (0, 1) for s in shadows)
    assert all(0 < s["predicted_mu"] < 1 and 0 < s["served_predicted_mu"] < 1 for s in shadows)
    served_cost = sum(r["cost_usd"] for r in requests)
    shadow_cost = sum(s["cost_usd"] for s in shadows)
    assert shadow_cost > 0 and served_cost > 0

    report = json.loads(served_cli("traffic", "--shadow", "--json").stdout)
    assert report[0]["model"] == candidate and report[0]["requests"] == len(answered)
    assert report[0]["shadow_cost_usd"] == pytest.approx(shadow_cost)
    assert report[0]["served_cost_usd"] == pytest.approx(served_cost)
    assert 0 <= report[0]["agreement"] <= 1 and report[0]["compared"] == len(answered)

    summary = json.loads(served_cli("traffic", "--json").stdout)
    assert sum(row["requests"] for row in summary) == len(answered)
    assert sum(row["cost_usd"] for row in summary) == pytest.approx(served_cost)  # shadow spend kept apart
    table = served_cli("traffic").stdout
    assert "p50 ms" in table and summary[0]["model"] in table


def test_bench_serve_reports_overhead_and_throughput_against_direct_calls(served_home, served_cli):
    result = served_cli("bench", "serve", "--clients", "8", "--duration", "1", "--reps", "20", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["routing_overhead_ms"]["total"]["p50"] > 0 and report["routing_overhead_ms"]["threads"] == 1
    assert report["direct"]["requests"] > 0 and report["gateway"]["requests"] > 0
    assert report["throughput_ratio"] > 0 and report["added_p99_ms"] is not None
    log = report["gateway"]["log"]
    assert log["answered_not_logged"] == 0 and log["rows"] == log["distinct_request_ids"] >= report["gateway"]["requests"]
    from lrcal.store import Store

    store = Store.open(served_home)
    assert store.traffic_counts()["traffic"] == 0  # the benchmark ran on a copy of the home
    store.close()
