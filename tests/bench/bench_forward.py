#!/usr/bin/env python3
"""Router forward time per query (batch 256 and 1) and parameter count, against a
reference-style network measured in the same run. Same as `lrcal bench forward`.

    .venv/bin/python tests/bench/bench_forward.py [--threads 2] [--models 10,20]
"""

from __future__ import annotations

import argparse
import json

from lrcal.evaluation.speed import bench_forward

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="10,20")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = bench_forward([int(k) for k in args.models.split(",")], threads=args.threads, repeats=args.repeats)
    print(json.dumps(result, indent=2))
