"""``LocalServer``: real local models served over real sockets (OpenAI and Ollama APIs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from lrcal.serve import ModelServer

if TYPE_CHECKING:
    from lrcal.local.ocr import OcrBackend

STATS_PATH = "/local/stats"


class LocalServer(ModelServer):
    """The real local OCR model(s) behind an OpenAI-compatible server.

    Building it loads the ONNX engines and runs one warm-up inference per engine (a few
    seconds), so the first request is not slower than the rest; ``url`` is known before
    ``start()`` (port 0 picks a free port). Addresses, lifecycle and counters are
    :class:`lrcal.serve.ModelServer`'s.

    >>> with LocalServer(port=0) as local:          # doctest: +SKIP
    ...     EndpointConfig(local.url, "rapidocr-ppocrv4")

    ``workers``: OCR engines serving requests at once (see docs/local-models.md,
    *Concurrency*); extra requests wait for a free engine. Raises ``OcrUnavailable`` (an
    ``LrcalError``) when the ``ocr`` extra is not installed.
    """

    backend: OcrBackend

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
        from lrcal.serve.server import listen_host

        host = listen_host(host)  # before the engines load
        backend = OcrBackend(list(models) if models else None, workers=workers, warm_up=warm_up)
        super().__init__(backend, host, port, stats_path=STATS_PATH, api_key=api_key)

    @property
    def model_names(self) -> list[str]:
        return self.backend.model_names()

    @property
    def load_seconds(self) -> float:
        """Time spent loading and warming up the engines."""
        return self.backend.load_seconds

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        stats["engines"] = self.backend.pool.workers
        stats["max_engines_busy"] = self.backend.pool.max_busy
        return stats
