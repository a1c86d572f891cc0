"""Endpoint client findings of the review: each against a real scripted server on 127.0.0.1.

The key escaped as a JSON encoder may escape it (``\\/``), in-body error codes as strings,
``"error": null`` beside an answer, a refused ``stream_options``, "upstream" in a 400, corrupt
gzip, the choice with index 0, the image probe of `add-model`, and the price shown by an event.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import pytest

from lrcal.endpoints import EndpointClient, EndpointConfig
from tests.fixtures.stub_endpoint import answer

# A key with '/' in it: PHP's json_encode (and others) send it back as "sk-live\/AbCd...".
KEY = "sk-live/AbCdEfGh1234567890/ZyXwVuTs"
KEY_ENV = "LRCAL_REVIEW_KEY"


def config_for(url: str, model: str = "m", **options) -> EndpointConfig:
    options.setdefault("timeout_s", 5.0)
    options.setdefault("backoff_base_s", 0.01)
    options.setdefault("backoff_max_s", 0.05)
    return EndpointConfig(url, model, **options)


def ask(config: EndpointConfig, times: int = 1, image: bytes | None = None):
    async def go():
        async with EndpointClient(config) as client:
            results = [await client.complete("What is 3+4?", image, "image/png" if image else None) for _ in range(times)]
            return client, results

    return asyncio.run(go())


# ---- a scripted server that can also stream (the stub_endpoint fixture answers JSON only) -------

# a reply is (status, payload): payload a dict (sent as JSON), bytes (as they are), or
# ("sse", [events], delay_s) / ("ndjson", [objects]) to stream
Reply = tuple


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hangs up is what some tests do
        pass


@pytest.fixture
def scripted():
    """``scripted(respond)``: ``respond(method, path, body, headers) -> (status, payload)``; the
    returned object has ``url`` (…/v1), ``root`` and ``seen`` (method, path, body) per request."""
    servers = []

    def start(respond: Callable[[str, str, dict, dict], Reply]):
        seen: list[tuple[str, str, dict]] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                seen.append((method, self.path, body))
                status, payload = respond(method, self.path, body, dict(self.headers))
                if isinstance(payload, tuple) and payload[0] in ("sse", "ndjson"):
                    self._stream(status, *payload)
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, status: int, kind: str, events: list, delay_s: float = 0.0) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/event-stream" if kind == "sse" else "application/x-ndjson")
                self.send_header("Connection", "close")
                self.end_headers()
                for event in events:
                    line = event if isinstance(event, str) else json.dumps(event)
                    self.wfile.write((f"data: {line}\n\n" if kind == "sse" else line + "\n").encode())
                    self.wfile.flush()
                    time.sleep(delay_s)
                self.close_connection = True

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        httpd = _Quiet(("127.0.0.1", 0), Handler)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(httpd)
        root = f"http://127.0.0.1:{httpd.server_address[1]}"
        return type("Scripted", (), {"url": root + "/v1", "root": root, "seen": seen})

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def chunk(content: str | None = None, finish: str | None = None, **extra) -> dict:
    delta = {} if content is None else {"content": content}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


USAGE = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}}
MODELS = {"object": "list", "data": [{"id": "m", "object": "model"}]}


# ---- 1: the key escaped as '\/' in an error body -------------------------------------------------


def _leaky_401(pad: int) -> dict:
    """What a PHP-style server sends: the key it was given, at ``pad`` characters into its message,
    with '/' escaped as '\\/' (the raw body no longer holds the key as sent)."""
    return {"error": {"message": "x" * pad + " key: " + KEY}}


def _escaped(payload: dict, escape: str = "\\/") -> bytes:
    """The JSON of ``payload`` with '/' written as ``escape``; "letters": the key's letters as \\uXXXX."""
    text = json.dumps(payload)
    if escape == "letters":
        return text.replace(KEY, "".join(f"\\u{ord(c):04x}" if c.isalpha() else c for c in KEY)).encode()
    return text.replace("/", escape).encode()


def _assert_no_key(texts: list[str]) -> None:
    """Neither the key nor any 8 characters of it in a row, as sent or escaped, in any case."""
    escaped = KEY.replace("/", "\\/")
    fragments = {form[i : i + 8].lower() for form in (KEY, escaped) for i in range(len(form) - 7)}
    texts = [*texts, *(text.replace("\n", "") for text in texts)]  # a console wraps long lines
    leaks = [(fragment, text[:80]) for text in texts for fragment in fragments if fragment in text.lower()]
    assert not leaks, leaks[:3]


