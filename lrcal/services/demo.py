"""`lrcal demo`: the whole onboarding story on simulated endpoints, in one command.

1. generate a 1,000-example training set (same generator as the built-in sets, disjoint);
2. start the SIMULATED zoo in its own process on a free local port;
3. register the incumbent pool and run it on the training set (the router's training data);
4. enable the incumbents (the team's current pool) and train the shared router;
5. add a new specialist and a dominated model; calibrate both on builtin-v1 (128 examples):
   their capability tokens are fitted with the router frozen;
6. live-validate both on the held-out set: the specialist should be enabled, the dominated
   model rejected — each with its reasons on record;
7. leave everything in the home for `lrcal tui`, with its routing view precomputed (so the
   first launch starts warm).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from lrcal.errors import LrcalError

if TYPE_CHECKING:
    from lrcal.gate.decision import GateConfig

INCUMBENTS = ("sim-generalist-xl", "sim-lite-s", "sim-chartqa-m", "sim-spatial-m", "sim-mathsolver-l", "sim-balanced-m")
SPECIALIST = "sim-docreader-m"
DOMINATED = "sim-legacy-xl"
REAL_OCR = "rapidocr-ppocrv4"
MARKER = ".lrcal-demo"


@dataclass
class DemoOptions:
    fresh: bool = False
    train_size: int = 1000
    latency_scale: float = 0.5  # simulated latency well above the local HTTP overhead: p95 means something
    concurrency: int = 16
    lambda_cost: float | None = None  # None: the home's routing policy (λ = 0 until a validation saves one)
    lambda_latency: float | None = None
    with_real_ocr: bool = False
    validation_limit: int | None = None
    validation_sequential: bool = True  # stop each validation as soon as the gate is decided
    gate: "GateConfig | None" = None  # the gate's thresholds (default: GateConfig's); λ comes from the fields above
    calibration_set: str = "builtin-v1"
    validation_set: str = "builtin-v1-holdout"
    incumbents: tuple[str, ...] = INCUMBENTS
    candidates: tuple[str, ...] = (SPECIALIST, DOMINATED)


@dataclass
class DemoResult:
    home: Path
    seconds: float
    steps: list[dict] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    router_version: str | None = None

    def as_dict(self) -> dict:
        return {
            "home": str(self.home),
            "seconds": self.seconds,
            "router_version": self.router_version,
            "steps": self.steps,
            "candidates": self.candidates,
        }


def prepare_home(home: Path, fresh: bool) -> None:
    """A demo home is either new, empty, or a previous demo's (wiped with --fresh)."""
    home = Path(home)
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise LrcalError(
                f"{home} is not empty and was not made by `lrcal demo`; use another --home for the demo"
            )
        if not fresh:
            raise LrcalError(f"{home} already holds a demo; pass --fresh to start it again")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("made by lrcal demo; `lrcal demo --fresh` may delete this directory\n")


def run_demo(home: Path, options: DemoOptions, say: Callable[[str], None]) -> DemoResult:
    from lrcal.calsets.generator import generate_train_set
    from lrcal.services.calibration import CalibrateRequest, calibrate, calibrate_and_fit
    from lrcal.services.models import add_model, enable
    from lrcal.services.training import train_router
    from lrcal.services.live_validation import ValidateRequest, live_validate
    from lrcal.sim import load_zoo
    from lrcal.sim.process import sim_process
    from lrcal.store import Store
    from lrcal.gate.decision import GateConfig

    started = time.perf_counter()
    prepare_home(home, options.fresh)
    result = DemoResult(home=Path(home), seconds=0.0)

    def step(title: str):
        return _Step(result, title, say)

    train_dir = Path(home) / "sets" / "builtin-v1-train"
    with step(f"Generating a {options.train_size:,}-example training set (disjoint from the built-in sets)"):
        generate_train_set(train_dir, n=options.train_size)

    zoo = {m.name: m for m in load_zoo("default").models}
    store = Store.open(Path(home))
    # The simulator must recognise every set the demo sends: the built-in ones and the training set.
    recognised = [options.calibration_set, options.validation_set, str(train_dir)]
    args = [a for ref in recognised for a in ("--set", ref)] + ["--latency-scale", str(options.latency_scale)]
    with sim_process(args) as base_url:
        say(f"  SIMULATED endpoints at {base_url} (lrcal sim serve)")

        def register(name: str) -> None:
            model = zoo[name]
            add_model(store, name, base_url=base_url, price_in=model.price_in_per_mtok,
                      price_out=model.price_out_per_mtok, max_concurrency=options.concurrency,
                      metadata={"simulated": True, "role": model.role})  # fmt: skip

        with step(f"Registering the incumbent pool ({len(options.incumbents)} models)"):
            for name in options.incumbents:
                register(name)

        for name in options.incumbents:
            with step(f"Running incumbent {name} on the training set") as s:
                report = calibrate(store, CalibrateRequest(model=name, set_ref=str(train_dir),
                                                           concurrency=options.concurrency))  # fmt: skip
                s.note = f"accuracy {report['accuracy']:.3f}, {report['errors']} errors"
            enable(store, name, force=True, reason="initial pool (demo): the team's current models")

        with step("Training the shared router on the incumbents' outcomes") as s:
            trained = train_router(store)
            result.router_version = trained["version"]
            s.note = f"router {trained['version']}, {trained['summary']}"

        for name in options.candidates:
            register(name)
            with step(f"Onboarding {name}: calibrate on {options.calibration_set}, fit its token (router frozen)") as s:
                report = calibrate_and_fit(store, CalibrateRequest(model=name, set_ref=options.calibration_set,
                                                                   concurrency=options.concurrency))  # fmt: skip
                token = report["token"]
                s.note = f"accuracy {report['accuracy']:.3f}; token fitted in {token['fit_seconds']:.2f}s"

        gate = replace(options.gate or GateConfig(), lambda_cost=options.lambda_cost,
                       lambda_latency=options.lambda_latency)  # fmt: skip
        for name in options.candidates:
            with step(f"Live-validating {name} on {options.validation_set}") as s:
                validation = live_validate(
                    store,
                    ValidateRequest(model=name, set_ref=options.validation_set, limit=options.validation_limit,
                                    gate=gate, enable=True, concurrency=options.concurrency,
                                    sequential=options.validation_sequential,
                                    report_dir=Path(home) / "reports" / name),  # fmt: skip
                )
                s.note = f"{validation['decision']} → status {validation['status']}"
                result.candidates.append(_candidate_summary(validation))
    if options.with_real_ocr:
        _real_ocr(store, home, options, result, step, say)
    with step("Caching the routing view for `lrcal tui` (one router forward pass)"):
        from lrcal.services.review.snapshot import prepare_routing_cache

        prepare_routing_cache(store)  # this process has the router loaded: the first `lrcal tui` starts warm
    store.close()
    result.seconds = time.perf_counter() - started
    return result


