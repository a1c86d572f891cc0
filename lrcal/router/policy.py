"""Routing policy: utility = mu_tilde - lambda_cost * cost_norm - lambda_latency * latency_norm
[- kappa * sigma], argmax over the available models. `policy_choice` is the one decision that
every surface routes with: `Router.route` (through `utility` and `choose`), `lrcal route`, live
validation's router policies and frontiers, and the review service behind `lrcal tui`.

Expected cost and latency are *predicted before the call* -- a model's prices times its
expected token counts, its latency profile -- never the realized values of the query being
routed. They are min-max normalized over the *pool* of the decision (by default the available
models; live validation normalizes its with- and without-candidate policies over the same
pool), not over the models a router happens to pick, so lambda means the same thing whichever
model wins. An unknown (NaN) expected cost or latency counts as the pool's worst.

Imports numpy only (no torch): the TUI re-routes cached predictions with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lrcal.errors import UsageError
from lrcal.router.config import RouterConfig


@dataclass(frozen=True)
class Policy:
    lambda_cost: float = 0.0
    lambda_latency: float = 0.0
    risk_kappa: float = 0.0  # utility uses mu_tilde - kappa * sigma

    def __post_init__(self) -> None:
        for name in ("lambda_cost", "lambda_latency", "risk_kappa"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise UsageError(f"{name.replace('_', '-')} must be a finite number >= 0 (got {value})")


@dataclass(frozen=True)
class PolicyChoice:
    choice: np.ndarray  # [N] index of the chosen model, -1 where none is available
    utility: np.ndarray  # [N, K], -inf for unavailable models


def expected_cost_usd(price_in_per_mtok: float, price_out_per_mtok: float, input_tokens: float, output_tokens: float) -> float:
    """Cost of one call predicted from prices (USD per million tokens) and expected token counts."""
    return (price_in_per_mtok * input_tokens + price_out_per_mtok * output_tokens) / 1e6


def normalize_over_pool(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Min-max normalize per row over the pool's models (``pool``: [N, K] mask); unknown (NaN)
    values count as the pool's worst (1.0); a pool where all known values are equal gives 0."""
    values = np.asarray(values, dtype=np.float64)
    pool = np.asarray(pool, dtype=bool)
    if values.ndim == 1:
        values = np.broadcast_to(values, pool.shape)
    known = pool & np.isfinite(values)
    big = np.where(known, values, -np.inf).max(axis=1, keepdims=True)
    small = np.where(known, values, np.inf).min(axis=1, keepdims=True)
    span = big - small
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(span > 0, (values - small) / np.where(span > 0, span, 1.0), 0.0)
    norm = np.where(np.isfinite(values), norm, 1.0)
    return np.where(pool, np.clip(norm, 0.0, 1.0), 0.0)


def utility(
    score: np.ndarray,
    available: np.ndarray,
    policy: Policy = Policy(),
    *,
    sigma: np.ndarray | None = None,
    expected_cost: np.ndarray | None = None,
    expected_latency: np.ndarray | None = None,
    pool: np.ndarray | None = None,
) -> np.ndarray:
    """[N, K] utility; unavailable models get -inf. ``available`` and ``pool``: [K] or [N, K]
    masks (``pool``, default ``available``: the models cost/latency are normalized over; it
    always includes the available ones). expected_cost / expected_latency: [K] or [N, K]."""
    score = np.asarray(score, dtype=np.float64)
    available = np.broadcast_to(np.asarray(available, dtype=bool), score.shape)
    pool = available if pool is None else available | np.broadcast_to(np.asarray(pool, dtype=bool), score.shape)
    u = score.copy()
    if policy.risk_kappa and sigma is not None:
        u = u - policy.risk_kappa * np.asarray(sigma, dtype=np.float64)
    if policy.lambda_cost and expected_cost is not None:
        u = u - policy.lambda_cost * normalize_over_pool(expected_cost, pool)
    if policy.lambda_latency and expected_latency is not None:
        u = u - policy.lambda_latency * normalize_over_pool(expected_latency, pool)
    return np.where(available, u, -np.inf)


