#!/usr/bin/env python3
"""Time `train_router` on a synthetic 3,000 samples x 20 models table (the issue's budget:
2 minutes on 2 CPU threads), beside the per-model logistic-regression floor fit on the same
features in the same run.

    .venv/bin/python tests/bench/bench_router_training.py [--threads 2] [--ensemble 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from lrcal.evaluation.baselines import logistic_per_model
from lrcal.evaluation.synthetic import synthetic_outcomes
from lrcal.features import featurize_table, fit_feature_spec
from lrcal.router import RouterData, train_router

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ensemble", type=int, default=3)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--models", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table = synthetic_outcomes(n=args.samples, n_models=args.models, tasks=tuple(f"task{i}" for i in range(8)), seed=0)
    started = time.perf_counter()
    spec = fit_feature_spec(table.tasks, table.metadata)
    X = featurize_table(spec, table)
    features_s = time.perf_counter() - started
    data = RouterData.from_table(table, spec, X)
    started, cpu = time.perf_counter(), time.process_time()
    router = train_router(data, spec, ensemble=args.ensemble)
    router_s, router_cpu = time.perf_counter() - started, time.process_time() - cpu
    rows = np.arange(table.n_samples)
    started, cpu = time.perf_counter(), time.process_time()
    logistic_per_model(X[rows[:2600]], table.scores[:2600], X[2600:], table.scores[2600:], X[:10])
    logistic_s, logistic_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({
        "samples": args.samples, "models": args.models, "threads": args.threads, "ensemble": args.ensemble,
        "featurize_seconds": round(features_s, 2), "router_train_seconds": round(router_s, 1),
        "router_train_cpu_seconds": round(router_cpu, 1),
        "logistic_floor_seconds": round(logistic_s, 1), "logistic_floor_cpu_seconds": round(logistic_cpu, 1),
        "ratio_router_to_logistic": round(router_s / logistic_s, 2),
        "epochs": router.info["epochs"], "parameters": router.parameter_count(),
        "note": "CPU seconds are the process's (all threads); wall seconds include other processes on a shared machine",
    }, indent=2))
