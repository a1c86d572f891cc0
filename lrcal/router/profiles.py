"""Pool-independent capability profiles: a model described by its own outcomes only.

A profile is a fixed-length vector computed from a set of rows the model was run on:
overall accuracy (Beta(1,1)-smoothed), per-task accuracy shrunk toward a task-level centre
(a Beta prior of strength ``smoothing``; see `ProfilePrior`), per-task row counts,
output-token / latency / cost statistics and the endpoint error rate. Nothing about other
models, nothing parsed from a name, so a new model's profile from 64-128 calibration rows
lives in the same space as an incumbent's.

The prior's centre for task t is sigmoid(a + d_t): d_t is the task's difficulty (how much
easier or harder it is than a model's average, learned once from the training outcomes and
frozen with the router), a is solved per model so that the centres average to the model's
own overall accuracy over its rows. With d = 0 the centre is the overall accuracy. Which
centre and which strength the router uses is chosen by simulated cold starts of its training
models (`fit_profile_prior`), so a 4-rows-per-task profile is shrunk as hard as the data
say it should be -- and a task that every model finds hard does not make a new model look
strong there just because it is strong elsewhere.

Realized cost / tokens / latency enter only as these per-model aggregates over *other*
rows, never as a feature of the query being routed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lrcal.errors import LrcalError

GLOBAL_FIELDS = (
    "overall_accuracy",
    "log_rows",
    "error_rate",
    "tokens_mean_log",
    "tokens_std_log",
    "has_tokens",
    "latency_mean_log",
    "latency_std_log",
    "has_latency",
    "cost_mean_log",
    "cost_std_log",
    "has_cost",
    "task_coverage",
)
N_GLOBAL = len(GLOBAL_FIELDS)


def profile_dim(n_tasks: int) -> int:
    return N_GLOBAL + 2 * n_tasks


CENTERS = ("overall", "task")


@dataclass(frozen=True)
class ProfilePrior:
    """How per-task accuracies are smoothed: Beta prior of ``strength`` pseudo-rows centred on
    the model's overall accuracy (``center="overall"``) or on its difficulty-adjusted task
    centre (``"task"``, with ``task_offsets`` d [V] in logits)."""

    strength: float = 4.0
    center: str = "overall"
    task_offsets: tuple[float, ...] = ()
    chosen_by: str = "fixed"  # fixed | simulated cold starts
    scores: dict = field(default_factory=dict, compare=False)  # "centre:strength" -> its criterion, per row

    def offsets(self, n_tasks: int) -> np.ndarray | None:
        if self.center != "task" or n_tasks == 0:
            return None
        d = np.asarray(self.task_offsets, dtype=np.float64)
        if d.shape != (n_tasks,):
            raise LrcalError(f"profile prior has {d.size} task offsets for {n_tasks} tasks")
        return d

    def to_dict(self) -> dict:
        return {"strength": float(self.strength), "center": self.center,
                "task_offsets": [float(v) for v in self.task_offsets], "chosen_by": self.chosen_by,
                "scores": dict(self.scores)}

    @classmethod
    def from_dict(cls, data) -> "ProfilePrior":
        try:
            prior = cls(strength=float(data["strength"]), center=str(data["center"]),
                        task_offsets=tuple(float(v) for v in data.get("task_offsets", ())),
                        chosen_by=str(data.get("chosen_by", "fixed")), scores=dict(data.get("scores") or {}))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise LrcalError("router artifact: malformed profile prior") from None
        if prior.center not in CENTERS or not np.isfinite(prior.strength) or prior.strength <= 0:
            raise LrcalError("router artifact: malformed profile prior")
        return prior


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def task_centers(overall: np.ndarray, counts: np.ndarray, offsets: np.ndarray | None) -> np.ndarray:
    """[K, V] prior centres: sigmoid(a_k + d_t) with a_k such that the centres, weighted by the
    model's rows per task (uniform where it has none), average to its overall accuracy."""
    k, v = counts.shape
    if offsets is None or v == 0:
        return np.repeat(overall[:, None], v, axis=1)
    total = counts.sum(1, keepdims=True)
    w = np.where(total > 0, counts / np.maximum(total, 1e-12), 1.0 / v)
    target = np.clip(overall, 1e-6, 1 - 1e-6)[:, None]
    a = logit(target) - (w * offsets[None, :]).sum(1, keepdims=True)
    for _ in range(30):  # damped Newton: the weighted mean is increasing in a
        p = sigmoid(a + offsets[None, :])
        gap = (w * p).sum(1, keepdims=True) - target
        if np.all(np.abs(gap) < 1e-9):
            break
        slope = np.maximum((w * p * (1 - p)).sum(1, keepdims=True), 1e-9)
        a = np.clip(a - np.clip(gap / slope, -2.0, 2.0), -30.0, 30.0)
    return sigmoid(a + offsets[None, :])


