"""From stored outcomes to the router's inputs: `OutcomeTable`s and feature queries.

What a query may show the router: its question (and answer options), its image, its task
group, and — for imported outcome logs — the log's own metadata columns. Never the
reference answer, never a model's answer, score, cost, tokens or latency for that query, and
never the generator's hidden labels of a calibration set (``meta.difficulty``,
``meta.subtype``), which real queries do not carry.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np

from lrcal.services.run_health import is_endpoint_error
from lrcal.store import Store

TRAINING_RUN_KINDS = ("calibration", "import")
# an imported sample's second and later images (`lrcal.services.imports`)
EXTRA_IMAGES = "extra_image_sha256"


def query_metadata(example: dict, set_kind: str | None) -> dict[str, str]:
    meta: dict[str, str] = {}
    if set_kind == "imported":
        for key, value in (example.get("metadata") or {}).items():
            if key in (EXTRA_IMAGES, "extra_images") or value is None:  # images, not metadata
                continue
            meta[key] = value if isinstance(value, str) else json.dumps(value)
    if example.get("choices"):
        meta["choices"] = json.dumps(list(example["choices"]))
    return meta


def example_image_hashes(example: dict, set_kind: str | None) -> list[str]:
    """The example's image hashes: its image, then (an imported sample) its later ones."""
    extra = (example.get("metadata") or {}).get(EXTRA_IMAGES) if set_kind == "imported" else None
    hashes = [example.get("image_sha256"), *(extra if isinstance(extra, list) else [])]
    return [sha for sha in hashes if isinstance(sha, str) and sha]


def query_for(store: Store, example: dict, set_kind: str | None):
    from lrcal.features import Query

    images: list[str] = []
    for sha in example_image_hashes(example, set_kind):
        row = store.image_row(sha)
        if row and row["path"]:
            images.append(row["path"])
    return Query(
        question=example.get("question"),
        images=images,
        task=example.get("task_group"),
        metadata=query_metadata(example, set_kind),
    )


def queries_for(store: Store, examples: Sequence[dict]) -> list:
    kinds = store.set_kinds()
    return [query_for(store, ex, kinds.get(ex.get("set_id"))) for ex in examples]


def model_row_counts(store: Store, kinds: Sequence[str] = TRAINING_RUN_KINDS) -> dict[str, int]:
    """model name -> examples with a measured outcome (endpoint errors left out) in its runs of these
    kinds (models without one left out), by name."""
    from lrcal.services.calibration_basis import left_out_calibration_runs

    counts = store.outcome_example_counts(kinds, measured_only=True, left_out_runs=left_out_calibration_runs(store))
    return dict(sorted((m["name"], counts[m["id"]]) for m in store.list_models() if m["id"] in counts))


def outcome_table(store: Store, models: Sequence[str], kinds: Sequence[str] = TRAINING_RUN_KINDS):
    """Every query with an outcome from any of ``models`` (latest outcome per model × query; a
    query stored in several sets is one row, shown as its first stored example).

    An endpoint error is not a wrong answer: its score is NaN (not run), so training and
    profiles leave it out; ``errors`` still marks it."""
    from lrcal.outcome_table import OutcomeTable

    from lrcal.services.calibration_basis import calibration_basis

    model_rows = [store.get_model(m) for m in models]
    # a model's refused, superseded or pre---fresh calibration runs are not training data either, nor
    # import runs that a later version of their log replaced
    per_model = [store.model_outcomes(m["id"], kinds=list(kinds), left_out_runs=calibration_basis(store, m["id"]).not_counted)
                 for m in model_rows]
    # A query where every model's request failed tells the router nothing.
    first_example: dict[str, int] = {}
    for outcomes in per_model:
        for o in outcomes:
            if not is_endpoint_error(o):
                key = o["query_key"]
                first_example[key] = min(first_example.get(key, o["example_id"]), o["example_id"])
    example_ids = sorted(first_example.values())
    row_of = {eid: i for i, eid in enumerate(example_ids)}
    index = {key: row_of[eid] for key, eid in first_example.items()}
    n, k = len(example_ids), len(models)
    scores = np.full((n, k), np.nan)
    cost = np.full((n, k), np.nan)
    tokens = np.full((n, k), np.nan)
    latency = np.full((n, k), np.nan)
    errors = np.zeros((n, k), dtype=bool)
    for j, outcomes in enumerate(per_model):
        for o in outcomes:
            i = index.get(o["query_key"])
            if i is None:
                continue
            errors[i, j] = bool(o["error_kind"])
            if is_endpoint_error(o):
                continue  # not run, as far as training is concerned: score, cost, latency stay NaN
            scores[i, j] = o["score"] if o["score"] is not None else 0.0
            cost[i, j] = np.nan if o["cost_usd"] is None else o["cost_usd"]
            tokens[i, j] = np.nan if o["output_tokens"] is None else o["output_tokens"]
            latency[i, j] = np.nan if o["latency_ms"] is None else o["latency_ms"]
    examples = [store.example(eid) for eid in example_ids]
    queries = queries_for(store, examples)
    return OutcomeTable(
        name="store",
        sample_ids=[f"{ex['set_id']}:{ex['example_id']}" for ex in examples],
        tasks=[q.task for q in queries],
        questions=[q.question for q in queries],
        answers=[ex.get("answer") for ex in examples],
        images=[list(q.images) for q in queries],
        metadata=[dict(q.metadata) for q in queries],
        models=list(models),
        scores=scores,
        cost_usd=cost if np.isfinite(cost).any() else None,
        output_tokens=tokens if np.isfinite(tokens).any() else None,
        latency_ms=latency if np.isfinite(latency).any() else None,
        errors=errors if errors.any() else None,
    ), examples


def image_capability(store: Store, names: Sequence[str], examples: Sequence[dict]) -> np.ndarray:
    """[N, M] whether query i may go to model j, as `lrcal serve` and `lrcal route` route: a
    query with an image only to a model that takes images. A query no model of ``names`` could
    take keeps every model (there is nothing to route it to either way)."""
    accepts = np.array([bool(store.get_model(name)["accepts_images"]) for name in names], dtype=bool)
    has_image = np.array([bool(ex.get("image_sha256")) for ex in examples], dtype=bool)
    capable = ~has_image[:, None] | accepts[None, :]
    capable[~capable.any(axis=1)] = True
    return capable

