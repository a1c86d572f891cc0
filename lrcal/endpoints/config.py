"""Endpoint settings and base-URL validation.

An ``EndpointConfig`` holds the *name* of the environment variable with the API key, never
the key itself: the key is read at call time and only sent as a header.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from lrcal.errors import UsageError

API_STYLES = ("openai", "ollama")
_HOST = re.compile(r"^[A-Za-z0-9._~-]+$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_URL_CHARS = 2048
MAX_TIMEOUT_S = 24 * 3600.0  # a finite bound: `inf` and NaN are refused
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63


class InvalidBaseURL(UsageError):
    """A base URL lrcal cannot use (bad scheme, no host, embedded credentials...)."""


def validate_base_url(url: str) -> str:
    """Check and normalize an endpoint base URL; raise ``InvalidBaseURL`` with advice.

    Requires ``http``/``https`` and a host; lower-cases scheme and host, drops a trailing
    slash; refuses credentials in the URL (they would end up in the database and logs),
    query strings, fragments and whitespace. The error never echoes a password.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidBaseURL("base URL is empty")
    raw = url.strip()
    if len(raw) > MAX_URL_CHARS:
        raise InvalidBaseURL(f"base URL is {len(raw):,} characters long; the limit is {MAX_URL_CHARS:,}")
    if any(ch.isspace() for ch in raw):
        raise InvalidBaseURL("base URL must not contain whitespace")
    if not raw.isascii() or any(not ch.isprintable() for ch in raw):
        raise InvalidBaseURL("base URL must be printable ASCII (write an international host name in its xn-- form)")
    try:
        parts = urlsplit(raw)
    except ValueError as exc:  # e.g. 'Invalid IPv6 URL' for an unclosed bracket
        raise InvalidBaseURL(f"base URL cannot be parsed ({exc}): '{_shown(raw)}'") from None
    if "@" in parts.netloc:
        raise InvalidBaseURL(
            "base URL must not embed credentials (user:password@host); put the API key in an "
            "environment variable and pass its name with --api-key-env"
        )
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidBaseURL(f"base URL must start with http:// or https:// (got '{_shown(raw)}')")
    host = parts.hostname
    if not host:
        raise InvalidBaseURL(f"base URL has no host: '{_shown(raw)}'")
    is_ipv6 = ":" in host
    if is_ipv6:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidBaseURL(f"base URL has an invalid IPv6 address: '{_shown(host)}'") from None
    elif not _HOST.match(host) or not _valid_host_name(host):
        raise InvalidBaseURL(
            f"base URL has an invalid host: '{_shown(host)}' (at most {MAX_HOST_CHARS} characters, "
            f"labels of 1-{MAX_LABEL_CHARS} letters, digits or -)"
        )
    try:
        port = parts.port
    except ValueError:
        raise InvalidBaseURL(f"base URL has an invalid port: '{_shown(raw)}'") from None
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise InvalidBaseURL("base URL must not contain a query string or fragment")
    netloc = f"[{host}]" if is_ipv6 else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def _valid_host_name(host: str) -> bool:
    """DNS limits (RFC 1035): 253 characters, labels of 1-63; an IPv4 address passes too."""
    labels = host.rstrip(".").split(".")
    return len(host) <= MAX_HOST_CHARS and all(1 <= len(label) <= MAX_LABEL_CHARS for label in labels)


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class EndpointConfig:
    """How to reach one model. Times in seconds; ``timeout_s`` bounds each attempt."""

    base_url: str
    api_model: str
    api_style: str = "openai"
    api_key_env: str | None = None
    timeout_s: float = 60.0
    max_concurrency: int = 4
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    max_output_tokens: int = 256
    max_response_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", validate_base_url(self.base_url))
        if self.api_style not in API_STYLES:
            raise UsageError(f"api style must be one of {', '.join(API_STYLES)} (got '{self.api_style}')")
        if not isinstance(self.api_model, str) or not self.api_model.strip():
            raise UsageError("api model name is empty")
        if self.api_key_env is not None and not _ENV_VAR.match(self.api_key_env):
            raise UsageError(
                f"--api-key-env takes the NAME of an environment variable (letters, digits, _), "
                f"not a key; got a value of {len(self.api_key_env)} characters"
            )
        checks = {
            "timeout": 0 < self.timeout_s <= MAX_TIMEOUT_S,
            "max concurrency": self.max_concurrency >= 1,
            "max retries": self.max_retries >= 0,
            "backoff base": self.backoff_base_s >= 0,
            "backoff max": self.backoff_max_s >= 0,
            "max output tokens": self.max_output_tokens >= 1,
            "max response bytes": self.max_response_bytes >= 1024,
        }
        for name, ok in checks.items():
            if not ok:
                raise UsageError(f"invalid endpoint {name}")
