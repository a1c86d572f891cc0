"""Fault injection for the simulated server.

Decisions are made per *attempt*: the n-th request for the same (model, content) draws
``unit(seed, model, content, n)``, so a retry can succeed, and a run with the same seed
and the same request order sees the same faults. ``permanent`` faults hit every attempt
for the named examples (a retry cannot help: the run must record the error kind).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping

from lrcal.errors import UsageError
from lrcal.serve import ChatRequest, Fault, FaultKind
from lrcal.sim.draws import unit
from lrcal.sim.index import SimExample, content_key

FAIL_KINDS = (FaultKind.HTTP_500, FaultKind.HTTP_502, FaultKind.HTTP_503, FaultKind.HTTP_429)
SLOW_KINDS = (FaultKind.STALL, FaultKind.NO_DONE)
MALFORMED_KINDS = (FaultKind.INVALID_JSON, FaultKind.HUGE_BODY, FaultKind.NON_UTF8, FaultKind.MISSING_USAGE)
FAULT_KINDS = tuple(k.value for k in FaultKind)


def fault_kind(name: str) -> FaultKind:
    try:
        return FaultKind(name.strip().lower())
    except ValueError:
        raise UsageError(f"unknown fault kind '{name}' (choose from: {', '.join(FAULT_KINDS)})") from None


@dataclass(frozen=True)
class ChaosConfig:
    """Which faults to inject, how often, and how they behave. Rates are per attempt."""

    fail_rate: float = 0.0  # HTTP 500/502/503 or 429 (+ Retry-After), one picked at random
    slow_rate: float = 0.0  # a stall after the headers, or a stream that stalls before [DONE]
    malformed_rate: float = 0.0  # invalid JSON, a huge body, non-UTF-8 bytes, or no usage block
    reset_rate: float = 0.0  # connection reset (TCP RST) after part of the response
    rates: Mapping[str, float] = field(default_factory=dict)  # one fault kind -> its own rate
    permanent: Mapping[str, str] = field(default_factory=dict)  # example id -> fault kind, every attempt
    models: frozenset[str] | None = None  # inject only for these models (None: every model)
    refuse_stream: bool = False  # answer stream=true with HTTP 400 (the client must fall back)
    seed: int | None = None  # None: the server's seed
    retry_after_s: float = 1.0  # the Retry-After sent with 429 and 503
    stall_s: float = 75.0  # how long stalls last (longer than a client's timeout)
    huge_bytes: int = 2 * 1024 * 1024

    def __post_init__(self) -> None:
        named = {
            "--fail-rate": self.fail_rate,
            "--slow-rate": self.slow_rate,
            "--malformed-rate": self.malformed_rate,
            "--reset-rate": self.reset_rate,
            **{f"--chaos {k}": v for k, v in self.rates.items()},
        }
        for name, rate in named.items():
            if not (isinstance(rate, (int, float)) and 0.0 <= rate <= 1.0):
                raise UsageError(f"{name} must be a probability between 0 and 1 (got {rate})")
        if sum(named.values()) > 1.0 + 1e-9:
            raise UsageError("fault rates add up to more than 1")
        for kind in list(self.rates) + list(self.permanent.values()):
            fault_kind(kind)
        if self.retry_after_s < 0 or self.stall_s < 0 or self.huge_bytes < 1:
            raise UsageError("--retry-after, --stall-s and --huge-bytes must be positive")

    @property
    def active(self) -> bool:
        return bool(
            self.fail_rate or self.slow_rate or self.malformed_rate or self.reset_rate
            or any(self.rates.values()) or self.permanent
        )

    def describe(self) -> str:
        parts = [
            f"{name}={rate:g}"
            for name, rate in (
                ("fail", self.fail_rate),
                ("slow", self.slow_rate),
                ("malformed", self.malformed_rate),
                ("reset", self.reset_rate),
                *self.rates.items(),
            )
            if rate
        ]
        if self.permanent:
            parts.append(f"permanent faults on {len(self.permanent)} example(s)")
        if self.refuse_stream:
            parts.append("streaming refused")
        return ", ".join(parts) or "none"


class ChaosInjector:
    """The ``lrcal.serve.FaultInjector`` of the simulator."""

    def __init__(
        self,
        config: ChaosConfig,
        recognize: Callable[[str, str | None], SimExample | None],
        seed: int = 0,
    ) -> None:
        self.config = config
        self.recognize = recognize
        self.seed = config.seed if config.seed is not None else seed
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        groups: list[tuple[float, tuple[FaultKind, ...]]] = [
            (config.fail_rate, FAIL_KINDS),
            (config.slow_rate, SLOW_KINDS),
            (config.malformed_rate, MALFORMED_KINDS),
            (config.reset_rate, (FaultKind.RESET,)),
        ]
        groups += [(rate, (fault_kind(kind),)) for kind, rate in config.rates.items()]
        self._groups = [(rate, kinds) for rate, kinds in groups if rate > 0]

    def _fault(self, kind: FaultKind) -> Fault:
        retry = self.config.retry_after_s
        retry_text = str(int(retry)) if float(retry).is_integer() else f"{retry:g}"
        return Fault(kind, retry_after=retry_text, stall_s=self.config.stall_s, huge_bytes=self.config.huge_bytes)

    def decide(self, request: ChatRequest) -> Fault | None:
        config = self.config
        if config.models is not None and request.model not in config.models:
            return None
        example = self.recognize(request.question, request.image_sha256)
        if example is not None and example.id in config.permanent:
            return self._fault(fault_kind(config.permanent[example.id]))
        if not self._groups:
            return None
        key = example.key if example is not None else content_key(request.image_sha256, request.question)
        with self._lock:
            self._attempts[(request.model, key)] += 1
            attempt = self._attempts[(request.model, key)]
        draw = unit(self.seed, request.model, key, attempt, "chaos")
        threshold = 0.0
        for rate, kinds in self._groups:
            threshold += rate
            if draw < threshold:
                pick = kinds[int(unit(self.seed, request.model, key, attempt, "kind") * len(kinds))]
                return self._fault(pick)
        return None
