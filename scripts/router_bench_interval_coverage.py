"""Coverage of `router_bench.paired_interval` (the row bootstrap of per-row differences from
K-fold cross-fitting that `lrcal bench router` reports) for method A - method B, with kNN (k by
validation) as A and the per-task best as B, on `lrcal.evaluation.synthetic` data. Target: the
expected accuracy difference of the two procedures trained on (K-1)/K of n rows, measured on
fresh rows over many training sets (docs/benchmarks.md, "What these intervals do and do not
cover"; first written by a statistics review).

    python scripts/router_bench_interval_coverage.py 150     # data sets to check
"""
import sys

import numpy as np

from lrcal.evaluation import baselines as B
from lrcal.evaluation.router_bench import units_for, paired_interval
from lrcal.evaluation.synthetic import synthetic_outcomes
from lrcal.features import featurize_table, fit_feature_spec

N, FOLDS = 300, 5
BONUS = float(sys.argv[2]) if len(sys.argv) > 2 else 0.15
def world(seed, n, world_seed=0):
    # same model skills / specialities for every draw: rebuild with the world seed, then resample rows
    t = synthetic_outcomes(n=n, seed=world_seed, keyword_bonus=BONUS)
    return t
# synthetic_outcomes ties model skills and rows to one seed; to get fresh rows from the same world we
# generate one big table and take disjoint row subsets of it
BIG = synthetic_outcomes(n=200_000 if len(sys.argv) < 4 else int(sys.argv[3]), seed=0, keyword_bonus=BONUS)
spec = fit_feature_spec(BIG.tasks, BIG.metadata)
X_all = featurize_table(spec, BIG)
Y_all = BIG.scores
T_all = np.asarray(BIG.tasks, dtype=object)
def methods(tr, va, te):
    fit = np.concatenate([tr, va])
    k, _ = B.knn_choose_k(X_all[tr], Y_all[tr], X_all[va], Y_all[va])
    a = B.picked_outcomes(B.routed(B.knn_predict(X_all[fit], Y_all[fit], X_all[te], k), Y_all[te]), Y_all[te])
    b = B.picked_outcomes(B.routed(B.per_task_best(Y_all[fit], T_all[fit], T_all[te]), Y_all[te]), Y_all[te])
    return a, b
rng = np.random.default_rng(5)
pool = rng.permutation(len(BIG.tasks))
FRESH = pool[:10000]; rest = pool[10000:]
# target: train on 0.8 N rows (same 7:1 train/val split as the bench), test on FRESH
tgt = []
for r in range(100):
    rows = rest[r * N:(r + 1) * N]
    units = units_for(list(T_all[rows]), [r], FOLDS)
    u = units[0]
    a, b = methods(rows[u.train], rows[u.val], FRESH)
    tgt.append(np.nanmean(a - b))
theta = float(np.mean(tgt)); print(f"target difference kNN - per-task best: {100*theta:+.2f} pts (sd over training sets {100*np.std(tgt):.2f})")
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
cover, widths = 0, []
off = 100 * N
for r in range(reps):
    rows = rest[off + r * N: off + (r + 1) * N]
    units = units_for(list(T_all[rows]), [0], FOLDS)
    diff = np.full(N, np.nan)
    for u in units:
        a, b = methods(rows[u.train], rows[u.val], rows[u.test])
        diff[u.test] = a - b
    m, lo, hi = paired_interval(diff, seed=r)
    cover += lo <= theta <= hi; widths.append(hi - lo)
print(f"95% row-bootstrap interval covers the target in {cover/reps:.3f} of {reps} datasets (mean width {100*np.mean(widths):.1f} pts)")
