"""A small threaded HTTP/1.1 server for OpenAI-compatible model servers.

It speaks the parts of the protocol that model clients use:

* ``GET /v1/models`` (and ``/models``), Ollama's ``GET /api/tags``;
* ``POST /v1/chat/completions`` -- streaming (SSE ``data:`` events, a final usage chunk
  when ``stream_options.include_usage`` is set, then ``data: [DONE]``) and non-streaming
  JSON with ``usage``; the image comes as a base64 ``data:`` URL content part;
* Ollama's ``POST /api/chat`` (NDJSON stream or one JSON object, raw base64 ``images``,
  token counts and durations in ns);
* a stats route (per-model request counters and in-flight peaks) for tests.

What a model answers comes from a :class:`Backend` (the simulated zoo, a real local OCR
model...). The backend's :class:`Answer` carries *target* timings measured from the
moment the request arrived: the server never sends the first token before ``ttft_s`` nor
the last byte before ``total_s``. A backend that really computes returns the time it
took (or zero) and is streamed at once.

A :class:`FaultInjector` may replace any response by a protocol fault (HTTP 5xx, 429 with
``Retry-After``, a reset connection, a stall after headers, invalid JSON, a stream without
``[DONE]``, a huge body, non-UTF-8 bytes, a missing usage block); the mechanics of each
fault live here so that every server built on this base can inject them.

Stdlib only (``ThreadingHTTPServer``: one thread per connection, keep-alive, chunked
transfer encoding for streams).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from lrcal.errors import LrcalError

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024 * 1024
STREAM_PIECE_CHARS = 65536  # long texts (the huge-body fault) are streamed in pieces this size


# ---- backend interface ---------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One model answer plus its timing targets (seconds since the request arrived)."""

    text: str
    input_tokens: int
    output_tokens: int
    ttft_s: float = 0.0
    total_s: float = 0.0


class Backend(Protocol):
    """What a model server serves. ``answer`` may block (it runs in the request's thread)."""

    owned_by: str

    def model_names(self) -> list[str]: ...

    def answer(self, model: str, question: str, image_bytes: bytes | None) -> Answer: ...


@dataclass(frozen=True)
class ChatRequest:
    """A parsed chat request, whichever API it came through."""

    api: str  # "openai" | "ollama"
    model: str
    question: str
    image_bytes: bytes | None
    image_mime: str | None
    stream: bool
    include_usage: bool
    max_tokens: int | None

    @cached_property
    def image_sha256(self) -> str | None:
        return hashlib.sha256(self.image_bytes).hexdigest() if self.image_bytes is not None else None


# ---- faults --------------------------------------------------------------------------


class FaultKind(str, Enum):
    HTTP_500 = "http_500"
    HTTP_502 = "http_502"
    HTTP_503 = "http_503"
    HTTP_429 = "http_429"  # with Retry-After
    HTTP_400 = "http_400"  # permanent client errors: a client must not retry these
    HTTP_401 = "http_401"
    HTTP_404 = "http_404"
    RESET = "reset"  # connection reset (RST) after part of the response
    STALL = "stall"  # 200 + headers, then silence
    INVALID_JSON = "invalid_json"  # 200 with a body (or SSE event) that is not JSON
    NO_DONE = "no_done"  # stream sends some content, never [DONE], and stalls
    HUGE_BODY = "huge_body"  # a body far larger than any real answer
    NON_UTF8 = "non_utf8"  # invalid UTF-8 bytes inside the answer text
    MISSING_USAGE = "missing_usage"  # no usage block / token counts


HTTP_FAULT_STATUS = {
    FaultKind.HTTP_500: 500,
    FaultKind.HTTP_502: 502,
    FaultKind.HTTP_503: 503,
    FaultKind.HTTP_429: 429,
    FaultKind.HTTP_400: 400,
    FaultKind.HTTP_401: 401,
    FaultKind.HTTP_404: 404,
}
_FAULT_MESSAGES = {
    429: "rate limit reached, retry later",
    400: "simulated invalid request",
    401: "simulated authentication failure",
    404: "simulated missing resource",
}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    retry_after: str | None = "1"  # header value sent with 429 (and 503)
    stall_s: float = 75.0  # how long STALL / NO_DONE keep the connection silent
    huge_bytes: int = 2 * 1024 * 1024