@pytest.mark.parametrize("where", ["models", "chat"])
# the key at 150 to 185 characters into the message: across the 200 characters it is cut to
@pytest.mark.parametrize("pad, escape", [(150, "\\/"), (170, "\\/"), (185, "\\/"), (170, "letters")])
def test_key_escaped_in_a_401_is_not_shown_by_add_model(cli, scripted, monkeypatch, where, pad, escape):
    """The key was redacted from the raw body only: error_detail decoded '\\/' back to '/', cut the
    message at 200 characters, and the later scrub saw a fragment: add-model printed 34 of 35."""
    monkeypatch.setenv(KEY_ENV, KEY)

    def respond(method, path, body, headers):
        if method == "GET" and where == "chat":
            return 200, MODELS
        return 401, _escaped(_leaky_401(pad), escape)

    server = scripted(respond)
    result = cli("add-model", "m", "--base-url", server.url, "--api-key-env", KEY_ENV)
    assert result.exit_code == 1 and "HTTP 401" in result.stderr and "\n" not in result.stderr.strip()
    if pad < 180:  # further in, the cut leaves "[red..."
        assert "key: [redacted]" in result.stderr
    _assert_no_key([result.stdout, result.stderr])


def test_key_escaped_in_a_401_is_not_stored_by_calibrate(cli, home, scripted, tiny_set_dir, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    server = scripted(lambda method, path, body, headers: (401, _escaped(_leaky_401(170))))
    assert cli("add-model", "m", "--base-url", server.url, "--api-key-env", KEY_ENV, "--no-probe",
               "--max-retries", "0").exit_code == 0  # fmt: skip
    result = cli("calibrate", "m", "--set", str(tiny_set_dir), "--limit", "3", "--no-fit")
    with sqlite3.connect(home / "lrcal.db") as conn:
        messages = [row[0] for row in conn.execute("select error_message from outcomes")]
    assert len(messages) == 3 and all("HTTP 401" in m and "[redacted]" in m for m in messages), messages
    files = [p.read_bytes().decode("utf-8", errors="replace") for p in home.rglob("*") if p.is_file()]
    _assert_no_key([*messages, result.stdout, result.stderr, *files])


@pytest.mark.parametrize("escape", ["\\/", "\\u002f", "\\u002F", "letters"])
def test_key_escaped_by_any_json_encoder_is_redacted_from_complete(scripted, monkeypatch, escape):
    """With "letters", every letter of the key as \\uXXXX: only the pass over the decoded text sees it."""
    monkeypatch.setenv(KEY_ENV, KEY)
    body = _escaped(_leaky_401(180), escape)
    server = scripted(lambda method, path, b, headers: (401, body))
    _, (result,) = ask(config_for(server.url, api_key_env=KEY_ENV, max_retries=0))
    assert result.error_kind == "http_4xx" and "key: [redacted]" in result.error_message
    _assert_no_key([result.error_message, json.dumps(result.to_dict())])


# ---- 2: the image probe of add-model -------------------------------------------------------------


def _image_side(body: dict) -> int | None:
    from PIL import Image

    for part in body["messages"][0]["content"] if isinstance(body["messages"][0]["content"], list) else []:
        if part.get("type") == "image_url":
            data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
            return min(Image.open(io.BytesIO(data)).size)
    return None


@pytest.mark.parametrize(
    "image_reply, text_only, note",
    [
        ((429, {"error": {"message": "rate limit reached"}}), False, "image input could not be checked (HTTP 429: rate"),
        ((409, {"error": {"message": "busy"}}), False, "image input could not be checked (HTTP 409: busy)"),
        ((503, {"error": {"message": "overloaded"}}), False, "image input could not be checked (HTTP 503: overloaded)"),
        ("stall", False, "image input could not be checked (no complete response within 0.4s)"),
        ((400, {"error": {"message": "this model does not support images"}}), True,
         "the endpoint refused a small image (HTTP 400: this model does not support images)"),
        ((415, {"error": {"message": "unsupported media"}}), True, "the endpoint refused a small image (HTTP 415:"),
        # vLLM/LiteLLM: the refusal as an error event of a 200 stream (its status only inside it)
        ((200, ("sse", [{"error": {"message": "image input is not supported", "code": 400}}, "[DONE]"], 0.0)), True,
         "the endpoint refused a small image (error from server: image input is not supported"),
    ],
)  # fmt: skip
def test_image_probe_says_text_only_only_on_a_definite_refusal(cli, store, scripted, image_reply, text_only, note):
    """Any 4xx on the 4x4 image made the model text-only, 429 included; a retryable failure says
    nothing about images. The 4x4 image was also below a vision encoder's minimum size."""
    sides = []

    def respond(method, path, body, headers):
        if method == "GET":
            return 200, MODELS
        side = _image_side(body)
        if side is None:
            streaming = isinstance(image_reply[1], tuple) and body.get("stream")
            return (200, ("sse", [chunk("OK", finish="stop"), "[DONE]"], 0.0)) if streaming else (200, answer("OK"))
        sides.append(side)
        if image_reply == "stall":
            time.sleep(0.8)
            return 200, answer("grey")
        return image_reply

    server = scripted(respond)
    result = cli("add-model", "m", "--base-url", server.url, "--timeout", "0.4")
    assert result.exit_code == 0, result.output
    notes = " ".join(result.stderr.split())  # the console wraps long lines
    assert note in notes and "HTTP 429: HTTP 429" not in notes
    assert ("text-only" in notes) == text_only
    assert bool(store.find_model("m")["accepts_images"]) is not text_only
    assert sides and min(sides) >= 64  # vision encoders refuse smaller images (Qwen2-VL: 56 px)


def test_image_probe_answered_registers_images_without_a_note(cli, store, scripted):
    def respond(method, path, body, headers):
        return (200, MODELS) if method == "GET" else (200, answer("grey"))

    result = cli("add-model", "m", "--base-url", scripted(respond).url)
    assert result.exit_code == 0 and "image" not in result.stderr
    assert store.find_model("m")["accepts_images"] == 1


# ---- 3: stream_options refused, and "upstream" in a 400 ------------------------------------------

SLOW_STREAM = ("sse", [chunk("Answer"), chunk(": 7", finish="stop"), USAGE, "[DONE]"], 0.15)


def test_refused_stream_options_keeps_streaming_without_them(scripted):
    """A 400 naming stream_options turned streaming off for good: TTFT stored equal to latency."""

    def respond(method, path, body, headers):
        if "stream_options" in body:
            return 400, {"error": {"message": "Unrecognized request argument supplied: stream_options",
                                   "type": "invalid_request_error", "param": "stream_options"}}  # fmt: skip
        return 200, SLOW_STREAM if body.get("stream") else answer("Answer: 7")

    server = scripted(respond)
    client, results = ask(config_for(server.url), times=2)
    assert client.streaming
    for result in results:
        assert result.ok and result.streamed and result.answer == "Answer: 7" and result.attempts == 1
        assert result.ttft_ms < result.latency_ms - 200  # the first token came ~0.3 s before the end
    sent = [body for method, path, body in server.seen]
    assert ["stream_options" in b for b in sent] == [True, False, False]  # remembered after one refusal
    assert all(b["stream"] for b in sent)


def test_upstream_in_a_400_does_not_turn_streaming_off(scripted):
    calls = []

    def respond(method, path, body, headers):
        calls.append(body.get("stream"))
        if len(calls) == 1:
            return 400, {"error": {"message": "upstream request failed: connection reset"}}
        return 200, SLOW_STREAM if body.get("stream") else answer("Answer: 7")

    client, (first, second) = ask(config_for(scripted(respond).url), times=2)
    assert first.error_kind == "http_4xx" and first.http_status == 400 and first.attempts == 1
    assert client.streaming and second.ok and second.streamed and second.ttft_ms < second.latency_ms - 200
    assert calls == [True, True]


def test_a_refusal_of_stream_itself_still_falls_back(scripted):
    def respond(method, path, body, headers):
        if body.get("stream"):
            return 400, {"error": {"message": "'stream' is not supported by this server"}}
        return 200, answer("Answer: 7")

    client, (result,) = ask(config_for(scripted(respond).url))
    assert result.ok and not result.streamed and not client.streaming


# ---- 4: "error": null beside an answer -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "json", "ollama"])
def test_error_null_beside_an_answer_is_an_answer(scripted, mode):
    def respond(method, path, body, headers):
        if mode == "ollama":
            return 200, ("ndjson", [{"message": {"content": "Answer: 7"}, "done": False, "error": None},
                                    {"message": {"content": ""}, "done": True, "prompt_eval_count": 11,
                                     "eval_count": 3, "error": None}])  # fmt: skip
        if mode == "stream":
            return 200, ("sse", [chunk("Answer: 7", finish="stop", error=None), {**USAGE, "error": None}, "[DONE]"])
        return 200, {**answer("Answer: 7"), "error": None}

    server = scripted(respond)
    config = config_for(server.root if mode == "ollama" else server.url, api_style="ollama" if mode == "ollama" else "openai",
                        max_retries=2)  # fmt: skip
    _, (result,) = ask(config)
    assert result.ok and result.answer == "Answer: 7" and result.attempts == 1, result.error_message
    assert result.streamed == (mode != "json")


# ---- 5: error codes given as strings -------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, error, kind, attempts",
    [
        ("stream", {"message": "prompt too long for context", "code": "400"}, "http_4xx", 1),
        ("json", {"message": "maximum context length is 4096 tokens", "type": "invalid_request_error",
                  "code": "context_length_exceeded"}, "http_4xx", 1),
        ("json", {"message": "The model `m` does not exist", "code": "model_not_found"}, "http_4xx", 1),
        ("stream", {"message": "Incorrect API key provided", "code": "invalid_api_key"}, "http_4xx", 1),
        ("stream", {"message": "bad input", "type": "BadRequestError"}, "http_4xx", 1),  # vLLM's exception name
        ("stream", {"message": "slow down", "code": "rate_limit_exceeded"}, "http_4xx", 3),  # 429: retried
        ("json", {"message": "something odd", "code": "weird_thing"}, "http_5xx", 3),  # unknown: transient
    ],
)  # fmt: skip
def test_string_error_codes_are_read_as_statuses(scripted, mode, error, kind, attempts):
    """An error object's string code was classed http_5xx and retried, a context overflow included."""

    def respond(method, path, body, headers):
        if mode == "stream":
            return 200, ("sse", [chunk("Ans"), {"error": error}])
        return 200, {"error": error}

    server = scripted(respond)
    _, (result,) = ask(config_for(server.url, max_retries=2))
    assert (result.error_kind, result.attempts) == (kind, attempts), result.error_message
    assert error["message"] in result.error_message


