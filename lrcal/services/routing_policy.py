"""The home's routing policy: the λ_cost and λ_latency that `lrcal route`, `lrcal live-validate`
and `lrcal tui` start from unless told otherwise. `lrcal policy set` changes it; so does
`lrcal live-validate --enable` when the model passes (the recommended operating point)."""

from __future__ import annotations

from lrcal.router.policy import Policy
from lrcal.store import Store


def current_policy(store: Store) -> Policy:
    row = store.routing_policy()
    return Policy(lambda_cost=row["lambda_cost"], lambda_latency=row["lambda_latency"])


def resolved(store: Store, lambda_cost: float | None, lambda_latency: float | None) -> tuple[float, float]:
    """The λ's given, the stored policy's for those not given."""
    if lambda_cost is not None and lambda_latency is not None:
        return float(lambda_cost), float(lambda_latency)
    stored = current_policy(store)
    return (stored.lambda_cost if lambda_cost is None else float(lambda_cost),
            stored.lambda_latency if lambda_latency is None else float(lambda_latency))  # fmt: skip


def set_policy(
    store: Store,
    *,
    lambda_cost: float | None = None,
    lambda_latency: float | None = None,
    source: str = "policy set",
    reason: str = "",
) -> dict:
    """Store a new policy (a λ not given keeps its current value); refuses a negative or
    non-finite λ with a one-line error."""
    lambda_cost, lambda_latency = resolved(store, lambda_cost, lambda_latency)
    Policy(lambda_cost=lambda_cost, lambda_latency=lambda_latency)  # validates
    return store.set_routing_policy(lambda_cost, lambda_latency, source=source, reason=reason)
