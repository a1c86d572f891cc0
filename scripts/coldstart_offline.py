"""Offline cold-start experiments on cached routers (the analyses behind docs/benchmarks.md).

`lrcal bench coldstart` trains its routers every time. This script trains them once, with the
benchmark's seeds and schedules, and caches them. Then it scores onboarding variants and
per-task decision rules on the same folds, many draws each:

    python scripts/coldstart_offline.py cache  --data zoo:/tmp/zoo-home --cache /tmp/cs-cache
    python scripts/coldstart_offline.py margins --data zoo:/tmp/zoo-home --cache /tmp/cs-cache --repeats 4
    python scripts/coldstart_offline.py rules   --data zoo:/tmp/zoo-home --cache /tmp/cs-cache --repeats 10

`--data` is `NAME:PATH`: PATH is an lrcal home (its stored outcomes, as `--from-home` reads them)
or a wide outcome CSV. `margins` compares onboarding's per-task margin calibration: none, the
shipped weighting, full weight, full weight on median margins, a per-newcomer cross-validated
gate between them, "decision" (the fitted card's own task accuracy decides each whole task
group), and "paired" (the newcomer's per-task outcome differences against the best incumbent on
the same calibration rows, at z = 0–2, forcing or deciding the group). `--variants` picks
variants by the first word of their label. `rules` scores per-task decisions that route a whole task group to the held-out
model or not:
- beta-shrunk lookups, plain or difficulty-adjusted;
- a Rasch model that estimates each row's difficulty from the incumbents' outcomes on that row,
  under several priors;
- for the zoo only, an oracle given each row's true generator difficulty.
For each rule it reports the best gain within harm 0.002. Gain and harm are defined as in
`bench coldstart`. Nothing here is used by lrcal itself.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from lrcal.evaluation.coldstart import HEADROOM, draw_calibration, routed_scores
from lrcal.evaluation.splits import stratified_folds
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.router.api import train_router
from lrcal.router.token_fit import (OnboardConfig, difficulty_adjusted_scores, fit_token, newcomer_columns,
                                  stratified_fold_ids)
from lrcal.router.profiles import logit_task_offsets, task_centers
from lrcal.router.train import RouterData

FOLDS = 5
HARM_LIMIT = 0.002


# ---- data and cached routers ------------------------------------------------------------------

def load_table(path: str):
    """(table, per-row generator difficulty or None)."""
    p = Path(path)
    if p.is_dir():
        from lrcal.services.tables import model_row_counts, outcome_table
        from lrcal.store import Store

        store = Store.open(p)
        table, examples = outcome_table(store, sorted(model_row_counts(store)))
        meta = [e.get("metadata") or {} for e in examples]
        meta = [json.loads(m) if isinstance(m, str) else m for m in meta]
        difficulty = np.array([m.get("difficulty", np.nan) if isinstance(m, dict) else np.nan for m in meta], float)
        store.close()
        return table, (difficulty if np.isfinite(difficulty).all() else None)
    from lrcal.outcome_table import read_wide_csv

    return read_wide_csv(p), None


def cache_fold(name: str, path: str, cache: str, f: int) -> str:
    """The benchmark's routers for fold f (seed 0): the full pool and one without each model."""
    torch.set_num_threads(1)
    out = Path(cache) / f"{name}_f{f}.pkl"
    if out.exists():
        return str(out)
    table, difficulty = load_table(path)
    n = len(table.tasks)
    te = stratified_folds(table.tasks, FOLDS, 0)[f]
    tr = np.setdiff1d(np.arange(n), te)
    spec = fit_feature_spec([table.tasks[i] for i in tr], [table.metadata[i] for i in tr])
    X = featurize_table(spec, table)
    data = RouterData.from_table(table, spec, X)
    full = train_router(data, spec, None, rows=tr, seed=f, ensemble=1)
    schedule = (full.info["epochs"]["warmup"], full.info["epochs"]["latent"])
    models = list(table.models)
    routers = {}
    for hi, h in enumerate(models):
        others = [i for i in range(len(models)) if i != hi]
        routers[h] = train_router(data.select_models(others), spec, None, rows=tr, seed=f, ensemble=1, epochs=schedule,
                                  decision_rule=full.decision_rule)
    blob = {"te": te, "tr": tr, "X": X, "task_ids": data.task_ids, "full": full, "routers": routers, "models": models,
            "Y": np.asarray(table.scores, float), "difficulty": difficulty,
            "tasks": np.asarray([t or "(none)" for t in table.tasks], dtype=object)}
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(blob, fh)
    os.replace(tmp, out)
    return str(out)


