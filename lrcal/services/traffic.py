"""`lrcal traffic`: what the gateway served, per model and task (share, errors, fallbacks,
p50/p95 latency and TTFT, cost), every attempt at each model with the failed ones and their
kinds (a model failing behind fallbacks shows on its own row), and with ``--shadow`` how a
shadowed candidate compares with the routed model on the same requests (model-call latency,
cost, answer agreement, predicted μ).

A client that hung up (``client_disconnected``) is no model's error: it is counted apart
(``client_left``) and its cut-short time is left out of the latency percentiles. A cost no row
knows is ``None`` (unknown), never $0; ``*_unknown`` counts the rows whose cost is not known.
Served spend and shadow spend are reported apart: a shadow call is never part of a request's cost.
"""

from __future__ import annotations

from collections import Counter, defaultdict
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
CLIENT_LEFT = "client_disconnected"  # the client hung up: no model failed


def _pct(values: Iterable[float | None], q: float) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.percentile(known, q)) if known else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _total(values: Iterable[float | None]) -> float | None:
    """The sum of the known values; None (unknown, not 0) when no value is known."""
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None


def _unknown(values: Iterable[float | None]) -> int:
    return sum(1 for v in values if v is None)


def _model_failed(error_kind: str | None) -> bool:
    return bool(error_kind) and error_kind != CLIENT_LEFT


def traffic_summary(store: Store, since: str | None = None) -> list[dict]:  # since: `parse_since`
    """One row per (model, task): the requests it served (share of all requests, errors,
    client hang-ups, fallbacks, latency and TTFT percentiles, served cost) and every attempt at
    it, failed ones by kind. A model that only failed in a task still has a row there (0
    requests); requests no model answered are under `NOT_SERVED`, their failed attempts on the
    rows of the models that failed."""
    rows = store.traffic_requests(since)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["served_model"] or NOT_SERVED, row["task"] or NO_TASK)].append(row)
    tried: dict[tuple[str, str], list[dict]] = defaultdict(list)
    counted = {row["request_id"] for row in rows}  # (a batch the gateway wrote between the two reads: not yet)
    for attempt in store.traffic_attempts_of_requests(since):
        if attempt["request_id"] in counted:
            tried[(attempt["model"], attempt["task"] or NO_TASK)].append(attempt)
    out = []
    for model, task in sorted(set(groups) | set(tried), key=lambda key: (-len(groups.get(key, ())), key)):
        items, calls = groups.get((model, task), []), tried.get((model, task), [])
        answered = [r for r in items if r["error_kind"] != CLIENT_LEFT]  # a hang-up's time is cut short
        failed = Counter(a["error_kind"] for a in calls if _model_failed(a["error_kind"]))
        costs = [r["cost_usd"] for r in items]
        out.append({
            "model": model, "task": task, "requests": len(items), "share": len(items) / len(rows),
            "errors": sum(1 for r in items if _model_failed(r["error_kind"])),
            "client_left": sum(1 for r in items if r["error_kind"] == CLIENT_LEFT),
            "fallbacks": sum(1 for r in items if (r["attempts"] or 0) > 1 and r["served_model"]),
            "routed": sum(1 for r in items if r["routed"]),
            "attempts": len(calls), "failed_attempts": sum(failed.values()),
            "failure_kinds": dict(sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))),
            "p50_latency_ms": _pct([r["latency_ms"] for r in answered], 50),
            "p95_latency_ms": _pct([r["latency_ms"] for r in answered], 95),
            "p50_ttft_ms": _pct([r["ttft_ms"] for r in items], 50),
            "p50_routing_ms": _pct([r["routing_ms"] for r in items], 50),
            "mean_cost_usd": _mean(costs), "cost_usd": _total(costs), "cost_unknown": _unknown(costs),
        })  # fmt: skip
    return out


def shadow_summary(store: Store, since: str | None = None) -> list[dict]:
    """One row per shadowed candidate: its calls beside the served calls of the same requests
    (latency: the served model's own call against the candidate's, both model calls)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in store.traffic_shadow(since):
        groups[row["model"]].append(row)
    out = []
    for model, items in sorted(groups.items()):
        compared = [r["agrees"] for r in items if r["agrees"] is not None]
        shadow_costs, served_costs = [r["cost_usd"] for r in items], [r["served_cost_usd"] for r in items]
        out.append({
            "model": model, "requests": len(items), "errors": sum(1 for r in items if r["error_kind"]),
            "p50_latency_ms": _pct([r["latency_ms"] for r in items], 50),
            "served_p50_latency_ms": _pct([r["served_latency_ms"] for r in items], 50),
            "p95_latency_ms": _pct([r["latency_ms"] for r in items], 95),
            "served_p95_latency_ms": _pct([r["served_latency_ms"] for r in items], 95),
            "shadow_cost_usd": _total(shadow_costs), "shadow_cost_unknown": _unknown(shadow_costs),
            "served_cost_usd": _total(served_costs), "served_cost_unknown": _unknown(served_costs),
            "agreement": float(np.mean(compared)) if compared else None, "compared": len(compared),
            "mean_predicted_mu": _mean([r["predicted_mu"] for r in items]),
            "served_mean_predicted_mu": _mean([r["served_predicted_mu"] for r in items]),
        })  # fmt: skip
    return out
