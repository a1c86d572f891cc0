"""`lrcal router train`: train the shared router on stored outcomes, register the version,
mark older tokens stale, and onboard every calibrated model it did not train on."""

from __future__ import annotations

import time
from typing import Callable, Sequence

from lrcal import lifecycle
from lrcal.errors import LrcalError, UsageError
from lrcal.home import routers_dir
from lrcal.services.tables import model_row_counts, outcome_table
from lrcal.store import Store, utcnow

MIN_TRAIN_ROWS = 256  # a model with fewer outcomes than this is onboarded (token fit), not trained on


def choose_training_models(store: Store, requested: Sequence[str] | None = None,
                           counts: dict[str, int] | None = None) -> tuple[list[str], list[str]]:
    """(models to train on, calibrated models to onboard afterwards); ``counts``:
    `model_row_counts` when the caller has it.

    Default: every model with outcomes whose row count is at least min(256, half the
    largest count) — so a team whose incumbents each have 128 calibration rows still gets
    a router, while a 128-row newcomer beside 1,000-row incumbents is onboarded instead.
    """
    counts = model_row_counts(store) if counts is None else counts
    usable = {
        m["name"]: counts.get(m["name"], 0)
        for m in store.list_models()
        if counts.get(m["name"], 0) > 0 and m["status"] != lifecycle.REGISTERED
    }
    if requested:
        unknown = [name for name in requested if name not in usable]
        for name in unknown:
            store.get_model(name)  # unknown name → NotFound listing the known ones
        if unknown:
            raise LrcalError(f"model(s) without stored outcomes: {', '.join(unknown)}; calibrate them first")
        train = list(dict.fromkeys(requested))
    else:
        if not usable:
            raise LrcalError(
                "no outcomes to train on: calibrate your current models (`lrcal calibrate NAME`) "
                "or import outcome logs (`lrcal import-outcomes FILE.csv`) first"
            )
        threshold = min(MIN_TRAIN_ROWS, max(usable.values()) // 2)
        train = [name for name, n in usable.items() if n >= threshold]
    if len(train) < 2:
        raise LrcalError(f"the shared router needs outcomes of at least 2 models (have: {', '.join(train) or 'none'})")
    onboard = [
        name
        for name in usable
        if name not in train and store.get_model(name)["source"] == "endpoint"
    ]
    return train, onboard


def left_out_models(store: Store, train: Sequence[str], onboard: Sequence[str],
                    counts: dict[str, int] | None = None) -> dict[str, str]:
    """Models with stored outcomes that this training neither trains on nor onboards, and why
    (a model dropped without a word was a review's finding: `route` then said it had no token)."""
    counts = model_row_counts(store) if counts is None else counts
    largest = max((counts.get(m, 0) for m in train), default=0)
    out = {}
    for model in store.list_models():
        name, n = model["name"], counts.get(model["name"], 0)
        if name in train or name in onboard or n == 0:
            continue
        if model["status"] == lifecycle.REGISTERED:
            out[name] = f"{n} outcomes, registered and not calibrated: `lrcal calibrate {name}`"
        elif model["source"] != "endpoint":
            out[name] = (f"{n} outcomes against {largest} for the most: fewer than min({MIN_TRAIN_ROWS}, half the "
                         "most) to train on, and an imported model has no endpoint to onboard; "
                         f"`lrcal router train --models ...` can name it")
        else:
            out[name] = f"{n} outcomes: not among the models asked for"
    return out


def next_version(store: Store, data_hash: str) -> str:
    n = store.router_version_count() + 1
    return f"r{n}-{data_hash[:8]}"


def train_router(
    store: Store,
    *,
    models: Sequence[str] | None = None,
    seed: int = 0,
    ensemble: int | None = None,
    progress: Callable[[str], None] | None = None,
    onboard: bool = True,
) -> dict:
    """Train and register a new router version (one `router train` per home at a time)."""
    if ensemble is not None and ensemble < 1:
        raise UsageError("--ensemble must be at least 1")
    with store.lock("router:train", purpose="router train"):
        return _train_locked(store, models=models, seed=seed, ensemble=ensemble, progress=progress, onboard=onboard)


def _train_locked(
    store: Store,
    *,
    models: Sequence[str] | None,
    seed: int,
    ensemble: int | None,
    progress: Callable[[str], None] | None,
    onboard: bool,
) -> dict:
    from lrcal.router.api import DEFAULT_ENSEMBLE, train_router_from_table
    from lrcal.router.artifacts import remove_staging_leftovers, save_router

    say = progress or (lambda _m: None)
    leftovers = remove_staging_leftovers(routers_dir(store.home))
    if leftovers:
        say(f"removed {len(leftovers)} unfinished router director{'y' if len(leftovers) == 1 else 'ies'} of a killed training")
    counts = model_row_counts(store)
    train_models, to_onboard = choose_training_models(store, models, counts)
    left_out = left_out_models(store, train_models, to_onboard, counts)
    started = time.perf_counter()
    table, _examples = outcome_table(store, train_models)
    say(f"training on {table.n_samples} examples × {len(train_models)} models")
    router = train_router_from_table(
        table, seed=seed, ensemble=ensemble or DEFAULT_ENSEMBLE, progress=say
    )
    data_hash = router.info.get("training_data_sha256") or table.content_hash()
    version = next_version(store, data_hash)
    path = routers_dir(store.home) / version
    router.info.update(version=version, trained_at=utcnow())
    save_router(router, path)
    seconds = time.perf_counter() - started
    with store.write():
        store.register_router_version(
            version,
            path=str(path),
            models=train_models,
            data_hash=data_hash,
            config=router.config.to_dict() if hasattr(router.config, "to_dict") else vars(router.config),
            metrics={k: v for k, v in router.info.items() if k not in ("models",)},
        )
        store.log_event(
            "router_trained",
            message=f"router {version} trained on {len(train_models)} models, {table.n_samples} examples",
            data={"version": version, "models": train_models, "seconds": round(seconds, 2)},
        )
    onboarded = []
    if onboard:
        from lrcal.services.onboarding import onboard_model

        for name in to_onboard:
            if store.get_model(name)["status"] == lifecycle.REGISTERED:
                continue
            try:
                onboarded.append(onboard_model(store, name))
            except LrcalError as exc:
                say(f"could not fit a token for {name}: {exc}")
    return {
        "version": version,
        "path": str(path),
        "models": train_models,
        "examples": table.n_samples,
        "seconds": seconds,
        "parameters": router.parameter_count(),
        "ensemble": len(router.members),
        "info": router.info,
        "profile_prior": router.profile_prior.to_dict(),
        "onboarded": [t["model"] for t in onboarded],
        "left_out": left_out,
        "summary": f"{len(train_models)} models × {table.n_samples} examples in {seconds:.1f}s",
    }
