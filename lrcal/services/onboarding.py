"""Onboarding a calibrated model into the frozen shared router: fit its capability token from
its calibration outcomes, predict its per-task quality with an interval, store the token."""

from __future__ import annotations

import time
import warnings
from typing import Callable

import numpy as np

from lrcal.errors import LrcalError
from lrcal.store import Store, loads, utcnow
from lrcal.store.store import _json

MIN_OUTCOMES = 16
WARN_BELOW = 64
NO_ROUTER_MESSAGE = (
    "no shared router has been trained yet: outcomes are stored; the capability token will be fitted "
    "by `lrcal router train` (it fits every calibrated model it did not train on)"
)


def latest_router_version(store: Store) -> dict | None:
    from lrcal.services.routing import router_version_row

    return router_version_row(store)


def calibration_rows(store: Store, model: dict) -> list[dict]:
    """The model's latest outcome per calibration example (across its calibration runs)."""
    return store.model_outcomes(model["id"], kinds=["calibration"])


def onboard_model(
    store: Store,
    name: str,
    *,
    seed: int = 0,
    bootstrap: int = 200,
    notify: Callable[[str], None] | None = None,
) -> dict:
    """Fit ``name``'s token for the current router (every router weight frozen) and store it."""
    from lrcal.router.api import ModelCard
    from lrcal.router.train import task_ids_for
    from lrcal.services.routing import card_to_json, load_routing

    started = time.perf_counter()
    routing = load_routing(store)
    router = routing.router
    model = store.get_model(name)
    rows = calibration_rows(store, model)
    if len(rows) < MIN_OUTCOMES:
        raise LrcalError(
            f"model '{name}' has {len(rows)} calibration outcomes; at least {MIN_OUTCOMES} are needed to fit a token"
        )
    if len(rows) < WARN_BELOW and notify is not None:
        notify(f"warning: only {len(rows)} calibration outcomes for {name}; 64–128 give a much better token")
    examples = [store.example(r["example_id"]) for r in rows]
    tasks = [ex["task_group"] for ex in examples]
    task_ids = task_ids_for(router.spec, tasks)
    arrays = _outcome_arrays(rows)
    X = routing.features(examples)

    def card_for(idx: np.ndarray) -> ModelCard:
        profile, task_accuracy = router.profile_from_outcomes(task_ids[idx], **{k: v[idx] for k, v in arrays.items()})
        return ModelCard(
            name=name,
            profile=profile,
            task_accuracy=task_accuracy,
            n_rows=int(len(idx)),
            residuals=None,
            source="onboarded",
            expected_output_tokens=_nanmean(arrays["output_tokens"][idx]),
            expected_latency_ms=_nanmean(arrays["latency_ms"][idx]),
            expected_cost_usd=_nanmean(arrays["cost_usd"][idx]),
        )

    all_rows = np.arange(len(rows))
    card = card_for(all_rows)
    fit_details = {"method": "profile"}
    router.add_model(card)
    predicted = _per_task_prediction(router, X, name, tasks)

    # Uncertainty: the whole onboarding repeated on bootstrap resamples of the calibration rows.
    rng = np.random.default_rng(seed)
    boot: dict[str, list[float]] = {t: [] for t in predicted}
    for _ in range(bootstrap):
        idx = rng.integers(0, len(rows), size=len(rows))
        router.add_model(card_for(idx))
        for task, value in _per_task_prediction(router, X, name, tasks).items():
            boot[task].append(value)
    router.add_model(card)
    measured = _measured_by_task(rows, tasks)
    per_task = {
        task: {
            "predicted": predicted[task],
            "low": float(np.percentile(boot[task], 5)) if boot[task] else predicted[task],
            "high": float(np.percentile(boot[task], 95)) if boot[task] else predicted[task],
            "measured": measured[task][0],
            "n": measured[task][1],
        }
        for task in predicted
    }
    seconds = time.perf_counter() - started
    set_versions = sorted({r["set_id"] for r in rows})
    set_version = ",".join(store.get_set_by_id(s)["version"][:12] for s in set_versions)
    token = {
        "fitted": True,
        "model": name,
        "router_version": routing.version,
        "n_examples": len(rows),
        "fit_seconds": seconds,
        "cv_score": fit_details.get("cv_score"),
        "prior_strength": fit_details.get("prior_strength"),
        "method": fit_details["method"],
        "per_task": per_task,
    }
    with store.write():
        store.db["model_tokens"].insert(
            {
                "model_id": model["id"],
                "router_version": routing.version,
                "token": card_to_json(card),
                "prior_strength": fit_details.get("prior_strength"),
                "fit_loss": fit_details.get("fit_loss"),
                "cv_score": fit_details.get("cv_score"),
                "per_task": _json(per_task),
                "n_examples": len(rows),
                "set_version": set_version,
                "fit_seconds": seconds,
                "stale": 0,
                "details": _json(fit_details),
                "created_at": utcnow(),
            }
        )
        store.db["events"].insert(
            {
                "ts": utcnow(),
                "model_id": model["id"],
                "kind": "token_fitted",
                "message": f"capability token fitted for router {routing.version} from {len(rows)} outcomes "
                f"({fit_details['method']}, {seconds:.2f}s)",
                "data": _json({"router_version": routing.version, "n": len(rows)}),
            }
        )
    return token


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


def _per_task_prediction(router, X: np.ndarray, name: str, tasks: list[str | None]) -> dict[str, float]:
    score = router.predict(X, [name]).score[:, 0]
    out: dict[str, float] = {}
    labels = np.asarray([t or "(none)" for t in tasks], dtype=object)
    for task in sorted(set(labels)):
        out[task] = float(score[labels == task].mean())
    return out


def _measured_by_task(rows: list[dict], tasks: list[str | None]) -> dict[str, tuple[float, int]]:
    groups: dict[str, list[float]] = {}
    for row, task in zip(rows, tasks):
        groups.setdefault(task or "(none)", []).append(float(row["correct"] or 0))
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
