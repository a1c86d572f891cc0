"""The Charts tab's data: each model's quality vs p50 latency, and the validations' frontiers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrcal.services.review.models import ModelRow, models_table
from lrcal.services.review.routing import finite_mean, finite_p50
from lrcal.services.review.snapshot import RoutingSnapshot
from lrcal.store import Store


@dataclass(frozen=True)
class ScatterPoint:
    model: str
    status: str
    quality: float
    latency_ms: float
    cost_usd: float | None


def quality_latency_points(
    store: Store, snap: RoutingSnapshot | None = None, rows: list[ModelRow] | None = None
) -> tuple[str, list[ScatterPoint]]:
    """(what the points measure, one point per model). On the snapshot's queries when it has
    measured outcomes for the model (mean score vs p50 latency), else on calibration."""
    points: list[ScatterPoint] = []
    if snap is not None and np.isfinite(snap.measured).any():
        label = f"{snap.set_name} ({snap.source})"
        for j, name in enumerate(snap.models):
            quality = finite_mean(snap.measured[:, j])
            latency = finite_p50(snap.latency[:, j])
            if quality is not None and latency is not None:
                points.append(ScatterPoint(name, snap.statuses[name], quality, latency, finite_mean(snap.cost[:, j])))
        if points:
            return label, points
    for row in rows if rows is not None else models_table(store):
        if row.calibration_accuracy is not None and row.latency_ms_p50 is not None:
            points.append(ScatterPoint(row.name, row.status, row.calibration_accuracy, row.latency_ms_p50, row.cost_usd_mean))
    return "calibration", points


def validation_frontiers(store: Store) -> dict[str, dict]:
    """{model: its latest validation's frontiers {model, set, decision, cost: {...}, latency: {...}}},
    most recent validation first."""
    out: dict[str, dict] = {}
    for row in reversed(store.latest_validations()):
        frontier = row["results"].get("frontier") or {}
        if frontier:
            out[row["model"]] = {
                "model": row["model"],
                "set": row["set_name"],
                "decision": row["decision"],
                "cost": frontier.get("cost"),
                "latency": frontier.get("latency"),
            }
    return out

