"""The router's own loss (the paper's mix), callable on any set of rows and models.

Gaussian NLL on (mu, sigma) + BCE on mu + pairwise BCE and listwise CE ranking on the score
+ MSE(score, y) + a small delta^2 penalty + task-prediction CE. Only (row, model) entries that
are available and have an outcome count. The target is the observed quality y; cost and
latency enter the policy, never the quality model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lrcal.router.config import RouterConfig


def router_loss(
    out: dict[str, torch.Tensor],
    y: torch.Tensor,
    available: torch.Tensor,
    cfg: RouterConfig,
    task_targets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """out: the network's outputs ([B, K] each); y: [B, K] in [0, 1] (NaN = unknown);
    available: [B, K] bool; task_targets: [B] long (-1 = no label)."""
    mask = available.bool() & torch.isfinite(y)
    yv = torch.nan_to_num(y, nan=0.0)
    w = mask.float()
    n = w.sum().clamp_min(1.0)
    mu, sigma, score, delta = out["mu"], out["sigma"], out["score"], out["delta"]

    nll = ((torch.log(sigma) + (yv - mu) ** 2 / (2 * sigma**2)) * w).sum() / n
    bce = (F.binary_cross_entropy_with_logits(out["mu_logit"], yv, reduction="none") * w).sum() / n
    mse = (((score - yv) ** 2) * w).sum() / n
    delta_pen = ((delta**2) * w).sum() / n

    # listwise: target softmax(y / t) over the available models of each row with >= 2 of them
    rows = w.sum(dim=1) >= 2
    neg = torch.finfo(score.dtype).min / 4
    listwise = score.new_zeros(())
    pairwise = score.new_zeros(())
    if rows.any():
        t = cfg.listwise_temperature
        target = torch.softmax((yv / t).masked_fill(~mask, neg), dim=1)
        logp = torch.log_softmax((score / t).masked_fill(~mask, neg), dim=1)
        listwise = -(target * logp * w).sum(dim=1)[rows].mean()
        # pairwise: every ordered pair with y_i > y_j
        diff_y = yv.unsqueeze(2) - yv.unsqueeze(1)
        pair_mask = (mask.unsqueeze(2) & mask.unsqueeze(1) & (diff_y > 0)).float()
        if pair_mask.sum() > 0:
            diff_s = (score.unsqueeze(2) - score.unsqueeze(1)) / cfg.pairwise_temperature
            pairwise = (F.softplus(-diff_s) * pair_mask).sum() / pair_mask.sum()

    task = score.new_zeros(())
    logits = out.get("task_logits")
    if logits is not None and task_targets is not None:
        has = task_targets >= 0
        if has.any():
            task = F.cross_entropy(logits[has], task_targets[has])

    total = (
        cfg.w_nll * nll
        + cfg.w_bce * bce
        + cfg.w_pairwise * pairwise
        + cfg.w_listwise * listwise
        + cfg.w_score_mse * mse
        + cfg.w_delta * delta_pen
        + cfg.w_task * task
    )
    parts = {
        "nll": float(nll.detach()), "bce": float(bce.detach()), "pairwise": float(pairwise.detach()), "listwise": float(listwise.detach()),
        "mse": float(mse.detach()), "delta": float(delta_pen.detach()), "task": float(task.detach()),
    }
    return total, parts
