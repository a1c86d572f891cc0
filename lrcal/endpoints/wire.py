"""Request bodies and response parsers for the OpenAI and Ollama chat APIs.

Parsers are incremental and pure: the client feeds them decoded lines as bytes arrive and
asks whether a line produced the first non-empty content (time-to-first-token).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

from lrcal.image_formats import IMAGE_MIME_TYPES, sniff_format


class MalformedResponse(Exception):
    """The server answered, but not in the protocol. ``transient`` ones are retried."""

    def __init__(self, message: str, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class StreamErrorEvent(Exception):
    """The server reported an error inside a 200 stream (vLLM and Ollama do this)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


def sniff_image_mime(data: bytes) -> str:
    """The MIME type of an image from its magic bytes; PNG when they name no known format."""
    return IMAGE_MIME_TYPES[sniff_format(data) or "PNG"]


def openai_body(
    model: str,
    question: str,
    image_bytes: bytes | None,
    image_mime: str | None,
    stream: bool,
    max_tokens: int,
    stream_usage: bool = True,
) -> dict[str, Any]:
    """``stream_usage`` False: no ``stream_options`` (for servers that refuse it)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": question}]
    if image_bytes is not None:
        mime = image_mime or sniff_image_mime(image_bytes)
        data_url = f"data:{mime};base64," + base64.b64encode(image_bytes).decode("ascii")
        content.append({"type": "image_url", "image_url": {"url": data_url}})
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }
    if stream and stream_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def ollama_body(model: str, question: str, image_bytes: bytes | None, stream: bool, max_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "user", "content": question}
    if image_bytes is not None:
        message["images"] = [base64.b64encode(image_bytes).decode("ascii")]
    return {
        "model": model,
        "messages": [message],
        "stream": stream,
        "options": {"temperature": 0, "num_predict": max_tokens},
    }


# Error codes and types that servers put in an error object instead of (or besides) a number,
# as the HTTP status they stand for: OpenAI's codes and types, the exception names vLLM and
# LiteLLM send as "type", Anthropic's types. Only 408/409/429/5xx among them are retried.
_ERROR_NAME_STATUS = {
    "invalid_request_error": 400, "context_length_exceeded": 400, "invalid_value": 400,
    "invalid_image": 400, "invalid_image_format": 400, "image_parse_error": 400, "invalid_image_url": 400,
    "unsupported_value": 400, "unsupported_parameter": 400, "string_above_max_length": 400,
    "content_policy_violation": 400, "content_filter": 400, "badrequesterror": 400,
    "contextwindowexceedederror": 400, "unprocessableentityerror": 422,
    "invalid_api_key": 401, "authentication_error": 401, "authenticationerror": 401,
    "permission_error": 403, "permissiondeniederror": 403, "insufficient_quota": 403,
    "model_not_found": 404, "not_found_error": 404, "notfounderror": 404,
    "rate_limit_exceeded": 429, "rate_limit_error": 429, "ratelimiterror": 429,
    "server_error": 500, "api_error": 500, "internalservererror": 500,
    "overloaded_error": 503, "serviceunavailableerror": 503,
}  # fmt: skip


def _status_number(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())  # "code": "400"
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    return None


def _error_status(error: Any) -> int | None:
    """The HTTP status an in-body error stands for: a number (or numeric string) under code,
    status or status_code, else a known error code or type; None when it names none."""
    if not isinstance(error, dict):
        return None
    for key in ("code", "status", "status_code"):
        status = _status_number(error.get(key))
        if status is not None:
            return status
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and value.strip().lower() in _ERROR_NAME_STATUS:
            return _ERROR_NAME_STATUS[value.strip().lower()]
    return None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise MalformedResponse(f"{what} is not valid JSON") from None


# Token counts are untrusted input: a count no model can produce (the largest context windows
# hold a few million tokens) is treated as absent, and the client estimates it instead.
MAX_TOKEN_COUNT = 10_000_000


def _int_or_none(value: Any) -> int | None:
    """A token count from the server, or None when it is missing, negative, not finite or absurd."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 <= value <= MAX_TOKEN_COUNT:
        return None
    return int(value)


