"""The examples behind one cell of the routing table: each query with every model's stored
answer and score and the router's scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lrcal.services.review.routing import RoutingTable, route
from lrcal.services.review.snapshot import RoutingSnapshot
from lrcal.store import Store


@dataclass(frozen=True)
class ModelAnswer:
    model: str
    answer: str | None  # parsed when available, else the raw text
    raw: str | None
    score: float | None
    correct: bool | None
    latency_ms: float | None
    error_kind: str | None
    predicted: float  # the decision score this pool routed the query on (`RoutingTable.scores`)
    sigma: float
    chosen: bool  # the model the current routing sends this query to


@dataclass(frozen=True)
class ExampleView:
    pk: int
    example_id: str
    task: str
    question: str
    reference: str
    answer_type: str | None
    choices: list | None
    image_sha256: str | None
    answers: list[ModelAnswer]  # one per snapshot model, highest decision score first


def _answer(name: str, out: dict | None, predicted: float, sigma: float, chosen: bool) -> ModelAnswer:
    out = out or {}
    parsed = out.get("parsed_answer")
    return ModelAnswer(
        model=name,
        answer=parsed if parsed is not None else out.get("raw_answer"),
        raw=out.get("raw_answer"),
        score=None if out.get("score") is None else float(out["score"]),
        correct=None if out.get("correct") is None else bool(out["correct"]),
        latency_ms=out.get("latency_ms"),
        error_kind=out.get("error_kind"),
        predicted=predicted,
        sigma=sigma,
        chosen=chosen,
    )


# The example filters of the TUI, in the order its key cycles through them.
ALL_EXAMPLES = "all"
FAILURES = "failures"  # the routed model's stored answer is wrong, or its call failed
DISAGREE = "disagree"  # the models' stored answers are not all right or all wrong
EXAMPLE_FILTERS = (ALL_EXAMPLES, FAILURES, DISAGREE)


def keep(view: ExampleView, only: str) -> bool:
    """Whether ``view`` passes the filter ``only`` (one of `EXAMPLE_FILTERS`)."""
    if only == FAILURES:
        chosen = next((a for a in view.answers if a.chosen), None)
        return chosen is not None and (bool(chosen.error_kind) or chosen.correct is False)
    if only == DISAGREE:
        verdicts = {a.correct for a in view.answers if a.correct is not None and not a.error_kind}
        return len(verdicts) > 1
    return True


def examples_for(
    store: Store,
    snap: RoutingSnapshot,
    task: str | None,
    model: str | None = None,
    routed: RoutingTable | None = None,
    *,
    only: str = ALL_EXAMPLES,
) -> list[ExampleView]:
    """The examples of one cell: the ``task`` group's queries (every group's when None) routed to
    ``model`` (all of them when None), each with every model's stored answer and the router's
    scores; ``only`` keeps failures or disagreements (`EXAMPLE_FILTERS`)."""
    if only not in EXAMPLE_FILTERS:
        raise ValueError(f"unknown example filter {only!r}")
    routed = routed or route(snap)
    rows = np.ones(len(snap.examples), dtype=bool) if task is None else snap.tasks == task
    if model is not None:
        rows &= routed.choice == snap.index(model)
    idx = np.flatnonzero(rows)
    stored = store.latest_outcomes_for(snap.models, [snap.examples[i]["id"] for i in idx])
    views = []
    for i in idx:
        ex = snap.examples[int(i)]
        answers = [
            _answer(name, stored.get((name, ex["id"])), float(routed.scores[i, j]), float(snap.sigma[i, j]),
                    int(routed.choice[i]) == j)  # fmt: skip
            for j, name in enumerate(snap.models)
        ]
        answers.sort(key=lambda a: -a.predicted)
        view = ExampleView(
            pk=ex["id"],
            example_id=ex["example_id"],
            task=ex["task_group"] or "(none)",
            question=ex["question"] or "",
            reference=ex["answer"] or "",
            answer_type=ex.get("answer_type"),
            choices=ex.get("choices"),
            image_sha256=ex.get("image_sha256"),
            answers=answers,
        )
        if keep(view, only):
            views.append(view)
    return views
