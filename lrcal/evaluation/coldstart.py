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
token (random init, no prior), per-task lookup (h takes a task's rows when its calibration
accuracy there, shrunk toward its overall accuracy, beats the best incumbent's training accuracy
on the task; the other rows keep the router-without-h's pick; light and heavy shrinkage), and
full retrain (U_full itself).

Units of work, each seeded by its own (seed, fold[, model]) so any process can run it:
(1) per (seed, fold): features and the full-pool router (its validated epoch schedule is reused
by every router-without-h of the fold, and each of those fits its own decision rule on the
full-pool router's out-of-fold predictions without h's column; ``refit_rule``: on fold networks
of its own); (2) per (seed, fold, held-out model): the router without h and every onboarding
draw. ``jobs > 1`` runs them in worker processes; the partial sums are merged in a fixed order,
so the numbers are identical to ``jobs=1``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from lrcal.errors import LrcalError, UsageError
from lrcal.evaluation.metrics import ece
from lrcal.evaluation.splits import stratified_folds
from lrcal.features import FeatureSpec, featurize_table, fit_feature_spec
from lrcal.router.adaptive import AdaptiveSampler, CandidatePool, GroupPrior, SamplerConfig
from lrcal.router.api import CrossFit, train_router
from lrcal.router.policy import DecisionRule
from lrcal.router.config import RouterConfig
from lrcal.router.token_fit import OnboardConfig, fit_token
from lrcal.router.train import RouterData

HEADROOM = 0.005
METHODS = ("onboard", "profile_only", "free_token", "lookup_light", "lookup_heavy")
LOOKUP_SHRINK = {"lookup_light": 2.0, "lookup_heavy": 16.0}
# the per-task lookup at every shrinkage: its gain-harm frontier, to compare onboarding at equal harm
LOOKUP_SWEEP = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0)
# Per-task decision rules, a reference (not a method): route task t to the held-out model exactly
# when an estimate of its accuracy there beats the best incumbent's training accuracy, the router
# without it keeping every other row. Estimates: the calibration outcomes, plain or difficulty-
# adjusted (as onboarding's profile), shrunk toward the model's overall accuracy or a task centre.
# The best of them at a harm limit, read off with the test outcomes, bounds what any per-task
# decision from k rows can recover; "unlimited" decides from all of the model's training rows.
DECISION_STRENGTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
DECISION_RULES = tuple(f"{values}:{centre}:{c:g}" for values in ("plain", "adjusted") for centre in ("overall", "task")
                       for c in DECISION_STRENGTHS)
HARM_LIMIT = 0.002
# how calibration rows are chosen: "uniform" (stratified random, the protocol's reference, always
# run) and "adaptive" (lrcal.router.adaptive: value of information for the routing decision, the
# fold's training rows as the candidate pool, the router without the model as its view)
SAMPLERS = ("uniform", "adaptive")
ADAPTIVE = "adaptive"  # its routed sums sit beside the uniform methods' under this name
ADAPTIVE_BATCH = 16
GAIN_TARGETS = (0.6, 0.75, 0.9)
INTERVAL_LEVEL = 0.9
BOOTSTRAP_REPLICATES = 400


