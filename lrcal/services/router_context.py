"""The router as the services see it: the current version, its token bank (trained models +
onboarded tokens from the store), expected cost/latency per model, predictions for stored
examples or new queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from lrcal.errors import LrcalError
from lrcal.services.tables import queries_for
from lrcal.store import Store, loads

NO_ROUTER = "no shared router yet: train one with `lrcal router train` (after calibrating your current models)"


def router_version_row(store: Store, version: str | None = None) -> dict | None:
    """The router version named (or prefixed by) ``version``; without one, the pinned or newest."""
    if version:
        row = store.find_router_version(version)
        if row is None:
            raise LrcalError(f"unknown router version '{version}' (see `lrcal router list`)")
        return row
    return store.current_router_version()


_ROUTER_CACHE: dict[tuple[str, float], object] = {}


def _load_router_cached(path: str):
    import os

    from lrcal.router.artifacts import load_router

    key = (path, os.path.getmtime(path) if os.path.exists(path) else 0.0)
    if key not in _ROUTER_CACHE:
        _ROUTER_CACHE.clear()
        _ROUTER_CACHE[key] = load_router(path)
    return _ROUTER_CACHE[key]


@dataclass
class RoutingContext:
    store: Store
    version: str
    router: object  # lrcal.router.api.Router (with onboarded cards added)
    tokens: dict[str, dict] = field(default_factory=dict)  # model -> model_tokens row (onboarded)
    _features: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    # per model, read once: a context lives one command or reload
    _stats_of: dict[str, dict] = field(default_factory=dict, repr=False)
    _basis_of: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---- bank ------------------------------------------------------------------------
    def has_token(self, name: str) -> bool:
        return name in self.router.cards

    def token_source(self, name: str) -> str | None:
        if name in self.tokens:
            return "onboarded"
        return "trained" if name in self.router.cards else None

    def token_per_task(self, name: str) -> dict[str, dict]:
        row = self.tokens.get(name)
        return loads(row["per_task"], {}) if row else {}

    # ---- expected cost and latency (before the call, never realized per query) --------
    def _stats(self, name: str) -> dict:
        if name not in self._stats_of:
            self._stats_of[name] = self._measured_stats(name)
        return self._stats_of[name]

    def _basis(self, model: dict):
        """The model's `CalibrationBasis`: the runs its numbers rest on."""
        from lrcal.services.calibration_basis import calibration_basis

        if model["name"] not in self._basis_of:
            self._basis_of[model["name"]] = calibration_basis(self.store, model["id"])
        return self._basis_of[model["name"]]

    def _measured_stats(self, name: str) -> dict:
        model = self.store.get_model(name)
        # the runs that count: a run before --fresh measured another endpoint (or price), a refused
        # one is mostly failures (route mixed both runs' tokens and latencies)
        left_out = self._basis(model).left_out
        tokens = self.store.token_means(model["id"], "calibration", left_out_runs=left_out)
        latencies = self.store.latencies(model["id"], "calibration", left_out_runs=left_out)
        card = self.router.cards.get(name)
        tin = tokens["input_tokens"]
        tout = tokens["output_tokens"]
        if tout is None and card is not None:
            tout = card.expected_output_tokens
        if tin is not None and tout is not None:
            cost = ((model["price_in_per_mtok"] or 0.0) * tin + (model["price_out_per_mtok"] or 0.0) * tout) / 1e6
        else:
            cost = card.expected_cost_usd if card is not None else None
        latency = float(np.median(latencies)) if latencies else (card.expected_latency_ms if card else None)
        return {"cost": cost, "latency": latency}

    def expected_cost_of(self, name: str) -> float:
        """USD per call for the budget check (an unknown cost commits nothing in advance)."""
        value = self._stats(name)["cost"]
        return float(value) if value is not None else 0.0

    def expected_costs(self, names: Sequence[str]) -> np.ndarray:
        """[K] USD per call, NaN where unknown: the routing policy counts it as the pool's dearest."""
        return np.asarray([self._stats(n)["cost"] for n in names], dtype=float)

    def expected_latencies(self, names: Sequence[str]) -> np.ndarray:
        """[K] ms, NaN where unknown: the routing policy counts it as the pool's slowest."""
        return np.asarray([self._stats(n)["latency"] for n in names], dtype=float)

    def calibration_accuracy(self, name: str) -> float | None:
        model = self.store.get_model(name)
        # the outcomes its token and the router rest on: refused or replaced runs left out
        return self.store.mean_correct(model["id"], ("calibration", "import"), left_out_runs=self._basis(model).not_counted)

    # ---- predictions -------------------------------------------------------------------
    def features(self, examples: Sequence[dict]) -> np.ndarray:
        missing = [ex for ex in examples if ex["id"] not in self._features]
        if missing:
            X = self.router.featurize(queries_for(self.store, missing))
            for ex, x in zip(missing, X):
                self._features[ex["id"]] = x
        return np.stack([self._features[ex["id"]] for ex in examples]) if examples else np.zeros((0, 0))

    def predict(self, store: Store, examples: Sequence[dict], names: Sequence[str]):
        unknown = [n for n in names if not self.has_token(n)]
        if unknown:
            raise LrcalError(f"no capability token for {', '.join(unknown)} in router {self.version}")
        return self.router.predict(self.features(examples), list(names))


def load_routing(store: Store, version: str | None = None) -> RoutingContext:
    row = router_version_row(store, version)
    if row is None:
        raise LrcalError(NO_ROUTER)
    import copy

    from lrcal.router.cards import card_from_json

    router = copy.copy(_load_router_cached(row["path"]))
    router.cards = dict(router.cards)  # onboarded cards go into this copy only
    tokens: dict[str, dict] = {}
    for token in store.fresh_tokens(row["version"]):
        tokens[token["name"]] = token  # the latest fit per model wins
    for name, token in tokens.items():
        try:
            card = card_from_json(name, token["token"])
        except (ValueError, KeyError, TypeError):
            raise LrcalError(f"the stored capability token of '{name}' is malformed; refit it with "
                             f"`lrcal calibrate {name} --refit`") from None
        router.add_model(card)  # shape checks: a token that does not fit this router says so here
    return RoutingContext(store=store, version=row["version"], router=router, tokens=tokens)
