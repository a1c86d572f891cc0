"""Diagnostic: `lrcal ...` with every decision on the network's own scores (the decision rule
replaced by the identity), to measure what the rule costs a cold start. Arguments as `lrcal`.

    python scripts/coldstart_identity_rule.py bench coldstart --outcomes ../shared/data/blink_val_outcomes.csv \\
        --holdout GPT4o --k 64,128 --repeats 3 --sampler uniform,adaptive --jobs 1 --json
"""

from __future__ import annotations

import sys

import numpy as np

from lrcal.router import api


def main() -> None:
    # in-process only (--jobs 1): worker processes would import the unpatched module
    api.decision_scores = lambda score, prior, overall, rule: np.asarray(score, dtype=np.float64)
    from lrcal.cli import main as lrcal_main

    lrcal_main(sys.argv[1:])


if __name__ == "__main__":
    main()
