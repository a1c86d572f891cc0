"""`lrcal calibrate NAME --adaptive`: spend the calibration budget where the routing decision
is open (`lrcal.router.adaptive`), batch by batch, and stop when it is settled.

The candidate pool is a calibration set larger than the budget (default `builtin-v1-pool`, 512
examples, disjoint from the live-validation holdout). The sampler's view of the incumbents is
the current router's decision score of the best enabled model on each pool example; its prior
is the router's profile prior. Every batch goes through the same collector as a plain
calibration (the endpoint's concurrency limit, the circuit breaker, outcomes stored as they
arrive). The choice sequence is a function of the pool, the router version, the seed and the
outcomes: a killed run is resumed by replaying it from the stored outcomes, and the batch it
was in is finished first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

import numpy as np

from lrcal.errors import LrcalError, UsageError
from lrcal.router.adaptive import SamplerConfig
from lrcal.services.collection import ProgressCallback, collect_outcomes
from lrcal.services.run_health import is_endpoint_error
from lrcal.store import Store

DEFAULT_BUDGET = 64
DEFAULT_BATCH = 16


@dataclass(frozen=True)
class AdaptivePlan:
    budget: int = DEFAULT_BUDGET
    batch: int = DEFAULT_BATCH
    seed: int = 0
    # how loosely the sampler holds the router's prior (`SamplerConfig.prior_scale`); a run
    # stored before it existed held the prior fully and resumes so (`resumed_plan`)
    prior_scale: float = SamplerConfig.prior_scale

    def __post_init__(self) -> None:
        if self.budget < 16:
            raise UsageError(f"--budget must be at least 16 (a token needs 16 outcomes; got {self.budget})")
        if self.batch < 1:
            raise UsageError(f"--batch must be at least 1 (got {self.batch})")
        if not (0 < self.prior_scale <= 1):
            raise UsageError(f"the sampler's prior scale must lie in (0, 1] (got {self.prior_scale})")

    def to_dict(self) -> dict:
        return {"budget": self.budget, "batch": self.batch, "seed": self.seed, "prior_scale": self.prior_scale}

    def resumed_plan(self, stored: dict) -> "AdaptivePlan | None":
        """This plan as the stored run ``stored`` (its `to_dict`) was asked with, or None when the
        budget, batch or seed differ. A run stored before ``prior_scale`` existed held the prior
        at full strength: it resumes so, replaying the sequence it started."""
        if any(stored.get(key) != getattr(self, key) for key in ("budget", "batch", "seed")):
            return None
        return AdaptivePlan(self.budget, self.batch, self.seed, float(stored.get("prior_scale", 1.0)))


def default_incumbents(store: Store, model_name: str, router=None) -> list[str]:
    """The enabled models with a token in the router, else every model in its bank."""
    if router is None:
        from lrcal.services.router_context import load_routing

        router = load_routing(store).router
    enabled = [m["name"] for m in store.list_models(["enabled"]) if m["name"] != model_name and m["name"] in router.cards]
    return enabled or [m for m in router.models if m != model_name]


def sampler_for(store: Store, model_name: str, examples: list[dict], plan: AdaptivePlan,
                incumbents: list[str] | None = None, routing=None):
    """(sampler, router version, incumbents) on ``examples`` (the candidate pool, in set order).
    ``incumbents``: those a run started with (a resumed run keeps them); default the enabled
    models with a token, else every model in the router's bank. ``routing``: the loaded
    `RoutingContext` when the caller has it (default: loaded here)."""
    from lrcal.router.adaptive import AdaptiveSampler, CandidatePool, GroupPrior
    from lrcal.services.router_context import load_routing

    routing = routing or load_routing(store)
    router = routing.router
    if incumbents is not None:
        gone = [m for m in incumbents if m not in router.cards]
        if gone:
            raise UsageError(f"the stored adaptive run's incumbents {', '.join(gone)} have no token any more: "
                             f"its sequence cannot be resumed; add --fresh")
    else:
        incumbents = default_incumbents(store, model_name, router)
    if not incumbents:
        raise LrcalError("adaptive calibration needs incumbents with a token in the router; calibrate without --adaptive")
    best = router.predict(routing.features(examples), incumbents).score.max(axis=1)
    labels = sorted({ex["task_group"] or "(none)" for ex in examples})
    groups = np.array([labels.index(ex["task_group"] or "(none)") for ex in examples])
    vocab = tuple(router.spec.task_vocab)
    offsets = router.profile_prior.offsets(len(vocab))
    if offsets is not None:
        from lrcal.features.metadata import task_position

        # the groups matched to the router's tasks as the token fit matches them (case, spacing)
        positions = [task_position(vocab, g) for g in labels]
        offsets = np.array([0.0 if p is None else offsets[p] for p in positions])
    pool = CandidatePool(groups=groups, incumbent_best=best, labels=labels)
    prior = GroupPrior(strength=router.profile_prior.strength, offsets=offsets)
    sampler = AdaptiveSampler(pool, prior, SamplerConfig(budget=plan.budget, batch=plan.batch,
                                                         prior_scale=plan.prior_scale), seed=plan.seed)
    return sampler, routing.version, incumbents


def stored_outcomes(store: Store, run_id: int, index: dict[int, int]) -> dict[int, float | None]:
    """Pool index -> the run's stored score (None: an endpoint error, asked but no evidence)."""
    out: dict[int, float | None] = {}
    for row in store.run_outcomes(run_id):
        i = index.get(row["example_id"])
        if i is not None:
            out[i] = None if is_endpoint_error(row) or row["score"] is None else float(row["score"])
    return out


