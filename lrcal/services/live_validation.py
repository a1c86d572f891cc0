"""`lrcal live-validate`: gate a calibrated model on live quality–latency–cost.

1. The validation queries (a held-out set, disjoint from the candidate's calibration set) are
   put in an order where every prefix covers every task group (`sequential_order`).
2. Sequentially, batch by batch, they go live to the candidate and every enabled incumbent
   (`lrcal.services.validation_outcomes`); after each batch the gate (`lrcal.gate.decision`)
   judges every rule with intervals at that look's boundary (`lrcal.gate.sequential`) and
   the run stops as soon as the decision is settled, or at the end of the set or the budget
   ("undecided: about N more examples would be needed").
3. The router's choices come from `lrcal.router.policy.policy_choice` at the routing policy's
   λ, with the candidate in the pool and with it masked out of the pool.
4. The decision, every number and the reasons go to the ``validations`` table and the audit
   log. The model's status changes only as asked: a pass enables it only with ``enable``
   (and saves the recommended λ as the routing policy); a rejection takes an enabled model
   out of routing only with ``apply``; an undecided run changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from lrcal import lifecycle
from lrcal.errors import LrcalError, UsageError
from lrcal.gate.decision import Decision, GateConfig, LookEvidence, decide
from lrcal.gate.frontier import frontiers
from lrcal.gate.operating_point import recommend_lambda
from lrcal.gate.policies import (
    LiveOutcomes,
    PolicyResult,
    fixed_choice,
    measure,
    oracle_choice,
    paired_outcomes,
    random_choice,
    restricted,
)
from lrcal.gate.sequential import plan_looks
from lrcal.jsonable import finite_json
from lrcal.router.policy import Policy, policy_choice
from lrcal.services.collection import ProgressCallback
from lrcal.services.routing_policy import resolved
from lrcal.services.sets import ensure_set, stratified_subset
from lrcal.services.tables import image_capability
from lrcal.services.validation_outcomes import LiveCollector, LiveMatrix, live_matrix, sequential_order
from lrcal.store import Store

DEFAULT_SET = "builtin-v1-holdout"
DEFAULT_BATCH = 24
VALIDATABLE = (lifecycle.CALIBRATED, lifecycle.VALIDATED, lifecycle.REJECTED, lifecycle.ENABLED, lifecycle.DISABLED)
EXIT_CODES = {"validated": 0, "rejected": 3, "undecided": 4}


@dataclass
class ValidateRequest:
    model: str
    set_ref: str = DEFAULT_SET
    limit: int | None = None
    gate: GateConfig = field(default_factory=GateConfig)
    budget_usd: float | None = None
    enable: bool = False  # enable a passing model (and save the recommended λ as the routing policy)
    apply: bool = False  # take an enabled model that fails out of routing
    report_dir: Path | None = None
    concurrency: int | None = None
    fresh: bool = False  # request every outcome again
    retry_errors: bool = False  # request again the outcomes that are failed requests
    sequential: bool = True  # look after every batch; else one look at the end
    batch: int = DEFAULT_BATCH


LookCallback = Callable[[int, int, Decision], None]  # (look number from 1, examples seen, decision)


def live_validate(
    store: Store,
    request: ValidateRequest,
    *,
    on_model: Callable[[str, int, int], None] | None = None,
    on_outcome: ProgressCallback | None = None,
    on_look: LookCallback | None = None,
) -> dict:
    from lrcal.services.router_context import load_routing

    candidate = store.get_model(request.model)
    _check_request(candidate, request)
    _prepare_report_dir(request.report_dir)  # a path that cannot hold the report fails before any request
    routing = load_routing(store)  # refuses clearly when no router / no token
    incumbents = _incumbents(store, candidate, routing)
    lambda_cost, lambda_latency = resolved(store, request.gate.lambda_cost, request.gate.lambda_latency)
    gate = replace(request.gate, lambda_cost=lambda_cost, lambda_latency=lambda_latency)
    Policy(lambda_cost=lambda_cost, lambda_latency=lambda_latency)  # refuses a bad λ before any request

    with store.lock(f"validate:{candidate['name']}", purpose="live-validate"):
        judged = RunState.now(store, candidate["name"], routing)
        rset = ensure_set(store, request.set_ref)
        _refuse_overlap(store, candidate, rset, routing.router.models)
        order = sequential_order(stratified_subset(rset.examples, request.limit), gate.seed)
        if not order:
            raise LrcalError(f"validation set {rset.name} has no examples")
        models = [candidate] + incumbents
        names = [m["name"] for m in models]
        router = route_with_and_without(store, routing, order, names, gate)
        plan = plan_looks(len(order), request.batch if request.sequential else None, gate.error_rate)
        collector = LiveCollector(
            store, models, rset.id, {"set_ref": request.set_ref, "candidate": request.model},
            expected_cost=routing.expected_cost_of, budget_usd=request.budget_usd, fresh=request.fresh,
            retry_errors=request.retry_errors, concurrency=request.concurrency, on_model=on_model,
            on_outcome=on_outcome,
        )  # fmt: skip
        predicted_by_task = routing.token_per_task(candidate["name"])
        try:
            run = _run_looks(collector, order, plan, router, candidate["name"], predicted_by_task, gate, on_look)
        except BaseException:
            collector.finish("interrupted")
            raise
        collector.finish()
        result = _result(candidate, incumbents, names, run.matrix, router, run.rows, routing, gate, rset, run.decision)
        result.update(_run_summary(collector, run, plan, request))
        _record(store, candidate, rset, result, request, judged)
    if request.report_dir is not None:
        from lrcal.gate.report import write_report

        try:
            paths = write_report(result, request.report_dir)
        except OSError as exc:
            # the decision and any status move are committed by now: a report that cannot be
            # written is said in one line, never a traceback that reads as "nothing happened"
            result["report_error"] = f"--report {request.report_dir}: not written ({exc.strerror or exc}: {exc.filename or ''})"
        else:
            result["report"] = {k: str(v) for k, v in paths.items()}
    return result


def _prepare_report_dir(path: Path | None) -> None:
    import os

    if path is None:
        return
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--report {path}: a file is in the way (the report is a folder)") from None
    except OSError as exc:
        raise UsageError(f"--report {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"--report {path}: the folder is not writable")
    from lrcal.gate.report import REPORT_FILES

    for name in REPORT_FILES:  # found before the run, not after its decision is recorded
        if (path / name).is_dir():
            raise UsageError(f"--report {path}: a folder named {name} is in the way of the report's file")


@dataclass
class LookRun:
    """Where the sequential run stopped: the last look's outcomes, decision and why it stopped."""

    matrix: LiveMatrix
    rows: np.ndarray  # the used examples' places in the order
    decision: Decision
    looks_taken: int
    stopped: str  # "decided" | "budget" | "all examples"


