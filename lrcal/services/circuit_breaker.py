"""Stop a run early when every request fails the same way for a reason that retrying cannot fix.

A wrong API key (HTTP 401/403), a wrong base URL or model name (HTTP 404) or an endpoint that
is not there (connection refused, unknown host) fails every request. Without a breaker a run
spends its retries on each example in turn (64 refused connections took 17 s of back-off). The
breaker watches every *attempt* and opens after ``threshold`` consecutive attempts that failed
with the same persistent cause; any other attempt (an answer, a timeout, a 5xx) closes it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lrcal.errors import LrcalError

DEFAULT_THRESHOLD = 8  # two rounds of failures at the default concurrency of 4

_HTTP_CAUSES = {
    401: "HTTP 401 Unauthorized (the endpoint refused the API key: check the variable named by --api-key-env)",
    403: "HTTP 403 Forbidden (the API key is not allowed to use this model)",
    404: "HTTP 404 Not Found (check the base URL and the model name the endpoint serves)",
}


class CircuitOpen(LrcalError):
    """A run stopped by the breaker; ``cause`` says why in words, ``count`` how many attempts failed."""

    def __init__(self, cause: str, count: int):
        super().__init__(f"{count} requests in a row failed with {cause}")
        self.cause = cause
        self.count = count


def persistent_cause(error_kind: str | None, http_status: int | None, message: str | None) -> str | None:
    """The failure in words when retrying cannot fix it, else None."""
    if error_kind == "http_4xx" and http_status in _HTTP_CAUSES:
        return _HTTP_CAUSES[http_status]
    if error_kind == "connection" and (message or "").startswith("cannot connect"):
        return f"'{message}' (is the endpoint running at that address?)"
    return None


@dataclass
class CircuitBreaker:
    """Counts consecutive attempts that failed with the same persistent cause; opens at ``threshold``."""

    threshold: int = DEFAULT_THRESHOLD
    on_open: Callable[[], None] | None = None
    cause: str | None = None
    consecutive: int = 0
    is_open: bool = field(default=False)

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("the circuit breaker threshold must be at least 1")

    def observe(self, error_kind: str | None, http_status: int | None, message: str | None) -> None:
        """Called after every attempt (``error_kind`` None: it succeeded)."""
        cause = persistent_cause(error_kind, http_status, message)
        if self.is_open:
            return  # keep the cause and count that opened it (requests in flight still report)
        if cause is None:
            self.cause, self.consecutive = None, 0
            return
        if cause == self.cause:
            self.consecutive += 1
        else:
            self.cause, self.consecutive = cause, 1
        if self.consecutive >= self.threshold:
            self.is_open = True
            if self.on_open is not None:
                self.on_open()

    def error(self) -> CircuitOpen:
        assert self.cause is not None
        return CircuitOpen(self.cause, self.consecutive)
