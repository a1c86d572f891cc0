"""Onboarding a calibrated model into the frozen shared router: fit its capability token from
its calibration outcomes, predict its per-task quality with an interval, store the token."""

from __future__ import annotations

import time
import warnings
from typing import Callable

import numpy as np

from lrcal.errors import LrcalError
from lrcal.services.calibration_basis import CalibrationBasis, calibration_basis
from lrcal.services.run_health import is_endpoint_error, measured
from lrcal.store import Store, loads

MIN_OUTCOMES = 16
WARN_BELOW = 64
NO_ROUTER_MESSAGE = (
    "no shared router has been trained yet: outcomes are stored; the capability token will be fitted "
    "by `lrcal router train` (it fits every calibrated model it did not train on)"
)


def latest_router_version(store: Store) -> dict | None:
    from lrcal.services.router_context import router_version_row

    return router_version_row(store)


def calibration_outcomes(store: Store, model: dict, basis: CalibrationBasis | None = None) -> list[dict]:
    """The model's latest outcome per calibration example over the runs that count
    (`calibration_basis`: not refused, not superseded by an edited set, not before --fresh)."""
    basis = basis or calibration_basis(store, model["id"])
    return store.model_outcomes(model["id"], kinds=["calibration"], left_out_runs=basis.left_out)


def calibration_rows(store: Store, model: dict) -> list[dict]:
    """`calibration_outcomes` without endpoint errors: a failed request says nothing about what
    the model can do."""
    return measured(calibration_outcomes(store, model))


def calibration_error_rate(store: Store, model: dict) -> float | None:
    """Share of the model's counted calibration outcomes that are endpoint errors (None: none)."""
    return error_share(calibration_outcomes(store, model))


def error_share(outcomes: list[dict]) -> float | None:
    return (sum(1 for r in outcomes if is_endpoint_error(r)) / len(outcomes)) if outcomes else None


