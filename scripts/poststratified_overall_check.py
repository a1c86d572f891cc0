"""Lead for issue 21, measured and not shipped: the newcomer's card with a post-stratified
overall accuracy.

A newcomer's card takes its overall accuracy as the plain mean of its calibration outcomes
(`compute_profiles`), and every task's smoothing centre is built from it. An adaptive sampler
spends unevenly across task groups, so that mean follows the allocation, not the traffic. This
script runs any `lrcal` command with the single-model profiles (the newcomer's) replaced by a
post-stratified fixed point: overall = the mean over tasks (equal weights) of the smoothed
per-task accuracies, whose centres depend on the overall. Multi-model profiles (the
incumbents') are untouched. Runs in one process (use `--jobs 1`).

    python scripts/poststratified_overall_check.py bench coldstart \\
        --outcomes ../shared/data/blink_val_outcomes.csv --holdout GPT4o --k 64,128 --repeats 3 \\
        --sampler uniform,adaptive --jobs 1 --json
"""

from __future__ import annotations

import sys

import numpy as np

import lrcal.router.api as api
from lrcal.router import profiles as P

_original = P.compute_profiles


def poststratified(task_ids, n_tasks, scores, row_mask=None, **options):
    profiles = _original(task_ids, n_tasks, scores, row_mask, **options)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape[1] != 1 or n_tasks == 0:
        return profiles
    strength, offsets = options.get("smoothing", 4.0), options.get("task_offsets")
    y = scores[:, 0]
    ok = np.isfinite(y) & (np.asarray(task_ids) >= 0)
    tasks = np.asarray(task_ids)[ok]
    counts = np.bincount(tasks, minlength=n_tasks).astype(float)
    sums = np.bincount(tasks, weights=y[ok], minlength=n_tasks)
    overall = float(profiles.task_accuracy[0, -1])
    for _ in range(50):
        centre = P.task_centers(np.array([overall]), counts[None], offsets)[0]
        per_task = (sums + strength * centre) / (counts + strength)
        overall = float(per_task.mean())
    vectors = profiles.vectors.copy()
    vectors[0, 0] = overall
    vectors[0, P.N_GLOBAL: P.N_GLOBAL + n_tasks] = per_task - overall
    accuracy = np.concatenate([per_task, [overall]]).astype(np.float32)[None]
    return P.Profiles(vectors=vectors, task_accuracy=accuracy, rows=profiles.rows)


def main() -> None:
    api.compute_profiles = poststratified
    from lrcal.cli import main as lrcal_main

    lrcal_main(sys.argv[1:])


if __name__ == "__main__":
    main()
