"""Async client for one model endpoint (OpenAI-compatible or Ollama).

``complete`` never raises for endpoint faults: every call ends as a ``CallResult``, either
an answer or a failure classified as one of ``ERROR_KINDS``. Transient failures (connect
errors, timeouts, dropped connections, 408/409/429/5xx, truncated or invalid JSON) are
retried with exponential backoff and full jitter, honouring ``Retry-After``; other 4xx are
not. Concurrency is bounded per client; each attempt is bounded by ``timeout_s`` in total,
so a server that stalls after its headers or never ends its stream cannot hang a run.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import random
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from lrcal.endpoints.config import EndpointConfig
from lrcal.endpoints.redact import redact
from lrcal.endpoints.result import CallResult
from lrcal.endpoints.retry import backoff_delay, is_retryable_status, parse_retry_after
from lrcal.endpoints.tokens import estimate_input_tokens, estimate_text_tokens
from lrcal.endpoints.wire import (
    MalformedResponse,
    OllamaStreamParser,
    OpenAIStreamParser,
    ParsedResponse,
    StreamErrorEvent,
    ollama_body,
    openai_body,
    parse_ollama_json,
    parse_openai_json,
)
from lrcal.errors import LrcalError

log = logging.getLogger(__name__)

ERROR_BODY_BYTES = 64 * 1024  # how much of an error response is read for its message
DRAIN_TIMEOUT_S = 0.05  # after [DONE]: how long to wait for the end of the stream
PROBE_QUESTION = "Reply with the single word: OK"


@dataclass
class _Attempt:
    """One HTTP exchange, before retries are decided."""

    parsed: ParsedResponse | None = None
    started: float = 0.0
    ended: float = 0.0
    first_token: float | None = None
    streamed: bool = False
    error_kind: str | None = None
    error_message: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    http_status: int | None = None
    stream_refused: bool = False
    stream_options_refused: bool = False
    error_status: int | None = None  # an error event's own status (its HTTP status may be 200)

    @property
    def elapsed_ms(self) -> float:
        return max(0.0, (self.ended or time.monotonic()) - self.started) * 1000.0


class _TooLarge(Exception):
    pass


@dataclass
class _Limits:
    max_bytes: int
    received: int = field(default=0)

    def add(self, n: int) -> None:
        self.received += n
        if self.received > self.max_bytes:
            raise _TooLarge()


class EndpointClient:
    """One model endpoint. Use as ``async with EndpointClient(config) as client:``.

    ``transport`` is handed to ``httpx.AsyncClient`` (tests, proxies). The client also works
    without ``async with`` (it opens its connection pool lazily); call ``aclose()`` then.
    ``on_attempt(error_kind, http_status, error_message)`` is called after every attempt
    (``error_kind`` None: it succeeded), e.g. by a circuit breaker.
    """

    def __init__(
        self,
        config: EndpointConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        on_attempt: Callable[[str | None, int | None, str | None], None] | None = None,
    ) -> None:
        self.config = config
        self._transport = transport
        self._on_attempt = on_attempt
        self._http: httpx.AsyncClient | None = None
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._stream_supported = True  # becomes False for good once a server refuses streaming
        self._stream_options_supported = True  # False once a server refuses stream_options (usage in streams)
        self._rng = random.Random()
        try:
            self._urls = {  # parsed once: httpx re-parses string URLs on every request
                "chat_openai": httpx.URL(config.base_url + "/chat/completions"),
                "chat_ollama": httpx.URL(self._ollama_root + "/api/chat"),
            }
        except httpx.InvalidURL as exc:
            raise LrcalError(f"base URL {config.base_url[:80]!r} cannot be used: {exc}") from None

    def __repr__(self) -> str:
        c = self.config
        return f"EndpointClient(base_url={c.base_url!r}, api_model={c.api_model!r}, api_style={c.api_style!r})"

    # -- lifecycle
    async def __aenter__(self) -> "EndpointClient":
        self._headers()  # a key that cannot be sent is refused before the first request
        self._client()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            t = self.config.timeout_s
            self._http = httpx.AsyncClient(
                transport=self._transport,
                verify=_tls_context(),  # built once per process, not per client
                timeout=httpx.Timeout(connect=min(t, 10.0), read=t, write=t, pool=t),
                limits=httpx.Limits(
                    max_connections=self.config.max_concurrency + 2,
                    max_keepalive_connections=self.config.max_concurrency,
                ),
                follow_redirects=False,
                headers={"User-Agent": "lrcal"},
            )
        return self._http

    @property
    def streaming(self) -> bool:
        """False once the server has refused streaming (then every call is non-streaming)."""
        return self._stream_supported

    # -- secrets
    def _api_key(self) -> str | None:
        """Read at call time, never stored. An unset variable sends no key (the server
        then answers 401, recorded as ``http_4xx``); ``add-model`` warns about it."""
        name = self.config.api_key_env
        return (os.environ.get(name, "").strip() or None) if name else None

    def _headers(self) -> dict[str, str]:
        key = self._api_key()
        if key is not None:
            check_api_key_value(key, self.config.api_key_env or "")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _redact(self, text: str) -> str:
        """``text`` without the API key in any form (as sent, any case, URL- or base64-encoded)."""
        name = self.config.api_key_env
        # The raw value too: a key refused for its characters may still be echoed by a server.
        return redact(text, os.environ.get(name) if name else None)

    def _error_message(self, body: str) -> str:
        """The message of an error body, without the key. Redacted raw and again once decoded (a
        server that escapes '/' as '\\/' hides the key from the raw pass), each time before any
        cut: a key cut in two is no longer recognised, and its prefix would be shown."""
        return error_detail(self._redact(body), scrub=self._redact)

    def _scrub(self, text: str) -> str:
        """One line, bounded, with the API key (and any bearer token) removed."""
        text = self._redact(clean_text(text))
        text = " ".join(text.split())
        return text if len(text) <= 300 else text[:297] + "..."

    # -- URLs
    @property
    def _ollama_root(self) -> str:
        base = self.config.base_url
        for suffix in ("/v1", "/api"):
            if base.endswith(suffix):
                return base[: -len(suffix)]
        return base

    # -- public API
    async def complete(
        self,
        question: str,
        image_bytes: bytes | None = None,
        image_mime: str | None = None,
        *,
        max_retries: int | None = None,
    ) -> CallResult:
        """Ask one question (with an optional image). Never raises for endpoint faults.

        ``max_retries`` overrides the configured number of retries for this call.
        """
        retries = self.config.max_retries if max_retries is None else max_retries
        headers = self._headers()  # a key that cannot be sent raises here, before any request
        started: float | None = None  # total_ms starts with the first attempt, not the queue
        retried: list[str] = []
        attempt_no = 0
        while True:
            attempt_no += 1
            async with self._semaphore:
                if started is None:
                    started = time.monotonic()
                attempt = await self._attempt(question, image_bytes, image_mime, headers)
            if self._on_attempt is not None:
                self._on_attempt(attempt.error_kind, attempt.http_status, attempt.error_message)
            if attempt.error_kind is None or not attempt.retryable or attempt_no > retries:
                return self._result(attempt, question, image_bytes is not None, attempt_no, retried, started)
            retried.append(attempt.error_kind)
            delay = backoff_delay(
                attempt_no, self.config.backoff_base_s, self.config.backoff_max_s, attempt.retry_after_s, self._rng
            )
            await asyncio.sleep(delay)

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves (``GET /models``, Ollama ``GET /api/tags``)."""
        if self.config.api_style == "ollama":
            url, key, field_name = self._ollama_root + "/api/tags", "models", "name"
        else:
            url, key, field_name = self.config.base_url + "/models", "data", "id"
        where = self.config.base_url

        async def fetch() -> tuple[int, bytes]:
            async with self._client().stream("GET", url, headers=self._headers()) as response:
                return response.status_code, await _read_all(response, _Limits(self.config.max_response_bytes))

        try:
            status, raw = await asyncio.wait_for(fetch(), timeout=self.config.timeout_s)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            raise LrcalError(f"endpoint {where} did not answer within {self.config.timeout_s:g}s") from None
        except _TooLarge:
            raise LrcalError(
                f"endpoint {where} sent a model list larger than {self.config.max_response_bytes:,} bytes; stopped reading"
            ) from None
        except httpx.DecodingError:
            raise LrcalError(
                f"endpoint {where} sent a model list that cannot be decoded (corrupt compressed body)"
            ) from None
        except httpx.HTTPError as exc:
            raise LrcalError(f"cannot reach endpoint {where}: {self._scrub(_describe(exc))}") from None
        text = clean_text(raw.decode("utf-8", errors="replace"))
        if status >= 400:
            raise LrcalError(
                f"endpoint {where} answered HTTP {status} to {url.rsplit('/', 1)[-1]}: "
                f"{self._scrub(self._error_message(text))}"  # never cut before the key is out
            )
        try:
            items = json.loads(text)[key]
            return [clean_text(str(item[field_name])) for item in items]
        except Exception:
            raise LrcalError(f"endpoint {where} returned an unexpected model list (is it {self.config.api_style}-compatible?)") from None

    async def probe(self) -> list[str]:
        """Check the endpoint before registering it: list its models and send one tiny
        request (no retries). Raises a one-line ``LrcalError`` on failure; returns notes
        worth showing the user (no streaming, no usage counts...), possibly none."""
        models = await self.list_models()
        wanted = self.config.api_model
        if models and wanted not in models and f"{wanted}:latest" not in models:
            shown = self._scrub(", ".join(models[:10]) + (", ..." if len(models) > 10 else ""))
            raise LrcalError(f"endpoint {self.config.base_url} does not serve model '{wanted}' (it serves: {shown})")
        call = await self.complete(PROBE_QUESTION, None, None, max_retries=0)
        if call.error_kind is not None:
            raise LrcalError(
                f"test request to model '{wanted}' at {self.config.base_url} failed "
                f"({call.error_kind}): {call.error_message}"
            )
        notes: list[str] = []
        if not models:
            notes.append("the endpoint lists no models")
        if not self._stream_supported:
            notes.append("the endpoint does not stream; time-to-first-token will equal latency")
        if call.tokens_estimated:
            notes.append("the endpoint reports no token usage; token counts (and cost) will be estimated")
        return notes

    # -- one attempt
    async def _attempt(
        self, question: str, image_bytes: bytes | None, image_mime: str | None, headers: dict[str, str]
    ) -> _Attempt:
        stream = self._stream_supported
        attempt = await self._exchange_bounded(question, image_bytes, image_mime, headers, stream)
        if attempt.stream_options_refused:
            # Only the usage request was refused (older OpenAI-compatible servers): keep streaming,
            # which time-to-first-token needs, without it from now on (tokens are then estimated).
            self._stream_options_supported = False
            attempt = await self._exchange_bounded(question, image_bytes, image_mime, headers, stream)
        if attempt.stream_refused:
            # The server said it cannot stream: remember, and ask again at once (not a retry).
            self._stream_supported = False
            attempt = await self._exchange_bounded(question, image_bytes, image_mime, headers, False)
        return attempt

    async def _exchange_bounded(
        self, question: str, image_bytes: bytes | None, image_mime: str | None, headers: dict[str, str], stream: bool
    ) -> _Attempt:
        attempt = _Attempt(started=time.monotonic())
        cfg = self.config
        if cfg.api_style == "ollama":
            url = self._urls["chat_ollama"]
            body = ollama_body(cfg.api_model, question, image_bytes, stream, cfg.max_output_tokens)
        else:
            url = self._urls["chat_openai"]
            body = openai_body(cfg.api_model, question, image_bytes, image_mime, stream, cfg.max_output_tokens,
                               stream_usage=self._stream_options_supported)
        try:
            await _bounded(self._exchange(url, body, headers, stream, attempt), cfg.timeout_s)
        except asyncio.TimeoutError:
            self._fail(attempt, "timeout", f"no complete response within {cfg.timeout_s:g}s", True)
        except httpx.TimeoutException as exc:
            self._fail(attempt, "timeout", f"{type(exc).__name__} after {cfg.timeout_s:g}s", True)
        except httpx.DecodingError as exc:  # a corrupt gzip/deflate body: a bad response, as invalid JSON is
            self._fail(attempt, "malformed_response", f"undecodable response body: {_describe(exc)}", True)
        except httpx.ConnectError as exc:
            self._fail(attempt, "connection", f"cannot connect: {_describe(exc)}", True)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.NetworkError) as exc:
            self._fail(attempt, "connection", f"connection dropped: {_describe(exc)}", True)
        except httpx.TransportError as exc:  # proxy errors and the like
            self._fail(attempt, "connection", _describe(exc), True)
        except httpx.HTTPError as exc:  # invalid URL, unsupported protocol...: retrying cannot help
            self._fail(attempt, "connection", _describe(exc), False)
        except _TooLarge:
            self._fail(
                attempt,
                "malformed_response",
                f"response exceeded {cfg.max_response_bytes} bytes; stopped reading",
                False,
            )
        except MalformedResponse as exc:
            self._fail(attempt, "malformed_response", str(exc), exc.transient)
        except StreamErrorEvent as exc:
            status = exc.status
            attempt.error_status = status
            kind = "http_4xx" if status is not None and 400 <= status < 500 else "http_5xx"
            retryable = status is None or is_retryable_status(status)
            self._fail(attempt, kind, f"error from server: {exc}", retryable)
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeError) as exc:
            self._fail(attempt, "malformed_response", f"unreadable response ({type(exc).__name__})", True)
        except Exception as exc:  # never let one odd response kill a whole run
            log.debug("unexpected error talking to %s", cfg.base_url, exc_info=True)
            self._fail(attempt, "malformed_response", f"unexpected client error: {type(exc).__name__}: {exc}", False)
        if not attempt.ended:
            attempt.ended = time.monotonic()
        return attempt

    def _fail(self, attempt: _Attempt, kind: str, message: str, retryable: bool) -> None:
        attempt.ended = attempt.ended or time.monotonic()
        attempt.error_kind = kind
        attempt.error_message = self._scrub(message)
        attempt.retryable = retryable
        attempt.parsed = None

    async def _exchange(
        self, url: httpx.URL, body: dict[str, Any], headers: dict[str, str], stream: bool, attempt: _Attempt
    ) -> None:
        cfg = self.config
        async with self._client().stream("POST", url, json=body, headers=headers) as response:
            status = response.status_code
            attempt.http_status = status
            if status >= 400:
                try:
                    raw = await _read_prefix(response, ERROR_BODY_BYTES)
                    text = raw.decode("utf-8", errors="replace")
                except httpx.DecodingError:  # the status still says what happened
                    text = "(undecodable error body)"
                if stream and status in (400, 404, 422):
                    lowered = text.lower()
                    if "stream_options" in lowered and body.get("stream_options") is not None:
                        attempt.stream_options_refused = True
                        return
                    if _STREAM_WORD.search(lowered):
                        attempt.stream_refused = True
                        return
                attempt.ended = time.monotonic()
                kind = "http_5xx" if status >= 500 else "http_4xx"
                retry_after = parse_retry_after(response.headers.get("retry-after"), cfg.backoff_max_s)
                self._fail(attempt, kind, f"HTTP {status}: {self._error_message(text)}", is_retryable_status(status))
                attempt.retry_after_s = retry_after
                return
            if status >= 300 or status < 200:
                where = response.headers.get("location", "?")
                self._fail(attempt, "malformed_response", f"unexpected HTTP {status} (location: {where}); use the final URL as base URL", False)
                return
            content_type = response.headers.get("content-type", "").lower()
            limits = _Limits(cfg.max_response_bytes)
            ollama = cfg.api_style == "ollama"
            is_stream_body = (
                "text/event-stream" in content_type
                if not ollama
                else ("ndjson" in content_type or "jsonl" in content_type)
            )
            if stream and is_stream_body:
                parser = OllamaStreamParser() if ollama else OpenAIStreamParser()
                attempt.streamed = True
                await self._read_stream(response, parser, limits, attempt)
                attempt.parsed = parser.result
                return
            # A JSON body: we asked for it, or the server ignored stream=true.
            raw = await _read_all(response, limits)
            attempt.ended = time.monotonic()
            text = raw.decode("utf-8", errors="replace")
            attempt.parsed = parse_ollama_json(text) if ollama else parse_openai_json(text)
            if stream:
                self._stream_supported = False  # it answered stream=true with plain JSON: stop asking

    async def _read_stream(self, response: httpx.Response, parser: Any, limits: _Limits, attempt: _Attempt) -> None:
        buffer = bytearray()
        chunks = response.aiter_bytes()
        async for chunk in chunks:
            limits.add(len(chunk))
            buffer += chunk
            while True:
                newline = buffer.find(b"\n")
                if newline < 0:
                    break
                line = bytes(buffer[:newline]).rstrip(b"\r").decode("utf-8", errors="replace")
                del buffer[: newline + 1]
                if parser.feed_line(line) and attempt.first_token is None:
                    attempt.first_token = time.monotonic()
                if parser.result.done:
                    attempt.ended = time.monotonic()
                    await self._drain(chunks)
                    return
        if buffer:
            if parser.feed_line(bytes(buffer).decode("utf-8", errors="replace")) and attempt.first_token is None:
                attempt.first_token = time.monotonic()
        attempt.ended = time.monotonic()
        parser.finish()

    @staticmethod
    async def _drain(chunks: Any) -> None:
        """Read the stream's terminator so the connection can be reused; a server that
        keeps the stream open after its last event is simply closed (answer kept)."""

        async def rest() -> None:
            async for _ in chunks:
                pass

        try:
            await asyncio.wait_for(rest(), timeout=DRAIN_TIMEOUT_S)
        except (asyncio.TimeoutError, httpx.HTTPError):
            pass

    # -- results
    def _result(
        self,
        attempt: _Attempt,
        question: str,
        has_image: bool,
        attempts: int,
        retried: list[str],
        started: float,
    ) -> CallResult:
        total_ms = (time.monotonic() - started) * 1000.0
        if attempt.error_kind is not None or attempt.parsed is None:
            return CallResult(
                answer=None,
                latency_ms=attempt.elapsed_ms,
                ttft_ms=None,
                input_tokens=None,
                output_tokens=None,
                tokens_estimated=False,
                error_kind=attempt.error_kind or "malformed_response",
                error_message=attempt.error_message or "no response",
                attempts=attempts,
                http_status=attempt.http_status,
                retried_errors=list(retried),
                total_ms=total_ms,
                streamed=attempt.streamed,
                error_status=attempt.error_status if attempt.error_status is not None else (
                    attempt.http_status if attempt.http_status is not None and attempt.http_status >= 400 else None),
            )
        parsed = attempt.parsed
        text = self._redact(clean_text(parsed.text))  # a server that echoes the key must not get it stored
        estimated = parsed.input_tokens is None or parsed.output_tokens is None
        input_tokens = parsed.input_tokens if parsed.input_tokens is not None else estimate_input_tokens(question, has_image)
        output_tokens = parsed.output_tokens if parsed.output_tokens is not None else estimate_text_tokens(text)
        first = attempt.first_token
        if first is None and text:
            first = attempt.ended  # non-streaming: the first token arrives with the body
        return CallResult(
            answer=text,
            latency_ms=attempt.elapsed_ms,
            ttft_ms=None if first is None else (first - attempt.started) * 1000.0,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_estimated=estimated,
            error_kind=None,
            error_message=None,
            attempts=attempts,
            http_status=attempt.http_status,
            retried_errors=list(retried),
            total_ms=total_ms,
            streamed=attempt.streamed,
        )


