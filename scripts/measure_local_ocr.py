"""Measure the REAL local OCR model on calibration sets: accuracy per task group (project
scorer) and end-to-end latency seen by the endpoint client.

    .venv/bin/python scripts/measure_local_ocr.py --set builtin-v1 --set builtin-v1-holdout

Starts ``LocalServer`` in this process on 127.0.0.1 (free port), sends every example with
``lrcal.endpoints.EndpointClient`` exactly as ``lrcal calibrate`` does (prompt from
``build_prompt``, image as a data URL, streaming), scores with ``score_answer``. Only this
script reads the reference answers; the server sees the prompt and the image.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lrcal.calsets import build_prompt, load_set, read_image_bytes, resolve_set, score_answer  # noqa: E402
from lrcal.endpoints import EndpointClient, EndpointConfig  # noqa: E402
from lrcal.local import RAPIDOCR_MODEL, LocalServer  # noqa: E402

GROUPS = ["ocr", "chart", "document", "spatial", "vqa", "math"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def run_set(url: str, model: str, examples, concurrency: int):
    config = EndpointConfig(url, model, max_concurrency=concurrency, timeout_s=120, max_retries=1)
    async with EndpointClient(config) as client:
        payloads = [(build_prompt(e), read_image_bytes(e)) for e in examples]
        return await asyncio.gather(*(client.complete(p, i, None) for p, i in payloads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", dest="sets", action="append", default=[], help="set name or path (repeatable)")
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight (default 1: latency of one request)")
    parser.add_argument("--workers", type=int, default=1, help="OCR engines in the server")
    parser.add_argument("--groups", help="only these task groups, comma-separated (e.g. ocr,document)")
    parser.add_argument("--json", type=Path, help="also write every outcome here")
    parser.add_argument("--verbose", action="store_true", help="print every text-group miss")
    args = parser.parse_args()
    sets = args.sets or ["builtin-v1", "builtin-v1-holdout"]

    start = time.monotonic()
    with LocalServer([RAPIDOCR_MODEL], workers=args.workers) as server:
        print(f"server ready in {time.monotonic() - start:.1f} s (load + warm-up) at {server.url}; "
              f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, load average "
              f"{os.getloadavg()[0]:.1f}")
        records = []
        for name in sets:
            calset = load_set(resolve_set(name))
            examples = [e for e in calset.examples if not args.groups or e.task_group in args.groups.split(",")]
            began = time.monotonic()
            results = asyncio.run(run_set(server.url, RAPIDOCR_MODEL, examples, args.concurrency))
            wall = time.monotonic() - began
            by_group: dict[str, list] = collections.defaultdict(list)
            by_subtype: dict[str, list] = collections.defaultdict(list)
            for example, result in zip(examples, results):
                score = score_answer(example, result.answer)
                subtype = (example.meta or {}).get("subtype", "?")
                row = {
                    "set": calset.name, "id": example.id, "group": example.task_group, "subtype": subtype,
                    "correct": score.correct, "score": score.score, "answer": result.answer,
                    "latency_ms": result.latency_ms, "error": result.error_kind,
                    "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
                }  # fmt: skip
                records.append(row)
                by_group[example.task_group].append(row)
                by_subtype[f"{example.task_group}/{subtype}"].append(row)
                if args.verbose and not score.correct and example.task_group in ("ocr", "document"):
                    print(f"  miss {example.id} [{subtype}] {example.question!r} -> {result.answer!r}")
            print(f"\n{calset.name} ({calset.short_version}): {len(results)} examples in {wall:.1f} s, "
                  f"concurrency {args.concurrency}, errors {sum(1 for r in results if r.error_kind)}")
            print("| group | n | accuracy | mean score | p50 ms | p95 ms |")
            print("|---|---|---|---|---|---|")
            groups = [g for g in GROUPS if g in by_group] + sorted(set(by_group) - set(GROUPS))
            for group in groups + ["all"]:
                rows = [r for g in groups for r in by_group[g]] if group == "all" else by_group[group]
                latencies = [r["latency_ms"] for r in rows if r["latency_ms"] is not None]
                print(f"| {group} | {len(rows)} | {statistics.fmean(r['correct'] for r in rows):.2f} | "
                      f"{statistics.fmean(r['score'] for r in rows):.2f} | {percentile(latencies, 0.5):.0f} | "
                      f"{percentile(latencies, 0.95):.0f} |")
            print("subtypes (ocr, document):", ", ".join(
                f"{k} {sum(r['correct'] for r in v)}/{len(v)}" for k, v in sorted(by_subtype.items())
                if k.split("/")[0] in ("ocr", "document")))
        stats = server.stats()
        print(f"\nserver: {stats['total_requests']} requests, max in flight {stats['max_total_in_flight']}, "
              f"engines busy at most {stats['max_engines_busy']} of {stats['engines']}")
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
