"""How to reach a registered model and what it costs: the endpoint columns of ``models``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelEndpoint:
    """What `lrcal add-model` registers besides the name. ``base_url`` None: no endpoint (a
    model imported from outcome logs); ``api_model`` None: the model's own name; prices in USD
    per million tokens; ``accepts_images`` False: text-only, never sent an image."""

    base_url: str | None
    api_model: str | None = None
    api_style: str = "openai"
    api_key_env: str | None = None  # the NAME of the environment variable, never the key
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    max_concurrency: int = 4
    timeout_s: float = 60.0
    accepts_images: bool = True

    def columns(self, name: str) -> dict[str, Any]:
        """The ``models`` columns of a model called ``name`` reached this way."""
        return {
            "base_url": self.base_url,
            "api_model": self.api_model or name,
            "api_style": self.api_style,
            "api_key_env": self.api_key_env,
            "price_in_per_mtok": float(self.price_in_per_mtok),
            "price_out_per_mtok": float(self.price_out_per_mtok),
            "max_concurrency": int(self.max_concurrency),
            "timeout_s": float(self.timeout_s),
            "accepts_images": int(bool(self.accepts_images)),
        }