def load_fold(name: str, cache: str, f: int) -> dict:
    with open(Path(cache) / f"{name}_f{f}.pkl", "rb") as fh:
        return pickle.load(fh)


# ---- evaluation ---------------------------------------------------------------------------------

class Context:
    """What a variant may read about one (fold, held-out model): the router without it, the
    incumbents' training outcomes (as a router's training data would have them)."""

    def __init__(self, router, pool, Y_train_pool, tid_train, difficulty, rows_train) -> None:
        self.router, self.pool = router, pool
        self.Y_train_pool, self.tid_train = Y_train_pool, tid_train
        self.difficulty, self.rows_train = difficulty, rows_train
        self.cache: dict = {}

    @property
    def pool_ta(self) -> np.ndarray:  # [K-1, V+1] the incumbents' card accuracies
        return np.stack([self.router.cards[m].task_accuracy for m in self.pool])


def evaluate(name, cache, variants, k=64, repeats=4, holdout=None):
    """variants: {label: fn(ctx, h, X_cal, y_cal, tid_cal, pool_scores, cal_rows) -> ModelCard | [V+1] margins}.
    A returned array is a per-task margin over the router's best incumbent score (> 0: routed)."""
    sums, without, full, total = {}, {}, {}, 0
    for f in range(FOLDS):
        F = load_fold(name, cache, f)
        te, tr, X, Y, models, tid = F["te"], F["tr"], F["X"], F["Y"], F["models"], F["task_ids"]
        total += len(te)
        y_te = Y[te]
        full_sum = routed_scores(F["full"].predict(X[te], models, available=np.isfinite(y_te)).score, y_te)[0].sum()
        for hi, h in enumerate(models):
            if holdout and h not in holdout:
                continue
            router = F["routers"][h]
            others = [i for i in range(len(models)) if i != hi]
            pool = [models[i] for i in others]
            base = router.predict(X[te], pool, available=np.isfinite(y_te[:, others])).score
            without[h] = without.get(h, 0.0) + routed_scores(base, y_te[:, others])[0].sum()
            full[h] = full.get(h, 0.0) + full_sum
            y_pool = np.concatenate([y_te[:, others], y_te[:, hi:hi + 1]], axis=1)
            ctx = Context(router, pool, Y[np.ix_(tr, others)], tid[tr], F["difficulty"], tr)
            eligible = tr[np.isfinite(Y[tr, hi])]
            rng = np.random.default_rng([0, f, hi])
            for _ in range(repeats):
                cal = draw_calibration(eligible, F["tasks"], k, rng)
                for label, fn in variants.items():
                    card = fn(ctx, h, X[cal], Y[cal, hi], tid[cal], Y[cal][:, others], cal)
                    override = None
                    if isinstance(card, tuple):
                        card, override = card
                    if isinstance(card, np.ndarray):
                        column = base.max(1) + card[np.where(tid[te] >= 0, tid[te], len(card) - 1)]
                        pred = np.concatenate([base, column[:, None]], axis=1)
                    else:
                        router.add_model(card)
                        pred = router.predict(X[te], pool + [h], available=np.isfinite(y_pool)).score
                        router.remove_model(h)
                        if override is not None:  # per task: +1 route every row, -1 none, nan keep
                            o = override[np.where(tid[te] >= 0, tid[te], len(override) - 1)]
                            forced = np.isfinite(o)
                            pred = pred.copy()
                            pred[forced, -1] = base.max(1)[forced] + o[forced]
                    sums.setdefault(label, {}).setdefault(h, 0.0)
                    sums[label][h] += routed_scores(pred, y_pool)[0].sum() / repeats
        print(f"{name}: fold {f + 1}/{FOLDS} done", file=sys.stderr, flush=True)
    U_w = {h: v / total for h, v in without.items()}
    U_f = {h: v / total for h, v in full.items()}
    head = [h for h in U_w if U_f[h] - U_w[h] >= HEADROOM]
    rest = [h for h in U_w if h not in head]
    denominator = sum(U_f[h] - U_w[h] for h in head)
    out = {}
    for label, per in sums.items():
        U = {h: v / total for h, v in per.items()}
        out[label] = {"gain": sum(U[h] - U_w[h] for h in head) / denominator if head else None,
                      "harm": float(np.mean([U_w[h] - U[h] for h in rest])) if rest else None,
                      "per_model": {h: U[h] - U_w[h] for h in U}}
    return out


