"""``LocalServer``: real local models served over real sockets (OpenAI and Ollama APIs)."""

from __future__ import annotations

from typing import Any, Iterable

from lrcal.httpserver import ModelServer

STATS_PATH = "/local/stats"


class LocalServer:
    """The real local OCR model(s) behind an OpenAI-compatible server.

    Building it loads the ONNX engines and runs one warm-up inference per engine (a few
    seconds), so the first request is not slower than the rest; ``url`` is known before
    ``start()`` (port 0 picks a free port).

    >>> with LocalServer(port=0) as local:          # doctest: +SKIP
    ...     EndpointConfig(local.url, "rapidocr-ppocrv4")

    ``workers``: OCR engines serving requests at once (see docs/local-models.md,
    *Concurrency*); extra requests wait for a free engine. Raises ``OcrUnavailable`` (an
    ``LrcalError``) when the ``ocr`` extra is not installed.
    """

    def __init__(
        self,
        models: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        workers: int = 1,
        warm_up: bool = True,
        api_key: str | None = None,
    ) -> None:
        from lrcal.local.ocr import OcrBackend

        self.backend = OcrBackend(list(models) if models else None, workers=workers, warm_up=warm_up)
        self.server = ModelServer(self.backend, host, port, stats_path=STATS_PATH, api_key=api_key)

    # -- addresses
    @property
    def url(self) -> str:
        """``http://HOST:PORT/v1`` (for OpenAI-style clients)."""
        return self.server.url

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (for Ollama-style clients)."""
        return self.server.root_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def model_names(self) -> list[str]:
        return self.backend.model_names()

    @property
    def load_seconds(self) -> float:
        """Time spent loading and warming up the engines."""
        return self.backend.load_seconds

    # -- lifecycle
    def start(self) -> "LocalServer":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- counters
    @property
    def request_counts(self) -> dict[str, int]:
        return self.server.request_counts

    def stats(self) -> dict[str, Any]:
        stats = self.server.stats()
        stats["engines"] = self.backend.pool.workers
        stats["max_engines_busy"] = self.backend.pool.max_busy
        return stats
