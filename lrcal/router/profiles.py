"""Pool-independent capability profiles: a model described by its own outcomes only.

A profile is a fixed-length vector computed from a set of rows the model was run on:
overall accuracy (Beta(1,1)-smoothed), per-task accuracy shrunk toward the overall accuracy
(a Beta prior of strength ``smoothing``), per-task row counts, output-token / latency / cost
statistics and the endpoint error rate. Nothing about other models, nothing parsed from a
name, so a new model's profile from 64-128 calibration rows lives in the same space as an
incumbent's.

Realized cost / tokens / latency enter only as these per-model aggregates over *other*
rows, never as a feature of the query being routed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GLOBAL_FIELDS = (
    "overall_accuracy",
    "log_rows",
    "error_rate",
    "tokens_mean_log",
    "tokens_std_log",
    "has_tokens",
    "latency_mean_log",
    "latency_std_log",
    "has_latency",
    "cost_mean_log",
    "cost_std_log",
    "has_cost",
    "task_coverage",
)
N_GLOBAL = len(GLOBAL_FIELDS)


def profile_dim(n_tasks: int) -> int:
    return N_GLOBAL + 2 * n_tasks


@dataclass
class Profiles:
    vectors: np.ndarray  # [K, P] float32, the profile encoder's input
    task_accuracy: np.ndarray  # [K, V + 1] smoothed accuracy per task, last column = overall
    rows: np.ndarray  # [K] rows each profile was computed from

    @property
    def task_rows(self) -> np.ndarray:
        """[K, V + 1] rows behind each task accuracy (last column: all rows)."""
        return task_rows_from_profiles(self.vectors)


def task_rows_from_profiles(vectors: np.ndarray) -> np.ndarray:
    """Recover per-task row counts ([.., V + 1], last = all rows) from profile vectors."""
    vectors = np.asarray(vectors, dtype=np.float64)
    v = (vectors.shape[-1] - N_GLOBAL) // 2
    per_task = np.expm1(4.0 * vectors[..., N_GLOBAL + v : N_GLOBAL + 2 * v])
    total = np.expm1(5.0 * vectors[..., 1:2])
    return np.rint(np.concatenate([per_task, total], axis=-1)).astype(np.float32)


def _masked_log_stats(values: np.ndarray | None, mask: np.ndarray, scale: float, offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean and std of log1p(values*scale) per model over masked, finite entries."""
    k = mask.shape[0]
    if values is None:
        return np.zeros(k), np.zeros(k), np.zeros(k)
    v = values.T  # [K, N]
    ok = mask & np.isfinite(v)
    logs = np.where(ok, np.log1p(np.where(ok, v, 0.0) * scale), 0.0)
    n = ok.sum(1)
    mean = logs.sum(1) / np.maximum(n, 1)
    var = (np.where(ok, (logs - mean[:, None]) ** 2, 0.0)).sum(1) / np.maximum(n, 1)
    has = (n > 0).astype(np.float64)
    return (mean / offset) * has, np.sqrt(var) / 4.0 * has, has


def compute_profiles(
    task_ids: np.ndarray,
    n_tasks: int,
    scores: np.ndarray,
    row_mask: np.ndarray | None = None,
    *,
    output_tokens: np.ndarray | None = None,
    latency_ms: np.ndarray | None = None,
    cost_usd: np.ndarray | None = None,
    errors: np.ndarray | None = None,
    smoothing: float = 4.0,
) -> Profiles:
    """Profiles of K models from their outcomes on N rows.

    task_ids: [N] int, index into the task vocabulary or -1 (no / unknown task).
    scores: [N, K] in [0, 1], NaN = the model was not run on that row.
    row_mask: [K, N] bool, which rows each model's profile may use (default: all).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, k = scores.shape
    avail = np.isfinite(scores).T  # [K, N]
    mask = avail if row_mask is None else (avail & np.asarray(row_mask, dtype=bool))
    y = np.where(mask, np.nan_to_num(scores.T), 0.0)  # [K, N]
    rows = mask.sum(1).astype(np.float64)
    overall = (y.sum(1) + 1.0) / (rows + 2.0)

    task_ids = np.asarray(task_ids, dtype=np.int64)
    if n_tasks > 0:
        onehot = np.zeros((n, n_tasks))
        known = task_ids >= 0
        onehot[np.flatnonzero(known), task_ids[known]] = 1.0
        counts = mask.astype(np.float64) @ onehot  # [K, V]
        sums = y @ onehot
        per_task = (sums + smoothing * overall[:, None]) / (counts + smoothing)
        coverage = (counts > 0).mean(1)
    else:
        counts = np.zeros((k, 0))
        per_task = np.zeros((k, 0))
        coverage = np.zeros(k)

    err = np.zeros(k)
    if errors is not None:
        e = np.asarray(errors, dtype=bool).T
        err = (e & mask).sum(1) / np.maximum(rows, 1)
    tok_mean, tok_std, tok_has = _masked_log_stats(output_tokens, mask, 1.0, 8.0)
    lat_mean, lat_std, lat_has = _masked_log_stats(latency_ms, mask, 1.0, 10.0)
    cost_mean, cost_std, cost_has = _masked_log_stats(cost_usd, mask, 1e6, 10.0)  # micro-dollars

    glob = np.stack(
        [overall, np.log1p(rows) / 5.0, err, tok_mean, tok_std, tok_has, lat_mean, lat_std, lat_has,
         cost_mean, cost_std, cost_has, coverage],
        axis=1,
    )
    vectors = np.concatenate([glob, per_task - overall[:, None], np.log1p(counts) / 4.0], axis=1).astype(np.float32)
    task_accuracy = np.concatenate([per_task, overall[:, None]], axis=1).astype(np.float32)
    return Profiles(vectors=vectors, task_accuracy=task_accuracy, rows=rows)


def draw_profile_masks(
    candidate: np.ndarray,
    rng: np.random.Generator,
    *,
    rows_min: int,
    rows_max: int,
    full_prob: float,
) -> np.ndarray:
    """Per model, a random subset of its candidate rows: with probability ``full_prob`` all of
    them, else a uniform size in [rows_min, rows_max] (cold-start-sized profiles)."""
    k, n = candidate.shape
    out = np.zeros((k, n), dtype=bool)
    keys = rng.random((k, n))
    keys[~candidate] = np.inf
    for m in range(k):
        available = int(candidate[m].sum())
        if available == 0:
            continue
        if rng.random() < full_prob:
            out[m] = candidate[m]
            continue
        size = min(available, int(rng.integers(rows_min, rows_max + 1)))
        out[m, np.argpartition(keys[m], size - 1)[:size]] = True
    return out