def _run_looks(collector, order, plan, router, candidate: str, predicted_by_task, gate, on_look) -> LookRun:
    """Look after look: request what the look lacks, judge, stop once decided or out of budget."""
    row_of = {ex["id"]: i for i, ex in enumerate(order)}
    previous: dict = {}
    for look, seen in enumerate(plan.looks):
        within_budget = collector.collect(order[:seen])
        matrix = live_matrix(collector, order[:seen])
        if matrix.live.n == 0:  # nothing to judge, so nothing recorded: an error, not an undecided run
            if not within_budget:
                raise LrcalError("the validation budget ran out before any query had an outcome from every model: "
                                 "nothing was measured or recorded (raise --budget-usd)")
            raise LrcalError(f"no query of the first {seen} had an outcome from every model (their requests failed): "
                             f"nothing was measured or recorded (`lrcal outcomes {candidate} --errors`)")
        rows = np.asarray([row_of[ex["id"]] for ex in matrix.examples])
        evidence = look_evidence(candidate, matrix.live, router, rows, predicted_by_task)
        decision = decide(evidence, gate, plan.z[look], previous)
        previous = decision.rules_by_key()
        if on_look is not None:
            on_look(look + 1, matrix.live.n, decision)
        stopped = "decided" if decision.decision != "undecided" else None if within_budget else "budget"
        if stopped:
            return LookRun(matrix, rows, decision, look + 1, stopped)
    return LookRun(matrix, rows, decision, len(plan.looks), "all examples")


