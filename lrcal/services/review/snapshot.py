"""The routing snapshot: the queries to route (the latest validation's, else the latest
calibration's) with the router's predicted quality μ̃ for every model that has a capability
token, the models' expected cost / latency and whatever was measured on those queries.

Built once: the router's forward pass runs here only, and its output is cached in the home
(`snapshot_cache`), so λ and pool changes afterwards are an argmax (`routing.route`)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from lrcal import lifecycle
from lrcal.errors import LrcalError
from lrcal.router.policy import scale_unmeasured
from lrcal.services.review.models import CALIBRATION_KINDS
from lrcal.services.review.snapshot_cache import cache_path, fingerprint, read_cache, write_cache
from lrcal.services.run_health import is_endpoint_error
from lrcal.services.tables import image_capability
from lrcal.store import Store, loads


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
    # [N, M] the router's decision score before the scaling of models not measured on a query's
    # task, and their measured share (`lrcal.router.policy.scale_unmeasured`): each pool scales
    # with them (`pool_scores`; `predicted` for the pool of every model with a token)
    unscaled: np.ndarray
    measured_share: np.ndarray
    sigma: np.ndarray  # [N, M]
    expected_cost: np.ndarray  # [M] USD per query (prices × expected tokens), NaN = unknown
    expected_latency: np.ndarray  # [M] ms, NaN = unknown
    measured: np.ndarray  # [N, M] stored score on that query, NaN = none (an endpoint error is none)
    latency: np.ndarray  # [N, M] measured latency (ms), NaN = none
    cost: np.ndarray  # [N, M] realized cost, NaN = none
    default_included: frozenset[str]
    candidates: list[str]  # models one may toggle in/out (not enabled now)
    default_candidate: str | None
    from_cache: bool = False
    # why the default pool is not the enabled models (None: it is): with no model enabled, the
    # view shows what routing over every model with a token would do -- not live traffic
    pool_note: str | None = None
    # [N, M] whether query i may go to model j: a query with an image never to a text-only model,
    # as the gateway and `lrcal route` route (None: every model may take every query)
    capable: np.ndarray | None = None

    @property
    def task_groups(self) -> list[str]:
        return sorted(set(self.tasks.tolist()))

    def index(self, name: str) -> int:
        return self.models.index(name)

    @property
    def predicted(self) -> np.ndarray:
        """[N, M] the router's decision score over every model with a token (`Prediction.score`)."""
        return scale_unmeasured(self.unscaled, self.measured_share)

    def pool_scores(self, included: np.ndarray) -> np.ndarray:
        """[N, M] the decision scores of a routing among the ``included`` models ([M] mask), as
        the gateway with exactly those enabled would score them: `predicted`, except on queries
        where no included model is measured on the task, which keep their unscaled estimates."""
        return scale_unmeasured(self.unscaled, self.measured_share, included)


def _snapshot_set(store: Store, set_ref: str | None) -> tuple[dict, str]:
    if set_ref is not None:
        return store.get_set(set_ref), ("validation" if store.set_was_validated(set_ref) else "calibration")
    set_id = store.latest_validation_set_id()
    if set_id is not None:
        return store.get_set_by_id(set_id), "validation"
    set_id = store.latest_outcome_set_id(CALIBRATION_KINDS)
    if set_id is None:
        raise LrcalError("no outcomes to route yet: run `lrcal calibrate NAME` (or `lrcal demo`) first")
    return store.get_set_by_id(set_id), "calibration"


def _snapshot_examples(store: Store, set_id: int, source: str) -> list[dict]:
    """The queries of the set that the chosen runs actually sent (a --limit selects a subset)."""
    kinds = ("validation",) if source == "validation" else CALIBRATION_KINDS
    ids = store.example_ids_with_outcomes(set_id, kinds)
    examples = [ex for ex in store.set_examples(set_id) if ex["id"] in ids]
    return examples or store.set_examples(set_id)


def _router_models(store: Store, router_row: dict) -> list[str]:
    """Store models that have a capability token in this router version, in store order."""
    trained = set(loads(router_row["models"], []) or [])
    onboarded = store.onboarded_model_names(router_row["version"])
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


