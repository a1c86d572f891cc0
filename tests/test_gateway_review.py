"""`lrcal serve` against what a reviewer reproduced on a live gateway: a body nested too deeply
to re-encode, a shadow candidate promoted or removed under a running gateway, a key variable
with a trailing newline, NaN in an answer, redirects and other statuses that are not answers,
image requests shadowed to a text-only candidate, `/health` behind the key, and a streaming
client that leaves before the first event. A real uvicorn gateway on 127.0.0.1, the simulated
zoo and a scripted OpenAI-style endpoint beside it."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from tests.fixtures.gateway import (ScriptedEndpoint, example_of, image_messages, logged, scripted_endpoint_for,
                                    wait_for)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL = "sim-lite-s"
KEY_ENV, KEY = "LRCAL_TEST_REVIEW_KEY", "sk-REVIEWSECRET-0123456789abcdef"
HELLO = [{"role": "user", "content": "hello"}]


def _completion(content: str = "fine", **extra) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop",
                         **extra}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}}  # fmt: skip


def _answer(mode: str, authorization: str) -> tuple[int, dict, bytes]:
    """What the scripted endpoint answers in ``mode``."""
    json_type = {"content-type": "application/json"}
    key = authorization.removeprefix("Bearer ")
    if mode == "ok":
        return 200, json_type, json.dumps(_completion()).encode()
    if mode in ("echo-key-401", "echo-key-400"):  # as some providers do: "Incorrect API key provided: sk-…"
        return int(mode[-3:]), json_type, json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}}).encode()
    if mode == "echo-key-escaped":  # every letter of the key as a JSON \uXXXX escape: only decoding shows it,
        # and across the 200 characters a message is cut to (the cut piece escaped the later scrub)
        escaped = "".join(f"\\u{ord(c):04x}" if c.isalpha() else c for c in key)
        return 401, json_type, ('{"error": {"message": "' + "x" * 150 + ' Incorrect API key provided: ' + escaped
                                + '"}}').encode()
    if mode == "minus-infinity":  # Python's json writes it; it is not JSON
        return 200, json_type, json.dumps(_completion(logprobs={"content": [{"token": "x", "logprob": float("-inf")}]})).encode()
    if mode == "nan-stream":
        chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"},
                                                                            "logprobs": {"content": [{"logprob": float("nan")}]}}]}  # fmt: skip
        return 200, {"content-type": "text/event-stream"}, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    if mode == "redirect":
        return 302, {"location": "http://127.0.0.1:9/elsewhere", **json_type}, b'{"moved": true}'
    if mode == "created":
        return 201, json_type, b'{"id": "job-1", "status": "queued"}'
    raise AssertionError(mode)


@pytest.fixture
def endpoint(served_cli, monkeypatch):
    yield from scripted_endpoint_for(served_cli, monkeypatch, _answer, MODEL, KEY_ENV, KEY)


def _post(gw, body: bytes | dict, headers: dict | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gw.url + "/chat/completions", content=content, timeout=30,
                      headers={"content-type": "application/json", **(headers or {})})  # fmt: skip


def _health(gw, headers: dict | None = None) -> dict:
    return httpx.get(gw.url.removesuffix("/v1") + "/health", headers=headers or {}, timeout=10).json()


def _store_call(home, fn):
    from lrcal.store import Store

    store = Store.open(home)
    try:
        return fn(store)
    finally:
        store.close()


def _route(response: httpx.Response) -> dict:
    return dict(part.split("=", 1) for part in response.headers["x-lrcal-route"].split("; "))


def _db_dump(home) -> str:
    import sqlite3

    conn = sqlite3.connect(home / "lrcal.db")
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


# ---- 1: a body too deeply nested to be re-encoded ---------------------------------------------------------


def test_a_body_nested_too_deeply_is_a_400_and_cools_no_model(gateway, served_home):
    """Bodies nested ~930-970 levels parsed, then failed json.dumps inside the attempt (where the
    stack is deeper): a `connection` failure of every model tried, so a few 4 KB requests cooled
    every model down for everyone. Every depth of that window, streamed or not, is a 400 now."""
    gw = gateway(cooldown_failures=1)
    not_refused = []
    for depth in range(920, 1000, 2):
        for stream in (b"false", b"true"):
            raw = b'{"model":"%s","stream":%s,"messages":[{"role":"user","content":"hi"}],"metadata":{"x":%s}}' % (
                MODEL.encode(), stream, b"[" * depth + b"]" * depth)
            response = _post(gw, raw)
            if response.status_code != 400 or "nested deeper than" not in response.text:
                not_refused.append((depth, response.status_code, response.text[:120]))
    assert not not_refused and not _health(gw)["cooling"], not_refused
    for model in ("lrcal/auto", MODEL):
        fine = _post(gw, {"model": model, "messages": HELLO, "metadata": {"x": [[["shallow"]]]}})
        assert fine.status_code == 200 and _route(fine)["attempts"] == "1"


def test_nesting_up_to_the_limit_is_accepted():
    from lrcal.gateway.errors import ApiError
    from lrcal.gateway.request import MAX_NESTING, parse_chat

    def body(depth: int) -> bytes:  # the body object is level 1
        inner = depth - 1
        return b'{"model":"m","messages":[{"role":"user","content":"hi"}],"x":%s}' % (b"[" * inner + b"]" * inner)

    call = parse_chat(body(MAX_NESTING))
    assert json.loads(call.upstream_json("api-m", stream=False))["model"] == "api-m"
    with pytest.raises(ApiError, match="nested"):
        parse_chat(body(MAX_NESTING + 1))


# ---- 2: the shadow candidate promoted or removed under a running gateway ------------------------------------


@pytest.mark.parametrize("change", ["enable --force", "models remove"])
def test_promoting_or_removing_the_shadow_candidate_keeps_hot_reload_working(gateway, served_home, served_cli,
                                                                             change, caplog):  # fmt: skip
    """The shadow check raised at every reload: the gateway kept its old snapshot for good (a
    disabled model kept serving, the promoted one answered 404)."""
    candidate, other = "sim-docreader-m", "sim-chartqa-m"
    _store_call(served_home, lambda s: s.set_status(candidate, "validated", reason="a candidate to shadow (test)"))
    gw = gateway(shadow=candidate, shadow_rate=1.0)
    assert _health(gw)["shadow"] == candidate
    caplog.set_level(logging.WARNING, logger="lrcal.gateway")
    if change == "enable --force":
        assert served_cli("enable", candidate, "--force", "--reason", "test").exit_code == 0
    else:
        assert served_cli("models", "remove", candidate, "--yes").exit_code == 0
    assert served_cli("disable", other, "--yes", "--reason", "test").exit_code == 0
    wait_for(lambda: other not in _health(gw)["served"], timeout_s=5)
    health = _health(gw)
    assert health["shadow"] is None and health["last_reload_error"] is None
    assert (candidate in health["served"]) == (change == "enable --force")
    assert _post(gw, {"model": other, "messages": HELLO}).status_code == 404
    if change == "enable --force":
        assert _post(gw, {"model": candidate, "messages": HELLO}).status_code == 200
    # more reloads (a policy change) do not repeat the warning
    assert served_cli("policy", "set", "--lambda-cost", "0.5").exit_code == 0
    wait_for(lambda: _health(gw)["policy"]["lambda_cost"] == 0.5, timeout_s=5)
    time.sleep(0.3)
    warnings = [r.getMessage() for r in caplog.records if "shadow" in r.getMessage()]
    assert len(warnings) == 1 and candidate in warnings[0], warnings


def test_a_failed_reload_is_shown_in_health_and_the_old_snapshot_keeps_serving(gateway, served_home):
    gw = gateway()
    version = _health(gw)["router_version"]
    _store_call(served_home, lambda s: s.register_router_version("r9-missing", path=str(served_home / "nowhere"),
                                                                 models=[], data_hash="x", config={}, metrics={}))  # fmt: skip
    error, _ = wait_for(lambda: _health(gw)["last_reload_error"], timeout_s=5)
    assert error["message"] and error["at"]
    assert _health(gw)["router_version"] == version
    assert _post(gw, {"model": "lrcal/auto", "messages": HELLO}).status_code == 200


# ---- 3: a key variable with a trailing newline ------------------------------------------------------------


@pytest.mark.parametrize("mode", ["echo-key-401", "echo-key-400", "echo-key-escaped"])
def test_a_key_with_a_trailing_newline_echoed_in_an_error_is_redacted(gateway, served_home, endpoint, monkeypatch,
                                                                      mode):  # fmt: skip
    """The key was sent stripped but redacted as stored (with its newline), so the echo passed."""
    monkeypatch.setenv(KEY_ENV, KEY + "\n")
    gw = gateway()
    endpoint.mode = mode
    response = _post(gw, {"model": MODEL, "messages": HELLO})
    assert response.status_code in (400, 503) and "Incorrect API" in response.text
    logged(served_home, 1)
    time.sleep(0.2)
    dump = _db_dump(served_home)
    for secret in (KEY, KEY[:12]):
        assert secret not in response.text and secret not in dump


# ---- 4: NaN and infinities in an answer ----------------------------------------------------------------------


def test_an_answer_holding_nan_or_infinity_is_malformed_not_a_500_logged_as_success(gateway, served_home, endpoint):
    gw = gateway(cooldown_failures=10)
    endpoint.mode = "minus-infinity"
    response = _post(gw, {"model": MODEL, "messages": HELLO})
    assert response.status_code == 503 and "malformed_response" in response.text
    endpoint.mode = "nan-stream"
    with httpx.stream("POST", gw.url + "/chat/completions", json={"model": MODEL, "messages": HELLO, "stream": True},
                      timeout=30) as streamed:  # fmt: skip
        text = "".join(streamed.iter_text())
    assert streamed.status_code == 503 and "NaN" not in text
    rows = logged(served_home, 2)
    assert [(r["status_code"], r["error_kind"]) for r in rows] == [(503, "malformed_response"), (503, "stream_error")]


# ---- 5: statuses that are neither an answer nor the client's fault -------------------------------------------


def test_a_redirect_or_201_from_an_endpoint_is_its_fault_with_fallback(gateway, served_home, endpoint, served_cli):
    gw = gateway(cooldown_failures=10)
    for mode in ("redirect", "created"):
        endpoint.mode = mode
        response = _post(gw, {"model": MODEL, "messages": HELLO})
        assert response.status_code == 502 and response.json()["error"]["code"] == "all_models_failed", response.text
    # routed: the runner-up answers
    first = _post(gw, {"model": "lrcal/auto", "messages": HELLO})
    chosen = _route(first)["model"]
    assert served_cli("models", "set", chosen, "--base-url", endpoint.url).exit_code == 0
    endpoint.mode = "redirect"
    wait_for(lambda: _post(gw, {"model": "lrcal/auto", "messages": HELLO}).headers["x-lrcal-route"].count("first_choice"),
             timeout_s=5)  # fmt: skip
    fallback = _post(gw, {"model": "lrcal/auto", "messages": HELLO})
    assert fallback.status_code == 200 and _route(fallback)["first_choice"] == chosen
    attempts = _store_call(served_home, lambda s: s.traffic_attempts(fallback.headers["x-request-id"]))
    if not attempts:
        wait_for(lambda: _store_call(served_home, lambda s: s.traffic_attempts(fallback.headers["x-request-id"])))
        attempts = _store_call(served_home, lambda s: s.traffic_attempts(fallback.headers["x-request-id"]))
    assert attempts[0]["status_code"] == 302 and attempts[0]["error_kind"] == "malformed_response"


# ---- 6: a text-only shadow candidate -----------------------------------------------------------------------------


def test_a_text_only_shadow_candidate_gets_no_image_requests(gateway, served_home, served_cli, builtin_sets,
                                                             zoo_server):  # fmt: skip
    candidate = "sim-docreader-m"
    _store_call(served_home, lambda s: s.set_status(candidate, "validated", reason="a candidate to shadow (test)"))
    assert served_cli("models", "set", candidate, "--no-images").exit_code == 0
    gw = gateway(shadow=candidate, shadow_rate=1.0)
    with_image = _post(gw, {"model": "lrcal/auto", "messages": image_messages(example_of(builtin_sets, "document"))})
    text_only = _post(gw, {"model": "lrcal/auto", "messages": HELLO})
    assert with_image.status_code == 200 and text_only.status_code == 200
    shadows, _ = wait_for(lambda: _store_call(served_home, lambda s: s.traffic_shadow()))
    time.sleep(0.5)  # a shadow call of the image request would have landed by now
    shadows = _store_call(served_home, lambda s: s.traffic_shadow())
    assert [s["request_id"] for s in shadows] == [text_only.headers["x-request-id"]]
    assert _health(gw)["shadow_skipped"] == {"needs_images": 1}


# ---- 7: /health behind the key -------------------------------------------------------------------------------------


def test_health_details_need_the_key_when_one_is_set(gateway, served_home, monkeypatch):
    monkeypatch.setenv("LRCAL_TEST_GATEWAY_KEY", "gateway-key-0123456789")
    gw = gateway(api_key_env="LRCAL_TEST_GATEWAY_KEY")
    assert _health(gw) == {"status": "ok"}
    wrong = httpx.get(gw.url.removesuffix("/v1") + "/health", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    details = _health(gw, {"Authorization": "Bearer gateway-key-0123456789"})
    assert details["status"] == "ok" and details["routed"] and "pid" in details


def test_health_without_a_key_configured_keeps_its_details(gateway, served_home):
    details = _health(gateway())
    assert details["status"] == "ok" and details["routed"] and "policy" in details and "pid" in details


# ---- 8: a streaming client that leaves before the first event -------------------------------------------------------


def test_a_streaming_client_leaving_before_the_first_event_stops_the_attempts(gateway, served_home, served_cli,
                                                                              zoo_server):  # fmt: skip
    """The gateway waited for the silent model's timeout, counted it as a failure and then
    sent the request to the runner-up for nobody (spend the log did not show)."""
    gw = gateway(cooldown_failures=1)
    chosen = _route(_post(gw, {"model": "lrcal/auto", "messages": HELLO}))["model"]
    hanging = ScriptedEndpoint(_answer)
    hanging.mode = "hang"
    try:
        assert served_cli("models", "set", chosen, "--base-url", hanging.url, "--timeout", "2").exit_code == 0
        time.sleep(0.4)  # reloaded
        before = dict(zoo_server.request_counts)
        body = {"model": "lrcal/auto", "stream": True, "messages": HELLO}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(gw.url + "/chat/completions", json=body, timeout=httpx.Timeout(30, read=0.5))
        left = time.monotonic()
        wait_for(lambda: hanging.closed_at is not None, timeout_s=5)
        assert hanging.closed_at - left < 1.5  # not the model's 2 s timeout
        time.sleep(2.0)  # past the timeout: no fallback follows
        assert dict(zoo_server.request_counts) == before
        assert not _health(gw)["cooling"]
        row = logged(served_home, 2)[-1]
        assert row["error_kind"] == "client_disconnected" and row["status_code"] == 499 and row["attempts"] == 1
    finally:
        hanging.stop()