def choose(util: np.ndarray) -> np.ndarray:
    """Index of the best available model per row (-1 where none is available)."""
    util = np.asarray(util, dtype=np.float64)
    pick = util.argmax(axis=1)
    none = ~np.isfinite(util).any(axis=1)
    pick[none] = -1
    return pick


def policy_choice(score: np.ndarray, available: np.ndarray, policy: Policy = Policy(), **inputs) -> PolicyChoice:
    """The routing decision: per query, the available model of highest `utility` (and the
    utilities). ``inputs``: `utility`'s sigma, expected_cost, expected_latency and pool."""
    util = utility(score, available, policy, **inputs)
    return PolicyChoice(choice=choose(util), utility=util)


# ---- the selection-aware quality estimate every decision uses ------------------------------
#
# An argmax over K noisy estimates picks, on average, the most overstated one (the optimizer's
# curse). The network's score of model m on query i splits into three levels,
#
#     S_im = a_m + (A_tm - a_m) + (S_im - A_tm)
#            overall   task deviation   query deviation
#
# (a_m: the model's smoothed overall accuracy from its card; A_tm: its smoothed accuracy on the
# query's task, the `prior` of a prediction). A `DecisionRule` weights each level by how much it
# predicted outcomes on rows the networks never saw: out-of-fold predictions inside the training
# rows, a regression of each row's outcomes on the three levels (differences between the models
# of a row only: the query's difficulty cancels), and a level enters only when its weight is
# credibly positive (weight - z * SE > 0). The regression is refitted on the models that
# contend for the top (`contender_columns`): decisions are made among them, and weak models'
# real task and query strengths would otherwise lend weight to what is noise among the
# contenders. A kept query level must not have routed credibly worse out of fold than the
# default, nor than the best single model. With no credible query deviation the router
# reduces exactly to the per-task default -- if that default routed better than the best single
# model on the same out-of-fold rows; otherwise, or with no credible task deviation either, to
# the best single model. Each model's decision score depends on its own levels only, so a
# choice among any subset of the pool is the same choice -- but for one case: where no model of
# the scored pool is measured on the query's task, the scores stay unscaled (`decision_scores`),
# so every surface scores the whole routed pool and masks what a query cannot use (the TUI's
# what-if pools rescale each pool from the unscaled estimates, `scale_unmeasured`). The same
# levels exist for a model onboarded after training (its card's accuracies and the network's
# score of its token), so incumbents and newcomers are weighed alike.

RULE_LEVELS = ("overall", "task", "query")


