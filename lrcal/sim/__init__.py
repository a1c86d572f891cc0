"""Simulated multimodal models served over real sockets, for demos and tests.

Everything here is SIMULATED: answers are decided from skill profiles (see
docs/simulator.md), never computed from the pixels.
"""

from lrcal.sim.behavior import SimBackend
from lrcal.sim.chaos import FAULT_KINDS, ChaosConfig, ChaosInjector
from lrcal.sim.index import ExampleIndex, SimExample, content_key, sim_example
from lrcal.sim.server import STATS_PATH, SimServer
from lrcal.sim.zoo import DEFAULT_ZOO_PATH, TASK_GROUPS, SimModel, Zoo, ZooError, load_zoo, zoo_from_dict

__all__ = [
    "ChaosConfig",
    "ChaosInjector",
    "DEFAULT_ZOO_PATH",
    "ExampleIndex",
    "FAULT_KINDS",
    "STATS_PATH",
    "SimBackend",
    "SimExample",
    "SimModel",
    "SimServer",
    "TASK_GROUPS",
    "Zoo",
    "ZooError",
    "content_key",
    "load_zoo",
    "sim_example",
    "zoo_from_dict",
]
