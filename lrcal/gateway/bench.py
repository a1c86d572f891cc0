"""`lrcal bench serve`: what the gateway adds to a request, measured in one run.

1. Routing overhead: featurize + forward + policy for one request with one image (a built-in
   set's document page), on one thread, ``reps`` times after a warm-up: p50 and p95 of each part.
2. Throughput: ``clients`` concurrent asyncio clients for ``duration_s`` against the simulated
   zoo, first calling the endpoint directly (the model the router picks for that request), then
   through the gateway (``lrcal/auto``, a separate process): requests/s, p50 and p99 latency of
   both, their ratio and the added p50 / p99. The gateway's traffic log is then checked: one
   row per answered request, none lost, none doubled.

The home is copied first (its database and router artifacts): the benchmark's traffic never
lands in the home's own log.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import shutil
import socket
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from lrcal.errors import LrcalError


def _copy_home(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src / "lrcal.db") as source, sqlite3.connect(dst / "lrcal.db") as target:
        source.backup(target)
    if (src / "routers").is_dir():
        shutil.copytree(src / "routers", dst / "routers")
    return dst


def _bench_example():
    from lrcal.calsets import builtin_set_names, load_set, resolve_set

    for name in builtin_set_names():
        for example in load_set(resolve_set(name)).examples:
            if example.task_group == "document" and example.image_path is not None:
                return example
    raise LrcalError("no built-in document example with an image to benchmark with")


def _messages(example) -> list[dict]:
    data = base64.b64encode(Path(example.image_path).read_bytes()).decode("ascii")
    return [{"role": "user", "content": [{"type": "text", "text": example.question},
                                          {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}]}]  # fmt: skip


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    return {f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)}


def routing_overhead(home: Path, messages: list[dict], reps: int) -> dict:
    """p50/p95 (ms) of featurize, forward, policy and the whole decision for one request."""
    import torch

    from lrcal.gateway.request import parse_chat
    from lrcal.gateway.routing import featurize, rank, table_of_home
    from lrcal.router.policy import policy_choice

    import json

    torch.set_num_threads(1)
    table = table_of_home(home)
    call = parse_chat(json.dumps({"model": "lrcal/auto", "messages": messages}).encode())
    pool = np.ones((1, len(table.routed)), dtype=bool)
    parts: dict[str, list[float]] = {"featurize": [], "forward": [], "policy": [], "total": []}
    for i in range(reps + 20):
        t0 = time.perf_counter()
        X = featurize(table, call, None)
        t1 = time.perf_counter()
        pred = table.scorer.predict(X)
        t2 = time.perf_counter()
        policy_choice(pred["score"], pool, table.policy, sigma=pred["sigma"], expected_cost=table.expected_cost,
                      expected_latency=table.expected_latency, pool=pool)  # fmt: skip
        t3 = time.perf_counter()
        ranking = rank(table, call)
        if i >= 20:  # warm-up left out
            for key, ms in zip(parts, ((t1 - t0), (t2 - t1), (t3 - t2), ranking.routing_ms / 1000.0)):
                parts[key].append(ms * 1000.0)
    return {"reps": reps, "threads": torch.get_num_threads(), "models": len(table.routed),
            "chosen": ranking.first[0], "router_version": table.version,
            **{key: _percentiles(values) for key, values in parts.items()}}  # fmt: skip


async def _load(url: str, body: dict, clients: int, duration_s: float, headers: dict | None = None) -> dict:
    """``clients`` concurrent clients posting ``body`` until ``duration_s`` is over."""
    import httpx

    latencies: list[float] = []
    request_ids: list[str] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as http:
        deadline = time.perf_counter() + duration_s

        async def client() -> None:
            nonlocal failures
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await http.post(url, json=body, headers=headers)
                except httpx.HTTPError:
                    failures += 1
                    continue
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000.0)
                    if "x-request-id" in response.headers:
                        request_ids.append(response.headers["x-request-id"])
                else:
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "failures": failures, "seconds": elapsed,
            "requests_per_s": len(latencies) / elapsed, "latency_ms": _percentiles(latencies),
            "request_ids": request_ids}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_gateway(config_json: str) -> None:
    from lrcal.gateway.config import GatewayConfig
    from lrcal.gateway.runner import serve_forever

    serve_forever(GatewayConfig.from_json(config_json))


def _wait_healthy(url: str, process, timeout_s: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise LrcalError("the benchmark's gateway exited before it served (see the log above)")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise LrcalError(f"the benchmark's gateway did not answer within {timeout_s:g} s")


def bench_serve(home: Path, *, clients: int = 64, duration_s: float = 10.0, reps: int = 200,
                sim_latency_ms: float = 50.0, workers: int = 1,
                progress: Callable[[str], None] = lambda _m: None) -> dict:  # fmt: skip
    """Routing overhead and gateway throughput vs direct calls, in one run (see the module doc)."""
    from lrcal.calsets import builtin_set_names, load_set, resolve_set
    from lrcal.gateway.config import GatewayConfig
    from lrcal.sim import SimServer
    from lrcal.store import Store

    if not (Path(home) / "lrcal.db").is_file():
        raise LrcalError(f"{home} holds no lrcal.db: benchmark a home with a trained router (`lrcal demo`)")
    example = _bench_example()
    messages = _messages(example)
    with tempfile.TemporaryDirectory(prefix="lrcal-bench-serve-") as tmp:
        copy = _copy_home(Path(home), Path(tmp) / "home")
        progress(f"routing overhead: {reps} decisions for one request with one image, one thread")
        overhead = routing_overhead(copy, messages, reps)
        chosen = overhead["chosen"]
        sets = [load_set(resolve_set(name)) for name in builtin_set_names()]
        with SimServer(sets=sets, fixed_latency_ms=sim_latency_ms) as sim:
            progress(f"direct: {clients} clients for {duration_s:g} s → {chosen} at the simulator")
            direct = asyncio.run(_load(sim.url + "/chat/completions", {"model": chosen, "messages": messages},
                                       clients, duration_s))  # fmt: skip
            port = _free_port()
            config = GatewayConfig(home=str(copy), port=port, workers=workers, endpoint_url=sim.url,
                                   reload_s=5.0)  # fmt: skip
            process = multiprocessing.get_context("spawn").Process(target=_run_gateway, args=(config.to_json(),),
                                                                   daemon=True)  # fmt: skip
            process.start()
            try:
                _wait_healthy(f"http://127.0.0.1:{port}/health", process)
                progress(f"gateway: {clients} clients for {duration_s:g} s → lrcal/auto through lrcal serve")
                gateway = asyncio.run(_load(f"http://127.0.0.1:{port}/v1/chat/completions",
                                            {"model": "lrcal/auto", "messages": messages}, clients, duration_s))  # fmt: skip
            finally:
                process.terminate()  # SIGTERM: uvicorn drains and the log writer flushes
                process.join(60)
        store = Store.open(copy)
        try:
            logged = {row["request_id"] for row in store.traffic_requests()}
            counts = store.traffic_counts()
        finally:
            store.close()
    answered = set(gateway.pop("request_ids"))
    direct.pop("request_ids")
    gateway["log"] = {"rows": counts["traffic"], "distinct_request_ids": counts["traffic_ids"],
                      "answered_not_logged": len(answered - logged), "logged_not_answered": len(logged - answered)}  # fmt: skip
    return {
        "home": str(home), "clients": clients, "duration_s": duration_s, "sim_latency_ms": sim_latency_ms,
        "workers": workers, "routing_overhead_ms": overhead, "direct": direct, "gateway": gateway,
        "throughput_ratio": gateway["requests_per_s"] / direct["requests_per_s"] if direct["requests_per_s"] else None,
        "added_p50_ms": _diff(gateway, direct, "p50"), "added_p99_ms": _diff(gateway, direct, "p99"),
    }  # fmt: skip


def _diff(a: dict, b: dict, key: str) -> float | None:
    x, y = a["latency_ms"][key], b["latency_ms"][key]
    return None if x is None or y is None else x - y