def onboard_model(
    store: Store,
    name: str,
    *,
    seed: int = 0,
    bootstrap: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict:
    """Fit ``name``'s token for the current router (every router weight frozen) and store it.

    The token is fitted in the pool it will be routed in: the enabled models the router has a
    token for (else every model in its bank), with their outcomes on the same calibration
    examples where they have them."""
    from lrcal.router.cards import card_to_json
    from lrcal.router.token_fit import MIN_ROWS, OnboardConfig, bootstrap_task_quality, fit_token
    from lrcal.router.train import task_ids_for
    from lrcal.services.router_context import load_routing

    started = time.perf_counter()
    routing = load_routing(store)
    router = routing.router
    model = store.get_model(name)
    basis = calibration_basis(store, model["id"])
    outcomes = calibration_outcomes(store, model, basis)  # once: the fit's rows and the error rate
    # in query order, not the order outcomes arrived in (concurrent requests finish in any order,
    # and the fit's folds and bootstrap draw by position: the same outcomes gave other tokens)
    rows = sorted(measured(outcomes), key=lambda r: r["query_key"])
    left_out = basis.describe_left_out()
    if len(rows) < max(MIN_OUTCOMES, MIN_ROWS):
        why = f" (left out: {'; '.join(left_out)})" if left_out else ""
        raise LrcalError(
            f"model '{name}' has {len(rows)} calibration outcomes without an endpoint error in the runs that "
            f"count{why}; at least {MIN_OUTCOMES} are needed to fit a token"
        )
    if left_out and notify is not None:
        notify(f"{name}'s token is fitted on {len(rows)} outcomes; left out: " + "; ".join(left_out))
    if len(rows) < WARN_BELOW and notify is not None:
        notify(f"warning: only {len(rows)} calibration outcomes for {name}; 64–128 give a much better token")
    examples = [store.example(r["example_id"]) for r in rows]
    tasks = [ex["task_group"] for ex in examples]
    task_ids = task_ids_for(router.spec, tasks)
    arrays = _outcome_arrays(rows)
    X = routing.features(examples)
    router.remove_model(name)  # a previous onboarded token of this model must not sit in its own pool
    pool = [m["name"] for m in store.list_models(["enabled"]) if m["name"] != name and m["name"] in router.cards]
    if not pool:
        pool = [m for m in router.models if m != name]
    pool_scores = _pool_scores(store, pool, [r["query_key"] for r in rows])
    config = OnboardConfig() if bootstrap is None else OnboardConfig(bootstrap=bootstrap)
    extras = {k: arrays[k] for k in ("output_tokens", "latency_ms", "cost_usd", "errors")}
    result = fit_token(router, name, X, arrays["scores"], task_ids, pool=pool, pool_scores=pool_scores,
                       config=config, seed=seed, **extras)
    card = result.card
    router.add_model(card)
    labels = [t or "(none)" for t in tasks]
    predicted = bootstrap_task_quality(router, card, X, result.profile_scores, task_ids, labels, pool=pool, extras=extras,
                                       replicates=config.bootstrap, seed=seed)
    by_task = _measured_by_task(rows, tasks)
    per_task = {
        task: {**predicted[task], "measured": by_task[task][0], "n": by_task[task][1]}
        for task in predicted
    }
    seconds = time.perf_counter() - started
    fit_details = {**result.details(), "pool": pool, "total_seconds": seconds, "runs": basis.runs,
                   "left_out_runs": left_out}
    set_versions = sorted({r["set_id"] for r in rows})
    set_version = ",".join(store.get_set_by_id(s)["version"][:12] for s in set_versions)
    token = {
        "fitted": True,
        "model": name,
        "router_version": routing.version,
        "n_examples": len(rows),
        "fit_seconds": result.seconds,
        "cv_score": result.cv_score,
        "cv_profile_only": result.cv_profile_only,
        "prior_strength": result.prior_strength,
        "method": result.method,
        "pool": pool,
        "per_task": per_task,
        "error_rate": error_share(outcomes),  # errors are excluded from the fit, not scored 0
        "runs": basis.runs,
        "left_out_runs": left_out,
    }
    with store.write():
        store.add_model_token(
            model["id"],
            routing.version,
            token=card_to_json(card),
            prior_strength=result.prior_strength,
            fit_loss=result.fit_loss,
            cv_score=result.cv_score,
            per_task=per_task,
            n_examples=len(rows),
            set_version=set_version,
            fit_seconds=result.seconds,
            details=fit_details,
        )
        store.log_event(
            "token_fitted",
            model_id=model["id"],
            message=f"capability token fitted for router {routing.version} from {len(rows)} outcomes "
            f"({fit_method_words(result.method, result.prior_strength)}, {result.seconds:.2f}s)",
            data={"router_version": routing.version, "n": len(rows), "method": result.method,
                  "prior_strength": result.prior_strength},
        )
    return token


def fit_method_words(method: str | None, prior_strength: float | None) -> str:
    """How the token was fitted, in words (event messages never show internal values such as None)."""
    if method == "profile" or prior_strength is None:
        return "profile only (cross-validation kept the residual out)"
    return f"profile + fitted residual, prior strength {prior_strength:g}"


def _pool_scores(store: Store, pool: list[str], query_keys: list[str]) -> np.ndarray:
    """[n, len(pool)] the pool models' latest scores on these queries (`Store.model_outcomes`'
    ``query_key``; NaN where none)."""
    out = np.full((len(query_keys), len(pool)), np.nan)
    where = {key: i for i, key in enumerate(query_keys)}
    for j, name in enumerate(pool):
        model = store.find_model(name)
        if model is None:
            continue
        # the runs that count: an incumbent's refused run (every reply unreadable, scored 0) made
        # it look wrong on every row the newcomer was ranked against
        counted = store.model_outcomes(model["id"], kinds=["calibration", "import"],
                                       left_out_runs=calibration_basis(store, model["id"]).not_counted)
        for row in counted:
            i = where.get(row["query_key"])
            if i is not None and row["score"] is not None and not is_endpoint_error(row):
                out[i, j] = float(row["score"])
    return out


def _outcome_arrays(rows: list[dict]) -> dict[str, np.ndarray]:
    def col(key):
        return np.asarray([np.nan if r[key] is None else float(r[key]) for r in rows], dtype=float)

    return {
        "scores": np.asarray([float(r["score"] or 0.0) for r in rows]),
        "output_tokens": col("output_tokens"),
        "latency_ms": col("latency_ms"),
        "cost_usd": col("cost_usd"),
        "errors": np.asarray([bool(r["error_kind"]) for r in rows]),
    }


def _nanmean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _measured_by_task(rows: list[dict], tasks: list[str | None]) -> dict[str, tuple[float, int]]:
    groups: dict[str, list[float]] = {}
    for row, task in zip(rows, tasks):
        # the score the fit read (an ANLS answer at 0.83 is correct, and scored 0.83)
        groups.setdefault(task or "(none)", []).append(float(row["score"] or 0.0))
    return {t: (float(np.mean(v)), len(v)) for t, v in groups.items()}


def fit_after_calibration(
    store: Store, model_name: str, report: dict, *, refit: bool = False, notify: Callable[[str], None] | None = None
) -> dict:
    """Fit the model's capability token after calibration, or explain why it was not fitted."""
    version = latest_router_version(store)
    if version is None:
        return {"fitted": False, "message": NO_ROUTER_MESSAGE}
    if not refit and model_name in (loads(version["models"], []) or []):
        return {
            "fitted": True,
            "source": "trained",
            "router_version": version["version"],
            "message": f"{model_name} is one of the models router {version['version']} was trained on; "
            "its token was learned with the router (use --refit to onboard it from these outcomes instead)",
            "per_task": {},
        }
    if report.get("completed", 0) < report.get("examples", 0):
        return {"fitted": False, "message": "calibration is incomplete; the token is fitted once every example has an outcome"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return onboard_model(store, model_name, notify=notify)
