"""One model in detail: per-task calibration accuracy against the interval onboarding
predicted and the live validation's, latency histogram, errors, validation and events."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lrcal.errors import LrcalError
from lrcal.services.review.models import CALIBRATION_KINDS, ModelRow, latest_validations, models_table
from lrcal.store import Store


@dataclass(frozen=True)
class TaskRow:
    task: str
    n: int
    measured: float | None  # calibration accuracy on this group
    predicted: float | None  # onboarding's predicted quality (None: trained with the router)
    low: float | None
    high: float | None
    live: float | None  # live-validation accuracy of this model on the group (when it was the candidate)
    live_n: int

    @property
    def inside(self) -> bool | None:
        """Is the measured accuracy inside (or above) the predicted interval?"""
        if self.measured is None or self.low is None:
            return None
        return self.measured >= self.low - 1e-9


@dataclass
class ModelDetail:
    model: dict
    row: ModelRow
    tasks: list[TaskRow]
    latency_bins: list[tuple[float, float, int]]  # (from ms, to ms, count) of successful calls
    errors: dict[str, int]
    validation: dict | None  # latest validations row (decoded)
    events: list[dict]  # newest first
    calibration: dict  # summarize(): n, accuracy, latency p50/p95, mean cost, errors
    # the latest adaptive calibration (`lrcal calibrate --adaptive`): examples spent per task group,
    # the posterior interval that stands there, why it stopped; None: never calibrated adaptively
    adaptive: dict | None = None


def latency_histogram(values: Sequence[float], bins: int = 8) -> list[tuple[float, float, int]]:
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if values.size == 0:
        return []
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        return [(lo, hi, int(values.size))]
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return [(float(edges[i]), float(edges[i + 1]), int(counts[i])) for i in range(len(counts))]


def live_by_task(store: Store, model_id: int, validation: dict | None) -> dict[str, dict]:
    """The model's live accuracy per task group on the validation set: its own last validation's
    set, else the set of the newest validation — where an incumbent was measured beside the
    candidate (validation asks every model in the pool)."""
    from lrcal.services.collection import summarize_by_task

    set_id = validation["set_id"] if validation else store.latest_validation_set_id()
    if set_id is None:
        return {}
    return summarize_by_task(store.model_outcomes(model_id, set_id=set_id, kinds=["validation"]))


def model_detail(store: Store, name: str) -> ModelDetail:
    from lrcal.services.calibration import adaptive_summary
    from lrcal.services.collection import errors_by_kind, summarize, summarize_by_task

    model = store.get_model(name)
    row = next((r for r in models_table(store) if r.name == name), None)
    if row is None:  # removed since the view was loaded (a bare StopIteration showed an empty error)
        raise LrcalError(f"model '{name}' was removed (`lrcal models --removed` lists it)")
    from lrcal.services.calibration_basis import calibration_basis

    # what the token rests on: refused, superseded and pre---fresh calibration runs left out
    cal = store.model_outcomes(model["id"], kinds=list(CALIBRATION_KINDS),
                               left_out_runs=calibration_basis(store, model["id"]).not_counted)
    by_task = summarize_by_task(cal)
    predicted = store.latest_token_per_task(model["id"])
    validation = latest_validations(store).get(model["id"])
    live = live_by_task(store, model["id"], validation)
    tasks = []
    for task in sorted(set(by_task) | set(predicted)):
        summary = by_task.get(task, {})
        pred = predicted.get(task) or {}
        live_row = live.get(task) or {}
        tasks.append(
            TaskRow(
                task=task,
                n=int(summary.get("n") or 0),
                measured=summary.get("accuracy"),
                predicted=pred.get("predicted"),
                low=pred.get("low"),
                high=pred.get("high"),
                live=live_row.get("accuracy"),
                live_n=int(live_row.get("n") or 0),
            )
        )
    latencies = [r["latency_ms"] for r in cal if not r["error_kind"] and r["latency_ms"] is not None]
    return ModelDetail(
        model=model,
        row=row,
        tasks=tasks,
        latency_bins=latency_histogram(latencies),
        errors=errors_by_kind(cal),
        validation=validation,
        events=store.events(name),
        calibration=summarize(cal),
        adaptive=adaptive_summary(store, model["id"]),
    )
