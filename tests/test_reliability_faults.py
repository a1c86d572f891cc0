"""Endpoint faults during `lrcal calibrate`: every fault ends as a recorded outcome with the
right error kind, in bounded time, and the run completes (real sockets on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import sqlite3
import time

import pytest

from tests.fixtures.faults import FAULT_OUTCOMES

MODEL = "sim-docreader-m"

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

    # 14 faulted examples and 14 clean ones: 12 errors in 28 requests (43 %) still calibrate.
    examples = load_set(resolve_set("builtin-v1")).examples[: 2 * len(FAULT_OUTCOMES)]
    permanent = {ex.id: kind for ex, kind in zip(examples, FAULT_OUTCOMES)}
    server = sim_server(sets=builtin_sets, latency_scale=0.01, permanent=permanent, stall_s=5.0, retry_after_s=0.05)
    assert cli("add-model", MODEL, "--base-url", server.url, "--timeout", "0.6", "--max-retries", "2",
               "--max-concurrency", "16", "--no-probe").exit_code == 0  # fmt: skip
    start = time.monotonic()
    result = cli("calibrate", MODEL, "--limit", str(len(examples)), "--no-fit", "--json")
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["completed"] == len(examples)
    rows = _rows(home)
    assert set(rows) == {ex.id for ex in examples}
    for example_id, fault in permanent.items():
        expected_kind, retried = FAULT_OUTCOMES[fault]
        row = rows[example_id]
        assert row["error_kind"] == expected_kind, (fault, row["error_kind"], row["error_message"])
        if retried:
            assert row["attempts"] == 3, (fault, row["attempts"])
        elif expected_kind is not None:
            assert row["attempts"] == 1, (fault, row["attempts"])
        if expected_kind is not None:  # an error has no score: it is not a wrong answer
            assert row["correct"] is None and row["score"] is None
    assert rows[next(k for k, f in permanent.items() if f == "missing_usage")]["tokens_estimated"] == 1
    # Errors are excluded from accuracy and reported as an error rate.
    answered = [r for r in rows.values() if r["error_kind"] is None]
    assert report["errors"] == 12 and report["error_rate"] == pytest.approx(12 / len(examples))
    assert report["accuracy"] == pytest.approx(sum(r["correct"] for r in answered) / len(answered))
    assert report["health"]["trusted"] and report["status"] == "calibrated"
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


def _free_port() -> int:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _run_and_locks(home) -> tuple[list[str], int]:
    conn = sqlite3.connect(home / "lrcal.db")
    statuses = [r[0] for r in conn.execute("select status from runs order by id")]
    locks = conn.execute("select count(*) from locks").fetchone()[0]
    conn.close()
    return statuses, locks


def test_connection_refused_trips_the_breaker_and_a_retry_completes(cli, home, builtin_sets):
    """64 refused connections took 17 s of retries before anything stopped; the breaker stops the
    run within a second, with one line naming the cause; once the endpoint is up, --retry-errors
    completes the run."""
    from lrcal.sim import SimServer

    port = _free_port()
    assert cli("add-model", MODEL, "--base-url", f"http://127.0.0.1:{port}/v1", "--no-probe").exit_code == 0
    assert cli("calibrate", MODEL, "--limit", "64", "--no-fit").exit_code == 1  # registers the set (~1 s of images)
    start = time.monotonic()
    result = cli("calibrate", MODEL, "--limit", "64", "--no-fit")
    elapsed = time.monotonic() - start
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "8 requests in a row failed" in line and "cannot connect" in line and "--retry-errors" in line, line
    assert elapsed < 8, f"the breaker took {elapsed:.1f} s"  # 17 s of retries before; ~1 s of it is loading the set
    assert _run_and_locks(home) == (["interrupted"], 0)
    assert json.loads(cli("models", "--json").stdout)[0]["status"] == "registered"
    print(f"\nconnection refused, 64 examples: stopped after {elapsed:.2f} s (pytest -s)")

    server = SimServer(sets=builtin_sets, host="127.0.0.1", port=port, latency_scale=0.01).start()
    try:
        again = cli("calibrate", MODEL, "--limit", "64", "--no-fit", "--retry-errors", "--json")
    finally:
        server.stop()
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["completed"] == 64 and report["errors"] == 0 and report["status"] == "calibrated"
    assert _run_and_locks(home) == (["completed"], 0)


def test_every_request_unauthorized_never_calibrates(cli, home, sim_server, builtin_sets, monkeypatch):
    """HTTP 401 on all 12 requests used to end with 'calibrated', exit 0, and a rerun sent nothing."""
    server = sim_server(sets=builtin_sets, latency_scale=0.01, api_key="sk-the-right-key-0001")
    monkeypatch.setenv("LRCAL_PROBE_KEY", "sk-a-wrong-key-00002")
    assert cli("add-model", MODEL, "--base-url", server.url, "--api-key-env", "LRCAL_PROBE_KEY", "--no-probe",
               "--max-concurrency", "2").exit_code == 0  # fmt: skip
    result = cli("calibrate", MODEL, "--limit", "12", "--no-fit")
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "HTTP 401" in line and "--api-key-env" in line and "sk-a-wrong" not in line, line
    assert json.loads(cli("models", "--json").stdout)[0]["status"] == "registered"
    assert _run_and_locks(home) == (["interrupted"], 0)
    monkeypatch.setenv("LRCAL_PROBE_KEY", "sk-the-right-key-0001")
    before = server.request_counts.get(MODEL, 0)
    fixed = cli("calibrate", MODEL, "--limit", "12", "--no-fit", "--retry-errors", "--json")
    assert fixed.exit_code == 0, fixed.output
    report = json.loads(fixed.stdout)
    assert report["errors"] == 0 and report["completed"] == 12 and report["status"] == "calibrated"
    assert server.request_counts[MODEL] - before == 12  # the failed ones and the never-sent ones


def test_a_run_with_half_its_requests_failing_is_not_calibrated(cli, home, sim_server, builtin_sets):
    from lrcal.calsets import load_set, resolve_set

    examples = load_set(resolve_set("builtin-v1")).examples[:12]
    permanent = {ex.id: "http_500" for ex in examples[:6]}  # transient kinds: the breaker stays closed
    server = sim_server(sets=builtin_sets, latency_scale=0.01, permanent=permanent)
    assert cli("add-model", MODEL, "--base-url", server.url, "--max-retries", "0", "--no-probe").exit_code == 0
    result = cli("calibrate", MODEL, "--limit", "12", "--json")
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "not calibrated by this run: 6 of 12 requests failed (http_5xx 6)" in line and "--retry-errors" in line
    report = json.loads(result.stdout)  # the report is still printed
    assert report["status"] == "registered" and report["token"]["fitted"] is False
    assert report["accuracy"] is not None and report["health"]["error_rate"] == 0.5
    events = json.loads(cli("events", "--json").stdout) if cli("events", "--json").exit_code == 0 else []
    assert any(e["kind"] == "calibration_refused" for e in events)


def test_a_run_of_non_answers_is_not_calibrated(cli, home, sim_server, tiny_set):
    """A simulator that does not know the set answers 'I can't tell…': accuracy 0.000 used to
    end with 'status: calibrated'."""
    server = sim_server(sets=[tiny_set], latency_scale=0.01)
    assert cli("add-model", MODEL, "--base-url", server.url, "--no-probe").exit_code == 0
    result = cli("calibrate", MODEL, "--limit", "24", "--no-fit", "--json")
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "replies had no readable answer" in line and "--fresh" in line, line
    report = json.loads(result.stdout)
    assert report["health"]["non_answer_rate"] >= 0.5 and report["errors"] == 0
    assert json.loads(cli("models", "--json").stdout)[0]["status"] == "registered"


def test_absurd_token_counts_are_refused_per_example(cli, home, stub_endpoint):
    """'completion_tokens': 10**30 gave 'OverflowError: Python int too large to convert to SQLite
    INTEGER' on every rerun. Numbers from an endpoint are untrusted: an absurd count is estimated."""
    from tests.fixtures.stub_endpoint import answer

    lies = [10**30, 1e300, -5, "12", True, None, 2**63, 7]
    stub = stub_endpoint(lambda body, headers: (200, answer("yes", completion_tokens=lies[stub.requests % len(lies)],
                                                                  prompt_tokens=lies[(stub.requests + 3) % len(lies)])))  # fmt: skip
    assert cli("add-model", MODEL, "--base-url", stub.url, "--max-concurrency", "1", "--no-probe").exit_code == 0
    result = cli("calibrate", MODEL, "--limit", "16", "--no-fit", "--json")
    assert "Traceback" not in result.output and result.exit_code in (0, 1), result.output
    rows = list(_rows(home).values())
    assert len(rows) == 16 and all(r["error_kind"] is None for r in rows)
    for row in rows:
        assert 0 <= row["output_tokens"] <= 10_000_000 and 0 <= row["input_tokens"] <= 10_000_000
        assert row["cost_usd"] is None or row["cost_usd"] < 1.0
    assert sum(r["tokens_estimated"] for r in rows) >= 12  # every lie but the honest 7 is estimated
    rerun = cli("calibrate", MODEL, "--limit", "16", "--no-fit", "--json")
    assert "Traceback" not in rerun.output and json.loads(rerun.stdout)["requested"] == 0


