"""One routing policy: `lrcal route`, live validation's router with the candidate and the review
service (what `lrcal tui` shows) send the same queries to the same models at any λ — also when
a model's expected cost and latency are unknown (they count as the pool's worst)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrcal.gate.decision import GateConfig
from lrcal.services.live_validation import route_with_and_without
from lrcal.services.review import ReviewService
from lrcal.services.router_context import RoutingContext, load_routing
from lrcal.store import Store
from tests.fixtures.tui import CANDIDATES

SPECIALIST = CANDIDATES[0]
LAMBDAS = ((0.0, 0.0), (0.3, 0.2), (1.0, 0.5))  # (λ_cost, λ_latency)


def _cli(home):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)


def _unknown_for(monkeypatch, name: str) -> None:
    """Make ``name``'s expected cost and latency unknown wherever the routing context gives them."""
    for method in ("expected_costs", "expected_latencies"):
        real = getattr(RoutingContext, method)

        def patched(self, names, real=real):
            values = np.array(real(self, names), dtype=float)
            values[[n == name for n in names]] = np.nan
            return values

        monkeypatch.setattr(RoutingContext, method, patched)


def _choices(home, store: Store, lambdas) -> dict[str, dict]:
    """{surface: {example id: chosen model}} for the gate's with-candidate pool."""
    service = ReviewService(home)
    with service.connect() as review:
        snap = review.snapshot(use_cache=False)
    # The gate's pool: the candidate first, then the enabled incumbents (as live validation builds it).
    pool = [SPECIALIST] + [m["name"] for m in store.list_models(["enabled"]) if m["name"] != SPECIALIST]
    # `lrcal route` cannot pass answer options, which the router featurizes: queries without them.
    examples = [ex for ex in snap.examples if not ex.get("choices")]
    lambda_cost, lambda_latency = lambdas
    gate = route_with_and_without(store, load_routing(store), examples, pool,
                                  GateConfig(lambda_cost=lambda_cost, lambda_latency=lambda_latency))  # fmt: skip
    table = service.route(snap, lambda_cost, lambda_latency, included=pool)
    row = {ex["id"]: i for i, ex in enumerate(snap.examples)}
    cli = _cli(home)
    routed_by_cli = {}
    for ex in examples:
        image = store.image_row(ex["image_sha256"])["path"]
        result = cli("route", "--question", ex["question"], "--image", image, "--task", ex["task_group"],
                     "--models", ",".join(pool), "--lambda-cost", str(lambda_cost),
                     "--lambda-latency", str(lambda_latency), "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        routed_by_cli[ex["id"]] = json.loads(result.stdout)["choice"]
    return {
        "lrcal route": routed_by_cli,
        "live validation": {ex["id"]: pool[j] for ex, j in zip(examples, gate.with_choice)},
        "review service": {ex["id"]: snap.models[table.choice[row[ex["id"]]]] for ex in examples},
    }


@pytest.mark.parametrize("unknown", [None, "sim-lite-s"], ids=["all-known", "unknown-cost-latency"])
def test_cli_gate_and_review_service_route_alike(tui_home_copy, monkeypatch, unknown):
    if unknown is not None:
        _unknown_for(monkeypatch, unknown)
    store = Store.open(tui_home_copy)
    try:
        per_lambda = {lambdas: _choices(tui_home_copy, store, lambdas) for lambdas in LAMBDAS}
    finally:
        store.close()
    for lambdas, surfaces in per_lambda.items():
        cli_choices = surfaces["lrcal route"]
        assert len(cli_choices) >= 30
        for surface, choices in surfaces.items():
            assert choices == cli_choices, (lambdas, surface)
    # Not vacuous: λ moves traffic, and at λ = 0 more than one model gets some.
    by_lambda = [surfaces["lrcal route"] for surfaces in per_lambda.values()]
    assert len(set(by_lambda[0].values())) > 1
    assert by_lambda[0] != by_lambda[-1]
    if unknown is not None:  # the cheapest model, once its cost is unknown, is the dearest: λ never favours it
        assert not any(model == unknown for model in by_lambda[-1].values())
