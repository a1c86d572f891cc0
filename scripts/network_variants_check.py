"""One router network per fold with one `RouterConfig` change, against the per-model logistic
regression on the same folds: test log-loss of the network's mu and the accuracy of its raw
argmax (no decision rule, no linear heads), and the same for the two blended half and half.
The diagnostic behind docs/benchmarks.md ("why the logistic regression leads on MathVista")
and docs/router.md ("per-model linear heads"); ~20 s a network on this machine.

    python scripts/network_variants_check.py ../shared/data/mathvista_testmini_outcomes.csv \\
        '{}' '{"query_l2": 1e-4}' '{"input_dropout": 0.35}' --seeds 0

Each argument after the file is a JSON object of `RouterConfig` fields ('{}': the shipped
config). Nothing here is used by lrcal itself.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from lrcal.evaluation import baselines as B
from lrcal.evaluation import router_bench as RB
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.outcome_table import read_outcome_table
from lrcal.router import api
from lrcal.router.config import RouterConfig
from lrcal.router.linear_head import blend
from lrcal.router.train import RouterData


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(y)
    p = np.clip(p[ok], 1e-4, 1 - 1e-4)
    t = y[ok]
    return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())


def argmax_accuracy(score: np.ndarray, y: np.ndarray) -> float:
    pick = np.where(np.isfinite(y), score, -np.inf).argmax(axis=1)
    return float(y[np.arange(len(y)), pick].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes")
    parser.add_argument("variants", nargs="+", help="JSON objects of RouterConfig fields")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0", help="comma-separated fold seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    variants = [json.loads(v) for v in args.variants]
    table = read_outcome_table(args.outcomes)
    results: dict[str, list[tuple[float, float]]] = {}
    for unit in RB.units_for(table.tasks, [int(s) for s in args.seeds.split(",")], args.folds):
        tr, va, te = unit.train, unit.val, unit.test
        spec = fit_feature_spec([table.tasks[i] for i in tr], [table.metadata[i] for i in tr])
        X = featurize_table(spec, table)
        data = RouterData.from_table(table, spec, X)
        Y = data.scores
        logistic, _l2 = B.logistic_per_model(X[tr], Y[tr], X[va], Y[va], X[te])
        results.setdefault("logistic", []).append((log_loss(logistic, Y[te]), argmax_accuracy(logistic, Y[te])))
        for changes in variants:
            # no decision folds: no rule and no linear heads, the network alone
            cfg = RouterConfig().replace(decision_folds=0, **changes)
            router = api.train_router(data, spec, cfg, train_rows=tr, val_rows=va, seed=unit.seed, ensemble=1)
            mu = router.predict(X[te], models=table.models, available=np.isfinite(Y[te])).network_score
            results.setdefault(json.dumps(changes), []).append((log_loss(mu, Y[te]), argmax_accuracy(mu, Y[te])))
            # the two blended half and half in logit space (what lrcal.router.linear_head does
            # with a weight chosen out of fold)
            mixed = blend(mu, logistic, 0.5)
            results.setdefault(json.dumps(changes) + " + logistic 50/50", []).append(
                (log_loss(mixed, Y[te]), argmax_accuracy(mixed, Y[te])))
            print(f"seed {unit.seed} fold {unit.fold} {json.dumps(changes)}: log-loss "
                  f"{results[json.dumps(changes)][-1][0]:.4f} (logistic {results['logistic'][-1][0]:.4f})", flush=True)
    print(f"{'variant':50s} {'log-loss':>9s} {'accuracy':>9s}")
    for name, values in results.items():
        v = np.array(values)
        print(f"{name:50s} {v[:, 0].mean():9.4f} {100 * v[:, 1].mean():9.2f}")


if __name__ == "__main__":
    main()