def _candidate_summary(validation: dict) -> dict:
    pol = validation["policies"]
    return {
        "model": validation["model"],
        "decision": validation["decision"],
        "status": validation["status"],
        "quality_with": pol["router_with"]["quality"],
        "quality_without": pol["router_without"]["quality"],
        "p95_with": pol["router_with"]["latency_ms_p95"],
        "p95_without": pol["router_without"]["latency_ms_p95"],
        "cost_with": pol["router_with"]["cost_usd_mean"],
        "cost_without": pol["router_without"]["cost_usd_mean"],
        "share": pol["router_with"]["share"].get(validation["model"], 0.0),
        "examples_used": validation["sequential"]["examples_used"],
        "examples_planned": validation["sequential"]["examples_planned"],
        "reasons": validation["reasons"],
        "per_task": {t: {"live": row["candidate_accuracy"], "predicted": row["predicted"]}
                     for t, row in validation["per_task"].items()},  # fmt: skip
        "report": validation.get("report", {}).get("markdown"),
    }


def _real_ocr(store, home, options, result, step, say) -> None:
    """A real local OCR engine as one more candidate (needs the `ocr` extra)."""
    from lrcal.services.calibration import CalibrateRequest, calibrate_and_fit
    from lrcal.services.models import add_model
    from lrcal.services.live_validation import ValidateRequest, live_validate
    from lrcal.gate.decision import GateConfig

    try:
        from lrcal.local import LocalServer
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise LrcalError(f"--with-real-ocr needs the ocr extra: pip install 'lrcal[ocr]' ({exc})") from None
    with LocalServer(models=[REAL_OCR], host="127.0.0.1", port=0) as server:
        say(f"  REAL local OCR model at {server.url}")
        add_model(store, REAL_OCR, base_url=server.url, max_concurrency=2, metadata={"local": True})
        with step(f"Onboarding {REAL_OCR} (real OCR on the CPU)") as s:
            report = calibrate_and_fit(store, CalibrateRequest(model=REAL_OCR, set_ref=options.calibration_set))
            s.note = f"accuracy {report['accuracy']:.3f}"
        with step(f"Live-validating {REAL_OCR}") as s:
            gate = replace(options.gate or GateConfig(), lambda_cost=options.lambda_cost,
                           lambda_latency=options.lambda_latency)  # fmt: skip
            validation = live_validate(
                store,
                ValidateRequest(model=REAL_OCR, set_ref=options.validation_set, limit=options.validation_limit,
                                gate=gate, enable=True, report_dir=Path(home) / "reports" / REAL_OCR),  # fmt: skip
            )
            s.note = f"{validation['decision']} → status {validation['status']}"
            result.candidates.append(_candidate_summary(validation))


class _Step:
    def __init__(self, result: DemoResult, title: str, say: Callable[[str], None]):
        self.result, self.title, self.say = result, title, say
        self.note = ""

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.say(f"[{len(self.result.steps) + 1}] {self.title} …")
        return self

    def __exit__(self, exc_type, exc, tb):
        seconds = time.perf_counter() - self.t0
        self.result.steps.append({"step": self.title, "seconds": seconds, "note": self.note, "ok": exc is None})
        if exc is None:
            self.say(f"    done in {seconds:.1f}s" + (f" — {self.note}" if self.note else ""))
        return False