def check_api_key_value(key: str, variable: str) -> None:
    """An HTTP header carries printable ASCII only: refuse another key with one line that does
    not show it (a non-ASCII key would otherwise fail deep inside httpx, on every request)."""
    if not key.isascii():
        raise LrcalError(
            f"the API key in ${variable} contains non-ASCII characters, which an HTTP header cannot carry; "
            "check the variable's value (a pasted key sometimes brings typographic quotes or dashes)"
        )
    if any(not ("!" <= ch <= "~") for ch in key):
        raise LrcalError(f"the API key in ${variable} contains spaces or control characters; check the variable's value")


async def _bounded(coro: Any, timeout_s: float) -> Any:
    """``coro`` with a total time limit (raises ``asyncio.TimeoutError``); ``asyncio.timeout``
    where available avoids the extra task ``wait_for`` creates per call."""
    timeout_cm = getattr(asyncio, "timeout", None)
    if timeout_cm is None:  # Python 3.10
        return await asyncio.wait_for(coro, timeout=timeout_s)
    async with timeout_cm(timeout_s):
        return await coro


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi CAs), built once per process: loading
    the CA bundle takes ~40 ms, which every new client would otherwise pay."""
    return httpx.create_ssl_context()


async def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


async def _read_all(response: httpx.Response, limits: _Limits) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        limits.add(len(chunk))
        data += chunk
    return bytes(data)


_SURROGATE = re.compile("[\ud800-\udfff]")
# An error about streaming itself names "stream" as a word: not "upstream" (a proxy's failure)
# nor "stream_options" (refused on its own, and answered by dropping it).
_STREAM_WORD = re.compile(r"(?<![a-z0-9_])stream(?:s|ing)?(?![a-z0-9_])")


def clean_text(text: str) -> str:
    """Text from a server as it can be stored: a lone surrogate (``"\\ud800"`` in JSON decodes to
    one, and UTF-8 cannot encode it) becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def error_detail(text: str, scrub: Callable[[str], str] | None = None) -> str:
    """The message inside an OpenAI/Ollama error body, else the body's start, at most 200
    characters. ``scrub`` is applied to the decoded message before it is cut (decoding can undo
    an escape that hid a secret from a scrub of the raw body)."""
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        error = obj.get("error", obj.get("detail", obj.get("message")))
        if isinstance(error, dict):
            error = error.get("message") or error
        if error:
            text = str(error)
    if scrub is not None:
        text = scrub(text)
    text = " ".join(text.split())
    return (text[:200] + "...") if len(text) > 200 else (text or "(empty body)")
