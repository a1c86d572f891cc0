"""Router hyper-parameters (saved in the artifact sidecar)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from lrcal.errors import LrcalError


@dataclass(frozen=True)
class RouterConfig:
    # network
    hidden: int = 32  # H: width of capsules and model tokens
    query_tokens: int = 4  # T
    capsules: int = 4  # C
    layers: int = 2  # L latent-communication layers
    heads: int = 4
    ffn_mult: int = 2
    dropout: float = 0.0
    input_dropout: float = 0.2
    correction_bound: float = 0.05  # b in delta = b * tanh(.)
    readback_temperature: float = 0.25  # capsules read model tokens weighted by softmax(score / this)
    sigma_min: float = 0.02
    # parts of the LatentRouter, each of which `lrcal bench router --ablate` flips
    # latent communication between models: tokens attend to each other, capsules read them back
    # (off: one model's token never moves another model's score). Off by default: a model's
    # correctness on a query does not depend on which other models are in the pool, trained
    # routers moved other models' scores by <= 2e-5 when one token was multiplied by -5, and
    # without it a batch-1 forward is ~5x and training ~2.5x faster (docs/router.md, ablations)
    model_communication: bool = False
    capsule_path: bool = True  # routing capsules and the latent layers (off: the linear warm-up network)
    affinity: bool = True  # the direct query x capability-token affinity term
    prior_logit: bool = True  # the profile prior's logit in mu (the model's smoothed task accuracy)
    # per-model linear heads blended with the network's score, at a weight (0 included) and L2
    # chosen on the decision rule's out-of-fold predictions (lrcal.router.linear_head). Off by
    # default: they lifted MathVista's routing (37.30 -> 37.70 %) but an onboarded model has no
    # head, and cold start got worse against the sharper incumbents (MathVista adaptive gain at
    # k = 64 0.19 -> -0.35, harm 0.0016 -> 0.0022; zoo 0.897 -> 0.857; docs/router.md)
    linear_head: bool = False
    # profiles
    # "auto": the per-task smoothing (centre and strength) is chosen at training time by simulated
    # cold starts of the training models (profiles.fit_profile_prior) and saved with the router;
    # "fixed": centred on the overall accuracy with strength profile_smoothing
    profile_prior: str = "auto"
    profile_smoothing: float = 4.0  # Beta prior strength for profile_prior="fixed"
    profile_rows_min: int = 32
    profile_rows_max: int = 128
    full_profile_prob: float = 0.5  # episodes that draw the profile from all of the model's other rows
    residual_dropout: float = 0.5  # episodes in which a model's learned residual is hidden (profile-only token)
    task_dropout: float = 0.2  # rows whose task label is hidden (router must work without it)
    # the decision rule (lrcal.router.policy.DecisionRule): fitted on out-of-fold predictions of
    # this many folds inside the training rows (0: decide on the network's own scores); a level
    # of the score enters a decision only when its weight exceeds decision_z standard errors
    decision_folds: int = 4
    decision_z: float = 2.0
    # without a query level, the per-task best model is kept over the best single model only when
    # its repeated-fold gain exceeds this many standard errors (docs/router.md, step 6)
    decision_default_z: float = 0.5
    # training
    lr: float = 5e-3  # warm-up phase (no latent path)
    latent_lr: float = 1e-3  # full network
    warmup_max_steps: int = 2000  # optimizer-step budgets: epochs = budget / steps per epoch
    warmup_patience: int = 20  # epochs
    weight_decay: float = 1e-3
    residual_l2: float = 1e-3
    # explicit L2 on the query-side input projections (sum of squares); at 3e-2 (with the
    # calibrated ranking temperatures below) the query path no longer learned a per-question
    # effect (tests/test_router.py::test_router_learns_from_the_question); 3e-4 rather than
    # 1e-3 since the decision rule discounts per-query effects that do not hold out of fold
    # (docs/router.md: MathVista +2 points, BLINK unchanged)
    query_l2: float = 3e-4
    batch_size: int = 64
    latent_max_steps: int = 400
    patience: int = 6  # epochs
    early_stop_metric: str = "loss"  # "loss" (the whole mix) or "bce" (log-loss of mu) on validation
    grad_clip: float = 5.0
    ema_decay: float = 0.95  # evaluate / keep an exponential moving average of the weights (per step)
    min_pool: int = 2
    # loss mix (paper): Gaussian NLL + pairwise BCE + listwise CE + score MSE + mu BCE + delta^2
    w_nll: float = 1.0
    w_pairwise: float = 0.35
    w_listwise: float = 0.65
    w_score_mse: float = 0.25
    w_bce: float = 0.5
    w_delta: float = 0.05
    w_task: float = 0.1
    # Ranking temperatures: the paper's 0.05 / 0.1 are minimised, for noisy 0/1 outcomes, by
    # score gaps several times smaller than the accuracy gaps (listwise CE at t = 0.05 wants a
    # 0.06 accuracy gap shown as ~0.006), which squeezed every model's mu toward one level and
    # left a new model's profile little say. At 0.5 / 0.25 mu stays calibrated
    # (docs/router.md has the measurements) and the ranking terms still order the models.
    listwise_temperature: float = 0.5
    pairwise_temperature: float = 0.25

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RouterConfig":
        if not isinstance(data, dict):
            raise LrcalError("router config: expected an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LrcalError(f"router config has unknown field(s) {', '.join(unknown)} (written by a newer lrcal?)")
        if data.get("profile_prior", "auto") not in ("auto", "fixed"):
            raise LrcalError(f"router config: profile_prior must be 'auto' or 'fixed' (got {data['profile_prior']!r})")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise LrcalError(f"router config is malformed ({exc})") from None

    def replace(self, **changes) -> "RouterConfig":
        data = self.to_dict()
        data.update(changes)
        return RouterConfig.from_dict(data)
