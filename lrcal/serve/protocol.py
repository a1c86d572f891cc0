"""The wire protocol of OpenAI- and Ollama-compatible model servers: what a backend answers,
how a chat request is parsed, and the JSON / SSE / NDJSON bodies that go back.

Requests: ``POST /v1/chat/completions`` (the image comes as a base64 ``data:`` URL content
part) and Ollama's ``POST /api/chat`` (raw base64 ``images``). Responses: OpenAI JSON with
``usage`` or SSE ``data:`` events (a final usage chunk when ``stream_options.include_usage``
is set, then ``data: [DONE]``); Ollama one JSON object or NDJSON lines, token counts and
durations in ns. Everything here is pure: no sockets, no clocks but the ``created`` stamps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, Protocol

MAX_REQUEST_BYTES = 64 * 1024 * 1024
STREAM_PIECE_CHARS = 65536  # long texts (the huge-body fault) are streamed in pieces this size

OPENAI = "openai"
OLLAMA = "ollama"
SSE_DONE = b"data: [DONE]\n\n"


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

    api: str  # OPENAI | OLLAMA
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

    def stream_content_type(self) -> str:
        return "text/event-stream" if self.api == OPENAI else "application/x-ndjson"


class BadRequest(Exception):
    """A request the server answers with an error status (400 unless said otherwise)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


# ---- request parsing -----------------------------------------------------------------

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S)


def _decode_b64(data: str, param: str) -> bytes:
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("image is not valid base64", param) from None


def decode_data_url(url: str) -> tuple[bytes, str | None]:
    """``data:image/png;base64,...`` → (bytes, mime). Raises on anything else."""
    match = _DATA_URL.match(url.strip())
    if not match:
        if url.startswith(("http://", "https://")):
            raise BadRequest("remote image URLs are not supported; send the image as a base64 data URL", "messages")
        raise BadRequest("image_url must be a base64 data URL (data:<mime>;base64,...)", "messages")
    return _decode_b64(match.group("data"), "messages"), match.group("mime")


def _last_user_message(messages: Any) -> dict:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list", "messages")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return message
    raise BadRequest("no user message in 'messages'", "messages")


def _positive_int_or_none(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"'{param}' must be a positive integer", param)
    return value


def _required_model(payload: Any, message: str) -> str:
    if not isinstance(payload, dict):
        raise BadRequest("request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(message, "model")
    return model


def _stream_flag(payload: dict, default: bool, message: str) -> bool:
    stream = payload.get("stream", default)
    if not isinstance(stream, bool):
        raise BadRequest(message, "stream")
    return stream


def _openai_content(content: Any) -> tuple[str, bytes | None, str | None]:
    """The question text and the first image (bytes, mime) of an OpenAI message content."""
    if isinstance(content, str):
        return content, None, None
    if not isinstance(content, list):
        raise BadRequest("message content must be a string or a list of parts", "messages")
    texts: list[str] = []
    image: bytes | None = None
    mime: str | None = None
    for part in content:
        if not isinstance(part, dict):
            raise BadRequest("content parts must be objects", "messages")
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str):
                raise BadRequest("image_url.url must be a string", "messages")
            if image is None:  # one image per question; extra images are ignored
                image, mime = decode_data_url(url)
        else:
            raise BadRequest(f"unsupported content part type: {kind!r}", "messages")
    return "\n".join(texts), image, mime


def parse_openai_request(payload: Any) -> ChatRequest:
    model = _required_model(payload, "'model' is required")
    question, image, mime = _openai_content(_last_user_message(payload.get("messages")).get("content"))
    stream = _stream_flag(payload, False, "'stream' must be a boolean")
    options = payload.get("stream_options") or {}
    include_usage = bool(options.get("include_usage")) if isinstance(options, dict) else False
    max_tokens = _positive_int_or_none(payload.get("max_completion_tokens", payload.get("max_tokens")), "max_tokens")
    return ChatRequest(OPENAI, model, question, image, mime, stream, include_usage, max_tokens)