@dataclass(frozen=True)
class DecisionRule:
    """Weights of the overall, task and query levels of the network's score (1, 1, 1: the
    network's own score); ``evidence``: what the weights were fitted from."""

    overall: float = 1.0
    task: float = 1.0
    query: float = 1.0
    # what a model's overall level is shrunk toward (the training pool's mean accuracy): a
    # constant, so each model's decision score depends on its own levels only
    centre: float = 0.0
    # True: with no query level, the per-task default is exactly the per-task best model of the
    # training rows (each incumbent's unsmoothed per-task mean outcome, `ModelCard.decision_level`;
    # ties to the best single model) rather than the task level weighted ``task``. False: rules
    # written before it.
    per_task_from_outcomes: bool = False
    # how much of the per-model linear heads' estimate the network's score is blended with
    # (`lrcal.router.linear_head`; 0: the network alone) and the heads' L2, both chosen on
    # out-of-fold predictions with the rest of the rule
    linear_weight: float = 0.0
    linear_l2: float | None = None
    evidence: dict | None = None

    @property
    def weights(self) -> tuple[float, float, float]:
        return (self.overall, self.task, self.query)

    def is_identity(self) -> bool:
        return self.weights == (1.0, 1.0, 1.0)

    def is_exact_per_task(self) -> bool:
        """Decisions are the per-task best of the training rows (see ``per_task_from_outcomes``)."""
        return self.per_task_from_outcomes and self.query == 0.0 and self.task > 0.0

    def kind(self) -> str:
        """What it decides by, in a few words (`describe` says why, with the numbers)."""
        if self.is_identity():
            return "the network's own scores"
        if self.query > 0:
            return "per-query deviations"
        if self.is_exact_per_task():
            return "per-task best"
        return "per-task default" if self.task > 0 else "best single model"

    def describe(self) -> str:
        evidence = self.evidence or {}
        contenders, models = evidence.get("contenders"), evidence.get("models")
        narrowed = (f" (weights fitted on the {len(contenders)} of {models} models contending for the top)"
                    if contenders is not None and models and 2 <= len(contenders) < models else "")
        linear = (f"; scores blended with per-model linear heads at weight {self.linear_weight:.1f}"
                  if self.linear_weight > 0 and not self.is_exact_per_task() and self.query > 0 else "")
        return self._decision() + narrowed + linear

    def _decision(self) -> str:
        if self.is_identity():
            return "the network's own scores"
        if self.query > 0:
            return f"per-query deviations weighted {self.query:.2f}, task deviations {self.task:.2f}"
        evidence = self.evidence or {}
        no_query = "no credible per-query signal"
        for key, than in (("query_decision_gain", ""), ("query_vs_single_gain", " than the best single model")):
            lost = evidence.get(key)
            if lost is not None and lost["ci95"] is not None and lost["ci95"][1] < 0:
                no_query = f"per-query deviations routed worse{than} out of fold ({100 * lost['mean']:+.1f} points)"
                break
        if self.is_exact_per_task():
            return f"per-task best model of the training rows; {no_query}"
        if self.task > 0:
            return f"per-task default (task deviations weighted {self.task:.2f}); {no_query}"
        gain = evidence.get("task_decision_gain")
        if gain is not None:
            z = evidence.get("default_z", 0.0)
            spread = f", {gain['mean'] / gain['se']:+.1f} SE against the {z:g} asked" if gain.get("se") else ""
            return (f"best single model; {no_query}, and the per-task best did not route credibly "
                    f"better out of fold ({100 * gain['mean']:+.1f} points{spread})")
        return "best single model; no credible per-task or per-query signal"

    def to_dict(self) -> dict:
        return {"overall": self.overall, "task": self.task, "query": self.query, "centre": self.centre,
                "per_task_from_outcomes": self.per_task_from_outcomes, "linear_weight": self.linear_weight,
                "linear_l2": self.linear_l2, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, data: dict | None) -> "DecisionRule":
        if not data:
            return cls()
        try:
            weights = [float(data[level]) for level in RULE_LEVELS]
        except (KeyError, TypeError, ValueError):
            raise UsageError("decision rule: expected numeric 'overall', 'task' and 'query' weights") from None
        if not all(np.isfinite(w) and 0.0 <= w <= 1.0 for w in weights):
            raise UsageError(f"decision rule: weights must lie in [0, 1] (got {weights})")
        try:
            centre = float(data.get("centre", 0.0))
        except (TypeError, ValueError):
            raise UsageError("decision rule: 'centre' must be a number") from None
        if not (np.isfinite(centre) and 0.0 <= centre <= 1.0):
            raise UsageError(f"decision rule: centre must lie in [0, 1] (got {centre})")
        exact = data.get("per_task_from_outcomes", False)
        if not isinstance(exact, bool):
            raise UsageError("decision rule: 'per_task_from_outcomes' must be true or false")
        try:  # absent in rules written before the linear heads
            linear_weight = float(data.get("linear_weight", 0.0))
            linear_l2 = None if data.get("linear_l2") is None else float(data["linear_l2"])
        except (TypeError, ValueError):
            raise UsageError("decision rule: 'linear_weight' and 'linear_l2' must be numbers") from None
        if not (np.isfinite(linear_weight) and 0.0 <= linear_weight <= 1.0):
            raise UsageError(f"decision rule: linear_weight must lie in [0, 1] (got {linear_weight})")
        if linear_l2 is not None and not (np.isfinite(linear_l2) and linear_l2 >= 0.0):
            raise UsageError(f"decision rule: linear_l2 must be a non-negative number (got {linear_l2})")
        return cls(*weights, centre=centre, per_task_from_outcomes=exact, linear_weight=linear_weight,
                   linear_l2=linear_l2, evidence=data.get("evidence"))


