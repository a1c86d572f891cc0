"""Baselines measured beside the router, each fit on the training rows of the same split.

Every baseline returns a [n_test, K] matrix of predicted quality; routing takes the argmax
over the models available on each row (the same rule as the router).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from lrcal.router.linear_head import LINEAR_L2, fit_linear_heads, head_probabilities, log_loss

KNN_KS = (5, 10, 25, 50, 100)
LOGISTIC_L2 = LINEAR_L2


def nanmean_or_zero(a: np.ndarray) -> np.ndarray:
    n = np.isfinite(a).sum(axis=0)
    return np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), 0.0)


def routed(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices chosen per row (argmax of pred over models with an outcome; -1 if none)."""
    avail = np.isfinite(y)
    s = np.where(avail, pred, -np.inf)
    pick = s.argmax(axis=1)
    pick[~avail.any(axis=1)] = -1
    return pick


def picked_outcomes(pick: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[N] outcome of the picked model per row (NaN where no model has an outcome: pick -1)."""
    out = np.full(len(pick), np.nan)
    ok = pick >= 0
    out[ok] = y[np.flatnonzero(ok), pick[ok]]
    return out


def accuracy_of(pick: np.ndarray, y: np.ndarray) -> float:
    if not (pick >= 0).any():
        return float("nan")
    return float(np.nanmean(picked_outcomes(pick, y)))


def best_single(y_train: np.ndarray, n_test: int) -> np.ndarray:
    mean = nanmean_or_zero(y_train)
    return np.broadcast_to(mean, (n_test, len(mean))).copy()


def per_task_best(y_train: np.ndarray, tasks_train: Sequence[str | None], tasks_test: Sequence[str | None]) -> np.ndarray:
    """Lookup of each model's training accuracy on the query's task (unknown task: overall),
    with the overall accuracy as a tiny tie-breaker."""
    overall = nanmean_or_zero(y_train)
    table: dict[str | None, np.ndarray] = {}
    tasks_train = np.asarray([t or "" for t in tasks_train], dtype=object)
    for t in set(tasks_train):
        table[t] = nanmean_or_zero(y_train[tasks_train == t])
    out = np.empty((len(tasks_test), y_train.shape[1]))
    for i, t in enumerate(tasks_test):
        out[i] = table.get(t or "", overall) + 1e-6 * overall
    return out


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def knn_predict(X_train: np.ndarray, y_train: np.ndarray, X_query: np.ndarray, k: int) -> np.ndarray:
    """Mean outcome of the k most cosine-similar training queries (ties: the lower row)."""
    sims = _unit(X_query) @ _unit(X_train).T
    k = max(1, min(k, X_train.shape[0]))
    # stable tie-breaking so identical feature vectors (task-only data) give a fixed neighbour set
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    neigh = y_train[order]  # [n, k, K]
    n = np.isfinite(neigh).sum(axis=1)
    mean = np.where(n > 0, np.nansum(neigh, axis=1) / np.maximum(n, 1), 0.0)
    return mean + 1e-6 * nanmean_or_zero(y_train)


def knn_choose_k(X_train, y_train, X_val, y_val, ks: Sequence[int] = KNN_KS) -> tuple[int, dict[int, float]]:
    scores = {k: accuracy_of(routed(knn_predict(X_train, y_train, X_val, k), y_val), y_val) for k in ks}
    best = max(ks, key=lambda k: (np.nan_to_num(scores[k], nan=-1.0), -k))
    return best, scores


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float, iters: int = 200):
    """One L2-regularized logistic regression per model (column of ``y``, NaN: not run), fitted
    jointly by L-BFGS (the router's own linear heads, `lrcal.router.linear_head`); returns the
    predictor X -> [n, K] probabilities."""
    heads = fit_linear_heads(X, y, l2, iters)
    return lambda Xq: head_probabilities(Xq, heads)


def logistic_per_model(X_train, y_train, X_val, y_val, X_test, l2s: Sequence[float] = LOGISTIC_L2) -> tuple[np.ndarray, float]:
    """One L2-regularized logistic regression per model on the same features; the L2
    strength is chosen by validation log-loss, then refit on train + validation."""
    losses = {l2: log_loss(fit_logistic(X_train, y_train, l2)(X_val), y_val) for l2 in l2s}
    best = min(l2s, key=lambda l2: losses[l2])
    model = fit_logistic(np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val]), best)
    return model(X_test), best


def random_accuracy(y: np.ndarray) -> float:
    """Expected accuracy of a uniformly random available model (exact, no sampling)."""
    ok = np.isfinite(y).any(axis=1)
    return float(np.nanmean(y[ok], axis=1).mean())


def oracle_accuracy(y: np.ndarray) -> float:
    ok = np.isfinite(y).any(axis=1)
    return float(np.nanmax(y[ok], axis=1).mean())