# ---- onboarding margin variants -------------------------------------------------------------------

def margin_biases(logits, deltas, best, tid, n_tasks, rows, target, location=np.mean):
    """Per-task offsets b_t with location(score(b_t) - best) = target(t, n_t, network margin) on ``rows``."""
    bias, weight = np.zeros(n_tasks + 1), np.zeros(n_tasks + 1)

    def score(b, r):
        return np.clip(1.0 / (1.0 + np.exp(-(logits[:, r] + b))) + deltas[:, r], 0.0, 1.0).mean(0)

    for t in np.unique(tid[(tid >= 0) & (tid < n_tasks) & rows]):
        r = (tid == t) & rows
        goal = target(t, int(r.sum()), float(location(score(0.0, r) - best[r])))
        if goal is None:
            continue
        lo, hi = -8.0, 8.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if location(score(mid, r) - best[r]) < goal else (lo, mid)
        bias[t], weight[t] = 0.5 * (lo + hi), r.sum()
    if weight.sum() > 0:
        bias[n_tasks] = weight @ bias / weight.sum()
    return bias.astype(np.float32)


def margin_variant(mode: str, location=np.mean, stats: dict | None = None):
    def run(ctx, h, X, y, tid, pool_scores, _cal):
        router = ctx.router
        res = fit_token(router, h, X, y, tid, pool=ctx.pool, pool_scores=pool_scores,
                        config=OnboardConfig(level_calibration="none"))
        card = res.card
        pool_ta = ctx.pool_ta
        n_tasks = pool_ta.shape[1] - 1
        logits, deltas, pool_score = newcomer_columns(router, card, torch.as_tensor(np.asarray(X, np.float32)),
                                                      ctx.pool, pool_ta)
        best = pool_score.max(1)
        s = router.profile_prior.strength

        def targets(task_accuracy):
            gap = lambda t: float(task_accuracy[t] - pool_ta[:, t].max())  # noqa: E731
            return {"none": lambda t, n, net: None,
                    "shipped": lambda t, n, net: (1 - n / (n + s)) * net + n / (n + s) * gap(t),
                    "full": lambda t, n, net: gap(t)}

        everything = np.ones(len(y), dtype=bool)
        if mode == "decision":  # the card's own per-task estimate decides each whole task group
            gap = card.task_accuracy[:-1] - pool_ta[:, :-1].max(0)
            return np.append(np.where(gap > 0, 1.0, -1.0), -1.0)
        if mode.startswith("paired"):
            # paired per-task evidence on the calibration rows: the newcomer's outcome minus the
            # outcome of the router's own pick among the incumbents, on the same rows
            _, z, how = mode.split(":")
            known = np.isfinite(pool_scores)
            pick = np.argmax(np.where(known, pool_score, -np.inf), axis=1)
            d = y - pool_scores[np.arange(len(y)), pick]
            override = np.full(n_tasks + 1, np.nan)
            for t in range(n_tasks):
                r = tid == t
                if r.sum() < 2:
                    continue
                m, se = d[r].mean(), d[r].std(ddof=1) / np.sqrt(r.sum()) + 1e-9
                if m / se > float(z):
                    override[t] = 1.0
                elif how == "decide":
                    override[t] = -1.0
            if how == "decide":
                override[n_tasks] = -1.0
            base_card = replace(card, task_bias=margin_biases(logits, deltas, best, tid, n_tasks, everything,
                                                              targets(card.task_accuracy)["shipped"]))
            return base_card, override
        if mode != "gate":
            return replace(card, task_bias=margin_biases(logits, deltas, best, tid, n_tasks, everything,
                                                         targets(card.task_accuracy)[mode], location))
        # per newcomer: the weighting with the best held-out routing value on its calibration rows
        known = np.isfinite(pool_scores)
        pick = np.argmax(np.where(known, pool_score, -np.inf), axis=1)
        y_without = pool_scores[np.arange(len(y)), pick]
        folds = stratified_fold_ids(len(y), 4, tid, 1)
        value = {m: 0.0 for m in ("shipped", "none", "full")}
        values = res.profile_scores if res.profile_scores is not None else y
        for f in range(4):
            train = folds != f
            _, ta = router.profile_from_outcomes(tid[train], values[train])
            tg = targets(np.clip(ta, 0.0, 1.0))
            held = ~train & np.isfinite(y_without)
            column = np.where(tid[held] >= 0, tid[held], n_tasks)
            for m in value:
                b = margin_biases(logits, deltas, best, tid, n_tasks, train, tg[m])
                new = np.clip(1.0 / (1.0 + np.exp(-(logits[:, held] + b[column]))) + deltas[:, held], 0.0, 1.0).mean(0)
                value[m] += float(((new > best[held]) * (y[held] - y_without[held])).sum())
        chosen = max(value, key=lambda m: value[m])  # ties: the first (shipped)
        if stats is not None:
            stats[chosen] = stats.get(chosen, 0) + 1
        return replace(card, task_bias=margin_biases(logits, deltas, best, tid, n_tasks, everything,
                                                     targets(card.task_accuracy)[chosen]))
    return run


