"""Writing responses on one HTTP connection: JSON bodies, chunked streams, and answers
paced to their timing targets.

A backend's :class:`Answer` carries *target* timings measured from the moment the request
arrived: the first token never goes out before ``ttft_s`` nor the last byte before
``total_s``. A backend that really computes returns the time it took (or zero) and is
streamed at once. Pacing waits wake up early when the server stops (``Aborted``).
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from lrcal.serve.protocol import (
    NON_UTF8_MARK,
    OLLAMA,
    SSE_DONE,
    Answer,
    ChatRequest,
    OpenAICompletion,
    error_body,
    json_bytes,
    ollama_final,
    ollama_piece,
    sse_event,
    stream_pieces,
    usage_block,
)


# Characters per token: the estimate lrcal.endpoints makes (``CHARS_PER_TOKEN``) and the local
# model's usage counts, written here because lrcal.serve imports no other unit.
CHARS_PER_TOKEN = 4


class Aborted(Exception):
    """The server is stopping: abandon the response."""


class ResponseWriter:
    """The response side of one request: status lines, headers and (chunked) bodies.

    ``wait(seconds)`` sleeps up to that long and returns True early when the server stops.
    """

    def __init__(self, handler: BaseHTTPRequestHandler, wait: Callable[[float], bool]) -> None:
        self.handler = handler
        self.wait = wait

    @property
    def wfile(self):
        return self.handler.wfile

    def close_after(self) -> None:
        """End the connection once this response is done (no keep-alive)."""
        self.handler.close_connection = True

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json_bytes(obj)
        self.send_head(status, "application/json", len(data), headers)
        self.wfile.write(data)

    def send_head(self, status: int, content_type: str, length: int, headers: dict[str, str] | None = None) -> None:
        """Status line and headers of a body of ``length`` bytes."""
        handler = self.handler
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(length))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()

    def send_error(
        self,
        status: int,
        message: str,
        *,
        api: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_json(status, error_body(api, status, message, code, param), headers)

    def start_stream(self, content_type: str, first_chunk: bytes = b"") -> None:
        handler = self.handler
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        buffer = getattr(handler, "_headers_buffer", None)  # stdlib internals: headers pending
        if first_chunk and isinstance(buffer, list):  # the headers and the first chunk in one write
            buffer.append(b"\r\n")
            buffer.append(b"%x\r\n%s\r\n" % (len(first_chunk), first_chunk))
            handler.flush_headers()
            return
        handler.end_headers()
        self.chunk(first_chunk)

    def chunk(self, data: bytes, last: bool = False) -> None:
        """One chunk of a chunked body; ``last`` also ends the body (same write)."""
        out = b"%x\r\n%s\r\n" % (len(data), data) if data else b""
        if last:
            out += b"0\r\n\r\n"
        if out:
            self.wfile.write(out)

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def sleep_until(self, deadline: float) -> None:
        if self.wait(deadline - time.monotonic()):
            raise Aborted()

    def reset_connection(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0), as a crashed proxy or server does."""
        self.close_after()
        try:
            self.handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.handler.connection.close()
        except OSError:
            pass


class PacedAnswer:
    """One answer as it goes out: text, usage and timing targets relative to ``t0``."""

    def __init__(
        self,
        request: ChatRequest,
        answer: Answer,
        t0: float,
        *,
        with_usage: bool = True,
        corrupt_utf8: bool = False,
        cut_to_max_tokens: bool = False,
    ) -> None:
        self.request = request
        self.t0 = t0
        self.corrupt_utf8 = corrupt_utf8
        output_tokens = answer.output_tokens
        text = answer.text
        self.finish = "stop"
        if request.max_tokens is not None and output_tokens > request.max_tokens:
            output_tokens, self.finish = request.max_tokens, "length"
            if cut_to_max_tokens:
                # cut where the tokens counted end, as a model stopped by max_tokens does: the
                # text keeps what the usual estimate counts as max_tokens tokens
                text = text[: request.max_tokens * CHARS_PER_TOKEN]
        self.text = text + (NON_UTF8_MARK if corrupt_utf8 else "")
        self.ttft = max(0.0, answer.ttft_s)
        self.total = max(self.ttft, answer.total_s)
        self.usage = usage_block(answer, output_tokens) if with_usage else None

    def at(self, share: float) -> float:
        """The deadline of a point ``share`` of the way from the first token to the last."""
        return self.t0 + self.ttft + (self.total - self.ttft) * share

    @property
    def first_token_at(self) -> float:
        return self.t0 + self.ttft

    @property
    def done_at(self) -> float:
        return self.t0 + self.total


