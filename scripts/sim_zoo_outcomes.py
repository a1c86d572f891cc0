"""Run every simulated zoo model on a generated training set plus the built-in set and store
the outcomes in an lrcal home (for `lrcal --home DIR bench coldstart --from-home`).

    python scripts/sim_zoo_outcomes.py --home /tmp/zoo-home --train-size 600
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--train-size", type=int, default=600)
    parser.add_argument("--set", default="builtin-v1")
    parser.add_argument("--latency-scale", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    from lrcal.calsets.generator import generate_train_set
    from lrcal.services.calibration import CalibrateRequest, calibrate
    from lrcal.services.models import add_model
    from lrcal.sim import load_zoo
    from lrcal.sim.process import sim_process
    from lrcal.store import Store

    started = time.perf_counter()
    args.home.mkdir(parents=True, exist_ok=True)
    train_dir = args.home / "sets" / "zoo-train"
    if not train_dir.exists():
        generate_train_set(train_dir, n=args.train_size)
    store = Store.open(args.home)
    zoo = load_zoo("default").models
    sim_args = ["--set", args.set, "--set", str(train_dir), "--latency-scale", str(args.latency_scale)]
    with sim_process(sim_args) as base_url:
        for model in zoo:
            if store.find_model(model.name) is None:
                add_model(store, model.name, base_url=base_url, price_in=model.price_in_per_mtok,
                          price_out=model.price_out_per_mtok, max_concurrency=args.concurrency, probe=False)
            for set_ref in (str(train_dir), args.set):
                report = calibrate(store, CalibrateRequest(model=model.name, set_ref=set_ref, concurrency=args.concurrency))
                print(f"{model.name} on {Path(set_ref).name}: accuracy {report['accuracy']:.3f} "
                      f"({report['completed']} examples, {report['errors']} errors)", flush=True)
    store.close()
    print(f"done in {time.perf_counter() - started:.0f}s; home {args.home}")


if __name__ == "__main__":
    main()