# ---- 6: a corrupt gzip body ----------------------------------------------------------------------


def test_corrupt_gzip_body_is_a_malformed_response_and_retried(stub_endpoint):
    stub = stub_endpoint(lambda body, headers: (200, b"\x1f\x8b\x08\x00garbage-not-gzip" * 4), encoding="gzip")
    _, (result,) = ask(config_for(stub.url, max_retries=1))
    assert result.error_kind == "malformed_response" and "undecodable" in result.error_message
    assert result.attempts == 2 and result.retried_errors == ["malformed_response"]


def test_corrupt_gzip_error_body_keeps_its_status(stub_endpoint):
    stub = stub_endpoint(lambda body, headers: (401, b"\x1f\x8b\x08\x00garbage" * 4), encoding="gzip")
    _, (result,) = ask(config_for(stub.url, max_retries=2))
    assert (result.error_kind, result.http_status, result.attempts) == ("http_4xx", 401, 1)


# ---- 7: the choice with index 0 ------------------------------------------------------------------


def test_json_answer_is_the_choice_with_index_0(stub_endpoint):
    def respond(body, headers):
        reply = answer("Answer: 7")
        reply["choices"] = [{"index": 1, "message": {"content": "Answer: 3"}, "finish_reason": "stop"},
                            {"index": 0, "message": {"content": "Answer: 7"}, "finish_reason": "stop"}]  # fmt: skip
        return 200, reply

    _, (result,) = ask(config_for(stub_endpoint(respond).url))
    assert result.ok and result.answer == "Answer: 7"


