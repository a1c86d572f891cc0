"""`lrcal calibrate`: run a calibration set against a model and store every outcome."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from lrcal import lifecycle
from lrcal.errors import LrcalError, UsageError
from lrcal.services.circuit_breaker import CircuitBreaker, CircuitOpen
from lrcal.services.collection import (ProgressCallback, collect_outcomes, errors_by_kind, registered_concurrency,
                                      summarize, summarize_by_task)
from lrcal.services.run_health import MAX_ERROR_SHARE, run_health
from lrcal.services.sets import ensure_set, stratified_subset
from lrcal.store import Store

RUN_KIND = "calibration"


@dataclass
class CalibrateRequest:
    model: str
    set_ref: str | None = "builtin-v1"  # None: with --refit, the set of the model's latest run
    limit: int | None = None
    concurrency: int | None = None
    fresh: bool = False  # a new run: outcomes stored for this model × set are not reused
    retry_errors: bool = False  # ask again for the examples whose stored outcome is an endpoint error
    adaptive: object | None = None  # an `AdaptivePlan`: choose the examples by value of information


DEFAULT_SET = CalibrateRequest.set_ref


def _same_run_args(set_name: str | None, limit: int | None) -> str:
    """The options that point a retry at the same run: the printed advice retried the default
    set's run, never the one that failed on another set."""
    return (f" --set {set_name}" if set_name and set_name != DEFAULT_SET else "") + (f" --limit {limit}" if limit else "")