@dataclass
class Profiles:
    vectors: np.ndarray  # [K, P] float32, the profile encoder's input
    task_accuracy: np.ndarray  # [K, V + 1] smoothed accuracy per task, last column = overall
    rows: np.ndarray  # [K] rows each profile was computed from

    @property
    def task_rows(self) -> np.ndarray:
        """[K, V + 1] rows behind each task accuracy (last column: all rows)."""
        return task_rows_from_profiles(self.vectors)


def task_rows_from_profiles(vectors: np.ndarray) -> np.ndarray:
    """Recover per-task row counts ([.., V + 1], last = all rows) from profile vectors."""
    vectors = np.asarray(vectors, dtype=np.float64)
    v = (vectors.shape[-1] - N_GLOBAL) // 2
    per_task = np.expm1(4.0 * vectors[..., N_GLOBAL + v : N_GLOBAL + 2 * v])
    total = np.expm1(5.0 * vectors[..., 1:2])
    return np.rint(np.concatenate([per_task, total], axis=-1)).astype(np.float32)


def _masked_log_stats(values: np.ndarray | None, mask: np.ndarray, scale: float, offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean and std of log1p(values*scale) per model over masked, finite entries."""
    k = mask.shape[0]
    if values is None:
        return np.zeros(k), np.zeros(k), np.zeros(k)
    v = values.T  # [K, N]
    ok = mask & np.isfinite(v)
    logs = np.where(ok, np.log1p(np.where(ok, v, 0.0) * scale), 0.0)
    n = ok.sum(1)
    mean = logs.sum(1) / np.maximum(n, 1)
    var = (np.where(ok, (logs - mean[:, None]) ** 2, 0.0)).sum(1) / np.maximum(n, 1)
    has = (n > 0).astype(np.float64)
    return (mean / offset) * has, np.sqrt(var) / 4.0 * has, has


def task_counts_and_sums(task_ids: np.ndarray, n_tasks: int, have: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[K, V] each model's rows and summed outcomes per task: ``task_ids`` [N] (-1: no task, in
    no column), ``have`` [K, N] which rows count, ``y`` [K, N] outcomes (0 where not counted)."""
    task_ids = np.asarray(task_ids, dtype=np.int64)
    onehot = np.zeros((len(task_ids), n_tasks))
    known = task_ids >= 0
    onehot[np.flatnonzero(known), task_ids[known]] = 1.0
    return np.asarray(have, dtype=np.float64) @ onehot, y @ onehot


def post_stratified(overall: np.ndarray, per_task: np.ndarray, counts: np.ndarray, rows: np.ndarray,
                    task_weights: np.ndarray | None) -> np.ndarray:
    """[K] each model's overall accuracy under the traffic's task mix ``task_weights`` [V]: the
    weighted mean of its per-task accuracies (smoothed where it has few rows). Unchanged for a
    model with no rows, or with rows outside the router's tasks (their share is unknown)."""
    if task_weights is None or per_task.shape[1] == 0:
        return overall
    w = np.clip(np.asarray(task_weights, dtype=np.float64), 0.0, None)
    if w.shape != (per_task.shape[1],) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError(f"task_weights must be {per_task.shape[1]} finite non-negative shares")
    mix = (per_task * (w / w.sum())[None, :]).sum(1)
    all_tasked = (rows > 0) & (counts.sum(1) >= rows)
    return np.where(all_tasked, mix, overall)


def compute_profiles(
    task_ids: np.ndarray,
    n_tasks: int,
    scores: np.ndarray,
    row_mask: np.ndarray | None = None,
    *,
    output_tokens: np.ndarray | None = None,
    latency_ms: np.ndarray | None = None,
    cost_usd: np.ndarray | None = None,
    errors: np.ndarray | None = None,
    smoothing: float = 4.0,
    task_offsets: np.ndarray | None = None,
    task_weights: np.ndarray | None = None,
) -> Profiles:
    """Profiles of K models from their outcomes on N rows.

    task_ids: [N] int, index into the task vocabulary or -1 (no / unknown task).
    scores: [N, K] in [0, 1], NaN = the model was not run on that row.
    row_mask: [K, N] bool, which rows each model's profile may use (default: all).
    smoothing, task_offsets: the Beta prior (strength, and the task offsets of its centre;
    None: centred on the overall accuracy) -- usually from a `ProfilePrior`.
    task_weights: [V] the traffic's task mix (None: the rows' own). A model whose rows are not
    a sample of the traffic (an adaptive calibration spends its examples on the open task
    groups) gets the overall accuracy the traffic would see, sum_t w_t * per-task accuracy
    (post-stratified), instead of its rows' raw mean: the network learned overall levels from
    representative rows, and the raw mean over-weights whichever tasks were asked most.
    """
    scores = np.asarray(scores, dtype=np.float64)
    k = scores.shape[1]
    avail = np.isfinite(scores).T  # [K, N]
    mask = avail if row_mask is None else (avail & np.asarray(row_mask, dtype=bool))
    y = np.where(mask, np.nan_to_num(scores.T), 0.0)  # [K, N]
    rows = mask.sum(1).astype(np.float64)
    overall = (y.sum(1) + 1.0) / (rows + 2.0)

    if n_tasks > 0:
        counts, sums = task_counts_and_sums(task_ids, n_tasks, mask, y)
        center = task_centers(overall, counts, task_offsets)
        per_task = (sums + smoothing * center) / (counts + smoothing)
        coverage = (counts > 0).mean(1)
        overall = post_stratified(overall, per_task, counts, rows, task_weights)
    else:
        counts = np.zeros((k, 0))
        per_task = np.zeros((k, 0))
        coverage = np.zeros(k)

    err = np.zeros(k)
    if errors is not None:
        e = np.asarray(errors, dtype=bool).T
        err = (e & mask).sum(1) / np.maximum(rows, 1)
    tok_mean, tok_std, tok_has = _masked_log_stats(output_tokens, mask, 1.0, 8.0)
    lat_mean, lat_std, lat_has = _masked_log_stats(latency_ms, mask, 1.0, 10.0)
    cost_mean, cost_std, cost_has = _masked_log_stats(cost_usd, mask, 1e6, 10.0)  # micro-dollars

    glob = np.stack(
        [overall, np.log1p(rows) / 5.0, err, tok_mean, tok_std, tok_has, lat_mean, lat_std, lat_has,
         cost_mean, cost_std, cost_has, coverage],
        axis=1,
    )
    vectors = np.concatenate([glob, per_task - overall[:, None], np.log1p(counts) / 4.0], axis=1).astype(np.float32)
    task_accuracy = np.concatenate([per_task, overall[:, None]], axis=1).astype(np.float32)
    return Profiles(vectors=vectors, task_accuracy=task_accuracy, rows=rows)


# Fewer outcomes than this on a task (a standard error of 0.15 or more) and a model's per-task
# default level is its smoothed task accuracy, not its raw mean there: one lucky outcome (1/1)
# made a model the per-task best of a task it was hardly run on.
MIN_DECISION_ROWS = 10
# An onboarded model counts as measured on a task from one calibration outcome there: its token
# fit and the gate judged those rows (10 would hold back most tasks of a 32-example calibration).
ONBOARDED_MIN_ROWS = 1


def task_outcome_counts(task_ids: np.ndarray, n_tasks: int, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """[K, V + 1] each model's outcomes per task over ``rows`` (last column: all of them)."""
    rows = np.asarray(rows, dtype=np.int64)
    have = np.isfinite(np.asarray(scores, dtype=np.float64)[rows]).T  # [K, R]
    per_task, _ = task_counts_and_sums(np.asarray(task_ids, dtype=np.int64)[rows], n_tasks, have,
                                       np.zeros(have.shape))
    return np.concatenate([per_task, have.sum(1, keepdims=True).astype(np.float64)], axis=1)


def measured_share(p_task: np.ndarray, task_rows: np.ndarray, min_rows: np.ndarray | None = None) -> np.ndarray:
    """[N, K] 1 where a model counts as measured on the query's task, else 0: at least half of
    the query's task distribution ``p_task`` [N, V + 1] (last: no task) falls on tasks where it
    has at least `MIN_DECISION_ROWS` outcomes (``task_rows`` [K, V + 1]; a row of NaN: not
    known, taken as measured). A labelled query's distribution is one task. All or nothing: a
    share in between scaled a model's score down for a guessed task it was never asked about
    (0.80 measured on 85 % of the mass lost to a 0.70 model)."""
    task_rows = np.asarray(task_rows, dtype=np.float64)
    threshold = MIN_DECISION_ROWS if min_rows is None else np.asarray(min_rows, dtype=np.float64)[:, None]
    enough = np.where(np.isnan(task_rows), 1.0, (task_rows >= threshold).astype(np.float64))
    share = np.asarray(p_task, dtype=np.float64) @ enough.T
    return (share >= 0.5).astype(np.float64)


def outcome_task_accuracy(task_ids: np.ndarray, n_tasks: int, scores: np.ndarray, rows: np.ndarray,
                          smoothed: np.ndarray | None = None) -> np.ndarray:
    """[K, V + 1] each model's mean outcome per task over ``rows`` (last column: over all of
    them), unsmoothed: what the per-task best model is read from. Where a model has fewer than
    `MIN_DECISION_ROWS` outcomes on a task it takes ``smoothed`` ([K, V + 1], the profiles'
    task accuracy over the same rows) there, else (None) its overall mean; a model with no row
    at all, 0."""
    scores = np.asarray(scores, dtype=np.float64)[np.asarray(rows, dtype=np.int64)]
    task_ids = np.asarray(task_ids, dtype=np.int64)[np.asarray(rows, dtype=np.int64)]
    have = np.isfinite(scores).T  # [K, R]
    y = np.where(have, np.nan_to_num(scores).T, 0.0)
    counts, sums = have.sum(1).astype(np.float64), y.sum(1)
    overall = np.where(counts > 0, sums / np.maximum(counts, 1.0), 0.0)
    out = np.repeat(overall[:, None], n_tasks + 1, axis=1)
    if n_tasks > 0:
        t_counts, t_sums = task_counts_and_sums(task_ids, n_tasks, have, y)
        few = overall[:, None] if smoothed is None else np.asarray(smoothed, dtype=np.float64)[:, :n_tasks]
        enough = t_counts >= (MIN_DECISION_ROWS if smoothed is not None else 1)
        out[:, :n_tasks] = np.where(enough, t_sums / np.maximum(t_counts, 1.0), few)
    return out


def draw_profile_masks(
    candidate: np.ndarray,
    rng: np.random.Generator,
    *,
    rows_min: int,
    rows_max: int,
    full_prob: float,
) -> np.ndarray:
    """Per model, a random subset of its candidate rows: with probability ``full_prob`` all of
    them, else a uniform size in [rows_min, rows_max] (cold-start-sized profiles)."""
    k, n = candidate.shape
    out = np.zeros((k, n), dtype=bool)
    keys = rng.random((k, n))
    keys[~candidate] = np.inf
    for m in range(k):
        available = int(candidate[m].sum())
        if available == 0:
            continue
        if rng.random() < full_prob:
            out[m] = candidate[m]
            continue
        size = min(available, int(rng.integers(rows_min, rows_max + 1)))
        out[m, np.argpartition(keys[m], size - 1)[:size]] = True
    return out


PRIOR_STRENGTHS = tuple(float(round(2 ** (e / 2), 1)) for e in range(17))  # 1 ... 256, steps of sqrt(2)
PRIOR_DRAW_SIZES = (32, 64, 128)


def _proportional(size: int, counts: np.ndarray) -> np.ndarray:
    """``size`` rows spread over tasks in proportion to ``counts`` (largest remainders), as a
    task-stratified calibration draw has them."""
    quota = size * counts / counts.sum()
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take))[: size - take.sum()]:
        take[i] += 1
    return np.minimum(take, counts.astype(int))