def run_adaptive(
    store: Store,
    model: dict,
    run_id: int,
    examples: list[dict],
    plan: AdaptivePlan,
    *,
    concurrency: int | None = None,
    incumbents: list[str] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_outcome: ProgressCallback | None = None,
    transport=None,
    breaker=None,
    routing=None,
    retry_tail_errors: bool = False,
):
    """Ask the sampler's batches until it stops; returns (final sampler state, pool index of
    every example asked, router version, incumbents). Resumes from the run's stored outcomes.
    ``retry_tail_errors`` (a resumed, unfinished run): the endpoint errors of the last batch
    with stored outcomes are asked again first (`tail_errors`)."""
    sampler, version, incumbents = sampler_for(store, model["name"], examples, plan, incumbents, routing)
    index = {ex["id"]: i for i, ex in enumerate(examples)}
    if retry_tail_errors:
        again = tail_errors(sampler.replay(stored_outcomes(store, run_id, index)), stored_outcomes(store, run_id, index))
        if again:
            asyncio.run(collect_outcomes(store, model, run_id, [examples[i] for i in again], concurrency=concurrency,
                                         on_outcome=on_outcome, transport=transport, breaker=breaker,
                                         replace_errors=True))
    while True:
        state = sampler.replay(stored_outcomes(store, run_id, index))
        if not state.pending:
            return state, sampler, version, incumbents
        if on_batch is not None:
            on_batch(len(state.batches), len(state.pending))
        asyncio.run(collect_outcomes(store, model, run_id, [examples[i] for i in state.pending], concurrency=concurrency,
                                     on_outcome=on_outcome, transport=transport, breaker=breaker))
        answered = stored_outcomes(store, run_id, index)
        if any(i not in answered for i in state.pending):  # the collector stored nothing for some: stop, do not spin
            raise LrcalError(f"{sum(i not in answered for i in state.pending)} examples of the batch got no outcome; "
                             f"run the same command to resume")


def tail_errors(state, outcomes: dict[int, float | None]) -> list[int]:
    """The endpoint errors of the last batch of ``state``'s sequence that has stored outcomes.
    A run stopped by the circuit breaker (a wrong key, an endpoint down) spent them on the
    endpoint's fault, not on evidence; no later choice has been asked yet, so asking them again
    leaves no outcome outside the sequence the replay then makes."""
    for batch in reversed(state.batches):
        if any(i in outcomes for i in batch):
            return [i for i in batch if i in outcomes and outcomes[i] is None]
    return []


def summary(state, sampler, plan: AdaptivePlan, version: str, incumbents: list[str]) -> dict:
    """What the run did, for the report, the store and the TUI: rows spent per group, the
    posterior (mean and interval) that stands there, the incumbents' level, the verdict."""
    return {**plan.to_dict(), "router_version": version, "incumbents": incumbents,
            "stop_value": sampler.config.stop_value, **state.summary()}