def routed_scores(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Outcome of the argmax-predicted model per row ([N])."""
    masked = np.where(np.isfinite(y), pred, -np.inf)
    pick = np.argmax(masked, axis=1)
    return np.nan_to_num(y[np.arange(len(y)), pick]), pick


def draw_calibration(rows: np.ndarray, tasks: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
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


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _Plan:
    """What every unit of work needs besides the table (small and picklable)."""

    models: tuple[str, ...]
    holdout: tuple[str, ...]
    ks: tuple[int, ...]
    folds: int
    repeats: int
    ensemble: int
    config: RouterConfig | None
    onboard_config: OnboardConfig
    samplers: tuple[str, ...] = ("uniform",)
    stop_value: float = SamplerConfig.stop_value  # the adaptive sampler's stopping threshold
    # Every router without a model fits its own decision rule, as a home's router without the
    # newcomer did. By default on the fold's full-pool out-of-fold predictions without the model's
    # column (no new networks); True: on its own fold networks (4 more per router, exact)
    refit_rule: bool = False
    prior_scale: float = SamplerConfig.prior_scale  # how loosely the adaptive sampler holds the prior

    @property
    def methods(self) -> tuple[str, ...]:
        return METHODS + ((ADAPTIVE,) if ADAPTIVE in self.samplers else ())


@dataclass
class _FoldResult:
    """Stage 1, one per (seed, fold): features, the full-pool router's validated schedule and
    out-of-fold predictions (None with ``refit_rule``), and its routed sum."""

    spec: FeatureSpec
    X: np.ndarray
    schedule: tuple[int, int]
    full_sum: float
    router_seconds: float
    cross_fit: CrossFit | None = None


@dataclass
class _HoldoutResult:
    """Stage 2, one per (seed, fold, held-out model): the terms this unit adds to the accumulators,
    kept per draw (not pre-summed) so merging reproduces the sequential sums bit for bit."""

    without_sum: float
    routed: dict  # method -> k -> [routed outcome sum / repeats, one per draw]
    selection: dict  # k -> {"tp"|"picked"|"oracle": [count / repeats, one per draw]}
    calibration: dict  # k -> ([predicted quality of h], [outcome of h]), one array per draw
    fit_seconds: list
    chosen_lambdas: list
    router_seconds: float
    n_test: int
    profile_prior: str = ""  # "centre:strength" of the router without the model
    lookup_sweep: dict = field(default_factory=dict)  # shrink -> k -> [routed outcome sum / repeats, one per draw]
    decisions: dict = field(default_factory=dict)  # rule -> k -> [routed outcome sum / repeats, one per draw]
    unlimited_sum: float = 0.0  # the per-task decision from all of the model's training rows
    adaptive_used: dict = field(default_factory=dict)  # k -> [examples the adaptive sampler used, one per draw]
    adaptive_stops: dict = field(default_factory=dict)  # k -> [why it stopped, one per draw]
    rule: str = ""  # what the router without the model decides by (`rule_summary`)


def _fold_unit(table, plan: _Plan, seed: int, f: int, te: np.ndarray) -> _FoldResult:
    n = len(table.tasks)
    tr = np.setdiff1d(np.arange(n), te)
    spec = fit_feature_spec([table.tasks[i] for i in tr], [table.metadata[i] for i in tr])
    X = featurize_table(spec, table)
    data = RouterData.from_table(table, spec, X)
    y_te = np.asarray(table.scores, dtype=np.float64)[te]
    t0 = time.perf_counter()
    full = train_router(data, spec, plan.config, rows=tr, seed=seed * 100 + f, ensemble=plan.ensemble,
                        keep_cross_fit=not plan.refit_rule)
    router_seconds = time.perf_counter() - t0
    # the schedule validated for the full pool, and its out-of-fold predictions, are reused for
    # every router-without-h of the fold
    schedule = (full.info["epochs"]["warmup"], full.info["epochs"]["latent"])
    full_scores = full.predict(X[te], list(plan.models), available=np.isfinite(y_te)).score
    full_routed, _ = routed_scores(full_scores, y_te)
    return _FoldResult(spec, X, schedule, float(full_routed.sum()), router_seconds, full.cross_fit)


def _holdout_unit(table, plan: _Plan, seed: int, f: int, te: np.ndarray, h: str, fold: _FoldResult) -> _HoldoutResult:
    models = list(plan.models)
    ks, repeats, onboard_config = plan.ks, plan.repeats, plan.onboard_config
    tasks = np.asarray([t or "(none)" for t in table.tasks], dtype=object)
    Y = np.asarray(table.scores, dtype=np.float64)
    n = Y.shape[0]
    tr = np.setdiff1d(np.arange(n), te)
    spec, X = fold.spec, fold.X
    data = RouterData.from_table(table, spec, X)
    y_te = Y[te]
    hi = models.index(h)
    others = [i for i in range(len(models)) if i != hi]
    other_names = [models[i] for i in others]
    y_h = Y[:, hi]
    t0 = time.perf_counter()
    # its own decision rule, fitted without h's column (the networks behind those predictions
    # were trained with h in the pool; latent communication moves other models' scores by ~1e-5)
    router_h = train_router(data.select_models(others), spec, plan.config, rows=tr, seed=seed * 100 + f,
                            ensemble=plan.ensemble, epochs=fold.schedule,
                            cross_fit=None if fold.cross_fit is None else fold.cross_fit.select(others),
                            keep_cross_fit=True)
    router_seconds = time.perf_counter() - t0
    base = router_h.predict(X[te], other_names, available=np.isfinite(y_te[:, others])).score
    without_routed, _ = routed_scores(base, y_te[:, others])
    out = _HoldoutResult(
        without_sum=float(without_routed.sum()),
        routed={m: {k: [] for k in ks} for m in plan.methods},
        selection={k: {"tp": [], "picked": [], "oracle": []} for k in ks},
        calibration={k: ([], []) for k in ks},
        fit_seconds=[], chosen_lambdas=[], router_seconds=router_seconds, n_test=len(te),
        profile_prior=f"{router_h.profile_prior.center}:{router_h.profile_prior.strength:g}",
        lookup_sweep={c: {k: [] for k in ks} for c in LOOKUP_SWEEP},
        decisions={rule: {k: [] for k in ks} for rule in DECISION_RULES},
        rule=rule_summary(router_h.decision_rule),
    )
    decide = TaskDecisions(router_h, other_names, data.task_ids, tr, te, Y, hi, others, without_routed)
    out.unlimited_sum = decide.unlimited()
    # the full-pool column order: others..., h
    y_pool = np.concatenate([y_te[:, others], y_te[:, hi : hi + 1]], axis=1)
    oracle_h = y_te[:, hi] > np.nanmax(np.where(np.isfinite(y_te[:, others]), y_te[:, others], -1), axis=1)
    best_incumbent = _incumbent_lookup(Y[tr][:, others], tasks[tr], tasks[te]).max(axis=1)  # [test rows]
    eligible = tr[np.isfinite(y_h[tr])]
    sampler_view = _adaptive_view(router_h, other_names, X, Y, data.task_ids, eligible, others) \
        if ADAPTIVE in plan.samplers else None

    def fit(cal: np.ndarray, **options):
        return fit_token(router_h, h, X[cal], y_h[cal], data.task_ids[cal], config=onboard_config, pool=other_names,
                         pool_scores=Y[cal][:, others], seed=seed, **options)  # fmt: skip

    def route_with(card) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scores, routed outcomes, picks) on the test rows with ``card`` added to the pool."""
        router_h.add_model(card)
        pred = router_h.predict(X[te], other_names + [h], available=np.isfinite(y_pool)).score
        router_h.remove_model(h)
        return (pred, *routed_scores(pred, y_pool))

    for k in ks:
        for r in range(repeats):
            # every draw from its own seed: the rows for (seed, fold, model, k, draw) do not
            # depend on which other k were asked
            if sampler_view is not None:
                state = AdaptiveSampler(sampler_view[0], sampler_view[1], SamplerConfig(budget=k, batch=ADAPTIVE_BATCH,
                                                                                   stop_value=plan.stop_value,
                                                                                   prior_scale=plan.prior_scale),
                                        seed=[seed, f, hi, k, r]).run(lambda rows: y_h[eligible[rows]])
                _, routed, _ = route_with(fit(np.sort(eligible[state.asked])).card)
                out.routed[ADAPTIVE][k].append(float(routed.sum()) / repeats)
                out.adaptive_used.setdefault(k, []).append(state.used)
                out.adaptive_stops.setdefault(k, []).append(state.stop)
            cal = draw_calibration(eligible, tasks, k, np.random.default_rng([seed, f, hi, k, r]))
            res = fit(cal)
            out.fit_seconds.append(res.seconds)
            out.chosen_lambdas.append(res.prior_strength)
            variants = {"onboard": res.card}
            variants["profile_only"] = _copy_card(res.card, residuals=None, task_bias=None)
            variants["free_token"] = fit(cal, free=True).card
            for method, card in variants.items():
                pred, routed, pick = route_with(card)
                out.routed[method][k].append(float(routed.sum()) / repeats)
                if method == "onboard":
                    picked = pick == len(others)
                    out.selection[k]["tp"].append(float((picked & oracle_h).sum()) / repeats)
                    out.selection[k]["picked"].append(float(picked.sum()) / repeats)
                    out.selection[k]["oracle"].append(float(oracle_h.sum()) / repeats)
                    ok = np.isfinite(y_te[:, hi])
                    out.calibration[k][0].append(pred[ok, -1])
                    out.calibration[k][1].append(y_te[ok, hi])
            swept = {}
            for shrink in sorted(set(LOOKUP_SWEEP) | set(LOOKUP_SHRINK.values())):
                # h takes a task's rows where its shrunk calibration accuracy beats the best
                # incumbent's training accuracy there; every other row keeps the router-without-h's
                # pick. (Routing the incumbents by per-task means too charged the lookup with the
                # router's own lead over per-task routing: 3.8 points on MathVista.)
                h_estimate = _lookup_scores(y_h[cal], tasks[cal], tasks[te], shrink)
                send = (h_estimate > best_incumbent) & np.isfinite(y_te[:, hi])
                swept[shrink] = float(np.where(send, np.nan_to_num(y_te[:, hi]), without_routed).sum()) / repeats
            for method, shrink in LOOKUP_SHRINK.items():
                out.routed[method][k].append(swept[shrink])
            for shrink in LOOKUP_SWEEP:
                out.lookup_sweep[shrink][k].append(swept[shrink])
            for rule, routed_sum in decide.rules(cal, Y[cal][:, others]).items():
                out.decisions[rule][k].append(routed_sum / repeats)
    return out


def rule_summary(rule: DecisionRule) -> str:
    """A decision rule's kind and how many models it was fitted on (its evidence), for counting."""
    models = (rule.evidence or {}).get("models")
    return f"{rule.kind()} (fitted on {models} models)" if models is not None else rule.kind()


def _adaptive_view(router_h, pool_names, X, Y, task_ids, eligible, others):
    """(candidate pool, prior) of the adaptive sampler on a fold: the fold's training rows the
    model has outcomes on, grouped by task, each with the best incumbent's decision score from
    the router without the model, and that router's profile prior for the newcomer. The scores
    are out of fold (the router's cross-fitted predictions under its own rule and cards), as a
    home's router sees a calibration pool it was not trained on; in-sample scores of its own
    training rows would show the sampler sharper bars than it gets."""
    known = np.isfinite(Y[eligible][:, others])
    if router_h.cross_fit is not None:
        best = router_h.cross_fit.decision_scores(router_h, eligible)
        known &= np.isfinite(best)
    else:  # too few rows to cross-fit: the rule is the network's own scores
        best = router_h.predict(X[eligible], pool_names, available=known).score
    best = np.where(known, best, -np.inf).max(axis=1)
    best = np.where(np.isfinite(best), best, 0.0)
    tids = task_ids[eligible]
    labels, groups = np.unique(tids, return_inverse=True)
    n_tasks = len(router_h.spec.task_vocab)
    offsets = router_h.profile_prior.offsets(n_tasks)
    if offsets is not None:
        offsets = np.asarray([offsets[t] if 0 <= t < n_tasks else 0.0 for t in labels])
    pool = CandidatePool(groups=groups, incumbent_best=best,
                         labels=[router_h.spec.task_vocab[t] if 0 <= t < n_tasks else "(none)" for t in labels])
    return pool, GroupPrior(strength=router_h.profile_prior.strength, offsets=offsets)


class TaskDecisions:
    """Routed outcome sums of the per-task decision rules (``DECISION_RULES``) on one fold."""

    def __init__(self, router_h, pool_names, task_ids, tr, te, Y, hi, others, without_routed) -> None:
        from lrcal.router.profiles import logit_task_offsets, task_counts_and_sums

        self.task_ids, self.Y, self.hi = task_ids, Y, hi
        self.n_tasks = len(router_h.spec.task_vocab)
        V = self.n_tasks
        t_tr = task_ids[tr]
        have = np.isfinite(Y[tr][:, others])
        counts, sums = task_counts_and_sums(t_tr, V, have.T, np.where(have, np.nan_to_num(Y[tr][:, others]), 0.0).T)
        self.best = np.where(counts.max(0) > 0, (sums / np.maximum(counts, 1)).max(0), np.inf)  # [V]
        self.offsets = logit_task_offsets(counts, sums, np.arange(len(others))) if V else np.zeros(0)
        # the incumbents' card accuracies: what onboarding's difficulty adjustment measures rows against
        self.pool_ta = np.stack([router_h.cards[m].task_accuracy for m in pool_names])
        self.t_te = task_ids[te]
        self.y_new = np.nan_to_num(Y[te, hi], nan=-np.inf)  # a row h was not run on is never routed to it
        self.without = without_routed
        mine = np.isfinite(Y[tr, hi]) & (t_tr >= 0)
        h_counts = np.bincount(t_tr[mine], minlength=V).astype(float)
        h_sums = np.bincount(t_tr[mine], weights=Y[tr, hi][mine], minlength=V)
        self.unlimited_estimate = np.where(h_counts > 0, h_sums / np.maximum(h_counts, 1), -np.inf)

    def _routed(self, estimate: np.ndarray) -> float:
        send = np.zeros(len(self.t_te), dtype=bool)
        known = self.t_te >= 0
        send[known] = (estimate > self.best)[self.t_te[known]]
        send &= np.isfinite(self.y_new)
        return float(np.where(send, self.y_new, self.without).sum())

    def unlimited(self) -> float:
        return self._routed(self.unlimited_estimate)

    def rules(self, cal: np.ndarray, pool_scores: np.ndarray) -> dict[str, float]:
        from lrcal.router.token_fit import difficulty_adjusted_scores
        from lrcal.router.profiles import task_centers

        V = self.n_tasks
        t = self.task_ids[cal]
        y = self.Y[cal, self.hi]
        ok = np.isfinite(y) & (t >= 0)
        adjusted, _beta = difficulty_adjusted_scores(y[ok], t[ok], pool_scores[ok], self.pool_ta)
        out = {}
        for values, v in (("plain", y[ok]), ("adjusted", adjusted)):
            counts = np.bincount(t[ok], minlength=V).astype(float)
            sums = np.bincount(t[ok], weights=v, minlength=V)
            overall = np.array([(v.sum() + 1.0) / (len(v) + 2.0)])
            centres = {"overall": np.repeat(overall, V),
                       "task": task_centers(overall, counts[None], self.offsets)[0]}
            for centre, c in centres.items():
                for strength in DECISION_STRENGTHS:
                    estimate = np.where(counts + strength > 0, (sums + strength * c) / (counts + strength), -np.inf)
                    estimate = np.where(counts > 0, estimate, -np.inf)  # no calibration rows: never routed
                    out[f"{values}:{centre}:{strength:g}"] = self._routed(estimate)
        return out


class _Progress:
    """Progress lines from the parent as units finish (in completion order with --jobs > 1)."""

    def __init__(self, say: Callable[[str], None], started: float, plan: _Plan, n_folds: int) -> None:
        self.say, self.started, self.plan = say, started, plan
        self.total = n_folds * (1 + len(plan.holdout))
        self.done = 0
        self.left_in_fold: dict[tuple[int, int], int] = {}

    def fold(self, seed: int, f: int, key: tuple[int, int]) -> None:
        self.done += 1
        self.left_in_fold[key] = len(self.plan.holdout)
        self.say(f"seed {seed} fold {f + 1}/{self.plan.folds}: full-pool router trained "
                 f"[{self.done}/{self.total} units, {time.perf_counter() - self.started:.0f}s]")

    def holdout(self, seed: int, f: int, key: tuple[int, int], h: str, result: _HoldoutResult) -> None:
        self.done += 1
        self.say(f"seed {seed} fold {f + 1}/{self.plan.folds} {h}: routed accuracy without it "
                 f"{result.without_sum / max(result.n_test, 1):.3f} on this fold [{self.done}/{self.total} units]")
        self.left_in_fold[key] -= 1
        if not self.left_in_fold[key]:
            self.say(f"seed {seed} fold {f + 1}/{self.plan.folds} done ({time.perf_counter() - self.started:.0f}s)")


def _run_in_process(table, plan: _Plan, fold_units, tracker: _Progress):
    fold_sums, holdout_results = {}, {}
    for si, seed, f, te in fold_units:
        fold = _fold_unit(table, plan, seed, f, te)
        fold_sums[(si, f)] = (fold.full_sum, fold.router_seconds)
        tracker.fold(seed, f, (si, f))
        for hj, h in enumerate(plan.holdout):
            result = _holdout_unit(table, plan, seed, f, te, h, fold)
            holdout_results[(si, f, hj)] = result
            tracker.holdout(seed, f, (si, f), h, result)
    return fold_sums, holdout_results


# ---- worker processes (--jobs > 1) -------------------------------------------------------------

_WORKER_TABLE = None


def _exit_with(parent_pid: int) -> None:
    """A worker's parent is the fork server, which outlives a killed benchmark (the workers hold
    its pipe open): watch the benchmark's process itself, so no orphan runs on for minutes."""
    while True:
        time.sleep(1.0)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # a process of another user took the id: ours is gone
            os._exit(1)


def _init_worker(table, threads: int, parent_pid: int) -> None:
    """Runs once per worker: the table arrives once, not with every unit."""
    global _WORKER_TABLE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops the workers
    threading.Thread(target=_exit_with, args=(parent_pid,), name="lrcal-parent-watch", daemon=True).start()
    # the parent's count (1 by default), never LRCAL_TORCH_THREADS or torch's default: the same
    # thread count keeps the float results identical to --jobs 1, and N workers x 1 thread fill N cores
    torch.set_num_threads(threads)
    _WORKER_TABLE = table


def _fold_in_worker(plan: _Plan, seed: int, f: int, te: np.ndarray) -> _FoldResult:
    return _fold_unit(_WORKER_TABLE, plan, seed, f, te)


def _holdout_in_worker(plan: _Plan, seed: int, f: int, te: np.ndarray, h: str, fold: _FoldResult) -> _HoldoutResult:
    return _holdout_unit(_WORKER_TABLE, plan, seed, f, te, h, fold)


def _worker_context():
    """Never a plain fork of this process (torch's thread pools are live here). The fork server
    imports this module (and so torch) once, before serving, and runs no torch op itself:
    its forked workers skip a 2+ s import each."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", __name__])  # no effect once the server runs
        return context
    return multiprocessing.get_context("spawn")


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel queued units and end the running ones now (shutdown alone waits for them: minutes each)."""
    # ProcessPoolExecutor has no public way to end its workers before Python 3.14 (terminate_workers)
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


def _run_in_pool(table, plan: _Plan, fold_units, tracker: _Progress, workers: int, threads: int):
    """Stage 1 (a fold's features and full-pool router) and stage 2 (one held-out model in that
    fold) in worker processes; a fold's stage-2 units are queued as soon as its stage 1 ends."""
    fold_sums, holdout_results = {}, {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context(),
                               initializer=_init_worker, initargs=(table, threads, os.getpid()))
    try:
        pending = {pool.submit(_fold_in_worker, plan, seed, f, te): (si, seed, f, te, None)
                   for si, seed, f, te in fold_units}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                si, seed, f, te, hj = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    raise LrcalError(f"a --jobs worker process died (see above; out of memory?); "
                                     f"try fewer than {workers} jobs") from None
                if hj is None:
                    fold_sums[(si, f)] = (result.full_sum, result.router_seconds)
                    tracker.fold(seed, f, (si, f))
                    for hj_, h in enumerate(plan.holdout):
                        pending[pool.submit(_holdout_in_worker, plan, seed, f, te, h, result)] = (si, seed, f, te, hj_)
                else:
                    holdout_results[(si, f, hj)] = result
                    tracker.holdout(seed, f, (si, f), plan.holdout[hj], result)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return fold_sums, holdout_results


def _merge(plan: _Plan, fold_units, fold_sums, holdout_results):
    """Sum the units' terms in one fixed order (seed, fold, held-out model, k, draw): the same
    additions, in the same order, whatever order the units finished in."""
    holdout, ks = plan.holdout, plan.ks
    acc = {
        "without": {h: 0.0 for h in holdout},
        "full": {h: 0.0 for h in holdout},
        **{m: {h: {k: 0.0 for k in ks} for h in holdout} for m in plan.methods},
    }
    sel = {h: {k: {"tp": 0.0, "picked": 0.0, "oracle": 0.0} for k in ks} for h in holdout}
    sweep = {c: {h: {k: 0.0 for k in ks} for h in holdout} for c in LOOKUP_SWEEP}
    decisions = {r: {h: {k: 0.0 for k in ks} for h in holdout} for r in DECISION_RULES}
    unlimited = {h: 0.0 for h in holdout}
    calib = {h: {k: ([], []) for k in ks} for h in holdout}
    fit_seconds: list[float] = []
    chosen_lambdas: list = []
    priors: dict[str, int] = {}
    rules: dict[str, int] = {}
    router_seconds = 0.0
    for si, _seed, f, _te in fold_units:
        full_sum, seconds = fold_sums[(si, f)]
        router_seconds += seconds
        for hj, h in enumerate(holdout):
            unit = holdout_results[(si, f, hj)]
            router_seconds += unit.router_seconds
            acc["without"][h] += unit.without_sum
            unlimited[h] += unit.unlimited_sum
            acc["full"][h] += full_sum
            for k in ks:
                for method in plan.methods:
                    for term in unit.routed[method][k]:
                        acc[method][h][k] += term
                for key, terms in unit.selection[k].items():
                    for term in terms:
                        sel[h][k][key] += term
                for c in LOOKUP_SWEEP:
                    for term in unit.lookup_sweep[c][k]:
                        sweep[c][h][k] += term
                for rule in DECISION_RULES:
                    for term in unit.decisions[rule][k]:
                        decisions[rule][h][k] += term
                calib[h][k][0].extend(unit.calibration[k][0])
                calib[h][k][1].extend(unit.calibration[k][1])
            fit_seconds.extend(unit.fit_seconds)
            chosen_lambdas.extend(unit.chosen_lambdas)
            priors[unit.profile_prior] = priors.get(unit.profile_prior, 0) + 1
            rules[unit.rule] = rules.get(unit.rule, 0) + 1
    priors = dict(sorted(priors.items(), key=lambda kv: (-kv[1], kv[0])))
    acc["rules_without"] = dict(sorted(rules.items(), key=lambda kv: (-kv[1], kv[0])))
    acc["sweep"] = sweep
    acc["decisions"] = decisions
    acc["unlimited"] = unlimited
    return acc, sel, calib, fit_seconds, chosen_lambdas, router_seconds, priors


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
    jobs: int = 1,
    samplers: Sequence[str] = ("uniform",),
    stop_value: float = SamplerConfig.stop_value,
    refit_rule: bool = False,
    prior_scale: float = SamplerConfig.prior_scale,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """``jobs``: worker processes (1: everything in this process; 0: one per available core).
    Results do not depend on ``jobs``: every unit is seeded by (seed, fold, model) and the
    partial sums are merged in a fixed order. ``samplers``: "uniform" (always) and optionally
    "adaptive", on the same folds and draws; ``stop_value``: the adaptive sampler's stopping
    threshold (`SamplerConfig.stop_value`; 0 spends the budget unless no decision can move);
    ``prior_scale``: the fraction of the profile prior's strength it holds (`SamplerConfig.prior_scale`)."""
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    models = list(table.models)
    holdout = models if not holdout else list(dict.fromkeys(holdout))
    unknown = [h for h in holdout if h not in models]
    if unknown:
        raise UsageError(f"--holdout: unknown model(s) {', '.join(unknown)} (models: {', '.join(models)})")
    if jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per available core) or a positive number of processes (got {jobs})")
    jobs = jobs or available_cores()
    samplers = tuple(dict.fromkeys(samplers))
    if "uniform" not in samplers or any(name not in SAMPLERS for name in samplers):
        raise UsageError(f"--sampler: uniform (the reference, always run) or uniform,adaptive (got {','.join(samplers)})")
    if not (math.isfinite(stop_value) and stop_value >= 0):
        raise UsageError(f"--stop-value must be a finite number >= 0 (got {stop_value})")
    if not (math.isfinite(prior_scale) and 0 < prior_scale <= 1):
        raise UsageError(f"--prior-scale must lie in (0, 1] (got {prior_scale})")
    ks = sorted(set(int(k) for k in ks))
    seeds = list(seeds)
    n = len(table.tasks)
    plan = _Plan(tuple(models), tuple(holdout), tuple(ks), folds, repeats, ensemble, config, onboard_config, samplers,
                 float(stop_value), bool(refit_rule), float(prior_scale))
    fold_units = [(si, seed, f, te) for si, seed in enumerate(seeds)
                  for f, te in enumerate(stratified_folds(table.tasks, folds, seed))]
    tracker = _Progress(say, started, plan, len(fold_units))
    threads = torch.get_num_threads()  # per process: workers use this process's count
    if jobs == 1:
        workers = 0
        fold_sums, holdout_results = _run_in_process(table, plan, fold_units, tracker)
    else:
        workers = min(jobs, len(fold_units) * len(holdout))  # never more than there are units at once
        fold_sums, holdout_results = _run_in_pool(table, plan, fold_units, tracker, workers, threads)
    acc, sel, calib, fit_seconds, chosen_lambdas, router_seconds, priors = _merge(plan, fold_units, fold_sums,
                                                                                  holdout_results)

    total = n * len(seeds)
    U = {key: {h: v / total for h, v in acc[key].items()} for key in ("without", "full")}
    Uk = {m: {h: {k: acc[m][h][k] / total for k in ks} for h in holdout} for m in plan.methods}
    headroom = [h for h in holdout if U["full"][h] - U["without"][h] >= HEADROOM]
    no_headroom = [h for h in holdout if h not in headroom]

    def gain_harm(values: dict, k: int) -> tuple[float | None, float | None]:
        denom = sum(U["full"][h] - U["without"][h] for h in headroom)
        gain = (sum(values[h][k] - U["without"][h] for h in headroom) / denom) if headroom and denom > 0 else None
        harm = float(np.mean([U["without"][h] - values[h][k] for h in no_headroom])) if no_headroom else None
        return gain, harm

    def summarize(method: str) -> dict:
        out = {}
        for k in ks:
            gain, harm = gain_harm(Uk[method], k)
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
        if ADAPTIVE in samplers:
            row["U_k_adaptive"] = {str(k): Uk[ADAPTIVE][h][k] for k in ks}
        for k in ks:
            s = sel[h][k]
            p = np.concatenate(calib[h][k][0]) if calib[h][k][0] else np.zeros(0)
            y = np.concatenate(calib[h][k][1]) if calib[h][k][1] else np.zeros(0)
            row["per_k"][str(k)] = {
                "precision": s["tp"] / s["picked"] if s["picked"] else None,
                "recall": s["tp"] / s["oracle"] if s["oracle"] else None,
                "share_routed": s["picked"] / total,
                "ece": ece(p, y) if len(p) else None,
                **{m: Uk[m][h][k] for m in METHODS if m != "onboard"},
            }
        per_model.append(row)
    onboard = summarize("onboard")
    # the lookup's whole gain-harm trade-off, and its best gain at no more harm than onboarding's
    sweep_U = {c: {h: {k: acc["sweep"][c][h][k] / total for k in ks} for h in holdout} for c in LOOKUP_SWEEP}
    frontier, at_equal_harm = {}, {}
    for k in ks:
        points = []
        for c in LOOKUP_SWEEP:
            gain, harm = gain_harm(sweep_U[c], k)
            points.append({"shrink": c, "gain_recovered": gain, "harm": harm})
        frontier[str(k)] = points
        limit = onboard[str(k)]["harm"]
        ok = [p["gain_recovered"] for p in points if p["gain_recovered"] is not None and p["harm"] is not None
              and limit is not None and p["harm"] <= limit + 1e-12]
        at_equal_harm[str(k)] = max(ok) if ok else None
    # per-task decision rules (a reference bound, read off with the test outcomes): each rule's
    # gain and harm, and the best gain at no more harm than onboarding's and than HARM_LIMIT
    decision_U = {r: {h: {k: acc["decisions"][r][h][k] / total for k in ks} for h in holdout} for r in DECISION_RULES}
    unlimited_U = {h: {k: acc["unlimited"][h] / total for k in ks} for h in holdout}
    task_decisions = {"rules": {}, "best_at_onboard_harm": {}, "best_at_harm_limit": {}, "harm_limit": HARM_LIMIT}
    gain, harm = gain_harm(unlimited_U, ks[0]) if ks else (None, None)
    task_decisions["unlimited"] = {"gain_recovered": gain, "harm": harm}
    for k in ks:
        points = []
        for rule in DECISION_RULES:
            gain, harm = gain_harm(decision_U[rule], k)
            points.append({"rule": rule, "gain_recovered": gain, "harm": harm})
        task_decisions["rules"][str(k)] = points

        def best_within(limit):
            ok = [p for p in points if p["gain_recovered"] is not None and p["harm"] is not None
                  and limit is not None and p["harm"] <= limit + 1e-12]
            return max(ok, key=lambda p: p["gain_recovered"]) if ok else None

        task_decisions["best_at_onboard_harm"][str(k)] = best_within(onboard[str(k)]["harm"])
        task_decisions["best_at_harm_limit"][str(k)] = best_within(HARM_LIMIT)
    lambdas = [lam for lam in chosen_lambdas]
    sampler_report = {}
    for name in samplers:
        method = "onboard" if name == "uniform" else ADAPTIVE
        entry = summarize(method)
        spread = draw_intervals(plan, fold_units, fold_sums, holdout_results, method, headroom, no_headroom)
        for k in ks:
            entry[str(k)].update(spread[k])
            if name == ADAPTIVE:
                used = [u for unit in holdout_results.values() for u in unit.adaptive_used.get(k, [])]
                stops = [s_ for unit in holdout_results.values() for s_ in unit.adaptive_stops.get(k, [])]
                entry[str(k)]["examples_used"] = float(np.mean(used)) if used else None
                entry[str(k)]["stops"] = {why: stops.count(why) for why in sorted(set(stops), key=str)}
            else:
                entry[str(k)]["examples_used"] = float(k)
        sampler_report[name] = {"k": entry, "examples_to_gain": examples_to_gain(entry, ks)}
    paired = (sampler_differences(plan, fold_units, fold_sums, holdout_results, headroom, no_headroom)
              if ADAPTIVE in samplers else None)
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
        "lookup_frontier": frontier,
        # the best per-task lookup gain among shrinkages whose harm is at most onboarding's (None: none is)
        "lookup_gain_at_onboard_harm": at_equal_harm,
        # per-task decisions from k calibration rows (and from all training rows), a reference bound
        "task_decisions": task_decisions,
        "without": {"accuracy": float(np.mean([U["without"][h] for h in holdout])), "per_model": U["without"]},
        "full_retrain": {"accuracy": float(np.mean([U["full"][h] for h in holdout])), "per_model": U["full"],
                         "gain_recovered": 1.0 if headroom else None, "harm": float(np.mean([U["without"][h] - U["full"][h] for h in no_headroom])) if no_headroom else None},
        "headroom_models": headroom,
        # per sampler: gain and harm per k with their intervals over draws and folds, each
        # headroom model's own gain, examples used (adaptive: it may stop early), and the
        # smallest k reaching each gain target at harm <= HARM_LIMIT
        "samplers": sampler_report,
        # adaptive at each k minus uniform at each k as large or larger, paired over the same fold
        # units and draw indices, with their intervals
        "adaptive_minus_uniform": paired,
        "adaptive_stop_value": plan.stop_value if ADAPTIVE in samplers else None,
        "adaptive_prior_scale": plan.prior_scale if ADAPTIVE in samplers else None,
        "refit_rule": plan.refit_rule,
        # what each router without a model decides by: its own rule, fitted on the fold's full-pool
        # out-of-fold predictions without the model's column, or with --refit-rule on its own networks
        "rules_without": acc["rules_without"],
        "interval_level": INTERVAL_LEVEL,
        "fit_seconds": {"mean": float(np.mean(fit_seconds)) if fit_seconds else None,
                        "max": float(np.max(fit_seconds)) if fit_seconds else None},
        "profile_only_share": float(np.mean([lam is None for lam in lambdas])) if lambdas else None,
        # the profile prior each router-without-h chose (centre:strength -> routers), see docs/router.md
        "profile_priors": priors,
        "router_train_seconds": round(router_seconds, 1),
        "ensemble": ensemble,
        "seconds": round(time.perf_counter() - started, 1),
        "jobs": jobs,
        "worker_processes": workers,
        "torch_threads": threads,
        "machine": platform.machine(),
    }


