"""Could a newcomer's own calibration rows say how far it follows the incumbents' task
difficulty? Per model of an outcome file, playing the newcomer: the task centre
sigmoid(a + gamma * d_t) of the router's profile prior (d_t: the other models' logit task
offsets), with gamma fitted by the Beta-binomial marginal likelihood of the model's per-task
outcomes, on all its rows and on ``--draws`` task-stratified draws of ``--k`` rows.
gamma 1 is the task-centred prior, 0 the overall-centred one. ~5 s.

    python scripts/newcomer_centring_check.py ../shared/data/blink_val_outcomes.csv --strength 22.6
"""

from __future__ import annotations

import argparse
from math import lgamma

import numpy as np

from lrcal.outcome_table import read_outcome_table
from lrcal.router.profiles import logit_task_offsets, task_centers

GAMMAS = np.linspace(0.0, 1.5, 7)
_betaln = np.vectorize(lambda a, b: lgamma(a) + lgamma(b) - lgamma(a + b))


def fitted_gamma(n: np.ndarray, s: np.ndarray, offsets: np.ndarray, strength: float) -> float:
    overall = np.array([(s.sum() + 1.0) / (n.sum() + 2.0)])
    log_lik = []
    for gamma in GAMMAS:
        c = np.clip(task_centers(overall, n[None], gamma * offsets)[0], 1e-4, 1 - 1e-4)
        a, b = strength * c, strength * (1 - c)
        log_lik.append(float(np.sum(_betaln(a + s, b + n - s) - _betaln(a, b))))
    return float(GAMMAS[int(np.argmax(log_lik))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes")
    parser.add_argument("--strength", type=float, default=22.6, help="the profile prior's strength")
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    table = read_outcome_table(args.outcomes)
    y = np.asarray(table.scores, dtype=np.float64)
    labels, task = np.unique([t or "" for t in table.tasks], return_inverse=True)
    n_tasks, n_models = len(labels), y.shape[1]
    have = np.isfinite(y)
    onehot = np.eye(n_tasks)[task]
    counts, sums = have.T.astype(float) @ onehot, np.where(have, np.nan_to_num(y), 0.0).T @ onehot
    accuracy = sums / np.maximum(counts, 1)
    rng = np.random.default_rng(0)
    per_task = max(1, round(args.k / n_tasks))
    print(f"{'model':28s} overall  tasks won  gamma(all rows)  gamma@{args.k} mean  share of draws < 0.5")
    for j in range(n_models):
        others = np.delete(np.arange(n_models), j)
        offsets = logit_task_offsets(counts, sums, others)
        won = int((accuracy[j] > accuracy[others].max(axis=0)).sum())
        draws = []
        for _ in range(args.draws):
            n, s = np.zeros(n_tasks), np.zeros(n_tasks)
            for t in range(n_tasks):
                rows = np.flatnonzero((task == t) & have[:, j])
                pick = rng.choice(rows, size=min(len(rows), per_task), replace=False)
                n[t], s[t] = len(pick), y[pick, j].sum()
            draws.append(fitted_gamma(n, s, offsets, args.strength))
        print(f"{table.models[j][:28]:28s} {sums[j].sum() / counts[j].sum():7.2f}  {won:9d}  "
              f"{fitted_gamma(counts[j], sums[j], offsets, args.strength):15.2f}  {np.mean(draws):13.2f}  "
              f"{np.mean(np.array(draws) < 0.5):20.2f}")


if __name__ == "__main__":
    main()
