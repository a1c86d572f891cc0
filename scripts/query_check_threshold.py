"""The query level's check by decisions: a query level that predicts outcomes credibly is still
dropped when its out-of-fold decisions were worse than the per-task default's or the best
single model's by more than ``z`` standard errors (`fit_decision_rule(query_check_z=z)`). The
shipped rule uses z = 1.96 (one-sided: only a credibly worse level is dropped, since the
out-of-fold networks saw fewer rows than the final ones); 0 drops it on any negative mean; a
negative z asks for a credible gain before the level is kept.

Synthetic worlds only (`lrcal.evaluation.synthetic.DecisionWorld`, the regimes of
`weak_signal_rule_check.py`: no networks, ~10 s a z at 40 seeds): routed accuracy on fresh rows
minus the best single model's for each z in ``--z``, in points, 95 % intervals over the
``--seeds`` worlds.

    python scripts/query_check_threshold.py --seeds 40 --z 1.96,0,-0.5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lrcal.evaluation.synthetic import DecisionWorld
from lrcal.router.policy import fit_decision_rule

sys.path.insert(0, str(Path(__file__).parent))
from weak_signal_rule_check import REGIMES, interval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--z", default="1.96,0,-0.5", help="comma-separated thresholds")
    args = parser.parse_args()
    zs = [float(z) for z in args.z.split(",")]
    print(f"{'models':>6} {'query sd':>8} {'special':>7} {'rows':>5} | "
          + " | ".join(f"{'z = ' + format(z, 'g'):>22}" for z in zs))
    for k, query_sd, specialist, n_train in REGIMES:
        runs = []
        for seed in range(args.seeds):
            world = DecisionWorld(seed, k=k, query_sd=query_sd, specialist=specialist, n_train=n_train)
            single = world.single_accuracy()
            runs.append([world.routed_accuracy(fit_decision_rule(*world.oof, query_check_z=z)) - single for z in zs])
        r = np.array(runs)
        print(f"{k:>6} {query_sd:>8} {specialist:>7} {n_train:>5} | "
              + " | ".join(f"{interval(r[:, i]):>22}" for i in range(len(zs))), flush=True)


if __name__ == "__main__":
    main()
