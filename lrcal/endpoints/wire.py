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
) -> dict[str, Any]:
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
    if stream:
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


def _error_status(error: Any) -> int | None:
    if isinstance(error, dict):
        for key in ("code", "status", "status_code"):
            value = error.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
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
        if "error" in chunk:
            error = chunk["error"]
            raise StreamErrorEvent(_error_text(error), _error_status(error))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.result.input_tokens = _int_or_none(usage.get("prompt_tokens"))
            self.result.output_tokens = _int_or_none(usage.get("completion_tokens"))
        had_content = bool(self.result.parts)
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                text = _content_text(delta.get("content")) if isinstance(delta, dict) else ""
                if text:
                    self.result.parts.append(text)
                if choice.get("finish_reason"):
                    self.result.finish_reason = str(choice["finish_reason"])
        return not had_content and bool(self.result.parts)


def parse_openai_json(text: str) -> ParsedResponse:
    obj = _load_json(text, "response body")
    if not isinstance(obj, dict):
        raise MalformedResponse("response body is not a JSON object", transient=False)
    if "error" in obj:
        raise StreamErrorEvent(_error_text(obj["error"]), _error_status(obj["error"]))
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("response has no choices", transient=False)
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("response choice has no message", transient=False)
    result = ParsedResponse(parts=[_content_text(message.get("content"))], done=True)
    result.finish_reason = choices[0].get("finish_reason")
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
        if "error" in obj:
            raise StreamErrorEvent(_error_text(obj["error"]), _error_status(obj))
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