@pytest.mark.parametrize("style", ["openai", "ollama"])
def test_both_api_styles_calibrate(cli, home, zoo_server, style):
    base = zoo_server.url if style == "openai" else zoo_server.url.removesuffix("/v1")
    assert cli("add-model", MODEL, "--base-url", base, "--api-style", style, "--no-probe").exit_code == 0
    report = json.loads(cli("calibrate", MODEL, "--limit", "6", "--json").stdout)
    assert report["completed"] == 6 and report["errors"] == 0
    assert all(r["output_tokens"] > 0 and r["latency_ms"] > 0 for r in _rows(home).values())


def test_errors_never_count_as_wrong_answers_in_training_or_onboarding(store):
    """An endpoint error is excluded (NaN, not 0) from the router's training table, from a token
    fit's calibration rows and from accuracy; an outcome log's own error flag keeps its score."""
    from lrcal.services.onboarding import calibration_error_rate, calibration_rows
    from lrcal.services.tables import model_row_counts, outcome_table
    from lrcal.store import ModelEndpoint

    cset = store.insert_imported_set("s", "v1", "-", ["ocr"], [
        {"example_id": f"e{i}", "task_group": "ocr", "question": "q", "answer": "a", "image_sha256": None}
        for i in range(6)])  # fmt: skip
    pks = store.example_pks(cset["id"])
    ids = {}
    for name in ("m1", "m2"):
        ids[name] = store.add_model(name, ModelEndpoint("http://127.0.0.1:9/v1"))["id"]
    run1 = store.create_run(ids["m1"], cset["id"], "calibration")
    run2 = store.create_run(ids["m2"], cset["id"], "calibration")
    # e0: an error as stored now (no score); e1: as an older lrcal stored it (scored 0); e2-e5:
    # answers (a third of the run failed: below the share that refuses the run as a whole)
    outcomes = [{"score": None, "correct": None, "error_kind": "http_4xx"},
                {"score": 0.0, "correct": 0, "error_kind": "timeout"}] + [{"score": 1.0, "correct": 1}] * 4
    for i, fields in enumerate(outcomes):
        store.record_outcome(run1, pks[f"e{i}"], {**fields, "raw_answer": "x", "parsed_answer": "x", "latency_ms": 5.0})
        store.record_outcome(run2, pks[f"e{i}"], {"score": 0.0, "correct": 0, "raw_answer": "x", "parsed_answer": "x"})
    table, _ = outcome_table(store, ["m1", "m2"])
    first = [dict(zip(table.sample_ids, table.scores[:, 0].tolist()))[f"{cset['id']}:e{i}"] for i in range(6)]
    assert first[0] != first[0] and first[1] != first[1] and first[2:] == [1.0] * 4  # NaN (not run), not 0
    assert table.errors is not None and table.errors[:, 0].sum() == 2
    assert model_row_counts(store) == {"m1": 4, "m2": 6}
    rows = calibration_rows(store, store.get_model("m1"))
    assert sorted(store.example(r["example_id"])["example_id"] for r in rows) == ["e2", "e3", "e4", "e5"]
    assert calibration_error_rate(store, store.get_model("m1")) == 2 / 6
    assert store.mean_correct(ids["m1"], ["calibration"]) == 1.0