def rule_levels(score: np.ndarray, prior: np.ndarray, overall: np.ndarray) -> list[np.ndarray]:
    """The three levels of ``score`` [N, K]: ``overall`` [K] or [N, K], ``prior`` [N, K]."""
    score = np.asarray(score, dtype=np.float64)
    overall = np.broadcast_to(np.asarray(overall, dtype=np.float64), score.shape)
    prior = np.asarray(prior, dtype=np.float64)
    return [overall, prior - overall, score - prior]


def decision_scores(score: np.ndarray, prior: np.ndarray, overall: np.ndarray, rule: DecisionRule,
                    task_level: np.ndarray | None = None, measured: np.ndarray | None = None) -> np.ndarray:
    """[N, K] quality estimates a decision uses: centre + the rule's weighted levels (the
    overall one as a deviation from the centre), clipped to [0, 1]. Each model's estimate
    depends on its own levels only, so a choice among any subset of the pool is the same
    choice; with every weight 1 it is the network's score. An exact per-task rule
    (`DecisionRule.is_exact_per_task`) decides on ``task_level`` [N, K] (each model's per-task
    default level on the query's task; None: ``prior``), ties to the best overall level.
    ``measured`` [N, K] (`lrcal.router.profiles.measured_share`; None: all 1): where a model
    was hardly run on the query's task (0), its estimate is scaled down to a tie-breaker: its
    quality there counts as about zero, so at λ = 0 it is chosen only when no measured model
    is available (with cost or latency weights, only where they would pick a model that
    answers nothing right). A row where no model of the pool is measured keeps its estimates
    unscaled (so that one choice depends on which models are in the pool)."""
    score = np.asarray(score, dtype=np.float64)
    if score.size == 0:
        return score
    if rule.is_identity():
        q = score
    elif rule.is_exact_per_task():
        level = np.asarray(prior if task_level is None else task_level, dtype=np.float64)
        overall = np.broadcast_to(np.asarray(overall, dtype=np.float64), level.shape)
        q = np.clip((1.0 - TIE_BREAK) * level + TIE_BREAK * overall, 0.0, 1.0)
    else:
        # a tiny weight on the overall level breaks ties toward the best single model
        weights = (max(rule.overall, 1e-3), rule.task, rule.query)
        levels = rule_levels(score, prior, overall)
        levels[0] = levels[0] - rule.centre
        q = np.clip(rule.centre + sum(w * level for w, level in zip(weights, levels)), 0.0, 1.0)
    return q if measured is None else scale_unmeasured(q, measured)


def scale_unmeasured(q: np.ndarray, measured: np.ndarray, pool: np.ndarray | None = None) -> np.ndarray:
    """``q`` [N, K] with each model's estimate scaled down to a tie-breaker where it is not
    measured on the query's task (``measured`` [N, K], `decision_scores`), except on rows where
    no model of ``pool`` ([K] or [N, K] mask; None: every column) is measured: those keep ``q``.
    A choice among a subset of the columns is the subset's own decision only with ``pool`` =
    that subset (the TUI's what-if pools score every model once)."""
    q = np.asarray(q, dtype=np.float64)
    # a model's estimate on a task it was run on fewer than MIN_DECISION_ROWS times is the
    # network's (or the smoothing's) extrapolation: one lucky outcome, or a strong task
    # elsewhere, made it win tasks it then lost (docs/reliability.md)
    share = np.array(np.broadcast_to(np.asarray(measured, dtype=np.float64), q.shape))
    in_pool = np.ones(q.shape, dtype=bool) if pool is None else np.broadcast_to(np.asarray(pool, dtype=bool), q.shape)
    # where no model of the pool is measured on the query's task, the scaling would leave a cost
    # or latency weight deciding alone (the cheapest model won at any λ_cost > 0): the estimates
    # keep their order instead
    share[~((share > 0) & in_pool).any(axis=-1)] = 1.0
    return q * (share + (1.0 - share) * TIE_BREAK)


# the weight of the overall level in an exact per-task decision: it only breaks ties
TIE_BREAK = 1e-6
# the per-task best model replaces the best single model only on a repeated-fold gain above this
# many standard errors (docs/router.md, step 6)
DEFAULT_CHECK_Z = RouterConfig.decision_default_z


