"""Decision-rule variants compared on the same cross-fitting folds as `lrcal bench router`.

Per unit (seed, fold) of `--folds 5`, the router is trained as the benchmark trains it; the
script keeps what its decision rule was fitted from (the out-of-fold network scores, task
levels and overall levels inside the training rows), the final ensemble's levels on the test
rows and the per-model logistic regression's predictions (with out-of-fold ones on the same
inner folds). Every variant is then a different rule fitted on the same inner rows and applied
to the same test rows, so differences are the rules', not the training's. Prints the routed
accuracy of each per seed. Training dominates: ~1 min a unit on this machine.

    python scripts/rule_variants_check.py ../shared/data/mathvista_testmini_outcomes.csv --seeds 2
    python scripts/rule_variants_check.py ../shared/data/mathvista_testmini_outcomes.csv --seeds 1 --null
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lrcal.evaluation import baselines as B
from lrcal.evaluation import router_bench as RB
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.outcome_table import read_outcome_table
from lrcal.router import api
from lrcal.router.policy import credible_weights, fit_levels
from lrcal.router.train import RouterData


def routed_mean(score: np.ndarray, y: np.ndarray) -> np.ndarray:
    return B.picked_outcomes(B.routed(score, y), y)


def weights_ls(levels, y, z=2.0) -> list[float]:
    """The rule's least-squares weights alone (without its checks by decisions), any number of levels."""
    return credible_weights(fit_levels(levels, y), z)


def combine(levels, weights, centre) -> np.ndarray:
    weights = [max(weights[0], 1e-3), *weights[1:]]
    return np.clip(centre + (levels[0] - centre) * weights[0] + sum(w * lv for w, lv in zip(weights[1:], levels[1:])), 0, 1)


def deattenuate(w: float, fraction: float) -> float:
    """A weight fitted on predictions from (folds-1)/folds of the rows, moved to the reliability
    of predictions from all of them (classical measurement error, noise variance / fraction)."""
    if w <= 0 or w >= 1:
        return min(max(w, 0.0), 1.0)
    r = w / (1 - w)
    return r / (r + fraction)


def unit_variants(table, unit) -> dict[str, np.ndarray]:
    captured: dict = {}
    original = api.fit_decision_rule

    def capture(score, prior, overall, outcome, **options):
        captured.update(score=score, prior=prior, overall=overall, y=outcome)
        return original(score, prior, overall, outcome, **options)

    api.fit_decision_rule = capture
    try:
        tr, va, te = unit.train, unit.val, unit.test
        spec = fit_feature_spec([table.tasks[i] for i in tr], [table.metadata[i] for i in tr])
        X = featurize_table(spec, table)
        data = RouterData.from_table(table, spec, X)
        Y = data.scores
        router = api.train_router(data, spec, None, train_rows=tr, val_rows=va, seed=unit.seed, ensemble=3)
    finally:
        api.fit_decision_rule = original
    rows = np.sort(np.concatenate([tr, va]))
    pred = router.predict(X[te], models=table.models, available=np.isfinite(Y[te]))
    y_te = Y[te]
    overall_te = np.broadcast_to(router.overall_accuracy(table.models), y_te.shape)
    logistic_te, l2 = B.logistic_per_model(X[tr], Y[tr], X[va], Y[va], X[te])
    # the logistic regression out of fold on the rule's own inner folds
    fold_of = api.task_folds(data.task_ids[rows], router.config.decision_folds, np.random.default_rng(unit.seed + 104729))
    logistic_in = np.full((len(rows), Y.shape[1]), np.nan)
    for f in range(router.config.decision_folds):
        held = fold_of == f
        logistic_in[held] = B.fit_logistic(X[rows[~held]], Y[rows[~held]], l2)(X[rows[held]])
    c = captured
    centre = float(np.clip(np.nanmean(c["overall"]), 0, 1))
    lv_in = [c["overall"], c["prior"] - c["overall"], c["score"] - c["prior"]]
    lv_te = [overall_te, pred.prior - overall_te, pred.network_score - pred.prior]
    w = weights_ls(lv_in, c["y"])
    fraction = (router.config.decision_folds - 1) / router.config.decision_folds
    blend_in = [lv_in[0], lv_in[1], (c["score"] + logistic_in) / 2 - c["prior"]]
    blend_te = [lv_te[0], lv_te[1], (pred.network_score + logistic_te) / 2 - pred.prior]
    four_in, four_te = [*lv_in, logistic_in - c["prior"]], [*lv_te, logistic_te - pred.prior]
    w4 = weights_ls(four_in, c["y"])
    return {
        "shipped rule": routed_mean(pred.score, y_te),
        "network alone": routed_mean(pred.network_score, y_te),
        "per-model logistic": routed_mean(logistic_te, y_te),
        "per-task best": routed_mean(B.per_task_best(Y[rows], [table.tasks[i] for i in rows],
                                                     [table.tasks[i] for i in te]), y_te),
        "best single": routed_mean(B.best_single(Y[rows], len(te)), y_te),
        "least squares alone (no checks)": routed_mean(combine(lv_te, w, centre), y_te),
        "task weight 1": routed_mean(combine(lv_te, [w[0], 1.0, w[2]], centre), y_te),
        "de-attenuated weights": routed_mean(combine(lv_te, [deattenuate(x, fraction) for x in w], centre), y_te),
        "logistic as a 4th level": routed_mean(combine(four_te, w4, centre), y_te),
        "network+logistic average": routed_mean(combine(blend_te, weights_ls(blend_in, c["y"]), centre), y_te),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--null", action="store_true", help="query columns permuted within tasks (as --null)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = read_outcome_table(args.outcomes)
    per_seed: dict[str, list[list[np.ndarray]]] = {}
    for unit in RB.units_for(table.tasks, list(range(args.seeds)), args.folds):
        source = RB.null_table(table, unit.seed) if args.null else table
        for name, values in unit_variants(source, unit).items():
            per_seed.setdefault(name, [[] for _ in range(args.seeds)])[unit.seed].append(values)
        print(f"seed {unit.seed} fold {unit.fold} done", flush=True)
    print(f"{'variant':34s}" + "".join(f" seed {s:<3d}" for s in range(args.seeds)) + "   mean")
    for name, seeds in per_seed.items():
        accs = [100 * float(np.nanmean(np.concatenate(parts))) for parts in seeds]
        print(f"{name:34s}" + "".join(f" {a:8.2f}" for a in accs) + f" {np.mean(accs):6.2f}")


if __name__ == "__main__":
    main()
