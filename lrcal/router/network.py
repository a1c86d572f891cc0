"""The LatentRouter network: routing capsules, capability tokens, latent communication,
a distributional head and a bounded capsule correction.

    x [B, D] query features ──► T query tokens ──► C routing capsules (learned seeds attend)
    profile [K, P] ──► shared profile encoder (+ per-model residual) ──► capability tokens [K, H]
    L x latent communication:
        model tokens read the capsules          (attention, then MLP on [m, ctx, m*ctx])
        model tokens attend to each other       (pair bias, unavailable models masked out)
        capsules read back the model tokens     (attention biased by softmax(score / 0.25))
    head: mu = sigmoid(head(m) + alpha * logit(profile prior)), sigma in [sigma_min, 0.5],
          delta = b * tanh(.), mu_tilde = clip(mu + delta, 0, 1)

The profile prior is the model's smoothed accuracy on the query's task (known label, or the
network's own task prediction when the label is absent): the network learns a residual on top
of what the model's own outcomes already say, which is what a 64-row cold-start profile can
support. Nothing here knows the pool size: every model-side tensor is [.., K, ..] for whatever
K is passed, and unavailable models are masked.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from lrcal.router.config import RouterConfig

# One intra-op thread unless LRCAL_TORCH_THREADS says otherwise (the package docstring says why).
torch.set_num_threads(max(1, int(os.environ.get("LRCAL_TORCH_THREADS", "1") or 1)))


SMALL_KEYS = 4  # attention over at most this many keys uses the broadcast path


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.scale = 1.0 / math.sqrt(dim // heads)
        self._fold_cache = None  # see _folded

    def forward(self, query: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, lq, d = query.shape
        lk = context.shape[1]
        h = self.heads
        dh = d // h
        if lk <= SMALL_KEYS:
            return self._forward_small(query, context, bias)
        q = self.q(query).view(b, lq, h, dh).transpose(1, 2)  # [B, h, Lq, dh]
        kv = self.kv(context).view(b, lk, 2 * h, dh).transpose(1, 2)  # [B, 2h, Lk, dh]
        k, v = kv[:, :h], kv[:, h:]
        logits = (q * self.scale) @ k.transpose(-1, -2)  # [B, h, Lq, Lk]
        if bias is not None:
            logits = logits + bias
        y = torch.softmax(logits, dim=-1) @ v  # [B, h, Lq, dh]
        return self.out(y.transpose(1, 2).reshape(b, lq, d))

    def fused(self, query: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None,
              pair_d: torch.Tensor | None = None, pair_e: torch.Tensor | None = None) -> torch.Tensor:
        """The same attention with its projections folded into per-head H x H matrices:
        logits_h(i, j) = q_i A_h c_j + u_h . c_j (+ the pair bias (q_i * d_h) . c_j + e_h . c_j),
        the output = sum_h sum_j w_h(i, j) c_j V_h + const, where A_h = scale Wq_h^T Wk_h,
        u_h = scale Wk_h^T bq_h, V_h = (Wo_h Wv_h)^T. Terms constant over j cancel in the
        softmax. Two GEMMs and two batched matmuls of B (not B x heads) matrices: the
        per-matrix overhead of B x heads tiny matmuls dominated the forward at batch 256.
        ``bias`` broadcasts to [B, heads, Lq, Lk]; ``pair_d`` [heads, H], ``pair_e`` [heads, H]."""
        b, lq, d = query.shape
        lk = context.shape[1]
        h = self.heads
        a, u, v, const = self._folded(pair_d, pair_e)
        qa = (query @ a).view(b, lq * h, d)
        logits = torch.bmm(qa, context.transpose(1, 2)).view(b, lq, h, lk)
        logits = logits + (context @ u.t()).transpose(1, 2).unsqueeze(1)  # key term [B, 1, h, Lk]
        if bias is not None:
            logits = logits + bias.transpose(1, 2)
        weights = torch.softmax(logits, dim=-1).reshape(b, lq, h * lk)  # (head, key) order
        cv = (context @ v).view(b, lk, h, d).transpose(1, 2).reshape(b, h * lk, d)
        return torch.bmm(weights, cv) + const

    def _folded(self, pair_d: torch.Tensor | None, pair_e: torch.Tensor | None):
        """(A [H, h*H], u [h, H], V [H, h*H], const [H]) from the current weights; cached
        while no gradient is recorded (inference), keyed on the weights' in-place versions so
        an optimizer step or a load_state_dict refreshes it."""
        params = [self.q.weight, self.q.bias, self.kv.weight, self.kv.bias, self.out.weight, self.out.bias]
        if pair_d is not None:
            params += [pair_d, pair_e]
        cacheable = not torch.is_grad_enabled()
        key = tuple((id(t), t._version) for t in params) if cacheable else None
        if cacheable and self._fold_cache is not None and self._fold_cache[0] == key:
            return self._fold_cache[1]
        d = self.q.in_features
        h = self.heads
        dh = d // h
        wq = self.q.weight.view(h, dh, d)
        wk = self.kv.weight[:d].view(h, dh, d)
        wv = self.kv.weight[d:].view(h, dh, d)
        wo = self.out.weight.view(d, h, dh)
        a = self.scale * torch.einsum("hei,hej->ihj", wq, wk)  # [H_in, h, H_ctx]
        u = self.scale * torch.einsum("he,hej->hj", self.q.bias.view(h, dh), wk)  # [h, H]
        if pair_d is not None:
            a = a + torch.diag_embed(pair_d).permute(1, 0, 2)
        if pair_e is not None:
            u = u + pair_e
        v = torch.einsum("hej,khe->jhk", wv, wo)  # [H_ctx, h, H_out]
        const = self.out.bias + torch.einsum("he,khe->k", self.kv.bias[d:].view(h, dh), wo)
        folded = (a.reshape(d, h * d), u, v.reshape(d, h * d), const)
        if cacheable:
            self._fold_cache = (key, folded)
        return folded

    def _forward_small(self, query: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The same attention as broadcast multiply-and-sum: with a handful of keys (the
        capsules) a batch of B x heads tiny matmuls costs more in per-matrix overhead than the
        arithmetic (measured 1.8-2.5x faster at batch 256 for 4 keys)."""
        b, lq, d = query.shape
        lk = context.shape[1]
        h = self.heads
        dh = d // h
        q = (self.q(query) * self.scale).view(b, lq, 1, h, dh)
        kv = self.kv(context).view(b, 1, lk, 2 * h, dh)
        logits = (q * kv[..., :h, :]).sum(-1)  # [B, Lq, Lk, h]
        if bias is not None:
            logits = logits + bias.permute(0, 2, 3, 1)
        weights = torch.softmax(logits, dim=2).unsqueeze(-1)  # [B, Lq, Lk, h, 1]
        y = (weights * kv[..., h:, :]).sum(2)  # [B, Lq, h, dh]
        return self.out(y.reshape(b, lq, d))


