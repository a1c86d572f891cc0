"""`lrcal traffic`: what the gateway served, per model and task (share, errors, fallbacks,
p50/p95 latency and TTFT, cost), and with ``--shadow`` how a shadowed candidate compares with
the routed model on the same requests (latency, cost, answer agreement, predicted μ).

Served spend and shadow spend are reported apart: a shadow call is never part of a request's cost.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from lrcal.store import Store


def parse_since(text: str | None) -> str | None:
    """``--since`` as the store writes times (UTC, ISO 8601, milliseconds), so that comparing
    the strings compares the times: a date, a date and time (UTC unless it carries an offset,
    which is honoured), or a one-line usage error."""
    from datetime import datetime, timezone

    from lrcal.errors import UsageError

    if text is None:
        return None
    given = text.strip()
    if given[-1:] in ("Z", "z"):  # Python 3.10's fromisoformat does not read the Z suffix
        given = given[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(given)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    except (ValueError, OverflowError):  # not a time; or one that leaves the calendar in UTC
        raise UsageError(f"--since: expected an ISO 8601 date or time such as 2026-01-31 or "
                         f"2026-01-31T08:00+01:00, got {text!r}") from None


NO_TASK = "(none)"
NOT_SERVED = "(none served)"


def _pct(values: Iterable[float | None], q: float) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.percentile(known, q)) if known else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _total(values: Iterable[float | None]) -> float:
    return float(sum(v for v in values if v is not None))


def traffic_summary(store: Store, since: str | None = None) -> list[dict]:  # since: `parse_since`
    """One row per (served model, task): requests, share of all requests, errors, fallbacks,
    latency and TTFT percentiles, served cost."""
    rows = store.traffic_requests(since)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["served_model"] or NOT_SERVED, row["task"] or NO_TASK)].append(row)
    out = []
    for (model, task), items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        latencies = [r["latency_ms"] for r in items]
        out.append({
            "model": model, "task": task, "requests": len(items), "share": len(items) / len(rows),
            "errors": sum(1 for r in items if r["error_kind"]),
            "fallbacks": sum(1 for r in items if (r["attempts"] or 0) > 1 and r["served_model"]),
            "routed": sum(1 for r in items if r["routed"]),
            "p50_latency_ms": _pct(latencies, 50), "p95_latency_ms": _pct(latencies, 95),
            "p50_ttft_ms": _pct([r["ttft_ms"] for r in items], 50),
            "p50_routing_ms": _pct([r["routing_ms"] for r in items], 50),
            "mean_cost_usd": _mean([r["cost_usd"] for r in items]),
            "cost_usd": _total(r["cost_usd"] for r in items),
        })  # fmt: skip
    return out


def shadow_summary(store: Store, since: str | None = None) -> list[dict]:
    """One row per shadowed candidate: its calls beside the served calls of the same requests."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in store.traffic_shadow(since):
        groups[row["model"]].append(row)
    out = []
    for model, items in sorted(groups.items()):
        compared = [r["agrees"] for r in items if r["agrees"] is not None]
        out.append({
            "model": model, "requests": len(items), "errors": sum(1 for r in items if r["error_kind"]),
            "p50_latency_ms": _pct([r["latency_ms"] for r in items], 50),
            "served_p50_latency_ms": _pct([r["served_latency_ms"] for r in items], 50),
            "p95_latency_ms": _pct([r["latency_ms"] for r in items], 95),
            "served_p95_latency_ms": _pct([r["served_latency_ms"] for r in items], 95),
            "shadow_cost_usd": _total(r["cost_usd"] for r in items),
            "served_cost_usd": _total(r["served_cost_usd"] for r in items),
            "agreement": float(np.mean(compared)) if compared else None, "compared": len(compared),
            "mean_predicted_mu": _mean([r["predicted_mu"] for r in items]),
            "served_mean_predicted_mu": _mean([r["served_predicted_mu"] for r in items]),
        })  # fmt: skip
    return out
