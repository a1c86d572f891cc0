"""Onboarding's per-task prediction for a model vs what it measured: on its calibration
examples and, live, on the held-out validation queries. Markdown table on stdout.

    python scripts/coldstart_report.py --home .lrcal-demo --model sim-docreader-m
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    conn = sqlite3.connect(f"file:{args.home / 'lrcal.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    token = conn.execute(
        "select t.* from model_tokens t join models m on m.id = t.model_id where m.name = ? and t.stale = 0 "
        "order by t.id desc limit 1", [args.model]).fetchone()
    if token is None:
        raise SystemExit(f"error: no fitted token for {args.model} in {args.home}")
    per_task = json.loads(token["per_task"])
    details = json.loads(token["details"] or "{}")
    live = {
        r["task_group"]: (r["acc"], r["n"])
        for r in conn.execute(
            "select e.task_group, avg(o.correct) as acc, count(*) as n from outcomes o join runs r on r.id = o.run_id "
            "join models m on m.id = r.model_id join examples e on e.id = o.example_id "
            "where m.name = ? and r.kind = 'validation' group by e.task_group", [args.model])
    }
    print(f"{args.model}: router {token['router_version']}, {token['n_examples']} calibration examples, "
          f"method {details.get('method')}, prior {token['prior_strength']}, fit {token['fit_seconds']:.2f}s, "
          f"pool {', '.join(details.get('pool', []))}\n")
    print("| task group | predicted | 90% interval | calibration measured (n) | holdout measured (n) | holdout inside interval |")
    print("|---|---|---|---|---|---|")
    inside = total = 0
    for group in sorted(per_task):
        p = per_task[group]
        acc, n = live.get(group, (None, 0))
        flag = ""
        if acc is not None:
            ok = p["low"] <= acc <= p["high"]
            inside += ok
            total += 1
            flag = "yes" if ok else ("above" if acc > p["high"] else "below")
        print(f"| {group} | {p['predicted']:.2f} | {p['low']:.2f}–{p['high']:.2f} | {p['measured']:.2f} ({p['n']}) | "
              f"{'-' if acc is None else f'{acc:.2f}'} ({n}) | {flag} |")
    if total:
        print(f"\nholdout accuracy inside the interval for {inside} of {total} task groups")


if __name__ == "__main__":
    main()
