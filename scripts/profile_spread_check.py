"""How typical each model's task profile is: the Beta strength its per-task deviations imply.

The profile prior smooths a model's per-task accuracy toward a centre sigmoid(a_m + d_t) (the
model's level a_m, the task's difficulty d_t, `lrcal.router.profiles`) with one strength for
every model. For a wide outcome CSV (`task` column, `<model>_correct` columns) this fits the
additive logit model to the per-task means of all models, takes each model's deviations from
its centres, removes the binomial noise of its rows, and prints the strength a Beta prior of
that spread would have: c(1 - c) / tau^2 - 1, over all models and per model (the least typical
first). The adaptive sampler holds the prior at half strength because the models worth
onboarding are the least typical ones (docs/benchmarks.md, "How loosely the sampler holds the
prior"). numpy only, a second.

    python scripts/profile_spread_check.py ../shared/data/blink_val_outcomes.csv
"""

from __future__ import annotations

import argparse

import numpy as np

from lrcal.outcome_table import read_outcome_table


def implied_strength(p: np.ndarray, centre: np.ndarray, n: np.ndarray) -> float:
    """Beta strength whose variance matches the spread of ``p`` around ``centre`` beyond the
    binomial noise of ``n`` rows (the arrays' cells pooled)."""
    between = float(np.mean((p - centre) ** 2) - np.mean(centre * (1 - centre) / n))
    return float(np.mean(centre * (1 - centre)) / max(between, 1e-6) - 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outcomes", help="wide outcome CSV")
    parser.add_argument("--show", type=int, default=6, help="models to list, the least typical first")
    args = parser.parse_args()
    table = read_outcome_table(args.outcomes)
    tasks = sorted({t or "(none)" for t in table.tasks})
    task_of = np.array([tasks.index(t or "(none)") for t in table.tasks])
    scores = np.asarray(table.scores, dtype=np.float64)  # [N, K], NaN: not run
    have = np.isfinite(scores)
    onehot = np.eye(len(tasks))[task_of]  # [N, V]
    n = (have.T.astype(float) @ onehot)  # [K, V]
    hits = (np.where(have, scores, 0.0).T @ onehot)
    usable = n > 0
    p = (hits + 0.5) / (n + 1.0)
    logits = np.log(p) - np.log1p(-p)
    level, difficulty = np.zeros(len(table.models)), np.zeros(len(tasks))
    for _ in range(100):  # the additive logit model, by alternating means over the cells a model ran
        difficulty = np.nanmean(np.where(usable, logits - level[:, None], np.nan), axis=0)
        difficulty -= difficulty.mean()
        level = np.nanmean(np.where(usable, logits - difficulty[None, :], np.nan), axis=1)
    centre = 1.0 / (1.0 + np.exp(-(level[:, None] + difficulty[None, :])))
    print(f"{args.outcomes}: {len(table.models)} models, {len(tasks)} tasks, "
          f"{n[usable].mean():.0f} rows a cell; implied strength, all models: "
          f"{implied_strength(p[usable], centre[usable], n[usable]):.1f}")
    per_model = [(implied_strength(p[k, usable[k]], centre[k, usable[k]], n[k, usable[k]]), m)
                 for k, m in enumerate(table.models) if usable[k].any()]
    for strength, model in sorted(per_model)[: args.show]:
        print(f"  {model}: {strength:.1f}")


if __name__ == "__main__":
    main()