def _wider_limit(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else max(a, b)


def _refuse_if_removed(store: Store, name: str) -> dict:
    """The model's row; a removed model is never asked again (its outcomes are kept for audit)."""
    model = store.get_model(name)
    if model["status"] == lifecycle.REMOVED:
        raise LrcalError(lifecycle.explain_refusal(model["name"], model["status"], lifecycle.CALIBRATED))
    return model


class NotCalibrated(LrcalError):
    """The run finished but its outcomes cannot calibrate the model (too many errors or non-answers)."""


def calibrate(
    store: Store,
    request: CalibrateRequest,
    *,
    on_start: Callable[[int, int], None] | None = None,
    on_outcome: ProgressCallback | None = None,
    transport=None,
    breaker: CircuitBreaker | None = None,
) -> dict:
    """Run (or resume) a calibration and return its report (see docs/cli.md for the JSON shape).

    The report's ``health`` says whether the outcomes can calibrate the model; when they cannot,
    ``not_calibrated`` says why in one sentence and the model's status does not change."""
    model = _refuse_if_removed(store, request.model)
    if model["source"] != "endpoint" or not model["base_url"]:
        raise LrcalError(f"model '{model['name']}' has no endpoint (it was imported from outcome logs)")
    if request.limit is not None and request.limit < 1:
        raise LrcalError("--limit must be at least 1")
    limit = registered_concurrency(model)
    if request.concurrency is not None and request.concurrency > limit:
        raise UsageError(
            f"--concurrency {request.concurrency} is above {model['name']}'s max concurrency {limit}; if the endpoint "
            f"takes more, raise it first: lrcal models set {model['name']} --max-concurrency {request.concurrency}"
        )
    if request.fresh and request.retry_errors:
        raise UsageError("--fresh and --retry-errors exclude each other: --fresh asks again for every example")
    if request.adaptive is not None:
        return _calibrate_adaptive(store, model, request, on_start=on_start, on_outcome=on_outcome, transport=transport,
                                   breaker=breaker)
    with store.lock(f"calibrate:{model['name']}", purpose="calibrate"):
        _refuse_if_removed(store, model["name"])  # removed between the check above and the lock
        rset = ensure_set(store, request.set_ref or "builtin-v1")
        selection = stratified_subset(rset.examples, request.limit)
        run = None if request.fresh else store.latest_run(model["id"], rset.id, RUN_KIND)
        if run is not None and (run["parameters"] or {}).get("adaptive") is not None:
            # an adaptive run's examples follow its sampler: a plain calibration starts its own run
            # (resuming it asked the whole pool and left the adaptive summary describing 56 of 512)
            run = None
        parameters = {"limit": request.limit, "concurrency": request.concurrency, "set_ref": request.set_ref}
        if run is None:
            run_id = store.create_run(model["id"], rset.id, RUN_KIND, {**parameters, "fresh": request.fresh})
            resumed = False
        else:
            run_id = run["id"]
            resumed = True
        done = store.done_example_pks(run_id)
        retried = store.error_example_pks(run_id) if request.retry_errors else set()
        pending = [ex for ex in selection if ex["id"] not in done or ex["id"] in retried]
        if run is not None and (pending or run["status"] != "completed"):
            # a completed run keeps the widest limit it was asked (its outcomes cover that selection);
            # an unfinished one is judged, and finished, on this request's selection
            widen = run["status"] == "completed" and "limit" in run["parameters"]
            limit = _wider_limit(run["parameters"]["limit"], request.limit) if widen else request.limit
            store.update_run(run_id, status="running", pid=_pid(),
                             parameters={**run["parameters"], **parameters, "limit": limit})
        if on_start is not None:
            on_start(len(selection), len(selection) - len(pending))
        if pending:
            try:
                asyncio.run(
                    collect_outcomes(
                        store,
                        model,
                        run_id,
                        pending,
                        concurrency=request.concurrency,
                        on_outcome=on_outcome,
                        transport=transport,
                        breaker=breaker,
                        replace_errors=request.retry_errors,
                    )
                )
            except BaseException as exc:
                _mark_interrupted(store, run_id)
                if isinstance(exc, CircuitOpen):
                    stored = len(store.done_example_pks(run_id))
                    raise LrcalError(
                        f"calibration of {model['name']} stopped: {exc}; {stored} of {len(selection)} outcomes "
                        f"are stored. Fix the cause, then run `lrcal calibrate {model['name']}"
                        f"{_same_run_args(request.set_ref, request.limit)} --retry-errors`"
                    ) from None
                raise
        selected = {ex["id"] for ex in selection}
        rows = [r for r in store.run_outcomes(run_id) if r["example_id"] in selected]
        complete = len(rows) == len(selection)
        report = build_report(model["name"], rset.name, rset.version, len(selection), rows)
        report["run_id"] = run_id
        report["resumed"] = resumed
        report["requested"] = len(pending)
        health = run_health(rows)
        report["health"] = health.to_dict()
        if complete:
            finished_now = bool(pending) or run is None or run["status"] != "completed"
            if finished_now:
                store.finish_run(run_id, "completed")
            # a run killed between finishing and the status change left the model 'registered'
            # with nothing left to ask: the rerun applies the status it missed
            missed = not finished_now and model["status"] == lifecycle.REGISTERED
            if health.trusted and (finished_now or missed):
                _mark_calibrated(store, model, report)
            elif finished_now and not health.trusted:
                store.log_event("calibration_refused", model_id=model["id"], message=f"not calibrated: {health.problem}",
                                data={"run_id": run_id, **health.to_dict()})  # fmt: skip
            if not health.trusted:
                report["not_calibrated"] = (
                    f"{model['name']} not calibrated by this run: {health.problem}. Fix the endpoint, then run "
                    f"`lrcal calibrate {model['name']}{_same_run_args(request.set_ref, request.limit)} "
                    + ("--retry-errors`" if health.errors and health.error_rate >= MAX_ERROR_SHARE else "--fresh`")
                )
        else:
            store.update_run(run_id, status="interrupted")
        report["status"] = store.get_model(model["name"])["status"]
        return report


def _calibrate_adaptive(store: Store, model: dict, request: CalibrateRequest, *, on_start, on_outcome, transport,
                        breaker) -> dict:
    """`lrcal calibrate --adaptive`: batches chosen by `lrcal.services.adaptive_calibration`."""
    from lrcal.services.adaptive_calibration import default_incumbents, run_adaptive, summary
    from lrcal.services.router_context import load_routing, router_version_row

    plan = request.adaptive
    if request.limit is not None or request.retry_errors:
        raise UsageError("--adaptive chooses its own examples: --limit and --retry-errors do not apply (use --budget)")
    with store.lock(f"calibrate:{model['name']}", purpose="calibrate"):
        _refuse_if_removed(store, model["name"])
        def pool_larger_than_the_budget(cset) -> None:  # checked before the set is stored
            if len(cset.examples) <= plan.budget:
                raise UsageError(f"--adaptive needs a candidate pool larger than the budget: {cset.name} has "
                                 f"{len(cset.examples)} examples, --budget is {plan.budget}")

        rset = ensure_set(store, request.set_ref, check=pool_larger_than_the_budget)
        run = None if request.fresh else store.latest_run(model["id"], rset.id, RUN_KIND)
        if run is not None and (run["parameters"] or {}).get("adaptive") is None:
            run = None  # a plain calibration on this set: the adaptive sequence starts its own run
        if run is not None:  # resumed as it was asked (a run from before `prior_scale` held the prior fully)
            stored = run["parameters"]["adaptive"]
            as_asked = plan.resumed_plan(stored)
            if as_asked is None:
                raise UsageError(f"the stored adaptive run of {model['name']} on {rset.name} used --budget {stored['budget']} "
                                 f"--batch {stored['batch']} (seed {stored['seed']}); rerun with those to resume, or add --fresh")
            plan = as_asked
        current = router_version_row(store)
        if current is None:
            raise LrcalError("adaptive calibration needs a trained router (its view of the incumbents decides where "
                             "examples are worth asking); train one, or calibrate without --adaptive")
        stored_version = run["parameters"].get("router_version") if run is not None else None
        if stored_version is not None and stored_version != current["version"]:
            raise UsageError(f"the stored adaptive run was chosen with router {stored_version}, the current one is "
                             f"{current['version']}: its sequence cannot be resumed; add --fresh")
        # the sequence depends on the router and the incumbents: a resumed run keeps those it started with
        parameters = {"set_ref": request.set_ref, "concurrency": request.concurrency, "adaptive": plan.to_dict(),
                      "router_version": current["version"],
                      "incumbents": run["parameters"].get("incumbents") if run is not None else None}
        routing = load_routing(store)  # once: the incumbents and the sampler read the same router
        parameters["incumbents"] = parameters["incumbents"] or default_incumbents(store, model["name"], routing.router)
        # ... and the same incumbents' tokens: a refitted incumbent changes the scores the choices
        # are made against (a resume then asked 24 examples the uninterrupted run never chose)
        cards_digest = incumbent_cards_digest(routing.router, parameters["incumbents"])
        stored_digest = run["parameters"].get("incumbent_cards") if run is not None else None
        if stored_digest is not None and stored_digest != cards_digest:
            raise UsageError(f"an incumbent's capability token changed since the adaptive run of {model['name']} "
                             f"started (e.g. `calibrate --refit`): its sequence cannot be resumed; add --fresh")
        parameters["incumbent_cards"] = cards_digest
        # what the run keeps: "fresh" above all, which `calibration_basis` reads to leave the runs
        # before a --fresh run out (the summary written below replaced it, and a finished adaptive
        # --fresh run let the old endpoint's outcomes back into the token fit)
        stored = {**parameters, "fresh": request.fresh} if run is None else {**run["parameters"], **parameters}
        if run is None:
            run_id, resumed = store.create_run(model["id"], rset.id, RUN_KIND, stored), False
        else:
            run_id, resumed = run["id"], True
            store.update_run(run_id, status="running", pid=_pid(), parameters=stored)
        stored_before = len(store.done_example_pks(run_id))
        if on_start is not None:
            on_start(plan.budget, stored_before)
        try:
            state, sampler, version, incumbents = run_adaptive(
                store, model, run_id, rset.examples, plan, concurrency=request.concurrency,
                incumbents=parameters["incumbents"], on_outcome=on_outcome, transport=transport, breaker=breaker,
                routing=routing, retry_tail_errors=resumed and run["status"] != "completed")
        except BaseException as exc:
            _mark_interrupted(store, run_id)
            if isinstance(exc, CircuitOpen):
                raise LrcalError(f"adaptive calibration of {model['name']} stopped: {exc}; the outcomes so far are "
                                 f"stored. Fix the cause, then run the same command to resume") from None
            raise
        asked = {rset.examples[i]["id"] for i in state.asked}
        rows = [r for r in store.run_outcomes(run_id) if r["example_id"] in asked]
        report = build_report(model["name"], rset.name, rset.version, len(asked), rows)
        # asked by this invocation (a resumed run reuses what it had): not the sequence's length
        report.update(run_id=run_id, resumed=resumed, requested=len(store.done_example_pks(run_id)) - stored_before)
        report["adaptive"] = summary(state, sampler, plan, version, incumbents)
        health = run_health(rows)
        report["health"] = health.to_dict()
        store.update_run(run_id, parameters={**stored, "summary": report["adaptive"]})
        finished_now = resumed is False or run["status"] != "completed"
        if finished_now:
            store.finish_run(run_id, "completed")
        if health.trusted and (finished_now or model["status"] == lifecycle.REGISTERED):  # see `calibrate`
            _mark_calibrated(store, model, report)
        if not health.trusted:
            report["not_calibrated"] = (f"{model['name']} not calibrated by this run: {health.problem}. Fix the endpoint, "
                                        f"then run `lrcal calibrate {model['name']} --adaptive --fresh`")
        report["status"] = store.get_model(model["name"])["status"]
        return report


def incumbent_cards_digest(router, incumbents) -> str:
    """A digest of the incumbents' cards (token, profile, levels) in ``router``."""
    import hashlib

    from lrcal.router.cards import card_to_json

    digest = hashlib.sha256()
    for name in sorted(incumbents or []):
        card = router.cards.get(name)
        digest.update(f"{name}\0{card_to_json(card) if card is not None else 'absent'}\0".encode())
    return digest.hexdigest()[:16]


def adaptive_summary(store: Store, model_id: int) -> dict | None:
    """The summary of the model's latest finished adaptive calibration (None: it has none)."""
    for run in reversed(store.runs(model_id=model_id, kind=RUN_KIND)):
        summary = (run.get("parameters") or {}).get("summary")
        if summary:
            return summary
    return None


def _mark_interrupted(store: Store, run_id: int) -> None:
    """Even on a full disk (the store's reserve); should that fail too, the run stays 'running'
    with the pid of a finished process, which a rerun resumes all the same."""
    try:
        store.mark_interrupted(run_id)
    except LrcalError:
        pass


def calibrate_and_fit(
    store: Store,
    request: CalibrateRequest,
    *,
    fit: bool = True,
    refit: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_outcome: ProgressCallback | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict:
    """`lrcal calibrate`: run (or resume) the calibration, then fit the model's capability token.

    ``refit``: no endpoint call; the report is rebuilt from the stored outcomes and the token
    refitted from them (e.g. after a router retrain). ``fit`` off: outcomes only. The report's
    ``token`` says what the fit did (or why there was none)."""
    if refit:
        _refuse_if_removed(store, request.model)  # no new token for a removed model either
        report = calibration_report(store, request.model, set_ref=request.set_ref, limit=request.limit)
    else:
        report = calibrate(store, request, on_start=on_start, on_outcome=on_outcome)
    if report.get("not_calibrated"):
        report["token"] = {"fitted": False, "message": "no token: the model is not calibrated"}
        return report
    if fit:
        from lrcal.services.onboarding import fit_after_calibration

        report["token"] = fit_after_calibration(store, request.model, report, refit=refit, notify=notify)
    return report


def _pid() -> int:
    import os

    return os.getpid()


def _mark_calibrated(store: Store, model: dict, report: dict) -> None:
    data = {
        "set": report["set"],
        "set_version": report["set_version"],
        "run_id": report["run_id"],
        "accuracy": report["accuracy"],
        "examples": report["examples"],
        "errors": report["errors"],
    }
    accuracy = "n/a" if report["accuracy"] is None else f"{report['accuracy']:.3f}"
    message = (
        f"calibrated on {report['set']} ({report['examples']} examples, "
        f"accuracy {accuracy} of answered, {report['errors']} errors excluded)"
    )
    if lifecycle.can_transition(model["status"], lifecycle.CALIBRATED) and model["status"] not in (
        lifecycle.ENABLED,
        lifecycle.DISABLED,
    ):
        store.set_status(model["name"], lifecycle.CALIBRATED, reason=message, data=data)
    else:
        # Re-calibrating an enabled/disabled model keeps it where it is; the audit log says so.
        store.log_event("calibrated", model_id=model["id"], message=message, data=data)


def build_report(model: str, set_name: str, set_version: str, n_examples: int, rows: list[dict]) -> dict:
    overall = summarize(rows)
    return {
        "model": model,
        "set": set_name,
        "set_version": set_version,
        "examples": n_examples,
        "completed": len(rows),
        "errors": overall["errors"],
        "error_rate": overall["error_rate"],
        "errors_by_kind": errors_by_kind(rows),
        "accuracy": overall["accuracy"],
        "mean_score": overall["mean_score"],
        "latency_ms_p50": overall["latency_ms_p50"],
        "latency_ms_p95": overall["latency_ms_p95"],
        "cost_usd_mean": overall["cost_usd_mean"],
        "per_task": summarize_by_task(rows),
        "token": None,
    }


def calibration_report(store: Store, model_name: str, *, set_ref: str | None = None, limit: int | None = None) -> dict:
    """The report of the model's latest calibration run on a set (None: on any set), from stored
    outcomes only. An adaptive run is reported on the examples its sampler asked; a run whose
    outcomes cannot be trusted says so in ``not_calibrated``, as `calibrate` does."""
    model = store.get_model(model_name)
    if set_ref is None:
        runs = store.runs(model["id"], kind=RUN_KIND)
        if not runs:
            raise LrcalError(f"model '{model_name}' has no calibration run; run `lrcal calibrate {model_name}`")
        run = runs[-1]
        set_row, examples = store.get_set_by_id(run["set_id"]), store.set_examples(run["set_id"])
    else:
        rset = ensure_set(store, set_ref)
        run, set_row, examples = store.latest_run(model["id"], rset.id, RUN_KIND), rset.row, rset.examples
        if run is None:
            raise LrcalError(f"model '{model_name}' has no calibration run on {rset.name}; run "
                             f"`lrcal calibrate {model_name}`, or leave --set out to refit from its latest run")
    outcomes = store.run_outcomes(run["id"])
    if (run["parameters"] or {}).get("adaptive") is not None:
        # the sampler chose which examples to ask: those are the run's selection
        asked = {r["example_id"] for r in outcomes}
        selection = [ex for ex in examples if ex["id"] in asked]
    else:
        selection = stratified_subset(examples, limit if limit is not None else run["parameters"].get("limit"))
    selected = {ex["id"] for ex in selection}
    rows = [r for r in outcomes if r["example_id"] in selected]
    report = build_report(model["name"], set_row["name"], set_row["version"], len(selection), rows)
    report.update(run_id=run["id"], resumed=False, requested=0, status=model["status"])
    health = run_health(rows)
    report["health"] = health.to_dict()
    if not health.trusted and rows:
        params = run["parameters"] or {}
        same_run = _same_run_args(params.get("set_ref") or set_row["name"], params.get("limit"))
        report["not_calibrated"] = (f"{model['name']}: run {run['id']}'s outcomes cannot be trusted: {health.problem}; "
                                    f"no token is fitted from them. Fix the endpoint, then run "
                                    f"`lrcal calibrate {model['name']}{same_run} --retry-errors` or `--fresh`")
    return report