def send_answer(
    out: ResponseWriter,
    request: ChatRequest,
    answer: Answer,
    t0: float,
    *,
    with_usage: bool = True,
    corrupt_utf8: bool = False,
    cut_to_max_tokens: bool = False,
) -> None:
    """Send ``answer`` in the request's API and mode (whole or streamed), paced to its targets.

    ``cut_to_max_tokens``: when the answer has more tokens than the request's ``max_tokens``,
    send only the text of the tokens counted (what a model stopped by ``max_tokens`` sends; the
    server's answers). Off, the whole text goes out with the capped count and finish_reason
    "length" (the huge-body fault: a server that ignores ``max_tokens``)."""
    paced = PacedAnswer(
        request, answer, t0, with_usage=with_usage, corrupt_utf8=corrupt_utf8, cut_to_max_tokens=cut_to_max_tokens
    )
    if request.api == OLLAMA:
        (_stream_ollama if request.stream else _send_whole_ollama)(out, paced)
    else:
        (_stream_openai if request.stream else _send_whole_openai)(out, paced)


def _openai_completion(request: ChatRequest) -> OpenAICompletion:
    return OpenAICompletion("chatcmpl-" + uuid.uuid4().hex[:24], int(time.time()), request.model)


def _send_whole_openai(out: ResponseWriter, paced: PacedAnswer) -> None:
    completion = _openai_completion(paced.request)
    out.sleep_until(paced.done_at)
    obj = completion.whole(paced.text, paced.finish, paced.usage)
    out.send_json(200, obj, raw=json_bytes(obj, paced.corrupt_utf8))


def _stream_openai(out: ResponseWriter, paced: PacedAnswer) -> None:
    completion = _openai_completion(paced.request)
    corrupt = paced.corrupt_utf8

    def event(delta: dict, finish_reason: str | None = None) -> bytes:
        return sse_event(completion.chunk(delta, finish_reason), corrupt)

    out.start_stream("text/event-stream", first_chunk=event({"role": "assistant", "content": ""}))
    pieces = stream_pieces(paced.text)
    for i, piece in enumerate(pieces[:-1]):
        out.sleep_until(paced.at(i / (len(pieces) - 1)))
        out.chunk(event({"content": piece}))
    # The last piece, the finish event, usage and [DONE] go out in one write.
    tail = [event({"content": pieces[-1]})] if len(pieces) > 1 else []
    out.sleep_until(paced.done_at if len(pieces) > 1 else paced.first_token_at)
    if len(pieces) == 1:
        out.chunk(event({"content": pieces[0]}))
        out.sleep_until(paced.done_at)
    tail.append(event({}, paced.finish))
    if paced.usage is not None and paced.request.include_usage:
        tail.append(sse_event(completion.usage_chunk(paced.usage)))
    tail.append(SSE_DONE)
    out.chunk(b"".join(tail), last=True)


def _send_whole_ollama(out: ResponseWriter, paced: PacedAnswer) -> None:
    out.sleep_until(paced.done_at)
    obj = ollama_final(paced.request.model, paced.text, paced.ttft, paced.total, paced.usage, paced.finish)
    out.send_json(200, obj, raw=json_bytes(obj, paced.corrupt_utf8))


def _stream_ollama(out: ResponseWriter, paced: PacedAnswer) -> None:
    model = paced.request.model
    out.start_stream("application/x-ndjson")
    pieces = stream_pieces(paced.text)
    for i, piece in enumerate(pieces):
        out.sleep_until(paced.at(i / (len(pieces) - 1) if len(pieces) > 1 else 0.0))
        out.chunk(json_bytes(ollama_piece(model, piece), paced.corrupt_utf8) + b"\n")
    out.sleep_until(paced.done_at)
    out.chunk(json_bytes(ollama_final(model, "", paced.ttft, paced.total, paced.usage, paced.finish)) + b"\n",
              last=True)
