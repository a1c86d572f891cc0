"""``SimServer``: the simulated zoo served over real sockets (OpenAI and Ollama APIs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from lrcal.serve import ModelServer
from lrcal.sim.behavior import SimBackend
from lrcal.sim.chaos import ChaosConfig, ChaosInjector
from lrcal.sim.index import ExampleIndex
from lrcal.sim.zoo import Zoo, load_zoo

STATS_PATH = "/sim/stats"


class SimServer(ModelServer):
    """A simulated model server. ``sets`` are the calibration sets whose examples it knows
    (``lrcal.calsets.CalibrationSet`` objects or anything shaped like them). With
    ``api_key`` set, requests must carry ``Authorization: Bearer <api_key>`` (else 401).
    Addresses, lifecycle and counters are :class:`lrcal.serve.ModelServer`'s.

    >>> with SimServer(sets=[load_set(path)], latency_scale=0.02) as sim:
    ...     client = EndpointClient(EndpointConfig(sim.url, "sim-lite-s"))
    """

    def __init__(
        self,
        zoo: Zoo | str | Path | None = "default",
        sets: Iterable[Any] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        latency_scale: float = 1.0,
        fixed_latency_ms: float | None = None,
        chaos: ChaosConfig | None = None,
        api_key: str | None = None,
    ) -> None:
        self.zoo = zoo if isinstance(zoo, Zoo) else load_zoo(zoo)
        self.index = ExampleIndex.from_sets(sets)
        self.seed = seed
        self.chaos_config = chaos or ChaosConfig()
        backend = SimBackend(self.zoo, self.index, seed=seed, latency_scale=latency_scale, fixed_latency_ms=fixed_latency_ms)
        injector = ChaosInjector(self.chaos_config, backend.recognize, seed=seed) if self.chaos_config.active else None
        super().__init__(
            backend,
            host,
            port,
            fault_injector=injector,
            refuse_stream=self.chaos_config.refuse_stream,
            stats_path=STATS_PATH,
            api_key=api_key,
        )

    @property
    def model_names(self) -> list[str]:
        return self.zoo.names
