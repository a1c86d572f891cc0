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
import dataclasses
from pathlib import Path

import numpy as np
import torch

from lrcal.evaluation import baselines as B
from lrcal.evaluation import router_bench as RB
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.outcome_table import read_outcome_table
from lrcal.router import api
from lrcal.router.policy import credible_weights, fit_levels
from lrcal.router.train import RouterData


def unit_cache_path(cache: str, stem: str, folds: int, seed: int, fold: int) -> Path:
    """Where ``--cache`` keeps one unit's trained outputs (``stem``: the outcome file's, -null for --null)."""
    return Path(cache) / f"{stem}-f{folds}-s{seed}-u{fold}.npz"


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


def member_noise(members: np.ndarray, prior: np.ndarray) -> tuple[float, float, float]:
    """(reliability gain, shared variance s, per-member noise variance n) of the ensemble's query
    deviations (``members`` [E, n, K] network scores, ``prior`` [n, K]; deviations centred within
    each row, as the rule's level fit compares models). A weight fitted on one network's
    deviations (signal s, noise n) belongs to the ensemble mean (noise n / E) times
    (s + n) / (s + n / E)."""
    d = members - prior[None]
    d = d - d.mean(axis=-1, keepdims=True)
    e = d.shape[0]
    mean = d.mean(axis=0)
    noise = float(((d - mean[None]) ** 2).sum(axis=0).mean() / max(e - 1, 1))
    shared = max(float((mean ** 2).mean()) - noise / e, 1e-12)
    return (shared + noise) / (shared + noise / e), shared, noise


def unit_capture(table, unit) -> dict[str, np.ndarray]:
    """Train the unit's router as the benchmark does; keep the rule's inner out-of-fold inputs,
    the test rows' levels and the logistic regression's predictions (inner and test)."""
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
    logistic_te, l2 = B.logistic_per_model(X[tr], Y[tr], X[va], Y[va], X[te])
    # the logistic regression out of fold on the rule's own inner folds
    fold_of = api.task_folds(data.task_ids[rows], router.config.decision_folds, np.random.default_rng(unit.seed + 104729))
    logistic_in = np.full((len(rows), Y.shape[1]), np.nan)
    for f in range(router.config.decision_folds):
        held = fold_of == f
        logistic_in[held] = B.fit_logistic(X[rows[~held]], Y[rows[~held]], l2)(X[rows[held]])
    # each member's own network score (test rows and training rows), for the ensemble's reliability
    members_te, members_tr = [], []
    for net in router.members:
        alone = dataclasses.replace(router, members=[net])
        members_te.append(alone.predict(X[te], models=table.models, available=np.isfinite(Y[te])).network_score)
        members_tr.append(alone.predict(X[rows], models=table.models, available=np.isfinite(Y[rows])).network_score)
    c = captured
    assert len(c["y"]) == len(rows), "inner rows with missing out-of-fold scores"
    return {
        "in_score": c["score"], "in_prior": c["prior"], "in_overall": c["overall"], "in_y": c["y"],
        "in_logistic": logistic_in, "in_task": data.task_ids[rows], "in_fold": fold_of,
        "te_score": pred.score, "te_network": pred.network_score, "te_prior": pred.prior,
        "te_overall": np.broadcast_to(router.overall_accuracy(table.models), Y[te].shape).copy(),
        "te_logistic": logistic_te, "te_y": Y[te], "te_task": data.task_ids[te],
        "te_per_task": B.per_task_best(Y[rows], [table.tasks[i] for i in rows], [table.tasks[i] for i in te]),
        "te_single": B.best_single(Y[rows], len(te)),
        "te_members": np.stack(members_te), "tr_members": np.stack(members_tr),
        "tr_prior": router.predict(X[rows], models=table.models, available=np.isfinite(Y[rows])).prior,
        "rule": np.array(router.decision_rule.weights + (router.decision_rule.centre,)),
    }