def logit_task_offsets(counts: np.ndarray, sums: np.ndarray, models: np.ndarray) -> np.ndarray:
    """[V] logit task offsets: the row-weighted mean over ``models`` of logit(task accuracy) -
    logit(overall accuracy)."""
    c, s = counts[models], sums[models]
    acc = logit((s + 0.5) / (c + 1.0))
    overall = logit((s.sum(1) + 0.5) / (c.sum(1) + 1.0))
    weight = c.sum(0)
    return np.where(weight > 0, ((acc - overall[:, None]) * c).sum(0) / np.maximum(weight, 1e-12), 0.0)


def fit_profile_prior(
    task_ids: np.ndarray,
    n_tasks: int,
    scores: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    strengths: tuple[float, ...] = PRIOR_STRENGTHS,
    sizes: tuple[int, ...] = PRIOR_DRAW_SIZES,
    criterion: str = "utility",
) -> ProfilePrior:
    """Choose the per-task smoothing by simulated cold starts of the training models.

    Every model j in turn plays the newcomer, calibrated on a task-stratified draw of
    ``sizes`` rows: on task t it gets s ~ Binomial(n_t, p_jt) right, p_jt its accuracy there
    over all its training rows. Each candidate prior -- centre overall or task-adjusted
    (offsets from the *other* models only), strength in ``strengths`` -- turns s into an
    estimate. ``criterion="utility"`` scores a candidate by the routing it would cause: the
    expected (over s, exactly) accuracy change of routing task t to j wherever its estimate
    beats the best other model there, (p_jt - best_t) x rows, summed over models, tasks and
    sizes -- gain where j is better, harm where it is worse. ``"loglik"`` scores the expected
    log-likelihood of j's outcomes instead. Exact expectations, no sampling: the choice is a
    function of the data alone. The criterion is averaged over neighbouring strengths and the
    lightest strength within one standard error (over models) of the best is kept, in the
    best's centre; its task offsets are then computed from every model."""
    if criterion not in ("utility", "loglik"):
        raise ValueError(f"unknown criterion {criterion!r}")
    scores = np.asarray(scores, dtype=np.float64)
    task_ids = np.asarray(task_ids, dtype=np.int64)
    n, k_models = scores.shape
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if criterion == "utility" and k_models < 2:
        criterion = "loglik"  # nobody to route against
    if n_tasks == 0 or k_models == 0 or len(rows) == 0:
        return ProfilePrior()
    known = rows[task_ids[rows] >= 0]
    have = np.isfinite(scores[known]).T  # [K, R]
    y = np.where(have, np.nan_to_num(scores[known]).T, 0.0)
    counts, sums = task_counts_and_sums(task_ids[known], n_tasks, have, y)  # [K, V]
    accuracy = np.where(counts > 0, (sums + 1.0) / (counts + 2.0), -np.inf)
    centers = ["overall"] + (["task"] if k_models >= 2 else [])
    candidates = [(center, float(c)) for center in centers for c in strengths]
    strength_grid = np.asarray(strengths, dtype=np.float64)
    per_model = np.zeros((k_models, len(candidates)))  # candidates: centre-major, strength-minor
    weight = 0.0
    log_factorial = np.cumsum(np.log(np.maximum(np.arange(max(sizes) + 1), 1)))
    for j in range(k_models):
        mine = counts[j]
        if mine.sum() < min(sizes) + 16:
            continue
        others = np.delete(np.arange(k_models), j)
        offsets = logit_task_offsets(counts, sums, others) if k_models >= 2 else None
        best = accuracy[others].max(0) if k_models >= 2 else None
        p = np.clip(sums[j] / np.maximum(mine, 1.0), 1e-6, 1 - 1e-6)
        overall = np.array([(sums[j].sum() + 1.0) / (mine.sum() + 2.0)])
        for size in sizes:
            if mine.sum() < size + 16:
                continue
            n_t = _proportional(size, mine)
            center_of = {"overall": np.repeat(overall, n_tasks),
                         "task": task_centers(overall, n_t[None].astype(float), offsets)[0] if offsets is not None else None}
            for t in np.flatnonzero(mine > 0):
                if criterion == "utility" and not np.isfinite(best[t]):
                    continue  # no other model ran this task: nothing to route against, no value (was inf - inf)
                m = int(n_t[t])
                s = np.arange(m + 1)
                pmf = np.exp(log_factorial[m] - log_factorial[s] - log_factorial[m - s]
                             + s * np.log(p[t]) + (m - s) * np.log1p(-p[t]))  # [m + 1]
                for ci, center in enumerate(centers):  # every strength at once: est [S, m + 1]
                    est = (s[None, :] + strength_grid[:, None] * center_of[center][t]) / (m + strength_grid[:, None])
                    if criterion == "utility":
                        value = ((est > best[t]) @ pmf) * (p[t] - best[t])
                    else:
                        e = np.clip(est, 1e-4, 1 - 1e-4)
                        value = (p[t] * np.log(e) + (1 - p[t]) * np.log1p(-e)) @ pmf
                    per_model[j, ci * len(strengths):(ci + 1) * len(strengths)] += value * mine[t]
            weight += float(mine.sum())
    if weight == 0:
        return ProfilePrior()
    # The criterion is flat near its optimum (often a plateau: past some strength only a newcomer
    # strong everywhere is ever routed to): average it over neighbouring strengths (a factor
    # sqrt(2) either side), then take the lightest shrinkage whose total is within one standard
    # error (over models) of the best's -- more shrinkage than the data ask for only hides a
    # newcomer's strengths.
    smoothed = np.empty_like(per_model)
    for i, (center, _strength) in enumerate(candidates):
        near = [i + d for d in (-1, 0, 1) if 0 <= i + d < len(candidates) and candidates[i + d][0] == center]
        smoothed[:, i] = per_model[:, near].mean(1)
    total = per_model.sum(0)
    top = int(np.argmax(smoothed.sum(0)))
    gap = smoothed[:, top:top + 1] - smoothed  # [K, C] per-model shortfall against the best
    within = gap.sum(0) <= gap.std(0) * math.sqrt(k_models)
    best_i = min((i for i in range(len(candidates)) if within[i] and candidates[i][0] == candidates[top][0]),
                 key=lambda i: candidates[i][1])
    center, strength = candidates[best_i]
    offsets = logit_task_offsets(counts, sums, np.arange(k_models)) if center == "task" else np.zeros(0)
    return ProfilePrior(strength=strength, center=center, task_offsets=tuple(float(v) for v in offsets),
                        chosen_by="simulated cold starts, " + ("expected routing utility" if criterion == "utility"
                                                              else "expected log-likelihood"),
                        scores={f"{c}:{s:g}": round(v / weight, 6) for (c, s), v in zip(candidates, total)})
