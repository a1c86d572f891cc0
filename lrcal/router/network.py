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

import torch
from torch import nn

from lrcal.router.config import RouterConfig


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

    def forward(self, query: torch.Tensor, context: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, lq, d = query.shape
        lk = context.shape[1]
        h = self.heads
        dh = d // h
        q = self.q(query).view(b, lq, h, dh).transpose(1, 2)  # [B, h, Lq, dh]
        kv = self.kv(context).view(b, lk, 2 * h, dh).transpose(1, 2)  # [B, 2h, Lk, dh]
        k, v = kv[:, :h], kv[:, h:]
        logits = (q * self.scale) @ k.transpose(-1, -2)  # [B, h, Lq, Lk]
        if bias is not None:
            logits = logits + bias
        y = torch.softmax(logits, dim=-1) @ v  # [B, h, Lq, dh]
        return self.out(y.transpose(1, 2).reshape(b, lq, d))


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

    def forward(self, m: torch.Tensor, caps: torch.Tensor, key_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # key_mask: [B, 1, 1, K] additive (0 or -inf) for unavailable models
        ctx = self.read(m, caps)
        m = self.ln_read(m + self.drop(self.read_mlp(torch.cat([m, ctx, m * ctx], dim=-1))))
        md = m.unsqueeze(1) * self.pair_d.view(1, self.heads, 1, -1)  # [B, h, K, H]
        pair = md @ m.unsqueeze(1).transpose(-1, -2)  # [B, h, K, K]
        pair = pair + self.pair_e(m).transpose(1, 2).unsqueeze(2)  # key term
        m = self.ln_talk(m + self.drop(self.talk(m, m, pair + key_mask)))
        m = self.ln_talk_ffn(m + self.drop(self.talk_ffn(m)))
        score = self.score(m).squeeze(-1)  # [B, K]
        decision = (score / self.temperature).unsqueeze(1).unsqueeze(1)  # [B, 1, 1, K]
        caps = self.ln_back(caps + self.drop(self.back(caps, m, decision + key_mask)))
        caps = self.ln_back_ffn(caps + self.drop(self.back_ffn(caps)))
        return m, caps


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
    ) -> dict[str, torch.Tensor]:
        """x [B, D]; tokens [K, H] capability tokens (differentiable: onboarding fits one);
        task_accuracy [K, V + 1] profile accuracies (last column overall); available [B, K]
        bool. Returns [B, K] tensors. ``latent=False`` skips the capsule / latent-communication
        path (the linear warm-up phase of training; its output is then exactly zero)."""
        b = x.shape[0]
        k = tokens.shape[0]
        cfg = self.cfg
        p_task, task_logits = self.task_probabilities(x)
        prior = (p_task @ task_accuracy.t()).clamp(1e-3, 1 - 1e-3)  # [B, K]
        prior_logit = torch.log(prior) - torch.log1p(-prior)
        xd = self.input_drop(x)
        affinity = self.affinity_query(xd) @ self.affinity_token(tokens).t()  # [B, K]
        m0 = tokens.unsqueeze(0).expand(b, -1, -1)

        if latent:
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
                m, caps = layer(m, caps, key_mask)
            # zero-initialised gate: the latent path starts as an exact no-op on the warm-up model
            m = m0 + self.latent_gate * (m - m0)
            summary = caps.mean(dim=1, keepdim=True)
            delta = cfg.correction_bound * torch.tanh(self.head_delta(m * summary).squeeze(-1))
        else:
            m = m0
            delta = torch.zeros(b, k, dtype=x.dtype, device=x.device)

        mu_logit = self.head_mu(m).squeeze(-1) + self.prior_weight * prior_logit + affinity
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
        }


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
