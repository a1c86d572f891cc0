"""Commands: bench (being written)."""

from lrcal.cli._app import app  # noqa: F401