class FaultInjector(Protocol):
    def decide(self, request: ChatRequest) -> Fault | None: ...


# ---- the server ----------------------------------------------------------------------


class ModelServer:
    """An OpenAI-compatible (and Ollama-compatible) HTTP server over a :class:`Backend`.

    The socket is bound in the constructor (port 0 picks a free port), so ``url`` is known
    before ``start()``. Use ``start()``/``stop()`` (or ``with``) to serve from a background
    thread, or ``serve_forever()`` to block (the CLI; Ctrl-C then ``stop()``).
    """

    def __init__(
        self,
        backend: Backend,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        fault_injector: FaultInjector | None = None,
        refuse_stream: bool = False,
        stats_path: str = "/stats",
        max_request_bytes: int = MAX_REQUEST_BYTES,
        api_key: str | None = None,
    ) -> None:
        self.backend = backend
        self._api_key = api_key  # when set, model routes require "Authorization: Bearer <key>"
        self.fault_injector = fault_injector
        self.refuse_stream = refuse_stream
        self.stats_path = "/" + stats_path.strip("/")
        self.max_request_bytes = max_request_bytes
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._max_in_flight: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._total_in_flight = 0
        self._max_total_in_flight = 0
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None
        self._serving = False
        self._closed = False
        try:
            self._httpd = _HTTPServer(host, port, self)
        except OSError as exc:
            raise LrcalError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = int(self._httpd.server_address[1])

    # -- addresses
    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (Ollama-style clients use this)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ``http://HOST:PORT/v1``."""
        return self.root_url + "/v1"

    # -- lifecycle
    def start(self) -> "ModelServer":
        if self._thread is not None:
            return self
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"model-server-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` (from another thread) or Ctrl-C."""
        self._serving = True
        try:
            self._httpd.serve_forever(poll_interval=0.1)
        finally:
            self._serving = False

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()  # wakes handlers that are pacing or stalling
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections would otherwise linger
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True early when the server is stopping."""
        if seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)

    # -- counters
    @property
    def request_counts(self) -> dict[str, int]:
        """Chat requests received per model (every attempt, faulted ones included)."""
        with self._lock:
            return dict(self._requests)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "total_requests": sum(self._requests.values()),
                "in_flight": {k: v for k, v in self._in_flight.items() if v},
                "max_in_flight": dict(self._max_in_flight),
                "max_total_in_flight": self._max_total_in_flight,
                "faults": dict(self._faults),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._requests.clear()
            self._max_in_flight.clear()
            self._faults.clear()
            self._max_total_in_flight = self._total_in_flight

    def _begin(self, model: str) -> None:
        with self._lock:
            self._requests[model] += 1
            self._in_flight[model] += 1
            self._total_in_flight += 1
            self._max_in_flight[model] = max(self._max_in_flight[model], self._in_flight[model])
            self._max_total_in_flight = max(self._max_total_in_flight, self._total_in_flight)

    def _end(self, model: str) -> None:
        with self._lock:
            self._in_flight[model] -= 1
            self._total_in_flight -= 1

    def _count_fault(self, kind: FaultKind) -> None:
        with self._lock:
            self._faults[kind.value] += 1

    def authorized(self, header: str | None) -> bool:
        if self._api_key is None:
            return True
        expected = f"Bearer {self._api_key}".encode("utf-8")
        return hmac.compare_digest((header or "").strip().encode("utf-8"), expected)

    def __repr__(self) -> str:  # never shows the key
        return f"ModelServer(url={self.url!r}, auth={'on' if self._api_key else 'off'})"

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: bursts of many concurrent clients

    def __init__(self, host: str, port: int, model_server: ModelServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.model_server = model_server
        super().__init__((host, port), _Handler)

    def process_request(self, request, client_address):  # type: ignore[override]
        self.model_server._track(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[override]
        self.model_server._track(request, False)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # clients that give up (timeouts, retries) are normal here
        log.exception("model server: unhandled error for %s", client_address)


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


class _Aborted(Exception):
    """The server is stopping: abandon the response."""


# ---- request parsing -----------------------------------------------------------------

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S)


def _decode_b64(data: str, param: str) -> bytes:
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest("image is not valid base64", param) from None


def decode_data_url(url: str) -> tuple[bytes, str | None]:
    """``data:image/png;base64,...`` → (bytes, mime). Raises on anything else."""
    match = _DATA_URL.match(url.strip())
    if not match:
        if url.startswith(("http://", "https://")):
            raise _BadRequest("remote image URLs are not supported; send the image as a base64 data URL", "messages")
        raise _BadRequest("image_url must be a base64 data URL (data:<mime>;base64,...)", "messages")
    return _decode_b64(match.group("data"), "messages"), match.group("mime")


def _last_user_message(messages: Any) -> dict:
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty list", "messages")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return message
    raise _BadRequest("no user message in 'messages'", "messages")


def _positive_int_or_none(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _BadRequest(f"'{param}' must be a positive integer", param)
    return value


def parse_openai_request(payload: Any) -> ChatRequest:
    if not isinstance(payload, dict):
        raise _BadRequest("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("'model' is required", "model")
    content = _last_user_message(payload.get("messages")).get("content")
    texts: list[str] = []
    image: bytes | None = None
    mime: str | None = None
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                raise _BadRequest("content parts must be objects", "messages")
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                ref = part.get("image_url")
                url = ref.get("url") if isinstance(ref, dict) else ref
                if not isinstance(url, str):
                    raise _BadRequest("image_url.url must be a string", "messages")
                if image is None:  # one image per question; extra images are ignored
                    image, mime = decode_data_url(url)
            else:
                raise _BadRequest(f"unsupported content part type: {kind!r}", "messages")
    else:
        raise _BadRequest("message content must be a string or a list of parts", "messages")
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise _BadRequest("'stream' must be a boolean", "stream")
    options = payload.get("stream_options") or {}
    include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
    max_tokens = _positive_int_or_none(payload.get("max_completion_tokens", payload.get("max_tokens")), "max_tokens")
    return ChatRequest("openai", model, "\n".join(texts), image, mime, stream, include_usage, max_tokens)


def parse_ollama_request(payload: Any) -> ChatRequest:
    if not isinstance(payload, dict):
        raise _BadRequest("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model is required", "model")
    message = _last_user_message(payload.get("messages"))
    content = message.get("content", "")
    if not isinstance(content, str):
        raise _BadRequest("message content must be a string", "messages")
    images = message.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise _BadRequest("images must be a list of base64 strings", "messages")
    image = _decode_b64(images[0], "messages") if images else None
    stream = payload.get("stream", True)  # Ollama streams unless told not to
    if not isinstance(stream, bool):
        raise _BadRequest("stream must be a boolean", "stream")
    options = payload.get("options") or {}
    num_predict = options.get("num_predict") if isinstance(options, dict) else None
    max_tokens = num_predict if isinstance(num_predict, int) and not isinstance(num_predict, bool) and num_predict > 0 else None
    return ChatRequest("ollama", model, content, image, None, stream, True, max_tokens)


def _stream_pieces(text: str) -> list[str]:
    """Split an answer into token-like pieces for streaming (whitespace kept)."""
    if len(text) > 4096:
        return [text[i : i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)]
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces.append(tail)
    return pieces or [text]


_NON_UTF8_MARK = "\u2063lrcal-non-utf8\u2063"
_NON_UTF8_BYTES = b"\xff\xfe\xc3(\xa0\xa1"


def _json_bytes(obj: Any, corrupt_utf8: bool = False) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if corrupt_utf8:
        data = data.replace(_NON_UTF8_MARK.encode("utf-8"), _NON_UTF8_BYTES)
    return data


# ---- the handler ---------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lrcal-model-server/1"
    disable_nagle_algorithm = True  # small SSE writes must not wait for ACKs
    timeout = 120  # idle keep-alive connections end eventually

    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    @property
    def ms(self) -> ModelServer:
        return self.server.model_server

    # -- routing
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = urlsplit(self.path).path.rstrip("/")
        backend = self.ms.backend
        if path in ("/v1/models", "/models", "/api/tags") and not self._check_auth("openai"):
            return
        if path in ("/v1/models", "/models"):
            data = [
                {"id": name, "object": "model", "created": 0, "owned_by": getattr(backend, "owned_by", "lrcal")}
                for name in backend.model_names()
            ]
            self._send_json(200, {"object": "list", "data": data})
        elif path == "/api/tags":
            models = [{"name": name, "model": name, "size": 0, "details": {}} for name in backend.model_names()]
            self._send_json(200, {"models": models})
        elif path == self.ms.stats_path:
            self._send_json(200, self.ms.stats())
        elif path in ("", "/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_error(404, f"no route for GET {path or '/'}", api="openai", code="not_found")

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path.rstrip("/")
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._send_error(exc.status, exc.message, api="openai")
            return
        if path in ("/v1/chat/completions", "/chat/completions"):
            if self._check_auth("openai"):
                self._chat("openai", body)
        elif path == "/api/chat":
            if self._check_auth("ollama"):
                self._chat("ollama", body)
        else:
            self._send_error(404, f"no route for POST {path}", api="openai", code="not_found")

    def _check_auth(self, api: str) -> bool:
        if self.ms.authorized(self.headers.get("Authorization")):
            return True
        self._send_error(401, "invalid or missing API key", api=api, code="invalid_api_key")
        return False

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise _BadRequest("bad Content-Length") from None
        if length < 0 or length > self.ms.max_request_bytes:
            raise _BadRequest(f"request body too large (limit {self.ms.max_request_bytes} bytes)", status=413)
        return self.rfile.read(length)

    def _read_chunked_body(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest("bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > self.ms.max_request_bytes:
                raise _BadRequest("request body too large", status=413)
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

    # -- chat
    def _chat(self, api: str, body: bytes) -> None:
        t0 = time.monotonic()
        try:
            payload = json.loads(body.decode("utf-8"))
            request = parse_openai_request(payload) if api == "openai" else parse_ollama_request(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._send_error(400, "request body is not valid JSON", api=api)
            return
        except _BadRequest as exc:
            self._send_error(exc.status, exc.message, api=api, param=exc.param)
            return
        ms = self.ms
        if request.model not in ms.backend.model_names():
            self._send_error(404, f"model '{request.model}' not found", api=api, code="model_not_found", param="model")
            return
        ms._begin(request.model)
        try:
            if api == "openai" and request.stream and ms.refuse_stream:
                self._send_error(400, "stream is not supported by this server; send stream=false", api=api, param="stream")
                return
            fault = ms.fault_injector.decide(request) if ms.fault_injector is not None else None
            if fault is not None:
                ms._count_fault(fault.kind)
                self._send_fault(request, fault, t0)
                return
            answer = ms.backend.answer(request.model, request.question, request.image_bytes)
            self._send_answer(request, answer, t0)
        except _Aborted:
            self.close_connection = True
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away; nothing to answer
        except Exception as exc:  # a backend bug must not kill the server
            log.exception("model server: backend failed")
            self.close_connection = True
            try:
                self._send_error(500, f"backend error: {type(exc).__name__}", api=api)
            except OSError:
                pass
        finally:
            ms._end(request.model)

    # -- low-level writers
    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else _json_bytes(obj)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(
        self,
        status: int,
        message: str,
        *,
        api: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if api == "ollama":
            obj: Any = {"error": message}
        else:
            kind = "invalid_request_error" if status < 500 else "server_error"
            if status == 429:
                kind = "rate_limit_exceeded"
            obj = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        self._send_json(status, obj, headers)

    def _start_stream(self, content_type: str, first_chunk: bytes = b"") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        buffer = getattr(self, "_headers_buffer", None)  # stdlib internals: headers pending
        if first_chunk and isinstance(buffer, list):  # the headers and the first chunk in one write
            buffer.append(b"\r\n")
            buffer.append(b"%x\r\n%s\r\n" % (len(first_chunk), first_chunk))
            self.flush_headers()
            return
        self.end_headers()
        self._chunk(first_chunk)

    def _chunk(self, data: bytes, last: bool = False) -> None:
        """One chunk of a chunked body; ``last`` also ends the body (same write)."""
        out = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
        if last:
            out += b"0\r\n\r\n"
        if out:
            self.wfile.write(out)

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _sleep_until(self, deadline: float) -> None:
        if self.ms.wait(deadline - time.monotonic()):
            raise _Aborted()

    def _reset_connection(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0), as a crashed proxy or server does."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    # -- answers
    def _send_answer(
        self,
        request: ChatRequest,
        answer: Answer,
        t0: float,
        *,
        with_usage: bool = True,
        corrupt_utf8: bool = False,
    ) -> None:
        output_tokens = answer.output_tokens
        finish = "stop"
        if request.max_tokens is not None and output_tokens > request.max_tokens:
            output_tokens, finish = request.max_tokens, "length"
        text = answer.text + (_NON_UTF8_MARK if corrupt_utf8 else "")
        ttft = max(0.0, answer.ttft_s)
        total = max(ttft, answer.total_s)
        usage = {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": answer.input_tokens + output_tokens,
        }
        if request.api == "ollama":
            self._send_ollama(request, text, usage, ttft, total, t0, with_usage, corrupt_utf8)
            return
        created = int(time.time())
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        if not request.stream:
            self._sleep_until(t0 + total)
            obj: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": request.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
                ],
            }
            if with_usage:
                obj["usage"] = usage
            self._send_json(200, obj, raw=_json_bytes(obj, corrupt_utf8))
            return

        def event(delta: dict, finish_reason: str | None = None) -> bytes:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
            return b"data: " + _json_bytes(obj, corrupt_utf8) + b"\n\n"

        self._start_stream("text/event-stream", first_chunk=event({"role": "assistant", "content": ""}))
        pieces = _stream_pieces(text)
        for i, piece in enumerate(pieces[:-1]):
            share = i / (len(pieces) - 1)
            self._sleep_until(t0 + ttft + (total - ttft) * share)
            self._chunk(event({"content": piece}))
        # The last piece, the finish event, usage and [DONE] go out in one write.
        tail = [event({"content": pieces[-1]})] if len(pieces) > 1 else []
        self._sleep_until(t0 + (total if len(pieces) > 1 else ttft))
        if len(pieces) == 1:
            self._chunk(event({"content": pieces[0]}))
            self._sleep_until(t0 + total)
        tail.append(event({}, finish))
        if with_usage and request.include_usage:
            obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": request.model, "choices": [], "usage": usage}
            tail.append(b"data: " + _json_bytes(obj) + b"\n\n")
        tail.append(b"data: [DONE]\n\n")
        self._chunk(b"".join(tail), last=True)

    def _send_ollama(
        self,
        request: ChatRequest,
        text: str,
        usage: dict[str, int],
        ttft: float,
        total: float,
        t0: float,
        with_usage: bool,
        corrupt_utf8: bool,
    ) -> None:
        def stamp() -> str:
            return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

        def final(content: str) -> dict[str, Any]:
            obj: dict[str, Any] = {
                "model": request.model,
                "created_at": stamp(),
                "message": {"role": "assistant", "content": content},
                "done": True,
                "done_reason": "stop",
                "total_duration": int(total * 1e9),
                "load_duration": 0,
            }
            if with_usage:
                obj.update(
                    prompt_eval_count=usage["prompt_tokens"],
                    prompt_eval_duration=int(ttft * 1e9),
                    eval_count=usage["completion_tokens"],
                    eval_duration=int((total - ttft) * 1e9),
                )
            return obj

        if not request.stream:
            self._sleep_until(t0 + total)
            obj = final(text)
            self._send_json(200, obj, raw=_json_bytes(obj, corrupt_utf8))
            return
        self._start_stream("application/x-ndjson")
        pieces = _stream_pieces(text)
        for i, piece in enumerate(pieces):
            share = i / (len(pieces) - 1) if len(pieces) > 1 else 0.0
            self._sleep_until(t0 + ttft + (total - ttft) * share)
            line = {"model": request.model, "created_at": stamp(), "message": {"role": "assistant", "content": piece}, "done": False}
            self._chunk(_json_bytes(line, corrupt_utf8) + b"\n")
        self._sleep_until(t0 + total)
        self._chunk(_json_bytes(final("")) + b"\n", last=True)

    # -- faults
    def _send_fault(self, request: ChatRequest, fault: Fault, t0: float) -> None:
        kind = fault.kind
        api = request.api
        if kind in HTTP_FAULT_STATUS:
            status = HTTP_FAULT_STATUS[kind]
            headers = {"Retry-After": fault.retry_after} if fault.retry_after and status in (429, 503) else None
            message = _FAULT_MESSAGES.get(status, f"simulated upstream failure ({status})")
            self._send_error(status, message, api=api, headers=headers)
            return
        if kind in (FaultKind.NON_UTF8, FaultKind.MISSING_USAGE):
            answer = self.ms.backend.answer(request.model, request.question, request.image_bytes)
            self._send_answer(
                request,
                answer,
                t0,
                with_usage=kind is not FaultKind.MISSING_USAGE,
                corrupt_utf8=kind is FaultKind.NON_UTF8,
            )
            return
        if kind is FaultKind.HUGE_BODY:
            filler = "lorem ipsum dolor sit amet "
            text = filler * (fault.huge_bytes // len(filler) + 1)
            self._send_answer(request, Answer(text, 10, len(text) // 4, 0.0, 0.0), t0)
            return
        content_type = "text/event-stream" if api == "openai" else "application/x-ndjson"
        if kind is FaultKind.INVALID_JSON:
            broken = b'{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"content":"Th'
            if request.stream:
                self._start_stream(content_type)
                self._chunk((b"data: " + broken + b"\n\n") if api == "openai" else broken + b"\n")
                if api == "openai":
                    self._chunk(b"data: [DONE]\n\n")
                self._end_stream()
            else:
                self._send_json(200, None, raw=broken)
            return
        # The remaining faults send a 200 and then misbehave on the wire.
        if request.stream:
            self._start_stream(content_type)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "4096")
            self.end_headers()
        if kind is FaultKind.STALL:
            self.ms.wait(fault.stall_s)
            self.close_connection = True
            return
        partial = self._partial_answer_bytes(request)
        if request.stream:
            self._chunk(partial)
        else:
            self.wfile.write(b'{"id":"chatcmpl-partial","choices":[{"index":0,"message":{"content":"')
        if kind is FaultKind.RESET:
            self._reset_connection()
        elif kind is FaultKind.NO_DONE:
            self.ms.wait(fault.stall_s)
            self.close_connection = True
        else:  # pragma: no cover - every kind is handled above
            raise AssertionError(kind)

    def _partial_answer_bytes(self, request: ChatRequest) -> bytes:
        """The first streamed piece of a real answer (as sent before a fault strikes)."""
        answer = self.ms.backend.answer(request.model, request.question, request.image_bytes)
        piece = _stream_pieces(answer.text)[0]
        if request.api == "ollama":
            return _json_bytes({"model": request.model, "message": {"role": "assistant", "content": piece}, "done": False}) + b"\n"
        chunk = {
            "id": "chatcmpl-partial",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}],
        }
        return b"data: " + _json_bytes(chunk) + b"\n\n"


__all__ = [
    "Answer",
    "Backend",
    "ChatRequest",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "HTTP_FAULT_STATUS",
    "ModelServer",
    "decode_data_url",
    "parse_ollama_request",
    "parse_openai_request",
]


def stop_on_signals() -> None:
    """Make Ctrl-C (SIGINT) and SIGTERM stop a foreground server with KeyboardInterrupt.

    A process started in the background of a non-interactive shell (`lrcal sim serve &` in a
    script, CI runners, nohup) inherits SIGINT as *ignored*, and then Ctrl-C / `kill -INT` would
    never stop it; SIGTERM's default would skip the clean shutdown."""
    import signal

    def _interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
