#!/usr/bin/env python3
"""Featurizer throughput: N queries with size x size images vs plain pillow decoding of the
same files, measured in the same run. Same as `lrcal bench features`.

    .venv/bin/python tests/bench/bench_features.py [--queries 1000] [--size 512] [--format jpeg] [--threads 2]
"""

from __future__ import annotations

import argparse
import json

from lrcal.evaluation.speed import bench_features

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--format", default="jpeg", choices=("jpeg", "png"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(bench_features(args.queries, args.size, args.format, args.threads), indent=2))
