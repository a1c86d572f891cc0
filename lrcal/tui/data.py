"""Headless queries behind `lrcal tui`: pure functions of the store (no Textual here).

* `models_table` — every model with its status, prices, calibration numbers, token state and
  last validation decision.
* `snapshot` — the queries to route (the latest validation's, else the latest calibration's)
  with the router's predicted quality μ̃ for every model that has a capability token, the
  models' expected cost / latency and whatever was measured on those queries. Built once;
  the router's forward pass runs here only (and its result is cached in the home, keyed by
  everything it depends on, so a second `lrcal tui` starts without loading torch).
* `route` / `diff` — argmax of the validation policy (`lrcal.gate.policies.router_choice`)
  on the snapshot: instant, so λ changes re-route live.
* `model_detail`, `examples_for`, `image_halfblocks` — the drill-down screens' data.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from lrcal import lifecycle
from lrcal.errors import LrcalError
from lrcal.store import Store, loads

CALIBRATION_KINDS = ("calibration", "import")
CACHE_DIR = Path("cache") / "tui"
CACHE_FORMAT = 1

# Token states shown on the Models screen.
TOKEN_TRAINED = "trained"  # learned with the router
TOKEN_FITTED = "fitted"
TOKEN_STALE = "stale"
TOKEN_NONE = "none"


# ---- home state --------------------------------------------------------------------------


@dataclass(frozen=True)
class HomeState:
    models: int
    outcomes: int
    router_version: str | None
    validations: int

    @property
    def empty(self) -> bool:
        return self.models == 0

    def next_step(self) -> str:
        """What to run next, in words (the TUI's empty states)."""
        if self.models == 0:
            return (
                "No models in this home yet.\n\n"
                "• `lrcal demo` runs the whole onboarding story on simulated endpoints "
                "(incumbents, router, two candidates, live validation) and leaves it here.\n"
                "• Or register your own: `lrcal add-model NAME --base-url URL`, then "
                "`lrcal calibrate NAME`, `lrcal router train`, `lrcal live-validate NAME`."
            )
        if self.outcomes == 0:
            return "No outcomes yet: run `lrcal calibrate NAME` for your models (or `lrcal import-outcomes FILE.csv`)."
        if self.router_version is None:
            return "No shared router yet: run `lrcal router train` once your current models are calibrated."
        return ""


def home_state(store: Store) -> HomeState:
    from lrcal.services.router_context import router_version_row

    row = router_version_row(store)
    return HomeState(
        models=store.query_one("select count(*) as n from models")["n"],
        outcomes=store.query_one("select count(*) as n from outcomes")["n"],
        router_version=row["version"] if row else None,
        validations=store.query_one("select count(*) as n from validations")["n"],
    )


# ---- models ------------------------------------------------------------------------------


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


def _latest_per_example(rows: Iterable[dict], key: str = "model_id") -> dict[int, dict[int, dict]]:
    """{model_id: {example_id: latest row}} from rows ordered by outcome id."""
    out: dict[int, dict[int, dict]] = {}
    for row in rows:
        out.setdefault(row[key], {})[row["example_id"]] = row
    return out


def _calibration_outcomes(store: Store, model_id: int | None = None) -> dict[int, list[dict]]:
    sql = (
        "select r.model_id, o.example_id, o.correct, o.score, o.latency_ms, o.error_kind, o.cost_usd "
        "from outcomes o join runs r on r.id = o.run_id "
        f"where r.kind in ({','.join('?' * len(CALIBRATION_KINDS))})"
    )
    params: list = list(CALIBRATION_KINDS)
    if model_id is not None:
        sql += " and r.model_id = ?"
        params.append(model_id)
    latest = _latest_per_example(store.query(sql + " order by o.id", params))
    return {mid: list(rows.values()) for mid, rows in latest.items()}


def _token_states(store: Store) -> dict[int, tuple[str, str | None]]:
    """{model_id: (state, router version)} against the current router version."""
    from lrcal.services.router_context import router_version_row

    current = router_version_row(store)
    version = current["version"] if current else None
    trained = set(loads(current["models"], []) or []) if current else set()
    states: dict[int, tuple[str, str | None]] = {}
    rows = store.query("select model_id, router_version, stale from model_tokens order by id")
    latest_any: dict[int, dict] = {}
    fitted_now: set[int] = set()
    for row in rows:
        latest_any[row["model_id"]] = row
        if row["router_version"] == version and not row["stale"]:
            fitted_now.add(row["model_id"])
    for model in store.list_models():
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
    rows = store.query(
        "select v.*, s.name as set_name from validations v left join calibration_sets s on s.id = v.set_id "
        "where v.id in (select max(id) from validations group by model_id)"
    )
    out = {}
    for row in rows:
        row["reasons"] = loads(row["reasons"], [])
        row["results"] = loads(row["results"], {})
        row["parameters"] = loads(row["parameters"], {})
        out[row["model_id"]] = row
    return out


def _percentile(values: Sequence[float], q: float) -> float | None:
    from lrcal.services.collection import percentile

    return percentile(list(values), q)


def models_table(store: Store) -> list[ModelRow]:
    outcomes = _calibration_outcomes(store)
    tokens = _token_states(store)
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
                calibration_accuracy=(sum(int(r["correct"] or 0) for r in cal) / len(cal)) if cal else None,
                latency_ms_p50=_percentile(ok_latency, 50),
                latency_ms_p95=_percentile(ok_latency, 95),
                cost_usd_mean=(sum(costs) / len(costs)) if costs else None,
                token=state,
                token_router_version=version,
                validation_decision=validation["decision"] if validation else None,
                validation_set=validation["set_name"] if validation else None,
            )
        )
    return rows


