"""Per-model linear heads: an L2-regularised logistic regression per training model on the
router's query features (fitted jointly: `fit_linear_heads`), blended with the network's score
in logit space. Opt-in (`RouterConfig.linear_head`, off by default): they improve routing among
the training models but make onboarding worse, since an onboarded model has no head
(docs/router.md has both).

Why: on the shared MathVista file the per-model logistic regression was a better probability
model than the network (test log-loss 0.4665 against 0.4785 on seed 0's five folds), and a
blend of the two was better than either (0.4616 at weight 0.5; scripts/network_variants_check.py).
Neither the L2 nor the blend weight is fixed: both are chosen on out-of-fold predictions
inside the training rows (`choose_blend`, called by the decision rule's cross-fitting), and
weight 0 -- the network alone -- is one of the candidates. A model without a head (one
onboarded from calibration rows) keeps the network's score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lrcal.router.profiles import logit, sigmoid

LINEAR_L2 = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
BLEND_WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))
CLIP = 1e-4  # probabilities are kept in [CLIP, 1 - CLIP] before a log (as profiles.logit does)


def fit_linear_heads(X: np.ndarray, y: np.ndarray, l2: float, iters: int = 200) -> np.ndarray:
    """[D + 1, K] weights (last row: bias) of one L2-regularised logistic regression per column
    of ``y`` (NaN: not run), fitted jointly by L-BFGS."""
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    y = np.asarray(y, dtype=np.float64)
    mask = torch.as_tensor(np.isfinite(y), dtype=torch.float32)
    yt = torch.as_tensor(np.nan_to_num(y), dtype=torch.float32)
    W = torch.zeros(Xt.shape[1], y.shape[1], requires_grad=True)
    b = torch.zeros(y.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = Xt @ W + b
        loss = (F.binary_cross_entropy_with_logits(z, yt, reduction="none") * mask).sum() / mask.sum().clamp_min(1)
        loss = loss + l2 * W.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return torch.cat([W.detach(), b.detach()[None]], dim=0).numpy().astype(np.float32)


def head_probabilities(X: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """[N, K] probabilities of ``heads`` [D + 1, K] on features ``X`` [N, D]."""
    X = np.asarray(X, dtype=np.float64)
    heads = np.asarray(heads, dtype=np.float64)
    z = np.clip(X @ heads[:-1] + heads[-1], -30.0, 30.0)
    return 1.0 / (1.0 + np.exp(-z))


def blend(network: np.ndarray, linear: np.ndarray, weight: float) -> np.ndarray:
    """sigmoid((1 - weight) * logit(network) + weight * logit(linear)); ``network`` itself at 0."""
    if weight <= 0.0:
        return network
    return sigmoid((1.0 - weight) * logit(network) + weight * logit(linear))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(y)
    p = np.clip(np.asarray(p, dtype=np.float64)[ok], CLIP, 1.0 - CLIP)
    t = np.asarray(y, dtype=np.float64)[ok]
    return float(-(t * np.log(p) + (1.0 - t) * np.log(1.0 - p)).mean()) if t.size else float("nan")


@dataclass(frozen=True)
class BlendChoice:
    l2: float
    weight: float
    evidence: dict


def choose_blend(network: np.ndarray, linear_by_l2: dict[float, np.ndarray], y: np.ndarray,
                 weights: Sequence[float] = BLEND_WEIGHTS) -> BlendChoice:
    """The (L2, weight) whose blend of out-of-fold ``network`` [n, K] and ``linear_by_l2[l2]``
    [n, K] predictions has the lowest log-loss on the outcomes ``y`` [n, K]; ties go to the
    smaller weight (the network alone first). Evidence: the network's and the best blend's
    out-of-fold log-loss and the loss at each weight for the chosen L2."""
    network_loss = log_loss(network, y)
    best: tuple[float, float, float] | None = None  # (loss, weight, l2)
    curves: dict[float, list[float]] = {}
    for l2, linear in linear_by_l2.items():
        curves[l2] = [log_loss(blend(network, linear, w), y) for w in weights]
        for w, loss in zip(weights, curves[l2]):
            if best is None or loss < best[0] - 1e-9 or (abs(loss - best[0]) <= 1e-9 and w < best[1]):
                best = (loss, float(w), float(l2))
    if best is None or best[1] == 0.0:
        return BlendChoice(l2=float(best[2]) if best else LINEAR_L2[0], weight=0.0,
                           evidence={"network_log_loss": network_loss, "blend_log_loss": network_loss,
                                     "rows": int(np.isfinite(y).any(axis=1).sum())})
    return BlendChoice(l2=best[2], weight=best[1], evidence={
        "network_log_loss": network_loss, "blend_log_loss": best[0],
        "linear_log_loss": curves[best[2]][-1], "loss_by_weight": dict(zip(map(float, weights), curves[best[2]])),
        "rows": int(np.isfinite(y).any(axis=1).sum())})