def _check_request(candidate: dict, request: ValidateRequest) -> None:
    if candidate["source"] != "endpoint":
        raise LrcalError(f"model '{candidate['name']}' has no endpoint (it was imported from outcome logs)")
    if candidate["status"] == lifecycle.REMOVED:  # calibrate refuses a removed model too: no advice to run it
        raise LrcalError(f"model '{candidate['name']}' was removed; a removed model is never validated or routed again")
    if candidate["status"] not in VALIDATABLE:
        raise LrcalError(
            f"model '{candidate['name']}' is {candidate['status']}; calibrate it first "
            f"(`lrcal calibrate {candidate['name']}`)"
        )
    if request.limit is not None and request.limit < 1:
        raise LrcalError("--limit must be at least 1")
    if request.batch < 1:
        raise LrcalError("--batch must be at least 1")
    if not 0.0 < request.gate.error_rate < 0.5:
        raise LrcalError(f"--error-rate must be between 0 and 0.5 (got {request.gate.error_rate})")
    if request.fresh and request.retry_errors:
        raise UsageError("--fresh already requests every outcome again; drop --retry-errors")


def _incumbents(store: Store, candidate: dict, routing) -> list[dict]:
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
    return incumbents


def _refuse_overlap(store: Store, candidate: dict, rset, router_models) -> None:
    """Refuse a validation set that shares examples, questions on the same picture or pictures
    with the candidate's calibration data or any data behind the router (`holdout_overlap`): the
    router's own training set passed as a holdout before, and so did a re-encoded copy."""
    from lrcal.services.holdout_overlap import (PixelDigests, SetContent, examples_with_images, sets_behind,
                                               shas_to_decode)

    behind = sets_behind(store, candidate, router_models)
    stored = {set_id: examples_with_images(store, set_id) for set_id in {rset.id, *behind}}  # each set read once
    images = {set_id: {sha for _ex, shas in examples for sha in shas} for set_id, examples in stored.items()}
    behind_images = set().union(*(images[s] for s in behind if s != rset.id))
    pixels = PixelDigests(store, decode=shas_to_decode(store, images[rset.id], behind_images))
    try:
        holdout = SetContent.from_examples(stored[rset.id], pixels)  # once, against every set behind
        for set_id, whose in behind.items():
            shared = None if set_id == rset.id else SetContent.from_examples(stored[set_id], pixels).shared_with(holdout)
            if set_id == rset.id or shared:
                other = store.get_set_by_id(set_id)
                detail = "the same set" if shared is None else shared.describe()
                raise LrcalError(
                    f"validation set {rset.name} overlaps {other['name']}, {whose} ({detail}); use a held-out set "
                    f"disjoint from everything the router and {candidate['name']} were calibrated or trained on "
                    f"(default {DEFAULT_SET})"
                )
    finally:
        pixels.save()


# ---- the router's two policies -----------------------------------------------------------


@dataclass
class RouterPolicies:
    """The router's choices on the validation queries with and without the candidate
    (column 0 of ``names``), both normalized over the same pool (every column)."""

    predicted: np.ndarray  # μ̃ [N, M] predicted with the candidate in the pool
    predicted_without: np.ndarray  # [N, M] predicted with the candidate out of the pool (column 0: NaN)
    expected_cost: np.ndarray  # [M], NaN = unknown
    expected_latency: np.ndarray  # [M], NaN = unknown
    with_mask: np.ndarray  # [M]
    without_mask: np.ndarray  # [M]
    with_choice: np.ndarray  # [N] column per query
    without_choice: np.ndarray  # [N]
    capable: np.ndarray | None = None  # [N, M] a query with an image never to a text-only model


