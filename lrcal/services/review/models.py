"""The Models screen's rows: every model with its status, prices, calibration numbers,
capability-token state and last validation decision."""

from __future__ import annotations

from dataclasses import dataclass

from lrcal.services.run_health import is_endpoint_error
from lrcal.store import Store, loads

CALIBRATION_KINDS = ("calibration", "import")

# Token states shown on the Models screen.
TOKEN_TRAINED = "trained"  # learned with the router
TOKEN_FITTED = "fitted"
TOKEN_STALE = "stale"
TOKEN_NONE = "none"


@dataclass(frozen=True)
class ModelRow:
    name: str
    status: str
    source: str
    price_in_per_mtok: float
    price_out_per_mtok: float
    calibration_n: int
    calibration_accuracy: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    cost_usd_mean: float | None
    token: str  # TOKEN_*
    token_router_version: str | None
    validation_decision: str | None
    validation_set: str | None


def token_states(store: Store, *, include_removed: bool = False) -> dict[int, tuple[str, str | None]]:
    """{model_id: (state, router version)} against the current router version: the one
    vocabulary of token states (`lrcal models` and the TUI)."""
    from lrcal.services.router_context import router_version_row

    current = router_version_row(store)
    version = current["version"] if current else None
    trained = set(loads(current["models"], []) or []) if current else set()
    states: dict[int, tuple[str, str | None]] = {}
    latest_any: dict[int, dict] = {}
    fitted_now: set[int] = set()
    for row in store.token_history():
        latest_any[row["model_id"]] = row
        if row["router_version"] == version and not row["stale"]:
            fitted_now.add(row["model_id"])
    for model in store.list_models(include_removed=include_removed):
        mid = model["id"]
        if mid in fitted_now:
            states[mid] = (TOKEN_FITTED, version)
        elif model["name"] in trained:
            states[mid] = (TOKEN_TRAINED, version)
        elif mid in latest_any:
            states[mid] = (TOKEN_STALE, latest_any[mid]["router_version"])
        else:
            states[mid] = (TOKEN_NONE, None)
    return states


def latest_validations(store: Store) -> dict[int, dict]:
    """{model_id: its latest validations row (reasons/results decoded), with the set name}."""
    return {row["model_id"]: row for row in store.latest_validations()}


def models_table(store: Store) -> list[ModelRow]:
    from lrcal.services.collection import percentile

    from lrcal.services.calibration_basis import left_out_calibration_runs

    # the runs a token rests on, as `lrcal models` counts them (after --fresh the table showed 128
    # rows at 0.70 where the detail and the token had 24 at 0.79)
    outcomes = store.latest_outcomes_by_model(CALIBRATION_KINDS, left_out_runs=left_out_calibration_runs(store))
    tokens = token_states(store)
    validations = latest_validations(store)
    rows = []
    for model in store.list_models():
        mid = model["id"]
        cal = outcomes.get(mid, [])
        ok_latency = [r["latency_ms"] for r in cal if not r["error_kind"] and r["latency_ms"] is not None]
        costs = [r["cost_usd"] for r in cal if r["cost_usd"] is not None]
        state, version = tokens.get(mid, (TOKEN_NONE, None))
        validation = validations.get(mid)
        rows.append(
            ModelRow(
                name=model["name"],
                status=model["status"],
                source=model["source"],
                price_in_per_mtok=float(model["price_in_per_mtok"] or 0.0),
                price_out_per_mtok=float(model["price_out_per_mtok"] or 0.0),
                calibration_n=len(cal),
                calibration_accuracy=measured_accuracy(cal),
                latency_ms_p50=percentile(ok_latency, 50),
                latency_ms_p95=percentile(ok_latency, 95),
                cost_usd_mean=(sum(costs) / len(costs)) if costs else None,
                token=state,
                token_router_version=version,
                validation_decision=validation["decision"] if validation else None,
                validation_set=validation["set_name"] if validation else None,
            )
        )
    return rows


def measured_accuracy(outcomes: list[dict]) -> float | None:
    """Share correct among the answers measured: a failed request is not a wrong answer."""
    measured = [r for r in outcomes if not is_endpoint_error(r)]
    return sum(int(r["correct"] or 0) for r in measured) / len(measured) if measured else None
