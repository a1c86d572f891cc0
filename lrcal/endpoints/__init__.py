"""Endpoint client: async httpx calls to OpenAI-compatible and Ollama chat APIs.

Knows nothing of the store. See docs/endpoints.md.
"""

from lrcal.endpoints.client import EndpointClient
from lrcal.endpoints.config import API_STYLES, EndpointConfig, InvalidBaseURL, validate_base_url
from lrcal.endpoints.result import ERROR_KINDS, CallResult
from lrcal.endpoints.tokens import (
    CHARS_PER_TOKEN,
    IMAGE_INPUT_TOKENS_ESTIMATE,
    estimate_cost,
    estimate_input_tokens,
    estimate_text_tokens,
)

__all__ = [
    "API_STYLES",
    "CHARS_PER_TOKEN",
    "CallResult",
    "ERROR_KINDS",
    "EndpointClient",
    "EndpointConfig",
    "IMAGE_INPUT_TOKENS_ESTIMATE",
    "InvalidBaseURL",
    "estimate_cost",
    "estimate_input_tokens",
    "estimate_text_tokens",
    "validate_base_url",
]