def test_fresh_asks_every_example_again_and_excludes_retry_errors(cli, home, zoo_server):
    assert cli("add-model", MODEL, "--base-url", zoo_server.url, "--no-probe").exit_code == 0
    first = json.loads(cli("calibrate", MODEL, "--limit", "6", "--no-fit", "--json").stdout)
    again = json.loads(cli("calibrate", MODEL, "--limit", "6", "--no-fit", "--json").stdout)
    fresh = json.loads(cli("calibrate", MODEL, "--limit", "6", "--no-fit", "--fresh", "--json").stdout)
    assert (first["requested"], again["requested"], fresh["requested"]) == (6, 0, 6)
    assert fresh["run_id"] != first["run_id"] and fresh["status"] == "calibrated"
    both = cli("calibrate", MODEL, "--fresh", "--retry-errors")
    assert both.exit_code == 2 and "exclude each other" in _one_error_line(both)


# ---- probes beyond the issue: what else a lying endpoint can send ------------------------------


def _stub_model(cli, stub, *extra: str) -> None:
    assert cli("add-model", MODEL, "--base-url", stub.url, "--no-probe", "--max-retries", "0", *extra).exit_code == 0


def test_lone_surrogates_from_an_endpoint_are_stored_not_a_crash(cli, home, stub_endpoint):
    """'\\ud800' in a JSON answer or error decodes to a lone surrogate, which UTF-8 (and SQLite)
    cannot encode: the run died with UnicodeEncodeError."""
    def respond(body, headers):
        if len(stub.seen) % 2:
            return 200, b'{"choices":[{"index":0,"message":{"content":"The answer is \\ud800 yes"}}]}'
        return 400, b'{"error":{"message":"bad \\udfff input"}}'

    stub = stub_endpoint(respond)
    _stub_model(cli, stub)
    result = cli("calibrate", MODEL, "--limit", "6", "--no-fit", "--json")
    assert "Traceback" not in result.output and result.exit_code == 1  # half errors: not calibrated
    rows = list(_rows(home).values())
    assert len(rows) == 6
    assert {r["raw_answer"] for r in rows if r["error_kind"] is None} == {"The answer is \ufffd yes"}
    assert all("bad \ufffd input" in r["error_message"] for r in rows if r["error_kind"])