# ---- per-task decision rules ----------------------------------------------------------------------

Z_GRID = np.linspace(-4.0, 4.0, 33)
Z_PRIOR = np.exp(-Z_GRID**2 / 2) / np.exp(-Z_GRID**2 / 2).sum()
THETA_GRID = np.linspace(-5.0, 6.0, 111)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    p = np.clip(p, 0.02, 0.98)
    return np.log(p / (1 - p))


def rasch_scale(Y, tid, A) -> float:
    """Spread tau of row easiness: P(y_ji) = sigmoid(logit A_jt + tau z_i), z ~ N(0, 1), by marginal likelihood."""
    L = _logit(A)[tid]  # [n, K]
    best = (-np.inf, 0.0)
    for tau in np.linspace(0.0, 2.5, 26):
        P = _sigmoid(L[:, :, None] + tau * Z_GRID)
        lik = np.where(np.isfinite(Y)[:, :, None], np.where(Y[:, :, None] > 0.5, P, 1 - P), 1.0).prod(1)
        ll = np.log((lik * Z_PRIOR).sum(1) + 1e-300).sum()
        best = max(best, (ll, tau))
    return best[1]


def rasch_estimate(y, tid, Yi, A, tau, prior_sd, centre):
    """Posterior mean accuracy per task; rows' easiness from the incumbents' outcomes on them."""
    n_tasks = A.shape[0]
    P = _sigmoid(_logit(A)[tid][:, :, None] + tau * Z_GRID)
    w = np.where(np.isfinite(Yi)[:, :, None], np.where(Yi[:, :, None] > 0.5, P, 1 - P), 1.0).prod(1) * Z_PRIOR
    w /= w.sum(1, keepdims=True)
    accuracy = (_sigmoid(THETA_GRID[:, None] + tau * Z_GRID) * Z_PRIOR).sum(1)
    out = np.full(n_tasks, -np.inf)
    for t in range(n_tasks):
        r = tid == t
        if not r.any():
            continue
        Pn = _sigmoid(THETA_GRID[:, None, None] + tau * Z_GRID)
        ll = np.log((np.where(y[r][None, :, None] > 0.5, Pn, 1 - Pn) * w[r][None]).sum(2)).sum(1)
        if prior_sd is not None:
            ll = ll - 0.5 * ((THETA_GRID - centre[t]) / prior_sd) ** 2
        post = np.exp(ll - ll.max())
        out[t] = (post / post.sum()) @ accuracy
    return out