def route_with_and_without(
    store: Store, routing, examples: list[dict], names: list[str], gate: GateConfig
) -> RouterPolicies:
    """The gate's two router policies: `lrcal.router.policy.policy_choice` at the gate's λ over the
    candidate + incumbents pool, once with the candidate available and once without it. "Without"
    is predicted with the candidate out of the pool -- the router's model tokens attend to each
    other, so hiding a column of the with-candidate prediction would not be routing without it."""
    predicted = routing.predict(store, examples, names).score
    predicted_without = np.full_like(predicted, np.nan)
    predicted_without[:, 1:] = routing.predict(store, examples, names[1:]).score
    expected_cost = routing.expected_costs(names)
    expected_latency = routing.expected_latencies(names)
    with_mask = np.ones(len(names), dtype=bool)
    without_mask = with_mask.copy()
    without_mask[0] = False
    policy = Policy(lambda_cost=gate.lambda_cost or 0.0, lambda_latency=gate.lambda_latency or 0.0)

    # as the gateway routes: a query with an image never goes to a text-only model
    capable = image_capability(store, names, examples)

    def choice(scores: np.ndarray, available: np.ndarray) -> np.ndarray:
        return policy_choice(scores, restricted(available, capable), policy, expected_cost=expected_cost,
                             expected_latency=expected_latency, pool=with_mask).choice  # fmt: skip

    return RouterPolicies(predicted, predicted_without, expected_cost, expected_latency, with_mask, without_mask,
                          with_choice=choice(predicted, with_mask),
                          without_choice=choice(predicted_without, without_mask), capable=capable)  # fmt: skip


def look_evidence(
    candidate: str, live: LiveOutcomes, router: RouterPolicies, rows: np.ndarray, predicted_by_task: dict
) -> LookEvidence:
    """What the gate sees on the live outcomes of one look (``rows``: their places in the order)."""
    with_choice, without_choice = router.with_choice[rows], router.without_choice[rows]
    paired, _ = paired_outcomes(live, with_choice, without_choice)
    answered = ~live.errors[:, 0]
    tasks = np.asarray(live.tasks, dtype=object)
    by_task = {t: (float(live.score[(tasks == t) & answered, 0].sum()), int(((tasks == t) & answered).sum()))
               for t in sorted(set(live.tasks))}  # fmt: skip
    return LookEvidence(
        candidate=candidate, n=live.n, paired=paired, candidate_calls=live.n,
        candidate_errors=int(live.errors[:, 0].sum()), routed_to_candidate=int((with_choice == 0).sum()),
        with_result=measure("router_with", with_choice, live), without_result=measure("router_without", without_choice, live),
        live_candidate_by_task=by_task, predicted_by_task=predicted_by_task,
    )  # fmt: skip


# ---- the result ----------------------------------------------------------------------------


def _result(candidate, incumbents, names, matrix: LiveMatrix, router, rows, routing, gate, rset, decision) -> dict:
    live = matrix.live
    n, m = live.n, len(names)
    incumbent_idx = np.arange(1, m)
    # An unknown expected cost counts as the dearest, as in the routing policy.
    known_cost = np.where(np.isfinite(router.expected_cost), router.expected_cost, np.inf)
    accuracy = {name: routing.calibration_accuracy(name) for name in names}
    strongest = max(incumbent_idx, key=lambda j: (accuracy[names[j]] or 0.0, -known_cost[j]))
    cheapest = min(incumbent_idx, key=lambda j: (known_cost[j], -(accuracy[names[j]] or 0.0)))
    policies: dict[str, PolicyResult] = {
        "router_with": measure("router_with", router.with_choice[rows], live),
        "router_without": measure("router_without", router.without_choice[rows], live),
        "candidate_only": measure("candidate_only", fixed_choice(n, 0), live),
        "strongest": measure("strongest", fixed_choice(n, strongest), live),
        "cheapest": measure("cheapest", fixed_choice(n, cheapest), live),
        "random": measure("random", random_choice(n, router.with_mask, seed=gate.seed), live),
        "oracle": measure("oracle", oracle_choice(live, router.with_mask), live),
    }
    predicted_by_task = routing.token_per_task(candidate["name"])
    tasks = np.asarray(live.tasks, dtype=object)
    answered = ~live.errors[:, 0]
    per_task = {}
    for task in sorted(set(live.tasks)):
        ok = (tasks == task) & answered
        per_task[task] = {
            "n": int((tasks == task).sum()),
            "candidate_accuracy": float(live.score[ok, 0].mean()) if ok.any() else 0.0,
            "candidate_errors": int(((tasks == task) & ~answered).sum()),
            "predicted": predicted_by_task.get(task),
            **{name: policies[name].per_task[task] for name in policies},
        }
    current = Policy(lambda_cost=gate.lambda_cost, lambda_latency=gate.lambda_latency)
    capable = router.capable[rows] if router.capable is not None else None
    recommended = recommend_lambda(live, router.predicted[rows], router.expected_cost, router.expected_latency,
                                   router.with_mask, current, gate, capable=capable)  # fmt: skip
    rules = decision.rules_by_key()
    return {
        "model": candidate["name"],
        "set": rset.name,
        "set_version": rset.version,
        "n": n,
        "router_version": routing.version,
        "incumbents": [mm["name"] for mm in incumbents],
        "decision": decision.decision,
        "path": decision.path,
        "reasons": decision.reasons,
        "rules": [r.as_dict() for r in decision.rules],
        "checks": {
            "gain": rules["quality_gain"].interval.estimate,
            "p95_ratio": rules["p95_bound"].interval.as_dict()["estimate"],
            "cost_ratio": rules["cost_bound"].interval.as_dict()["estimate"],
            "candidate_share": policies["router_with"].share.get(candidate["name"], 0.0),
            "candidate_error_rate": float(live.errors[:, 0].mean()) if n else 0.0,
            "error_rates": {name: float(live.errors[:, j].mean()) if n else 0.0 for j, name in enumerate(names)},
            "paired_queries": paired_outcomes(live, router.with_choice[rows], router.without_choice[rows])[0].n,
            "prediction_rows": decision.prediction_rows,
        },
        "parameters": asdict(gate),
        "policies": {name: p.as_dict() for name, p in policies.items()},
        "strongest_incumbent": names[strongest],
        "cheapest_incumbent": names[cheapest],
        "per_task": per_task,
        "frontier": frontiers(live, router.predicted[rows], router.predicted_without[rows], router.expected_cost,
                              router.expected_latency, router.with_mask, router.without_mask,
                              capable=capable),  # fmt: skip
        "recommended_policy": recommended,
        "expected": {
            name: {"cost_usd": _known(router.expected_cost[j]), "latency_ms": _known(router.expected_latency[j])}
            for j, name in enumerate(names)
        },
    }


