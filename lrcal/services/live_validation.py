"""`lrcal live-validate`: gate a calibrated model on live quality–latency–cost.

1. The validation queries (a held-out set, disjoint from the candidate's calibration set)
   go live to the candidate and to every enabled incumbent; every outcome is stored
   (runs of kind ``validation``); outcomes already stored for the same model × example
   are reused, never re-requested.
2. Policies (router with / without the candidate, always-candidate, strongest and
   cheapest incumbent, random, oracle) are measured on those live outcomes.
3. The gate (``lrcal.gate.decision``) decides; decision, numbers and reasons go to the
   ``validations`` table and the audit log, and the status moves in one transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lrcal import lifecycle
from lrcal.errors import LrcalError
from lrcal.services.collection import ProgressCallback, collect_outcomes
from lrcal.services.sets import ensure_set, stratified_subset
from lrcal.store import Store
from lrcal.gate.frontier import frontiers
from lrcal.gate.decision import GateConfig, decide
from lrcal.gate.policies import (
    LiveOutcomes,
    PolicyResult,
    fixed_choice,
    measure,
    oracle_choice,
    random_choice,
)
from lrcal.router.policy import Policy, policy_choice

RUN_KIND = "validation"
DEFAULT_SET = "builtin-v1-holdout"
VALIDATABLE = (lifecycle.CALIBRATED, lifecycle.VALIDATED, lifecycle.REJECTED, lifecycle.ENABLED, lifecycle.DISABLED)


@dataclass
class ValidateRequest:
    model: str
    set_ref: str = DEFAULT_SET
    limit: int | None = None
    gate: GateConfig = field(default_factory=GateConfig)
    budget_usd: float | None = None
    enable: bool = False
    report_dir: Path | None = None
    concurrency: int | None = None


def live_validate(
    store: Store,
    request: ValidateRequest,
    *,
    on_model: Callable[[str, int, int], None] | None = None,
    on_outcome: ProgressCallback | None = None,
) -> dict:
    from lrcal.services.router_context import load_routing

    candidate = store.get_model(request.model)
    if candidate["source"] != "endpoint":
        raise LrcalError(f"model '{candidate['name']}' has no endpoint (it was imported from outcome logs)")
    if candidate["status"] not in VALIDATABLE:
        raise LrcalError(
            f"model '{candidate['name']}' is {candidate['status']}; calibrate it first "
            f"(`lrcal calibrate {candidate['name']}`)"
        )
    if request.limit is not None and request.limit < 1:
        raise LrcalError("--limit must be at least 1")
    routing = load_routing(store)  # refuses clearly when no router / no token
    if not routing.has_token(candidate["name"]):
        raise LrcalError(
            f"model '{candidate['name']}' has no capability token for router {routing.version}; "
            f"run `lrcal calibrate {candidate['name']}` (or `--refit`) first"
        )
    incumbents = [
        m for m in store.list_models([lifecycle.ENABLED]) if m["id"] != candidate["id"] and m["source"] == "endpoint"
    ]
    if not incumbents:
        raise LrcalError("no enabled incumbent models to validate against; enable the current pool first")
    missing_tokens = [m["name"] for m in incumbents if not routing.has_token(m["name"])]
    if missing_tokens:
        raise LrcalError(
            f"enabled model(s) {', '.join(missing_tokens)} have no token for router {routing.version}; "
            "run `lrcal router train` or `lrcal calibrate NAME --refit`"
        )

    with store.lock(f"validate:{candidate['name']}", purpose="live-validate"):
        rset = ensure_set(store, request.set_ref)
        _refuse_overlap(store, candidate, rset)
        selection = stratified_subset(rset.examples, request.limit)
        models = [candidate] + incumbents
        spend = _collect_live(store, models, rset, selection, request, routing, on_model, on_outcome)
        live, usable = _live_matrix(store, models, rset.id, selection)
        if not usable:
            raise LrcalError("the validation budget ran out before any query had an outcome from every model")
        names = [m["name"] for m in models]
        examples = [ex for ex, ok in zip(selection, usable) if ok]
        result = _evaluate(store, candidate, incumbents, names, examples, live, routing, request, rset)
        result["spend_usd"] = spend
        result["budget_usd"] = request.budget_usd
        result["skipped_examples"] = int(len(selection) - sum(usable))
        _record(store, candidate, rset, result, request)
    if request.report_dir is not None:
        from lrcal.gate.report import write_report

        paths = write_report(result, request.report_dir)
        result["report"] = {k: str(v) for k, v in paths.items()}
    return result


def _refuse_overlap(store: Store, candidate: dict, rset) -> None:
    calibration_sets = {
        r["set_id"] for r in store.runs(model_id=candidate["id"], kind="calibration")
    }
    for set_id in calibration_sets:
        shared = store.shared_content(set_id, rset.id)
        if set_id == rset.id or shared["examples"] or shared["images"]:
            other = store.get_set_by_id(set_id)
            raise LrcalError(
                f"validation set {rset.name} overlaps {candidate['name']}'s calibration set {other['name']} "
                f"({shared['examples']} shared examples, {shared['images']} shared images); use a disjoint "
                f"held-out set (default {DEFAULT_SET})"
            )


def _collect_live(store, models, rset, selection, request, routing, on_model, on_outcome) -> float:
    """Fill in missing outcomes for every model; reuse any stored outcome of the same model × example."""
    spend = 0.0
    budget_left = request.budget_usd
    for model in models:
        have = {r["example_id"] for r in store.model_outcomes(model["id"], set_id=rset.id)}
        pending = [ex for ex in selection if ex["id"] not in have]
        if on_model is not None:
            on_model(model["name"], len(selection), len(selection) - len(pending))
        if not pending:
            continue
        run = store.latest_run(model["id"], rset.id, RUN_KIND)
        run_id = run["id"] if run is not None else store.create_run(
            model["id"], rset.id, RUN_KIND, {"set_ref": request.set_ref, "candidate": request.model}
        )
        stats = asyncio.run(
            collect_outcomes(
                store,
                model,
                run_id,
                pending,
                concurrency=request.concurrency,
                on_outcome=on_outcome,
                budget_usd=budget_left,
                expected_cost_per_call=routing.expected_cost_of(model["name"]),
            )
        )
        spend += stats.spent_usd
        if budget_left is not None:
            budget_left = max(0.0, budget_left - stats.spent_usd)
        store.finish_run(run_id, "completed" if stats.skipped_budget == 0 else "interrupted")
    return spend


def _live_matrix(store, models, set_id, selection) -> tuple[LiveOutcomes, list[bool]]:
    n, m = len(selection), len(models)
    score = np.full((n, m), np.nan)
    cost = np.full((n, m), np.nan)
    latency = np.full((n, m), np.nan)
    index = {ex["id"]: i for i, ex in enumerate(selection)}
    for j, model in enumerate(models):
        for row in store.model_outcomes(model["id"], set_id=set_id):
            i = index.get(row["example_id"])
            if i is None:
                continue
            score[i, j] = row["score"] if row["score"] is not None else 0.0
            cost[i, j] = row["cost_usd"] if row["cost_usd"] is not None else np.nan
            # A failed call still took time: count its latency (or total time) against the model.
            latency[i, j] = row["latency_ms"] if row["latency_ms"] is not None else (row["total_ms"] or np.nan)
    usable = [bool(np.isfinite(score[i]).all()) for i in range(n)]
    keep = np.array(usable, dtype=bool)
    live = LiveOutcomes(
        models=[mm["name"] for mm in models],
        tasks=[ex["task_group"] or "(none)" for ex, ok in zip(selection, usable) if ok],
        score=score[keep],
        cost_usd=cost[keep],
        latency_ms=latency[keep],
    )
    return live, usable


@dataclass
class RouterPolicies:
    """The router's choices on the validation queries with and without the candidate
    (column 0 of ``names``), both normalized over the same pool (every column)."""

    predicted: np.ndarray  # μ̃ [N, M] (or μ̃ − κσ when the router is risk-averse)
    expected_cost: np.ndarray  # [M], NaN = unknown
    expected_latency: np.ndarray  # [M], NaN = unknown
    with_mask: np.ndarray  # [M]
    without_mask: np.ndarray  # [M]
    with_choice: np.ndarray  # [N] column per query
    without_choice: np.ndarray  # [N]


def route_with_and_without(
    store: Store, routing, examples: list[dict], names: list[str], gate: GateConfig
) -> RouterPolicies:
    """The gate's two router policies: `lrcal.router.policy.policy_choice` at the gate's λ over the
    candidate + incumbents pool, once with the candidate available and once without."""
    predicted = routing.predict(store, examples, names).score
    expected_cost = routing.expected_costs(names)
    expected_latency = routing.expected_latencies(names)
    with_mask = np.ones(len(names), dtype=bool)
    without_mask = with_mask.copy()
    without_mask[0] = False
    policy = Policy(lambda_cost=gate.lambda_cost, lambda_latency=gate.lambda_latency)

    def choice(available: np.ndarray) -> np.ndarray:
        return policy_choice(predicted, available, policy, expected_cost=expected_cost,
                             expected_latency=expected_latency, pool=with_mask).choice  # fmt: skip

    return RouterPolicies(predicted, expected_cost, expected_latency, with_mask, without_mask,
                          with_choice=choice(with_mask), without_choice=choice(without_mask))  # fmt: skip


def _evaluate(store, candidate, incumbents, names, examples, live, routing, request, rset) -> dict:
    gate = request.gate
    router = route_with_and_without(store, routing, examples, names, gate)
    predicted, expected_cost, expected_latency = router.predicted, router.expected_cost, router.expected_latency
    m = len(names)
    incumbent_idx = np.arange(1, m)
    # An unknown expected cost counts as the dearest, as in the routing policy.
    known_cost = np.where(np.isfinite(expected_cost), expected_cost, np.inf)

    calibration_accuracy = {n: routing.calibration_accuracy(n) for n in names}
    strongest = max(incumbent_idx, key=lambda j: (calibration_accuracy[names[j]] or 0.0, -known_cost[j]))
    cheapest = min(incumbent_idx, key=lambda j: (known_cost[j], -(calibration_accuracy[names[j]] or 0.0)))
    n = live.n
    with_mask = router.with_mask
    policies: dict[str, PolicyResult] = {
        "router_with": measure("router_with", router.with_choice, live),
        "router_without": measure("router_without", router.without_choice, live),
        "candidate_only": measure("candidate_only", fixed_choice(n, 0), live),
        "strongest": measure("strongest", fixed_choice(n, strongest), live),
        "cheapest": measure("cheapest", fixed_choice(n, cheapest), live),
        "random": measure("random", random_choice(n, with_mask, seed=gate.seed), live),
        "oracle": measure("oracle", oracle_choice(live, with_mask), live),
    }
    rows = np.arange(n)
    cand_scores = live.score[:, 0]
    tasks = np.asarray(live.tasks, dtype=object)
    live_by_task = {t: (float(cand_scores[tasks == t].sum()), int((tasks == t).sum())) for t in sorted(set(live.tasks))}
    predicted_by_task = routing.token_per_task(candidate["name"])
    decision = decide(
        candidate["name"],
        policies["router_with"],
        policies["router_without"],
        with_scores=live.score[rows, policies["router_with"].choice],
        without_scores=live.score[rows, policies["router_without"].choice],
        live_candidate_by_task=live_by_task,
        predicted_by_task=predicted_by_task,
        config=gate,
    )
    per_task = {}
    for task in sorted(set(live.tasks)):
        per_task[task] = {
            "n": live_by_task[task][1],
            "candidate_accuracy": live_by_task[task][0] / max(1, live_by_task[task][1]),
            "predicted": predicted_by_task.get(task),
            **{name: policies[name].per_task[task] for name in policies},
        }
    return {
        "model": candidate["name"],
        "set": rset.name,
        "set_version": rset.version,
        "n": n,
        "router_version": routing.version,
        "incumbents": [mm["name"] for mm in incumbents],
        "decision": decision.decision,
        "reasons": decision.reasons,
        "checks": decision.checks,
        "parameters": gate.as_dict(),
        "policies": {name: p.as_dict() for name, p in policies.items()},
        "strongest_incumbent": names[strongest],
        "cheapest_incumbent": names[cheapest],
        "per_task": per_task,
        "frontier": frontiers(live, predicted, expected_cost, expected_latency, with_mask, router.without_mask),
        "expected": {
            name: {"cost_usd": _known(expected_cost[j]), "latency_ms": _known(expected_latency[j])}
            for j, name in enumerate(names)
        },
    }


def _known(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _record(store: Store, candidate: dict, rset, result: dict, request: ValidateRequest) -> None:
    """Decision + numbers + reasons into `validations`, the status move and the events, in one transaction."""
    new_status = lifecycle.VALIDATED if result["decision"] == "validated" else lifecycle.REJECTED
    summary = result["reasons"][-1]
    with store.write():
        model = store.get_model(candidate["name"])
        store.add_validation(
            model["id"],
            rset.id,
            router_version=result["router_version"],
            decision=result["decision"],
            reasons=result["reasons"],
            parameters=result["parameters"],
            results={k: v for k, v in result.items() if k not in ("reasons",)},
        )
        current = model["status"]
        if current != new_status:
            if not lifecycle.can_transition(current, new_status):
                raise LrcalError(lifecycle.explain_refusal(model["name"], current, new_status))
            store.set_status(model["name"], new_status, reason=summary, event_kind=new_status,
                             data={"set": rset.name, "gain": result["checks"]["gain"]})  # fmt: skip
        else:
            store.log_event(new_status, model_id=model["id"], message=summary, data={"set": rset.name})
        if new_status == lifecycle.VALIDATED and request.enable and current != lifecycle.ENABLED:
            store.set_status(model["name"], lifecycle.ENABLED, reason="enabled after passing live validation",
                             event_kind="enabled")  # fmt: skip
        if new_status == lifecycle.REJECTED and current == lifecycle.ENABLED:
            pass  # set_status above already took it out of routing (enabled → rejected)
    result["status"] = store.get_model(candidate["name"])["status"]
