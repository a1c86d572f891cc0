"""What the gateway routes with, and the decision for one request.

`RoutingTable` is a snapshot read from the store: the frozen router with its onboarded tokens
(`lrcal.services.router_context.load_routing`, as `lrcal route` loads it), the enabled models and
how to reach them, the saved routing policy, and each model's expected cost and latency (before
the call). The gateway swaps in a new snapshot when the store's fingerprint changes.

`rank` is `lrcal route`'s decision for one request: featurize, predict over the enabled models
with a token (all of them in the pool, so λ means the same as in `lrcal route`), then
`policy_choice` with the models that cannot take the request (no image input, cooling down) left
out. The fallback order is the rest of the models by utility.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lrcal import lifecycle
from lrcal.gateway.config import GatewayConfig
from lrcal.gateway.errors import ApiError, bad_request
from lrcal.gateway.request import ChatCall
from lrcal.router.policy import Policy, policy_choice
from lrcal.store import Store

log = logging.getLogger("lrcal.gateway")


@dataclass(frozen=True)
class Upstream:
    """How to reach one model (a registry row)."""

    name: str
    api_model: str
    chat_url: str
    api_key_env: str | None
    timeout_s: float
    max_concurrency: int
    price_in_per_mtok: float
    price_out_per_mtok: float
    accepts_images: bool
    status: str

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        if input_tokens is None and output_tokens is None:
            return None
        return ((input_tokens or 0) * self.price_in_per_mtok + (output_tokens or 0) * self.price_out_per_mtok) / 1e6


def chat_url(base_url: str, api_style: str) -> str:
    """The OpenAI chat URL of a model; an Ollama server speaks it under ``/v1`` as well."""
    base = base_url.rstrip("/")
    if api_style == "ollama":
        for suffix in ("/v1", "/api"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        base += "/v1"
    return base + "/chat/completions"


def upstream_of(row: Mapping[str, Any], endpoint_url: str | None = None) -> Upstream:
    base = endpoint_url or row["base_url"]
    accepts = row.get("accepts_images")
    return Upstream(
        name=row["name"], api_model=row["api_model"] or row["name"],
        chat_url=chat_url(base, row["api_style"] or "openai") if base else "", api_key_env=row["api_key_env"],
        timeout_s=float(row["timeout_s"] or 60.0), max_concurrency=int(row["max_concurrency"] or 4),
        price_in_per_mtok=float(row["price_in_per_mtok"] or 0.0), price_out_per_mtok=float(row["price_out_per_mtok"] or 0.0),
        accepts_images=accepts is None or bool(accepts), status=row["status"],
    )  # fmt: skip


# what a member's forward gives that a prediction reads
MEMBER_OUTPUTS = ("mu", "mu_logit", "sigma", "delta", "score", "prior", "p_task")


class PoolScorer:
    """`Router.predict` over one fixed pool, with what does not depend on the query (each member's
    capability tokens, the task accuracies and biases, eval mode) computed once per snapshot: the
    per-request forward then costs the networks' arithmetic only. Gives the same numbers as
    ``router.predict(X, names)`` (a test holds it to that)."""

    def __init__(self, router: Any, names: list[str], version: str = "", previous: "PoolScorer | None" = None) -> None:
        import torch

        self.router, self.names = router, list(names)
        self._torch = torch
        with torch.inference_mode():
            self.tokens = [router.tokens(self.names, member) for member in range(len(router.members))]
            self.task_accuracy = torch.as_tensor(np.stack([router.cards[n].task_accuracy for n in self.names]),
                                                 dtype=torch.float32)  # fmt: skip
            self.bias = router.task_bias(self.names)
        self.heads = router.linear_heads(self.names)  # stacked once: per request it cost ~0.2 ms
        for net in router.members:
            net.eval()
        # one request is one row: each member traced and frozen for a [1, D] input with this
        # pool (TorchScript drops the per-module Python overhead, about half of a batch-1
        # forward); anything else, or a member that cannot be traced, runs eagerly
        self.version = version
        if previous is not None and self._same_members(previous):
            self.single_row = previous.single_row  # a reload that changed no network input: no retrace
        else:
            self.single_row = [self._traced(member, tokens) for member, tokens in enumerate(self.tokens)]

    def _same_members(self, other: "PoolScorer") -> bool:
        """Whether ``other``'s traced members compute what this scorer's would: the same router
        version (its networks), pool, capability tokens and task accuracies."""
        torch = self._torch
        return (bool(self.version) and other.version == self.version and other.names == self.names
                and len(other.tokens) == len(self.tokens)
                and all(torch.equal(a, b) for a, b in zip(other.tokens, self.tokens))
                and torch.equal(other.task_accuracy, self.task_accuracy))  # fmt: skip

    def _traced(self, member: int, tokens: Any) -> Any:
        torch = self._torch
        net, task_accuracy = self.router.members[member], self.task_accuracy

        class OneRow(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x, available):
                out = self.net(x, tokens, task_accuracy, available)
                return tuple(out[key] for key in MEMBER_OUTPUTS)

        x = torch.zeros((1, self.router.spec.dim), dtype=torch.float32)
        available = torch.ones((1, len(self.names)), dtype=torch.bool)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # shape checks fixed by the trace: the pool is fixed per snapshot
                traced = torch.jit.trace(OneRow().eval(), (x, available), check_trace=False)
                return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        except Exception as exc:  # noqa: BLE001 - the eager forward gives the same numbers
            log.warning("lrcal serve: member %d not traced (%s); it runs eagerly", member, type(exc).__name__)
            return None

    def _member(self, member: int, x: Any, available: Any) -> dict:
        traced = self.single_row[member] if x.shape[0] == 1 else None
        if traced is None:
            return self.router.forward(member, x, self.tokens[member], self.task_accuracy, available)
        return dict(zip(MEMBER_OUTPUTS, traced(x, available)))

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """{"mu", "sigma", "delta", "score", "prior", "network_score"}: [N, K] ensemble means, every
        model of the pool available; "score" is the decision score (`Prediction.score`)."""
        from lrcal.router.network import with_task_bias

        torch = self._torch
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        available = torch.ones((x.shape[0], len(self.names)), dtype=torch.bool)
        sums: dict[str, np.ndarray] = {}
        with torch.inference_mode():
            for member in range(len(self.tokens)):
                out = self._member(member, x, available)
                if self.bias is not None:
                    out["mu"], out["score"] = with_task_bias(out["mu_logit"], out["delta"], out["p_task"], self.bias)
                for key in ("mu", "sigma", "delta", "score", "prior", "p_task"):
                    value = out[key].numpy().astype(np.float64)
                    sums[key] = sums[key] + value if key in sums else value
        means = {key: value / len(self.tokens) for key, value in sums.items()}
        return self.router.with_decision_scores(means, self.names, X, self.heads)  # as `Router.predict`


@dataclass
class RoutingTable:
    version: str
    router: Any  # lrcal.router.api.Router with the onboarded cards
    routed: list[str]  # the router's pool: enabled models with a capability token
    upstreams: dict[str, Upstream]  # every enabled model (reachable by name) and the shadow candidate
    expected_cost: np.ndarray  # [len(routed)] USD, NaN unknown
    expected_latency: np.ndarray  # [len(routed)] ms
    policy: Policy
    fingerprint: tuple
    shadow: str | None = None
    # why the configured --shadow candidate is not shadowed in this snapshot (promoted, removed,
    # no longer validated): a problem at start, left out on a reload
    shadow_problem: str | None = None
    loaded_at: float = field(default_factory=time.time)
    scorer: PoolScorer | None = None

    @property
    def served(self) -> list[str]:
        """Names a client may ask for (the shadow candidate is never served)."""
        return [name for name in self.upstreams if name != self.shadow]

    def has_token(self, name: str) -> bool:
        return name in self.router.cards


def load_table(store: Store, config: GatewayConfig, previous: RoutingTable | None = None, *,
               strict_shadow: bool = True) -> RoutingTable:  # fmt: skip
    """A snapshot of what to route with; a one-line `LrcalError` when there is no router or (with
    ``strict_shadow``, at start) the shadow candidate cannot shadow. On a reload
    (``strict_shadow=False``) a candidate that can no longer shadow (promoted by `lrcal enable`,
    removed) is left out, the reason in ``shadow_problem``, and the rest applies. ``previous``:
    the snapshot it replaces, whose traced networks are reused when nothing they compute changed
    (a new base URL, price or policy)."""
    from lrcal.errors import LrcalError
    from lrcal.services.router_context import load_routing
    from lrcal.services.routing_policy import current_policy

    fingerprint = store.gateway_fingerprint()
    routing = load_routing(store)
    enabled = [m for m in store.list_models([lifecycle.ENABLED]) if m["base_url"]]
    upstreams = {m["name"]: upstream_of(m, config.endpoint_url) for m in enabled}
    routed = [m["name"] for m in enabled if routing.has_token(m["name"])]
    shadow = shadow_problem = None
    if config.shadow:
        try:
            row = _shadow_row(store, config.shadow, routing)
        except LrcalError as exc:
            if strict_shadow:
                raise
            shadow_problem = str(exc)
        else:
            upstreams[config.shadow] = upstream_of(row, config.endpoint_url)
            shadow = config.shadow
    return RoutingTable(
        version=routing.version, router=routing.router, routed=routed, upstreams=upstreams,
        expected_cost=routing.expected_costs(routed) if routed else np.zeros(0),
        expected_latency=routing.expected_latencies(routed) if routed else np.zeros(0),
        policy=current_policy(store), fingerprint=fingerprint, shadow=shadow, shadow_problem=shadow_problem,
        scorer=(PoolScorer(routing.router, routed, routing.version, previous.scorer if previous else None)
                if routed else None),
    )  # fmt: skip


def _shadow_row(store: Store, name: str, routing: Any) -> dict:
    """The registry row of the --shadow candidate; `LrcalError` naming why it cannot shadow."""
    from lrcal.errors import LrcalError

    row = store.get_model(name)  # NotFound (an LrcalError) once purged
    if row["status"] == lifecycle.ENABLED:
        raise LrcalError(f"--shadow {name}: the model is enabled already (it takes real traffic)")
    if row["status"] != lifecycle.VALIDATED:
        raise LrcalError(f"--shadow {name}: the model is {row['status']}; shadow traffic goes to a "
                         f"validated model (`lrcal live-validate {name}`)")  # fmt: skip
    if not routing.has_token(name):
        raise LrcalError(f"--shadow {name}: no capability token in router {routing.version}")
    return row


def table_of_home(home: str | Path) -> RoutingTable:
    """`load_table` for a home with the default gateway settings (benchmarks, tests)."""
    store = Store.open(home)
    try:
        return load_table(store, GatewayConfig(home=str(home)))
    finally:
        store.close()


@dataclass
class Ranking:
    """The routing decision for one request: available models, best utility first."""

    order: list[tuple[str, float]]
    features: np.ndarray  # [1, D]
    features_hash: str
    mu: dict[str, float]
    policy: Policy
    routing_ms: float

    @property
    def first(self) -> tuple[str, float]:
        return self.order[0]

    @property
    def runner_up(self) -> tuple[str, float] | None:
        return self.order[1] if len(self.order) > 1 else None


def featurize(table: RoutingTable, call: ChatCall, task: str | None) -> np.ndarray:
    from lrcal.features import Query

    for image in call.images:
        image.seek(0)
    return table.router.featurize([Query(question=call.question, images=list(call.images), task=task,
                                         metadata=dict(call.route_metadata))])


def rank(table: RoutingTable, call: ChatCall, *, task: str | None = None, overrides: Mapping[str, float] = {},
         cooling: Mapping[str, float] = {}) -> Ranking:  # fmt: skip
    """featurize + forward + policy for one request; ApiError 400 when no enabled model can take
    it (naming the missing capability), 503 when every one that can is cooling down."""
    started = time.perf_counter()
    names = table.routed
    if not names:
        raise ApiError(503, "no enabled model has a capability token: enable a model (`lrcal enable NAME`)",
                       code="no_models")  # fmt: skip
    capable = np.array([table.upstreams[n].accepts_images or not call.needs_images for n in names])
    if not capable.any():
        raise bad_request(f"this request has {call.n_images} image(s) and no enabled model accepts image input "
                          f"(text-only: {', '.join(names)}); send text only, or enable a model that takes images",
                          "messages", code="missing_capability_image_input")  # fmt: skip
    ready = capable & np.array([n not in cooling for n in names])
    if not ready.any():
        wait = min(cooling[n] for n, ok in zip(names, capable) if ok)
        raise ApiError(503, f"every model that can take this request is cooling down after repeated failures "
                       f"({', '.join(n for n, ok in zip(names, capable) if ok)}); retry in {wait:.0f} s",
                       code="all_cooling_down", headers={"Retry-After": str(max(1, round(wait)))})  # fmt: skip
    policy = Policy(lambda_cost=overrides.get("lambda_cost", table.policy.lambda_cost),
                    lambda_latency=overrides.get("lambda_latency", table.policy.lambda_latency))  # fmt: skip
    X = featurize(table, call, task)
    pred = table.scorer.predict(X)
    decision = policy_choice(pred["score"], ready[None, :], policy, sigma=pred["sigma"],
                             expected_cost=table.expected_cost, expected_latency=table.expected_latency,
                             pool=np.ones((1, len(names)), dtype=bool))  # fmt: skip
    util = decision.utility[0]
    order = [(names[j], float(util[j])) for j in np.argsort(-util, kind="stable") if np.isfinite(util[j])]
    return Ranking(order=order, features=X, features_hash=hashlib.sha256(X.tobytes()).hexdigest()[:16],
                   mu={n: float(pred["mu"][0, j]) for j, n in enumerate(names)}, policy=policy,
                   routing_ms=(time.perf_counter() - started) * 1000.0)  # fmt: skip


def shadow_mu(table: RoutingTable, features: np.ndarray, served: str) -> tuple[float | None, float | None]:
    """(candidate μ, served model's μ), predicted with the candidate in the pool as if it were enabled."""
    if table.shadow is None:
        return None, None
    names = list(dict.fromkeys([*table.routed, served, table.shadow]))
    names = [n for n in names if table.has_token(n)]
    pred = table.router.predict(features, names)
    mu = {n: float(pred.mu[0, j]) for j, n in enumerate(names)}
    return mu.get(table.shadow), mu.get(served)
