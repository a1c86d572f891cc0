"""`lrcal traffic` as a review found it: a model failing behind fallbacks looked healthy, a client
leaving mid-stream counted as a model error and its cut-short time entered the latency
percentiles, unknown cost showed as $0, `--shadow` compared the gateway's whole request time
with the candidate's bare model call; and `policy show --history` on a fresh home printed nothing.

The traffic is written as the gateway writes it: rows of `Attempt.row` and request rows with the
keys `Exchange.finish` gives, put on the gateway's own `TrafficLog` writer into a real home.
"""

from __future__ import annotations

import csv
import io
import json
import time

import httpx
import pytest

from lrcal.gateway.traffic_log import Entry, TrafficLog
from lrcal.gateway.upstream import Attempt
from tests.fixtures.gateway import example_of, image_messages, logged

LEFT = "client_disconnected"


def _attempt(model: str, latency_ms: float, *, error: str | None = None, cost: float | None = None,
             reason: str = "first choice") -> Attempt:  # fmt: skip
    attempt = Attempt(model=model, reason=reason, utility=0.5)
    if error is not None:
        attempt.fail(error, f"{error} (test)", fallback=error != LEFT)
    attempt.latency_ms, attempt.cost_usd = latency_ms, cost
    return attempt


def _request(request_id: str, attempts: list[Attempt], *, task: str | None = None, latency_ms: float | None = None,
             status: int | None = None, error: str | None = None, served: str | None = None,
             created_at: str | None = None) -> Entry:  # fmt: skip
    """One request's rows as `Exchange.finish` queues them: the served model is the last attempt
    that answered (or ``served``, a stream the client left), the cost the attempts' known costs."""
    last = attempts[-1]
    served = served or (last.model if last.ok else None)
    costs = [a.cost_usd for a in attempts if a.cost_usd is not None]
    row = {
        "request_id": request_id, "worker_pid": 1, "requested_model": "lrcal/auto", "routed": 1,
        "router_version": "v-test", "features_hash": "f" * 64, "task": task, "lambda_cost": 0.0,
        "lambda_latency": 0.0, "first_choice": attempts[0].model, "utility": 0.5, "runner_up": None,
        "runner_up_utility": None, "served_model": served, "stream": 0, "n_images": 1,
        "status_code": status or (200 if served else 503), "error_kind": error or (None if served else last.error_kind),
        "error_message": None, "attempts": len(attempts), "routing_ms": 2.0,
        "latency_ms": latency_ms if latency_ms is not None else 2.0 + sum(a.latency_ms for a in attempts),
        "ttft_ms": None, "input_tokens": None, "output_tokens": None,
        "cost_usd": sum(costs) if costs else None,
    }  # fmt: skip
    if created_at:
        row["created_at"] = created_at
    return Entry(request=row, attempts=[a.row(request_id, i + 1) for i, a in enumerate(attempts)])


def _log(home, entries: list[Entry]) -> None:
    writer = TrafficLog(home).start()
    for entry in entries:
        writer.put(entry)
    writer.close()
    assert writer.written == sum(1 for e in entries if e.request is not None) and writer.dropped == 0


WIDE = {"COLUMNS": "250"}  # a table with every column


def _rows(cli, *args) -> dict[tuple[str, str], dict]:
    result = cli("traffic", "--json", *args)
    assert result.exit_code == 0, result.output
    return {(r["model"], r["task"]): r for r in json.loads(result.stdout)}


