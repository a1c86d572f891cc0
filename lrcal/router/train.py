"""Episodic training of the shared router.

Every batch is an episode: a random pool of available models; every model's profile is
re-estimated from a random draw of its training rows that excludes the batch's own rows (so
the target never leaks into the profile) -- half the time a cold-start-sized draw of
32-128 rows, otherwise all of its other rows; in some episodes a model's learned residual is
hidden so that a profile-only token (a brand-new model) is in-distribution; some rows hide
their task label. AdamW, gradient clipping, early stopping on a validation split.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from lrcal.errors import LrcalError
from lrcal.features import FeatureSpec, featurize_table
from lrcal.router.config import RouterConfig
from lrcal.router.loss import router_loss
from lrcal.router.network import LatentRouterNet
from lrcal.router.profiles import ProfilePrior, Profiles, compute_profiles, draw_profile_masks, profile_dim

# a phase stops once the validation BCE is below this: the outcomes are predicted at 0.999 or
# better on average, so there is nothing left to route on (real outcome sets sit near 0.5)
SETTLED_BCE = 1e-3


@dataclass
class RouterData:
    """What the trainer reads: features computed once, outcomes, and per-row task ids."""

    X: np.ndarray  # [N, D] float32
    task_ids: np.ndarray  # [N] int64 into spec.task_vocab, -1 = none / unknown
    scores: np.ndarray  # [N, K], NaN = not run
    models: list[str]
    output_tokens: np.ndarray | None = None
    latency_ms: np.ndarray | None = None
    cost_usd: np.ndarray | None = None
    errors: np.ndarray | None = None

    @classmethod
    def from_table(cls, table, spec: FeatureSpec, X: np.ndarray | None = None) -> "RouterData":
        if X is None:
            X = featurize_table(spec, table)
        return cls(
            X=np.asarray(X, dtype=np.float32),
            task_ids=task_ids_for(spec, table.tasks),
            scores=np.asarray(table.scores, dtype=np.float64),
            models=list(table.models),
            output_tokens=table.output_tokens,
            latency_ms=table.latency_ms,
            cost_usd=table.cost_usd,
            errors=table.errors,
        )

    @property
    def n_models(self) -> int:
        return len(self.models)

    def select_models(self, columns: Sequence[int]) -> "RouterData":
        cols = np.asarray(columns, dtype=np.int64)
        take = lambda a: None if a is None else a[:, cols]  # noqa: E731
        return RouterData(self.X, self.task_ids, self.scores[:, cols], [self.models[i] for i in cols],
                          take(self.output_tokens), take(self.latency_ms), take(self.cost_usd), take(self.errors))

    def profiles(self, rows: np.ndarray | None, n_tasks: int, prior: ProfilePrior, row_mask: np.ndarray | None = None) -> Profiles:
        """Profiles from ``rows`` (all rows when None), optionally a per-model [K, N] mask."""
        n = self.scores.shape[0]
        mask = np.zeros((self.n_models, n), dtype=bool)
        if row_mask is not None:
            mask = row_mask
        elif rows is None:
            mask[:] = True
        else:
            mask[:, rows] = True
        return compute_profiles(
            self.task_ids, n_tasks, self.scores, mask,
            output_tokens=self.output_tokens, latency_ms=self.latency_ms, cost_usd=self.cost_usd,
            errors=self.errors, smoothing=prior.strength, task_offsets=prior.offsets(n_tasks),
        )


def task_ids_for(spec: FeatureSpec, tasks: Sequence[str | None]) -> np.ndarray:
    """Each task's index in the spec's vocabulary (-1: none or unknown), matched as the features
    match it (`lrcal.features.metadata.task_position`)."""
    from lrcal.features.metadata import task_position

    index = {t: i for i, t in enumerate(spec.task_vocab)}
    positions = [task_position(spec.task_vocab, t, index) if t else None for t in tasks]
    return np.asarray([-1 if p is None else p for p in positions], dtype=np.int64)


@dataclass
class FittedNet:
    """One trained network plus the learned residual of each training model."""

    net: LatentRouterNet
    residuals: dict[str, np.ndarray]  # model -> [H]
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    phase_epochs: tuple[int, int] = (0, 0)  # epochs kept per phase (warm-up, latent)


def build_network(cfg: RouterConfig, spec: FeatureSpec) -> LatentRouterNet:
    start, end = spec.blocks["task"]
    return LatentRouterNet(cfg, spec.dim, (start, end), len(spec.task_vocab), profile_dim(len(spec.task_vocab)))


def _hide_tasks(x: torch.Tensor, spec: FeatureSpec, rows: torch.Tensor) -> torch.Tensor:
    start, end = spec.blocks["task"]
    x = x.clone()
    x[rows, start:end] = 0.0
    x[rows, end - 1] = 1.0  # the "absent" flag
    return x


def routed_accuracy(scores_pred: np.ndarray, y: np.ndarray) -> float:
    avail = np.isfinite(y)
    s = np.where(avail, scores_pred, -np.inf)
    ok = avail.any(axis=1)
    if not ok.any():
        return float("nan")
    pick = s[ok].argmax(axis=1)
    return float(y[ok][np.arange(ok.sum()), pick].mean())


def fit_network(
    data: RouterData,
    spec: FeatureSpec,
    cfg: RouterConfig,
    train_rows: np.ndarray,
    val_rows: np.ndarray | None = None,
    *,
    seed: int = 0,
    epochs: tuple[int, int] | None = None,
    progress: Callable[[dict], None] | None = None,
    prior: ProfilePrior | None = None,
) -> FittedNet:
    """Train one network on ``train_rows`` in two phases: a warm-up without the latent path
    (prior + query-token affinity + token head: cheap steps, many epochs), then the full
    network (latent path gated in from zero, lower learning rate). With ``val_rows`` each
    phase stops early on validation loss and restores its best (EMA) weights; with
    ``epochs=(warmup, latent)`` it runs exactly that many epochs per phase, no validation.
    ``prior``: how profiles smooth per-task accuracy (default: fixed, ``cfg.profile_smoothing``)."""
    started = time.perf_counter()
    train_rows = np.asarray(train_rows, dtype=np.int64)
    if len(train_rows) < 2:
        raise LrcalError("router training needs at least 2 training rows")
    if data.n_models < 1:
        raise LrcalError("router training needs at least one model")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_network(cfg, spec)
    residuals = torch.nn.Parameter(torch.zeros(data.n_models, cfg.hidden))
    prior = prior or ProfilePrior(strength=cfg.profile_smoothing)
    ctx = _TrainContext(data, spec, cfg, net, residuals, train_rows, rng, prior)
    val = ctx.validation(val_rows) if (val_rows is not None and len(val_rows) and epochs is None) else None
    history: list[dict] = []
    best_epochs = []
    for phase, latent in (("warmup", False), ("latent", True)):
        if latent and not cfg.capsule_path:  # an ablated network has no latent phase
            best_epochs.append(0)
            continue
        if epochs is not None:
            max_epochs, patience = epochs[0 if not latent else 1], None
        else:
            steps_per_epoch = max(1, math.ceil(len(train_rows) / cfg.batch_size))
            budget = cfg.latent_max_steps if latent else cfg.warmup_max_steps
            max_epochs = math.ceil(budget / steps_per_epoch) if budget > 0 else 0
            patience = cfg.patience if latent else cfg.warmup_patience
        if max_epochs <= 0:
            best_epochs.append(0)
            continue
        best = ctx.run_phase(phase, latent, max_epochs, patience, val, history, progress)
        best_epochs.append(best)
    net.eval()
    return FittedNet(
        net=net,
        residuals={m: residuals.detach()[i].numpy().copy() for i, m in enumerate(data.models)},
        epochs_run=len(history),
        history=history,
        seconds=time.perf_counter() - started,
        phase_epochs=(best_epochs[0], best_epochs[1]),
    )


class _TrainContext:
    def __init__(self, data: RouterData, spec: FeatureSpec, cfg: RouterConfig, net: LatentRouterNet,
                 residuals: torch.nn.Parameter, train_rows: np.ndarray, rng: np.random.Generator,
                 prior: ProfilePrior) -> None:
        self.data, self.spec, self.cfg, self.net, self.residuals = data, spec, cfg, net, residuals
        self.prior = prior
        self.train_rows, self.rng = train_rows, rng
        self.k = data.n_models
        self.v = len(spec.task_vocab)
        self.X = torch.as_tensor(data.X, dtype=torch.float32)
        self.Y = torch.as_tensor(data.scores, dtype=torch.float32)
        self.T = torch.as_tensor(data.task_ids, dtype=torch.long)
        self.has_outcome = np.isfinite(data.scores).T  # [K, N]
        in_train = np.zeros(data.scores.shape[0], dtype=bool)
        in_train[train_rows] = True
        self.candidate = self.has_outcome & in_train[None, :]

    def validation(self, val_rows: np.ndarray):
        """Validation uses profiles from every training row and all models available."""
        val_rows = np.asarray(val_rows, dtype=np.int64)
        prof = self.data.profiles(self.train_rows, self.v, self.prior)
        idx = torch.as_tensor(val_rows)
        return (idx, torch.as_tensor(prof.vectors), torch.as_tensor(prof.task_accuracy),
                torch.isfinite(self.Y[idx]), val_rows)

    def _evaluate(self, val, latent: bool) -> dict:
        idx, pv, ta, av, rows = val
        net, cfg = self.net, self.cfg
        net.eval()
        with torch.no_grad():
            tokens = net.encode_profiles(pv) + self.residuals
            out = net(self.X[idx], tokens, ta, av, latent=latent)
            loss, parts = router_loss(out, self.Y[idx], av, cfg, self.T[idx])
        net.train()
        return {"val_loss": float(loss), "val_bce": parts["bce"],
                "val_accuracy": routed_accuracy(out["score"].numpy(), self.data.scores[rows])}

    def _episode(self, batch: np.ndarray, latent: bool) -> torch.Tensor:
        cfg, rng, net, k = self.cfg, self.rng, self.net, self.k
        # a random pool; unavailable models are dropped from the tensors (the masking path is
        # exercised by rows without an outcome and at inference)
        keep_p = rng.uniform(0.3, 1.0)
        pool = rng.random(k) < keep_p
        if pool.sum() < min(cfg.min_pool, k):
            pool[rng.choice(k, size=min(cfg.min_pool, k), replace=False)] = True
        cols = np.flatnonzero(pool)
        candidate = self.candidate[cols].copy()
        candidate[:, batch] = False  # the batch's own rows never enter a profile
        masks = np.zeros((k, candidate.shape[1]), dtype=bool)
        masks[cols] = draw_profile_masks(candidate, rng, rows_min=cfg.profile_rows_min,
                                         rows_max=cfg.profile_rows_max, full_prob=cfg.full_profile_prob)
        prof = self.data.profiles(None, self.v, self.prior, row_mask=masks)
        tcols = torch.as_tensor(cols)
        keep_residual = torch.as_tensor(rng.random(len(cols)) >= cfg.residual_dropout, dtype=torch.float32).unsqueeze(1)
        tokens = net.encode_profiles(torch.as_tensor(prof.vectors[cols])) + self.residuals[tcols] * keep_residual
        bt = torch.as_tensor(batch)
        xb = self.X[bt]
        if self.v > 0 and cfg.task_dropout > 0:
            hide = torch.as_tensor(rng.random(len(batch)) < cfg.task_dropout)
            if hide.any():
                xb = _hide_tasks(xb, self.spec, hide)
        yb = self.Y[bt][:, tcols]
        avail = torch.isfinite(yb)
        out = net(xb, tokens, torch.as_tensor(prof.task_accuracy[cols]), avail, latent=latent)
        loss, _ = router_loss(out, yb, avail, cfg, self.T[bt])
        loss = loss + cfg.residual_l2 * self.residuals[tcols].pow(2).sum(dim=1).mean()
        if cfg.query_l2 > 0:
            sq = net.affinity_query.weight.pow(2).sum()
            if latent:
                sq = sq + net.query_proj.weight.pow(2).sum()
            loss = loss + cfg.query_l2 * sq
        return loss

    def run_phase(self, phase: str, latent: bool, max_epochs: int, patience: int | None, val, history: list[dict],
                  progress) -> int:
        cfg, net, residuals = self.cfg, self.net, self.residuals
        params = [p for n, p in net.named_parameters() if latent or not _latent_only(n)]
        optimizer = torch.optim.AdamW(
            [{"params": params, "weight_decay": cfg.weight_decay}, {"params": [residuals], "weight_decay": 0.0}],
            lr=cfg.latent_lr if latent else cfg.lr,
            foreach=True,
        )
        ema = _Ema(net, residuals, cfg.ema_decay)
        best = (math.inf, 0, None, None)
        bad = 0
        final = None
        for epoch in range(1, max_epochs + 1):
            net.train()
            order = self.rng.permutation(self.train_rows)
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                if len(batch) < 2:
                    continue
                loss = self._episode(batch, latent)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params + [residuals], cfg.grad_clip)
                optimizer.step()
                ema.update(net, residuals)
            live = ema.swap_in(net, residuals)
            record = {"phase": phase, "epoch": epoch}
            if val is not None:
                record.update(self._evaluate(val, latent))
                metric = record["val_bce"] if cfg.early_stop_metric == "bce" else record["val_loss"]
                if metric < best[0] - 1e-5:
                    best = (metric, epoch, copy.deepcopy(net.state_dict()), residuals.detach().clone())
                    bad = 0
                else:
                    bad += 1
            # a validation BCE this low leaves nothing to learn (outcomes the same everywhere):
            # the Gaussian NLL's log sigma kept improving by a little over 1e-5 an epoch there,
            # so patience never ran out and constant outcomes trained to the step budget
            settled = val is not None and record["val_bce"] < SETTLED_BCE
            stop = epoch == max_epochs or settled or (patience is not None and val is not None and bad >= patience)
            if stop and (val is None or best[2] is None):
                final = (epoch, copy.deepcopy(net.state_dict()), residuals.detach().clone())
            ema.swap_out(net, residuals, live)
            history.append(record)
            if progress is not None:
                progress(record)
            if stop:
                break
        with torch.no_grad():
            if val is not None and best[2] is not None:
                net.load_state_dict(best[2])
                residuals.copy_(best[3])
                return best[1]
            net.load_state_dict(final[1])
            residuals.copy_(final[2])
            return final[0]


_LATENT_ONLY_PREFIXES = ("query_proj", "query_pos", "ln_query", "capsule_seeds", "capsule_read", "ln_caps", "caps_ffn",
                         "layers.", "latent_gate", "head_delta")


def _latent_only(name: str) -> bool:
    return name.startswith(_LATENT_ONLY_PREFIXES)


class _Ema:
    """Exponential moving average of the weights; evaluation and the saved model use it."""

    def __init__(self, net: torch.nn.Module, residuals: torch.Tensor, decay: float) -> None:
        self.decay = decay
        self.live = [p for p in net.parameters()] + [residuals]
        self.params = [p.detach().clone() for p in self.live]

    @torch.no_grad()
    def update(self, net: torch.nn.Module, residuals: torch.Tensor) -> None:
        if self.decay <= 0:
            torch._foreach_copy_(self.params, self.live)
            return
        torch._foreach_lerp_(self.params, self.live, 1.0 - self.decay)

    @torch.no_grad()
    def swap_in(self, net: torch.nn.Module, residuals: torch.Tensor) -> list[torch.Tensor]:
        live = list(net.parameters()) + [residuals]
        saved = [p.detach().clone() for p in live]
        for p, avg in zip(live, self.params):
            p.copy_(avg)
        return saved

    @torch.no_grad()
    def swap_out(self, net: torch.nn.Module, residuals: torch.Tensor, saved: list[torch.Tensor]) -> None:
        for p, s in zip(list(net.parameters()) + [residuals], saved):
            p.copy_(s)