@dataclass(frozen=True)
class LevelFit:
    """Least squares of each row's outcome differences on the levels' differences."""

    coefficients: np.ndarray
    standard_errors: np.ndarray  # clustered by row
    rows: int
    pairs: int


def fit_levels(levels: list[np.ndarray], outcome: np.ndarray, min_rows: int = 30) -> LevelFit | None:
    """Within-row least squares of ``outcome`` [n, K] (NaN: not run) on ``levels`` ([n, K]
    each); None when fewer than ``min_rows`` rows have two outcomes or the levels cannot be
    told apart. A level that never differs between the models of a row (the task level of data
    without task labels, every level when all models score alike) is left out of the fit: its
    weight 0, its standard error infinite, so it never enters a decision."""
    outcome = np.asarray(outcome, dtype=np.float64)
    have = np.isfinite(outcome)
    usable = have.sum(axis=1) >= 2
    if int(usable.sum()) < min_rows:
        return None

    def centred(values: np.ndarray) -> np.ndarray:
        v = np.where(have, values, np.nan)[usable]
        return v - np.nanmean(v, axis=1, keepdims=True)

    y = centred(outcome)
    mask = np.isfinite(y)
    full = np.stack([centred(level)[mask] for level in levels], axis=1)
    norms = np.sqrt((full ** 2).sum(axis=0))
    varies = norms > 1e-9 * max(float(norms.max()), 1e-300)
    beta_all, se_all = np.zeros(full.shape[1]), np.full(full.shape[1], np.inf)
    if varies.any():
        design = full[:, varies]
        gram = design.T @ design
        if np.linalg.matrix_rank(gram) < design.shape[1]:
            return None
        inverse = np.linalg.inv(gram)
        beta = inverse @ design.T @ y[mask]
        residual = y[mask] - design @ beta
        per_row = np.zeros((y.shape[0], design.shape[1]))
        np.add.at(per_row, np.nonzero(mask)[0], design * residual[:, None])
        beta_all[varies] = beta
        se_all[varies] = np.sqrt(np.clip(np.diag(inverse @ (per_row.T @ per_row) @ inverse), 0.0, None))
    return LevelFit(beta_all, se_all, int(usable.sum()), int(mask.sum()))


def credible_weights(fit: LevelFit, z: float) -> list[float]:
    """Each level's weight clipped to [0, 1], or 0 unless credibly positive (weight - z * SE > 0);
    the first (overall) level is always kept."""
    credible = fit.coefficients - z * fit.standard_errors > 0
    return [float(np.clip(b, 0.0, 1.0)) if (credible[i] or i == 0) else 0.0 for i, b in enumerate(fit.coefficients)]


def _fit_evidence(fit: LevelFit) -> dict:
    # a level left out of the fit has no standard error (None keeps the artifact's JSON strict)
    return {"rows": fit.rows, "pairs": fit.pairs,
            "coefficients": {n: float(b) for n, b in zip(RULE_LEVELS, fit.coefficients)},
            "standard_errors": {n: float(e) if np.isfinite(e) else None for n, e in zip(RULE_LEVELS, fit.standard_errors)}}


