"""How much the profile prior's smoothing costs a per-task decision among incumbents.

For a wide outcome CSV (`task` column, `<model>_correct` columns), K-fold over rows: route every
test row to the model with the best training accuracy on its task, once from the raw per-task
means and once from the profile prior's smoothed ones (`fit_profile_prior` + `compute_profiles`,
what the router's cards and its decision rule's task level use). Prints the routed accuracy
of both per seed. numpy only, a few seconds per file.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    scores, tasks, n_tasks = read_wide(args.outcomes)
    for seed in range(args.seeds):
        fold = np.random.default_rng(seed).permutation(len(scores)) % args.folds
        routed: dict[str, list[np.ndarray]] = {"raw per-task means": [], "profile-prior smoothed": []}
        strengths = []
        for f in range(args.folds):
            train, test = fold != f, np.flatnonzero(fold == f)
            raw = np.stack([np.nanmean(scores[train & (tasks == t)], axis=0) for t in range(n_tasks)])
            prior = fit_profile_prior(tasks, n_tasks, scores, np.flatnonzero(train))
            strengths.append(prior.strength)
            smoothed = compute_profiles(tasks, n_tasks, scores, train, smoothing=prior.strength,
                                        task_offsets=prior.offsets(n_tasks)).task_accuracy[:, :n_tasks].T  # fmt: skip
            for name, table in zip(routed, (raw, smoothed)):
                pick = np.nan_to_num(table[tasks[test]], nan=-1.0).argmax(axis=1)
                routed[name].append(scores[test, pick])
        figures = ", ".join(f"{name} {100 * np.nanmean(np.concatenate(v)):.2f}%" for name, v in routed.items())
        print(f"seed {seed}: {figures} (prior strengths {', '.join(f'{s:g}' for s in strengths)})")


if __name__ == "__main__":
    main()
