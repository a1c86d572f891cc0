"""The router as the services see it: the current version, its token bank (trained models +
onboarded tokens from the store), expected cost/latency per model, predictions for stored
examples or new queries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from lrcal.errors import LrcalError
from lrcal.services.tables import queries_for
from lrcal.store import Store, loads

NO_ROUTER = "no shared router yet: train one with `lrcal router train` (after calibrating your current models)"


def router_version_row(store: Store, version: str | None = None) -> dict | None:
    if version:
        row = store.query_one(
            "select * from router_versions where version = ? or version like ? order by id desc",
            [version, version + "%"],
        )
        if row is None:
            raise LrcalError(f"unknown router version '{version}' (see `lrcal router list`)")
        return row
    pinned = store.query_one("select * from router_versions where pinned = 1 order by id desc limit 1")
    return pinned or store.query_one("select * from router_versions order by id desc limit 1")


def card_to_json(card) -> str:
    return json.dumps(
        {
            "profile": np.asarray(card.profile).tolist(),
            "task_accuracy": np.asarray(card.task_accuracy).tolist(),
            "n_rows": int(card.n_rows),
            "residuals": None if card.residuals is None else [np.asarray(r).tolist() for r in card.residuals],
            "task_bias": None if card.task_bias is None else np.asarray(card.task_bias).tolist(),
            "source": card.source,
            "expected_output_tokens": card.expected_output_tokens,
            "expected_latency_ms": card.expected_latency_ms,
            "expected_cost_usd": card.expected_cost_usd,
        }
    )


def card_from_json(name: str, text: str):
    from lrcal.router.api import ModelCard

    data = json.loads(text)
    return ModelCard(
        name=name,
        profile=np.asarray(data["profile"], dtype=np.float32),
        task_accuracy=np.asarray(data["task_accuracy"], dtype=np.float32),
        n_rows=int(data["n_rows"]),
        residuals=None if data["residuals"] is None else [np.asarray(r, dtype=np.float32) for r in data["residuals"]],
        task_bias=None if data.get("task_bias") is None else np.asarray(data["task_bias"], dtype=np.float32),
        source=data.get("source", "onboarded"),
        expected_output_tokens=data.get("expected_output_tokens"),
        expected_latency_ms=data.get("expected_latency_ms"),
        expected_cost_usd=data.get("expected_cost_usd"),
    )


_ROUTER_CACHE: dict[tuple[str, float], object] = {}


def _load_router_cached(path: str):
    import os

    from lrcal.router.api import load_router

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
        model = self.store.get_model(name)
        row = self.store.query_one(
            "select avg(o.input_tokens) as tin, avg(o.output_tokens) as tout, count(*) as n "
            "from outcomes o join runs r on r.id = o.run_id where r.model_id = ? and r.kind = 'calibration' "
            "and o.error_kind is null",
            [model["id"]],
        )
        latencies = [
            r["latency_ms"]
            for r in self.store.query(
                "select o.latency_ms from outcomes o join runs r on r.id = o.run_id where r.model_id = ? "
                "and r.kind = 'calibration' and o.error_kind is null and o.latency_ms is not null",
                [model["id"]],
            )
        ]
        card = self.router.cards.get(name)
        tin = row["tin"] if row and row["tin"] is not None else None
        tout = row["tout"] if row and row["tout"] is not None else (card.expected_output_tokens if card else None)
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
        row = self.store.query_one(
            "select avg(o.correct) as acc from outcomes o join runs r on r.id = o.run_id "
            "where r.model_id = ? and r.kind in ('calibration', 'import')",
            [model["id"]],
        )
        return row["acc"] if row else None

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

    router = copy.copy(_load_router_cached(row["path"]))
    router.cards = dict(router.cards)  # onboarded cards go into this copy only
    tokens: dict[str, dict] = {}
    for token in store.query(
        "select t.*, m.name from model_tokens t join models m on m.id = t.model_id "
        "where t.router_version = ? and t.stale = 0 order by t.id",
        [row["version"]],
    ):
        tokens[token["name"]] = token  # the latest fit per model wins
    for name, token in tokens.items():
        router.cards[name] = card_from_json(name, token["token"])
    return RoutingContext(store=store, version=row["version"], router=router, tokens=tokens)
