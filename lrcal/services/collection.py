"""Send examples to a model's endpoint, score the answers, store one outcome per example.

Shared by calibration and live validation. Outcomes are written as each request
finishes (nothing is held back), so a killed run loses at most the requests in
flight, and ``UNIQUE(run_id, example_id)`` keeps a resumed run free of duplicates.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable, Iterable

from lrcal.services.circuit_breaker import DEFAULT_THRESHOLD, CircuitBreaker
from lrcal.services.run_health import MISSING_IMAGE, is_endpoint_error, measured
from lrcal.store import Store

ProgressCallback = Callable[[dict, dict], None]  # (example row, stored outcome fields)


def registered_concurrency(model: dict) -> int:
    """The model's registered limit on parallel requests (the endpoint's)."""
    return int(model["max_concurrency"] or 4)


def endpoint_config(model: dict, concurrency: int | None = None):
    """The client settings for ``model``; ``concurrency`` may lower its registered limit, never raise it
    (the limit is the endpoint's: more parallel requests meet 429s or an overloaded server)."""
    from lrcal.endpoints import EndpointConfig

    limit = registered_concurrency(model)
    return EndpointConfig(
        base_url=model["base_url"],
        api_model=model["api_model"] or model["name"],
        api_style=model["api_style"] or "openai",
        api_key_env=model["api_key_env"],
        timeout_s=float(model["timeout_s"] or 60.0),
        max_concurrency=min(int(concurrency), limit) if concurrency else limit,
        **{k: (model.get("metadata") or {})[k] for k in ("max_retries",) if k in (model.get("metadata") or {})},
    )


def outcome_fields(model: dict, example: dict, result) -> dict:
    """Turn an endpoint ``CallResult`` into the stored outcome (scored, priced).

    A failed request has no score (NULL): it is an error, never a wrong answer
    (`lrcal.services.run_health`)."""
    from lrcal.calsets import score_answer
    from lrcal.endpoints import estimate_cost

    if result.error_kind is None:
        scored = score_answer(_scoring_view(example), result.answer)
        parsed, score, correct = scored.parsed, float(scored.score), int(bool(scored.correct))
    else:
        parsed, score, correct = None, None, None
    cost = None
    if result.input_tokens is not None or result.output_tokens is not None:
        cost = estimate_cost(
            result.input_tokens or 0,
            result.output_tokens or 0,
            model["price_in_per_mtok"] or 0.0,
            model["price_out_per_mtok"] or 0.0,
        )
    return {
        "raw_answer": _bounded_answer(result.answer),
        "parsed_answer": parsed,
        "score": score,
        "correct": correct,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        "total_ms": getattr(result, "total_ms", None),
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "tokens_estimated": int(bool(result.tokens_estimated)),
        "cost_usd": cost,
        "error_kind": result.error_kind,
        "error_message": result.error_message,
        "attempts": result.attempts,
        "retried_errors": list(getattr(result, "retried_errors", []) or []),
    }


# What is kept of an answer: the scorer reads at most 20,000 characters (calsets.scoring), so a
# server that ignores max_tokens cannot make every outcome a megabyte.
MAX_STORED_ANSWER_CHARS = 65_536


def _bounded_answer(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_STORED_ANSWER_CHARS:
        return text
    return text[:MAX_STORED_ANSWER_CHARS] + f" [… {len(text) - MAX_STORED_ANSWER_CHARS:,} more characters not stored]"


def missing_image_fields(example: dict) -> dict:
    """The outcome of an example whose image is gone from the home: an error, and no request
    (a question about an image must never be sent without it)."""
    return {
        "raw_answer": None, "parsed_answer": None, "score": None, "correct": None, "latency_ms": None,
        "ttft_ms": None, "total_ms": 0.0, "input_tokens": None, "output_tokens": None, "tokens_estimated": 0,
        "cost_usd": None, "error_kind": MISSING_IMAGE, "attempts": 0, "retried_errors": [],
        "error_message": f"image {example['image_sha256'][:12]} of example {example.get('example_id')!r} is missing "
        "from the home's images/ folder or damaged; nothing was sent (re-import the set, then use --retry-errors)",
    }  # fmt: skip


def _scoring_view(example: dict):
    return SimpleNamespace(
        answer=example["answer"],
        answer_type=example["answer_type"],
        choices=example.get("choices"),
        tolerance=example.get("tolerance"),
    )


@dataclass
class CollectStats:
    requested: int = 0
    stored: int = 0
    skipped_budget: int = 0
    spent_usd: float = 0.0


async def collect_outcomes(
    store: Store,
    model: dict,
    run_id: int,
    examples: Iterable[dict],
    *,
    concurrency: int | None = None,
    on_outcome: ProgressCallback | None = None,
    budget_usd: float | None = None,
    expected_cost_per_call: float = 0.0,
    transport=None,
    breaker: CircuitBreaker | None = None,
    replace_errors: bool = False,
) -> CollectStats:
    """Run ``examples`` against ``model`` and store an outcome for each, as each finishes.

    ``breaker``: stops the run (raises `CircuitOpen`) when requests keep failing with the same
    persistent cause; default: one that opens after max(8, 2 × concurrency) such attempts.
    Outcomes stored before it opens stay; requests in flight are dropped (nothing stored for
    them). ``replace_errors``: an example whose stored outcome in this run is an endpoint error
    gets the new outcome instead (`--retry-errors`)."""
    from lrcal.calsets import build_prompt
    from lrcal.endpoints import EndpointClient

    config = endpoint_config(model, concurrency)
    if breaker is None:
        breaker = CircuitBreaker(max(DEFAULT_THRESHOLD, 2 * config.max_concurrency))
    examples = list(examples)
    stats = CollectStats()
    gate = asyncio.Semaphore(config.max_concurrency)
    budget_lock = asyncio.Lock()
    committed_usd = 0.0  # spend already made plus the estimate of requests in flight
    tasks: list[asyncio.Task] = []

    def stop_the_others() -> None:
        current = asyncio.current_task()
        for task in tasks:
            if task is not current and not task.done():
                task.cancel()

    breaker.on_open = stop_the_others

    async with EndpointClient(config, transport=transport, on_attempt=breaker.observe) as client:

        async def one(example: dict) -> None:
            nonlocal committed_usd
            async with gate:
                if breaker.is_open:
                    return
                if budget_usd is not None:
                    async with budget_lock:
                        if committed_usd + expected_cost_per_call > budget_usd + 1e-12:
                            stats.skipped_budget += 1
                            return
                        committed_usd += expected_cost_per_call
                image, mime = _image(store, example)
                if example.get("image_sha256") and image is None:
                    fields = missing_image_fields(example)
                else:
                    stats.requested += 1
                    result = await client.complete(build_prompt(example), image, mime)
                    fields = outcome_fields(model, example, result)
                if budget_usd is not None:
                    async with budget_lock:
                        committed_usd += (fields["cost_usd"] or 0.0) - expected_cost_per_call
                stats.spent_usd += fields["cost_usd"] or 0.0
                if store.record_outcome(run_id, example["id"], fields, replace_error=replace_errors):
                    stats.stored += 1
                if on_outcome is not None:
                    on_outcome(example, fields)

        tasks.extend(asyncio.ensure_future(one(ex)) for ex in examples)
        try:
            if tasks:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            # One failure (a full disk, Ctrl-C) stops every request: none is left running
            # while the run is marked interrupted.
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in results:
            if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                raise outcome
    if breaker.is_open:
        raise breaker.error()
    return stats


def _image(store: Store, example: dict) -> tuple[bytes | None, str | None]:
    sha = example.get("image_sha256")
    if not sha:
        return None, None
    row = store.image_row(sha)
    data = store.image_bytes(sha)
    return data, (row["mime"] if row else None)


# ---- summaries ---------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    values = sorted(v for v in values if v is not None and not math.isnan(v))
    if not values:
        return None
    pos = (len(values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def summarize(rows: list[dict]) -> dict:
    """n, accuracy and mean score over the answered outcomes (endpoint errors are excluded, not
    scored 0), latency p50/p95 (successful calls), mean cost, errors and the error rate."""
    n = len(rows)
    ok = measured(rows)
    costs = [r["cost_usd"] for r in rows if r.get("cost_usd") is not None]
    return {
        "n": n,
        "accuracy": (sum(int(r["correct"] or 0) for r in ok) / len(ok)) if ok else None,
        "mean_score": (sum(float(r["score"] or 0.0) for r in ok) / len(ok)) if ok else None,
        "latency_ms_p50": percentile([r["latency_ms"] for r in ok if not r.get("error_kind")], 50),
        "latency_ms_p95": percentile([r["latency_ms"] for r in ok if not r.get("error_kind")], 95),
        "cost_usd_mean": (sum(costs) / len(costs)) if costs else None,
        "errors": sum(1 for r in rows if is_endpoint_error(r)),
        "error_rate": (sum(1 for r in rows if is_endpoint_error(r)) / n) if n else None,
    }


def summarize_by_task(rows: list[dict]) -> dict[str, dict]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row.get("task_group") or "(none)", []).append(row)
    return {g: summarize(groups[g]) for g in sorted(groups)}


def errors_by_kind(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if is_endpoint_error(row):
            counts[row["error_kind"]] = counts.get(row["error_kind"], 0) + 1
    return dict(sorted(counts.items()))
