"""The router the services use: train, predict, route, add a model's token.

    router = train_router(table)                       # or train_router(data, spec, ...)
    pred = router.predict(router.featurize(queries), models=["a", "b"])
    decision = router.route(X, models=[...], policy=Policy(lambda_cost=0.3), costs={...})
    save_router(router, directory);  router = load_router(directory)   # lrcal.router.artifacts

A `Router` holds an ensemble of identically shaped networks (members) and a token bank: one
`ModelCard` (`lrcal.router.cards`) per model (profile vector, per-task accuracy, a learned residual per member or
none). Scoring any subset of the bank -- including models added after training -- is masking
only; nothing depends on the training pool size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch

from lrcal.errors import LrcalError, UsageError
from lrcal.features import FeatureSpec, Query, featurize, fit_feature_spec
from lrcal.router.cards import ModelCard, card_problem
from lrcal.router.config import RouterConfig
from lrcal.router.linear_head import LINEAR_L2, blend, choose_blend, fit_linear_heads, head_probabilities
from lrcal.router.loss import router_loss
from lrcal.router.network import LatentRouterNet, parameter_count, with_task_bias
from lrcal.router.policy import (DecisionRule, Policy, decision_differences, decision_scores, fit_decision_rule,
                                 policy_choice, scale_unmeasured, summarize_gain)
from lrcal.router.profiles import (MIN_DECISION_ROWS, ONBOARDED_MIN_ROWS, ProfilePrior, compute_profiles,
                                   fit_profile_prior, measured_share, outcome_task_accuracy, task_outcome_counts,
                                   task_rows_from_profiles)
from lrcal.router.train import FittedNet, RouterData, fit_network, task_ids_for


@dataclass
class Prediction:
    models: list[str]
    mu: np.ndarray  # [N, K] ensemble means
    sigma: np.ndarray
    delta: np.ndarray
    # the quality estimate every decision uses: the network's score weighted by the router's
    # decision rule (`lrcal.router.policy.DecisionRule`; the network's score when it is the identity)
    score: np.ndarray
    prior: np.ndarray  # the profile prior (the model's smoothed accuracy on the query's task)
    available: np.ndarray  # [N, K] bool
    network_score: np.ndarray | None = None  # mu_tilde = clip(mu + delta, 0, 1), before the rule
    # ``score`` before a model not measured on the query's task is scaled to a tie-breaker, and
    # that measured share (`policy.scale_unmeasured`; None: every model counts as measured):
    # a decision among a subset of ``models`` rescales with the subset as its pool
    unscaled_score: np.ndarray | None = None
    measured_share: np.ndarray | None = None
    p_task: np.ndarray | None = None  # [N, V + 1] the task distribution the prior used


@dataclass
class Decision:
    models: list[str]
    choice: np.ndarray  # [N] index into models, -1 = none available
    utility: np.ndarray  # [N, K]
    prediction: Prediction
    expected_cost: np.ndarray | None
    expected_latency: np.ndarray | None

    @property
    def chosen(self) -> list[str | None]:
        return [self.models[i] if i >= 0 else None for i in self.choice]


def _mean_or_none(values: np.ndarray | None, column: int, rows: np.ndarray) -> float | None:
    if values is None:
        return None
    v = values[rows, column]
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None


@dataclass
class Router:
    config: RouterConfig
    spec: FeatureSpec
    members: list[LatentRouterNet]
    cards: dict[str, ModelCard]
    info: dict = field(default_factory=dict)  # training data hash, metrics, timings, ...
    # how every profile of this router smooths per-task accuracy (fitted with it, frozen with it)
    profile_prior: ProfilePrior = field(default_factory=ProfilePrior)
    # how much of each level of the network's score a decision trusts (fitted with it)
    decision_rule: DecisionRule = field(default_factory=DecisionRule)
    # the out-of-fold predictions its rule was fitted on (`train_router(keep_cross_fit=True)`)
    cross_fit: "CrossFit | None" = field(default=None, repr=False, compare=False)

    # ---- bank ---------------------------------------------------------------------------
    @property
    def models(self) -> list[str]:
        return list(self.cards)

    @property
    def hidden(self) -> int:
        return self.config.hidden

    def parameter_count(self) -> int:
        """Parameters of one network (the ensemble repeats it ``len(members)`` times)."""
        return parameter_count(self.members[0])

    def _cards(self, models: Sequence[str] | None) -> list[ModelCard]:
        names = self.models if models is None else list(models)
        if not names:
            raise UsageError("no models to score")
        missing = [m for m in names if m not in self.cards]
        if missing:
            raise LrcalError(f"model(s) not known to this router: {', '.join(missing)} (known: {', '.join(self.models)})")
        if len(set(names)) != len(names):
            raise UsageError("a model is listed twice")
        return [self.cards[m] for m in names]

    def profile_from_outcomes(
        self,
        task_ids: np.ndarray,
        scores: np.ndarray,
        *,
        output_tokens: np.ndarray | None = None,
        latency_ms: np.ndarray | None = None,
        cost_usd: np.ndarray | None = None,
        errors: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(profile [P], task_accuracy [V+1]) of one model from its outcomes on some rows
        (scores [n]; task_ids from `task_ids_for(router.spec, tasks)`)."""
        col = lambda a: None if a is None else np.asarray(a, dtype=float).reshape(-1, 1)  # noqa: E731
        prof = compute_profiles(
            np.asarray(task_ids), len(self.spec.task_vocab), col(scores),
            output_tokens=col(output_tokens), latency_ms=col(latency_ms), cost_usd=col(cost_usd),
            errors=None if errors is None else np.asarray(errors, dtype=bool).reshape(-1, 1),
            smoothing=self.profile_prior.strength, task_offsets=self.profile_prior.offsets(len(self.spec.task_vocab)),
            task_weights=self.traffic_task_mix(),
        )
        return prof.vectors[0], prof.task_accuracy[0]

    def traffic_task_mix(self) -> np.ndarray | None:
        """[V] the task mix of the rows the router was trained on (its trained models' rows per
        task, summed), the traffic a newcomer's overall accuracy is stated for; None without
        tasks or trained models."""
        trained = [name for name, card in self.cards.items() if card.source == "trained"]
        n_tasks = len(self.spec.task_vocab)
        if not trained or n_tasks == 0:
            return None
        mix = self.task_rows(trained)[:, :n_tasks].sum(0)
        return mix if np.isfinite(mix).all() and mix.sum() > 0 else None

    def add_model(self, card: ModelCard) -> None:
        """Add or replace a model in the token bank (incumbent routes may change: re-check them)."""
        problem = card_problem(card, profile_dim=self.members[0].profile_encoder.net[0].in_features,
                               tasks=len(self.spec.task_vocab), members=len(self.members), hidden=self.hidden,
                               feature_dim=self.spec.dim)
        if problem:
            raise LrcalError(f"model card '{card.name}' has {problem} for this router")
        self.cards[card.name] = card

    def remove_model(self, name: str) -> None:
        self.cards.pop(name, None)

    # ---- differentiable pieces (onboarding uses these with every router weight frozen) ----
    def tokens(self, models: Sequence[str] | None = None, member: int = 0, residuals: bool = True) -> torch.Tensor:
        """[K, H] capability tokens: encoder(profile) + residual (no grad)."""
        cards = self._cards(models)
        net = self.members[member]
        with torch.no_grad():
            tok = net.encode_profiles(torch.as_tensor(np.stack([c.profile for c in cards]), dtype=torch.float32))
            if residuals:
                res = [c.residuals[member] if c.residuals is not None else np.zeros(self.hidden, np.float32) for c in cards]
                tok = tok + torch.as_tensor(np.stack(res), dtype=torch.float32)
        return tok

    def task_bias(self, models: Sequence[str] | None = None) -> torch.Tensor | None:
        """[K, V + 1] per-task logit offsets of these models (None when no card has one)."""
        cards = self._cards(models)
        if all(c.task_bias is None for c in cards):
            return None
        zeros = np.zeros(len(self.spec.task_vocab) + 1, dtype=np.float32)
        return torch.as_tensor(np.stack([zeros if c.task_bias is None else c.task_bias for c in cards]),
                               dtype=torch.float32)

    def task_rows(self, models: Sequence[str] | None = None) -> np.ndarray:
        """[K, V + 1] rows behind each card's per-task accuracy (read back from its profile)."""
        return task_rows_from_profiles(np.stack([c.profile for c in self._cards(models)]))

    def forward(self, member: int, x: torch.Tensor, tokens: torch.Tensor, task_accuracy: torch.Tensor,
                available: torch.Tensor) -> dict[str, torch.Tensor]:
        """One member's forward; differentiable w.r.t. ``tokens`` (the caller freezes weights)."""
        return self.members[member](x, tokens, task_accuracy, available)

    def loss(self, out: dict[str, torch.Tensor], y: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        """The router's own training loss on these rows (task CE excluded)."""
        total, _ = router_loss(out, y, available, self.config, None)
        return total

    # ---- inference ----------------------------------------------------------------------
    def featurize(self, queries: Sequence[Query]) -> np.ndarray:
        return featurize(self.spec, queries)

    @torch.no_grad()
    def predict(self, X: np.ndarray, models: Sequence[str] | None = None, available: np.ndarray | None = None,
                batch_size: int = 1024) -> Prediction:
        cards = self._cards(models)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.spec.dim:
            raise LrcalError(f"features have shape {X.shape}, this router expects [N, {self.spec.dim}]")
        n, k = X.shape[0], len(cards)
        avail = np.ones((n, k), dtype=bool) if available is None else np.asarray(available, dtype=bool)
        if avail.shape != (n, k):
            raise LrcalError(f"availability mask has shape {avail.shape}, expected ({n}, {k})")
        ta = torch.as_tensor(np.stack([c.task_accuracy for c in cards]), dtype=torch.float32)
        bias = self.task_bias([c.name for c in cards])
        sums = {key: np.zeros((n, k), dtype=np.float64) for key in ("mu", "sigma", "delta", "score", "prior")}
        sums["p_task"] = np.zeros((n, len(self.spec.task_vocab) + 1), dtype=np.float64)
        for member, net in enumerate(self.members):
            net.eval()
            tokens = self.tokens([c.name for c in cards], member)
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                out = net(torch.as_tensor(X[sl]), tokens, ta, torch.as_tensor(avail[sl]))
                if bias is not None:
                    out["mu"], out["score"] = with_task_bias(out["mu_logit"], out["delta"], out["p_task"], bias)
                for key in sums:
                    sums[key][sl] += out[key].numpy()
        e = float(len(self.members))
        means = {k_: v / e for k_, v in sums.items()}
        names = [c.name for c in cards]
        return Prediction(models=names, available=avail, **self.with_decision_scores(means, names, X))

    def overall_accuracy(self, names: Sequence[str]) -> np.ndarray:
        """[K] each model's smoothed overall accuracy (its card), the decision rule's overall level."""
        return np.asarray([self.cards[n].task_accuracy[-1] for n in names], dtype=np.float64)

    def decision_levels(self, names: Sequence[str]) -> np.ndarray:
        """[K, V + 1] each model's per-task default level (`ModelCard.decision_level`)."""
        return np.stack([np.asarray(self.cards[n].decision_level(), dtype=np.float64) for n in names])

    def with_decision_scores(self, means: dict[str, np.ndarray], names: Sequence[str], X: np.ndarray,
                             heads: "tuple[np.ndarray, np.ndarray] | None" = None) -> dict[str, np.ndarray]:
        """``means`` (ensemble means with "score" = μ̃, "prior" and "p_task", the task
        distribution the prior used) of the queries ``X`` [N, D] with "mu" and μ̃ blended with
        the models' linear heads (`blend_linear_heads`; ``heads``: `linear_heads(names)` computed
        once by a caller that scores one pool many times), "network_score" = that μ̃ and "score"
        = the decision rule's score, what every decision uses."""
        self.blend_linear_heads(means, names, X, heads)
        means["network_score"] = means["score"]
        estimate, measured = self.rule_estimates(means["score"], means["prior"], self.overall_accuracy(names), names,
                                                 means["p_task"])
        means["unscaled_score"], means["measured_share"] = estimate, measured
        means["score"] = estimate if measured is None else scale_unmeasured(estimate, measured)
        return means

    def rule_estimates(self, score: np.ndarray, prior: np.ndarray, overall: np.ndarray, names: Sequence[str],
                       p_task: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(the decision rule's estimates before unmeasured models are scaled down, their
        `measured` share) of the models ``names`` from the network's (blended) μ̃ ``score``, the
        prior's level and the overall level on queries of task distribution ``p_task``."""
        estimate = decision_scores(score, prior, overall, self.decision_rule,
                                   task_level=p_task @ self.decision_levels(names).T)
        return estimate, self.measured(names, p_task)

    def measured(self, names: Sequence[str], p_task: np.ndarray) -> np.ndarray | None:
        """[N, K] `measured_share` of the models of ``names`` on queries of task distribution
        ``p_task`` [N, V + 1]; None when no card knows its per-task outcome counts."""
        counts = [self.cards[n].task_rows for n in names]
        if all(c is None for c in counts):
            return None
        width = p_task.shape[1]
        rows = np.stack([np.full(width, np.nan) if c is None else np.asarray(c, dtype=np.float64) for c in counts])
        # an onboarded model's rows were judged by its token fit and the gate: one outcome on a
        # task measures it there; none does not (`calibration_task_rows`)
        min_rows = np.array([ONBOARDED_MIN_ROWS if self.cards[n].source == "onboarded" else MIN_DECISION_ROWS
                             for n in names], dtype=np.float64)
        return measured_share(p_task, rows, min_rows)

    def linear_heads(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """(columns, [D + 1, k] float64 heads) of the models of ``names`` whose card has a linear
        head, or None when the rule does not blend or none has one."""
        columns = [j for j, n in enumerate(names) if self.cards[n].linear is not None]
        if self.decision_rule.linear_weight <= 0.0 or not columns:
            return None
        heads = np.stack([np.asarray(self.cards[names[j]].linear, dtype=np.float64) for j in columns], axis=1)
        return np.asarray(columns, dtype=np.int64), heads

    def blend_linear_heads(self, means: dict[str, np.ndarray], names: Sequence[str], X: np.ndarray,
                           heads: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Blend "mu" and "score" [N, K] of the models whose card has a linear head with the
        head's probability on ``X`` at the rule's ``linear_weight`` (in place; the others keep
        the network's)."""
        heads = self.linear_heads(names) if heads is None else heads
        if heads is None:
            return
        columns, weights = heads
        linear = head_probabilities(X, weights)
        for key in ("mu", "score"):
            means[key][:, columns] = blend(means[key][:, columns], linear, self.decision_rule.linear_weight)

    def route(
        self,
        X: np.ndarray,
        models: Sequence[str] | None = None,
        policy: Policy = Policy(),
        *,
        available: np.ndarray | None = None,
        expected_cost: np.ndarray | dict[str, float] | None = None,
        expected_latency: np.ndarray | dict[str, float] | None = None,
    ) -> Decision:
        """Pick a model per query. Expected cost / latency default to each card's calibration
        statistics; pass a dict per model or a [K] / [N, K] array to override (prices x
        expected tokens). Never pass realized per-query values."""
        pred = self.predict(X, models, available)
        cards = self._cards(pred.models)

        def resolve(given, attr: str) -> np.ndarray | None:
            if given is None:
                values = [getattr(c, attr) for c in cards]
                if all(v is None for v in values):
                    return None
                return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
            if isinstance(given, dict):
                return np.asarray([given.get(c.name, np.nan) for c in cards], dtype=np.float64)
            return np.asarray(given, dtype=np.float64)

        cost = resolve(expected_cost, "expected_cost_usd")
        latency = resolve(expected_latency, "expected_latency_ms")
        decided = policy_choice(pred.score, pred.available, policy, sigma=pred.sigma, expected_cost=cost,
                                expected_latency=latency)
        return Decision(models=pred.models, choice=decided.choice, utility=decided.utility, prediction=pred,
                        expected_cost=cost, expected_latency=latency)


# ---- training ---------------------------------------------------------------------------

DEFAULT_ENSEMBLE = 3
DEFAULT_VAL_FRACTION = 0.125


def cards_from_data(data: RouterData, rows: np.ndarray, cfg: RouterConfig, spec: FeatureSpec,
                fitted: Sequence[FittedNet] | None, prior: ProfilePrior | None = None) -> dict[str, ModelCard]:
    prof = data.profiles(rows, len(spec.task_vocab), prior or ProfilePrior(strength=cfg.profile_smoothing))
    outcomes = outcome_task_accuracy(data.task_ids, len(spec.task_vocab), data.scores, rows, prof.task_accuracy)
    counts = task_outcome_counts(data.task_ids, len(spec.task_vocab), data.scores, rows)
    cards = {}
    for i, m in enumerate(data.models):
        have = rows[np.isfinite(data.scores[rows, i])]
        cards[m] = ModelCard(
            name=m,
            profile=prof.vectors[i].copy(),
            task_accuracy=prof.task_accuracy[i].copy(),
            decision_accuracy=outcomes[i].copy(),
            task_rows=counts[i].copy(),
            n_rows=int(prof.rows[i]),
            residuals=[f.residuals[m].astype(np.float32) for f in fitted] if fitted else None,
            source="trained" if fitted else "profile",
            expected_output_tokens=_mean_or_none(data.output_tokens, i, have),
            expected_latency_ms=_mean_or_none(data.latency_ms, i, have),
            expected_cost_usd=_mean_or_none(data.cost_usd, i, have),
        )
    return cards


def _validation_split(data: RouterData, rows: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 7919)
    train, val = [], []
    tasks = data.task_ids[rows]
    for t in np.unique(tasks):
        idx = rng.permutation(rows[tasks == t])
        n_val = int(round(fraction * len(idx))) if len(idx) >= 4 else 0
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def profile_prior_for(data: RouterData, spec: FeatureSpec, cfg: RouterConfig, rows: np.ndarray) -> ProfilePrior:
    """The profile prior a router trained on ``rows`` uses (see `fit_profile_prior`)."""
    if cfg.profile_prior == "fixed":
        return ProfilePrior(strength=cfg.profile_smoothing)
    return fit_profile_prior(data.task_ids, len(spec.task_vocab), data.scores, rows)


def train_router(
    data: RouterData,
    spec: FeatureSpec,
    config: RouterConfig | None = None,
    *,
    rows: np.ndarray | None = None,
    train_rows: np.ndarray | None = None,
    val_rows: np.ndarray | None = None,
    seed: int = 0,
    ensemble: int = DEFAULT_ENSEMBLE,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    progress: Callable[[str], None] | None = None,
    epochs: tuple[int, int] | None = None,
    decision_rule: DecisionRule | None = None,
    cross_fit: "CrossFit | None" = None,
    keep_cross_fit: bool = False,
) -> Router:
    """Train the shared router on ``rows`` (default all rows).

    1. Split off a validation part (stratified by task) unless ``train_rows``/``val_rows``
       are given; 2. train with early stopping on validation: the number of epochs of each
       phase is chosen there; 3. refit ``ensemble`` members with different seeds on train +
       validation for the chosen epochs; the token bank's profiles use all those rows;
       4. fit the decision rule on out-of-fold predictions inside those rows
       (`cross_fitted_predictions`, `rule_from_cross_fit`).
    ``epochs`` (warm-up, latent) skips step 2 and refits for exactly that many epochs, and
    ``decision_rule`` skips step 4, and ``cross_fit`` (out-of-fold predictions of ``data``'s
    models on the same rows, `CrossFit.select`) fits the rule on them instead of training the
    fold networks: the cold-start benchmark reuses one validated schedule, and the fold's
    full-pool predictions, for the routers of a fold. ``keep_cross_fit`` keeps the predictions
    step 4 fitted the rule on with the router (``router.cross_fit``, not saved with it).
    """
    cfg = config or RouterConfig()
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    if train_rows is None or val_rows is None:
        base_rows = np.arange(data.scores.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        train_rows, val_rows = _validation_split(data, base_rows, val_fraction, seed)
    train_rows = np.asarray(train_rows, dtype=np.int64)
    val_rows = np.asarray(val_rows, dtype=np.int64)
    all_rows = np.sort(np.concatenate([train_rows, val_rows]))
    if len(train_rows) < 8:
        raise LrcalError(f"router training needs at least 8 training rows (got {len(train_rows)})")
    chosen = cfg
    prior = profile_prior_for(data, spec, cfg, all_rows)
    if epochs is not None:
        best_fit, best_loss = None, float("nan")
    elif len(val_rows):
        best_fit = fit_network(data, spec, cfg, train_rows, val_rows, seed=seed, prior=prior)
        best_loss = min((h["val_loss"] for h in best_fit.history if "val_loss" in h), default=float("nan"))
        say(f"validation run: val loss {best_loss:.4f}, epochs {best_fit.phase_epochs}, {best_fit.seconds:.1f}s")
    else:  # nothing to validate on (tiny data): fixed, short schedule
        best_fit, best_loss = None, float("nan")
    if epochs is None:
        warm_epochs, latent_epochs = best_fit.phase_epochs if best_fit is not None else (30, 0)
        # more rows per epoch after the refit: keep the number of optimizer steps comparable
        scale = len(train_rows) / max(len(all_rows), 1)
        epochs = (max(1, int(round(warm_epochs * scale))), int(round(latent_epochs * scale)))
    members: list[FittedNet] = []
    for e in range(ensemble):
        members.append(fit_network(data, spec, chosen, all_rows, None, seed=seed * 1000 + e + 1, epochs=epochs,
                                   prior=prior))
        say(f"member {e + 1}/{ensemble}: {members[-1].seconds:.1f}s")
    cards = cards_from_data(data, all_rows, chosen, spec, members, prior)
    kept = None
    if decision_rule is None:
        rule_started = time.perf_counter()
        if cross_fit is not None:
            if not np.array_equal(cross_fit.rows, all_rows):
                raise LrcalError("the cross-fitted predictions are of other rows than this router's training rows")
        else:
            cross_fit = cross_fitted_predictions(data, spec, chosen, all_rows, epochs, prior, seed)
        decision_rule = DecisionRule() if cross_fit is None else rule_from_cross_fit(cross_fit, data, spec, chosen,
                                                                                     prior, seed)
        kept = cross_fit
        say(f"decision rule: {decision_rule.describe()} ({time.perf_counter() - rule_started:.1f}s)")
    attach_linear_heads(cards, data, all_rows, decision_rule)
    router = Router(config=chosen, spec=spec, members=[m.net for m in members], cards=cards, profile_prior=prior,
                    decision_rule=decision_rule, cross_fit=kept if keep_cross_fit else None)
    router.info = {
        "train_rows": int(len(train_rows)),
        "val_rows": int(len(val_rows)),
        "models": list(data.models),
        "val_loss": float(best_loss),
        "epochs": {"warmup": epochs[0], "latent": epochs[1]},
        "ensemble": ensemble,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
        "parameters": parameter_count(members[0].net),
        "profile_prior": {k: v for k, v in prior.to_dict().items() if k != "task_offsets"},
        "decision_rule": decision_rule.to_dict(),
    }
    return router


@dataclass
class CrossFit:
    """Out-of-fold predictions inside a router's training rows (`cross_fitted_predictions`):
    for each row, the scores of the network trained on the other folds. A router over a subset
    of the models can fit its decision rule on their columns (`select`) without new networks."""

    rows: np.ndarray  # [n] the data rows predicted
    score: np.ndarray  # [n, K] the network's μ̃ (NaN: the row's fold was skipped)
    level: np.ndarray  # [n, K] the profile prior's level
    overall: np.ndarray  # [n, K] the fold router's overall accuracy
    linear: dict[float, np.ndarray]  # L2 -> [n, K] the linear heads' probabilities
    models: list[str]
    folds: int
    p_task: np.ndarray  # [n, V + 1] the task distribution the fold network read

    def select(self, columns: Sequence[int]) -> "CrossFit":
        cols = np.asarray(columns, dtype=np.int64)
        return CrossFit(self.rows, self.score[:, cols], self.level[:, cols], self.overall[:, cols],
                        {l2: v[:, cols] for l2, v in self.linear.items()}, [self.models[i] for i in cols], self.folds,
                        self.p_task)

    def decision_scores(self, router: "Router", rows: np.ndarray) -> np.ndarray:
        """[len(rows), K] the decision scores ``router`` (over these models, with its own rule and
        cards) gives the data rows ``rows`` (a subset of ``self.rows``) from their out-of-fold
        network scores: what it would say of queries it was not trained on."""
        at = np.searchsorted(self.rows, rows)
        if np.any(at >= len(self.rows)) or not np.array_equal(self.rows[np.minimum(at, len(self.rows) - 1)], rows):
            raise LrcalError("rows outside the cross-fitted predictions")
        rule, score = router.decision_rule, self.score[at]
        if rule.linear_weight > 0.0 and rule.linear_l2 in self.linear:
            score = blend(score, self.linear[rule.linear_l2][at], rule.linear_weight)
        estimate, measured = router.rule_estimates(score, self.level[at], self.overall[at], self.models, self.p_task[at])
        return estimate if measured is None else scale_unmeasured(estimate, measured)


def cross_fitted_predictions(data: RouterData, spec: FeatureSpec, cfg: RouterConfig, rows: np.ndarray,
                             epochs: tuple[int, int], prior: ProfilePrior, seed: int) -> CrossFit | None:
    """``cfg.decision_folds`` folds of ``rows`` (stratified by task), one network per fold
    trained on the others with the router's own schedule and profile prior, its scores on the
    held-out fold; with ``cfg.linear_head`` the per-model linear heads on the same folds (one per
    L2 of `LINEAR_L2`). None when there are too few rows for the folds."""
    folds = cfg.decision_folds
    if folds < 2 or len(rows) < 2 * folds:
        return None
    fold_of = task_folds(data.task_ids[rows], folds, np.random.default_rng(seed + 104729))
    n, k = len(rows), data.n_models
    score, level, overall = (np.full((n, k), np.nan) for _ in range(3))
    p_task = np.full((n, len(spec.task_vocab) + 1), np.nan)
    linear = {l2: np.full((n, k), np.nan) for l2 in (LINEAR_L2 if cfg.linear_head else ())}
    for f in range(folds):
        held = np.flatnonzero(fold_of == f)
        inner = rows[fold_of != f]
        if not len(held) or len(inner) < 8:
            continue
        fitted = fit_network(data, spec, cfg, inner, None, seed=seed * 1000 + 900 + f, epochs=epochs, prior=prior)
        fold_router = Router(config=cfg, spec=spec, members=[fitted.net],
                             cards=cards_from_data(data, inner, cfg, spec, [fitted], prior), profile_prior=prior)
        pred = fold_router.predict(data.X[rows[held]], models=data.models)
        score[held], level[held], p_task[held] = pred.network_score, pred.prior, pred.p_task
        overall[held] = fold_router.overall_accuracy(data.models)
        for l2, values in linear.items():
            values[held] = head_probabilities(data.X[rows[held]], fit_linear_heads(data.X[inner], data.scores[inner], l2))
    return CrossFit(np.asarray(rows, dtype=np.int64), score, level, overall, linear, list(data.models), folds, p_task)


def rule_from_cross_fit(cross_fit: CrossFit, data: RouterData, spec: FeatureSpec, cfg: RouterConfig,
                        prior: ProfilePrior, seed: int) -> DecisionRule:
    """The decision rule fitted on out-of-fold predictions of ``data``'s models (the columns of
    ``cross_fit``, in ``data.models`` order): with linear heads, the blend weight and L2 with the
    lowest out-of-fold log-loss are kept (`choose_blend`; weight 0: the network alone), and the
    rule is fitted on the blended scores (`fit_decision_rule`)."""
    if cross_fit.models != list(data.models):
        raise LrcalError(f"cross-fitted predictions are of {cross_fit.models}, the data's models are {list(data.models)}")
    rows, linear = cross_fit.rows, cross_fit.linear
    done = np.isfinite(cross_fit.score).all(axis=1)
    outcome = data.scores[rows][done]
    choice = choose_blend(cross_fit.score[done], {l2: v[done] for l2, v in linear.items()}, outcome) if linear else None
    scores = cross_fit.score[done] if choice is None else blend(cross_fit.score[done], linear[choice.l2][done], choice.weight)
    rule = fit_decision_rule(scores, cross_fit.level[done], cross_fit.overall[done], outcome, z=cfg.decision_z,
                             default_z=cfg.decision_default_z,
                             default_gain=default_gain_by_repeated_folds(data, rows, prior, len(spec.task_vocab),
                                                                         cross_fit.folds, seed))
    if rule.evidence is not None:
        rule.evidence["folds"] = cross_fit.folds
        if choice is not None:
            rule.evidence["linear_head"] = choice.evidence
    if choice is not None and choice.weight > 0.0:
        rule = replace(rule, linear_weight=choice.weight, linear_l2=choice.l2)
    return rule


def attach_linear_heads(cards: dict[str, ModelCard], data: RouterData, rows: np.ndarray, rule: DecisionRule) -> None:
    """Give every card of ``data``'s models its linear head fitted on ``rows`` at the rule's L2
    (nothing when the rule does not blend)."""
    if rule.linear_weight <= 0.0 or rule.linear_l2 is None:
        return
    heads = fit_linear_heads(data.X[rows], data.scores[rows], rule.linear_l2)
    for j, name in enumerate(data.models):
        if name in cards:
            cards[name].linear = heads[:, j].copy()


def task_folds(task_ids: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """[n] fold of each row, stratified by task (each task's rows dealt round the folds)."""
    fold_of = np.empty(len(task_ids), dtype=np.int64)
    for t in np.unique(task_ids):
        idx = rng.permutation(np.flatnonzero(task_ids == t))
        fold_of[idx] = (np.arange(len(idx)) + rng.integers(folds)) % folds
    return fold_of


DEFAULT_GAIN_REPEATS = 10


def default_gain_by_repeated_folds(data: RouterData, rows: np.ndarray, prior: ProfilePrior, n_tasks: int, folds: int,
                                   seed: int, repeats: int = DEFAULT_GAIN_REPEATS):
    """``default_gain`` for `fit_decision_rule`: without a query level a decision reads only
    the cards (overall accuracy, per-task outcomes), which outcomes alone give, so the
    per-task default is compared with the best single model over ``repeats`` random K-fold
    splits of ``rows`` instead of the one split the networks had: each row's difference is
    averaged over the repeats before the mean and its standard error are taken."""
    y = data.scores[rows]
    task_ids = data.task_ids[rows]

    def gain(per_task: DecisionRule, single: DecisionRule) -> dict:
        rng = np.random.default_rng(seed + 7777)
        total, count = np.zeros(len(rows)), np.zeros(len(rows))
        for _ in range(repeats):
            fold_of = task_folds(task_ids, folds, rng)
            for f in range(folds):
                held = np.flatnonzero(fold_of == f)
                if not len(held):
                    continue
                fit = rows[fold_of != f]
                # the cards' overall accuracy (the best single model) and the unsmoothed per-task
                # outcomes (the per-task best), as the final cards give them
                accuracy = data.profiles(fit, n_tasks, prior).task_accuracy  # [K, V + 1]
                level = outcome_task_accuracy(data.task_ids, n_tasks, data.scores, fit, accuracy)[:, task_ids[held]].T
                overall = np.broadcast_to(accuracy[:, -1], level.shape)
                # as the final cards decide: a model hardly run on a task does not win it
                measured = measured_share(np.eye(n_tasks + 1)[task_ids[held]],  # a labelled row: one task
                                          task_outcome_counts(data.task_ids, n_tasks, data.scores, fit))
                diff = decision_differences(level, level, overall, y[held], per_task, single, measured)
                ok = np.isfinite(diff)
                total[held[ok]] += diff[ok]
                count[held[ok]] += 1
        per_row = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return {**summarize_gain(per_row), "repeats": repeats, "folds": folds}

    return gain


def train_router_from_table(table, config: RouterConfig | None = None, *, seed: int = 0, ensemble: int = DEFAULT_ENSEMBLE,
                            progress: Callable[[str], None] | None = None, X: np.ndarray | None = None,
                            spec: FeatureSpec | None = None) -> Router:
    """Fit the feature spec on the table, featurize it, train; records the data hash."""
    spec = spec or fit_feature_spec(table.tasks, table.metadata)
    data = RouterData.from_table(table, spec, X)
    router = train_router(data, spec, config, seed=seed, ensemble=ensemble, progress=progress)
    router.info["training_data_sha256"] = table.content_hash()
    router.info["dataset"] = table.name
    return router
