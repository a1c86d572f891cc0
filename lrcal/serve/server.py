"""A small threaded HTTP/1.1 server for OpenAI-compatible model servers.

Routes:

* ``GET /v1/models`` (and ``/models``), Ollama's ``GET /api/tags``, a health route and a
  stats route (per-model request counters and in-flight peaks) for tests;
* ``POST /v1/chat/completions`` (and ``/chat/completions``) and Ollama's ``POST /api/chat``.

What a model answers comes from a :class:`Backend`; a :class:`FaultInjector` may replace
any response by a protocol fault. Stdlib only (``ThreadingHTTPServer``: one thread per
connection, keep-alive, chunked transfer encoding for streams).
"""

from __future__ import annotations

import hmac
import logging
import signal
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

from lrcal.errors import LrcalError, UsageError
from lrcal.serve.faults import FaultInjector, FaultKind, send_fault
from lrcal.serve.protocol import (
    MAX_REQUEST_BYTES,
    OLLAMA,
    OPENAI,
    Backend,
    BadRequest,
    ChatRequest,
    parse_chat_body,
)
from lrcal.serve.responses import Aborted, ResponseWriter, send_answer

log = logging.getLogger(__name__)

_MODEL_LIST_PATHS = ("/v1/models", "/models")
_Server = TypeVar("_Server", bound="ModelServer")
_CHAT_PATHS = {"/v1/chat/completions": OPENAI, "/chat/completions": OPENAI, "/api/chat": OLLAMA}


class ModelServer:
    """An OpenAI-compatible (and Ollama-compatible) HTTP server over a :class:`Backend`.

    The socket is bound in the constructor (port 0 picks a free port), so ``url`` is known
    before ``start()``. Use ``start()``/``stop()`` (or ``with``) to serve from a background
    thread, or ``serve_until_interrupted()`` to block until Ctrl-C or SIGTERM (the CLI).
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
        host = listen_host(host)
        try:
            self._httpd = _HTTPServer(host, port, self)
        except OSError as exc:
            raise LrcalError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = int(self._httpd.server_address[1])

    # -- addresses
    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (Ollama-style clients use this; an IPv6 host in brackets)."""
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ``http://HOST:PORT/v1``."""
        return self.root_url + "/v1"

    # -- lifecycle
    def start(self: _Server) -> _Server:
        """Serve from a background thread; returns the server itself."""
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

    def serve_until_interrupted(self) -> None:
        """Serve in the calling (main) thread until Ctrl-C (SIGINT) or SIGTERM, then stop cleanly.

        Both signals are handled here even when SIGINT was inherited as *ignored*, as a process
        started in the background of a non-interactive shell (`lrcal sim serve &` in a script,
        CI runners, nohup) has it: Ctrl-C / `kill -INT` would otherwise never stop it, and
        SIGTERM's default would skip the clean shutdown."""
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        if hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, set(previous))
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

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

    def __enter__(self: _Server) -> _Server:
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
        return f"{type(self).__name__}(url={self.url!r}, auth={'on' if self._api_key else 'off'})"

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)


