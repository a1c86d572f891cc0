"""A chat request as the gateway reads it: checked OpenAI-style (a 400 with a message for
anything malformed), its routing inputs (the last user message's text and images) and what it
needs from a model (image input).

Images come as ``image_url`` parts: a base64 ``data:`` URL (decoded here, its pixels feed the
router's features) or an http(s) URL (forwarded unchanged; the gateway fetches a copy for the
router's features, `lrcal.gateway.images`, and where that fails the router sees an image whose
pixels it does not know). Nothing is dropped: the body is forwarded as the client sent it, with
only ``model`` replaced.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from lrcal.gateway.errors import ApiError, bad_request
from lrcal.serve import decode_data_url

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
TEXT_PART = "text"
IMAGE_PART = "image_url"
LAMBDA_HEADERS = {"lambda_cost": "x-lrcal-lambda-cost", "lambda_latency": "x-lrcal-lambda-latency"}
TASK_HEADER = "x-lrcal-task"
MAX_TASK_CHARS = 64
# the query's metadata columns a router trained on outcome logs reads (as `lrcal route --meta`)
METADATA_HEADER = "x-lrcal-metadata"
MAX_METADATA_COLUMNS = 32
MAX_METADATA_CHARS = 4096


@dataclass
class ChatCall:
    body: dict  # the client's JSON object, forwarded with ``model`` replaced
    model: str
    stream: bool
    include_usage: bool  # the client asked for the usage chunk of a stream
    question: str  # the last user message's text: what the router reads
    images: list[Any] = field(default_factory=list)  # the last user message's images for the router (file-like)
    n_images: int = 0  # image parts in the whole conversation: a model without image input gets none
    # (index in ``images``, URL) of the last user message's http(s) images: fetched for the router
    remote_images: list[tuple[int, str]] = field(default_factory=list)
    route_metadata: dict[str, str] = field(default_factory=dict)  # `X-Lrcal-Metadata`: router input only

    @property
    def needs_images(self) -> bool:
        return self.n_images > 0

    # the client's body without the fields the gateway sets per attempt, encoded once by
    # `parse_chat` (so a body that cannot be encoded is the client's 400, never a model's failure)
    encoded_rest: bytes | None = field(default=None, repr=False)

    def upstream_json(self, api_model: str, *, stream: bool) -> bytes:
        """The body for one model: the client's, with ``model``, ``stream`` and ``stream_options`` set."""
        head: dict[str, Any] = {"model": api_model, "stream": stream}
        if stream:  # token counts for the log, whether or not the client asked for them
            options = self.body.get("stream_options")
            head["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        encoded_head = json.dumps(head, ensure_ascii=False).encode("utf-8")
        rest = self.encoded_rest if self.encoded_rest is not None else encode_body_rest(self.body)
        return encoded_head if rest == b"{}" else encoded_head[:-1] + b", " + rest[1:]


GATEWAY_FIELDS = ("model", "stream", "stream_options")
# Deeper than any real request (a JSON schema of tools or response_format included); past about
# 960 levels the encoder runs out of stack, which depends on where it is called from.
MAX_NESTING = 100


def encode_body_rest(body: dict) -> bytes:
    """``body`` without `GATEWAY_FIELDS`, as JSON (raises what `json.dumps` raises)."""
    return json.dumps({k: v for k, v in body.items() if k not in GATEWAY_FIELDS}, ensure_ascii=False).encode("utf-8")


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than ``limit`` levels (iterative: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _too_deep() -> ApiError:
    return bad_request(f"request body is nested deeper than {MAX_NESTING} levels of objects and arrays")


# a \uD800-\uDFFF escape (the regex starts with a literal, so a large body is scanned at C speed)
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD]([89a-fA-F])[0-9a-fA-F]{2}")


def has_unpaired_surrogate_escape(raw: bytes) -> bool:
    """True when an escaped high surrogate is not followed by a low one, or a low one is not
    preceded by a high one: only then can the parsed strings hold a lone surrogate (an escaped
    pair, as json.dumps writes every emoji, needs no second look at a large body). Requests
    here; answers in `lrcal.gateway.upstream`."""
    expect_low_at = -1
    for match in _ESCAPED_SURROGATE.finditer(raw):
        high = match.group(1) in b"89abAB"
        if high:
            if expect_low_at != -1:  # a high one after a high one
                return True
            expect_low_at = match.end()
        else:
            if match.start() != expect_low_at:
                return True
            expect_low_at = -1
    return expect_low_at != -1


def _has_lone_surrogate(payload: Any) -> bool:
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_chat(raw: bytes) -> ChatCall:
    try:
        payload = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request("request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise bad_request("request body must be a JSON object")
    # brackets, in strings or not, bound the depth: the walk is needed only past the limit
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and _nesting_exceeds(payload, MAX_NESTING):
        raise _too_deep()
    if has_unpaired_surrogate_escape(raw) and _has_lone_surrogate(payload):
        # valid JSON, but not text: it could not be sent upstream, logged or echoed back
        raise bad_request("request body holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff): not valid text")
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' is required: a model name, or the routing alias", "model")
    stream = payload.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", "stream")
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object", "stream_options")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list", "messages")
    n_images = 0
    last_user: tuple[str, list[Any]] | None = None
    for i, message in enumerate(messages):
        text, images, count = _read_message(message, f"messages[{i}]")
        n_images += count
        if message.get("role") == "user":
            last_user = (text, images)
    if last_user is None:
        raise bad_request("'messages' has no user message", "messages")
    images = [image for image, _url in last_user[1]]
    remote = [(i, url) for i, (_image, url) in enumerate(last_user[1]) if url is not None]
    try:
        encoded_rest = encode_body_rest(payload)
    except (ValueError, RecursionError):  # (deep nesting is refused above; this is the backstop)
        raise bad_request("request body cannot be re-encoded as JSON") from None
    return ChatCall(body=payload, model=model.strip(), stream=stream,
                    include_usage=bool((options or {}).get("include_usage")), question=last_user[0],
                    images=images, n_images=n_images, remote_images=remote, encoded_rest=encoded_rest)  # fmt: skip


def _read_message(message: Any, where: str) -> tuple[str, list[tuple[Any, str | None]], int]:
    """(text, images for the router with their URL where remote, image parts) of one message."""
    if not isinstance(message, dict):
        raise bad_request(f"{where} must be an object", "messages")
    role = message.get("role")
    if role not in ROLES:
        raise bad_request(f"{where}.role must be one of {', '.join(ROLES)}", "messages")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or "", [], 0
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of content parts", "messages")
    texts: list[str] = []
    images: list[Any] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise bad_request(f"{where}.content[{j}] must be an object", "messages")
        kind = part.get("type")
        if kind == TEXT_PART:
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{where}.content[{j}].text must be a string", "messages")
            texts.append(text)
        elif kind == IMAGE_PART:
            images.append(_image(part.get("image_url"), f"{where}.content[{j}]"))
        else:
            raise bad_request(f"{where}.content[{j}] has type {kind!r}: lrcal serve routes text and image_url "
                              "parts only", "messages")  # fmt: skip
    return "\n".join(texts), images, len(images)


def _image(ref: Any, where: str) -> tuple[Any, str | None]:
    """What the router reads for one image part, and its URL where remote: the decoded bytes of
    a data: URL; for an http(s) URL an empty stream until the gateway has fetched it (left
    empty, the features say: an image, pixels unknown)."""
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str) or not url:
        raise bad_request(f"{where}.image_url.url must be a string", "messages")
    if url.startswith(("http://", "https://")):
        return io.BytesIO(b""), url
    if not url.startswith("data:"):
        raise bad_request(f"{where}.image_url.url must be a data: URL or an http(s) URL", "messages")
    try:
        data, _mime = decode_data_url(url)
    except Exception as exc:  # serve's BadRequest: not base64, not a data URL
        raise bad_request(f"{where}.image_url: {getattr(exc, 'message', None) or exc}", "messages") from None
    if not data:
        raise bad_request(f"{where}.image_url holds an empty image", "messages")
    _check_image_header(data, f"{where}.image_url")
    return io.BytesIO(data), None