def test_an_endless_model_list_is_cut_at_one_mebibyte(cli, home):
    """`add-model`'s probe read GET /models whole: an endless body took 2.5 GB in 5 s."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Endless(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"data": [')
            try:
                for _ in range(2000):  # 240 MB at most, then the test gives up
                    self.wfile.write(b'{"id": "x"},' * 10_000)
            except OSError:
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        result = cli("add-model", MODEL, "--base-url", f"http://127.0.0.1:{httpd.server_address[1]}/v1", "--timeout", "20")
        elapsed = time.monotonic() - start
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.exit_code == 1 and "larger than 1,048,576 bytes" in _one_error_line(result)
    assert elapsed < 10


def test_a_compressed_bomb_is_cut_and_recorded(cli, home, stub_endpoint):
    """256 MiB of answer in a 256 KiB gzip body: decoding stops at the 1 MiB response limit."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"a" * (1 << 20)
    bomb = packer.compress(b'{"choices":[{"index":0,"message":{"content":"') + b"".join(
        packer.compress(chunk) for _ in range(256)) + packer.compress(b'"}}]}') + packer.flush()  # fmt: skip

    def respond(body, headers):
        return 200, bomb

    stub = stub_endpoint(respond, encoding="gzip")
    _stub_model(cli, stub)
    result = cli("calibrate", MODEL, "--limit", "2", "--no-fit", "--json")
    assert "Traceback" not in result.output
    rows = list(_rows(home).values())
    assert [r["error_kind"] for r in rows] == ["malformed_response"] * 2
    assert all("exceeded 1048576 bytes" in r["error_message"] for r in rows)


def test_control_characters_from_an_endpoint_never_reach_the_terminal(cli, home, stub_endpoint):
    """An endpoint's error text is shown in one-line errors: escape sequences would clear the
    screen, retitle the terminal or fake a second line."""
    evil = "\x1b[2J\x1b]0;pwned\x07bad key\r\nError: everything is fine\x9b31m"
    stub = stub_endpoint(lambda body, headers: (401, {"error": {"message": evil}}), models=[MODEL])
    result = cli("add-model", MODEL, "--base-url", stub.url)
    line = _one_error_line(result)
    assert result.exit_code == 1 and "HTTP 401" in line and "bad key" in line
    assert not any(ch in result.stderr for ch in "\x1b\x07\r\x9b"), repr(result.stderr)


def test_an_endpoint_ignoring_max_tokens_cannot_bloat_the_home(cli, home, stub_endpoint):
    from tests.fixtures.stub_endpoint import answer

    stub = stub_endpoint(lambda body, headers: (200, answer("yes " + "x" * 900_000)))
    _stub_model(cli, stub)
    cli("calibrate", MODEL, "--limit", "8", "--no-fit")
    rows = list(_rows(home).values())
    assert len(rows) == 8 and all(len(r["raw_answer"]) < 70_000 for r in rows)
    assert "more characters not stored" in rows[0]["raw_answer"]
    assert (home / "lrcal.db").stat().st_size < 4 << 20
