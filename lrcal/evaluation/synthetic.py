"""Synthetic outcome tables with known structure (tests, demos of the benchmark).

Each query has a task and a keyword that appears in its question; a model's chance of being
right is its per-task skill plus a bonus when the keyword is one of its specialities. A
router that reads the question can beat the per-task lookup; one that cannot, cannot.
"""

from __future__ import annotations

import numpy as np

from lrcal.outcome_table import OutcomeTable

KEYWORDS = ("table", "graph", "receipt", "map", "diagram", "photo", "formula", "sign")


def synthetic_outcomes(
    n: int = 600,
    n_models: int = 6,
    tasks: tuple[str, ...] = ("ocr", "chart", "math"),
    *,
    seed: int = 0,
    keyword_bonus: float = 0.45,
    with_costs: bool = False,
    name: str = "synthetic",
) -> OutcomeTable:
    rng = np.random.default_rng(seed)
    task_idx = rng.integers(0, len(tasks), n)
    key_idx = rng.integers(0, len(KEYWORDS), n)
    skill = rng.uniform(0.25, 0.6, (n_models, len(tasks)))
    special = np.zeros((n_models, len(KEYWORDS)))
    for m in range(n_models):
        special[m, rng.choice(len(KEYWORDS), size=2, replace=False)] = keyword_bonus
    p = np.clip(skill[:, task_idx].T + special[:, key_idx].T, 0.02, 0.98)  # [n, K]
    scores = (rng.random((n, n_models)) < p).astype(float)
    questions = [
        f"In this {tasks[t]} item, what does the {KEYWORDS[k]} show about item {rng.integers(0, 50)}?"
        for t, k in zip(task_idx, key_idx)
    ]
    models = [f"model{m}" for m in range(n_models)]
    cost = None
    tokens = None
    if with_costs:
        price = np.linspace(0.5, 5.0, n_models) * 1e-4
        tokens = rng.integers(20, 200, (n, n_models)).astype(float)
        cost = tokens * price[None, :]
    return OutcomeTable(
        name=name,
        sample_ids=[f"s{i}" for i in range(n)],
        tasks=[tasks[t] for t in task_idx],
        questions=questions,
        answers=["x"] * n,
        images=[[] for _ in range(n)],
        metadata=[{"source": f"src{int(t) % 2}"} for t in task_idx],
        models=models,
        scores=scores,
        cost_usd=cost,
        output_tokens=tokens,
    )