def _check_image_header(data: bytes, where: str) -> None:
    """A data: URL image must be one the models accept, with a header that opens and a size under
    the decompression-bomb limit (header only: a full decode would cost milliseconds a request;
    a body truncated after its header reaches the router as an unreadable image)."""
    from lrcal.calsets.images import ImageProblem, inspect_image_header

    try:
        inspect_image_header(data, where)
    except ImageProblem as exc:
        raise bad_request(exc.message, "messages") from None


def lambda_overrides(headers: Mapping[str, str]) -> dict[str, float]:
    """λ given by ``X-Lrcal-Lambda-Cost`` / ``X-Lrcal-Lambda-Latency`` (a finite number ≥ 0)."""
    out: dict[str, float] = {}
    for name, header in LAMBDA_HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise bad_request(f"header {header} must be a finite number >= 0 (got {value[:40]!r})")
        out[name] = number
    return out


def task_label(headers: Mapping[str, str]) -> str | None:
    """``X-Lrcal-Task``: the query's task group when the client knows it (a router input, as in `lrcal route --task`)."""
    value = headers.get(TASK_HEADER)
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_TASK_CHARS or not value.isprintable():
        raise bad_request(f"header {TASK_HEADER} must be a short printable label")
    return value


def routing_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """``X-Lrcal-Metadata``: a JSON object of the query's metadata columns (strings), for a router
    trained with them; never forwarded to a model."""
    value = headers.get(METADATA_HEADER)
    if value is None:
        return {}
    problem = f"header {METADATA_HEADER} must be a JSON object of at most {MAX_METADATA_COLUMNS} string values"
    if len(value) > MAX_METADATA_CHARS:
        raise bad_request(f"{problem} ({len(value)} characters; limit {MAX_METADATA_CHARS})")
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise bad_request(problem) from None
    if (not isinstance(parsed, dict) or len(parsed) > MAX_METADATA_COLUMNS
            or not all(isinstance(v, str) and k.strip() for k, v in parsed.items())):
        raise bad_request(problem)
    return {k.strip(): v for k, v in parsed.items()}


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body is larger than the limit of {limit:,} bytes", code="request_too_large")