def test_a_model_failing_behind_fallbacks_shows_its_failed_attempts_on_its_own_row(cli, home):
    """Before: `flaky` failed every first attempt, `steady` answered, and `lrcal traffic` showed
    `flaky` nowhere (or with errors 0): only the requests' final error was read."""
    entries = [
        _request(f"fb{i}", [_attempt("flaky", 3000.0, error="timeout"),
                            _attempt("steady", 200.0, reason="fallback after flaky failed (timeout)")], task="chart")
        for i in range(4)
    ]  # fmt: skip
    entries += [
        _request("ok", [_attempt("flaky", 150.0)], task="chart"),
        _request("ocr", [_attempt("flaky", 10.0, error="http_5xx"), _attempt("steady", 90.0)], task="ocr"),
        _request("none", [_attempt("flaky", 5.0, error="connection"), _attempt("steady", 6.0, error="http_5xx")],
                 task="chart"),
        _request("old", [_attempt("flaky", 5.0, error="connection"), _attempt("steady", 80.0)], task="chart",
                 created_at="2020-01-01T00:00:00.000+00:00"),
    ]  # fmt: skip
    _log(home, entries)
    rows = _rows(cli)
    flaky, steady, none = rows[("flaky", "chart")], rows[("steady", "chart")], rows[("(none served)", "chart")]
    # served requests as before
    assert (flaky["requests"], steady["requests"], none["requests"]) == (1, 5, 1)
    assert (steady["errors"], steady["fallbacks"], none["errors"]) == (0, 5, 1)
    # every attempt at a model counted on that model's row, the failed ones with their kinds
    assert (flaky["attempts"], flaky["failed_attempts"]) == (7, 6)
    assert flaky["failure_kinds"] == {"timeout": 4, "connection": 2}
    assert (steady["attempts"], steady["failed_attempts"], steady["failure_kinds"]) == (6, 1, {"http_5xx": 1})
    assert (none["attempts"], none["failed_attempts"]) == (0, 0)  # its failures are on the models' rows
    # a model that failed in a task and served nothing there still gets a row
    assert rows[("flaky", "ocr")] | {"share": None} == rows[("flaky", "ocr")] | {
        "requests": 0, "attempts": 1, "failed_attempts": 1, "failure_kinds": {"http_5xx": 1}, "share": None}
    # --since counts the attempts of the requests it counts
    since = _rows(cli, "--since", "2021-01-01")
    assert (since[("flaky", "chart")]["failed_attempts"], since[("steady", "chart")]["attempts"]) == (5, 5)
    table = cli("traffic", env=WIDE).stdout
    assert "failed" in table and "timeout 4" in table
    csv_rows = list(csv.DictReader(io.StringIO(cli("traffic", "--csv").stdout)))
    assert {"attempts", "failed_attempts", "failure_kinds"} <= set(csv_rows[0])


def test_a_client_leaving_is_no_model_error_and_its_cut_time_no_latency(cli, home):
    """Before: a stream the client left (status 200, client_disconnected) counted as an error of
    the model that was streaming fine, and its cut-short time pulled down p50/p95."""
    entries = [_request(f"ok{i}", [_attempt("m", 1000.0)], latency_ms=1000.0) for i in range(3)]
    entries += [
        _request("left", [_attempt("m", 4.0, error=LEFT)], latency_ms=5.0, status=200, error=LEFT, served="m"),
        _request("left-early", [_attempt("m", 3.0, error=LEFT)], latency_ms=3.0, status=499, error=LEFT),
        _request("broken", [_attempt("m", 800.0, error="connection")], latency_ms=1000.0, status=200,
                 error="connection", served="m"),  # a stream the model broke: its error
    ]  # fmt: skip
    _log(home, entries)
    rows = _rows(cli)
    m, none = rows[("m", "(none)")], rows[("(none served)", "(none)")]
    assert (m["requests"], m["errors"], none["errors"]) == (5, 1, 0)  # the broken stream only
    assert m["p50_latency_ms"] == m["p95_latency_ms"] == 1000.0
    assert m["client_left"] == 1
    assert (m["failed_attempts"], m["failure_kinds"]) == (1, {"connection": 1})
    assert (none["requests"], none["errors"], none["client_left"], none["failed_attempts"]) == (1, 0, 1, 0)
    assert "client left" in cli("traffic", env=WIDE).stdout


def test_unknown_cost_is_unknown_not_zero_and_a_partly_known_total_says_what_it_lacks(cli, home):
    """Before: a model whose endpoint reports no usage cost $0.0000, and a total over some
    requests with no cost read as the whole spend."""
    entries = [_request(f"u{i}", [_attempt("unpriced", 100.0)]) for i in range(2)]
    entries += [_request("k1", [_attempt("known", 100.0, cost=0.25)]), _request("k2", [_attempt("known", 100.0)])]
    entries += [
        Entry(shadow={"request_id": rid, "model": "cand", "served_model": None, "predicted_mu": 0.5,
                      "served_predicted_mu": 0.5, "latency_ms": 100.0, "ttft_ms": None, "input_tokens": None,
                      "output_tokens": None, "cost_usd": cost, "error_kind": None, "error_message": None, "agrees": 1})
        for rid, cost in (("u0", None), ("u1", None), ("k1", 0.5), ("k2", None))
    ]  # fmt: skip
    _log(home, entries)
    rows = _rows(cli)
    unpriced, known = rows[("unpriced", "(none)")], rows[("known", "(none)")]
    assert (unpriced["cost_usd"], unpriced["mean_cost_usd"], known["cost_usd"]) == (None, None, 0.25)
    assert (unpriced["cost_unknown"], known["cost_unknown"]) == (2, 1)
    table = cli("traffic", env=WIDE).stdout
    assert "0.2500 (1 unknown)" in table and "0.0000" not in table
    assert next(line for line in table.splitlines() if "unpriced" in line).count("—") >= 1
    shadow = json.loads(cli("traffic", "--shadow", "--json").stdout)[0]
    assert (shadow["shadow_cost_usd"], shadow["served_cost_usd"]) == (0.5, 0.25)
    assert (shadow["shadow_cost_unknown"], shadow["served_cost_unknown"]) == (3, 3)
    assert "(3 unknown)" in cli("traffic", "--shadow", env=WIDE).stdout