def _run_summary(collector: LiveCollector, run: LookRun, plan, request: ValidateRequest) -> dict:
    more = run.decision.examples_needed - run.matrix.live.n
    return {
        "sequential": {
            **plan.as_dict(),
            "looks_taken": run.looks_taken,
            "examples_used": run.matrix.live.n,
            "examples_planned": plan.planned,
            "stopped": run.stopped,
            "more_examples_needed": (None if not np.isfinite(more) else int(np.ceil(max(0.0, more))))
            if run.decision.decision == "undecided" else 0,
        },
        "spend_usd": collector.spend.usd,
        "requests": collector.spend.requests,
        "outcomes_cost_usd": run.matrix.cost_usd,
        "budget_usd": request.budget_usd,
        "skipped_examples": run.matrix.skipped,
        "fresh": request.fresh,
        "retry_errors": request.retry_errors,
    }


def _known(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---- recording: the decision always, a status change only as asked ----------------------------


@dataclass(frozen=True)
class RunState:
    """What a validation judges and may change: the candidate's status, the router version and
    the candidate's token it routed with, and the routing policy. Taken when the run starts
    and again when its decision is recorded: a status, router or token that changed meanwhile
    (a `disable` during an incident, a `router train`, a `calibrate --refit`) is not overwritten
    by a decision about what was there before, and a policy set meanwhile is not replaced."""

    status: str
    router_version: str | None
    token_id: int | None
    policy: tuple[float, float]

    @classmethod
    def now(cls, store: Store, name: str, routing=None) -> "RunState":
        """The state in the store now; with ``routing`` (the loaded `RoutingContext` a run routes
        with), its router version and the candidate's token in it."""
        if routing is not None:
            router_version = routing.version
            token = routing.tokens.get(name)
            token_id = token["id"] if token else None
        else:
            current = store.current_router_version()
            router_version = current["version"] if current else None
            tokens = [t["id"] for t in store.fresh_tokens(router_version) if t["name"] == name] if router_version else []
            token_id = tokens[-1] if tokens else None
        policy = store.routing_policy()
        return cls(status=store.get_model(name)["status"], router_version=router_version, token_id=token_id,
                   policy=(float(policy["lambda_cost"]), float(policy["lambda_latency"])))

    def changed_since(self, earlier: "RunState") -> list[str]:
        """What changed that a decision about ``earlier`` must not overwrite (the policy aside)."""
        out = []
        if self.status != earlier.status:
            out.append(f"its status ({earlier.status} → {self.status})")
        if self.router_version != earlier.router_version:
            out.append(f"the router ({earlier.router_version} → {self.router_version})")
        elif self.token_id != earlier.token_id:
            out.append("its capability token (refitted)")
        return out


def _record(store: Store, candidate: dict, rset, result: dict, request: ValidateRequest,
            judged: RunState | None = None) -> None:
    """Decision + numbers + reasons into `validations`, the status move (if any), the policy and the
    events, in one transaction. The decision is always recorded; it moves the status and saves
    the policy only if what it judged (``judged``) still stands."""
    decision, summary = result["decision"], result["reasons"][-1]
    with store.write():
        model = store.get_model(candidate["name"])
        now = RunState.now(store, candidate["name"])
        changed = now.changed_since(judged) if judged is not None else []
        # what `lrcal enable` later checks the decision against: the token it judged, and that
        # it was not applied (a plain enable took a not-applied pass for a pass of the new token)
        result["judged_token_id"] = judged.token_id if judged is not None else None
        result["not_applied"] = changed
        store.add_validation(
            model["id"], rset.id, router_version=result["router_version"], decision=decision,
            reasons=result["reasons"], parameters=result["parameters"],
            results=finite_json({k: v for k, v in result.items() if k not in ("reasons",)}),
        )  # fmt: skip
        current = model["status"]
        moves, note = status_moves(current, decision, request)
        if changed:
            moves, note = [], (f"not applied: {' and '.join(changed)} changed while it ran; the decision is recorded, "
                               f"the status left as it is (run `lrcal live-validate {model['name']}` again)")
        event = finite_json({"set": rset.name, "gain": result["checks"]["gain"], "examples": result["n"]})
        if changed:
            event["not_applied"] = changed
        if not moves:
            store.log_event(f"validation_{decision}", model_id=model["id"], message=f"{summary} {note}".strip(),
                            data=event)  # fmt: skip
        for status in moves:
            if not lifecycle.can_transition(store.get_model(model["name"])["status"], status):
                raise LrcalError(lifecycle.explain_refusal(model["name"], current, status))
            reason = "enabled after passing live validation" if status == lifecycle.ENABLED else summary
            store.set_status(model["name"], status, reason=reason, event_kind=status, data=event)
        result["policy_saved"] = None
        if decision == "validated" and request.enable and not changed:
            if judged is not None and now.policy != judged.policy:
                note = (note + " " if note else "") + ("the routing policy was changed while it ran: the recommended "
                                                       "operating point was not saved over it")
            else:
                result["policy_saved"] = _save_policy(store, candidate["name"], result)
    result["status"] = store.get_model(candidate["name"])["status"]
    result["note"] = note


def status_moves(current: str, decision: str, request: ValidateRequest) -> tuple[list[str], str]:
    """The status changes a decision makes, and a note when it makes none it could have."""
    enabled = current == lifecycle.ENABLED
    if decision == "validated":
        if enabled:
            return [], "(stays enabled)"
        moves = [] if current == lifecycle.VALIDATED else [lifecycle.VALIDATED]
        if request.enable:
            return moves + [lifecycle.ENABLED], ""
        return moves, "run with --enable to route traffic to it"
    if decision == "rejected":
        if enabled and not request.apply:
            return [], "would reject; run with --apply to disable it (status rejected)"
        return ([] if current == lifecycle.REJECTED else [lifecycle.REJECTED]), ""
    return [], "(status unchanged)"


def _save_policy(store: Store, name: str, result: dict) -> dict | None:
    """The recommended operating point becomes the routing policy (when it differs)."""
    point = result["recommended_policy"]
    stored = store.routing_policy()
    if (point["lambda_cost"], point["lambda_latency"]) == (stored["lambda_cost"], stored["lambda_latency"]):
        return None
    return store.set_routing_policy(point["lambda_cost"], point["lambda_latency"], source=f"live-validate {name}",
                                    reason=f"recommended operating point when {name} passed")  # fmt: skip