# ---- routing snapshot ----------------------------------------------------------------------


@dataclass
class RoutingSnapshot:
    """Everything routing needs, computed once: λ and pool changes are argmax only."""

    router_version: str
    set_id: int
    set_name: str
    source: str  # "validation" | "calibration": where the queries come from
    models: list[str]  # M (every model with a capability token)
    statuses: dict[str, str]
    examples: list[dict]  # N example rows
    tasks: np.ndarray  # [N] task group (object)
    predicted: np.ndarray  # [N, M] router μ̃
    sigma: np.ndarray  # [N, M]
    expected_cost: np.ndarray  # [M] USD per query (prices × expected tokens)
    expected_latency: np.ndarray  # [M] ms
    measured: np.ndarray  # [N, M] stored score on that query, NaN = none
    latency: np.ndarray  # [N, M] measured latency (ms), NaN = none
    cost: np.ndarray  # [N, M] realized cost, NaN = none
    default_included: frozenset[str]
    candidates: list[str]  # models one may toggle in/out (not enabled now)
    default_candidate: str | None
    from_cache: bool = False

    @property
    def task_groups(self) -> list[str]:
        return sorted(set(self.tasks.tolist()))

    def index(self, name: str) -> int:
        return self.models.index(name)


def _snapshot_set(store: Store, set_ref: str | None) -> tuple[dict, str]:
    if set_ref is not None:
        return store.get_set(set_ref), ("validation" if store.query_one(
            "select 1 from validations where set_id = (select id from calibration_sets where name = ? "
            "order by id desc limit 1)", [set_ref]) else "calibration")  # fmt: skip
    row = store.query_one("select set_id from validations order by id desc limit 1")
    if row is not None:
        return store.get_set_by_id(row["set_id"]), "validation"
    row = store.query_one("select set_id from runs where kind in ('calibration', 'import') order by id desc limit 1")
    if row is None:
        raise LrcalError("no outcomes to route yet: run `lrcal calibrate NAME` (or `lrcal demo`) first")
    return store.get_set_by_id(row["set_id"]), "calibration"


