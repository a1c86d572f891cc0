"""Onboard a new model into a frozen shared router: fit only its capability token.

    result = fit_token(router, name, X, scores, task_ids, pool=incumbents, pool_scores=Y)
    router.add_model(result.card)

Step 1: the model's profile (from its calibration outcomes) through the frozen profile
encoder gives token_0. Step 2: a residual r (H numbers per ensemble member) is fitted by
gradient descent on the calibration rows with the router's own loss, in the pool it will be
routed in (the incumbents' outcomes on the same rows, where known, make the ranking terms
meaningful), under an L2 prior ||r||^2 * lambda toward token_0. The prior strength lambda and
the number of steps are chosen by k-fold cross-validation inside the calibration rows
(held-out log-loss of the new model's mu); step 0 -- the profile-only token -- is always a
candidate, so a fit that does not help out of sample is not used. Every router weight is
frozen (`requires_grad` off; `weights_checksum` proves it in the tests). Step 3 (level
calibration, `level_offsets`): a per-task offset on the new model's quality logit moves its
mean score on the calibration rows of a task toward its task accuracy as the profile estimates
it, as far as cross-validation inside the calibration rows says it should.

Rows are weighted to the traffic's task mix (`traffic_row_weights`: the router's training task
mix over the rows' own, clipped to [1/5, 5]) in the residual's loss, its cross-validation and
the level calibration's choice: an adaptive calibration asks the open task groups most, and
unweighted the token would fit those groups' queries at the expense of the traffic's.

Speed: all (fold, lambda) candidates are fitted at once -- the calibration rows are repeated
once per candidate, each copy carrying its candidate's token (the network accepts per-row
tokens) -- so cross-validation costs one batched forward/backward per step.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lrcal.errors import LrcalError
from lrcal.router.cards import ModelCard
from lrcal.router.network import NewColumnContext, with_task_bias

MIN_ROWS = 16
# the level calibration's targets for the new model's mean score on a task's calibration rows:
# "partial": the network's own mean pulled n_t / (n_t + s) toward the profile's task accuracy (s:
# the router's profile prior strength); "full": the profile's task accuracy
LEVEL_TARGETS = ("partial", "full")


@dataclass(frozen=True)
class OnboardConfig:
    lambdas: tuple[float, ...] = (1.0, 0.1, 0.01)  # L2 prior strengths tried by CV
    folds: int = 3
    max_steps: int = 40
    lr: float = 0.08
    cv_metric: str = "loss"  # "loss" (the router's loss mix for the column, ranking included) or "logloss"
    bootstrap: int = 100
    one_se: bool = True  # prefer the simplest candidate within one standard error of the best
    # step 3: per task group, an offset on the new model's quality logit sets its mean score on
    # the calibration rows to a target (LEVEL_TARGETS); "cv" chooses the target by cross-validation
    # inside the calibration rows, "none" leaves the network's level alone
    level_calibration: str = "cv"

    def __post_init__(self) -> None:
        if self.level_calibration not in ("cv", "none") + LEVEL_TARGETS:
            raise ValueError(f"level_calibration must be cv, none or one of {LEVEL_TARGETS}")


@dataclass
class OnboardResult:
    card: object  # ModelCard
    prior_strength: float | None  # None: the profile-only token won the cross-validation
    steps: int
    cv_score: float  # held-out log-loss of the new model's mu at the chosen candidate
    cv_profile_only: float  # the same for the profile-only token
    cv_table: dict[str, float] = field(default_factory=dict)  # "lambda" -> best mean held-out log-loss
    fit_loss: float | None = None
    seconds: float = 0.0
    level: str = "none"  # the level calibration applied (chosen by cross-validation unless configured)
    level_cv: dict = field(default_factory=dict)  # target -> mean held-out squared error of the score
    # the per-row values the profile was computed from (outcomes, difficulty-adjusted where the
    # incumbents' outcomes on the same rows are known; see `difficulty_adjusted_scores`)
    profile_scores: np.ndarray | None = None
    difficulty_beta: float | None = None  # None: no adjustment (no incumbent outcomes on these rows)

    @property
    def method(self) -> str:
        return "profile" if self.prior_strength is None else "residual"

    def details(self) -> dict:
        return {
            "method": self.method,
            "prior_strength": self.prior_strength,
            "steps": self.steps,
            "cv_score": self.cv_score,
            "cv_profile_only": self.cv_profile_only,
            "cv_table": self.cv_table,
            "fit_loss": self.fit_loss,
            "fit_seconds": self.seconds,
            "level": self.level,
            "level_cv": self.level_cv,
            "difficulty_beta": self.difficulty_beta,
        }


def weights_checksum(router) -> str:
    """sha256 over every tensor of every ensemble member (parameters and buffers)."""
    h = hashlib.sha256()
    for net in router.members:
        for name, tensor in sorted(net.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Frozen:
    """Context: every router weight has requires_grad off and the nets are in eval mode."""

    def __init__(self, router) -> None:
        self.router = router

    def __enter__(self):
        self.saved = []
        for net in self.router.members:
            self.saved.append((net, net.training, [(p, p.requires_grad) for p in net.parameters()]))
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
        return self

    def __exit__(self, *exc):
        for net, training, params in self.saved:
            net.train(training)
            for p, flag in params:
                p.requires_grad_(flag)


def stratified_fold_ids(n: int, folds: int, task_ids: np.ndarray, seed: int) -> np.ndarray:
    """Stratified (by task) fold assignment."""
    rng = np.random.default_rng(seed)
    ids = np.empty(n, dtype=np.int64)
    offset = 0
    for t in np.unique(task_ids):
        rows = np.flatnonzero(task_ids == t)
        rng.shuffle(rows)
        ids[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return ids


MIN_ADJUST_ROWS = 16


def difficulty_adjusted_scores(scores: np.ndarray, task_ids: np.ndarray, pool_scores: np.ndarray,
                               pool_task_accuracy: np.ndarray, max_beta: float = 3.0) -> tuple[np.ndarray, float | None]:
    """The new model's outcomes with the calibration rows' difficulty taken out (a control variate).

    A few dozen rows per task say how a model did on *those* rows; whether they were easy or hard
    is visible in the incumbents' outcomes on the same rows, against what the incumbents score on
    the task over their whole training data (their cards). With dev_i = mean over incumbents of
    (outcome on row i - accuracy on row i's task), the adjusted value is y_i - beta * dev_i: the
    per-task means keep their expectation and lose the part of their noise the shared difficulty
    explains. beta is the within-task regression slope of an incumbent's outcome on the *other*
    incumbents' dev, pooled over the incumbents on these same rows -- never fitted to the new
    model's own few outcomes (that slope is too noisy at 16-32 rows). Clipped to [0, max_beta].
    Returns (values, beta); (scores, None) with fewer than two incumbents' outcomes to learn from."""
    scores = np.asarray(scores, dtype=np.float64)
    pool_scores = np.asarray(pool_scores, dtype=np.float64)
    if pool_scores.ndim != 2 or pool_scores.shape[1] < 2 or pool_task_accuracy.size == 0:
        return scores, None
    known = np.isfinite(pool_scores)  # [n, K-1]
    if known.any(axis=1).sum() < MIN_ADJUST_ROWS:
        return scores, None
    n_tasks = pool_task_accuracy.shape[1] - 1
    column = np.where((task_ids >= 0) & (task_ids < n_tasks), task_ids, n_tasks)  # unknown task: overall
    residual = np.where(known, pool_scores - pool_task_accuracy[:, column].T, 0.0)  # [n, K-1]
    total, count = residual.sum(axis=1), known.sum(axis=1)

    def within_task(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
        out = values.copy()
        for t in np.unique(column):
            rows = (column == t) & weight
            if rows.any():
                out[column == t] -= values[rows].mean()
        return np.where(weight, out, 0.0)

    numerator = denominator = 0.0
    for j in range(pool_scores.shape[1]):
        others = count - known[:, j]
        use = known[:, j] & (others > 0)
        if use.sum() < 4:
            continue
        dev_rest = np.where(others > 0, (total - residual[:, j]) / np.maximum(others, 1), 0.0)
        y_c, d_c = within_task(np.nan_to_num(pool_scores[:, j]), use), within_task(dev_rest, use)
        numerator += float((y_c * d_c).sum())
        denominator += float((d_c**2).sum())
    if denominator < 1e-9:
        return scores, None
    beta = float(np.clip(numerator / denominator, 0.0, max_beta))
    dev = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return scores - beta * dev, beta


def traffic_row_weights(task_ids: np.ndarray, mix: np.ndarray | None, n_tasks: int, clip: float = 5.0) -> np.ndarray:
    """[n] per-row weights (mean 1) that make the calibration rows' task mix the traffic's:
    w_i = mix_t / share_t for the task t of row i (mix renormalised over the tasks with rows),
    clipped to [1/clip, clip]; rows without a known task weigh 1."""
    n = len(task_ids)
    w = np.ones(n)
    known = (task_ids >= 0) & (task_ids < n_tasks)
    if mix is None or not known.any():
        return w
    counts = np.bincount(task_ids[known], minlength=n_tasks).astype(np.float64)
    present = counts > 0
    m = np.where(present, np.asarray(mix, dtype=np.float64)[:n_tasks], 0.0)
    if m.sum() <= 0:
        return w
    ratio = np.where(present, (m / m.sum()) / np.where(present, counts / counts.sum(), 1.0), 0.0)
    w[known] = np.clip(ratio[task_ids[known]], 1.0 / clip, clip)
    return w / w.mean()


def _profile_card(router, name, task_ids, scores, extras, rows, source):
    profile, task_accuracy = router.profile_from_outcomes(task_ids[rows], scores[rows], **{k: (None if v is None else v[rows]) for k, v in extras.items()})
    task_accuracy = np.clip(task_accuracy, 0.0, 1.0)  # difficulty-adjusted values may leave [0, 1]

    def mean(values):
        if values is None:
            return None
        v = np.asarray(values, dtype=float)[rows]
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else None

    return ModelCard(name=name, profile=profile, task_accuracy=task_accuracy, n_rows=int(len(rows)), residuals=None,
                     source=source, expected_output_tokens=mean(extras.get("output_tokens")),
                     expected_latency_ms=mean(extras.get("latency_ms")), expected_cost_usd=mean(extras.get("cost_usd")),
                     task_rows=calibration_task_rows(task_ids[rows], len(router.spec.task_vocab)))


def calibration_task_rows(task_ids: np.ndarray, n_tasks: int) -> np.ndarray | None:
    """[V + 1] a newcomer's calibration rows per router task (last: all of them), so that a task
    it has no outcome on is not routed to it on the network's extrapolation alone (a newcomer
    calibrated on chart and math took 97 % of ocr). None when no row carries one of the router's
    tasks (a set labelled in other words): nothing is known per task, and nothing is held back."""
    task_ids = np.asarray(task_ids, dtype=np.int64)
    known = task_ids[(task_ids >= 0) & (task_ids < n_tasks)]
    if not len(known):
        return None
    return np.append(np.bincount(known, minlength=n_tasks), len(task_ids)).astype(np.float64)


@dataclass
class _CalibrationRows:
    """The new model's calibration rows, checked: features, outcomes, tasks and the pool's outcomes."""

    X: np.ndarray  # [n, D] float32
    scores: np.ndarray  # [n] in [0, 1]
    task_ids: np.ndarray  # [n]
    pool: list[str]  # the models it will be routed with (never itself)
    pool_scores: np.ndarray  # [n, K-1], NaN = unknown
    extras: dict  # output_tokens, latency_ms, cost_usd, errors: [n] arrays or None

    @property
    def n(self) -> int:
        return len(self.scores)


def _checked_rows(router, name: str, X, scores, task_ids, pool: Sequence[str], pool_scores,
                  extras: dict) -> _CalibrationRows:
    X = np.asarray(X, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float64)
    task_ids = np.asarray(task_ids, dtype=np.int64)
    n = len(scores)
    if n < MIN_ROWS:
        raise LrcalError(f"{n} calibration outcomes for '{name}'; at least {MIN_ROWS} are needed to fit a token")
    if X.shape != (n, router.spec.dim):
        raise LrcalError(f"calibration features have shape {X.shape}, expected ({n}, {router.spec.dim})")
    if not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise LrcalError("calibration scores must be finite and in [0, 1]")
    pool = [m for m in pool if m != name]
    if pool_scores is None:
        pool_scores = np.full((n, len(pool)), np.nan)
    pool_scores = np.asarray(pool_scores, dtype=np.float64).reshape(n, len(pool))
    return _CalibrationRows(X, scores, task_ids, pool, pool_scores, extras)


@dataclass
class _ColumnTensors:
    """The calibration rows as the frozen networks see the new model's column beside the pool."""

    x: torch.Tensor  # [n, D]
    y_new: torch.Tensor  # [n] the new model's outcomes
    y_pool: torch.Tensor  # [n, K-1] the pool's (NaN = unknown)
    ta_new: torch.Tensor  # [V + 1] the new model's task accuracy (its profile on every row)
    ta_pool: torch.Tensor  # [K-1, V + 1]
    available: torch.Tensor  # [n, K] all True

    @classmethod
    def of(cls, rows: _CalibrationRows, card0, pool_ta: np.ndarray) -> "_ColumnTensors":
        return cls(
            x=torch.as_tensor(rows.X),
            y_new=torch.as_tensor(rows.scores, dtype=torch.float32),
            y_pool=torch.as_tensor(rows.pool_scores, dtype=torch.float32),
            ta_new=torch.as_tensor(card0.task_accuracy, dtype=torch.float32),
            ta_pool=(torch.as_tensor(pool_ta, dtype=torch.float32) if rows.pool
                     else torch.zeros(0, len(card0.task_accuracy))),
            available=torch.ones(rows.n, len(rows.pool) + 1, dtype=torch.bool),
        )


@dataclass
class _MemberColumn:
    """One frozen ensemble member set up for the new model's column on the calibration rows."""

    context: NewColumnContext
    pool_tokens: torch.Tensor  # [K-1, H]
    encoded: torch.Tensor  # [1 + F, H]: the encoded profile of every row, then of each fold's training rows


def _member_columns(router, pool: list[str], profiles: np.ndarray, cols: _ColumnTensors) -> list[_MemberColumn]:
    """Per member: the pool's tokens, ``profiles`` [1 + F, P] encoded, and the column context whose
    base token is the first (the profile-only token on every row)."""
    members = []
    for member, net in enumerate(router.members):
        pool_tok = router.tokens(pool, member) if pool else torch.zeros(0, router.hidden)
        with torch.no_grad():
            enc = net.encode_profiles(torch.as_tensor(profiles, dtype=torch.float32))  # [1 + F, H]
        context = NewColumnContext(net, cols.x, torch.cat([pool_tok, enc[:1]]),
                                   torch.cat([cols.ta_pool, cols.ta_new[None]]), cols.available)
        members.append(_MemberColumn(context, pool_tok, enc))
    return members


def _held_out_losses(context: NewColumnContext, terms: _LossTerms, fold_tokens: torch.Tensor, fold_cards: list,
                     fold: np.ndarray, lambdas: list[float], config: OnboardConfig, y_new: torch.Tensor,
                     weights: np.ndarray) -> np.ndarray:
    """[S+1, L, n]: every row's held-out loss after s steps under prior strength lambda.

    Every (lambda, fold) candidate starts from its fold's token (``fold_tokens`` [F, H]), is fitted
    on the other folds' rows, and all candidates run in one batch on member 0."""
    n, folds = len(fold), len(fold_cards)
    n_cand = len(lambdas) * folds
    cand_fold = np.tile(np.arange(folds), len(lambdas))
    cand_lambda = torch.as_tensor(np.repeat(lambdas, folds), dtype=torch.float32)
    base = fold_tokens[torch.as_tensor(cand_fold)]  # [C, H]
    ta = torch.as_tensor(np.stack([fold_cards[f].task_accuracy for f in cand_fold]), dtype=torch.float32)
    held = torch.as_tensor(fold[None, :] == cand_fold[:, None])  # [C, n] validation rows per candidate
    train_w = (~held).float() * torch.as_tensor(weights, dtype=torch.float32)[None]
    residual = torch.zeros(n_cand, fold_tokens.shape[1], requires_grad=True)
    opt = torch.optim.Adam([residual], lr=config.lr)
    val_curve = np.zeros((config.max_steps + 1, n_cand, n))
    for step in range(config.max_steps + 1):
        out = context.forward(base + residual, ta)
        per_row = terms(out)  # [C, n]
        with torch.no_grad():
            if config.cv_metric == "logloss":
                val_curve[step] = F.binary_cross_entropy_with_logits(
                    out["mu_logit"], y_new.expand_as(out["mu_logit"]), reduction="none").numpy()
            else:  # the router's loss mix for this column, ranking against the incumbents included
                val_curve[step] = per_row.numpy()
        if step == config.max_steps:
            break
        loss = (per_row * train_w).sum(dim=1) / train_w.sum(dim=1).clamp_min(1.0)
        total = (loss + cand_lambda * (residual**2).sum(dim=1)).sum()
        opt.zero_grad()
        total.backward()
        opt.step()
    # each row is held out once per lambda: per-row held-out loss for each (step, lambda)
    curves = val_curve.reshape(config.max_steps + 1, len(lambdas), folds, n)
    mask = held.numpy().reshape(len(lambdas), folds, n)[0]  # [F, n]
    return (curves * mask[None, None]).sum(axis=2) * weights  # [S+1, L, n]


def _choose_candidate(per_row_val: np.ndarray, one_se: bool) -> tuple[int, int, np.ndarray]:
    """(steps, lambda index, mean held-out loss [S+1, L]) of the candidate the cross-validation picks.
    Step 0 is the profile-only token (the same for every lambda)."""
    n = per_row_val.shape[2]
    mean = per_row_val.mean(axis=2)  # [S+1, L]
    best_s, best_l = np.unravel_index(np.argmin(mean), mean.shape)
    chosen_s, chosen_l = int(best_s), int(best_l)
    if one_se and chosen_s > 0:
        # one threshold: the best mean plus the standard error of its paired difference to the
        # profile-only token, so whatever is chosen beats profile-only whenever profile-only is not chosen
        diff = per_row_val[0, 0] - per_row_val[best_s, best_l]
        threshold = mean[best_s, best_l] + diff.std() / math.sqrt(n)
        within = mean <= threshold
        # simplest first: profile only, then the strongest prior with the fewest steps
        if within[0, 0]:
            chosen_s, chosen_l = 0, 0
        else:
            for li in range(mean.shape[1]):
                steps_ok = np.flatnonzero(within[:, li])
                if steps_ok.size:
                    chosen_s, chosen_l = int(steps_ok[0]), li
                    break
    return chosen_s, chosen_l, mean


def _fit_residuals(router, members: list[_MemberColumn], terms: _LossTerms, cols: _ColumnTensors, lam: float,
                   steps: int, config: OnboardConfig,
                   start: torch.Tensor | None, weights: np.ndarray) -> tuple[list[np.ndarray], float | None]:
    """(one residual [H] per member, member 0's final training loss).

    Each member's residual is fitted on every row for ``steps`` steps under prior ``lam``, from
    its profile-only token -- or from ``start`` (the free token)."""
    residuals = []
    fit_loss = None
    w = torch.as_tensor(weights, dtype=torch.float32)
    for member, column in enumerate(members):
        enc0 = column.encoded[:1]
        t0 = enc0 if start is None else start
        terms_m = terms if member == 0 else _LossTerms(router.config, column.context.pool_scores(), cols.y_pool,
                                                       cols.y_new)
        r = torch.zeros(1, router.hidden, requires_grad=True)
        opt = torch.optim.Adam([r], lr=config.lr)
        for _ in range(steps):
            loss = (terms_m(column.context.forward(t0 + r, cols.ta_new[None])) * w).mean()
            opt.zero_grad()
            (loss + lam * (r**2).sum()).backward()
            opt.step()
        if member == 0 and steps:
            fit_loss = float(loss.detach())
        residual = (t0 + r - enc0).detach()
        residuals.append(residual[0].numpy().astype(np.float32))
    return residuals, fit_loss


def fit_token(
    router,
    name: str,
    X: np.ndarray,
    scores: np.ndarray,
    task_ids: np.ndarray,
    *,
    pool: Sequence[str] = (),
    pool_scores: np.ndarray | None = None,
    output_tokens: np.ndarray | None = None,
    latency_ms: np.ndarray | None = None,
    cost_usd: np.ndarray | None = None,
    errors: np.ndarray | None = None,
    config: OnboardConfig = OnboardConfig(),
    seed: int = 0,
    free: bool = False,
) -> OnboardResult:
    """Fit ``name``'s token from its outcomes ``scores`` [n] on the calibration rows ``X`` [n, D].

    ``pool``: the models it will be routed with (must be in the router's bank; ``name`` must
    not be); ``pool_scores`` [n, len(pool)] their outcomes on the same rows (NaN = unknown).
    ``free``: the baseline of a token fitted from a random start without the prior toward the profile.
    """
    started = time.perf_counter()
    extras = {"output_tokens": output_tokens, "latency_ms": latency_ms, "cost_usd": cost_usd, "errors": errors}
    rows = _checked_rows(router, name, X, scores, task_ids, pool, pool_scores, extras)
    weights = traffic_row_weights(rows.task_ids, router.traffic_task_mix(), len(router.spec.task_vocab))
    # step 1: the profile-only token, from the outcomes with the rows' difficulty taken out
    pool_ta = np.stack([router.cards[m].task_accuracy for m in rows.pool]) if rows.pool else np.zeros((0, 0))
    # a row's difficulty is the incumbents' outcome there against their per-task mean -- the raw
    # mean (`decision_level`): their smoothed task accuracy, shrunk toward their overall one, left
    # a hard task's difficulty in every row of it and lifted the newcomer there (+0.07 to +0.12)
    pool_levels = np.stack([router.cards[m].decision_level() for m in rows.pool]) if rows.pool else np.zeros((0, 0))
    profile_scores, beta = difficulty_adjusted_scores(rows.scores, rows.task_ids, rows.pool_scores, pool_levels)
    card0 = _profile_card(router, name, rows.task_ids, profile_scores, extras, np.arange(rows.n), "onboarded")
    folds = max(2, min(config.folds, rows.n // 8))
    fold = stratified_fold_ids(rows.n, folds, rows.task_ids, seed)
    fold_cards = [_profile_card(router, name, rows.task_ids, profile_scores, extras, np.flatnonzero(fold != f),
                                "onboarded") for f in range(folds)]
    cols = _ColumnTensors.of(rows, card0, pool_ta)
    if free:
        config = OnboardConfig(lambdas=(0.0,), folds=config.folds, max_steps=config.max_steps, lr=config.lr,
                               bootstrap=config.bootstrap, one_se=False)
    lambdas = list(config.lambdas)

    with _Frozen(router):
        members = _member_columns(router, rows.pool, np.stack([card0.profile] + [c.profile for c in fold_cards]), cols)
        terms = _LossTerms(router.config, members[0].context.pool_scores(), cols.y_pool, cols.y_new)
        start = None
        if free:
            spread = float(members[0].pool_tokens.std()) if rows.pool else 1.0
            start = torch.randn(1, router.hidden, generator=torch.Generator().manual_seed(seed)) * spread
        # step 2: the residual's prior strength and step count by cross-validation, then the fit on every row
        fold_tokens = start.expand(folds, -1) if free else members[0].encoded[1:]  # [F, H]
        per_row_val = _held_out_losses(members[0].context, terms, fold_tokens, fold_cards, fold, lambdas, config,
                                       cols.y_new, weights)
        chosen_s, chosen_l, mean = _choose_candidate(per_row_val, config.one_se)
        card, fit_loss = card0, None
        if chosen_s > 0 or free:
            residuals, fit_loss = _fit_residuals(router, members, terms, cols, lambdas[chosen_l], chosen_s, config,
                                                 start, weights)
            card = replace(card0, residuals=residuals)
        # step 3: the level calibration, its target chosen inside the calibration rows
        level, level_cv = ("none", {}) if free else (config.level_calibration, {})
        if level == "cv":
            level, level_cv = choose_level(router, fold_cards, cols.x, rows.scores, rows.task_ids, fold, rows.pool,
                                           pool_ta, config.one_se, weights)
        if level != "none":
            network = newcomer_columns(router, card, cols.x, rows.pool, pool_ta)
            card = replace(card, task_bias=level_offsets(network, rows.task_ids, np.ones(rows.n, dtype=bool),
                                                         card.task_accuracy, level, router.profile_prior.strength))
    result = OnboardResult(
        card=card,
        prior_strength=None if (chosen_s == 0 and not free) else float(lambdas[chosen_l]),
        steps=chosen_s,
        cv_score=float(mean[chosen_s, chosen_l]),
        cv_profile_only=float(mean[0, 0]),
        cv_table={f"{lam:g}": float(mean[:, li].min()) for li, lam in enumerate(lambdas)},
        fit_loss=fit_loss,
        level=level,
        level_cv=level_cv,
        profile_scores=profile_scores,
        difficulty_beta=beta,
    )
    result.seconds = time.perf_counter() - started
    return result


@torch.no_grad()
def newcomer_columns(router, card, x: torch.Tensor, pool: Sequence[str], pool_ta: np.ndarray):
    """The new model's column through every ensemble member, beside the frozen pool: its quality
    logit and bounded correction [E, n] (float64), and the incumbents' ensemble-mean scores
    [n, K-1]. ``pool_ta`` [K-1, V+1]: the pool's task accuracies."""
    ta = torch.as_tensor(np.concatenate([pool_ta, card.task_accuracy[None]]), dtype=torch.float32)
    avail = torch.ones(x.shape[0], len(pool) + 1, dtype=torch.bool)
    mu_logit, delta, pool_score = [], [], 0.0
    for member, net in enumerate(router.members):
        tok = net.encode_profiles(torch.as_tensor(card.profile[None], dtype=torch.float32))
        if card.residuals is not None:
            tok = tok + torch.as_tensor(card.residuals[member], dtype=torch.float32)
        out = net(x, torch.cat([router.tokens(pool, member), tok]), ta, avail)
        mu_logit.append(out["mu_logit"][:, -1].numpy().astype(np.float64))
        delta.append(out["delta"][:, -1].numpy().astype(np.float64))
        pool_score = pool_score + out["score"][:, :-1].numpy().astype(np.float64)
    return np.stack(mu_logit), np.stack(delta), pool_score / len(router.members)


def level_offsets(network, task_ids: np.ndarray, rows: np.ndarray, task_accuracy: np.ndarray, target: str,
                  strength: float, iterations: int = 40, limit: float = 8.0) -> np.ndarray:
    """[V + 1] per-task offsets on the new model's quality logit (the level calibration).

    ``network``: (mu_logit [E, n], delta [E, n], ...) of the new model's column on the
    calibration rows (`newcomer_columns`); ``rows`` [n] the rows to calibrate on. Per task group
    with rows, b_t sets the mean of the new model's ensemble score on those rows to the target:
    "full", its task accuracy as the profile estimates it; "partial", the network's own mean
    pulled n_t / (n_t + s) of the way there (s: the router's profile prior strength, the
    pseudo-count its simulated cold starts chose). The within-group variation of the network's
    prediction is kept; groups without rows get 0 and the unknown-task column the row-weighted
    mean. The target is the newcomer's own accuracy, never a margin over the incumbents' per-row
    best: the mean of a row-wise maximum sits above the best incumbent's mean wherever the
    incumbents' scores vary within a task, and a margin target passes that excess on to the
    newcomer's score."""
    mu_logit, delta = network[0], network[1]
    n_tasks = len(task_accuracy) - 1
    bias, weights = np.zeros(n_tasks + 1), np.zeros(n_tasks + 1)

    def mean_score(b: float, r: np.ndarray) -> float:
        return float(np.clip(1.0 / (1.0 + np.exp(-(mu_logit[:, r] + b))) + delta[:, r], 0.0, 1.0).mean())

    for t in np.unique(task_ids[rows & (task_ids >= 0) & (task_ids < n_tasks)]):
        r = rows & (task_ids == t)
        goal = float(task_accuracy[t])
        if target == "partial":
            w = r.sum() / (r.sum() + strength)
            goal = (1 - w) * mean_score(0.0, r) + w * goal
        lo, hi = -limit, limit
        for _ in range(iterations):  # the mean score is increasing in the offset: bisection
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if mean_score(mid, r) < goal else (lo, mid)
        bias[t], weights[t] = 0.5 * (lo + hi), r.sum()
    if weights.sum() > 0:
        bias[n_tasks] = float(weights @ bias / weights.sum())
    return bias.astype(np.float32)


def choose_level(router, fold_cards: list, x: torch.Tensor, y: np.ndarray, task_ids: np.ndarray, fold: np.ndarray,
                 pool: Sequence[str], pool_ta: np.ndarray, one_se: bool = True,
                 weights: np.ndarray | None = None) -> tuple[str, dict]:
    """The level calibration's target by cross-validation inside the calibration rows: per fold,
    the profile-only card of the other folds' rows (its network column and its task accuracy)
    calibrated on those rows, scored by the squared error of the new model's score on the
    held-out rows. The simplest target ("none", then "partial", then "full") within one
    standard error of the paired difference to the best is kept. Returns (target, mean error
    per target)."""
    candidates = ("none",) + LEVEL_TARGETS
    errors = np.zeros((len(candidates), len(y)))
    for f, card in enumerate(fold_cards):
        train, held = fold != f, fold == f
        network = newcomer_columns(router, card, x, pool, pool_ta)
        column = np.where((task_ids >= 0) & (task_ids < len(card.task_accuracy) - 1), task_ids, len(card.task_accuracy) - 1)
        for c, target in enumerate(candidates):
            bias = np.zeros(len(card.task_accuracy)) if target == "none" else level_offsets(
                network, task_ids, train, card.task_accuracy, target, router.profile_prior.strength)
            score = np.clip(1.0 / (1.0 + np.exp(-(network[0][:, held] + bias[column[held]]))) + network[1][:, held],
                            0.0, 1.0).mean(axis=0)
            errors[c, held] = (score - y[held]) ** 2 * (1.0 if weights is None else weights[held])
    mean = errors.mean(axis=1)
    best = int(np.argmin(mean))
    chosen = best
    if one_se:
        for c in range(best):
            diff = errors[c] - errors[best]
            if mean[c] <= mean[best] + diff.std() / math.sqrt(len(y)):
                chosen = c
                break
    return candidates[chosen], {target: float(m) for target, m in zip(candidates, mean)}


class _LossTerms:
    """The router's loss mix restricted to the new model's column, per row: its own terms
    (Gaussian NLL, BCE, MSE, delta^2) plus the ranking terms against the incumbents'
    (constant) scores on the same row where their outcomes are known."""

    def __init__(self, cfg, pool_score: torch.Tensor, y_pool: torch.Tensor, y_new: torch.Tensor) -> None:
        self.cfg = cfg
        self.y = y_new  # [n]
        known = torch.isfinite(y_pool)
        yp = torch.nan_to_num(y_pool, nan=0.0)
        self.known = known.float()  # [n, K-1]
        self.pool_score = pool_score  # [n, K-1]
        # pairwise: sign(+1: new should be above, -1: below) for pairs with different outcomes
        diff = self.y[:, None] - yp
        self.pair_sign = torch.sign(diff) * self.known
        self.pairs = (self.pair_sign != 0).float()
        # listwise: target softmax(y / t) over the known models of each row (the new one included)
        t = cfg.listwise_temperature
        neg = -1e9
        logits = torch.cat([torch.where(known, yp / t, torch.full_like(yp, neg)), (self.y / t)[:, None]], dim=1)
        self.target = torch.softmax(logits, dim=1)  # [n, K]
        self.list_rows = (known.sum(dim=1) >= 1).float()
        self.pool_logits = torch.where(known, pool_score / t, torch.full_like(pool_score, neg))

    def __call__(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg, y = self.cfg, self.y
        mu, sigma, score, delta = out["mu"], out["sigma"], out["score"], out["delta"]
        nll = torch.log(sigma) + (y - mu) ** 2 / (2 * sigma**2)
        bce = F.binary_cross_entropy_with_logits(out["mu_logit"], y.expand_as(mu), reduction="none")
        mse = (score - y) ** 2
        total = cfg.w_nll * nll + cfg.w_bce * bce + cfg.w_score_mse * mse + cfg.w_delta * delta**2
        if self.pairs.sum() > 0:
            d = (score.unsqueeze(-1) - self.pool_score) / cfg.pairwise_temperature  # [C, n, K-1]
            pair = (F.softplus(-d * self.pair_sign) * self.pairs).sum(-1) / self.pairs.sum(-1).clamp_min(1.0)
            total = total + cfg.w_pairwise * pair
            t = cfg.listwise_temperature
            logits = torch.cat([self.pool_logits.expand(score.shape[0], -1, -1), (score / t).unsqueeze(-1)], dim=-1)
            listwise = -(self.target * torch.log_softmax(logits, dim=-1)).sum(-1)
            total = total + cfg.w_listwise * listwise * self.list_rows
        return total


@torch.no_grad()
def bootstrap_task_quality(
    router,
    card,
    X: np.ndarray,
    scores: np.ndarray,
    task_ids: np.ndarray,
    labels: Sequence[str],
    *,
    pool: Sequence[str] = (),
    extras: dict | None = None,
    replicates: int = 100,
    seed: int = 0,
    level: float = 0.9,
) -> dict[str, dict]:
    """Per task group: the mean predicted quality of ``card`` on these rows in ``pool``, and a
    bootstrap interval (the profile recomputed from resampled outcomes; the fitted residual is
    kept), evaluated for every replicate in one batched forward per ensemble member."""
    extras = extras or {}
    X = np.asarray(X, dtype=np.float32)
    n = len(scores)
    pool = [m for m in pool if m != card.name]
    rng = np.random.default_rng(seed)
    draws = [np.arange(n)] + [rng.integers(0, n, size=n) for _ in range(replicates)]
    profiles, accs = [], []
    for rows in draws:
        p, a = router.profile_from_outcomes(task_ids[rows], np.asarray(scores)[rows],
                                            **{k: (None if v is None else np.asarray(v)[rows]) for k, v in extras.items()})
        profiles.append(p)
        accs.append(a)
    profiles_t = torch.as_tensor(np.stack(profiles), dtype=torch.float32)
    accs_t = torch.as_tensor(np.stack(accs), dtype=torch.float32)  # [R, V+1]
    R = len(draws)
    xt = torch.as_tensor(X)
    pool_ta = (torch.as_tensor(np.stack([router.cards[m].task_accuracy for m in pool]), dtype=torch.float32)
               if pool else torch.zeros(0, accs_t.shape[1]))
    avail = torch.ones(n, len(pool) + 1, dtype=torch.bool)
    total = np.zeros((R, n))
    bias = torch.as_tensor(np.zeros(accs_t.shape[1]) if card.task_bias is None else card.task_bias,
                           dtype=torch.float32)[None]  # [1, V + 1]
    with _Frozen(router):
        for member, net in enumerate(router.members):
            tok_pool = router.tokens(pool, member) if pool else torch.zeros(0, router.hidden)
            tok_new = net.encode_profiles(profiles_t)  # [R, H]
            if card.residuals is not None:
                tok_new = tok_new + torch.as_tensor(card.residuals[member], dtype=torch.float32)
            ctx = NewColumnContext(net, xt, torch.cat([tok_pool, tok_new[:1]]), torch.cat([pool_ta, accs_t[:1]]), avail)
            replicas = ctx.forward(tok_new[1:], accs_t[1:])
            # the point estimate is the exact forward; both with the card's task offsets (zeros: none)
            total[0] += with_task_bias(ctx.full_mu_logit[:, None], ctx.full_delta[:, None], ctx.p_task,
                                       bias)[1][:, 0].numpy()
            total[1:] += with_task_bias(replicas["mu_logit"].unsqueeze(-1), replicas["delta"].unsqueeze(-1),
                                        ctx.p_task, bias)[1][..., 0].numpy()
    total /= len(router.members)
    labels = np.asarray(list(labels), dtype=object)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out = {}
    for group in sorted(set(labels)):
        rows = labels == group
        per_rep = total[:, rows].mean(axis=1)
        out[group] = {"predicted": float(per_rep[0]), "low": float(np.percentile(per_rep[1:], lo_q)),
                      "high": float(np.percentile(per_rep[1:], hi_q))}
    return out
