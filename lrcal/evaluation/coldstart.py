"""Cold-start benchmark: onboard a held-out model into a router trained without it.

Protocol (K-fold cross-fitting over samples, so the test set is the whole file):
for each fold f and each held-out model h --
  * U_full: a router trained with every model on the other folds routes fold f;
  * U_without: a router trained without h on the other folds routes fold f without h;
  * U_k: k calibration rows for h drawn from the other folds (stratified by task), ``repeats``
    times; h is onboarded into the router-without-h with every router weight frozen, and
    fold f is routed with the full pool.
Utilities are routed accuracies (lambda = 0) accumulated over all folds. Pooled gain
recovered = sum_h (U_k - U_without) / sum_h (U_full - U_without) over models with headroom
(U_full - U_without >= 0.005); harm = mean (U_without - U_k) over the models without.
Baselines measured in the same run on the same draws: profile only (step 1, no fit), free
token (random init, no prior), per-task lookup (h's calibration accuracy per task, shrunk
toward its overall accuracy, against the incumbents' training accuracy per task; light and
heavy shrinkage), and full retrain (U_full itself).
"""

from __future__ import annotations

import platform
import time
from typing import Callable, Sequence

import numpy as np
import torch

from lrcal.evaluation.splits import stratified_folds
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.router.api import train_router
from lrcal.router.config import RouterConfig
from lrcal.router.onboard import OnboardConfig, fit_token
from lrcal.router.train import RouterData

HEADROOM = 0.005
METHODS = ("onboard", "profile_only", "free_token", "lookup_light", "lookup_heavy")
LOOKUP_SHRINK = {"lookup_light": 2.0, "lookup_heavy": 16.0}


