"""`lrcal route`: one routing decision, explained."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lrcal import lifecycle
from lrcal.errors import LrcalError, UsageError
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
            # a full decode: verify() checks a PNG's chunks but not a JPEG's data, so a cut JPEG
            # was routed as an image the features could not read, without a word
            im.load()
    except LrcalError:
        raise
    except Exception as exc:
        raise LrcalError(f"{path}: not a readable image ({type(exc).__name__})") from None
    return path


def parse_metadata(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` items (`lrcal route --meta`) as a dict; a bad item is a usage error."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--meta {item[:60]!r}: expected COLUMN=VALUE")
        if key.strip() in out:
            raise UsageError(f"--meta: column {key.strip()!r} given twice")
        out[key.strip()] = value
    return out


def routing_notes(spec, task: str | None, metadata: dict[str, str]) -> list[str]:
    """What the router cannot read as given: a task label it was not trained on, metadata
    columns it does not use, and the metadata columns it was trained with that are missing
    (their features are then zero, as for a query that never had them)."""
    from lrcal.features.metadata import task_position
    from lrcal.features.spec import CHOICE_COLUMNS

    notes = []
    if task and task_position(spec.task_vocab, task) is None:
        known = ", ".join(spec.task_vocab[:12]) + ("…" if len(spec.task_vocab) > 12 else "")
        notes.append(f"task {task!r} is not one the router was trained on ({known or 'it knows no task'}): "
                     "routed as a query of unknown task")
    columns = set(spec.categorical_columns)
    # answer options (`--meta choices=...`) are read as text, whatever the columns
    unused = [k for k in metadata if k not in columns and k.strip().lower() not in CHOICE_COLUMNS]
    if unused:
        notes.append(f"the router uses no metadata column {', '.join(map(repr, unused))}"
                     + (f" (it uses {', '.join(sorted(columns))})" if columns else ""))
    missing = [c for c in sorted(columns) if c not in metadata]
    if missing:
        notes.append(f"the router was trained with the metadata column(s) {', '.join(missing)}; none given "
                     "(--meta COLUMN=VALUE), so they read as absent")
    return notes


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
    metadata: dict[str, str] | None = None,
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
    # as `lrcal serve` ranks: the whole pool is scored and sets the cost and latency scales; a
    # query with an image can only go to a model that takes images
    capable = np.array([image is None or bool(store.get_model(n)["accepts_images"]) for n in names])
    text_only = [n for n, ok in zip(names, capable) if not ok]
    if models and text_only:
        raise LrcalError(f"{', '.join(text_only)}: text-only (never sent an image); leave "
                         f"{'it' if len(text_only) == 1 else 'them'} out of --models for a query with an image")
    if not capable.any():
        raise LrcalError("no enabled model with a capability token takes images")
    missing = [n for n in names if not routing.has_token(n)]
    if missing:
        raise LrcalError(f"no capability token for {', '.join(missing)} in router {routing.version}")
    images = [str(check_image(image))] if image is not None else []
    metadata = dict(metadata or {})
    X = routing.router.featurize([Query(question=question, images=images, task=task, metadata=metadata)])
    pred = routing.router.predict(X, names)
    cost = routing.expected_costs(names)
    latency = routing.expected_latencies(names)
    policy = Policy(lambda_cost=lambda_cost, lambda_latency=lambda_latency, risk_kappa=risk)
    decision = policy_choice(pred.score, pred.available & capable[None, :], policy, sigma=pred.sigma,
                             expected_cost=cost, expected_latency=latency,
                             pool=np.ones((1, len(names)), dtype=bool))  # fmt: skip
    choice, util = int(decision.choice[0]), decision.utility
    rows = []
    for j, name in enumerate(names):
        if not capable[j]:
            continue  # text-only: never sent this query (named in the notes)
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
        "metadata": metadata,
        "notes": routing_notes(routing.router.spec, task, metadata) + (
            [f"text-only, not sent a query with an image: {', '.join(text_only)}"] if text_only else []),
    }