def parse_ollama_request(payload: Any) -> ChatRequest:
    model = _required_model(payload, "model is required")
    message = _last_user_message(payload.get("messages"))
    content = message.get("content", "")
    if not isinstance(content, str):
        raise BadRequest("message content must be a string", "messages")
    images = message.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise BadRequest("images must be a list of base64 strings", "messages")
    image = _decode_b64(images[0], "messages") if images else None
    stream = _stream_flag(payload, True, "stream must be a boolean")  # Ollama streams unless told not to
    options = payload.get("options") or {}
    num_predict = options.get("num_predict") if isinstance(options, dict) else None
    max_tokens = num_predict if isinstance(num_predict, int) and not isinstance(num_predict, bool) and num_predict > 0 else None
    return ChatRequest(OLLAMA, model, content, image, None, stream, True, max_tokens)


def parse_chat_body(api: str, body: bytes) -> ChatRequest:
    """A chat request from the raw body of either API; ``BadRequest`` on anything malformed."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("request body is not valid JSON") from None
    return parse_openai_request(payload) if api == OPENAI else parse_ollama_request(payload)


# ---- response bodies -----------------------------------------------------------------


def stream_pieces(text: str) -> list[str]:
    """Split an answer into token-like pieces for streaming (whitespace kept)."""
    if len(text) > 4096:
        return [text[i : i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)]
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces.append(tail)
    return pieces or [text]


# A marker appended to an answer's text that json_bytes(corrupt_utf8=True) swaps for invalid
# UTF-8 bytes once the body is encoded (the non-UTF-8 fault).
NON_UTF8_MARK = "\u2063lrcal-non-utf8\u2063"
_NON_UTF8_BYTES = b"\xff\xfe\xc3(\xa0\xa1"


def json_bytes(obj: Any, corrupt_utf8: bool = False) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if corrupt_utf8:
        data = data.replace(NON_UTF8_MARK.encode("utf-8"), _NON_UTF8_BYTES)
    return data


def sse_event(obj: Any, corrupt_utf8: bool = False) -> bytes:
    return b"data: " + json_bytes(obj, corrupt_utf8) + b"\n\n"


def error_body(api: str, status: int, message: str, code: str | None = None, param: str | None = None) -> dict:
    if api == OLLAMA:
        return {"error": message}
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status == 429:
        kind = "rate_limit_exceeded"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def usage_block(answer: Answer, output_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": answer.input_tokens + output_tokens,
    }


@dataclass(frozen=True)
class OpenAICompletion:
    """The fixed fields of one OpenAI answer (its id, stamp and model) and its bodies."""

    cid: str
    created: int
    model: str

    def whole(self, text: str, finish: str, usage: dict[str, int] | None) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.cid,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
            ],
        }
        if usage is not None:
            obj["usage"] = usage
        return obj

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        return {"id": self.cid, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage}  # fmt: skip


def ollama_stamp() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def ollama_piece(model: str, content: str) -> dict[str, Any]:
    """One NDJSON line of an Ollama stream (not the last)."""
    return {"model": model, "created_at": ollama_stamp(), "message": {"role": "assistant", "content": content}, "done": False}


def ollama_final(model: str, content: str, ttft: float, total: float, usage: dict[str, int] | None,
                 done_reason: str = "stop") -> dict[str, Any]:
    """Ollama's final object: the whole answer (not streamed) or the closing line of a stream.
    ``done_reason`` "length" where ``options.num_predict`` cut the answer, as Ollama says it."""
    obj: dict[str, Any] = {
        "model": model,
        "created_at": ollama_stamp(),
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": done_reason,
        "total_duration": int(total * 1e9),
        "load_duration": 0,
    }
    if usage is not None:
        obj.update(
            prompt_eval_count=usage["prompt_tokens"],
            prompt_eval_duration=int(ttft * 1e9),
            eval_count=usage["completion_tokens"],
            eval_duration=int((total - ttft) * 1e9),
        )
    return obj


def partial_answer_chunk(request: ChatRequest, piece: str) -> bytes:
    """The first streamed piece of an answer, as sent before a fault strikes."""
    if request.api == OLLAMA:
        return json_bytes({"model": request.model, "message": {"role": "assistant", "content": piece}, "done": False}) + b"\n"
    chunk = {
        "id": "chatcmpl-partial",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}],
    }
    return sse_event(chunk)
