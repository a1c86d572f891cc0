"""Fault injection: a :class:`FaultInjector` (the simulator's chaos hooks) may replace any
response by a protocol fault, and this module sends each fault on the wire.

The faults: HTTP 5xx, 429 with ``Retry-After``, permanent 4xx, a reset connection, a stall
after headers, invalid JSON, a stream without ``[DONE]``, a huge body, non-UTF-8 bytes and a
missing usage block. Their mechanics live here so that every server built on
:class:`lrcal.serve.ModelServer` can inject them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from lrcal.serve.protocol import OPENAI, SSE_DONE, Answer, Backend, ChatRequest, partial_answer_chunk, stream_pieces
from lrcal.serve.responses import ResponseWriter, send_answer


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
_BROKEN_JSON = b'{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"content":"Th'
_PARTIAL_JSON = b'{"id":"chatcmpl-partial","choices":[{"index":0,"message":{"content":"'
_FILLER = "lorem ipsum dolor sit amet "


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    retry_after: str | None = "1"  # header value sent with 429 (and 503)
    stall_s: float = 75.0  # how long STALL / NO_DONE keep the connection silent
    huge_bytes: int = 2 * 1024 * 1024


class FaultInjector(Protocol):
    def decide(self, request: ChatRequest) -> Fault | None: ...


def send_fault(out: ResponseWriter, backend: Backend, request: ChatRequest, fault: Fault, t0: float) -> None:
    """Answer ``request`` with ``fault`` instead of a well-formed response."""
    kind = fault.kind
    if kind in HTTP_FAULT_STATUS:
        _send_http_fault(out, request, fault)
    elif kind in (FaultKind.NON_UTF8, FaultKind.MISSING_USAGE):
        answer = backend.answer(request.model, request.question, request.image_bytes)
        send_answer(out, request, answer, t0, with_usage=kind is not FaultKind.MISSING_USAGE,
                    corrupt_utf8=kind is FaultKind.NON_UTF8)  # fmt: skip
    elif kind is FaultKind.HUGE_BODY:
        text = _FILLER * (fault.huge_bytes // len(_FILLER) + 1)
        send_answer(out, request, Answer(text, 10, len(text) // 4, 0.0, 0.0), t0)
    elif kind is FaultKind.INVALID_JSON:
        _send_invalid_json(out, request)
    else:
        _send_broken_response(out, backend, request, fault)


def _send_http_fault(out: ResponseWriter, request: ChatRequest, fault: Fault) -> None:
    status = HTTP_FAULT_STATUS[fault.kind]
    headers = {"Retry-After": fault.retry_after} if fault.retry_after and status in (429, 503) else None
    message = _FAULT_MESSAGES.get(status, f"simulated upstream failure ({status})")
    out.send_error(status, message, api=request.api, headers=headers)


def _send_invalid_json(out: ResponseWriter, request: ChatRequest) -> None:
    if not request.stream:
        out.send_json(200, None, raw=_BROKEN_JSON)
        return
    openai = request.api == OPENAI
    out.start_stream(request.stream_content_type())
    out.chunk((b"data: " + _BROKEN_JSON + b"\n\n") if openai else _BROKEN_JSON + b"\n")
    if openai:
        out.chunk(SSE_DONE)
    out.end_stream()


def _send_broken_response(out: ResponseWriter, backend: Backend, request: ChatRequest, fault: Fault) -> None:
    """A 200 that then misbehaves on the wire: silence (stall), or part of an answer followed
    by a reset connection or by silence without the end of the stream."""
    if request.stream:
        out.start_stream(request.stream_content_type())
    else:
        out.send_head(200, "application/json", 4096)  # a length the body never reaches
    if fault.kind is FaultKind.STALL:
        out.wait(fault.stall_s)
        out.close_after()
        return
    answer = backend.answer(request.model, request.question, request.image_bytes)
    partial = partial_answer_chunk(request, stream_pieces(answer.text)[0])
    if request.stream:
        out.chunk(partial)
    else:
        out.wfile.write(_PARTIAL_JSON)
    if fault.kind is FaultKind.RESET:
        out.reset_connection()
    elif fault.kind is FaultKind.NO_DONE:
        out.wait(fault.stall_s)
        out.close_after()
    else:  # pragma: no cover - every kind is handled above
        raise AssertionError(fault.kind)