def fit_decision_rule(score: np.ndarray, prior: np.ndarray, overall: np.ndarray, outcome: np.ndarray, *,
                      z: float = 2.0, min_rows: int = 30,
                      default_gain: Callable[[DecisionRule, DecisionRule], dict] | None = None,
                      default_z: float = DEFAULT_CHECK_Z, on_contenders: bool = True,
                      query_check_z: float = 1.96) -> DecisionRule:
    """Fit the weights from out-of-fold ``score``/``prior`` [n, K], the predicting networks'
    ``overall`` accuracies [n, K] and the outcomes [n, K] (NaN: not run): a level is kept only
    when weight - z * SE > 0 (the overall level is always kept), weights clipped to [0, 1].
    Too few rows to tell: the network's own scores.

    With ``on_contenders`` the fit is repeated on the `contender_columns` only (when they are
    at least two and not every model): the query level must be credible there, and a task
    level credible in the pooled fit keeps the contenders' weight (the pooled fit is kept in
    the evidence as "pooled"). A kept query level is dropped when its decisions on
    these rows were credibly worse than the default's or the best single model's (its mean
    below -``query_check_z`` standard errors; 1.96: `decision_gain`'s 95 % interval below 0;
    scripts/query_check_threshold.py measures other thresholds). Without a query level, the per-task default is
    kept only when it routes better than the best single model out of fold, by more than
    ``default_z`` standard errors: ``default_gain(per_task, best_single)`` (`summarize_gain`'s
    dict; default: `decision_gain` on these rows). A default that stays is the per-task best
    model exactly (``per_task_from_outcomes``)."""
    levels = rule_levels(score, prior, overall)
    outcome = np.asarray(outcome, dtype=np.float64)
    fit = fit_levels(levels, outcome, min_rows)
    if fit is None:
        return DecisionRule(evidence={"note": "too few rows, or levels not separable: the network's own scores"})
    weights = credible_weights(fit, z)
    centre = float(np.clip(np.nanmean(np.asarray(overall, dtype=np.float64)), 0.0, 1.0))
    # Weights are estimated where decisions are made: pooled over every model, real task and
    # query strengths of weak models that never reach the top lend a weight to levels that are
    # mostly noise among the few contenders, which an argmax would chase. A task level the
    # pooled fit found keeps the contenders' weight even when not credible on fewer pairs: the
    # per-task default is then judged by its decisions (below).
    evidence: dict = {"z": z, "models": int(outcome.shape[1])}
    columns = contender_columns(score, prior, overall, outcome, weights, centre) if on_contenders \
        else np.arange(outcome.shape[1])
    narrow = fit_levels([level[:, columns] for level in levels], outcome[:, columns], min_rows) \
        if 2 <= len(columns) < outcome.shape[1] else None
    if narrow is not None:
        evidence["pooled"] = _fit_evidence(fit)
        pooled_weights, fit = weights, narrow
        weights = credible_weights(narrow, z)
        # the overall level ranks every model; among contenders close to each other its
        # weight is barely identified, so it keeps the pooled fit's
        weights[0] = pooled_weights[0]
        if pooled_weights[1] > 0.0 and weights[1] == 0.0:
            weights[1] = float(np.clip(narrow.coefficients[1], 0.0, 1.0))
    evidence.update(_fit_evidence(fit), contenders=[int(c) for c in columns])
    if weights[2] > 0.0:
        # a query level enters on predicting outcomes; it stays unless its decisions were
        # credibly worse than the default's on the same rows (the 95 % interval of the gain
        # below 0), or than the best single model's: when the per-task default itself chases
        # noise, a query level can beat it and still lose to sending everything to one model.
        # One-sided: the out-of-fold networks saw fewer rows than the final ones, so a merely
        # uncertain gain keeps the level.
        full = DecisionRule(*weights, centre=centre)
        default = DecisionRule(weights[0], weights[1], 0.0, centre=centre)
        best_single = DecisionRule(weights[0], 0.0, 0.0, centre=centre)
        gains = {"query_decision_gain": decision_gain(score, prior, overall, outcome, full, default),
                 "query_vs_single_gain": decision_gain(score, prior, overall, outcome, full, best_single)}
        evidence.update(gains)
        if any(g["se"] is not None and g["mean"] < -query_check_z * g["se"] for g in gains.values()):
            weights[2] = 0.0
    if weights[2] == 0.0 and weights[1] > 0.0:
        # the default is a choice between the per-task best and the best single model. A task
        # level can predict outcomes credibly (weak models' task strengths are real) and still
        # lose decisions: among the few models that contend for the top, per-task estimates can
        # be mostly noise that an argmax chases. So the per-task default must win out of fold.
        # The default is then the per-task best model itself, read from each model's unsmoothed
        # per-task outcomes (task weight 1): smoothing an incumbent's hundred-odd rows a task,
        # or shrinking its task deviation by a least-squares weight, only moves it off the
        # per-task best (on BLINK 61.39 % against 61.49 %, `bench router --folds 5 --seeds 2`).
        weights[1] = 1.0
        per_task = DecisionRule(weights[0], 1.0, 0.0, centre=centre, per_task_from_outcomes=True)
        single = DecisionRule(weights[0], 0.0, 0.0, centre=centre)
        if default_gain is None:
            gain = decision_gain(score, prior, overall, outcome, per_task, single)
        else:
            gain = default_gain(per_task, single)
        evidence["task_decision_gain"] = gain
        evidence["default_z"] = default_z
        if not gain["mean"] > default_z * (gain["se"] or 0.0):
            weights[1] = 0.0
    return DecisionRule(*weights, centre=centre, per_task_from_outcomes=True, evidence=evidence)