def _raise_keyboard_interrupt(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def listen_host(host: str, option: str = "host") -> str:
    """``host`` as a socket binds it (``[::1]`` -> ``::1``). An empty or blank host is refused
    (``UsageError``, naming ``option``): the socket would take '' for every interface and the
    base URL would read ``http://:PORT/v1``."""
    if not isinstance(host, str) or not host.strip():
        raise UsageError(
            f"{option} must not be empty: give an address to listen on "
            "(127.0.0.1: this machine only; 0.0.0.0: every interface)"
        )
    if host.startswith("[") and host.endswith("]") and ":" in host:
        host = host[1:-1]
    return host


def url_host(host: str) -> str:
    """``host`` as it is written in a URL: an IPv6 address in brackets (a zone's '%' escaped)."""
    return f"[{host.replace('%', '%25')}]" if ":" in host else host


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
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return  # clients that give up (timeouts, retries) are normal here
        log.exception("model server: unhandled error for %s", client_address)


def read_request_body(rfile, headers, limit: int) -> bytes:
    """The request body, by Content-Length or chunked; ``BadRequest`` when malformed or
    larger than ``limit`` bytes."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return _read_chunked_body(rfile, limit)
    try:
        length = int(headers.get("Content-Length", "0"))
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    if length < 0 or length > limit:
        raise BadRequest(f"request body too large (limit {limit} bytes)", status=413)
    return rfile.read(length)


def _read_chunked_body(rfile, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunked encoding") from None
        if size == 0:
            while rfile.readline(1024).strip():  # trailers
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise BadRequest("request body too large", status=413)
        parts.append(rfile.read(size))
        rfile.readline(8)


class _Handler(BaseHTTPRequestHandler):
    """Routes one connection's requests: model lists, stats and health on GET, chats on POST."""

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

    def setup(self) -> None:
        super().setup()
        self.out = ResponseWriter(self, self.ms.wait)

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/")

    def _authorized(self, api: str) -> bool:
        """True when the request may use the model routes; else a 401 has been sent."""
        if self.ms.authorized(self.headers.get("Authorization")):
            return True
        self.out.send_error(401, "invalid or missing API key", api=api, code="invalid_api_key")
        return False

    # -- GET
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self._path()
        if path in (*_MODEL_LIST_PATHS, "/api/tags") and not self._authorized(OPENAI):
            return
        if path in _MODEL_LIST_PATHS:
            self.out.send_json(200, self._openai_model_list())
        elif path == "/api/tags":
            self.out.send_json(200, self._ollama_model_list())
        elif path == self.ms.stats_path:
            self.out.send_json(200, self.ms.stats())
        elif path in ("", "/health", "/v1/health"):
            self.out.send_json(200, {"status": "ok"})
        else:
            self.out.send_error(404, f"no route for GET {path or '/'}", api=OPENAI, code="not_found")

    def _openai_model_list(self) -> dict[str, Any]:
        backend = self.ms.backend
        owner = getattr(backend, "owned_by", "lrcal")
        data = [{"id": name, "object": "model", "created": 0, "owned_by": owner} for name in backend.model_names()]
        return {"object": "list", "data": data}

    def _ollama_model_list(self) -> dict[str, Any]:
        return {"models": [{"name": name, "model": name, "size": 0, "details": {}} for name in self.ms.backend.model_names()]}

    # -- POST
    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        try:
            body = read_request_body(self.rfile, self.headers, self.ms.max_request_bytes)
        except BadRequest as exc:
            self.close_connection = True
            self.out.send_error(exc.status, exc.message, api=OPENAI)
            return
        api = _CHAT_PATHS.get(path)
        if api is None:
            self.out.send_error(404, f"no route for POST {path}", api=OPENAI, code="not_found")
        elif self._authorized(api):
            self._chat(api, body)

    def _chat(self, api: str, body: bytes) -> None:
        t0 = time.monotonic()  # the answer's timing targets count from here
        try:
            request = parse_chat_body(api, body)
        except BadRequest as exc:
            self.out.send_error(exc.status, exc.message, api=api, param=exc.param)
            return
        ms = self.ms
        if request.model not in ms.backend.model_names():
            self.out.send_error(404, f"model '{request.model}' not found", api=api, code="model_not_found", param="model")
            return
        ms._begin(request.model)
        try:
            self._respond(request, t0)
        except (Aborted, ConnectionError, TimeoutError):
            self.close_connection = True  # the server is stopping, or the client went away
        except Exception as exc:  # a backend bug must not kill the server
            log.exception("model server: backend failed")
            self.close_connection = True
            try:
                self.out.send_error(500, f"backend error: {type(exc).__name__}", api=api)
            except OSError:
                pass
        finally:
            ms._end(request.model)

    def _respond(self, request: ChatRequest, t0: float) -> None:
        """The answer, a refusal to stream, or the fault the injector picks instead."""
        ms = self.ms
        if request.api == OPENAI and request.stream and ms.refuse_stream:
            self.out.send_error(400, "stream is not supported by this server; send stream=false", api=request.api, param="stream")
            return
        fault = ms.fault_injector.decide(request) if ms.fault_injector is not None else None
        if fault is not None:
            ms._count_fault(fault.kind)
            send_fault(self.out, ms.backend, request, fault, t0)
            return
        answer = ms.backend.answer(request.model, request.question, request.image_bytes)
        send_answer(self.out, request, answer, t0, cut_to_max_tokens=True)