def test_shadow_compares_the_served_models_own_call_with_the_candidates_call(cli, home):
    """Before: "served" was the gateway's whole request time (routing, and a failed first
    attempt's 3 s timeout) against the candidate's bare model call."""
    entries = [
        _request("r1", [_attempt("flaky", 3000.0, error="timeout"), _attempt("steady", 200.0)], latency_ms=3300.0),
        _request("r2", [_attempt("steady", 400.0)], latency_ms=420.0),
        _request("r3", [_attempt("steady", 4.0, error=LEFT)], latency_ms=6.0, status=200, error=LEFT, served="steady"),
    ]  # fmt: skip
    entries += [
        Entry(shadow={"request_id": rid, "model": "cand", "served_model": "steady", "predicted_mu": 0.5,
                      "served_predicted_mu": 0.5, "latency_ms": latency, "ttft_ms": None, "input_tokens": 1,
                      "output_tokens": 1, "cost_usd": 0.0, "error_kind": None, "error_message": None, "agrees": 1})
        for rid, latency in (("r1", 250.0), ("r2", 350.0), ("r3", 300.0))
    ]  # fmt: skip
    _log(home, entries)
    row = json.loads(cli("traffic", "--shadow", "--json").stdout)[0]
    assert row["served_p50_latency_ms"] == pytest.approx(300.0)  # 200 and 400; a client's cut-short 4 ms left out
    assert row["served_p95_latency_ms"] == pytest.approx(390.0)
    assert row["p50_latency_ms"] == pytest.approx(300.0)


@pytest.mark.usefixtures("one_torch_thread")
def test_through_the_gateway_a_model_down_behind_its_fallback_and_a_client_leaving_are_told_apart(
        gateway, served_home, served_cli, builtin_sets):  # fmt: skip
    """The real gateway over the simulated zoo: the router's choice refuses connections (every
    request falls back to the runner-up), then a client leaves a stream mid-answer."""
    from tests.test_gateway_faults import HangingStream, closed_port_url, first_choice

    messages = image_messages(example_of(builtin_sets, "chart"))
    gw = gateway(cooldown_failures=100)
    chosen, runner_up = first_choice(gw, messages)
    assert served_cli("models", "set", chosen, "--base-url", closed_port_url()).exit_code == 0
    time.sleep(0.5)  # the gateway reloads every 0.1 s
    for _ in range(3):
        response = httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto", "messages": messages}, timeout=30)
        assert response.status_code == 200 and response.json()["model"] == runner_up
    upstream = HangingStream()
    try:
        assert served_cli("models", "set", "sim-lite-s", "--base-url", upstream.url).exit_code == 0
        time.sleep(0.5)
        body = {"model": "sim-lite-s", "stream": True, "messages": [{"role": "user", "content": "Tell me a story."}]}
        with httpx.Client(timeout=30) as http, http.stream("POST", gw.url + "/chat/completions", json=body) as response:
            assert response.status_code == 200 and '"model":"sim-lite-s"' in next(response.iter_lines())
    finally:
        upstream.stop()
    assert logged(served_home, 5)[-1]["error_kind"] == LEFT
    rows = json.loads(served_cli("traffic", "--json").stdout)
    mine = next(r for r in rows if r["model"] == chosen)
    assert (mine["failed_attempts"], mine["failure_kinds"]) == (3, {"connection": 3})
    assert next(r for r in rows if r["model"] == runner_up)["fallbacks"] == 3
    assert sum(r["errors"] for r in rows) == 0 and sum(r["client_left"] for r in rows) == 1


def test_policy_history_on_a_home_where_none_was_set_says_so(cli):
    """Before: `policy show --history` printed nothing at all."""
    shown = cli("policy", "show", "--history")
    assert shown.exit_code == 0 and "No routing policy was ever set" in shown.stdout
    assert json.loads(cli("policy", "show", "--history", "--json").stdout) == []
