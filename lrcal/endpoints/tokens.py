"""Token estimates (when a server sends no usage) and cost."""

from __future__ import annotations

import math

# ~4 characters per token is the usual rule of thumb for English text with BPE tokenizers.
CHARS_PER_TOKEN = 4.0
# Input tokens charged for one image when the server does not say: GPT-4o's count for a
# 1024x1024 image at high detail (85 + 4 tiles x 170). Open VLMs range from ~64 to ~2,900.
IMAGE_INPUT_TOKENS_ESTIMATE = 765


def estimate_text_tokens(text: str | None) -> int:
    if not text:
        return 0
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def estimate_input_tokens(question: str, has_image: bool) -> int:
    return estimate_text_tokens(question) + (IMAGE_INPUT_TOKENS_ESTIMATE if has_image else 0)


def estimate_cost(
    input_tokens: int | None,
    output_tokens: int | None,
    price_in_per_mtok: float,
    price_out_per_mtok: float,
) -> float:
    """USD for one call: tokens x price per million tokens. Unknown counts cost nothing."""
    values = (input_tokens or 0, output_tokens or 0, price_in_per_mtok, price_out_per_mtok)
    if any(v < 0 or (isinstance(v, float) and math.isnan(v)) for v in values):
        raise ValueError("token counts and prices must be non-negative numbers")
    return ((input_tokens or 0) * price_in_per_mtok + (output_tokens or 0) * price_out_per_mtok) / 1_000_000
