"""Offline router benchmark on an `OutcomeTable`.

Per seed: a stratified (by task) 70/10/20 split; the feature spec (task vocabulary,
categorical columns) is fit on the training rows; the router picks its configuration and its
epochs on the validation rows, then refits on train + validation; every baseline is measured
on the same split in the same run. Test accuracy is the mean outcome of the chosen model
(performance-oriented, lambda = 0). With cost columns: the quality-cost frontier over a fixed
lambda grid (the policy sees only each model's mean training cost), nAUC with cost
normalized over the pool, Ps and QNC.
"""

from __future__ import annotations

import platform
import time
from typing import Callable, Sequence

import numpy as np
import torch

from lrcal.evaluation import baselines as B
from lrcal.evaluation.metrics import ece, frontier, level_slope, mean_std, nauc, pick_stats, pool_cost_range, qnc
from lrcal.evaluation.splits import stratified_split
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.router.api import DEFAULT_ENSEMBLE, train_router
from lrcal.router.config import RouterConfig
from lrcal.router.train import RouterData

METHODS = ("router", "best_single", "per_task_best", "knn", "logistic", "random", "oracle")
PAIRED_AGAINST = ("best_single", "per_task_best", "knn", "logistic", "random")


def run_seed(table, seed: int, *, config: RouterConfig | None = None, ensemble: int = DEFAULT_ENSEMBLE,
             say: Callable[[str], None] = lambda _m: None) -> dict:
    split = stratified_split(table.tasks, seed)
    tr, va, te = split.train, split.val, split.test
    started = time.perf_counter()
    spec = fit_feature_spec([table.tasks[i] for i in tr], [table.metadata[i] for i in tr])
    X = featurize_table(spec, table)
    feat_s = time.perf_counter() - started
    data = RouterData.from_table(table, spec, X)
    Y = data.scores
    y_te = Y[te]
    result: dict = {"seed": seed, "n_train": int(len(tr)), "n_val": int(len(va)), "n_test": int(len(te))}

    t0 = time.perf_counter()
    router = train_router(data, spec, config, train_rows=tr, val_rows=va, seed=seed, ensemble=ensemble,
                          progress=lambda m: say(f"seed {seed}: {m}"))
    train_s = time.perf_counter() - t0
    pred = router.predict(X[te], models=table.models, available=np.isfinite(y_te))
    pick = B.routed(pred.score, y_te)
    ok = np.isfinite(y_te)
    result["router"] = {"accuracy": B.accuracy_of(pick, y_te), **pick_stats(pick, table.models),
                        "train_seconds": round(train_s, 2), "epochs": router.info["epochs"],
                        # is mu a calibrated quality (the policy subtracts costs from it, onboarding
                        # compares a new model's level with the incumbents'), not only a ranking?
                        "mu_ece": ece(pred.mu[ok], y_te[ok]), "level_slope": level_slope(pred.mu, y_te)}

    tasks = table.tasks
    tasks_tr = [tasks[i] for i in tr]
    tasks_te = [tasks[i] for i in te]
    preds = {
        "best_single": B.best_single(Y[tr], len(te)),
        "per_task_best": B.per_task_best(Y[tr], tasks_tr, tasks_te),
    }
    k, _ = B.knn_choose_k(X[tr], Y[tr], X[va], Y[va])
    preds["knn"] = B.knn_predict(X[tr], Y[tr], X[te], k)
    logit_pred, l2 = B.logistic_per_model(X[tr], Y[tr], X[va], Y[va], X[te])
    preds["logistic"] = logit_pred
    for name, p in preds.items():
        bpick = B.routed(p, y_te)
        result[name] = {"accuracy": B.accuracy_of(bpick, y_te), **pick_stats(bpick, table.models)}
    result["knn"]["k"] = int(k)
    result["logistic"]["l2"] = float(l2)
    result["random"] = {"accuracy": B.random_accuracy(y_te)}
    result["oracle"] = {"accuracy": B.oracle_accuracy(y_te)}

    if table.cost_usd is not None and np.isfinite(table.cost_usd).any():
        cost = table.cost_usd
        expected = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in cost[tr].T])
        points = frontier(pred.score, y_te, cost[te], expected)
        lo, hi = pool_cost_range(y_te, cost[te])
        single = int(np.argmax(B.nanmean_or_zero(Y[tr])))
        single_acc = float(np.nanmean(y_te[:, single]))
        single_cost = float(np.nanmean(cost[te][:, single]))
        result["costs"] = {
            "frontier": points,
            "nauc": nauc(points, lo, hi),
            "ps": float(max(p["accuracy"] for p in points)),
            "qnc": qnc(points, single_acc, single_cost),
            "pool_cost_range": [lo, hi],
        }
    result["feature_seconds"] = round(feat_s, 3)
    return result