@pytest.mark.parametrize("index", [None, "0"])
def test_the_only_choice_with_a_null_or_text_index_is_the_answer(stub_endpoint, index):
    """This stop's first version of the index-0 rule refused a lone choice whose index was null
    or "0" ("response has no choices"), which the old parser read."""
    def respond(body, headers):
        reply = answer("Answer: 7")
        reply["choices"][0]["index"] = index
        return 200, reply

    _, (result,) = ask(config_for(stub_endpoint(respond).url))
    assert result.ok and result.answer == "Answer: 7"


# ---- 8: a price change shown as a change ---------------------------------------------------------


def test_a_small_price_change_is_visible_in_the_event(cli, store):
    assert cli("add-model", "m", "--base-url", "http://127.0.0.1:9/v1", "--no-probe", "--price-in", "0.0000016").exit_code == 0
    changed = cli("models", "set", "m", "--price-in", "0.00000160000001")
    assert changed.exit_code == 0 and "price_in_per_mtok 1.6e-06 → 1.60000001e-06" in changed.output
    events = json.loads(cli("events", "--json").stdout)
    message = next(e["message"] for e in events if e["kind"] == "changed")
    assert message == "m: price in (USD/Mtok) 1.6e-06 → 1.60000001e-06"
    assert cli("models", "set", "m", "--price-in", "2").exit_code == 0
    events = json.loads(cli("events", "--json").stdout)
    assert events[0]["message"] == "m: price in (USD/Mtok) 1.60000001e-06 → 2"


def test_a_key_with_escaped_letters_is_redacted_from_a_body_too_long_to_decode():
    """A review: only the pass over the decoded message knew an escaped letter ("\\u0073k-…"); a
    body cut before it was decoded (the gateway reads 2,000 characters, the client 64 KiB) kept
    the key, readable after one unescape."""
    from lrcal.endpoints.redact import redact

    escaped = "".join(f"\\u{ord(c):04x}" if c.isalnum() else c for c in KEY)
    body = '{"error": {"message": "bad key ' + escaped + '", "detail": "' + "x" * 3000
    cleaned = redact(body[:2000], KEY)
    assert "[redacted]" in cleaned
    _assert_no_key([cleaned, cleaned.encode().decode("unicode_escape")])