@dataclass
class ParsedResponse:
    """What a parser extracted; the client adds timings and token estimates."""

    parts: list[str] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    done: bool = False

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers return content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class OpenAIStreamParser:
    """Server-sent events: ``data: {chunk}`` events, then ``data: [DONE]``."""

    def __init__(self) -> None:
        self.result = ParsedResponse()
        self._data: list[str] = []

    def feed_line(self, line: str) -> bool:
        """Feed one line (without its newline); True when it produced the first content."""
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return False  # SSE comment / keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return False

    def finish(self) -> None:
        self._dispatch()
        if not self.result.done and self.result.finish_reason is None:
            raise MalformedResponse("stream ended before [DONE]")
        self.result.done = True

    def _dispatch(self) -> bool:
        if not self._data:
            return False
        data = "\n".join(self._data)
        self._data = []
        if data.strip() == "[DONE]":
            self.result.done = True
            return False
        chunk = _load_json(data, "stream event")
        if not isinstance(chunk, dict):
            raise MalformedResponse("stream event is not a JSON object")
        error = chunk.get("error")
        if error:  # "error": null (or {}) beside an answer is no error
            raise StreamErrorEvent(_error_text(error), _error_status(error))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.result.input_tokens = _int_or_none(usage.get("prompt_tokens"))
            self.result.output_tokens = _int_or_none(usage.get("completion_tokens"))
        had_content = bool(self.result.parts)
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or not _is_first_choice(choice):
                    continue
                delta = choice.get("delta")
                text = _content_text(delta.get("content")) if isinstance(delta, dict) else ""
                if text:
                    self.result.parts.append(text)
                if choice.get("finish_reason"):
                    self.result.finish_reason = str(choice["finish_reason"])
        return not had_content and bool(self.result.parts)


def _is_first_choice(choice: dict) -> bool:
    """The choice of index 0: the index missing, null or "0" too (servers write all three for
    the only choice there is)."""
    index = choice.get("index")
    return index is None or index == 0 or (isinstance(index, str) and index.strip() == "0")


def parse_openai_json(text: str) -> ParsedResponse:
    obj = _load_json(text, "response body")
    if not isinstance(obj, dict):
        raise MalformedResponse("response body is not a JSON object", transient=False)
    error = obj.get("error")
    if error:  # "error": null (or {}) beside an answer is no error
        raise StreamErrorEvent(_error_text(error), _error_status(error))
    choices = obj.get("choices")
    # the choice with index 0 (as the stream parser), wherever the server lists it
    choice = next((c for c in choices if isinstance(c, dict) and _is_first_choice(c)), None) if isinstance(
        choices, list) else None  # fmt: skip
    if choice is None:
        raise MalformedResponse("response has no choices", transient=False)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("response choice has no message", transient=False)
    result = ParsedResponse(parts=[_content_text(message.get("content"))], done=True)
    result.finish_reason = choice.get("finish_reason")
    usage = obj.get("usage")
    if isinstance(usage, dict):
        result.input_tokens = _int_or_none(usage.get("prompt_tokens"))
        result.output_tokens = _int_or_none(usage.get("completion_tokens"))
    return result


class OllamaStreamParser:
    """Ollama's NDJSON stream: one JSON object a line, the last with ``done: true``."""

    def __init__(self) -> None:
        self.result = ParsedResponse()

    def feed_line(self, line: str) -> bool:
        if not line.strip():
            return False
        return self.feed_object(_load_json(line, "stream line"))

    def feed_object(self, obj: Any) -> bool:
        if not isinstance(obj, dict):
            raise MalformedResponse("stream line is not a JSON object")
        error = obj.get("error")
        if error:  # "error": null beside an answer is no error
            raise StreamErrorEvent(_error_text(error), _error_status(error) or _error_status(obj))
        had_content = bool(self.result.parts)
        message = obj.get("message")
        if isinstance(message, dict):
            text = _content_text(message.get("content"))
            if text:
                self.result.parts.append(text)
        if obj.get("done") is True:
            self.result.done = True
            self.result.finish_reason = str(obj.get("done_reason") or "stop")
            self.result.input_tokens = _int_or_none(obj.get("prompt_eval_count"))
            self.result.output_tokens = _int_or_none(obj.get("eval_count"))
        return not had_content and bool(self.result.parts)

    def finish(self) -> None:
        if not self.result.done:
            raise MalformedResponse("stream ended before the final 'done' line")


def parse_ollama_json(text: str) -> ParsedResponse:
    parser = OllamaStreamParser()
    parser.feed_object(_load_json(text, "response body"))
    parser.finish()
    return parser.result