def _snapshot_examples(store: Store, set_id: int, source: str) -> list[dict]:
    """The queries of the set that the chosen runs actually sent (a --limit selects a subset)."""
    kinds = ("validation",) if source == "validation" else CALIBRATION_KINDS
    ids = {
        r["example_id"]
        for r in store.query(
            "select distinct o.example_id from outcomes o join runs r on r.id = o.run_id "
            f"where r.set_id = ? and r.kind in ({','.join('?' * len(kinds))})",
            [set_id, *kinds],
        )
    }
    examples = [ex for ex in store.set_examples(set_id) if ex["id"] in ids]
    return examples or store.set_examples(set_id)


def _fingerprint(store: Store, router_row: dict, set_id: int, example_ids: list[int]) -> str:
    """Everything the cached predictions depend on: router artifact, tokens, queries, calibration outcomes."""
    artifact = []
    path = Path(router_row["path"])
    if path.is_dir():
        for child in sorted(path.iterdir()):
            st = child.stat()
            artifact.append([child.name, st.st_size, st.st_mtime_ns])
    parts = {
        "format": CACHE_FORMAT,
        "router": [router_row["id"], router_row["version"], router_row["path"], artifact],
        "tokens": store.query("select id, model_id, router_version, stale from model_tokens order by id"),
        "models": store.query("select id, name, price_in_per_mtok, price_out_per_mtok from models order by id"),
        "set": set_id,
        "examples": example_ids,
        "calibration": store.query_one(
            "select max(o.id) as last, count(*) as n from outcomes o join runs r on r.id = o.run_id "
            "where r.kind in ('calibration', 'import')"
        ),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _cache_path(store: Store, fingerprint: str) -> Path | None:
    if store.home is None:
        return None
    return Path(store.home) / CACHE_DIR / f"routing-{fingerprint}.npz"


def _read_cache(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {
                "models": [str(m) for m in data["models"]],
                "predicted": data["predicted"],
                "sigma": data["sigma"],
                "expected_cost": data["expected_cost"],
                "expected_latency": data["expected_latency"],
            }
    except Exception:  # a truncated or foreign file: recompute
        return None


def _write_cache(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, models=np.asarray(payload["models"], dtype=str), predicted=payload["predicted"],
                     sigma=payload["sigma"], expected_cost=payload["expected_cost"],
                     expected_latency=payload["expected_latency"])  # fmt: skip
        os.replace(tmp, path)
        for old in path.parent.glob("routing-*.npz"):  # keep only the current one
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home still works, only slower next time


def _router_models(store: Store, router_row: dict) -> list[str]:
    """Store models that have a capability token in this router version, in store order."""
    trained = set(loads(router_row["models"], []) or [])
    onboarded = {
        r["name"]
        for r in store.query(
            "select distinct m.name from model_tokens t join models m on m.id = t.model_id "
            "where t.router_version = ? and t.stale = 0",
            [router_row["version"]],
        )
    }
    return [m["name"] for m in store.list_models() if m["name"] in trained or m["name"] in onboarded]


@contextlib.contextmanager
def _torch_single_threaded():
    """One intra-op thread for the snapshot's forward pass (a few hundred queries: there is
    nothing to split). On a busy 2-core machine torch's default, one thread per core, made the
    demo home's pass wait in thread barriers: 4.3 s instead of 0.05 s (docs/tui.md). Restored
    afterwards, since the setting is process-wide."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def prepare_routing_cache(store: Store) -> bool:
    """Compute and cache the default routing snapshot now (e.g. at the end of `lrcal demo`,
    whose process has the router loaded), so that the first `lrcal tui` starts warm.
    Returns whether the cache had to be (re)built."""
    return not snapshot(store).from_cache


def snapshot(store: Store, set: str | None = None, *, use_cache: bool = True) -> RoutingSnapshot:  # noqa: A002
    """Build the routing snapshot (runs the router once, or reads its cached output)."""
    from lrcal.services.router_context import NO_ROUTER, router_version_row

    router_row = router_version_row(store)
    if router_row is None:
        raise LrcalError(NO_ROUTER)
    set_row, source = _snapshot_set(store, set)
    examples = _snapshot_examples(store, set_row["id"], source)
    if not examples:
        raise LrcalError(f"set {set_row['name']} has no examples")
    names = _router_models(store, router_row)
    if not names:
        raise LrcalError(f"router {router_row['version']} has no model with a capability token in this home")
    path = _cache_path(store, _fingerprint(store, router_row, set_row["id"], [ex["id"] for ex in examples]))
    cached = _read_cache(path) if use_cache else None
    if cached is not None and cached["models"] == names and cached["predicted"].shape == (len(examples), len(names)):
        payload, from_cache = cached, True
    else:
        from lrcal.services.router_context import load_routing

        routing = load_routing(store, router_row["version"])
        names = [n for n in names if routing.has_token(n)]
        with _torch_single_threaded():
            prediction = routing.predict(store, examples, names)
        payload = {
            "models": names,
            "predicted": np.asarray(prediction.score, dtype=float),
            "sigma": np.asarray(prediction.sigma, dtype=float),
            "expected_cost": routing.expected_costs(names),
            "expected_latency": routing.expected_latencies(names),
        }
        _write_cache(path, payload)
        from_cache = False
    measured, latency, cost = _measured(store, names, set_row["id"], examples)
    models = {m["name"]: m for m in store.list_models()}
    statuses = {n: models[n]["status"] for n in names}
    enabled = frozenset(n for n in names if statuses[n] == lifecycle.ENABLED)
    default_included = enabled or frozenset(names)
    candidates = [n for n in names if n not in default_included]
    # The candidate to compare by default: the last model that passed validation (its traffic is
    # the interesting diff), else the last one validated, else any model outside the pool.
    validated = [
        r["name"]
        for r in store.query(
            "select m.name, v.decision from validations v join models m on m.id = v.model_id "
            "order by (v.decision = 'validated') desc, v.id desc"
        )
        if r["name"] in names
    ]
    default_candidate = validated[0] if validated else (candidates[0] if candidates else None)
    if default_candidate is not None and default_candidate not in candidates:
        candidates = [default_candidate] + candidates
    return RoutingSnapshot(
        router_version=router_row["version"],
        set_id=set_row["id"],
        set_name=set_row["name"],
        source=source,
        models=list(payload["models"]),
        statuses=statuses,
        examples=examples,
        tasks=np.asarray([ex["task_group"] or "(none)" for ex in examples], dtype=object),
        predicted=payload["predicted"],
        sigma=payload["sigma"],
        expected_cost=np.asarray(payload["expected_cost"], dtype=float),
        expected_latency=np.asarray(payload["expected_latency"], dtype=float),
        measured=measured,
        latency=latency,
        cost=cost,
        default_included=default_included,
        candidates=candidates,
        default_candidate=default_candidate,
        from_cache=from_cache,
    )


def _outcomes_for(store: Store, names: Sequence[str], example_pks: Sequence[int]) -> dict[tuple[str, int], dict]:
    """The latest stored outcome per (model, example) among ``example_pks`` (any run kind)."""
    if not names or not example_pks:
        return {}
    out: dict[tuple[str, int], dict] = {}
    pks = list(example_pks)
    for start in range(0, len(pks), 500):
        chunk = pks[start : start + 500]
        rows = store.query(
            "select m.name as model, o.* from outcomes o join runs r on r.id = o.run_id "
            "join models m on m.id = r.model_id "
            f"where o.example_id in ({','.join('?' * len(chunk))}) "
            f"and m.name in ({','.join('?' * len(names))}) order by o.id",
            [*chunk, *names],
        )
        for row in rows:
            out[(row["model"], row["example_id"])] = row
    return out


def _measured(store: Store, names: list[str], set_id: int, examples: list[dict]):
    n, m = len(examples), len(names)
    measured = np.full((n, m), np.nan)
    latency = np.full((n, m), np.nan)
    cost = np.full((n, m), np.nan)
    index = {ex["id"]: i for i, ex in enumerate(examples)}
    column = {name: j for j, name in enumerate(names)}
    for (name, pk), row in _outcomes_for(store, names, list(index)).items():
        i, j = index[pk], column[name]
        measured[i, j] = row["score"] if row["score"] is not None else 0.0
        if row["latency_ms"] is not None and not row["error_kind"]:
            latency[i, j] = row["latency_ms"]
        if row["cost_usd"] is not None:
            cost[i, j] = row["cost_usd"]
    return measured, latency, cost


# ---- routing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    n: int  # queries of the group routed to this model
    share: float  # n / group size
    predicted: float | None  # mean μ̃ on those queries
    measured: float | None  # mean stored score on those with an outcome
    measured_n: int
    latency_ms_p50: float | None  # p50 of measured latency on those queries
    cost_usd_mean: float | None


@dataclass
class RoutingTable:
    models: list[str]
    included: frozenset[str]
    lambda_cost: float
    lambda_latency: float
    tasks: list[str]  # row labels (task groups)
    group_sizes: dict[str, int]
    cells: dict[tuple[str, str], Cell]  # (task, model)
    winners: dict[str, str | None]  # per task group: the model with the largest share
    totals: dict[str, Cell]  # per model over all queries
    choice: np.ndarray  # [N] index into models (-1: no model available)
    quality_predicted: float | None
    quality_measured: float | None
    expected_cost_mean: float | None
    latency_ms_p50: float | None

    def cell(self, task: str, model: str) -> Cell:
        return self.cells[(task, model)]


def _choose(
    snap: RoutingSnapshot, lambda_cost: float, lambda_latency: float, included: Iterable[str], pool: Iterable[str] | None
) -> np.ndarray:
    from lrcal.gate.policies import router_choice

    included = set(included)
    pool_names = [m for m in snap.models if m in (set(pool) | included if pool is not None else included)]
    n = len(snap.examples)
    if not included or not pool_names:
        return np.full(n, -1, dtype=int)
    cols = np.asarray([snap.index(m) for m in pool_names], dtype=int)
    available = np.asarray([m in included for m in pool_names], dtype=bool)
    local = router_choice(
        snap.predicted[:, cols],
        snap.expected_cost[cols],
        snap.expected_latency[cols],
        available,
        lambda_cost=float(lambda_cost),
        lambda_latency=float(lambda_latency),
    )
    return cols[local]


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def _p50(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(np.percentile(values, 50)) if values.size else None


def _cell(snap: RoutingSnapshot, mask: np.ndarray, j: int, group_n: int) -> Cell:
    n = int(mask.sum())
    measured = snap.measured[mask, j]
    return Cell(
        n=n,
        share=(n / group_n) if group_n else 0.0,
        predicted=_mean(snap.predicted[mask, j]) if n else None,
        measured=_mean(measured) if n else None,
        measured_n=int(np.isfinite(measured).sum()),
        latency_ms_p50=_p50(snap.latency[mask, j]) if n else None,
        cost_usd_mean=_mean(snap.cost[mask, j]) if n else None,
    )


def route(
    snap: RoutingSnapshot,
    lambda_cost: float = 0.0,
    lambda_latency: float = 0.0,
    included: Iterable[str] | None = None,
    *,
    pool: Iterable[str] | None = None,
) -> RoutingTable:
    """Route the snapshot's queries: argmax over ``included`` of μ̃ − λ·(pool-normalized expected
    cost / latency), the validation's router policy. ``pool`` (default: ``included``) is the set of
    models the cost/latency scale is normalized over."""
    included_set = frozenset(snap.default_included if included is None else included) & frozenset(snap.models)
    choice = _choose(snap, lambda_cost, lambda_latency, included_set, pool)
    tasks = snap.task_groups
    group_sizes = {t: int((snap.tasks == t).sum()) for t in tasks}
    cells: dict[tuple[str, str], Cell] = {}
    winners: dict[str, str | None] = {}
    for task in tasks:
        in_group = snap.tasks == task
        best: tuple[float, float, str] | None = None
        for j, model in enumerate(snap.models):
            cell = _cell(snap, in_group & (choice == j), j, group_sizes[task])
            cells[(task, model)] = cell
            if cell.n:
                key = (cell.share, cell.predicted or 0.0, model)
                if best is None or key[:2] > best[:2]:
                    best = key
        winners[task] = best[2] if best else None
    n = len(snap.examples)
    totals = {model: _cell(snap, choice == j, j, n) for j, model in enumerate(snap.models)}
    rows = np.flatnonzero(choice >= 0)
    chosen = choice[rows]
    return RoutingTable(
        models=list(snap.models),
        included=included_set,
        lambda_cost=float(lambda_cost),
        lambda_latency=float(lambda_latency),
        tasks=tasks,
        group_sizes=group_sizes,
        cells=cells,
        winners=winners,
        totals=totals,
        choice=choice,
        quality_predicted=_mean(snap.predicted[rows, chosen]) if rows.size else None,
        quality_measured=_mean(snap.measured[rows, chosen]) if rows.size else None,
        expected_cost_mean=_mean(snap.expected_cost[chosen]) if rows.size else None,
        latency_ms_p50=_p50(snap.latency[rows, chosen]) if rows.size else None,
    )


@dataclass(frozen=True)
class Move:
    """Queries of one task group that go to ``to_model`` with the new pool instead of ``from_model``."""

    task: str
    from_model: str | None
    to_model: str | None
    n: int
    share_of_group: float
    predicted_before: float | None
    predicted_after: float | None
    measured_before: float | None
    measured_after: float | None


@dataclass
class RoutingDiff:
    added: list[str]
    removed: list[str]
    n: int
    moved: int
    moves: list[Move]
    lost: dict[str, int]  # model -> queries it loses
    gained: dict[str, int]  # model -> queries it gains
    before: RoutingTable
    after: RoutingTable


def diff(
    snap: RoutingSnapshot,
    with_set: Iterable[str],
    without_set: Iterable[str],
    lambda_cost: float = 0.0,
    lambda_latency: float = 0.0,
) -> RoutingDiff:
    """Routing without → with (e.g. a candidate included): which models lose which traffic.

    Both sides normalize cost/latency over the union of the two pools, as live validation
    does for its with/without policies, so the only difference is the availability mask."""
    with_set, without_set = frozenset(with_set), frozenset(without_set)
    pool = with_set | without_set
    before = route(snap, lambda_cost, lambda_latency, without_set, pool=pool)
    after = route(snap, lambda_cost, lambda_latency, with_set, pool=pool)
    changed = before.choice != after.choice
    moves: list[Move] = []
    lost: dict[str, int] = {}
    gained: dict[str, int] = {}
    name = lambda j: snap.models[j] if j >= 0 else None  # noqa: E731
    for task in snap.task_groups:
        in_group = (snap.tasks == task) & changed
        pairs: dict[tuple[int, int], list[int]] = {}
        for i in np.flatnonzero(in_group):
            pairs.setdefault((int(before.choice[i]), int(after.choice[i])), []).append(int(i))
        group_n = int((snap.tasks == task).sum())
        for (src, dst), idx in sorted(pairs.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            idx_arr = np.asarray(idx)
            moves.append(
                Move(
                    task=task,
                    from_model=name(src),
                    to_model=name(dst),
                    n=len(idx),
                    share_of_group=len(idx) / group_n,
                    predicted_before=_mean(snap.predicted[idx_arr, src]) if src >= 0 else None,
                    predicted_after=_mean(snap.predicted[idx_arr, dst]) if dst >= 0 else None,
                    measured_before=_mean(snap.measured[idx_arr, src]) if src >= 0 else None,
                    measured_after=_mean(snap.measured[idx_arr, dst]) if dst >= 0 else None,
                )
            )
            if src >= 0:
                lost[name(src)] = lost.get(name(src), 0) + len(idx)
            if dst >= 0:
                gained[name(dst)] = gained.get(name(dst), 0) + len(idx)
    return RoutingDiff(
        added=sorted(with_set - without_set, key=snap.models.index),
        removed=sorted(without_set - with_set, key=snap.models.index),
        n=len(snap.examples),
        moved=int(changed.sum()),
        moves=moves,
        lost=dict(sorted(lost.items(), key=lambda kv: -kv[1])),
        gained=dict(sorted(gained.items(), key=lambda kv: -kv[1])),
        before=before,
        after=after,
    )


# ---- model detail ----------------------------------------------------------------------------


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


def latency_histogram(values: Sequence[float], bins: int = 8) -> list[tuple[float, float, int]]:
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if values.size == 0:
        return []
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        return [(lo, hi, int(values.size))]
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return [(float(edges[i]), float(edges[i + 1]), int(counts[i])) for i in range(len(counts))]


def model_detail(store: Store, name: str) -> ModelDetail:
    from lrcal.services.collection import errors_by_kind, summarize, summarize_by_task

    model = store.get_model(name)
    row = next(r for r in models_table(store) if r.name == name)
    cal = store.model_outcomes(model["id"], kinds=list(CALIBRATION_KINDS))
    by_task = summarize_by_task(cal)
    token = store.query_one(
        "select per_task from model_tokens where model_id = ? and stale = 0 order by id desc limit 1", [model["id"]]
    )
    predicted = loads(token["per_task"], {}) if token else {}
    validation = latest_validations(store).get(model["id"])
    live = (validation or {}).get("results", {}).get("per_task", {}) if validation else {}
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
                live=live_row.get("candidate_accuracy"),
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
    )


# ---- examples --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelAnswer:
    model: str
    answer: str | None  # parsed when available, else the raw text
    raw: str | None
    score: float | None
    correct: bool | None
    latency_ms: float | None
    error_kind: str | None
    predicted: float  # router μ̃ for this query
    sigma: float
    chosen: bool  # the model the current routing sends this query to


@dataclass(frozen=True)
class ExampleView:
    pk: int
    example_id: str
    task: str
    question: str
    reference: str
    answer_type: str | None
    choices: list | None
    image_sha256: str | None
    answers: list[ModelAnswer]  # one per snapshot model, highest μ̃ first


def examples_for(
    store: Store,
    snap: RoutingSnapshot,
    task: str,
    model: str | None = None,
    routed: RoutingTable | None = None,
) -> list[ExampleView]:
    """The examples of one cell: the ``task`` group's queries routed to ``model`` (all the
    group's queries when ``model`` is None), each with every model's stored answer and the
    router's scores."""
    routed = routed or route(snap)
    rows = snap.tasks == task
    if model is not None:
        rows &= routed.choice == snap.index(model)
    idx = np.flatnonzero(rows)
    pks = [snap.examples[i]["id"] for i in idx]
    stored = _outcomes_for(store, snap.models, pks)
    views = []
    for i in idx:
        ex = snap.examples[int(i)]
        answers = []
        for j, name in enumerate(snap.models):
            out = stored.get((name, ex["id"]))
            answers.append(
                ModelAnswer(
                    model=name,
                    answer=(out["parsed_answer"] if out and out["parsed_answer"] is not None else (out or {}).get("raw_answer")),
                    raw=(out or {}).get("raw_answer"),
                    score=None if out is None or out["score"] is None else float(out["score"]),
                    correct=None if out is None or out["correct"] is None else bool(out["correct"]),
                    latency_ms=None if out is None else out["latency_ms"],
                    error_kind=None if out is None else out["error_kind"],
                    predicted=float(snap.predicted[i, j]),
                    sigma=float(snap.sigma[i, j]),
                    chosen=int(routed.choice[i]) == j,
                )
            )
        answers.sort(key=lambda a: -a.predicted)
        views.append(
            ExampleView(
                pk=ex["id"],
                example_id=ex["example_id"],
                task=ex["task_group"] or "(none)",
                question=ex["question"] or "",
                reference=ex["answer"] or "",
                answer_type=ex.get("answer_type"),
                choices=ex.get("choices"),
                image_sha256=ex.get("image_sha256"),
                answers=answers,
            )
        )
    return views


def image_halfblocks(data: bytes | None, width: int, height: int):
    """The image as rich Text of "▀" half blocks (top pixel = foreground, bottom = background),
    fitted into ``width`` × ``height`` cells with its aspect ratio kept."""
    from PIL import Image
    from rich.color import Color
    from rich.style import Style
    from rich.text import Text

    if not data:
        return Text("(no image)", style="dim")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = min(width / w, (2 * height) / h)
            cols = max(1, min(width, round(w * scale)))
            rows2 = max(2, min(2 * height, round(h * scale)))
            rows2 += rows2 % 2
            pixels = np.asarray(im.resize((cols, rows2), Image.Resampling.BOX), dtype=np.uint8)
    except Exception:
        return Text("(image cannot be decoded)", style="dim")
    text = Text(no_wrap=True, overflow="crop")
    styles: dict[tuple, Style] = {}
    for y in range(0, rows2, 2):
        if y:
            text.append("\n")
        for x in range(cols):
            top = tuple(int(v) for v in pixels[y, x])
            bottom = tuple(int(v) for v in pixels[y + 1, x])
            key = top + bottom
            style = styles.get(key)
            if style is None:
                style = styles[key] = Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom))
            text.append("▀", style)
    return text


