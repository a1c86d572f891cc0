"""What `lrcal sim serve` and `lrcal local serve` share: the checks of their options, the API key
option and the foreground serve loop with its banner."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Optional

import typer

from lrcal.errors import UsageError

if TYPE_CHECKING:
    from lrcal.serve import ModelServer


def api_key_env_option() -> Any:
    return typer.Option(None, "--api-key-env",
                        help="Require 'Authorization: Bearer <key>' with the key held by this environment variable.")  # fmt: skip


def check_serve_options(port: int, at_least: dict[str, tuple[Optional[float], float]]) -> None:
    """One-line errors, before anything loads: a ``--port`` no socket can bind (0 asks for a free
    one), then each ``{"--flag": (value, minimum)}`` below its minimum (a None value was not given)."""
    if not 0 <= port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    for flag, (value, minimum) in at_least.items():
        if value is not None and value < minimum:
            raise UsageError(f"{flag} must be >= {minimum}")


def api_key_from_env(api_key_env: Optional[str]) -> Optional[str]:
    """The key ``--api-key-env`` names (None without the option); a one-line error when unset."""
    if not api_key_env:
        return None
    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise UsageError(f"--api-key-env: environment variable {api_key_env} is not set")
    return api_key


def serve_in_foreground(server: "ModelServer", banner: list[str], api_key_env: Optional[str]) -> None:
    """Print the banner (the key's variable, never the key), then serve until Ctrl-C or SIGTERM."""
    lines = list(banner)
    if api_key_env:
        lines.append(f"requests must carry the API key held by ${api_key_env}")
    lines.append("serving until Ctrl-C")
    typer.echo("\n".join(lines))
    sys.stdout.flush()  # scripts wait for the banner before they connect
    server.serve_until_interrupted()
    typer.echo("stopped", err=True)
