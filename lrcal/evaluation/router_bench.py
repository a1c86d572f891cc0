"""Offline router benchmark on an `OutcomeTable`.

Two protocols, every method on the same rows in the same run:

* **split** (``folds=None``): per seed a stratified (by task) 70/10/20 split;
* **cross-fitting** (``folds=K``): per seed K stratified folds, each the test rows once, the
  other K-1 folds the training rows (1/8 of them held out, stratified, as validation).

The feature spec (task vocabulary, categorical columns) is fit on the training rows; the
router picks its epochs on the validation rows and its decision rule by cross-fitting inside
the training rows, then refits on train + validation; kNN's k and the logistic regression's L2
are chosen on the same validation rows, and every baseline then uses train + validation too. Test accuracy is the mean outcome of the chosen model (performance-oriented,
lambda = 0). Paired differences router − method are per row (averaged over the seeds when
every row is tested once per seed) with a 95 % interval from a bootstrap over rows.

``null=True`` permutes the query columns (question, images, metadata) among the rows of the
same task while the outcomes stay: no per-query method can beat the per-task best on that
copy, and any gain is noise-chasing. ``ablate`` retrains the router with parts of the network
switched off (`ABLATIONS`) on the same rows.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from lrcal.evaluation import baselines as B
from lrcal.evaluation.metrics import ece, frontier, level_slope, mean_std, nauc, pick_stats, pool_cost_range, qnc
from lrcal.evaluation.splits import stratified_folds, stratified_split
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.router.api import DEFAULT_ENSEMBLE, train_router
from lrcal.router.config import RouterConfig
from lrcal.router.train import RouterData

METHODS = ("router", "best_single", "per_task_best", "knn", "logistic", "random", "oracle")
PAIRED_AGAINST = ("best_single", "per_task_best", "knn", "logistic", "random")
VAL_FRACTION = 0.125  # of the training rows, in cross-fitting (the split protocol's 10 of 80)
BOOTSTRAP = 2000

# `--ablate NAME`: the router retrained with that part of the LatentRouter flipped from the
# configuration benchmarked: a part the default has (capsules, affinity, prior) is switched off;
# latent communication, off by default (docs/router.md), is switched on
ABLATIONS: dict[str, str] = {
    "latent": "model_communication",  # models exchange information through their tokens
    "capsules": "capsule_path",  # routing capsules and the latent layers
    "affinity": "affinity",  # the direct query x token affinity term
    "prior": "prior_logit",  # the profile prior's logit in mu
    "linear": "linear_head",  # per-model linear heads blended with the network's score
}


def ablated_config(config: RouterConfig, part: str) -> RouterConfig:
    """``config`` with ``part`` flipped (see `ABLATIONS`)."""
    field = ABLATIONS[part]
    return config.replace(**{field: not getattr(config, field)})


def ablation_label(config: RouterConfig, part: str) -> str:
    """What the variant is, e.g. "latent on" or "capsules off"."""
    return f"{part} {'off' if getattr(config, ABLATIONS[part]) else 'on'}"


@dataclass
class Unit:
    """One train / validation / test partition of the rows."""

    seed: int
    fold: int | None
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def units_for(tasks: Sequence[str | None], seeds: Sequence[int], folds: int | None) -> list[Unit]:
    out = []
    for seed in seeds:
        if folds is None:
            split = stratified_split(tasks, seed)
            out.append(Unit(seed, None, split.train, split.val, split.test))
            continue
        parts = stratified_folds(tasks, folds, seed)
        for f, test in enumerate(parts):
            rest = np.sort(np.concatenate([p for j, p in enumerate(parts) if j != f]))
            inner = stratified_split([tasks[i] for i in rest], seed + 1000 * (f + 1), (1 - VAL_FRACTION, VAL_FRACTION, 0.0))
            out.append(Unit(seed, f, rest[inner.train], rest[inner.val], test))
    return out


def null_table(table, seed: int):
    """The table with its query columns (question, images, metadata) permuted among the rows
    of each task; tasks, answers' outcomes and every model's column stay where they were."""
    rng = np.random.default_rng(seed + 7919)
    order = np.arange(table.n_samples)
    tasks = np.asarray([t or "" for t in table.tasks], dtype=object)
    for task in sorted(set(tasks)):
        idx = np.flatnonzero(tasks == task)
        order[idx] = idx[rng.permutation(len(idx))]
    from dataclasses import replace

    return replace(
        table,
        name=f"{table.name} (null: query columns permuted within tasks)",
        questions=[table.questions[i] for i in order],
        images=[table.images[i] for i in order],
        metadata=[table.metadata[i] for i in order],
    )


def run_unit(table, unit: Unit, *, config: RouterConfig | None, ensemble: int, ablate: Sequence[str],
             say: Callable[[str], None]) -> dict:
    tr, va, te = unit.train, unit.val, unit.test
    label = f"seed {unit.seed}" + (f" fold {unit.fold}" if unit.fold is not None else "")
    started = time.perf_counter()
    spec = fit_feature_spec([table.tasks[i] for i in tr], [table.metadata[i] for i in tr])
    X = featurize_table(spec, table)
    feat_s = time.perf_counter() - started
    data = RouterData.from_table(table, spec, X)
    Y = data.scores
    y_te = Y[te]
    rows: dict[str, np.ndarray] = {}
    result: dict = {"seed": unit.seed, "fold": unit.fold, "n_train": int(len(tr)), "n_val": int(len(va)),
                    "n_test": int(len(te))}

    t0 = time.perf_counter()
    router = train_router(data, spec, config, train_rows=tr, val_rows=va, seed=unit.seed, ensemble=ensemble,
                          progress=lambda m: say(f"{label}: {m}"))
    train_s = time.perf_counter() - t0
    pred = router.predict(X[te], models=table.models, available=np.isfinite(y_te))
    pick = B.routed(pred.score, y_te)
    rows["router"] = B.picked_outcomes(pick, y_te)
    ok = np.isfinite(y_te)
    result["router"] = {**pick_stats(pick, table.models), "train_seconds": round(train_s, 2),
                        "epochs": router.info["epochs"], "decision": router.info.get("decision_rule"),
                        # is mu a calibrated quality (the policy subtracts costs from it, onboarding
                        # compares a new model's level with the incumbents'), not only a ranking?
                        "mu_ece": ece(pred.mu[ok], y_te[ok]), "level_slope": level_slope(pred.mu, y_te)}

    # every method uses every training row the router uses (train + validation); kNN's k and the
    # logistic regression's L2 are chosen on the validation rows first
    fit_rows = np.concatenate([tr, va])
    preds = {
        "best_single": B.best_single(Y[fit_rows], len(te)),
        "per_task_best": B.per_task_best(Y[fit_rows], [table.tasks[i] for i in fit_rows], [table.tasks[i] for i in te]),
    }
    k, _ = B.knn_choose_k(X[tr], Y[tr], X[va], Y[va])
    preds["knn"] = B.knn_predict(X[fit_rows], Y[fit_rows], X[te], k)
    preds["logistic"], l2 = B.logistic_per_model(X[tr], Y[tr], X[va], Y[va], X[te])
    for name, p in preds.items():
        bpick = B.routed(p, y_te)
        rows[name] = B.picked_outcomes(bpick, y_te)
        result[name] = pick_stats(bpick, table.models)
    result["knn"]["k"] = int(k)
    result["logistic"]["l2"] = float(l2)
    have = ok.any(axis=1)
    rows["random"] = np.where(have, np.nanmean(np.where(ok, y_te, np.nan), axis=1), np.nan)
    rows["oracle"] = np.where(have, np.nanmax(np.where(ok, y_te, -np.inf), axis=1), np.nan)

    for variant in ablate:
        t1 = time.perf_counter()
        ablated = train_router(data, spec, ablated_config(config or RouterConfig(), variant), train_rows=tr,
                               val_rows=va, seed=unit.seed, ensemble=ensemble)
        apick = B.routed(ablated.predict(X[te], models=table.models, available=ok).score, y_te)
        rows[f"ablate:{variant}"] = B.picked_outcomes(apick, y_te)
        result[f"ablate:{variant}"] = {**pick_stats(apick, table.models), "train_seconds": round(time.perf_counter() - t1, 2)}

    if table.cost_usd is not None and np.isfinite(table.cost_usd).any():
        cost = table.cost_usd
        expected = np.array([np.nanmean(c) if np.isfinite(c).any() else np.nan for c in cost[tr].T])
        points = frontier(pred.score, y_te, cost[te], expected)
        lo, hi = pool_cost_range(y_te, cost[te])
        single = int(np.argmax(B.nanmean_or_zero(Y[tr])))
        result["costs"] = {
            "frontier": points,
            "nauc": nauc(points, lo, hi),
            "ps": float(max(p["accuracy"] for p in points)),
            "qnc": qnc(points, float(np.nanmean(y_te[:, single])), float(np.nanmean(cost[te][:, single]))),
            "pool_cost_range": [lo, hi],
        }
    result["feature_seconds"] = round(feat_s, 3)
    result["rows"] = {name: values for name, values in rows.items()}
    return result


def paired_interval(diff_by_row: np.ndarray, seed: int = 0, n_boot: int = BOOTSTRAP) -> tuple[float, float, float]:
    """(mean, 2.5 %, 97.5 %) of the mean of per-row differences, bootstrap over rows."""
    d = diff_by_row[np.isfinite(diff_by_row)]
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(lo), float(hi)


def _per_row(units: list[dict], unit_defs: list[Unit], n: int, name: str) -> np.ndarray:
    """Row-indexed mean over every unit that tested the row (NaN where none did)."""
    total = np.zeros(n)
    count = np.zeros(n)
    for res, unit in zip(units, unit_defs):
        values = res["rows"][name]
        ok = np.isfinite(values)
        np.add.at(total, unit.test[ok], values[ok])
        np.add.at(count, unit.test[ok], 1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def bench_router(table, seeds: Sequence[int] = (0, 1, 2), *, folds: int | None = None, null: bool = False,
                 ablate: Sequence[str] = (), config: RouterConfig | None = None, ensemble: int = DEFAULT_ENSEMBLE,
                 decision_folds: int | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """``decision_folds``: overrides the config's (0: the network's own scores)."""
    say = progress or (lambda _m: None)
    if decision_folds is not None:
        config = (config or RouterConfig()).replace(decision_folds=decision_folds)
    unknown = [a for a in ablate if a not in ABLATIONS]
    if unknown:
        from lrcal.errors import UsageError

        raise UsageError(f"unknown ablation(s) {', '.join(unknown)} (known: {', '.join(ABLATIONS)})")
    started = time.perf_counter()
    unit_defs = units_for(table.tasks, list(seeds), folds)
    results: list[dict] = []
    tables = {seed: null_table(table, seed) if null else table for seed in seeds}
    for unit in unit_defs:
        res = run_unit(tables[unit.seed], unit, config=config, ensemble=ensemble, ablate=ablate, say=say)
        results.append(res)
        acc = {name: float(np.nanmean(v)) for name, v in res["rows"].items()}
        say(f"seed {unit.seed}" + (f" fold {unit.fold}" if unit.fold is not None else "") + ": "
            + "  ".join(f"{name} {100 * acc[name]:.1f}" for name in ("router", "best_single", "per_task_best", "knn",
                                                                      "logistic", *(f"ablate:{a}" for a in ablate))))
    names = list(METHODS) + [f"ablate:{a}" for a in ablate]
    methods: dict[str, dict] = {}
    for name in names:
        per_seed = []
        for seed in seeds:
            parts = [r["rows"][name] for r, u in zip(results, unit_defs) if u.seed == seed]
            per_seed.append(float(np.nanmean(np.concatenate(parts))))
        mean, std = mean_std(per_seed)
        entry = {"accuracy_mean": mean, "accuracy_std": std, "accuracy_per_seed": per_seed}
        if "distinct_models" in results[0].get(name, {}):
            entry["distinct_models_mean"] = float(np.mean([r[name]["distinct_models"] for r in results]))
            entry["top_pick_share_mean"] = float(np.mean([r[name]["top_pick_share"] for r in results]))
        methods[name] = entry
    router_entry = methods["router"]
    router_entry["train_seconds_mean"] = float(np.mean([r["router"]["train_seconds"] for r in results]))
    router_entry["mu_ece_mean"] = float(np.mean([r["router"]["mu_ece"] for r in results]))
    slopes = [r["router"]["level_slope"] for r in results if r["router"]["level_slope"] is not None]
    router_entry["level_slope_mean"] = float(np.mean(slopes)) if slopes else None
    router_entry["decisions"] = [r["router"]["decision"] for r in results]
    methods["knn"]["k_per_unit"] = [r["knn"]["k"] for r in results]
    methods["logistic"]["l2_per_unit"] = [r["logistic"]["l2"] for r in results]

    n = table.n_samples
    router_rows = _per_row(results, unit_defs, n, "router")
    paired = {}
    for name in [*PAIRED_AGAINST, *(f"ablate:{a}" for a in ablate)]:
        diff = router_rows - _per_row(results, unit_defs, n, name)
        mean, lo, hi = paired_interval(diff)
        per_seed = [a - b for a, b in zip(methods["router"]["accuracy_per_seed"], methods[name]["accuracy_per_seed"])]
        paired[name] = {"diff_mean": mean, "ci95": [lo, hi], "diff_per_seed": per_seed,
                        "router_wins": int(sum(d > 0 for d in per_seed)), "ties": int(sum(d == 0 for d in per_seed))}
    out = {
        "dataset": table.name,
        "n_samples": table.n_samples,
        "n_models": table.n_models,
        "n_tasks": len({t for t in table.tasks if t}),
        "seeds": list(seeds),
        "folds": folds,
        "protocol": (f"{folds}-fold cross-fitting per seed (every row a test row once per seed)" if folds
                     else "stratified by task, 70/10/20 per seed"),
        "null": bool(null),
        "ablations": list(ablate),
        "ablation_labels": {a: ablation_label(config or RouterConfig(), a) for a in ablate},
        "decision_folds": (config or RouterConfig()).decision_folds,
        "ensemble": ensemble,
        "methods": methods,
        "paired_router_minus": paired,
        "per_unit": [{k: v for k, v in r.items() if k != "rows"} for r in results],
        "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if all("costs" in r for r in results):
        out["costs"] = {
            key: dict(zip(("mean", "std"), mean_std([r["costs"][key] for r in results if r["costs"][key] is not None])))
            for key in ("nauc", "ps", "qnc")
        }
    return out
