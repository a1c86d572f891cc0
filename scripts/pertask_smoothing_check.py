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
import csv

import numpy as np

from lrcal.router.profiles import compute_profiles, fit_profile_prior


def read_wide(path: str) -> tuple[np.ndarray, np.ndarray, int]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c.endswith("_correct")]
    scores = np.array([[float(r[c]) if r[c] != "" else np.nan for c in columns] for r in rows])
    names = sorted({r["task"] for r in rows})
    tasks = np.array([names.index(r["task"]) for r in rows])
    return scores, tasks, len(names)


DECISION_STRENGTHS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def smoothed_table(scores, tasks, n_tasks, rows, strength, prior) -> np.ndarray:
    """[V, K] per-task accuracies from ``rows`` smoothed with ``strength`` toward the prior's centre."""
    if strength == 0:
        return np.stack([np.nanmean(scores[rows & (tasks == t)], axis=0) for t in range(n_tasks)])
    return compute_profiles(tasks, n_tasks, scores, rows, smoothing=strength,
                            task_offsets=prior.offsets(n_tasks)).task_accuracy[:, :n_tasks].T  # fmt: skip


def routed_scores(table: np.ndarray, scores: np.ndarray, tasks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    pick = np.nan_to_num(table[tasks[rows]], nan=-1.0).argmax(axis=1)
    return scores[rows, pick]


def nested_strength(scores, tasks, n_tasks, train, prior, folds: int, seed: int) -> float:
    """The decision strength with the best routed accuracy over an inner K-fold of ``train``."""
    inner = np.full(len(scores), -1)
    inner[train] = np.random.default_rng(1000 + seed).permutation(int(train.sum())) % folds
    totals = np.zeros(len(DECISION_STRENGTHS))
    for g in range(folds):
        fit, held = train & (inner != g), np.flatnonzero(inner == g)
        for i, strength in enumerate(DECISION_STRENGTHS):
            totals[i] += np.nansum(routed_scores(smoothed_table(scores, tasks, n_tasks, fit, strength, prior),
                                                 scores, tasks, held))  # fmt: skip
    return DECISION_STRENGTHS[int(np.argmax(totals))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    scores, tasks, n_tasks = read_wide(args.outcomes)
    for seed in range(args.seeds):
        fold = np.random.default_rng(seed).permutation(len(scores)) % args.folds
        names = ("raw per-task means", "profile-prior smoothed", "decision strength chosen nested")
        routed: dict[str, list[np.ndarray]] = {name: [] for name in names}
        strengths, chosen = [], []
        for f in range(args.folds):
            train, test = fold != f, np.flatnonzero(fold == f)
            prior = fit_profile_prior(tasks, n_tasks, scores, np.flatnonzero(train))
            strengths.append(prior.strength)
            chosen.append(nested_strength(scores, tasks, n_tasks, train, prior, args.folds, seed * 100 + f))
            tables = (smoothed_table(scores, tasks, n_tasks, train, 0.0, prior),
                      smoothed_table(scores, tasks, n_tasks, train, prior.strength, prior),
                      smoothed_table(scores, tasks, n_tasks, train, chosen[-1], prior))  # fmt: skip
            for name, table in zip(names, tables):
                routed[name].append(routed_scores(table, scores, tasks, test))
        figures = ", ".join(f"{name} {100 * np.nanmean(np.concatenate(v)):.2f}%" for name, v in routed.items())
        print(f"seed {seed}: {figures} (prior strengths {', '.join(f'{s:g}' for s in strengths)}; "
              f"decision strengths chosen {', '.join(f'{s:g}' for s in chosen)})")

if __name__ == "__main__":
    main()