def oracle_difficulty_estimate(y, tid, difficulty_cal, difficulty_train, tid_train, n_tasks, slope=2.5):
    """The same posterior with each row's true generator difficulty (the zoo's `difficulty_slope`)."""
    out = np.full(n_tasks, -np.inf)
    for t in range(n_tasks):
        r = tid == t
        if not r.any():
            continue
        P = _sigmoid(THETA_GRID[:, None] + slope * (0.5 - difficulty_cal[r])[None])
        ll = np.where(y[r][None] > 0.5, np.log(P), np.log(1 - P)).sum(1)
        post = np.exp(ll - ll.max())
        acc = _sigmoid(THETA_GRID[:, None] + slope * (0.5 - difficulty_train[tid_train == t])[None]).mean(1)
        out[t] = (post / post.sum()) @ acc
    return out


def decision(estimate_fn, threshold=0.0):
    def run(ctx, h, X, y, tid, pool_scores, cal):
        A = ctx.pool_ta[:, :-1].T  # [V, K-1]
        ok = tid >= 0
        estimate = estimate_fn(ctx, y[ok], tid[ok], pool_scores[ok], A, cal[ok])
        return np.append(np.where(estimate - A.max(1) > threshold, 1.0, -1.0), -1.0)
    return run


def shrunk(values: str, centre: str, strength: float):
    def estimate(ctx, y, tid, Yi, A, _cal):
        n_tasks = A.shape[0]
        v = difficulty_adjusted_scores(y, tid, Yi, ctx.pool_ta)[0] if values == "adjusted" else y
        counts = np.bincount(tid, minlength=n_tasks).astype(float)
        sums = np.bincount(tid, weights=v, minlength=n_tasks)
        overall = np.array([(v.sum() + 1) / (len(v) + 2)])
        if centre == "task":
            have = np.isfinite(ctx.Y_train_pool)
            onehot = np.eye(n_tasks)[np.clip(ctx.tid_train, 0, None)] * (ctx.tid_train >= 0)[:, None]
            offsets = logit_task_offsets(have.T.astype(float) @ onehot,
                                    np.where(have, np.nan_to_num(ctx.Y_train_pool), 0).T @ onehot,
                                    np.arange(have.shape[1]))
            c = task_centers(overall, counts[None], offsets)[0]
        else:
            c = np.repeat(overall, n_tasks)
        return np.where(counts > 0, (sums + strength * c) / (counts + strength), -np.inf)
    return estimate


def rasch(prior_sd, centre):
    def estimate(ctx, y, tid, Yi, A, _cal):
        if "tau" not in ctx.cache:
            ok = ctx.tid_train >= 0
            ctx.cache["tau"] = rasch_scale(ctx.Y_train_pool[ok], ctx.tid_train[ok], A)
        level = _logit(np.array([y.mean()]))[0]
        if centre == "task":
            offsets = _logit(A).mean(1) - _logit(A.mean(0)).mean()
            c = level + offsets - offsets.mean()
        else:
            c = np.full(A.shape[0], level)
        return rasch_estimate(y, tid, Yi, A, ctx.cache["tau"], prior_sd, c)
    return estimate