CONTENDER_SHARE = 0.01


def contender_columns(score: np.ndarray, prior: np.ndarray, overall: np.ndarray, outcome: np.ndarray,
                      weights: list[float], centre: float, share: float = CONTENDER_SHARE) -> np.ndarray:
    """Sorted columns of the models that contend for the top: the best single model and every
    model that ``weights``' rule or its per-task default picks on at least ``share`` of the rows
    (among the models each row has an outcome for)."""
    outcome = np.asarray(outcome, dtype=np.float64)
    k = outcome.shape[1]
    overall_mean = np.nanmean(np.broadcast_to(np.asarray(overall, dtype=np.float64), outcome.shape), axis=0)
    columns = {int(np.nanargmax(overall_mean))} if np.isfinite(overall_mean).any() else set()
    for rule in (DecisionRule(*weights, centre=centre), DecisionRule(weights[0], weights[1], 0.0, centre=centre)):
        pick = routed_picks(score, prior, overall, outcome, rule)
        counts = np.bincount(pick[pick >= 0], minlength=k)
        columns |= set(np.flatnonzero(counts >= share * max(len(pick), 1)).tolist())
    return np.array(sorted(columns), dtype=np.int64)


def routed_picks(score: np.ndarray, prior: np.ndarray, overall: np.ndarray, outcome: np.ndarray,
                 rule: DecisionRule, measured: np.ndarray | None = None) -> np.ndarray:
    """Column ``rule`` picks on each row of ``outcome`` [n, K] that has an outcome (NaN: not
    run), among the models that row has outcomes for (``measured``: see `decision_scores`)."""
    have = np.isfinite(outcome)
    rows = have.any(axis=1)
    return choose(utility(decision_scores(score, prior, overall, rule, measured=measured)[rows], have[rows]))


def decision_differences(score: np.ndarray, prior: np.ndarray, overall: np.ndarray, outcome: np.ndarray,
                         rule: DecisionRule, baseline: DecisionRule, measured: np.ndarray | None = None) -> np.ndarray:
    """[n] routed outcome of ``rule`` minus ``baseline`` per row of ``outcome`` [n, K] (NaN: not
    run; each row routes among the models it has an outcome for; NaN for a row with none)."""
    outcome = np.asarray(outcome, dtype=np.float64)
    rows = np.isfinite(outcome).any(axis=1)
    diff = np.full(outcome.shape[0], np.nan)

    def routed_outcome(r: DecisionRule) -> np.ndarray:
        picks = routed_picks(score, prior, overall, outcome, r, measured)
        return outcome[rows][np.arange(int(rows.sum())), picks]

    diff[rows] = routed_outcome(rule) - routed_outcome(baseline)
    return diff


def summarize_gain(diff: np.ndarray) -> dict:
    """Mean of per-row differences, its standard error and normal 95 % interval, rows used."""
    d = np.asarray(diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    n = len(d)
    mean = float(d.mean()) if n else 0.0
    if n < 2:  # no spread to measure (None keeps the artifact's JSON strict)
        return {"mean": mean, "se": None, "ci95": None, "rows": int(n)}
    se = float(d.std(ddof=1) / np.sqrt(n))
    return {"mean": mean, "se": se, "ci95": [mean - 1.96 * se, mean + 1.96 * se], "rows": int(n)}


def decision_gain(score: np.ndarray, prior: np.ndarray, overall: np.ndarray, outcome: np.ndarray,
                  rule: DecisionRule, baseline: DecisionRule) -> dict:
    """`summarize_gain` of `decision_differences`: how much better ``rule`` routes these rows."""
    return summarize_gain(decision_differences(score, prior, overall, outcome, rule, baseline))
