"""The per-task check's threshold: keep the per-task best model (over the best single model)
only when its repeated-fold gain exceeds ``z`` standard errors. The shipped rule uses
z = 0.5 (`RouterConfig.decision_default_z`); 0 keeps it on any positive mean, 1 is the usual
one-standard-error rule for preferring the simpler choice under an asymmetric loss ("never
worse than one model").

Two parts:

* synthetic worlds (`lrcal.evaluation.synthetic.DecisionWorld`, the regimes of
  `weak_signal_rule_check.py` plus weak per-task specialists): the routed accuracy on fresh rows
  minus the best single model's for z in ``--z``, 95 % intervals over ``--seeds`` worlds;
* with ``--bench-json`` (from `lrcal bench router --json`) and ``--cache`` (the unit files of
  `rule_variants_check.py --cache`, same file, folds and seeds): each unit's stored rule with
  its check redone at each z (the rule keeps the gain it measured), and the routed accuracy
  of its test rows.

    python scripts/task_check_threshold.py --seeds 40
    python scripts/task_check_threshold.py --seeds 0 --bench-json blink.json --cache /tmp/rvc \\
        --stem blink_val_outcomes
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lrcal.evaluation.synthetic import DecisionWorld
from lrcal.router.policy import DecisionRule, decision_scores, fit_decision_rule

sys.path.insert(0, str(Path(__file__).parent))
from weak_signal_rule_check import REGIMES  # noqa: E402

EXTRA = [(15, 0.0, 0.02, 800), (15, 0.0, 0.03, 2400), (15, 0.0, 0.05, 800)]


def at_threshold(rule: DecisionRule, z: float) -> DecisionRule:
    """``rule`` with its per-task check redone at z standard errors: the per-task best model
    (exact) when the measured gain exceeds it, else the best single model. Rules that kept a
    query level, or never ran the check, are returned as they are."""
    gain = (rule.evidence or {}).get("task_decision_gain")
    if rule.query > 0 or not gain:
        return rule
    keep = gain["mean"] > z * (gain["se"] or 0.0)
    return DecisionRule(rule.overall, 1.0 if keep else 0.0, 0.0, centre=rule.centre, per_task_from_outcomes=True,
                        evidence=rule.evidence)


def worlds(seeds: int, zs: list[float]) -> None:
    print(f"{'models':>6} {'query sd':>8} {'special':>7} {'rows':>5} | " + " | ".join(f"{'z = ' + str(z):>18}" for z in zs)
          + "   (routed − best single, points)")
    for k, query_sd, specialist, n_train in REGIMES + EXTRA:
        runs = []
        for seed in range(seeds):
            world = DecisionWorld(seed, k=k, query_sd=query_sd, specialist=specialist, n_train=n_train)
            rule = fit_decision_rule(*world.oof)
            runs.append([world.routed_accuracy(at_threshold(rule, z)) - world.single_accuracy() for z in zs])
        d = 100 * np.array(runs)
        half = 1.96 * d.std(axis=0, ddof=1) / np.sqrt(len(d))
        print(f"{k:>6} {query_sd:>8} {specialist:>7} {n_train:>5} | "
              + " | ".join(f"{m:+6.2f} [{m - h:+.2f}, {m + h:+.2f}]" for m, h in zip(d.mean(axis=0), half)))


def files(bench_json: str, cache: str, stem: str, folds: int, zs: list[float]) -> None:
    from rule_variants_check import routed_mean, unit_cache_path  # trains nothing here; imports torch

    units = json.loads(Path(bench_json).read_text())["per_unit"]
    totals = np.zeros(len(zs))
    count = 0
    for i, unit in enumerate(units):
        seed, fold = unit["seed"], unit["fold"]
        with np.load(unit_cache_path(cache, stem, folds, seed, fold)) as z:
            c = dict(z)
        rule = DecisionRule.from_dict(unit["router"]["decision"])
        # an exact per-task default reads the training rows' unsmoothed per-task means, which is
        # what the per-task best baseline's lookup holds
        accs = [routed_mean(decision_scores(c["te_network"], c["te_prior"], c["te_overall"], at_threshold(rule, zz),
                                            task_level=c["te_per_task"]), c["te_y"]) for zz in zs]
        totals += [np.nansum(a) for a in accs]
        count += int(np.isfinite(accs[0]).sum())
        gain = (rule.evidence or {}).get("task_decision_gain")
        ratio = f"{gain['mean'] / gain['se']:.2f} SE" if gain and gain["se"] else "query level kept / no default"
        print(f"unit {i} (seed {seed} fold {fold}): per-task gain {ratio}; "
              + ", ".join(f"z={zz}: {100 * np.nanmean(a):.2f}" for zz, a in zip(zs, accs)))
    print(f"{stem}: " + ", ".join(f"z={zz}: {100 * t / count:.2f}" for zz, t in zip(zs, totals)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=40, help="synthetic worlds per regime (0: skip them)")
    parser.add_argument("--z", default="0,0.5,1", help="thresholds in standard errors, comma-separated")
    parser.add_argument("--bench-json")
    parser.add_argument("--cache")
    parser.add_argument("--stem", help="the outcome file's stem, with -null for a --null run")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    zs = [float(v) for v in args.z.split(",")]
    if args.seeds:
        worlds(args.seeds, zs)
    if args.bench_json:
        files(args.bench_json, args.cache, args.stem, args.folds, zs)


if __name__ == "__main__":
    main()
