"""The decision rule fitted on the contenders against the same rule fitted over every model
(`fit_decision_rule(on_contenders=False)`) and the best single model, in synthetic weak-signal
worlds fitted as training fits them (`lrcal.evaluation.synthetic.DecisionWorld`: levels from
the other folds' outcomes, no networks). Prints the mean routed accuracy on 20,000 fresh rows
per world over ``--seeds`` worlds, and the paired differences with 95 % intervals. ~15 s.

    python scripts/weak_signal_rule_check.py --seeds 40
"""

from __future__ import annotations

import argparse

import numpy as np

from lrcal.evaluation.synthetic import DecisionWorld
from lrcal.router.policy import fit_decision_rule

# (models, per-query sd, specialist bump, training rows)
REGIMES = [
    (15, 0.0, 0.0, 2400), (15, 0.01, 0.0, 2400), (15, 0.02, 0.0, 2400), (15, 0.02, 0.0, 800),
    (15, 0.03, 0.0, 2400), (15, 0.04, 0.0, 800), (15, 0.05, 0.0, 2400),
    (25, 0.0, 0.0, 2400), (25, 0.01, 0.0, 2400),
    (15, 0.0, 0.05, 2400), (15, 0.02, 0.05, 2400), (15, 0.0, 0.1, 2400), (25, 0.02, 0.03, 1200),
]


def interval(d: np.ndarray) -> str:
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    return f"{100 * d.mean():+.2f} [{100 * (d.mean() - half):+.2f}, {100 * (d.mean() + half):+.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    print(f"{'models':>6} {'query sd':>8} {'special':>7} {'rows':>5} | {'contenders':>10} {'pooled':>7} {'single':>7} | "
          f"{'contenders - pooled':>22} | {'contenders - single':>22}")
    for k, query_sd, specialist, n_train in REGIMES:
        runs = []
        for seed in range(args.seeds):
            world = DecisionWorld(seed, k=k, query_sd=query_sd, specialist=specialist, n_train=n_train)
            runs.append((world.routed_accuracy(fit_decision_rule(*world.oof)),
                         world.routed_accuracy(fit_decision_rule(*world.oof, on_contenders=False)),
                         world.single_accuracy()))
        r = np.array(runs)
        print(f"{k:>6} {query_sd:>8} {specialist:>7} {n_train:>5} | {100 * r[:, 0].mean():>10.2f} "
              f"{100 * r[:, 1].mean():>7.2f} {100 * r[:, 2].mean():>7.2f} | {interval(r[:, 0] - r[:, 1]):>22} | "
              f"{interval(r[:, 0] - r[:, 2]):>22}")


if __name__ == "__main__":
    main()