def oracle(ctx, y, tid, Yi, A, cal):
    d = ctx.difficulty
    return oracle_difficulty_estimate(y, tid, d[cal], d[ctx.rows_train], ctx.tid_train, A.shape[0])


# ---- commands ------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("cache", "margins", "rules"))
    parser.add_argument("--data", required=True, help="NAME:PATH (an lrcal home or a wide outcome CSV)")
    parser.add_argument("--cache", required=True, help="directory for the cached routers")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--holdout", default="", help="comma-separated models (default: all)")
    parser.add_argument("--variants", default="", help="margins: comma-separated first words of the variants to run (default: all)")
    args = parser.parse_args()
    name, path = args.data.split(":", 1)
    Path(args.cache).mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.command == "cache":
        with ProcessPoolExecutor(args.jobs) as pool:
            for done in pool.map(cache_fold, [name] * FOLDS, [path] * FOLDS, [args.cache] * FOLDS, range(FOLDS)):
                print("cached", done, flush=True)
        return
    holdout = [h for h in args.holdout.split(",") if h] or None
    stats: dict = {}
    if args.command == "margins":
        variants = {"none": margin_variant("none"), "shipped": margin_variant("shipped"),
                    "full": margin_variant("full"), "full, median": margin_variant("full", np.median),
                    "gate (CV on the calibration rows)": margin_variant("gate", stats=stats),
                    "decision (the card's task accuracy)": margin_variant("decision")}
        for z in ("0", "0.5", "1", "1.5", "2"):
            for how in ("force", "decide"):
                variants[f"paired:{z}:{how}"] = margin_variant(f"paired:{z}:{how}")
        if args.variants:
            variants = {k: v for k, v in variants.items() if any(k.split(" ")[0].rstrip(",").startswith(v) for v in args.variants.split(","))}
    else:
        variants = {}
        for values in ("plain", "adjusted"):
            for centre in ("overall", "task"):
                for strength in (1, 2, 4, 8, 16, 32, 64):
                    for threshold in (-0.02, 0.0, 0.02, 0.05):
                        variants[f"{values}:{centre}:{strength} > {threshold:+g}"] = decision(
                            shrunk(values, centre, strength), threshold)
        for sd in (0.5, 1.0, 2.0, 4.0, None):
            for centre in ("overall", "task"):
                for threshold in (0.0, 0.03):
                    if sd is None and centre == "task":
                        continue
                    label = f"rasch sd {sd if sd is not None else 'flat'} {centre if sd is not None else ''} > {threshold:+g}"
                    variants[label] = decision(rasch(sd, centre), threshold)
        if load_fold(name, args.cache, 0)["difficulty"] is not None:
            variants["oracle difficulty > +0"] = decision(oracle)
    result = evaluate(name, args.cache, variants, k=args.k, repeats=args.repeats, holdout=holdout)
    rows = sorted(result.items(), key=lambda kv: -(kv[1]["gain"] or -math.inf))
    print(f"{name}, k={args.k}, {args.repeats} draws per (fold, model):")
    for label, r in rows:
        print(f"  {label:40s} gain {r['gain']:.3f}  harm {r['harm']:.4f}")
    if args.command == "rules":
        within = [(label, r) for label, r in rows if r["harm"] is not None and r["harm"] <= HARM_LIMIT]
        if within:
            label, r = within[0]
            print(f"best within harm {HARM_LIMIT}: {label}: gain {r['gain']:.3f}, harm {r['harm']:.4f}")
    if stats:
        print("the gate chose:", stats)


if __name__ == "__main__":
    main()
