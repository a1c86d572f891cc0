"""Live validation's outcomes: the order queries are sent in, the requests of each look, and
the live matrix the gate reads.

Every outcome is stored as it arrives (runs of kind ``validation``). By default an outcome
already stored for the same model × example is reused, never requested again. ``fresh``
requests every example again in a new run and reads only this invocation's outcomes;
``retry_errors`` requests again the examples whose stored outcome is a failed request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lrcal.gate.policies import LiveOutcomes
from lrcal.services.collection import ProgressCallback, collect_outcomes
from lrcal.store import Store

RUN_KIND = "validation"


def sequential_order(examples: list[dict], seed: int = 0) -> list[dict]:
    """The examples in the order they are sent: task groups interleaved (one of each in turn,
    shuffled within a group with a fixed seed), so every prefix -- every look -- covers every
    group in proportion."""
    groups: dict[str, list[dict]] = {}
    for ex in examples:
        groups.setdefault(ex["task_group"] or "(none)", []).append(ex)
    rng = np.random.default_rng(seed)
    queues = [[group[i] for i in rng.permutation(len(group))] for _, group in sorted(groups.items())]
    sizes = [len(q) for q in queues]
    order: list[dict] = []
    while len(order) < sum(sizes):  # the group furthest behind its share of the set goes next
        k = min((j for j, q in enumerate(queues) if q), key=lambda j: ((sizes[j] - len(queues[j])) / sizes[j], j))
        order.append(queues[k].pop(0))
    return order


@dataclass
class Spend:
    usd: float = 0.0
    requests: int = 0
    skipped_budget: int = 0


@dataclass
class LiveCollector:
    """Requests what each look still lacks, model by model, under one budget."""

    store: Store
    models: list[dict]
    set_id: int
    parameters: dict
    expected_cost: Callable[[str], float]
    budget_usd: float | None = None
    fresh: bool = False
    retry_errors: bool = False
    concurrency: int | None = None
    on_model: Callable[[str, int, int], None] | None = None
    on_outcome: ProgressCallback | None = None
    spend: Spend = field(default_factory=Spend)
    _runs: dict[int, int] = field(default_factory=dict)  # model id -> this invocation's run

    def counts(self, model: dict, row: dict) -> bool:
        """Whether a stored outcome stands for this invocation."""
        if self.fresh:
            return row["run_id"] == self._runs.get(model["id"])
        if self.retry_errors and row["error_kind"]:
            return row["run_id"] == self._runs.get(model["id"])  # retried once per invocation
        return True

    def outcomes(self, model: dict) -> dict[int, dict]:
        """{example pk: the outcome that stands} for one model on the set."""
        rows = self.store.model_outcomes(model["id"], set_id=self.set_id)
        return {r["example_id"]: r for r in rows if self.counts(model, r)}

    def collect(self, examples: list[dict]) -> bool:
        """Request every missing outcome of ``examples``; False when the budget stopped it.

        Without a budget every model gets its part of the batch at the same time, so a load spike
        on the network or the machine hits the candidate and the incumbents alike (the p95 latency
        rule compares them on the same queries, and should compare them in the same minutes too).
        With a budget the models go one after another, so that the budget is never overshot."""
        work = []
        for model in self.models:
            have = self.outcomes(model)
            pending = [ex for ex in examples if ex["id"] not in have]
            if self.on_model is not None:
                self.on_model(model["name"], len(examples), len(examples) - len(pending))
            if pending:
                work.append((model, self._run(model), pending))
        if self.budget_usd is None:
            stats = asyncio.run(self._gather([self._request(model, run_id, pending, None)
                                              for model, run_id, pending in work]))  # fmt: skip
            for (_, run_id, _), one in zip(work, stats):
                self._count(one)
            return True
        for model, run_id, pending in work:
            one = asyncio.run(self._request(model, run_id, pending, max(0.0, self.budget_usd - self.spend.usd)))
            self._count(one)
            if one.skipped_budget:
                self.store.update_run(run_id, status="interrupted")
                return False
        return True

    @staticmethod
    async def _gather(requests: list) -> list:
        return list(await asyncio.gather(*requests))

    def _request(self, model: dict, run_id: int, pending: list[dict], budget_left: float | None):
        # issue 20's circuit breaker goes into this call once collect_outcomes takes it
        return collect_outcomes(self.store, model, run_id, pending, concurrency=self.concurrency,
                                on_outcome=self.on_outcome, budget_usd=budget_left,
                                expected_cost_per_call=self.expected_cost(model["name"]))  # fmt: skip

    def _count(self, stats) -> None:
        self.spend.usd += stats.spent_usd
        self.spend.requests += stats.requested
        self.spend.skipped_budget += stats.skipped_budget

    def finish(self, status: str = "completed") -> None:
        """Close the runs still running: ``completed``, or ``interrupted`` when the run stopped
        on an error or Ctrl-C (a later run resumes them)."""
        for run_id in self._runs.values():
            if self.store.get_run(run_id)["status"] == "running":
                self.store.finish_run(run_id, status)

    def _run(self, model: dict) -> int:
        if model["id"] not in self._runs:
            latest = None if (self.fresh or self.retry_errors) else self.store.latest_run(model["id"], self.set_id,
                                                                                           RUN_KIND)  # fmt: skip
            self._runs[model["id"]] = latest["id"] if latest else self.store.create_run(
                model["id"], self.set_id, RUN_KIND, self.parameters
            )
        return self._runs[model["id"]]


@dataclass
class LiveMatrix:
    live: LiveOutcomes  # the usable examples only
    examples: list[dict]  # those examples, in order
    cost_usd: float  # what the outcomes used cost in all (reused ones included)
    skipped: int  # examples without an outcome from every model


def live_matrix(collector: LiveCollector, examples: list[dict]) -> LiveMatrix:
    """The outcomes that stand, for the examples every model has one for."""
    n, m = len(examples), len(collector.models)
    score, cost, latency = (np.full((n, m), np.nan) for _ in range(3))
    errors = np.zeros((n, m), dtype=bool)
    have = np.zeros((n, m), dtype=bool)
    index = {ex["id"]: i for i, ex in enumerate(examples)}
    for j, model in enumerate(collector.models):
        for pk, row in collector.outcomes(model).items():
            i = index.get(pk)
            if i is None:
                continue
            have[i, j] = True
            errors[i, j] = bool(row["error_kind"])
            score[i, j] = row["score"] if row["score"] is not None else 0.0
            cost[i, j] = row["cost_usd"] if row["cost_usd"] is not None else np.nan
            latency[i, j] = row["latency_ms"] if row["latency_ms"] is not None else (row["total_ms"] or np.nan)
    keep = have.all(axis=1)
    used = [ex for ex, ok in zip(examples, keep) if ok]
    live = LiveOutcomes(
        models=[mm["name"] for mm in collector.models],
        tasks=[ex["task_group"] or "(none)" for ex in used],
        score=score[keep], cost_usd=cost[keep], latency_ms=latency[keep], errors=errors[keep],
    )  # fmt: skip
    return LiveMatrix(live=live, examples=used, cost_usd=float(np.nansum(cost[keep])), skipped=int(n - keep.sum()))
