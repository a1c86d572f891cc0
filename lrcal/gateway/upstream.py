"""One attempt at one model: the client's body forwarded (``model`` replaced), the answer or a
classified failure, with timings, tokens and cost.

A failure that is the endpoint's (timeout, refused or dropped connection, 5xx, 408/409/429,
401/403/404: a key or URL the endpoint does not accept, a status that is no answer such as a
redirect or 201, a malformed answer, NaN or Infinity included) lets the gateway fall back to the
next model; any other 4xx is the request's own fault and goes back to the client. Error text from an endpoint never carries its API key (`lrcal.endpoints.redact`).

A stream is opened up to its first event before the client sees anything, so that a model
failing at the start is still replaced by the next one; after that first event the gateway is
committed to that model (`StreamRelay`).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx

from lrcal.endpoints.client import check_api_key_value, clean_text, error_detail
from lrcal.endpoints.redact import REDACTED, redact
from lrcal.endpoints.retry import is_retryable_status
from lrcal.gateway.request import ChatCall, has_unpaired_surrogate_escape
from lrcal.gateway.routing import Upstream

MAX_RESPONSE_BYTES = 8 * 1024 * 1024
ENDPOINT_REFUSED = frozenset({401, 403, 404})  # the endpoint's configuration, not the request
SSE_DONE = b"data: [DONE]\n\n"


@dataclass
class Attempt:
    """One attempt at one model, as the log stores it (``traffic_attempts``)."""

    model: str
    reason: str  # why this model was tried: "first choice", "fallback after X: timeout", "named by the client"
    utility: float | None = None
    status_code: int | None = None
    error_kind: str | None = None
    error_message: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    fallback: bool = False  # the failure is the endpoint's: try the next model
    body: dict | None = field(default=None, repr=False)  # the non-streaming answer
    rendered: bytes = field(default=b"", repr=False)  # ``body`` as the client gets it
    answer: str = field(default="", repr=False)
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def fail(self, kind: str, message: str, *, fallback: bool, status: int | None = None) -> "Attempt":
        self.error_kind, self.error_message, self.fallback = kind, " ".join(message.split())[:300], fallback
        self.status_code = status if status is not None else self.status_code
        self.finish()
        return self

    def finish(self) -> None:
        self.latency_ms = (time.perf_counter() - self.started) * 1000.0

    def mark_first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000.0

    def row(self, request_id: str, number: int) -> dict:
        return {"request_id": request_id, "attempt": number, "model": self.model, "reason": self.reason,
                "utility": self.utility, "status_code": self.status_code, "error_kind": self.error_kind,
                "error_message": self.error_message, "latency_ms": self.latency_ms, "ttft_ms": self.ttft_ms,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "cost_usd": self.cost_usd}  # fmt: skip


def _scrub(text: str, up: Upstream) -> str:
    return redact(text, os.environ.get(up.api_key_env) if up.api_key_env else None)  # as stored and as sent


# a configured key this short is a placeholder ("EMPTY", "ollama"), not a secret: replacing it
# in an answer would only garble ordinary words
MIN_ANSWER_SECRET_CHARS = 16


def _scrub_answer(text: str, up: Upstream) -> str:
    """An answer on its way to the client, without the model's key if the endpoint echoed it: the
    exact key only (the logs get `_scrub`, which also takes encoded forms and any bearer token,
    and would change ordinary text such as "the standard bearer of")."""
    key = os.environ.get(up.api_key_env) if up.api_key_env else None
    if not key or len(key.strip()) < MIN_ANSWER_SECRET_CHARS:
        return text
    return text.replace(key.strip(), REDACTED)


def _error_message(raw: bytes, up: Upstream) -> str:
    # the key out before any cut (a key cut in two would no longer be recognised), and out of the
    # decoded message too: JSON decoding undoes escapes ("\u0073k-...") that hid it from the first
    return error_detail(_scrub(raw.decode("utf-8", errors="replace"), up)[:2000], scrub=lambda text: _scrub(text, up))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(raw: bytes | str) -> Any:
    """An endpoint's JSON, strictly: ``NaN`` and ``±Infinity`` (which Python's json writes and
    reads, and no JSON client accepts) raise ValueError, as any JSON that does not parse."""
    return json.loads(raw, parse_constant=_no_constant)


def render(body: Any) -> bytes:
    """JSON as the client gets it (as starlette's JSONResponse renders it)."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _as_text(value: Any, raw: bytes | str) -> Any:
    """Parsed JSON whose strings are all valid text: a lone surrogate (a legal JSON escape that
    no UTF-8 encoder takes) becomes U+FFFD (`clean_text`), so the answer can be re-sent and logged."""
    if not has_unpaired_surrogate_escape(raw if isinstance(raw, bytes) else raw.encode("utf-8", "replace")):
        return value

    def clean(item: Any) -> Any:
        if isinstance(item, str):
            return clean_text(item)
        if isinstance(item, list):
            return [clean(x) for x in item]
        if isinstance(item, dict):
            return {clean(k): clean(v) for k, v in item.items()}
        return item

    try:
        return clean(value)
    except RecursionError:  # nested deeper than any answer: treated like JSON that does not parse
        raise ValueError("the answer is nested too deeply") from None


def _count(value: Any) -> int | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 10_000_000
    return int(value) if ok else None


def _usage(attempt: Attempt, usage: Any, up: Upstream) -> None:
    if isinstance(usage, dict):
        attempt.input_tokens = _count(usage.get("prompt_tokens"))
        attempt.output_tokens = _count(usage.get("completion_tokens"))
        attempt.cost_usd = up.cost(attempt.input_tokens, attempt.output_tokens)


def _content(delta_or_message: Any) -> str:
    content = delta_or_message.get("content") if isinstance(delta_or_message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class Forwarder:
    """The gateway's HTTP client to every model (one connection pool; per-model limits are the
    gateway's semaphores)."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(
            transport=transport, timeout=None, follow_redirects=False, headers={"User-Agent": "lrcal-gateway"},
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.http.aclose()

    def _request(self, up: Upstream, call: ChatCall, stream: bool) -> httpx.Request:
        headers = {"Content-Type": "application/json"}
        key = (os.environ.get(up.api_key_env, "").strip() or None) if up.api_key_env else None
        if key:
            check_api_key_value(key, up.api_key_env or "")
            headers["Authorization"] = f"Bearer {key}"
        body = call.upstream_json(up.api_model, stream=stream)
        timeout = httpx.Timeout(up.timeout_s, connect=min(up.timeout_s, 10.0))
        return self.http.build_request("POST", up.chat_url, content=body, headers=headers, timeout=timeout)

    async def _send(self, attempt: Attempt, up: Upstream, call: ChatCall, stream: bool) -> httpx.Response | None:
        """The response with its status (body unread), or None after recording the failure."""
        try:
            request = self._request(up, call, stream)
            response = await asyncio.wait_for(self.http.send(request, stream=True), up.timeout_s)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            attempt.fail("timeout", f"no response within {up.timeout_s:g} s", fallback=True)
            return None
        except httpx.ConnectError as exc:
            attempt.fail("connection", _scrub(f"cannot connect: {exc or type(exc).__name__}", up), fallback=True)
            return None
        except (httpx.HTTPError, OSError) as exc:
            attempt.fail("connection", _scrub(f"{type(exc).__name__}: {exc}", up), fallback=True)
            return None
        except Exception as exc:  # the model's configuration: a key that cannot be sent (LrcalError), an unusable URL
            attempt.fail("connection", _scrub(str(exc), up), fallback=True)
            return None
        attempt.status_code = response.status_code
        if response.status_code == 200:
            return response
        try:
            raw = await asyncio.wait_for(_read(response, 64 * 1024), up.timeout_s)
        except Exception:  # noqa: BLE001 - the status is what counts
            raw = b""
        finally:
            await response.aclose()
        status = response.status_code
        if not 400 <= status < 500:  # 5xx, or no answer (a redirect, 201): the endpoint's fault, never the client's
            kind = "http_5xx" if status >= 500 else "malformed_response"
            attempt.fail(kind, _scrub(f"HTTP {status}: {_error_message(raw, up)}", up), fallback=True, status=status)
            return None
        fallback = is_retryable_status(status) or status in ENDPOINT_REFUSED
        attempt.fail("http_4xx", _scrub(f"HTTP {status}: {_error_message(raw, up)}", up), fallback=fallback, status=status)
        return None

    async def complete(self, up: Upstream, call: ChatCall, attempt: Attempt) -> Attempt:
        """A non-streaming answer: ``attempt.body`` is the endpoint's JSON with ``model`` = the model's name."""
        response = await self._send(attempt, up, call, stream=False)
        if response is None:
            return attempt
        try:
            raw = await asyncio.wait_for(_read(response, MAX_RESPONSE_BYTES), up.timeout_s)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            return attempt.fail("timeout", f"no complete response within {up.timeout_s:g} s", fallback=True)
        except _TooLarge:
            return attempt.fail("malformed_response", f"response larger than {MAX_RESPONSE_BYTES:,} bytes", fallback=True)
        except httpx.HTTPError as exc:
            return attempt.fail("connection", _scrub(f"connection dropped: {type(exc).__name__}", up), fallback=True)
        finally:
            await response.aclose()
        try:
            body = _as_text(_loads(raw), raw)
            message = body["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            return attempt.fail("malformed_response", "the answer is not an OpenAI chat completion", fallback=True)
        if not isinstance(body, dict) or "error" in body:
            return attempt.fail("malformed_response", _scrub(_error_message(raw, up), up), fallback=True)
        if not isinstance(message, dict):
            return attempt.fail("malformed_response", "the answer's message is not an object", fallback=True)
        if isinstance(message.get("content"), str):  # an endpoint that echoes the key: not to the client either
            message["content"] = _scrub_answer(message["content"], up)
        attempt.answer = _scrub(_content(message), up)
        _usage(attempt, body.get("usage"), up)
        body["model"] = up.name
        try:  # rendered here, so that a success is only logged for what the client can be sent
            attempt.rendered = render(body)
        except (ValueError, RecursionError):
            return attempt.fail("malformed_response", "the answer cannot be re-encoded as JSON", fallback=True)
        attempt.body = body
        attempt.finish()
        attempt.ttft_ms = attempt.latency_ms
        return attempt

    async def open_stream(self, up: Upstream, call: ChatCall, attempt: Attempt) -> "StreamRelay | None":
        """The stream, read up to its first event; None after recording a failure (fall back)."""
        response = await self._send(attempt, up, call, stream=True)
        if response is None:
            return None
        relay = StreamRelay(response, up, call, attempt)
        try:
            await asyncio.wait_for(relay.prime(), up.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure before the first event: the next model
            await response.aclose()
            kind, message = relay.classify(exc)
            attempt.fail(kind, message, fallback=True)
            return None
        except asyncio.CancelledError:  # the client left: the model's request is closed at once
            await response.aclose()
            raise
        return relay


class _TooLarge(Exception):
    pass


async def _read(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            raise _TooLarge()
    return bytes(data)


class StreamError(Exception):
    """The endpoint reported an error inside its stream, or broke the protocol."""


class StreamRelay:
    """An open upstream stream, re-sent to the client event by event with ``model`` set to the
    model's name; usage, answer text and time to first token are recorded on the attempt. The
    usage chunk reaches the client only if it asked for it (``stream_options.include_usage``)."""

    def __init__(self, response: httpx.Response, up: Upstream, call: ChatCall, attempt: Attempt) -> None:
        self.response, self.up, self.call, self.attempt = response, up, call, attempt
        self._events = self._upstream_events()
        self._first: bytes | None = None
        self.done = False
        self.json_answer = False

    async def _upstream_events(self) -> AsyncIterator[str]:
        """The data of each server-sent event; a plain JSON answer (a server that does not
        stream) becomes one event."""
        if "text/event-stream" not in self.response.headers.get("content-type", ""):
            self.json_answer = True
            yield (await _read(self.response, MAX_RESPONSE_BYTES)).decode("utf-8", errors="replace")
            yield "[DONE]"
            return
        data: list[str] = []
        async for line in self.response.aiter_lines():
            if line == "":
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
        if data:
            yield "\n".join(data)

    def _event(self, data: str) -> bytes | None:
        """The event to send on (None: nothing to send); raises StreamError on an error event."""
        if data.strip() == "[DONE]":
            self.done = True
            return SSE_DONE
        try:
            obj = _as_text(_loads(data), data)
        except (ValueError, RecursionError):
            raise StreamError("a stream event is not JSON") from None
        if not isinstance(obj, dict):
            raise StreamError("a stream event is not a JSON object")
        if "error" in obj:
            raise StreamError(_scrub(_error_message(data.encode(), self.up), self.up))
        choices = obj.get("choices")
        if choices is not None and not (isinstance(choices, list) and all(
                isinstance(c, dict) and isinstance(c.get("delta" if not self.json_answer else "message") or {}, dict)
                for c in choices)):  # fmt: skip
            raise StreamError("a stream event is not a chat completion chunk")
        if self.json_answer:  # a whole completion: send it as one chunk
            if not choices or not isinstance(choices[0].get("message"), dict):
                raise StreamError("the answer is not an OpenAI chat completion")
            message = choices[0]["message"]
            obj = {**obj, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": _content(message)},
                                "finish_reason": choices[0].get("finish_reason") or "stop"}]}  # fmt: skip
        _usage(self.attempt, obj.get("usage"), self.up) if obj.get("usage") else None
        choices = obj.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                # a key echoed in one piece is removed (one split across pieces cannot be seen here)
                delta["content"] = _scrub_answer(delta["content"], self.up)
            piece = _content(delta)
            if piece:
                self.attempt.mark_first_token()
                self.attempt.answer += piece
        if not choices and obj.get("usage") is not None and not self.call.include_usage:
            return None
        obj["model"] = self.up.name
        try:
            return b"data: " + render(obj) + b"\n\n"
        except (ValueError, RecursionError):
            raise StreamError("a stream event cannot be re-encoded as JSON") from None

    async def prime(self) -> None:
        """Read up to the first event worth sending (raises on a failure before it)."""
        async for data in self._events:
            event = self._event(data)
            if event is not None:
                self._first = event
                return
        raise StreamError("the stream ended before its first event")

    def classify(self, exc: BaseException) -> tuple[str, str]:
        if isinstance(exc, (asyncio.TimeoutError, httpx.TimeoutException)):
            return "timeout", f"no stream event within {self.up.timeout_s:g} s"
        if isinstance(exc, StreamError):
            return "stream_error", str(exc)
        if isinstance(exc, httpx.HTTPError):
            return "connection", _scrub(f"connection dropped: {type(exc).__name__}", self.up)
        return "stream_error", _scrub(f"{type(exc).__name__}: {exc}", self.up)

    async def events(self) -> AsyncIterator[bytes]:
        """Every event for the client; on a failure after the start, one error event, then the end."""
        if self._first is not None:
            yield self._first
        try:
            async for data in self._events:
                event = self._event(data)
                if event is not None:
                    yield event
                if self.done:
                    break
            if not self.done:
                raise StreamError("the stream ended before [DONE]")
            self.attempt.finish()
        except (StreamError, httpx.HTTPError, asyncio.TimeoutError) as exc:
            kind, message = self.classify(exc)
            self.attempt.fail(kind, f"after the stream started: {message}", fallback=False)
            error = {"error": {"message": f"model {self.up.name} failed after the stream started ({kind}): {message}",
                               "type": "server_error", "param": None, "code": "upstream_stream_error"}}  # fmt: skip
            yield b"data: " + json.dumps(error).encode("utf-8") + b"\n\n"

    async def aclose(self) -> None:
        await self.response.aclose()
