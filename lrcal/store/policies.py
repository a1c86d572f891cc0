"""The routing policy (λ_cost, λ_latency) of a home (mixed into `Store`): newest row wins."""

from __future__ import annotations

from lrcal.store.encoding import utcnow

DEFAULT_POLICY = {"lambda_cost": 0.0, "lambda_latency": 0.0, "source": "default", "reason": None, "created_at": None}


class PolicyQueries:
    def routing_policy(self) -> dict:
        """The current routing policy; λ = 0 for both (quality only) until one is set."""
        row = self.query_one("select * from routing_policies order by id desc limit 1")
        return dict(row) if row else dict(DEFAULT_POLICY)

    def routing_policy_history(self) -> list[dict]:
        return self.query("select * from routing_policies order by id desc")

    def set_routing_policy(self, lambda_cost: float, lambda_latency: float, *, source: str, reason: str = "") -> dict:
        """Store a new routing policy and its audit event in one transaction; returns it."""
        with self.write():
            self._insert_row("routing_policies", lambda_cost=float(lambda_cost), lambda_latency=float(lambda_latency),
                             source=source, reason=reason, created_at=utcnow())  # fmt: skip
            self.log_event("policy_set", message=f"routing policy: λ_cost {lambda_cost:g}, λ_latency "
                           f"{lambda_latency:g} ({source})", data={"lambda_cost": lambda_cost,
                           "lambda_latency": lambda_latency, "source": source, "reason": reason})  # fmt: skip
        return self.routing_policy()
