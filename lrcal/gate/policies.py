"""Routing policies evaluated on live outcomes.

Everything here is arrays in, numbers out. ``LiveOutcomes`` holds what each model
really did on each validation query (score, cost, latency); a policy is a vector of
chosen model indices, one per query; its result is measured on those live outcomes.
The router's own choices come from the one routing policy, `lrcal.router.policy.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LiveOutcomes:
    models: list[str]  # M
    tasks: list[str]  # N task groups
    score: np.ndarray  # [N, M] in [0,1]; failed requests score 0 for the model that failed
    cost_usd: np.ndarray  # [N, M] (NaN → treated as 0)
    latency_ms: np.ndarray  # [N, M] (NaN → the model's median)

    def __post_init__(self) -> None:
        self.score = np.nan_to_num(np.asarray(self.score, dtype=float), nan=0.0)
        self.cost_usd = np.nan_to_num(np.asarray(self.cost_usd, dtype=float), nan=0.0)
        lat = np.asarray(self.latency_ms, dtype=float).copy()
        for m in range(lat.shape[1]):
            col = lat[:, m]
            if np.isnan(col).any():
                fill = np.nanmedian(col) if np.isfinite(col).any() else 0.0
                col[np.isnan(col)] = fill
        self.latency_ms = lat

    @property
    def n(self) -> int:
        return self.score.shape[0]


@dataclass
class PolicyResult:
    name: str
    choice: np.ndarray  # [N] model index per query
    quality: float
    cost_usd_mean: float
    latency_ms_p50: float
    latency_ms_p95: float
    share: dict[str, float]
    per_task: dict[str, dict] = field(default_factory=dict)

    def as_dict(self, with_tasks: bool = False) -> dict:
        out = {
            "quality": self.quality,
            "cost_usd_mean": self.cost_usd_mean,
            "latency_ms_p50": self.latency_ms_p50,
            "latency_ms_p95": self.latency_ms_p95,
            "share": self.share,
        }
        if with_tasks:
            out["per_task"] = self.per_task
        return out


def measure(name: str, choice: np.ndarray, live: LiveOutcomes, *, with_tasks: bool = True) -> PolicyResult:
    choice = np.asarray(choice, dtype=int)
    rows = np.arange(live.n)
    quality = live.score[rows, choice]
    cost = live.cost_usd[rows, choice]
    latency = live.latency_ms[rows, choice]
    share = {m: float(np.mean(choice == j)) for j, m in enumerate(live.models)}
    per_task: dict[str, dict] = {}
    if with_tasks:
        tasks = np.asarray(live.tasks, dtype=object)
        for task in sorted(set(live.tasks)):
            mask = tasks == task
            sub = choice[mask]
            per_task[task] = {
                "n": int(mask.sum()),
                "quality": float(quality[mask].mean()),
                "cost_usd_mean": float(cost[mask].mean()),
                "latency_ms_p50": float(np.percentile(latency[mask], 50)),
                "latency_ms_p95": float(np.percentile(latency[mask], 95)),
                "share": {m: float(np.mean(sub == j)) for j, m in enumerate(live.models)},
            }
    return PolicyResult(
        name=name,
        choice=choice,
        quality=float(quality.mean()) if live.n else 0.0,
        cost_usd_mean=float(cost.mean()) if live.n else 0.0,
        latency_ms_p50=float(np.percentile(latency, 50)) if live.n else 0.0,
        latency_ms_p95=float(np.percentile(latency, 95)) if live.n else 0.0,
        share=share,
        per_task=per_task,
    )


def fixed_choice(n: int, model_index: int) -> np.ndarray:
    return np.full(n, int(model_index), dtype=int)


def random_choice(n: int, available: np.ndarray, seed: int = 0) -> np.ndarray:
    idx = np.flatnonzero(np.asarray(available, dtype=bool))
    return np.random.default_rng(seed).choice(idx, size=n)


def oracle_choice(live: LiveOutcomes, available: np.ndarray) -> np.ndarray:
    """Best live score per query; ties go to the cheaper, then faster model."""
    avail = np.asarray(available, dtype=bool)
    score = np.where(avail[None, :], live.score, -np.inf)
    # Lexicographic: score first, then lower cost, then lower latency.
    cost_rank = live.cost_usd / (live.cost_usd.max() + 1e-12)
    lat_rank = live.latency_ms / (live.latency_ms.max() + 1e-12)
    key = score * 1e6 - cost_rank * 1e3 - lat_rank
    return np.argmax(key, axis=1)
