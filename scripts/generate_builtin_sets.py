#!/usr/bin/env python3
"""Write and verify the committed built-in calibration sets.

    .venv/bin/python scripts/generate_builtin_sets.py          # (re)write calibration_sets/
    .venv/bin/python scripts/generate_builtin_sets.py --check  # regenerate in a temp dir, compare

Sets (seeds in lrcal.calsets.generator.BUILTIN_SEEDS):
  builtin-v1          128 examples, seed 1
  builtin-v1-quick     64-example subset of builtin-v1, stratified by task group and subtype
                      (same ids, same manifest lines, identical image bytes)
  builtin-v1-holdout  144 examples, seed 2 (live validation)
  builtin-v1-pool     512 examples, seed 4 (the candidate pool of `lrcal calibrate --adaptive`)
The demo's training set (builtin-v1-train, 1,000 examples, seed 3) is generated at run time;
this script generates it in a temporary directory to check that it is disjoint too.

Verification: every set is generated twice and must have the same version; the sets must
validate; builtin-v1, builtin-v1-holdout, builtin-v1-pool and builtin-v1-train must share no
id, no image and no (image, question) pair; quick must be a subset of builtin-v1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lrcal.calsets import load_set, stratified_subset, validate_set  # noqa: E402
from lrcal.calsets.format import MANIFEST_NAME, CalibrationSet  # noqa: E402
from lrcal.calsets.generator import (  # noqa: E402
    BUILTIN_SEEDS,
    BUILTIN_SIZES,
    POOL_SET_NAME,
    TRAIN_SET_NAME,
    generate_set,
    provenance,
    set_info,
    write_set_dir,
)
from lrcal.calsets.overlap import duplicate_images, overlap  # noqa: E402

OUT = REPO / "calibration_sets"
QUICK_DESCRIPTION = (
    "64-example subset of builtin-v1, stratified by task group and subtype "
    "(same ids, manifest lines and image bytes)."
)


def build_all(root: Path) -> dict[str, CalibrationSet]:
    """Generate every set under ``root`` (train included); returns the loaded sets."""
    sets: dict[str, CalibrationSet] = {}
    for name in ("builtin-v1", "builtin-v1-holdout", POOL_SET_NAME, TRAIN_SET_NAME):
        started = time.perf_counter()
        generated = generate_set(root / name, name, BUILTIN_SIZES[name], BUILTIN_SEEDS[name])
        seconds = time.perf_counter() - started
        print(f"  generated {name}: {len(generated)} examples in {seconds:.2f} s ({len(generated) / seconds:.0f} examples/s)")
        sets[name] = generated
    sets["builtin-v1-quick"] = write_quick(root / "builtin-v1-quick", sets["builtin-v1"])
    return sets


def write_quick(out: Path, full: CalibrationSet) -> CalibrationSet:
    chosen = {e.id for e in stratified_subset(full.examples, BUILTIN_SIZES["builtin-v1-quick"])}
    lines = (full.path / MANIFEST_NAME).read_bytes().splitlines(keepends=True)
    entries = []
    for line in lines:
        record = json.loads(line)
        if record["id"] in chosen:
            entries.append((record, (full.path / record["image"]).read_bytes()))
    info = set_info("builtin-v1-quick", QUICK_DESCRIPTION, full.task_groups, {"subset_of": "builtin-v1", "n": len(entries)})
    quick = write_set_dir(out, info, entries, overwrite=True)
    quick_lines = set((out / MANIFEST_NAME).read_bytes().splitlines(keepends=True))
    if not quick_lines <= set(lines):
        raise SystemExit("builtin-v1-quick: manifest lines differ from builtin-v1's")
    return quick


def verify(sets: dict[str, CalibrationSet]) -> list[str]:
    failures: list[str] = []
    for name, s in sets.items():
        problems = validate_set(s.path)
        if problems:
            failures.append(f"{name}: {len(problems)} validation problems, first: {problems[0]}")
        if load_set(s.path).version != s.version:
            failures.append(f"{name}: version as generated differs from version as loaded")
        dupes = duplicate_images(s)
        if dupes:
            failures.append(f"{name}: {len(dupes)} images used by more than one example")
    disjoint = ("builtin-v1", "builtin-v1-holdout", POOL_SET_NAME, TRAIN_SET_NAME)
    for i, a in enumerate(disjoint):
        for b in disjoint[i + 1 :]:
            shared = overlap(sets[a], sets[b])
            if shared:
                failures.append(f"{a} and {b} overlap: {shared.describe()}")
    full, quick = sets["builtin-v1"], sets["builtin-v1-quick"]
    by_id = full.by_id()
    for e in quick.examples:
        twin = by_id.get(e.id)
        if twin is None or twin.image_sha256 != e.image_sha256 or twin.question != e.question:
            failures.append(f"builtin-v1-quick: {e.id} is not identical to builtin-v1's")
            break
    return failures


def summary(sets: dict[str, CalibrationSet]) -> None:
    total = 0
    for name in ("builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", POOL_SET_NAME, TRAIN_SET_NAME):
        s = sets[name]
        size = sum(p.stat().st_size for p in s.path.rglob("*") if p.is_file())
        if name != TRAIN_SET_NAME:
            total += size
        counts = ", ".join(f"{g} {n}" for g, n in s.group_counts().items())
        print(f"  {name:20s} {len(s):5d} examples  {size / 1e6:6.2f} MB  version {s.short_version}  ({counts})")
    print(f"  committed total: {total / 1e6:.2f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare with calibration_sets/")
    args = parser.parse_args()
    print("builds:", json.dumps(provenance()))
    with tempfile.TemporaryDirectory(prefix="lrcal-builtin-") as tmp:
        first = build_all(Path(tmp) / "a")
        failures = verify(first)
        second = build_all(Path(tmp) / "b")
        for name in first:
            if first[name].version != second[name].version:
                failures.append(f"{name}: two generations differ ({first[name].short_version} vs {second[name].short_version})")
        if args.check:
            for name in ("builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", POOL_SET_NAME):
                committed = load_set(OUT / name)
                if committed.version != first[name].version:
                    failures.append(f"{name}: committed version {committed.short_version} != regenerated {first[name].short_version}")
        if failures:
            print("FAILED:")
            for failure in failures:
                print("  " + failure)
            return 1
        summary(first)
        if args.check:
            print("OK: committed sets match a fresh generation")
            return 0
        OUT.mkdir(exist_ok=True)
        for name in ("builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", POOL_SET_NAME):
            target = OUT / name
            staging = OUT / f".{name}.new"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(first[name].path, staging)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
            if load_set(target).version != first[name].version:
                print(f"FAILED: {name} changed while copying")
                return 1
        print(f"OK: wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