def examples_to_gain(entry: dict, ks: Sequence[int]) -> dict[str, int | None]:
    """Per gain target: the smallest k whose pooled gain reaches it with harm <= HARM_LIMIT
    (None: no k does)."""
    out = {}
    for target in GAIN_TARGETS:
        hits = [k for k in ks if entry[str(k)]["gain_recovered"] is not None and entry[str(k)]["gain_recovered"] >= target
                and (entry[str(k)]["harm"] is None or entry[str(k)]["harm"] <= HARM_LIMIT)]
        out[f"{target:g}"] = min(hits) if hits else None
    return out


class _DrawTable:
    """One sampler's routed sums per (fold unit, model, k, draw), beside each unit's sums
    without the model and with the full pool; pooled gain and harm for any resample of units
    and draws (the point estimate is every unit and every draw)."""

    def __init__(self, plan: _Plan, fold_units, fold_sums, holdout_results, method: str, headroom: list[str],
                 no_headroom: list[str]) -> None:
        holdout, ks, repeats = plan.holdout, plan.ks, plan.repeats
        F, H, K = len(fold_units), len(holdout), len(ks)
        self.without, self.full, self.n = np.zeros((F, H)), np.zeros(F), np.zeros(F)
        self.draws = np.zeros((F, H, K, repeats))
        for u, (si, _seed, f, _te) in enumerate(fold_units):
            self.full[u] = fold_sums[(si, f)][0]
            for hj in range(H):
                unit = holdout_results[(si, f, hj)]
                self.without[u, hj], self.n[u] = unit.without_sum, unit.n_test
                for kj, k in enumerate(ks):
                    self.draws[u, hj, kj] = np.asarray(unit.routed[method][k]) * repeats
        self.up = np.array([holdout.index(h) for h in headroom], dtype=np.int64)
        self.down = np.array([holdout.index(h) for h in no_headroom], dtype=np.int64)
        self.shape = (F, H, K, repeats)
        # A replicate is one data set's worth of fold units (the folds of one seed), drawn from every
        # seed's: each seed re-splits the same rows, so resampling all seeds' units as independent
        # narrowed the interval by about 1/sqrt(seeds) without a row of new data (a review measured
        # 90 % intervals covering 0.85 with one seed and 0.53 with four).
        self.per_data_set = len({fold for _si, _seed, fold, _te in fold_units})

    def point_resample(self) -> tuple[np.ndarray, np.ndarray]:
        F, H, K, repeats = self.shape
        return np.arange(F), np.broadcast_to(np.arange(repeats), (F, H, K, repeats))

    def random_resample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        _F, H, K, repeats = self.shape
        n = self.per_data_set
        return rng.integers(0, self.shape[0], n), rng.integers(0, repeats, (n, H, K, repeats))

    def measures(self, fold_idx: np.ndarray, draw_idx: np.ndarray):
        """(pooled gain [K], harm [K], each headroom model's gain [len(up), K])."""
        K = self.shape[2]
        up, down = self.up, self.down
        total = self.n[fold_idx].sum()
        u_without = self.without[fold_idx].sum(axis=0) / total  # [H]
        u_full = self.full[fold_idx].sum() / total
        chosen = np.take_along_axis(self.draws[fold_idx], draw_idx, axis=3).mean(axis=3)  # [F, H, K]
        u_k = chosen.sum(axis=0) / total  # [H, K]
        lift = u_k - u_without[:, None]
        room = u_full - u_without
        gain = lift[up].sum(axis=0) / room[up].sum() if len(up) and room[up].sum() > 0 else np.full(K, np.nan)
        harm = -lift[down].mean(axis=0) if len(down) else np.full(K, np.nan)
        per_model = lift[up] / np.where(room[up] > 0, room[up], np.nan)[:, None] if len(up) else np.zeros((0, K))
        return gain, harm, per_model


