"""`lrcal serve` against hostile input and hostile endpoints (cases found by fuzzing a live
gateway): unpaired surrogate escapes from clients and from models, an endpoint that echoes its
API key, stream events that are not chat completion chunks, data: URLs that are not images.
A real uvicorn gateway on 127.0.0.1 and a scripted OpenAI-style endpoint beside it."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

import httpx
import pytest

from tests.fixtures.gateway import logged, scripted_endpoint_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL = "sim-lite-s"
KEY_ENV, KEY = "LRCAL_TEST_HOSTILE_KEY", "sk-SECRETVALUE-0123456789abcdef"
ORDINARY = "He was the standard bearer of the party. Authorization: Bearer $TOKEN. The glass is empty."


def _answer(mode: str, authorization: str) -> tuple[int, dict, bytes]:
    """What the scripted endpoint answers in ``mode``."""
    status, content_type, body = _scripted(mode, authorization)
    return status, {"content-type": content_type}, body


def _scripted(mode: str, authorization: str) -> tuple[int, str, bytes]:
    def completion(content: str) -> bytes:
        return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode()  # fmt: skip

    def sse(*events: str) -> bytes:
        return "".join(f"data: {e}\n\n" for e in (*events, "[DONE]")).encode()

    chunk = '{"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":[%s]}'
    if mode == "ok":
        return 200, "application/json", completion("fine")
    if mode == "surrogate":  # a legal JSON escape that is not text
        return 200, "application/json", completion("bad \\ud800 char").replace(b"\\\\ud800", b"\\ud800")
    if mode == "surrogate-stream":
        return 200, "text/event-stream", sse(chunk % '{"index":0,"delta":{"content":"bad \\ud800 char"}}')
    if mode == "echo-key-in-error":  # the key past the 200 characters an error message is cut to
        return 500, "application/json", json.dumps({"error": {"message": "x" * 183 + " key="
                                                             + authorization.removeprefix("Bearer ")}}).encode()
    if mode == "echo-key-in-answer":
        return 200, "application/json", completion("your key is " + authorization)
    if mode == "echo-key-in-stream":
        return 200, "text/event-stream", sse(chunk % json.dumps({"index": 0, "delta": {"content": authorization}}))
    if mode == "ordinary-words":
        return 200, "application/json", completion(ORDINARY)
    if mode == "null-delta":  # Azure's content filter sends chunks whose delta is null
        return 200, "text/event-stream", sse(chunk % '{"index":0,"delta":null}',
                                             chunk % '{"index":0,"delta":{"content":"fine"}}')
    if mode == "choices-not-chunks":
        return 200, "text/event-stream", sse('{"id":"x","object":"chat.completion.chunk","choices":"abc"}')
    if mode == "delta-not-object":
        return 200, "text/event-stream", sse(chunk % '{"index":0,"delta":"abc"}')
    if mode == "no-choices-json":
        return 200, "application/json", b'{"id":"x","choices":[]}'
    if mode == "null-message":
        return 200, "application/json", b'{"id":"x","choices":[{"message":null}]}'
    raise AssertionError(mode)


@pytest.fixture
def endpoint(served_cli, monkeypatch):
    yield from scripted_endpoint_for(served_cli, monkeypatch, _answer, MODEL, KEY_ENV, KEY)


def _post(gw, body: bytes | dict, **kwargs) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gw.url + "/chat/completions", content=content, headers={"content-type": "application/json"},
                      timeout=30, **kwargs)


def _stream_text(gw, body: dict) -> tuple[int, str]:
    with httpx.stream("POST", gw.url + "/chat/completions", json={**body, "stream": True}, timeout=30) as response:
        return response.status_code, "".join(response.iter_text())


def test_unpaired_surrogates_from_a_client_are_a_400_and_neither_stall_the_log_nor_cool_models(gateway, served_home,
                                                                                               endpoint):  # fmt: skip
    """A model name "\\ud800" was a 500 whose log row could never be written, so the traffic log
    stopped for good; the same in a question failed every model it was sent to and cooled them."""
    gw = gateway(cooldown_failures=1)
    for raw in (b'{"model":"\\ud800","messages":[{"role":"user","content":"hello"}]}',
                b'{"model":"lrcal/auto","messages":[{"role":"user","content":"\\udc00 hi"}]}'):
        response = _post(gw, raw)
        assert response.status_code == 400 and "unpaired UTF-16 surrogate" in response.json()["error"]["message"]
    fine = _post(gw, {"model": MODEL, "messages": [{"role": "user", "content": "an emoji \U0001F600"}]})
    assert fine.status_code == 200 and fine.json()["choices"][0]["message"]["content"] == "fine"
    rows = logged(served_home, 1)
    assert [(r["served_model"], r["status_code"]) for r in rows] == [(MODEL, 200)]
    health = httpx.get(gw.url.removesuffix("/v1") + "/health").json()
    assert health["cooling"] == {} or not health["cooling"]


def test_the_traffic_log_writes_the_rows_after_one_it_cannot_store_as_is(served_home):
    from lrcal.gateway.traffic_log import Entry, TrafficLog
    from lrcal.store import Store

    log = TrafficLog(served_home).start()
    base = {"requested_model": "m", "routed": 0, "status_code": 200}
    log.put(Entry(request={**base, "request_id": "bad", "error_message": "x \ud800 y", "output_tokens": 2**70}))
    log.put(Entry(request={**base, "request_id": "good"}))
    log.close()
    store = Store.open(served_home)
    rows = {r["request_id"]: r for r in store.traffic_requests()}
    store.close()
    assert set(rows) == {"bad", "good"} and log.written == 2 and log.dropped == 0
    assert rows["bad"]["error_message"] == "x ? y" and rows["bad"]["output_tokens"] is None


def test_an_answer_holding_an_unpaired_surrogate_reaches_the_client_as_text(gateway, served_home, endpoint):
    """It was a 500 for the client while the log recorded a success (and a cut stream)."""
    gw = gateway()
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    endpoint.mode = "surrogate"
    response = _post(gw, body)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "bad \ufffd char"
    endpoint.mode = "surrogate-stream"
    status, text = _stream_text(gw, body)
    assert status == 200 and "bad \ufffd char" in text and text.rstrip().endswith("data: [DONE]")
    rows = logged(served_home, 2)
    assert [(r["status_code"], r["error_kind"]) for r in rows] == [(200, None), (200, None)]


@pytest.mark.parametrize("mode", ["echo-key-in-error", "echo-key-in-answer", "echo-key-in-stream"])
def test_a_key_echoed_by_the_endpoint_reaches_neither_the_client_nor_the_log(gateway, served_home, endpoint, mode):
    gw = gateway()
    endpoint.mode = mode
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    text = _stream_text(gw, body)[1] if mode.endswith("stream") else _post(gw, body).text
    logged(served_home, 1)
    dump = "\n".join(__import__("sqlite3").connect(served_home / "lrcal.db").iterdump())
    for secret in (KEY, KEY[:12]):  # a cut key is a leak too
        assert secret not in text and secret not in dump


@pytest.mark.parametrize("mode", ["choices-not-chunks", "delta-not-object", "no-choices-json", "null-message"])
def test_answers_that_are_not_chat_completions_fail_streaming_or_not(gateway, served_home, endpoint, mode):
    """A stream of malformed events (or a plain JSON answer without a message) was relayed as a
    success; the same body not streamed was a malformed_response."""
    gw = gateway()
    endpoint.mode = mode
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    plain = _post(gw, body)
    status, _text = _stream_text(gw, body)
    assert plain.status_code == 503 and status == 503
    rows = logged(served_home, 2)
    assert all(r["status_code"] == 503 and r["served_model"] is None for r in rows)
    assert {r["error_kind"] for r in rows} <= {"malformed_response", "stream_error"}


def _png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


def test_a_data_url_that_is_not_an_image_is_a_400(gateway, served_home, endpoint):
    from PIL import Image

    gw = gateway()
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buffer, "PNG")
    cases = {"not an image": b"hello, world", "svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
             "a header cut short": buffer.getvalue()[:20], "60000 x 60000": _png_claiming(60000, 60000),
             "2^31 x 2^31": _png_claiming(2**31 - 1, 2**31 - 1)}  # fmt: skip
    for name, data in {**cases, "a real PNG": buffer.getvalue()}.items():
        url = "data:image/png;base64," + base64.b64encode(data).decode()
        messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                                  {"type": "image_url", "image_url": {"url": url}}]}]  # fmt: skip
        response = _post(gw, {"model": "lrcal/auto", "messages": messages})
        if name == "a real PNG":
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 400, (name, response.text)
            assert "image_url" in response.json()["error"]["message"]


def test_a_row_sqlite_refuses_is_dropped_alone_and_a_busy_database_loses_nothing(served_home, monkeypatch):
    """The batch fallback writes entry by entry: a row SQLite cannot bind is dropped alone, while
    a database locked past its busy timeout (a storage failure) keeps every row for a retry."""
    import sqlite3
    import time

    from lrcal.gateway.traffic_log import Entry, TrafficLog
    from lrcal.store import Store

    base = {"requested_model": "m", "routed": 0, "status_code": 200}
    log = TrafficLog(served_home).start()
    log.put(Entry(request={**base, "request_id": "unbindable", "task": {1, 2}}))  # a set: no SQLite type
    log.put(Entry(request={**base, "request_id": "fine"}))
    log.close()
    assert (log.written, log.dropped) == (1, 1)

    opened = Store.open.__func__

    def impatient(cls, home):  # a 0.2 s busy timeout instead of 30 s
        store = opened(cls, home)
        store.db.conn.execute("PRAGMA busy_timeout=200")
        return store

    monkeypatch.setattr(Store, "open", classmethod(impatient))
    blocker = sqlite3.connect(served_home / "lrcal.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    log = TrafficLog(served_home).start()
    for i in range(3):
        log.put(Entry(request={**base, "request_id": f"busy-{i}"}))
    time.sleep(1.0)
    blocker.execute("COMMIT")
    blocker.close()
    log.close()
    assert (log.written, log.dropped) == (3, 0) and log.failures >= 1
    store = opened(Store, served_home)
    ids = {r["request_id"] for r in store.traffic_requests()}
    store.close()
    assert ids == {"fine", "busy-0", "busy-1", "busy-2"}


@pytest.mark.parametrize("key", [KEY, "EMPTY"])
def test_answers_reach_the_client_word_for_word_unless_they_hold_the_key(gateway, served_home, endpoint, key,
                                                                         monkeypatch):  # fmt: skip
    """Only the configured key itself is taken out of a forwarded answer: not "bearer" phrases,
    and not the words a placeholder key ("EMPTY", "ollama") happens to spell."""
    monkeypatch.setenv(KEY_ENV, key)
    gw = gateway()
    endpoint.mode = "ordinary-words"
    response = _post(gw, {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == ORDINARY


def test_a_chunk_whose_delta_is_null_is_not_a_failure(gateway, served_home, endpoint):
    gw = gateway()
    endpoint.mode = "null-delta"
    status, text = _stream_text(gw, {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]})
    assert status == 200 and '"content":"fine"' in text and text.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("text, lone", [
    (r"\ud800", True), (r"\udc00 x", True), (r"x \ud83d", True), (r"\ud83d\ud83d\ude00", True),
    (r"\ude00\ud83d", True), (r"a \ud83d\ude00 b \uD83D\uDE00", False), ("plain text", False),
])  # fmt: skip
def test_only_unpaired_surrogate_escapes_are_refused(text, lone):
    """Escaped pairs (how json.dumps writes every emoji) are text; any unpaired escape is not."""
    from lrcal.gateway.errors import ApiError
    from lrcal.gateway.request import parse_chat

    raw = b'{"model":"m","messages":[{"role":"user","content":"' + text.encode() + b'"}]}'
    if lone:
        with pytest.raises(ApiError, match="unpaired UTF-16 surrogate"):
            parse_chat(raw)
    else:
        assert parse_chat(raw).question == json.loads(raw)["messages"][0]["content"]
