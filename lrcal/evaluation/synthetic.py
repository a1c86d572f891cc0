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


class DecisionWorld:
    """A weak-signal routing world for the decision rule, fitted as `rule_from_cross_fit`
    fits (no networks): ``k`` models on ``n_tasks`` tasks, the best 0.22 on every task, four
    contenders ``gap`` behind, the rest weak (0.02-0.15, real per-task strengths), the first
    five models' accuracy raised by ``specialist`` on one task each (task t: model t mod 5),
    and a real per-query deviation of sd ``query_sd`` for every model. The per-task levels are
    the other folds' smoothed outcome means (4 folds), so out-of-fold and final levels share
    their rows as in training; ``oof`` holds the rule's inputs (score, prior, overall, outcome),
    and `routed_accuracy` routes ``fresh`` new rows with levels from all the training rows."""

    def __init__(self, seed: int, *, k: int = 15, query_sd: float = 0.01, specialist: float = 0.0,
                 gap: float = 0.04, n_train: int = 2400, n_tasks: int = 16, fresh: int = 20000,
                 smoothing: float = 5.0, score_noise: float = 0.02) -> None:
        rng = np.random.default_rng(seed)
        truth = np.empty((n_tasks, k))
        truth[:, 0], truth[:, 1:5] = 0.22, 0.22 - gap
        truth[:, 5:] = rng.uniform(0.02, 0.15, (n_tasks, k - 5))
        truth[np.arange(n_tasks), np.arange(n_tasks) % 5] += specialist

        def rows(n: int):
            tasks = rng.integers(0, n_tasks, n)
            deviation = rng.normal(0, query_sd, (n, k))
            y = (rng.random((n, k)) < np.clip(truth[tasks] + deviation, 0, 1)).astype(float)
            return tasks, deviation, y

        def levels(tasks: np.ndarray, y: np.ndarray):
            overall = y.mean(axis=0)
            onehot = np.eye(n_tasks)[tasks]
            return (onehot.T @ y + smoothing * overall) / (onehot.sum(axis=0)[:, None] + smoothing), overall

        tasks, deviation, y = rows(n_train)
        fold = rng.permutation(n_train) % 4
        score, prior, overall = (np.empty((n_train, k)) for _ in range(3))
        for f in range(4):
            held = fold == f
            accuracy, overall[held] = levels(tasks[~held], y[~held])
            prior[held] = accuracy[tasks[held]]
            score[held] = prior[held] + deviation[held] + rng.normal(0, score_noise, (int(held.sum()), k))
        self.oof = (score, prior, overall, y)
        accuracy, self.overall = levels(tasks, y)
        fresh_tasks, fresh_deviation, self.fresh_y = rows(fresh)
        self.fresh_prior = accuracy[fresh_tasks]
        self.fresh_score = self.fresh_prior + fresh_deviation + rng.normal(0, score_noise, self.fresh_prior.shape)

    def routed_accuracy(self, rule) -> float:
        """Mean outcome on the fresh rows of the models ``rule`` (a `DecisionRule`) picks."""
        from lrcal.router.policy import decision_scores

        pick = decision_scores(self.fresh_score, self.fresh_prior, self.overall, rule).argmax(axis=1)
        return float(self.fresh_y[np.arange(len(pick)), pick].mean())

    def single_accuracy(self) -> float:
        """Mean outcome on the fresh rows of the best single model of the training rows."""
        return float(self.fresh_y[:, self.overall.argmax()].mean())
