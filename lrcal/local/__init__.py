"""Real local models behind the OpenAI-compatible API (``lrcal local serve``).

``rapidocr-ppocrv4``: PP-OCRv4 text detection + recognition (RapidOCR's ONNX weights,
CPU) and a text-only question answerer. Its answers come from the image's pixels and the
question only -- it never reads a calibration manifest or a reference answer.

Importing this package is light; numpy, pillow and onnxruntime load when a server or
backend is built. Needs the ``ocr`` extra: ``pip install 'lrcal[ocr]'``.
"""

from lrcal.local.engine import OCR_EXTRA_HINT, ImageUnreadable, OcrUnavailable, ocr_available, require_ocr
from lrcal.local.ocr import LOCAL_MODELS, RAPIDOCR_MODEL, LocalModel, OcrBackend
from lrcal.local.server import STATS_PATH, LocalServer

__all__ = [
    "ImageUnreadable",
    "LOCAL_MODELS",
    "LocalModel",
    "LocalServer",
    "OCR_EXTRA_HINT",
    "OcrBackend",
    "OcrUnavailable",
    "RAPIDOCR_MODEL",
    "STATS_PATH",
    "ocr_available",
    "require_ocr",
]
