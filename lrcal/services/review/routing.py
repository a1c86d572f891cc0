"""Routing the snapshot's queries with the one routing policy (`lrcal.router.policy.policy_choice`)
at any λ and pool — instant, so the TUI re-routes live — and the diff between two pools
(which models lose which traffic when a candidate comes in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from lrcal.router.policy import Policy, policy_choice
from lrcal.services.review.snapshot import RoutingSnapshot


def finite_mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else None


def finite_p50(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(np.percentile(values, 50)) if values.size else None


Z90 = 1.6448536269514722  # two-sided 90%


def wilson_interval(mean: float | None, n: int, z: float = Z90) -> tuple[float | None, float | None]:
    """The Wilson score interval of a mean score in [0, 1] over ``n`` outcomes (90% by default):
    honest at the small n of one routing cell, and never outside [0, 1]."""
    if mean is None or n <= 0:
        return None, None
    p = min(1.0, max(0.0, float(mean)))
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


@dataclass(frozen=True)
class Cell:
    n: int  # queries of the group routed to this model
    share: float  # n / group size
    predicted: float | None  # mean μ̃ on those queries
    measured: float | None  # mean stored score on those with an outcome
    measured_n: int
    latency_ms_p50: float | None  # p50 of measured latency on those queries
    cost_usd_mean: float | None
    measured_low: float | None = None  # 90% Wilson interval of ``measured`` over its measured_n outcomes
    measured_high: float | None = None


@dataclass
class RoutingTable:
    models: list[str]
    included: frozenset[str]
    lambda_cost: float
    lambda_latency: float
    tasks: list[str]  # row labels (task groups)
    group_sizes: dict[str, int]
    cells: dict[tuple[str, str], Cell]  # (task, model)
    winners: dict[str, str | None]  # per task group: the model with the largest share
    totals: dict[str, Cell]  # per model over all queries
    choice: np.ndarray  # [N] index into models (-1: no model available)
    scores: np.ndarray  # [N, M] the decision scores this pool routed on (`RoutingSnapshot.pool_scores`)
    quality_predicted: float | None
    quality_measured: float | None
    expected_cost_mean: float | None
    latency_ms_p50: float | None

    def cell(self, task: str, model: str) -> Cell:
        return self.cells[(task, model)]


def _cell(snap: RoutingSnapshot, scores: np.ndarray, mask: np.ndarray, j: int, group_n: int) -> Cell:
    n = int(mask.sum())
    measured = snap.measured[mask, j]
    measured_mean = finite_mean(measured) if n else None
    measured_n = int(np.isfinite(measured).sum())
    low, high = wilson_interval(measured_mean, measured_n)
    return Cell(
        n=n,
        share=(n / group_n) if group_n else 0.0,
        predicted=finite_mean(scores[mask, j]) if n else None,
        measured=measured_mean,
        measured_n=measured_n,
        latency_ms_p50=finite_p50(snap.latency[mask, j]) if n else None,
        cost_usd_mean=finite_mean(snap.cost[mask, j]) if n else None,
        measured_low=low,
        measured_high=high,
    )


def route(
    snap: RoutingSnapshot,
    lambda_cost: float = 0.0,
    lambda_latency: float = 0.0,
    included: Iterable[str] | None = None,
    *,
    pool: Iterable[str] | None = None,
) -> RoutingTable:
    """Route the snapshot's queries: `policy_choice` over the ``included`` models (default: the enabled
    pool) at these λ, with expected cost / latency normalized over ``pool`` (default:
    ``included``; live validation normalizes with and without its candidate over one pool)."""
    included_set = frozenset(snap.default_included if included is None else included) & frozenset(snap.models)
    pool_set = included_set | (frozenset(pool) if pool is not None else frozenset())
    included_mask = np.asarray([m in included_set for m in snap.models], dtype=bool)
    # scored as the gateway would score this pool (a query no included model is measured on
    # keeps its estimates' order), not as the snapshot's pool of every model with a token
    scores = snap.pool_scores(included_mask)
    available = included_mask if snap.capable is None else included_mask[None, :] & snap.capable
    choice = policy_choice(
        scores,
        available,
        Policy(lambda_cost=float(lambda_cost), lambda_latency=float(lambda_latency)),
        expected_cost=snap.expected_cost,
        expected_latency=snap.expected_latency,
        pool=np.asarray([m in pool_set for m in snap.models], dtype=bool),
    ).choice
    tasks = snap.task_groups
    group_sizes = {t: int((snap.tasks == t).sum()) for t in tasks}
    cells: dict[tuple[str, str], Cell] = {}
    winners: dict[str, str | None] = {}
    for task in tasks:
        in_group = snap.tasks == task
        best: tuple[float, float, str] | None = None
        for j, model in enumerate(snap.models):
            cell = _cell(snap, scores, in_group & (choice == j), j, group_sizes[task])
            cells[(task, model)] = cell
            if cell.n:
                key = (cell.share, cell.predicted or 0.0, model)
                if best is None or key[:2] > best[:2]:
                    best = key
        winners[task] = best[2] if best else None
    n = len(snap.examples)
    totals = {model: _cell(snap, scores, choice == j, j, n) for j, model in enumerate(snap.models)}
    rows = np.flatnonzero(choice >= 0)
    chosen = choice[rows]
    return RoutingTable(
        models=list(snap.models),
        included=included_set,
        lambda_cost=float(lambda_cost),
        lambda_latency=float(lambda_latency),
        tasks=tasks,
        group_sizes=group_sizes,
        cells=cells,
        winners=winners,
        totals=totals,
        choice=choice,
        scores=scores,
        quality_predicted=finite_mean(scores[rows, chosen]) if rows.size else None,
        quality_measured=finite_mean(snap.measured[rows, chosen]) if rows.size else None,
        expected_cost_mean=finite_mean(snap.expected_cost[chosen]) if rows.size else None,
        latency_ms_p50=finite_p50(snap.latency[rows, chosen]) if rows.size else None,
    )


@dataclass(frozen=True)
class Move:
    """Queries of one task group that go to ``to_model`` with the new pool instead of ``from_model``."""

    task: str
    from_model: str | None
    to_model: str | None
    n: int
    share_of_group: float
    predicted_before: float | None
    predicted_after: float | None
    measured_before: float | None
    measured_after: float | None


@dataclass
class RoutingDiff:
    added: list[str]
    removed: list[str]
    n: int
    moved: int
    moves: list[Move]
    lost: dict[str, int]  # model -> queries it loses
    gained: dict[str, int]  # model -> queries it gains
    before: RoutingTable
    after: RoutingTable


def diff(
    snap: RoutingSnapshot,
    with_set: Iterable[str],
    without_set: Iterable[str],
    lambda_cost: float = 0.0,
    lambda_latency: float = 0.0,
) -> RoutingDiff:
    """Routing without → with (e.g. a candidate included): which models lose which traffic.

    Both sides normalize cost/latency over the union of the two pools, as live validation
    does for its with/without policies, so the only difference is the availability mask."""
    with_set, without_set = frozenset(with_set), frozenset(without_set)
    pool = with_set | without_set
    before = route(snap, lambda_cost, lambda_latency, without_set, pool=pool)
    after = route(snap, lambda_cost, lambda_latency, with_set, pool=pool)
    changed = before.choice != after.choice
    moves: list[Move] = []
    lost: dict[str, int] = {}
    gained: dict[str, int] = {}
    name = lambda j: snap.models[j] if j >= 0 else None  # noqa: E731
    for task in snap.task_groups:
        in_group = (snap.tasks == task) & changed
        pairs: dict[tuple[int, int], list[int]] = {}
        for i in np.flatnonzero(in_group):
            pairs.setdefault((int(before.choice[i]), int(after.choice[i])), []).append(int(i))
        group_n = int((snap.tasks == task).sum())
        for (src, dst), idx in sorted(pairs.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            idx_arr = np.asarray(idx)
            moves.append(
                Move(
                    task=task,
                    from_model=name(src),
                    to_model=name(dst),
                    n=len(idx),
                    share_of_group=len(idx) / group_n,
                    predicted_before=finite_mean(before.scores[idx_arr, src]) if src >= 0 else None,
                    predicted_after=finite_mean(after.scores[idx_arr, dst]) if dst >= 0 else None,
                    measured_before=finite_mean(snap.measured[idx_arr, src]) if src >= 0 else None,
                    measured_after=finite_mean(snap.measured[idx_arr, dst]) if dst >= 0 else None,
                )
            )
            if src >= 0:
                lost[name(src)] = lost.get(name(src), 0) + len(idx)
            if dst >= 0:
                gained[name(dst)] = gained.get(name(dst), 0) + len(idx)
    return RoutingDiff(
        added=sorted(with_set - without_set, key=snap.models.index),
        removed=sorted(without_set - with_set, key=snap.models.index),
        n=len(snap.examples),
        moved=int(changed.sum()),
        moves=moves,
        lost=dict(sorted(lost.items(), key=lambda kv: -kv[1])),
        gained=dict(sorted(gained.items(), key=lambda kv: -kv[1])),
        before=before,
        after=after,
    )
