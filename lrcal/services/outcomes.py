"""Browsing stored outcomes (`lrcal outcomes`): the newest first, filtered by model, set, task
group, failed calls or wrong answers."""

from __future__ import annotations

from lrcal.errors import UsageError
from lrcal.store import Store


def browse_outcomes(store: Store, model: str | None = None, *, set_name: str | None = None, task: str | None = None,
                    errors: bool = False, wrong: bool = False, limit: int | None = 20) -> list[dict]:  # fmt: skip
    """Outcome rows (newest first) with model, set, example, question, reference, answer, score,
    latency, tokens, cost and error. A removed model's outcomes can still be browsed by name."""
    from lrcal.store.browse_queries import OutcomeFilter

    if errors and wrong:
        raise UsageError("--errors and --wrong exclude each other: an outcome with an error has no answer to be wrong")
    if task is not None:
        known = store.task_groups_with_outcomes()
        if task not in known:
            raise UsageError(f"no outcome has task group '{task}' (known: {', '.join(known) or 'none'})")
    where = OutcomeFilter(
        model_id=store.get_model(model)["id"] if model is not None else None,
        set_id=store.get_set(set_name)["id"] if set_name is not None else None,
        task=task, errors=errors, wrong=wrong, limit=limit,
    )  # fmt: skip
    rows = store.browse_outcomes(where)
    for row in rows:
        row["answer"] = row["parsed_answer"] if row["parsed_answer"] is not None else row["raw_answer"]
        row["correct"] = None if row["correct"] is None else bool(row["correct"])
    return rows