class FastDropout(nn.Module):
    """Inverted dropout with a uniform-threshold mask (CPU ``bernoulli_`` is several times slower)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return x
        keep = torch.rand_like(x) >= self.p
        return x * keep * (1.0 / (1.0 - self.p))


def _dropout(p: float) -> nn.Module:
    return FastDropout(p) if p > 0 else nn.Identity()


def _ffn(dim: int, mult: int, dropout: float, in_dim: int | None = None) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim or dim, dim * mult), nn.GELU(), _dropout(dropout), nn.Linear(dim * mult, dim))


class LatentLayer(nn.Module):
    def __init__(self, cfg: RouterConfig) -> None:
        super().__init__()
        hdim, heads = cfg.hidden, cfg.heads
        self.heads = heads
        self.read = Attention(hdim, heads)
        self.read_mlp = nn.Sequential(nn.Linear(3 * hdim, hdim), nn.GELU(), _dropout(cfg.dropout), nn.Linear(hdim, hdim))
        self.ln_read = nn.LayerNorm(hdim)
        self.talk = Attention(hdim, heads)
        # Linear pair bias on [mi, mj, mi - mj, mi * mj] per head reduces (softmax over j is
        # shift-invariant in i) to a bilinear term (mi * d) . mj plus a key term e . mj.
        self.pair_d = nn.Parameter(torch.zeros(heads, hdim))
        self.pair_e = nn.Linear(hdim, heads, bias=False)
        self.ln_talk = nn.LayerNorm(hdim)
        self.talk_ffn = _ffn(hdim, cfg.ffn_mult, cfg.dropout)
        self.ln_talk_ffn = nn.LayerNorm(hdim)
        self.score = nn.Linear(hdim, 1)
        self.back = Attention(hdim, heads)
        self.ln_back = nn.LayerNorm(hdim)
        self.back_ffn = _ffn(hdim, cfg.ffn_mult, cfg.dropout)
        self.ln_back_ffn = nn.LayerNorm(hdim)
        self.temperature = cfg.readback_temperature
        self.drop = _dropout(cfg.dropout)
        self.model_communication = cfg.model_communication

    def forward(self, m: torch.Tensor, caps: torch.Tensor, key_mask: torch.Tensor,
                record: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # key_mask: [B, 1, 1, K] additive (0 or -inf) for unavailable models
        m = self.read_capsules(m, caps)
        if record is not None:
            record["m_read"] = m
        if self.model_communication:
            # talk: attention plus the pair bias (mi * d) . mj + e . mj, folded into one bilinear form
            m = self.ln_talk(m + self.drop(self.talk.fused(m, m, key_mask, self.pair_d, self.pair_e.weight)))
        m = self.ln_talk_ffn(m + self.drop(self.talk_ffn(m)))
        if self.model_communication:  # capsules read the model tokens back, weighted by their scores
            score = self.score(m).squeeze(-1)  # [B, K]
            decision = (score / self.temperature).unsqueeze(1).unsqueeze(1)  # [B, 1, 1, K]
            caps = self.ln_back(caps + self.drop(self.back.fused(caps, m, decision + key_mask)))
            caps = self.ln_back_ffn(caps + self.drop(self.back_ffn(caps)))
        return m, caps


    def read_capsules(self, m: torch.Tensor, caps: torch.Tensor) -> torch.Tensor:
        ctx = self.read(m, caps)
        return self.ln_read(m + self.drop(self.read_mlp(torch.cat([m, ctx, m * ctx], dim=-1))))


class ProfileEncoder(nn.Module):
    def __init__(self, profile_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(profile_dim, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))

    def forward(self, profiles: torch.Tensor) -> torch.Tensor:
        return self.net(profiles)


class LatentRouterNet(nn.Module):
    def __init__(self, cfg: RouterConfig, feature_dim: int, task_slice: tuple[int, int], n_tasks: int, profile_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        hdim = cfg.hidden
        self.feature_dim = feature_dim
        self.task_start, self.task_end = task_slice
        self.n_tasks = n_tasks
        if self.task_end - self.task_start != n_tasks + 2:
            raise ValueError("task block must hold the vocabulary plus unknown/absent flags")
        self.input_drop = _dropout(cfg.input_dropout)
        self.query_proj = nn.Linear(feature_dim, cfg.query_tokens * hdim)
        self.query_pos = nn.Parameter(torch.randn(cfg.query_tokens, hdim) * 0.02)
        self.ln_query = nn.LayerNorm(hdim)
        self.capsule_seeds = nn.Parameter(torch.randn(cfg.capsules, hdim) * 0.2)
        self.capsule_read = Attention(hdim, cfg.heads)
        self.ln_caps = nn.LayerNorm(hdim)
        self.caps_ffn = _ffn(hdim, cfg.ffn_mult, cfg.dropout)
        self.ln_caps_ffn = nn.LayerNorm(hdim)
        self.profile_encoder = ProfileEncoder(profile_dim, hdim)
        self.layers = nn.ModuleList([LatentLayer(cfg) for _ in range(cfg.layers)])
        self.head_mu = nn.Sequential(nn.Linear(hdim, hdim), nn.GELU(), nn.Linear(hdim, 1))
        self.head_sigma = nn.Linear(hdim, 1)
        self.head_delta = nn.Linear(hdim, 1)
        self.prior_weight = nn.Parameter(torch.tensor(1.0))
        # Direct query-token affinity (a skip past the latent layers): with free tokens this
        # alone is a rank-H multi-task logistic regression, so the network starts from a
        # strong linear router and the latent layers add the interactions.
        self.affinity_query = nn.Linear(feature_dim, hdim, bias=False)
        self.affinity_token = nn.Linear(hdim, hdim)
        nn.init.normal_(self.affinity_query.weight, std=0.01)
        # Task prediction from the non-task features, used when a query carries no task label.
        self.task_head = nn.Linear(feature_dim, n_tasks) if n_tasks > 0 else None
        self.latent_gate = nn.Parameter(torch.zeros(hdim))
        nn.init.zeros_(self.head_delta.weight)
        nn.init.zeros_(self.head_delta.bias)

    # ---- pieces callable on their own (onboarding fits a token through these) -----------
    def encode_profiles(self, profiles: torch.Tensor) -> torch.Tensor:
        """token_0 = encoder(profile): [K, P] -> [K, H]."""
        return self.profile_encoder(profiles)

    def task_probabilities(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[B, V + 1] distribution over (tasks..., unknown) and the task head's logits."""
        v = self.n_tasks
        block = x[:, self.task_start : self.task_end]
        known, unknown, absent = block[:, :v], block[:, v : v + 1], block[:, v + 1 : v + 2]
        if v == 0:
            return torch.ones(x.shape[0], 1, device=x.device), None
        no_task = x.clone()
        no_task[:, self.task_start : self.task_end] = 0.0
        logits = self.task_head(no_task)
        predicted = torch.softmax(logits, dim=-1)
        probs = known + absent * predicted
        return torch.cat([probs, unknown], dim=1), logits

    def forward(
        self,
        x: torch.Tensor,
        tokens: torch.Tensor,
        task_accuracy: torch.Tensor,
        available: torch.Tensor,
        latent: bool = True,
        record: list | None = None,
    ) -> dict[str, torch.Tensor]:
        """x [B, D]; tokens [K, H] capability tokens (differentiable: onboarding fits one), or
        [B, K, H] per row; task_accuracy [K, V + 1] (or [B, K, V + 1]) profile accuracies (last column overall); available [B, K]
        bool. Returns [B, K] tensors. ``latent=False`` skips the capsule / latent-communication
        path (the linear warm-up phase of training; its output is then exactly zero)."""
        b = x.shape[0]
        k = tokens.shape[-2]
        cfg = self.cfg
        p_task, task_logits = self.task_probabilities(x)
        if task_accuracy.dim() == 3:  # per-row task accuracies [B, K, V + 1] (onboarding's bootstrap)
            prior = torch.einsum("bv,bkv->bk", p_task, task_accuracy)
        else:
            prior = p_task @ task_accuracy.t()
        prior = prior.clamp(1e-3, 1 - 1e-3)  # [B, K]
        prior_logit = torch.log(prior) - torch.log1p(-prior)
        xd = self.input_drop(x)
        if tokens.dim() == 3:
            # per-row tokens [B, K, H]: onboarding evaluates many candidate tokens in one batch
            affinity = torch.einsum("bh,bkh->bk", self.affinity_query(xd), self.affinity_token(tokens))
            m0 = tokens
        else:
            affinity = self.affinity_query(xd) @ self.affinity_token(tokens).t()  # [B, K]
            m0 = tokens.unsqueeze(0).expand(b, -1, -1)
        if not cfg.affinity:
            affinity = torch.zeros_like(affinity)

        if latent and cfg.capsule_path:
            q = self.query_proj(xd).view(b, cfg.query_tokens, cfg.hidden)
            q = self.ln_query(q + self.query_pos)
            caps = self.capsule_seeds.unsqueeze(0).expand(b, -1, -1)
            caps = self.ln_caps(caps + self.capsule_read(caps, q))
            caps = self.ln_caps_ffn(caps + self.caps_ffn(caps))
            avail = available.bool()
            # a row with no available model would make every attention row -inf: unmask it (its output is ignored)
            safe = avail | ~avail.any(dim=1, keepdim=True)
            key_mask = torch.zeros(b, 1, 1, k, dtype=x.dtype, device=x.device).masked_fill(
                ~safe.view(b, 1, 1, k), float("-inf")
            )
            m = m0
            for layer in self.layers:
                if record is not None:
                    record.append({"caps": caps})
                m, caps = layer(m, caps, key_mask, record[-1] if record is not None else None)
            if record is not None:
                record.append({"caps": caps})
            # zero-initialised gate: the latent path starts as an exact no-op on the warm-up model
            m = m0 + self.latent_gate * (m - m0)
            summary = caps.mean(dim=1, keepdim=True)
            delta = cfg.correction_bound * torch.tanh(self.head_delta(m * summary).squeeze(-1))
        else:
            m = m0
            delta = torch.zeros(b, k, dtype=x.dtype, device=x.device)

        mu_logit = self.head_mu(m).squeeze(-1) + affinity
        if cfg.prior_logit:
            mu_logit = mu_logit + self.prior_weight * prior_logit
        mu = torch.sigmoid(mu_logit)
        sigma = cfg.sigma_min + (0.5 - cfg.sigma_min) * torch.sigmoid(self.head_sigma(m).squeeze(-1))
        score = (mu + delta).clamp(0.0, 1.0)
        return {
            "mu": mu,
            "mu_logit": mu_logit,
            "sigma": sigma,
            "delta": delta,
            "score": score,
            "prior": prior,
            "task_logits": task_logits,
            "p_task": p_task,  # [B, V + 1] the task distribution the prior (and any task bias) used
        }


