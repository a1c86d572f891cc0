"""How one `lrcal serve` is set up. The CLI builds a `GatewayConfig`; with several workers it
travels to each uvicorn worker process as JSON in an environment variable (never the API key:
only the NAME of the variable that holds it)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass

from lrcal.errors import UsageError

DEFAULT_ALIAS = "lrcal/auto"
CONFIG_ENV = "LRCAL_GATEWAY_CONFIG"


@dataclass(frozen=True)
class GatewayConfig:
    home: str
    host: str = "127.0.0.1"
    port: int = 8400
    workers: int = 1
    alias: str = DEFAULT_ALIAS  # the model name that asks the router to choose
    api_key_env: str | None = None  # NAME of the variable holding the gateway's own key
    shadow: str | None = None  # a validated, not enabled candidate that gets copies of requests
    shadow_rate: float = 0.1
    reload_s: float = 1.0  # how often the store is polled for enable/disable, a new router, a new policy
    max_body_bytes: int = 20 * 1024 * 1024
    # http(s) images are fetched for the router's features within this many seconds (0: never)
    image_fetch_s: float = 2.0
    max_image_bytes: int = 20 * 1024 * 1024
    max_attempts: int = 3  # the first choice and at most two fallbacks
    cooldown_failures: int = 3  # consecutive failed attempts that take a model out of routing...
    cooldown_s: float = 30.0  # ...for this long
    # Every model reached at this base URL instead of its registered one (`lrcal bench serve`
    # points a home's models at its own simulator); never set by `lrcal serve`.
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.workers <= 64, f"--workers must be between 1 and 64 (got {self.workers})"),
            (0 <= self.port <= 65535, f"--port must be between 0 and 65535 (got {self.port})"),
            (0.0 <= self.shadow_rate <= 1.0 and math.isfinite(self.shadow_rate),
             f"--shadow-rate must be between 0 and 1 (got {self.shadow_rate})"),
            (0.05 <= self.reload_s <= 3600, f"--reload-s must be between 0.05 and 3600 (got {self.reload_s})"),
            (1024 <= self.max_body_bytes <= 1 << 30, "--max-body-mb must be between 0.001 and 1024"),
            (0.0 <= self.image_fetch_s <= 60 and math.isfinite(self.image_fetch_s),
             f"--image-fetch-s must be between 0 and 60 (got {self.image_fetch_s})"),
            (1 <= self.max_attempts <= 20, f"--max-attempts must be between 1 and 20 (got {self.max_attempts})"),
            (1 <= self.cooldown_failures <= 1000, f"--cooldown-failures must be at least 1 (got {self.cooldown_failures})"),
            (0.0 <= self.cooldown_s <= 86400 and math.isfinite(self.cooldown_s),
             f"--cooldown-s must be between 0 and 86400 (got {self.cooldown_s})"),
            (bool(self.alias and self.alias.strip()), "--alias must not be empty"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "GatewayConfig":
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls) -> "GatewayConfig":
        text = os.environ.get(CONFIG_ENV)
        if not text:
            raise UsageError(f"{CONFIG_ENV} is not set (uvicorn workers get their settings from `lrcal serve`)")
        return cls.from_json(text)

    def api_key(self) -> str | None:
        """The gateway's own key, read from the environment (never stored in the config)."""
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key.strip():
            raise UsageError(f"--api-key-env: environment variable {self.api_key_env} is not set")
        return key.strip()
