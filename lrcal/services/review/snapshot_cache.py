"""The routing snapshot's disk cache: the router's output for the snapshot's queries, under
``<home>/cache/tui/``, keyed by everything it depends on, so a second `lrcal tui` starts
without loading torch."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from lrcal.services.review.models import CALIBRATION_KINDS
from lrcal.store import Store

CACHE_DIR = Path("cache") / "tui"
# bumped when what the router computes for the same inputs changes (2: a model hardly run on a
# task no longer wins it; 3: unscaled scores where no model is measured, an onboarded model's
# tasks without a calibration outcome, cost and latency from the runs that count), so a cache
# written before is recomputed, not shown
CACHE_FORMAT = 4  # 4: the unscaled estimates and measured shares (a what-if pool rescales with them)
CACHED_ARRAYS = ("unscaled", "measured_share", "sigma", "expected_cost", "expected_latency")


def fingerprint(store: Store, router_row: dict, set_id: int, example_ids: list[int]) -> str:
    """Everything the cached predictions depend on: router artifact, tokens, queries, calibration outcomes."""
    artifact = []
    path = Path(router_row["path"])
    if path.is_dir():
        for child in sorted(path.iterdir()):
            st = child.stat()
            artifact.append([child.name, st.st_size, st.st_mtime_ns])
    parts = {
        "format": CACHE_FORMAT,
        "router": [router_row["id"], router_row["version"], router_row["path"], artifact],
        "tokens": store.token_history(),
        "models": store.model_prices(),
        "set": set_id,
        "examples": example_ids,
        "calibration": store.outcome_watermark(CALIBRATION_KINDS),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cache_path(store: Store, key: str) -> Path | None:
    if store.home is None:
        return None
    return Path(store.home) / CACHE_DIR / f"routing-{key}.npz"


def read_cache(path: Path | None) -> dict | None:
    """{models, unscaled, measured_share, sigma, expected_cost, expected_latency}, or None (missing or unreadable)."""
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {"models": [str(m) for m in data["models"]], **{key: data[key] for key in CACHED_ARRAYS}}
    except Exception:  # a truncated or foreign file: recompute
        return None


def write_cache(path: Path | None, payload: dict) -> None:
    """Write atomically and keep only the current file."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, models=np.asarray(payload["models"], dtype=str), **{key: payload[key] for key in CACHED_ARRAYS})
        os.replace(tmp, path)
        for old in path.parent.glob("routing-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home still works, only slower next time