def with_task_bias(mu_logit: torch.Tensor, delta: torch.Tensor, p_task: torch.Tensor,
                   task_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, score) after a per-model, per-task offset on the quality logit: mu_logit [.., B, K],
    delta like it, p_task [B, V + 1], task_bias [K, V + 1] (an onboarded model's level
    calibration, zeros for the others)."""
    mu = torch.sigmoid(mu_logit + p_task @ task_bias.t())
    return mu, (mu + delta).clamp(0.0, 1.0)


def _split_kv(att: Attention, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values [.., L, h, dh] of ``context`` [.., L, H] for ``att``."""
    kv = att.kv(context)
    shape = kv.shape[:-1] + (2 * att.heads, kv.shape[-1] // (2 * att.heads))
    kv = kv.view(shape)
    return kv[..., : att.heads, :], kv[..., att.heads :, :]


def _attend_one(att: Attention, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                bias: torch.Tensor | None = None) -> torch.Tensor:
    """One query per row: query [R, H], k / v [R, L, h, dh], bias [R, h, L] -> [R, H]."""
    r, d = query.shape
    q = att.q(query).view(r, att.heads, d // att.heads)
    logits = torch.einsum("rhd,rlhd->rhl", q * att.scale, k)
    if bias is not None:
        logits = logits + bias
    y = torch.einsum("rhl,rlhd->rhd", torch.softmax(logits, dim=-1), v)
    return att.out(y.reshape(r, d))


def _attend_shared(att: Attention, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """query [C, n, H] against per-row keys / values [n, L, h, dh] shared by the C candidates."""
    c, n, d = query.shape
    q = att.q(query).view(c, n, att.heads, d // att.heads)
    weights = torch.softmax(torch.einsum("cnhd,nlhd->cnhl", q * att.scale, k), dim=-1)
    return att.out(torch.einsum("cnhl,nlhd->cnhd", weights, v).reshape(c, n, d))


class NewColumnContext:
    """What one model's column depends on, recorded from a full forward of the pool with that
    model's initial token in the last slot: the capsules entering every layer, the other
    models' states (keys) after each read, the query side. Onboarding evaluates many candidate
    tokens for the new model against this context at a fraction of a full forward's cost: the
    other models' states and the capsules are held at their values under the initial token (a
    first-order approximation; exact when the candidate equals the initial token)."""

    def __init__(self, net: "LatentRouterNet", x: torch.Tensor, tokens: torch.Tensor, task_accuracy: torch.Tensor,
                 available: torch.Tensor) -> None:
        with torch.no_grad():
            record: list[dict] = []
            out = net(x, tokens, task_accuracy, available, record=record)
            self.p_task = out["p_task"]  # [n, V + 1]
            self.affinity_query = net.affinity_query(x)  # [n, H] (eval: no input dropout)
            self.layers = []
            avail = available.bool()
            safe = avail | ~avail.any(dim=1, keepdim=True)
            self.key_mask = torch.zeros(safe.shape, dtype=x.dtype).masked_fill(~safe, float("-inf"))  # [n, K]
            for layer, rec in zip(net.layers, record):
                caps_k, caps_v = _split_kv(layer.read, rec["caps"])
                others = rec["m_read"][:, :-1]  # [n, K-1, H]
                talk_k, talk_v = _split_kv(layer.talk, others)
                self.layers.append({"caps_k": caps_k, "caps_v": caps_v, "others": others, "talk_k": talk_k,
                                    "talk_v": talk_v, "pair_e": layer.pair_e(others)})
            # no capsule path (an ablated network): no layers, no correction
            self.summary = record[-1]["caps"].mean(dim=1) if record else None  # [n, H]
            self.full_mu_logit = out["mu_logit"][:, -1]
            self.full_delta = out["delta"][:, -1]
            self.pool_score = out["score"][:, :-1]
        self.net = net

    def pool_scores(self) -> torch.Tensor:
        """[n, K - 1] the other models' scores (held constant while the new token moves)."""
        return self.pool_score

    def forward(self, token: torch.Tensor, task_accuracy: torch.Tensor) -> dict[str, torch.Tensor]:
        """The new model's outputs for C candidate tokens on every recorded row: token [C, H]
        or [C, n, H], task_accuracy [C, V + 1] -> mu_logit, mu, sigma, delta, score [C, n]."""
        net, cfg = self.net, self.net.cfg
        n = self.p_task.shape[0]
        if token.dim() == 2:
            token = token.unsqueeze(1).expand(-1, n, -1)
        prior = (task_accuracy @ self.p_task.t()).clamp(1e-3, 1 - 1e-3)  # [C, n]
        prior_logit = torch.log(prior) - torch.log1p(-prior)
        affinity = (self.affinity_query.unsqueeze(0) * net.affinity_token(token)).sum(dim=-1)
        if not cfg.affinity:
            affinity = torch.zeros_like(affinity)
        m0 = token
        m = m0
        for layer, ctx in zip(net.layers, self.layers):
            read = _attend_shared(layer.read, m, ctx["caps_k"], ctx["caps_v"])
            m = layer.ln_read(m + layer.read_mlp(torch.cat([m, read, m * read], dim=-1)))
            if layer.model_communication:
                m = self._talk(layer, m, ctx)
            m = layer.ln_talk_ffn(m + layer.talk_ffn(m))
        if self.summary is None:
            delta = torch.zeros_like(affinity)
        else:
            m = m0 + net.latent_gate * (m - m0)
            delta = cfg.correction_bound * torch.tanh(net.head_delta(m * self.summary.unsqueeze(0)).squeeze(-1))
        mu_logit = net.head_mu(m).squeeze(-1) + affinity
        if cfg.prior_logit:
            mu_logit = mu_logit + net.prior_weight * prior_logit
        mu = torch.sigmoid(mu_logit)
        sigma = cfg.sigma_min + (0.5 - cfg.sigma_min) * torch.sigmoid(net.head_sigma(m).squeeze(-1))
        return {"mu_logit": mu_logit, "mu": mu, "sigma": sigma, "delta": delta, "score": (mu + delta).clamp(0.0, 1.0)}

    def _talk(self, layer: "LatentLayer", m: torch.Tensor, ctx: dict) -> torch.Tensor:
        """The candidate tokens attend to the recorded other models and to themselves."""
        att = layer.talk
        heads = att.heads
        c_, n_, d = m.shape
        q = att.q(m).view(c_, n_, heads, d // heads) * att.scale
        new_k, new_v = _split_kv(att, m)  # [C, n, h, dh]
        md = m.unsqueeze(2) * layer.pair_d  # [C, n, h, H]
        logits_others = (torch.einsum("cnhd,nlhd->cnhl", q, ctx["talk_k"])
                         + torch.einsum("cnhe,nle->cnhl", md, ctx["others"])
                         + ctx["pair_e"].transpose(1, 2).unsqueeze(0)
                         + self.key_mask[:, :-1].unsqueeze(1).unsqueeze(0))
        logit_new = ((q * new_k).sum(-1) + (md * m.unsqueeze(2)).sum(-1) + layer.pair_e(m)
                     + self.key_mask[:, -1:].unsqueeze(0))  # [C, n, h]
        weights = torch.softmax(torch.cat([logits_others, logit_new.unsqueeze(-1)], dim=-1), dim=-1)
        y = torch.einsum("cnhl,nlhd->cnhd", weights[..., :-1], ctx["talk_v"]) + weights[..., -1:] * new_v
        return layer.ln_talk(m + att.out(y.reshape(c_, n_, d)))


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
