"""How much the profile prior's smoothing costs a per-task decision among incumbents.

For a wide outcome CSV (`task` column, `<model>_correct` columns), K-fold over rows: route every
test row to the model with the best training accuracy on its task, (1) from the raw per-task
means, (2) from the profile prior's smoothed ones (`fit_profile_prior` + `compute_profiles`,
what the router's cards and its decision rule's task level use), (3) with the prior's centre
but a strength chosen for the decision by an inner K-fold inside the training rows (nested:
the test rows never choose). Prints the routed accuracy of each per seed. numpy only, seconds.

    python scripts/pertask_smoothing_check.py ../shared/data/blink_val_outcomes.csv --seeds 2
"""

from __future__ import annotations

import argparse

import numpy as np

from lrcal.evaluation.baselines import per_task_best, picked_outcomes, routed
from lrcal.outcome_table import read_outcome_table
from lrcal.router.profiles import compute_profiles, fit_profile_prior

DECISION_STRENGTHS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def task_quality(scores, tasks, n_tasks, fit, rows, strength, prior) -> np.ndarray:
    """[len(rows), K] each model's accuracy on the row's task, from the ``fit`` rows: raw means
    (the per-task best baseline) at ``strength`` 0, else smoothed toward the prior's centre."""
    if strength == 0:
        return per_task_best(scores[fit], tasks[fit], tasks[rows])
    table = compute_profiles(tasks, n_tasks, scores, fit, smoothing=strength,
                             task_offsets=prior.offsets(n_tasks)).task_accuracy[:, :n_tasks].T  # fmt: skip
    return table[tasks[rows]]


def routed_scores(quality: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    y = scores[rows]
    return picked_outcomes(routed(quality, y), y)


def nested_strength(scores, tasks, n_tasks, train, prior, folds: int, seed: int) -> float:
    """The decision strength with the best routed accuracy over an inner K-fold of ``train``."""
    inner = np.full(len(scores), -1)
    inner[train] = np.random.default_rng(1000 + seed).permutation(int(train.sum())) % folds
    totals = np.zeros(len(DECISION_STRENGTHS))
    for g in range(folds):
        fit, held = train & (inner != g), np.flatnonzero(inner == g)
        for i, strength in enumerate(DECISION_STRENGTHS):
            quality = task_quality(scores, tasks, n_tasks, fit, held, strength, prior)
            totals[i] += np.nansum(routed_scores(quality, scores, held))
    return DECISION_STRENGTHS[int(np.argmax(totals))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    table = read_outcome_table(args.outcomes)
    names = sorted({t or "" for t in table.tasks})
    scores, tasks, n_tasks = table.scores, np.array([names.index(t or "") for t in table.tasks]), len(names)
    for seed in range(args.seeds):
        fold = np.random.default_rng(seed).permutation(len(scores)) % args.folds
        labels = ("raw per-task means", "profile-prior smoothed", "decision strength chosen nested")
        picked: dict[str, list[np.ndarray]] = {label: [] for label in labels}
        strengths, chosen = [], []
        for f in range(args.folds):
            train, test = fold != f, np.flatnonzero(fold == f)
            prior = fit_profile_prior(tasks, n_tasks, scores, np.flatnonzero(train))
            strengths.append(prior.strength)
            chosen.append(nested_strength(scores, tasks, n_tasks, train, prior, args.folds, seed * 100 + f))
            for label, strength in zip(labels, (0.0, prior.strength, chosen[-1])):
                quality = task_quality(scores, tasks, n_tasks, train, test, strength, prior)
                picked[label].append(routed_scores(quality, scores, test))
        figures = ", ".join(f"{label} {100 * np.nanmean(np.concatenate(v)):.2f}%" for label, v in picked.items())
        print(f"seed {seed}: {figures} (prior strengths {', '.join(f'{s:g}' for s in strengths)}; "
              f"decision strengths chosen {', '.join(f'{s:g}' for s in chosen)})")

if __name__ == "__main__":
    main()
