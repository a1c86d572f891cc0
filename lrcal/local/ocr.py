"""The ``lrcal.serve.Backend`` of the real local OCR model ``rapidocr-ppocrv4``.

Per request: decode the image, run PP-OCRv4 (detection + recognition) on it, and answer
the question from the recognised text only (``lrcal.local.answerer``). Latency is the real
compute time (the server streams the answer as soon as it is ready); token counts are
estimated the way ``lrcal.endpoints`` estimates them (characters / 4, plus a fixed count
per image), since an OCR engine has no tokenizer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass

from lrcal.endpoints.tokens import IMAGE_INPUT_TOKENS_ESTIMATE, estimate_text_tokens
from lrcal.local.answerer import DECLINE, NO_IMAGE, Reading, intent, reply
from lrcal.local.question import parse_prompt
from lrcal.local.layout import Layout
from lrcal.serve import Answer

log = logging.getLogger(__name__)

RAPIDOCR_MODEL = "rapidocr-ppocrv4"
UNREADABLE_IMAGE = "I cannot decode this image, so I cannot read it."
# Prompts longer than this are not parsed: questions are a few lines (the built-in sets' longest
# prompt, options and instruction included, is well under 1,000 characters), and parsing and
# looking up grow with the length (a 64 MiB prompt would take minutes).
MAX_QUESTION_CHARS = 20_000
QUESTION_TOO_LONG = f"The question is too long for me (over {MAX_QUESTION_CHARS:,} characters); I can only read short questions about text in images."


@dataclass(frozen=True)
class LocalModel:
    name: str
    engine: str
    description: str


LOCAL_MODELS: dict[str, LocalModel] = {
    RAPIDOCR_MODEL: LocalModel(
        RAPIDOCR_MODEL,
        "rapidocr-onnxruntime",
        "PP-OCRv4 text detection + recognition (ONNX, CPU) with a text-only question answerer",
    ),
}


class OcrBackend:
    """Serves the real local OCR model(s). Thread-safe: requests share a pool of engines."""

    owned_by = "lrcal-local"

    def __init__(self, models: list[str] | None = None, *, workers: int = 1, warm_up: bool = True) -> None:
        from lrcal.errors import UsageError
        from lrcal.local.engine import EnginePool, require_ocr

        names = list(models) if models else [RAPIDOCR_MODEL]
        unknown = [m for m in names if m not in LOCAL_MODELS]
        if unknown:
            raise UsageError(f"unknown local model {unknown[0]!r}; available: {', '.join(LOCAL_MODELS)}")
        if workers < 1:
            raise UsageError("workers must be >= 1")
        require_ocr()
        self._names = list(dict.fromkeys(names))
        start = time.monotonic()
        self.pool = EnginePool(workers, warm_up=warm_up)
        self.load_seconds = time.monotonic() - start
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()

    def model_names(self) -> list[str]:
        return list(self._names)

    def answer_text(self, question: str, image_bytes: bytes | None) -> str:
        """Answer one prompt from the image: read it, answer; when a text question's text
        is not found, read it a second way (another scale/filter) and answer again."""
        from lrcal.local.engine import ImageUnreadable, decode_image

        if not image_bytes:
            return NO_IMAGE  # whatever the question: nothing to read (and nothing to parse)
        if len(question) > MAX_QUESTION_CHARS:
            return QUESTION_TOO_LONG
        query = parse_prompt(question)
        if intent(query) is None:
            return DECLINE  # not a text question: no need to decode or read the image
        try:
            page = decode_image(image_bytes)
        except ImageUnreadable as exc:
            log.info("local OCR: %s", exc)
            return UNREADABLE_IMAGE
        first = reply(query, self._reading(page, second=False))
        if first.settled:
            return first.text
        again = reply(query, self._reading(page, second=True))
        return again.text if again.settled else first.text

    def _reading(self, page, second: bool) -> Reading:
        from lrcal.local.engine import ink_colour, selection_mark

        boxes = self.pool.read(page, second)
        return Reading(
            Layout.from_boxes(boxes, page.width, page.height),
            ink=lambda box: ink_colour(page, box),
            marked=lambda box: selection_mark(page, box),
        )

    def answer(self, model: str, question: str, image_bytes: bytes | None) -> Answer:
        with self._lock:
            self.requests[model] += 1
        text = self.answer_text(question, image_bytes)
        # the same estimate lrcal.endpoints makes for a server that reports no usage
        input_tokens = estimate_text_tokens(question) + (IMAGE_INPUT_TOKENS_ESTIMATE if image_bytes else 0)
        # Timings 0: the answer is computed already, so it is sent at once; what the client
        # measures is the real time of the OCR and the answering.
        return Answer(text=text, input_tokens=input_tokens, output_tokens=estimate_text_tokens(text))