def unit_variants(c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    y_te = c["te_y"]
    centre = float(np.clip(np.nanmean(c["in_overall"]), 0, 1))
    lv_in = [c["in_overall"], c["in_prior"] - c["in_overall"], c["in_score"] - c["in_prior"]]
    lv_te = [c["te_overall"], c["te_prior"] - c["te_overall"], c["te_network"] - c["te_prior"]]
    w = weights_ls(lv_in, c["in_y"])
    folds = int(c["in_fold"].max()) + 1
    fraction = (folds - 1) / folds
    blend_in = [lv_in[0], lv_in[1], (c["in_score"] + c["in_logistic"]) / 2 - c["in_prior"]]
    blend_te = [lv_te[0], lv_te[1], (c["te_network"] + c["te_logistic"]) / 2 - c["te_prior"]]
    four_in = [*lv_in, c["in_logistic"] - c["in_prior"]]
    four_te = [*lv_te, c["te_logistic"] - c["te_prior"]]
    w4 = weights_ls(four_in, c["in_y"])
    out = {
        "shipped rule": routed_mean(c["te_score"], y_te),
        "network alone": routed_mean(c["te_network"], y_te),
        "per-model logistic": routed_mean(c["te_logistic"], y_te),
        "per-task best": routed_mean(c["te_per_task"], y_te),
        "best single": routed_mean(c["te_single"], y_te),
        "least squares alone (no checks)": routed_mean(combine(lv_te, w, centre), y_te),
        "task weight 1": routed_mean(combine(lv_te, [w[0], 1.0, w[2]], centre), y_te),
        "de-attenuated weights": routed_mean(combine(lv_te, [deattenuate(x, fraction) for x in w], centre), y_te),
        "logistic as a 4th level": routed_mean(combine(four_te, w4, centre), y_te),
        "network+logistic average": routed_mean(combine(blend_te, weights_ls(blend_in, c["in_y"]), centre), y_te),
    }
    out.update(extra_variants(c, lv_in, lv_te, centre))
    rule = c["rule"]
    if "te_members" in c and rule[2] > 0:
        # the shipped rule with its query weight moved to the ensemble mean's lower seed noise
        for name, (members, prior) in {"query weight for the ensemble (test rows)": (c["te_members"], c["te_prior"]),
                                       "query weight for the ensemble (training rows)": (c["tr_members"], c["tr_prior"])}.items():
            gain, shared, noise = member_noise(members, prior)
            print(f"  {name}: shared {shared:.2e}, per member {noise:.2e}, weight x {gain:.2f}")
            weights = [rule[0], rule[1], min(1.0, rule[2] * gain)]
            out[name] = routed_mean(combine(lv_te, weights, rule[3]), y_te)
    return out


def extra_variants(c, lv_in, lv_te, centre) -> dict[str, np.ndarray]:
    """One weight for the task and query deviations together; weights chosen on a 5 x 5 grid by
    the inner rows' routed accuracy."""
    y_in, y_te = c["in_y"], c["te_y"]
    merged_in = [lv_in[0], lv_in[1] + lv_in[2]]
    merged_te = [lv_te[0], lv_te[1] + lv_te[2]]
    best, best_weights = -1.0, None
    for task in np.linspace(0, 1, 5):
        for query in np.linspace(0, 1, 5):
            accuracy = float(np.nanmean(routed_mean(combine(lv_in, [1.0, task, query], centre), y_in)))
            if accuracy > best + 1e-12:
                best, best_weights = accuracy, [1.0, task, query]
    return {
        "task and query deviations merged": routed_mean(combine(merged_te, weights_ls(merged_in, y_in), centre), y_te),
        "weights by inner decisions (grid)": routed_mean(combine(lv_te, best_weights, centre), y_te),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outcomes")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--null", action="store_true", help="query columns permuted within tasks (as --null)")
    parser.add_argument("--cache", help="folder for each unit's trained outputs (npz): a re-run reads them "
                                        "instead of training, so new variants take seconds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = read_outcome_table(args.outcomes)
    per_seed: dict[str, list[list[np.ndarray]]] = {}
    for unit in RB.units_for(table.tasks, list(range(args.seeds)), args.folds):
        stem = f"{Path(args.outcomes).stem}{'-null' if args.null else ''}"
        cached = unit_cache_path(args.cache, stem, args.folds, unit.seed, unit.fold) if args.cache else None
        if cached is not None and cached.exists():
            with np.load(cached) as z:
                captured = dict(z)
        else:
            captured = unit_capture(RB.null_table(table, unit.seed) if args.null else table, unit)
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(cached, **captured)
        for name, values in unit_variants(captured).items():
            per_seed.setdefault(name, [[] for _ in range(args.seeds)])[unit.seed].append(values)
        print(f"seed {unit.seed} fold {unit.fold} done", flush=True)
    print(f"{'variant':34s}" + "".join(f" seed {s:<3d}" for s in range(args.seeds)) + "   mean")
    for name, seeds in per_seed.items():
        accs = [100 * float(np.nanmean(np.concatenate(parts))) for parts in seeds]
        print(f"{name:34s}" + "".join(f" {a:8.2f}" for a in accs) + f" {np.mean(accs):6.2f}")


if __name__ == "__main__":
    main()