# ---- charts ------------------------------------------------------------------------------------


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
    label = "calibration"
    if snap is not None and np.isfinite(snap.measured).any():
        label = f"{snap.set_name} ({snap.source})"
        for j, name in enumerate(snap.models):
            quality = _mean(snap.measured[:, j])
            latency = _p50(snap.latency[:, j])
            if quality is not None and latency is not None:
                points.append(ScatterPoint(name, snap.statuses[name], quality, latency, _mean(snap.cost[:, j])))
        if points:
            return label, points
    for row in rows if rows is not None else models_table(store):
        if row.calibration_accuracy is not None and row.latency_ms_p50 is not None:
            points.append(ScatterPoint(row.name, row.status, row.calibration_accuracy, row.latency_ms_p50, row.cost_usd_mean))
    return "calibration", points


def _frontier_of(row: dict) -> dict | None:
    results = loads(row["results"], {})
    frontier = results.get("frontier") or {}
    if not frontier:
        return None
    return {
        "model": row["model"],
        "set": row["set_name"],
        "decision": row["decision"],
        "cost": frontier.get("cost"),
        "latency": frontier.get("latency"),
    }


def validation_frontiers(store: Store) -> dict[str, dict]:
    """{model: its latest validation's frontiers {model, set, decision, cost: {...}, latency: {...}}},
    most recent validation first."""
    rows = store.query(
        "select v.*, m.name as model, s.name as set_name from validations v join models m on m.id = v.model_id "
        "left join calibration_sets s on s.id = v.set_id "
        "where v.id in (select max(id) from validations group by model_id) order by v.id desc"
    )
    out: dict[str, dict] = {}
    for row in rows:
        frontier = _frontier_of(row)
        if frontier is not None:
            out[row["model"]] = frontier
    return out


def last_frontier(store: Store) -> dict | None:
    """The latest validation's frontiers (see `validation_frontiers`)."""
    frontiers = validation_frontiers(store)
    return next(iter(frontiers.values()), None)


__all__ = [
    "Cell",
    "ExampleView",
    "HomeState",
    "ModelAnswer",
    "ModelDetail",
    "ModelRow",
    "Move",
    "RoutingDiff",
    "RoutingSnapshot",
    "RoutingTable",
    "ScatterPoint",
    "TaskRow",
    "diff",
    "examples_for",
    "home_state",
    "image_halfblocks",
    "last_frontier",
    "validation_frontiers",
    "latency_histogram",
    "model_detail",
    "models_table",
    "quality_latency_points",
    "route",
    "snapshot",
]
