"""What one endpoint call produced: an answer or a classified failure, with timings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Every failure is recorded with one of these kinds (docs/endpoints.md explains each).
ERROR_KINDS = ("timeout", "http_4xx", "http_5xx", "connection", "malformed_response")


@dataclass
class CallResult:
    """The outcome of ``EndpointClient.complete``; never contains secrets.

    ``latency_ms`` and ``ttft_ms`` are measured on the final attempt, from the moment its
    request started (connection included) to the last byte / the first non-empty content
    token. ``total_ms`` spans every attempt and every back-off wait. Token counts are
    ``None`` when the call failed; ``tokens_estimated`` is True when the server sent no
    usage and the counts were estimated (see ``lrcal.endpoints.tokens``).
    """

    answer: str | None
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    tokens_estimated: bool
    error_kind: str | None
    error_message: str | None
    attempts: int
    http_status: int | None
    retried_errors: list[str] = field(default_factory=list)  # kinds of the failed attempts before the final one
    total_ms: float = 0.0
    streamed: bool = False  # the final attempt used a streaming response
    # the status the failure carries: the HTTP status, or the one inside an error event of a 200
    # stream (vLLM/LiteLLM send `data: {"error": {..., "code": 400}}`); None: none or no failure
    error_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
