"""Routing policies evaluated on live outcomes.

Everything here is arrays in, numbers out. ``LiveOutcomes`` holds what each model
really did on each validation query (score, cost, latency); a policy is a vector of
chosen model indices, one per query; its result is measured on those live outcomes.
The router's own choices come from the one routing policy, `lrcal.router.policy.policy_choice`.

A failed request (``errors``) is never a wrong answer: a policy's quality, cost and latency
are measured on the queries where the model it chose answered, and its failures are counted
in its error rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lrcal.gate.intervals import PairedOutcomes


@dataclass
class LiveOutcomes:
    models: list[str]  # M
    tasks: list[str]  # N task groups
    score: np.ndarray  # [N, M] in [0,1]
    cost_usd: np.ndarray  # [N, M] (NaN → treated as 0)
    latency_ms: np.ndarray  # [N, M] (NaN → the model's median)
    errors: np.ndarray | None = None  # [N, M] bool: the request failed (its score means nothing)

    def __post_init__(self) -> None:
        self.score = np.nan_to_num(np.asarray(self.score, dtype=float), nan=0.0)
        if self.errors is None:
            self.errors = np.zeros(self.score.shape, dtype=bool)
        self.errors = np.asarray(self.errors, dtype=bool)
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
    error_rate: float = 0.0  # share of queries where the chosen model's request failed

    def as_dict(self, with_tasks: bool = False) -> dict:
        out = {
            "quality": self.quality,
            "error_rate": self.error_rate,
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
    answered = ~live.errors[rows, choice]
    share = {m: float(np.mean(choice == j)) for j, m in enumerate(live.models)}
    per_task: dict[str, dict] = {}
    if with_tasks:
        tasks = np.asarray(live.tasks, dtype=object)
        for task in sorted(set(live.tasks)):
            mask = tasks == task
            per_task[task] = {
                "n": int(mask.sum()),
                **_stats(live, rows[mask], choice[mask], answered[mask]),
                "share": {m: float(np.mean(choice[mask] == j)) for j, m in enumerate(live.models)},
            }
    return PolicyResult(name=name, choice=choice, share=share, per_task=per_task, **_stats(live, rows, choice, answered))


def _stats(live: LiveOutcomes, rows: np.ndarray, choice: np.ndarray, answered: np.ndarray) -> dict:
    """Quality, cost and latency over the answered queries; the failed ones as an error rate."""
    ok_rows, ok_choice = rows[answered], choice[answered]
    latency = live.latency_ms[ok_rows, ok_choice]
    if ok_rows.size == 0:
        return {"quality": 0.0, "cost_usd_mean": 0.0, "latency_ms_p50": 0.0, "latency_ms_p95": 0.0,
                "error_rate": 1.0 if rows.size else 0.0}  # fmt: skip
    return {
        "quality": float(live.score[ok_rows, ok_choice].mean()),
        "cost_usd_mean": float(live.cost_usd[ok_rows, ok_choice].mean()),
        "latency_ms_p50": float(np.percentile(latency, 50)),
        "latency_ms_p95": float(np.percentile(latency, 95)),
        "error_rate": float(1.0 - answered.mean()),
    }


def paired_outcomes(live: LiveOutcomes, with_choice: np.ndarray, without_choice: np.ndarray):
    """The two policies' outcomes on the queries where both chosen models answered (a failed
    request is left out of the comparison, never scored as a wrong answer); also that row mask."""
    rows = np.arange(live.n)
    a, b = np.asarray(with_choice, dtype=int), np.asarray(without_choice, dtype=int)
    keep = ~live.errors[rows, a] & ~live.errors[rows, b]
    r, a, b = rows[keep], a[keep], b[keep]
    paired = PairedOutcomes(
        quality_with=live.score[r, a], quality_without=live.score[r, b],
        cost_with=live.cost_usd[r, a], cost_without=live.cost_usd[r, b],
        latency_with=live.latency_ms[r, a], latency_without=live.latency_ms[r, b],
    )  # fmt: skip
    return paired, keep


def restricted(available: np.ndarray, capable: np.ndarray | None) -> np.ndarray:
    """[N, M] the ``available`` models ([M]) that may take each query (``capable`` [N, M]: a
    query with an image never goes to a text-only model). A query none of them may take keeps
    ``available``: the gateway would fail it, and a choice of -1 would index the last model's
    outcomes."""
    available = np.asarray(available, dtype=bool)
    if capable is None:
        return available
    allowed = available[None, :] & np.asarray(capable, dtype=bool)
    allowed[~allowed.any(axis=1)] = available
    return allowed


def fixed_choice(n: int, model_index: int) -> np.ndarray:
    return np.full(n, int(model_index), dtype=int)


def random_choice(n: int, available: np.ndarray, seed: int = 0) -> np.ndarray:
    idx = np.flatnonzero(np.asarray(available, dtype=bool))
    return np.random.default_rng(seed).choice(idx, size=n)


def oracle_choice(live: LiveOutcomes, available: np.ndarray) -> np.ndarray:
    """Best live score per query among the models that answered; ties go to the cheaper, then faster model."""
    avail = np.asarray(available, dtype=bool)
    score = np.where(avail[None, :] & ~live.errors, live.score, -1.0)
    # Lexicographic: score first, then lower cost, then lower latency.
    cost_rank = live.cost_usd / (live.cost_usd.max() + 1e-12)
    lat_rank = live.latency_ms / (live.latency_ms.max() + 1e-12)
    key = score * 1e6 - cost_rank * 1e3 - lat_rank
    return np.argmax(key, axis=1)