def _percentile_interval(values) -> list[float] | None:
    tail = 100 * (1 - INTERVAL_LEVEL) / 2
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))] if len(values) else None


def draw_intervals(plan: _Plan, fold_units, fold_sums, holdout_results, method: str, headroom: list[str],
                   no_headroom: list[str], replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> dict:
    """Per k: ``INTERVAL_LEVEL`` bootstrap intervals of pooled gain and harm, and each headroom
    model's own gain with its interval. A replicate draws one seed's number of fold units with
    replacement from all seeds' and, inside each (fold, model, k), the calibration draws with
    replacement; the headroom split is the point estimate's."""
    table = _DrawTable(plan, fold_units, fold_sums, holdout_results, method, headroom, no_headroom)
    point = table.measures(*table.point_resample())
    rng = np.random.default_rng(seed)
    reps = [table.measures(*table.random_resample(rng)) for _ in range(replicates)]
    out = {}
    for kj, k in enumerate(plan.ks):
        out[k] = {
            "gain_interval": _percentile_interval([r[0][kj] for r in reps]),
            "harm_interval": _percentile_interval([r[1][kj] for r in reps]),
            "per_model_gain": {h: {"gain": float(point[2][i, kj]) if np.isfinite(point[2][i, kj]) else None,
                                   "interval": _percentile_interval([r[2][i, kj] for r in reps])}
                               for i, h in enumerate(headroom)},
        }
    return out


def sampler_differences(plan: _Plan, fold_units, fold_sums, holdout_results, headroom: list[str],
                        no_headroom: list[str], replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> list[dict]:
    """Adaptive at each k minus uniform at each k as large or larger, paired: both samplers'
    routers without the model, test rows and fold units are the same, so every replicate
    resamples the same fold units (and draw indices) for both, and the difference's interval
    leaves out the fold-to-fold spread that both share. Gain: adaptive minus uniform (above 0:
    adaptive recovered more); harm: adaptive minus uniform (above 0: adaptive harmed more)."""
    adaptive = _DrawTable(plan, fold_units, fold_sums, holdout_results, ADAPTIVE, headroom, no_headroom)
    uniform = _DrawTable(plan, fold_units, fold_sums, holdout_results, "onboard", headroom, no_headroom)
    ks = list(plan.ks)
    pairs = [(ka, ku) for ka in range(len(ks)) for ku in range(len(ks)) if ks[ku] >= ks[ka]]

    def differences(fold_idx, draw_idx):
        gain_a, harm_a, _ = adaptive.measures(fold_idx, draw_idx)
        gain_u, harm_u, _ = uniform.measures(fold_idx, draw_idx)
        return [(gain_a[ka] - gain_u[ku], harm_a[ka] - harm_u[ku]) for ka, ku in pairs]

    point = differences(*adaptive.point_resample())
    rng = np.random.default_rng(seed)
    reps = [differences(*adaptive.random_resample(rng)) for _ in range(replicates)]
    out = []
    for p, (ka, ku) in enumerate(pairs):
        gains = np.array([r[p][0] for r in reps], dtype=np.float64)
        finite = gains[np.isfinite(gains)]
        out.append({
            "adaptive_k": ks[ka], "uniform_k": ks[ku],
            "gain_difference": float(point[p][0]) if np.isfinite(point[p][0]) else None,
            "gain_difference_interval": _percentile_interval(gains),
            # the share of replicates where adaptive recovered at least as much (a bootstrap
            # probability, not a p-value)
            "adaptive_at_least_as_good": float(np.mean(finite >= 0)) if len(finite) else None,
            "harm_difference": float(point[p][1]) if np.isfinite(point[p][1]) else None,
            "harm_difference_interval": _percentile_interval([r[p][1] for r in reps]),
        })
    return out


def _copy_card(card, **changes):
    from dataclasses import replace

    return replace(card, **changes)


def plot_coldstart(result: dict, path) -> None:
    """Gain recovered and harm against k, onboarding vs the baselines; and gain against harm:
    onboarding's point beside the per-task lookup's frontier over its shrinkage sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = result["ks"]
    series = {"onboard (frozen router)": result["k"], **result["baselines"]}
    frontier = result.get("lookup_frontier")
    fig, axes = plt.subplots(1, 3 if frontier else 2, figsize=(16.5 if frontier else 11, 4.2), dpi=110)
    left, right = axes[0], axes[1]
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
    if frontier:
        trade = axes[2]
        for i, k in enumerate(ks):
            points = [p for p in frontier[str(k)] if p["gain_recovered"] is not None and p["harm"] is not None]
            mine = result["k"][str(k)]
            color = f"C{i}"
            if points:
                trade.plot([p["harm"] for p in points], [p["gain_recovered"] for p in points], color=color,
                           marker=".", linewidth=1, label=f"lookup, shrink 1–1024 (k={k})")
            if mine["gain_recovered"] is not None and mine["harm"] is not None:
                trade.plot([mine["harm"]], [mine["gain_recovered"]], color=color, marker="*", markersize=14,
                           linestyle="none", label=f"onboard (k={k})")
        trade.axvline(0.0, color="grey", linestyle=":", linewidth=1)
        trade.set(xlabel="harm (lower is better)", ylabel="pooled gain recovered (higher is better)",
                  title="gain against harm: up and left is better")
        trade.grid(alpha=0.3)
        if trade.get_legend_handles_labels()[0]:  # nothing to show when no model has (or every model has) headroom
            trade.legend(fontsize=6.5, ncol=2, loc="best", framealpha=0.6)
    fig.suptitle(f"{result['dataset']}: cold-start onboarding, {result['folds']}-fold cross-fitting")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