def _routed_scores(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Outcome of the argmax-predicted model per row ([N])."""
    masked = np.where(np.isfinite(y), pred, -np.inf)
    pick = np.argmax(masked, axis=1)
    return np.nan_to_num(y[np.arange(len(y)), pick]), pick


def _draw_calibration(rows: np.ndarray, tasks: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k rows stratified by task (proportional, largest remainders)."""
    k = min(k, len(rows))
    groups = {t: rows[tasks[rows] == t] for t in np.unique(tasks[rows])}
    sizes = {t: len(g) for t, g in groups.items()}
    quota = {t: k * s / len(rows) for t, s in sizes.items()}
    take = {t: int(np.floor(q)) for t, q in quota.items()}
    rest = k - sum(take.values())
    for t in sorted(quota, key=lambda t: quota[t] - take[t], reverse=True)[:rest]:
        take[t] += 1
    chosen = [rng.choice(groups[t], size=min(take[t], sizes[t]), replace=False) for t in groups if take[t]]
    return np.sort(np.concatenate(chosen)) if chosen else rows[:0]


def _lookup_scores(y_cal, tasks_cal, tasks_test, shrink: float) -> np.ndarray:
    overall = float(np.mean(y_cal))
    out = np.full(len(tasks_test), overall)
    for t in np.unique(tasks_test):
        m = tasks_cal == t
        out[tasks_test == t] = (float(y_cal[m].sum()) + shrink * overall) / (m.sum() + shrink)
    return out


def _incumbent_lookup(Y_tr, tasks_tr, tasks_te) -> np.ndarray:
    out = np.zeros((len(tasks_te), Y_tr.shape[1]))
    overall = np.nanmean(Y_tr, axis=0)
    for t in np.unique(tasks_te):
        m = tasks_tr == t
        out[tasks_te == t] = np.nanmean(Y_tr[m], axis=0) if m.any() else overall
    return np.nan_to_num(out)


def _ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(float(p[m].mean()) - float(y[m].mean()))
    return total / max(len(p), 1)


def bench_coldstart(
    table,
    holdout: Sequence[str] | None = None,
    ks: Sequence[int] = (16, 32, 64, 128),
    folds: int = 5,
    seeds: Sequence[int] = (0,),
    repeats: int = 1,
    *,
    ensemble: int = 1,
    config: RouterConfig | None = None,
    onboard_config: OnboardConfig = OnboardConfig(),
    progress: Callable[[str], None] | None = None,
) -> dict:
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    models = list(table.models)
    holdout = models if not holdout else list(holdout)
    unknown = [h for h in holdout if h not in models]
    if unknown:
        from lrcal.errors import UsageError

        raise UsageError(f"--holdout: unknown model(s) {', '.join(unknown)} (models: {', '.join(models)})")
    ks = sorted(set(int(k) for k in ks))
    tasks = np.asarray([t or "(none)" for t in table.tasks], dtype=object)
    Y = np.asarray(table.scores, dtype=np.float64)
    n = Y.shape[0]
    # accumulated routed outcome sums over the whole file, per (seed, h)
    acc = {
        "without": {h: 0.0 for h in holdout},
        "full": {h: 0.0 for h in holdout},
        **{m: {h: {k: 0.0 for k in ks} for h in holdout} for m in METHODS},
    }
    sel = {h: {k: {"tp": 0.0, "picked": 0.0, "oracle": 0.0} for k in ks} for h in holdout}
    calib = {h: {k: ([], []) for k in ks} for h in holdout}
    fit_seconds: list[float] = []
    chosen_lambdas: list = []
    router_seconds = 0.0
    for seed in seeds:
        for f, te in enumerate(stratified_folds(table.tasks, folds, seed)):
            tr = np.setdiff1d(np.arange(n), te)
            spec = fit_feature_spec([table.tasks[i] for i in tr], [table.metadata[i] for i in tr])
            X = featurize_table(spec, table)
            data = RouterData.from_table(table, spec, X)
            y_te = Y[te]
            t0 = time.perf_counter()
            full = train_router(data, spec, config, rows=tr, seed=seed * 100 + f, ensemble=ensemble)
            # the schedule validated for the full pool is reused for every router-without-h of the fold
            schedule = (full.info["epochs"]["warmup"], full.info["epochs"]["latent"])
            router_seconds += time.perf_counter() - t0
            full_scores = full.predict(X[te], models, available=np.isfinite(y_te)).score
            full_routed, _ = _routed_scores(full_scores, y_te)
            for h in holdout:
                hi = models.index(h)
                others = [i for i in range(len(models)) if i != hi]
                other_names = [models[i] for i in others]
                y_h = Y[:, hi]
                t0 = time.perf_counter()
                router_h = train_router(data.select_models(others), spec, config, rows=tr, seed=seed * 100 + f,
                                        ensemble=ensemble, epochs=schedule)
                router_seconds += time.perf_counter() - t0
                base = router_h.predict(X[te], other_names, available=np.isfinite(y_te[:, others])).score
                without_routed, _ = _routed_scores(base, y_te[:, others])
                acc["without"][h] += float(without_routed.sum())
                acc["full"][h] += float(full_routed.sum())
                # the full-pool column order: others..., h
                y_pool = np.concatenate([y_te[:, others], y_te[:, hi : hi + 1]], axis=1)
                oracle_h = y_te[:, hi] > np.nanmax(np.where(np.isfinite(y_te[:, others]), y_te[:, others], -1), axis=1)
                lookup_inc = _incumbent_lookup(Y[tr][:, others], tasks[tr], tasks[te])
                eligible = tr[np.isfinite(y_h[tr])]
                rng = np.random.default_rng([seed, f, hi])
                for k in ks:
                    for _ in range(repeats):
                        cal = _draw_calibration(eligible, tasks, k, rng)
                        kw = dict(pool=other_names, pool_scores=Y[cal][:, others], seed=seed)
                        res = fit_token(router_h, h, X[cal], y_h[cal], data.task_ids[cal], config=onboard_config, **kw)
                        fit_seconds.append(res.seconds)
                        chosen_lambdas.append(res.prior_strength)
                        variants = {"onboard": res.card}
                        profile_card = _copy_card(res.card, residuals=None)
                        variants["profile_only"] = profile_card
                        free = fit_token(router_h, h, X[cal], y_h[cal], data.task_ids[cal], free=True,
                                         config=onboard_config, **kw)
                        variants["free_token"] = free.card
                        for method, card in variants.items():
                            router_h.add_model(card)
                            pred = router_h.predict(X[te], other_names + [h], available=np.isfinite(y_pool)).score
                            router_h.remove_model(h)
                            routed, pick = _routed_scores(pred, y_pool)
                            acc[method][h][k] += float(routed.sum()) / repeats
                            if method == "onboard":
                                picked = pick == len(others)
                                sel[h][k]["tp"] += float((picked & oracle_h).sum()) / repeats
                                sel[h][k]["picked"] += float(picked.sum()) / repeats
                                sel[h][k]["oracle"] += float(oracle_h.sum()) / repeats
                                ok = np.isfinite(y_te[:, hi])
                                calib[h][k][0].append(pred[ok, -1])
                                calib[h][k][1].append(y_te[ok, hi])
                        for method, shrink in LOOKUP_SHRINK.items():
                            pred = np.concatenate(
                                [lookup_inc, _lookup_scores(y_h[cal], tasks[cal], tasks[te], shrink)[:, None]], axis=1)
                            routed, _ = _routed_scores(pred, y_pool)
                            acc[method][h][k] += float(routed.sum()) / repeats
                say(f"seed {seed} fold {f + 1}/{folds} {h}: without {acc['without'][h] / n:.3f} (running)")
            say(f"seed {seed} fold {f + 1}/{folds} done ({time.perf_counter() - started:.0f}s)")

    total = n * len(seeds)
    U = {key: {h: v / total for h, v in acc[key].items()} for key in ("without", "full")}
    Uk = {m: {h: {k: acc[m][h][k] / total for k in ks} for h in holdout} for m in METHODS}
    headroom = [h for h in holdout if U["full"][h] - U["without"][h] >= HEADROOM]
    no_headroom = [h for h in holdout if h not in headroom]

    def summarize(method: str) -> dict:
        out = {}
        for k in ks:
            denom = sum(U["full"][h] - U["without"][h] for h in headroom)
            gain = (sum(Uk[method][h][k] - U["without"][h] for h in headroom) / denom) if headroom and denom > 0 else None
            harm = float(np.mean([U["without"][h] - Uk[method][h][k] for h in no_headroom])) if no_headroom else None
            out[str(k)] = {
                "accuracy": float(np.mean([Uk[method][h][k] for h in holdout])),
                "gain_recovered": gain,
                "harm": harm,
                "harm_max": float(max(U["without"][h] - Uk[method][h][k] for h in no_headroom)) if no_headroom else None,
            }
        return out

    per_model = []
    for h in holdout:
        row = {"model": h, "headroom": h in headroom, "U_without": U["without"][h], "U_full": U["full"][h],
               "U_k": {str(k): Uk["onboard"][h][k] for k in ks}, "per_k": {}}
        for k in ks:
            s = sel[h][k]
            p = np.concatenate(calib[h][k][0]) if calib[h][k][0] else np.zeros(0)
            y = np.concatenate(calib[h][k][1]) if calib[h][k][1] else np.zeros(0)
            row["per_k"][str(k)] = {
                "precision": s["tp"] / s["picked"] if s["picked"] else None,
                "recall": s["tp"] / s["oracle"] if s["oracle"] else None,
                "share_routed": s["picked"] / total,
                "ece": _ece(p, y) if len(p) else None,
                **{m: Uk[m][h][k] for m in METHODS if m != "onboard"},
            }
        per_model.append(row)
    onboard = summarize("onboard")
    lambdas = [lam for lam in chosen_lambdas]
    return {
        "dataset": table.name,
        "n_samples": int(n),
        "n_models": len(models),
        "holdout": holdout,
        "folds": folds,
        "seeds": list(seeds),
        "repeats": repeats,
        "ks": ks,
        "k": onboard,
        "per_model": per_model,
        "baselines": {m: summarize(m) for m in METHODS if m != "onboard"},
        "without": {"accuracy": float(np.mean([U["without"][h] for h in holdout])), "per_model": U["without"]},
        "full_retrain": {"accuracy": float(np.mean([U["full"][h] for h in holdout])), "per_model": U["full"],
                         "gain_recovered": 1.0 if headroom else None, "harm": float(np.mean([U["without"][h] - U["full"][h] for h in no_headroom])) if no_headroom else None},
        "headroom_models": headroom,
        "fit_seconds": {"mean": float(np.mean(fit_seconds)) if fit_seconds else None,
                        "max": float(np.max(fit_seconds)) if fit_seconds else None},
        "profile_only_share": float(np.mean([lam is None for lam in lambdas])) if lambdas else None,
        "router_train_seconds": round(router_seconds, 1),
        "ensemble": ensemble,
        "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def _copy_card(card, **changes):
    from dataclasses import replace

    return replace(card, **changes)


def plot_coldstart(result: dict, path) -> None:
    """Gain recovered and harm against k, onboarding vs the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = result["ks"]
    series = {"onboard (frozen router)": result["k"], **result["baselines"]}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for name, entry in series.items():
        gains = [entry[str(k)]["gain_recovered"] for k in ks]
        harms = [entry[str(k)]["harm"] for k in ks]
        style = dict(marker="o", linewidth=2.4 if name.startswith("onboard") else 1.2)
        if any(g is not None for g in gains):
            left.plot(ks, [np.nan if g is None else g for g in gains], label=name, **style)
        if any(h is not None for h in harms):
            right.plot(ks, [np.nan if h is None else h for h in harms], label=name, **style)
    left.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    left.set(xscale="log", xlabel="calibration examples k", ylabel="pooled gain recovered",
             title="models with headroom (higher is better)")
    right.axhline(0.0, color="grey", linestyle=":", linewidth=1)
    right.set(xscale="log", xlabel="calibration examples k", ylabel="harm (accuracy lost)",
              title="models without headroom (lower is better)")
    for ax in (left, right):
        ax.minorticks_off()
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle(f"{result['dataset']}: cold-start onboarding, {result['folds']}-fold cross-fitting")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