def bench_router(table, seeds: Sequence[int] = (0, 1, 2), *, config: RouterConfig | None = None,
                 ensemble: int = DEFAULT_ENSEMBLE, progress: Callable[[str], None] | None = None) -> dict:
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    runs = []
    for seed in seeds:
        runs.append(run_seed(table, seed, config=config, ensemble=ensemble, say=say))
        r = runs[-1]
        say(f"seed {seed}: router {100 * r['router']['accuracy']:.1f}  best single {100 * r['best_single']['accuracy']:.1f}  "
            f"per-task {100 * r['per_task_best']['accuracy']:.1f}  kNN {100 * r['knn']['accuracy']:.1f}  "
            f"logistic {100 * r['logistic']['accuracy']:.1f}  oracle {100 * r['oracle']['accuracy']:.1f}")
    methods = {}
    for name in METHODS:
        accs = [r[name]["accuracy"] for r in runs]
        mean, std = mean_std(accs)
        entry = {"accuracy_mean": mean, "accuracy_std": std, "accuracy_per_seed": accs}
        if "distinct_models" in runs[0][name]:
            entry["distinct_models_mean"] = float(np.mean([r[name]["distinct_models"] for r in runs]))
            entry["top_pick_share_mean"] = float(np.mean([r[name]["top_pick_share"] for r in runs]))
            entry["top_pick_per_seed"] = [r[name]["top_pick"] for r in runs]
        methods[name] = entry
    methods["router"]["train_seconds_mean"] = float(np.mean([r["router"]["train_seconds"] for r in runs]))
    methods["router"]["mu_ece_mean"] = float(np.mean([r["router"]["mu_ece"] for r in runs]))
    slopes = [r["router"]["level_slope"] for r in runs if r["router"]["level_slope"] is not None]
    methods["router"]["level_slope_mean"] = float(np.mean(slopes)) if slopes else None
    methods["knn"]["k_per_seed"] = [r["knn"]["k"] for r in runs]
    methods["logistic"]["l2_per_seed"] = [r["logistic"]["l2"] for r in runs]
    paired = {}
    for name in PAIRED_AGAINST:
        diffs = [r["router"]["accuracy"] - r[name]["accuracy"] for r in runs]
        mean, std = mean_std(diffs)
        paired[name] = {"diff_mean": mean, "diff_std": std, "diff_per_seed": diffs,
                        "router_wins": int(sum(d > 0 for d in diffs)), "ties": int(sum(d == 0 for d in diffs))}
    out = {
        "dataset": table.name,
        "n_samples": table.n_samples,
        "n_models": table.n_models,
        "n_tasks": len({t for t in table.tasks if t}),
        "seeds": list(seeds),
        "split": "stratified by task, 70/10/20 per seed",
        "ensemble": ensemble,
        "methods": methods,
        "paired_router_minus": paired,
        "per_seed": runs,
        "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if all("costs" in r for r in runs):
        out["costs"] = {
            key: dict(zip(("mean", "std"), mean_std([r["costs"][key] for r in runs if r["costs"][key] is not None])))
            for key in ("nauc", "ps", "qnc")
        }
    return out
