"""Endpoint faults during `lrcal calibrate`: every fault ends as a recorded outcome with the
right error kind, in bounded time, and the run completes (real sockets on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import sqlite3
import time

import pytest

MODEL = "sim-docreader-m"

# fault injected on every attempt for one example → what the stored outcome must say
EXPECTED = {
    "http_500": ("http_5xx", "retried"),
    "http_502": ("http_5xx", "retried"),
    "http_503": ("http_5xx", "retried"),
    "http_429": ("http_4xx", "retried"),
    "http_400": ("http_4xx", "once"),
    "http_401": ("http_4xx", "once"),
    "http_404": ("http_4xx", "once"),
    "reset": ("connection", "retried"),
    "stall": ("timeout", "retried"),
    "no_done": ("timeout", "retried"),
    "invalid_json": ("malformed_response", "retried"),
    "huge_body": ("malformed_response", "once"),
    "non_utf8": (None, "once"),  # decoded with replacement characters: a (wrong) answer, not an error
    "missing_usage": (None, "once"),  # tokens estimated and marked so
}


def _rows(home):
    conn = sqlite3.connect(home / "lrcal.db")
    conn.row_factory = sqlite3.Row
    rows = [
        dict(r)
        for r in conn.execute(
            "select o.*, e.example_id as ex from outcomes o join examples e on e.id = o.example_id"
        )
    ]
    conn.close()
    return {r["ex"]: r for r in rows}


def test_every_fault_kind_is_recorded_and_the_run_completes(cli, home, sim_server, builtin_sets):
    from lrcal.calsets import load_set, resolve_set

    examples = load_set(resolve_set("builtin-v1")).examples[: len(EXPECTED) + 4]
    permanent = {ex.id: kind for ex, kind in zip(examples, EXPECTED)}
    server = sim_server(sets=builtin_sets, latency_scale=0.01, permanent=permanent, stall_s=5.0, retry_after_s=0.05)
    assert cli("add-model", MODEL, "--base-url", server.url, "--timeout", "0.6", "--max-retries", "2",
               "--max-concurrency", "16", "--no-probe").exit_code == 0  # fmt: skip
    start = time.monotonic()
    result = cli("calibrate", MODEL, "--limit", str(len(examples)), "--json")
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["completed"] == len(examples)
    rows = _rows(home)
    for example_id, fault in permanent.items():
        expected_kind, retry = EXPECTED[fault]
        row = rows[example_id]
        assert row["error_kind"] == expected_kind, (fault, row["error_kind"], row["error_message"])
        if retry == "retried":
            assert row["attempts"] == 3, (fault, row["attempts"])
        elif expected_kind is not None:
            assert row["attempts"] == 1, (fault, row["attempts"])
        if expected_kind is not None:
            assert row["correct"] == 0 and row["score"] == 0
    assert rows[next(k for k, f in permanent.items() if f == "missing_usage")]["tokens_estimated"] == 1
    # Bounded per example: 3 attempts of at most 0.6 s each + backoff (full jitter, ≤ 0.5 s then ≤ 1 s),
    # with 1 s of slack for a busy machine.
    bound_ms = (3 * 0.6 + 0.5 + 1.0 + 1.0) * 1000
    slowest = {fault: rows[example_id]["total_ms"] for example_id, fault in permanent.items()}
    assert all(ms is not None and ms <= bound_ms for ms in slowest.values()), slowest
    print("\nfault matrix (pytest -s): fault -> error kind, attempts, time to the recorded outcome")
    for example_id, fault in permanent.items():
        row = rows[example_id]
        print(f"  {fault:14s} {str(row['error_kind']):19s} attempts={row['attempts']}  {row['total_ms']:7.0f} ms")
    print(f"  run of {len(examples)} examples: {elapsed:.1f} s")
    # Untouched examples are fine.
    clean = [rows[ex.id] for ex in examples if ex.id not in permanent]
    assert clean and all(r["error_kind"] is None for r in clean)
    # Bounded: stalls end at the client timeout, not the server's 5 s stall.
    assert elapsed < 30, f"calibration with faults took {elapsed:.1f}s"


def test_connection_refused_is_recorded_per_example(cli, home):
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert cli("add-model", "ghost", "--base-url", f"http://127.0.0.1:{port}/v1", "--no-probe",
               "--max-retries", "1", "--timeout", "1").exit_code == 0  # fmt: skip
    start = time.monotonic()
    result = cli("calibrate", "ghost", "--limit", "6", "--json")
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["completed"] == 6 and report["errors_by_kind"] == {"connection": 6}
    attempts = {r["attempts"] for r in _rows(home).values()}
    assert attempts == {2}, attempts  # retried once, then recorded
    print(f"\nconnection refused: 6 examples, 2 attempts each, run {elapsed:.1f} s (pytest -s)")
    assert json.loads(cli("models", "--json").stdout)[0]["status"] == "calibrated"


@pytest.mark.parametrize("style", ["openai", "ollama"])
def test_both_api_styles_calibrate(cli, home, zoo_server, style):
    base = zoo_server.url if style == "openai" else zoo_server.url.removesuffix("/v1")
    assert cli("add-model", MODEL, "--base-url", base, "--api-style", style, "--no-probe").exit_code == 0
    report = json.loads(cli("calibrate", MODEL, "--limit", "6", "--json").stdout)
    assert report["completed"] == 6 and report["errors"] == 0
    assert all(r["output_tokens"] > 0 and r["latency_ms"] > 0 for r in _rows(home).values())
