"""The shared LatentRouter: network, profiles, episodic training, policy, artifacts.

Arrays in, arrays out: this package never imports the store, endpoints, CLI or TUI.
The API the services call (documented in docs/router.md):

    from lrcal.router import (Router, ModelCard, RouterConfig, RouterData, Policy,
                              train_router, train_router_from_table, save_router, load_router)

Threads: the networks are small (tens of thousands of parameters per call), where torch's
intra-op threads cost more in synchronisation than they save — on a loaded 2-core machine a
forward took 4.3 s with two threads and 0.05 s with one. Importing this package therefore sets
one intra-op thread unless ``LRCAL_TORCH_THREADS`` says otherwise (benchmarks set their own).
"""

import os as _os

import torch as _torch

_torch.set_num_threads(max(1, int(_os.environ.get("LRCAL_TORCH_THREADS", "1") or 1)))

from lrcal.router.api import (  # noqa: E402
    DEFAULT_ENSEMBLE,
    Decision,
    Prediction,
    Router,
    train_router,
    train_router_from_table,
)
from lrcal.router.artifacts import ARTIFACT_FORMAT_VERSION, load_router, read_sidecar, save_router
from lrcal.router.cards import ModelCard
from lrcal.router.config import RouterConfig
from lrcal.router.policy import Policy, choose, expected_cost_usd, normalize_over_pool, utility
from lrcal.router.profiles import compute_profiles
from lrcal.router.train import RouterData, task_ids_for

__all__ = [
    "ARTIFACT_FORMAT_VERSION",
    "DEFAULT_ENSEMBLE",
    "Decision",
    "ModelCard",
    "Policy",
    "Prediction",
    "Router",
    "RouterConfig",
    "RouterData",
    "choose",
    "compute_profiles",
    "expected_cost_usd",
    "load_router",
    "normalize_over_pool",
    "read_sidecar",
    "save_router",
    "task_ids_for",
    "train_router",
    "train_router_from_table",
    "utility",
]
