"""When to retry an endpoint call, and how long to wait."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

# 408 Request Timeout, 409 Conflict (some gateways' "busy"), 429 Too Many Requests.
RETRYABLE_4XX = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_4XX


def parse_retry_after(value: str | None, cap_s: float, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), capped.

    Fractional seconds are accepted (some gateways send them). Garbage gives None.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), cap_s)


def backoff_delay(
    failed_attempt: int,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base * 2**(n-1))).

    A server's ``Retry-After`` (already capped) replaces the jittered delay: the server
    knows when it will accept requests again.
    """
    if retry_after_s is not None:
        return min(retry_after_s, max_s)
    ceiling = min(max_s, base_s * (2 ** max(0, failed_attempt - 1)))
    return (rng or random).uniform(0.0, ceiling)
