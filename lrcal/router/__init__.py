"""The shared LatentRouter: network, profiles, episodic training, policy, artifacts.

Arrays in, arrays out: this package never imports the store, endpoints, CLI or TUI.
The API the services call (documented in docs/router.md):

    from lrcal.router import (Router, ModelCard, RouterConfig, RouterData, Policy,
                              train_router, train_router_from_table, save_router, load_router)

The names load on first use (PEP 562), so that the routing policy (`lrcal.router.policy`,
numpy only) can be imported without torch: the TUI re-routes cached predictions with it and
starts 1.4 s sooner without torch.

Threads: the networks are small (tens of thousands of parameters per call), where torch's
intra-op threads cost more in synchronisation than they save — on a loaded 2-core machine a
forward took 4.3 s with two threads and 0.05 s with one. Importing the network (which every
torch-backed part of this package does) therefore sets one intra-op thread unless
``LRCAL_TORCH_THREADS`` says otherwise (benchmarks set their own).
"""

from importlib import import_module as _import_module

_SOURCES = {
    "ARTIFACT_FORMAT_VERSION": "artifacts",
    "DEFAULT_ENSEMBLE": "api",
    "Decision": "api",
    "DecisionRule": "policy",
    "ModelCard": "cards",
    "Policy": "policy",
    "PolicyChoice": "policy",
    "Prediction": "api",
    "Router": "api",
    "RouterConfig": "config",
    "RouterData": "train",
    "choose": "policy",
    "compute_profiles": "profiles",
    "expected_cost_usd": "policy",
    "load_router": "artifacts",
    "normalize_over_pool": "policy",
    "policy_choice": "policy",
    "read_sidecar": "artifacts",
    "save_router": "artifacts",
    "task_ids_for": "train",
    "train_router": "api",
    "train_router_from_table": "api",
    "utility": "policy",
}

__all__ = sorted(_SOURCES)


def __getattr__(name: str):
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module 'lrcal.router' has no attribute {name!r}")
    value = getattr(_import_module(f"lrcal.router.{source}"), name)
    globals()[name] = value
    return value
