"""Per-model concurrency limits and cooldowns (as LiteLLM's router does).

Each model gets a semaphore of its registry ``max_concurrency`` divided among the workers (each
worker process holds its own share). A model whose attempts fail ``failures`` times in a row
is left out of routing for ``cooldown_s``; when that time is over it is tried again, and one
more failure sends it back at once (half-open), one answer clears it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable


class ModelHealth:
    def __init__(self, *, failures: int, cooldown_s: float, workers: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.workers = max(1, workers)
        self._clock = clock
        self._consecutive: dict[str, int] = {}
        self._until: dict[str, float] = {}
        self._slots: dict[str, tuple[int, asyncio.Semaphore]] = {}

    def slots(self, name: str, max_concurrency: int) -> asyncio.Semaphore:
        """This worker's share of the model's concurrency limit (a new limit takes effect on reload):
        rounded down, so the workers together stay within it (rounding up let 4 workers send 8 to a
        model limited to 5); at least 1, so a limit below the worker count is exceeded, and
        `lrcal serve` says so when it starts."""
        limit = max(1, max_concurrency // self.workers)
        held = self._slots.get(name)
        if held is None or held[0] != limit:
            held = (limit, asyncio.Semaphore(limit))
            self._slots[name] = held
        return held[1]

    def cooling(self) -> dict[str, float]:
        """Models cooling down now -> seconds left."""
        now = self._clock()
        return {name: until - now for name, until in self._until.items() if until > now}

    def is_cooling(self, name: str) -> float | None:
        left = self._until.get(name, 0.0) - self._clock()
        return left if left > 0 else None

    def succeeded(self, name: str) -> None:
        self._consecutive[name] = 0
        self._until.pop(name, None)

    def failed(self, name: str) -> bool:
        """Count a failed attempt; True when it starts a cooldown."""
        if name in self._until and self._until[name] <= self._clock():
            del self._until[name]  # the cooldown is over: one more failure sends it back
            self._consecutive[name] = self.failures - 1
        count = self._consecutive.get(name, 0) + 1
        self._consecutive[name] = count
        if count >= self.failures and self.cooldown_s > 0 and name not in self._until:
            self._until[name] = self._clock() + self.cooldown_s
            return True
        return False
