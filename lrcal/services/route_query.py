"""`lrcal route`: one routing decision, explained."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lrcal import lifecycle
from lrcal.errors import LrcalError
from lrcal.store import Store


def check_image(path: Path) -> Path:
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise LrcalError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > 40_000_000:
                raise LrcalError(f"{path}: image of {im.size[0]}×{im.size[1]} pixels is too large (limit 40 Mpx)")
            im.verify()
    except LrcalError:
        raise
    except Exception as exc:
        raise LrcalError(f"{path}: not a readable image ({type(exc).__name__})") from None
    return path


def explain_route(
    store: Store,
    *,
    question: str,
    image: Path | None = None,
    task: str | None = None,
    models: Sequence[str] | None = None,
    lambda_cost: float | None = None,
    lambda_latency: float | None = None,
    risk: float = 0.0,
) -> dict:
    """One routing decision explained; a λ not given is the stored routing policy's."""
    from lrcal.features import Query
    from lrcal.router.policy import Policy, policy_choice
    from lrcal.services.router_context import load_routing
    from lrcal.services.routing_policy import resolved

    lambda_cost, lambda_latency = resolved(store, lambda_cost, lambda_latency)
    if not question or not question.strip():
        raise LrcalError("--question is empty")
    routing = load_routing(store)
    if models:
        removed = [name for name in models if store.get_model(name)["status"] == lifecycle.REMOVED]
        if removed:
            raise LrcalError(f"{', '.join(removed)}: removed, never routed to again; leave "
                             f"{'it' if len(removed) == 1 else 'them'} out of --models")
        names = list(models)
    else:
        names = [m["name"] for m in store.list_models([lifecycle.ENABLED]) if routing.has_token(m["name"])]
        if not names:
            raise LrcalError("no enabled model has a capability token; enable models or pass --models a,b,c")
    missing = [n for n in names if not routing.has_token(n)]
    if missing:
        raise LrcalError(f"no capability token for {', '.join(missing)} in router {routing.version}")
    images = [str(check_image(image))] if image is not None else []
    X = routing.router.featurize([Query(question=question, images=images, task=task)])
    pred = routing.router.predict(X, names)
    cost = routing.expected_costs(names)
    latency = routing.expected_latencies(names)
    policy = Policy(lambda_cost=lambda_cost, lambda_latency=lambda_latency, risk_kappa=risk)
    decision = policy_choice(pred.score, pred.available, policy, sigma=pred.sigma, expected_cost=cost,
                             expected_latency=latency)  # fmt: skip
    choice, util = int(decision.choice[0]), decision.utility
    rows = []
    for j, name in enumerate(names):
        rows.append(
            {
                "model": name,
                "mu": float(pred.mu[0, j]),
                "sigma": float(pred.sigma[0, j]),
                "delta": float(pred.delta[0, j]),
                # μ̃ = clip(μ + δ, 0, 1), the network's own estimate; "score": the decision rule's
                # estimate (`Prediction.score`), what the utility ranks
                "network_score": float(pred.network_score[0, j]) if pred.network_score is not None else None,
                "score": float(pred.score[0, j]),
                "expected_cost_usd": float(cost[j]) if np.isfinite(cost[j]) else None,
                "expected_latency_ms": float(latency[j]) if np.isfinite(latency[j]) else None,
                "utility": float(util[0, j]),
                "token": routing.token_source(name),
            }
        )
    rows.sort(key=lambda r: -r["utility"])
    return {
        "router_version": routing.version,
        "question": question,
        "image": images[0] if images else None,
        "task": task,
        "policy": {"lambda_cost": lambda_cost, "lambda_latency": lambda_latency, "risk_kappa": risk},
        "choice": names[choice] if choice >= 0 else None,
        "models": rows,
    }