def _predict(store: Store, router_version: str, names: list[str], examples: list[dict]) -> dict:
    """The router's forward pass (the only place the snapshot needs torch)."""
    from lrcal.services.router_context import load_routing

    routing = load_routing(store, router_version)
    names = [n for n in names if routing.has_token(n)]
    with _torch_single_threaded():
        prediction = routing.predict(store, examples, names)
    unscaled = np.asarray(prediction.score if prediction.unscaled_score is None else prediction.unscaled_score,
                          dtype=float)
    return {
        "models": names,
        "unscaled": unscaled,
        "measured_share": (np.ones_like(unscaled) if prediction.measured_share is None
                           else np.asarray(prediction.measured_share, dtype=float)),
        "sigma": np.asarray(prediction.sigma, dtype=float),
        "expected_cost": routing.expected_costs(names),
        "expected_latency": routing.expected_latencies(names),
    }


def _measured(store: Store, names: list[str], examples: list[dict]):
    """[N, M] stored score, latency (successful calls) and realized cost; NaN where none."""
    n, m = len(examples), len(names)
    measured = np.full((n, m), np.nan)
    latency = np.full((n, m), np.nan)
    cost = np.full((n, m), np.nan)
    index = {ex["id"]: i for i, ex in enumerate(examples)}
    column = {name: j for j, name in enumerate(names)}
    for (name, pk), row in store.latest_outcomes_for(names, list(index)).items():
        i, j = index[pk], column[name]
        if not is_endpoint_error(row):  # a failed request is no answer, not a wrong one
            measured[i, j] = row["score"] if row["score"] is not None else 0.0
        if row["latency_ms"] is not None and not row["error_kind"]:
            latency[i, j] = row["latency_ms"]
        if row["cost_usd"] is not None:
            cost[i, j] = row["cost_usd"]
    return measured, latency, cost


def _default_candidate(store: Store, names: list[str], candidates: list[str]) -> str | None:
    """The candidate to compare by default: the last model that passed validation (its traffic
    is the interesting diff), else the last one validated, else any model outside the pool."""
    validated = [name for name in store.validated_models_first() if name in names]
    return validated[0] if validated else (candidates[0] if candidates else None)


def snapshot(store: Store, set: str | None = None, *, use_cache: bool = True) -> RoutingSnapshot:  # noqa: A002
    """The routing snapshot of ``set`` (default: the last validation's queries, else the last
    calibration's); runs the router once, or reads its cached output."""
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
    path = cache_path(store, fingerprint(store, router_row, set_row["id"], [ex["id"] for ex in examples]))
    cached = read_cache(path) if use_cache else None
    if cached is not None and cached["models"] == names and cached["unscaled"].shape == (len(examples), len(names)):
        payload, from_cache = cached, True
    else:
        payload, from_cache = _predict(store, router_row["version"], names, examples), False
        write_cache(path, payload)
    names = list(payload["models"])
    measured, latency, cost = _measured(store, names, examples)
    status_of = {m["name"]: m["status"] for m in store.list_models()}
    statuses = {n: status_of[n] for n in names}
    enabled = frozenset(n for n in names if statuses[n] == lifecycle.ENABLED)
    default_included = enabled or frozenset(names)
    pool_note = None
    if not enabled:
        pool_note = ("no model is enabled: the view shows what routing over every model with a token would do, "
                     "not live traffic")
    candidates = [n for n in names if n not in default_included]
    default_candidate = _default_candidate(store, names, candidates)
    if default_candidate is not None and default_candidate not in candidates:
        candidates = [default_candidate] + candidates
    return RoutingSnapshot(
        router_version=router_row["version"],
        set_id=set_row["id"],
        set_name=set_row["name"],
        source=source,
        models=names,
        statuses=statuses,
        examples=examples,
        tasks=np.asarray([ex["task_group"] or "(none)" for ex in examples], dtype=object),
        unscaled=payload["unscaled"],
        measured_share=payload["measured_share"],
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
        pool_note=pool_note,
        capable=image_capability(store, names, examples),
    )


def prepare_routing_cache(store: Store) -> bool:
    """Compute and cache the default routing snapshot now (e.g. at the end of `lrcal demo`,
    whose process has the router loaded), so that the first `lrcal tui` starts warm.
    Returns whether the cache had to be (re)built."""
    return not snapshot(store).from_cache

