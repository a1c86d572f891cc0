"""The OCR engine: RapidOCR (PP-OCRv4 detection + recognition ONNX weights shipped inside
the ``rapidocr-onnxruntime`` wheel; nothing is downloaded), image decoding, and a small
pool of engines shared by the server's request threads.

numpy, pillow and onnxruntime are imported when an engine is built, never at import time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import queue
import sys
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from lrcal.errors import LrcalError
from lrcal.local.layout import TextBox
from lrcal.pixels import is_wide, to_rgb

OCR_EXTRA_HINT = "pip install 'lrcal[ocr]'"
MAX_PIXELS = 40_000_000  # decompression-bomb guard, as for calibration-set images
# Larger images are read scaled down to this many pixels: OCR of a 6000x6000 page took 0.8 GB
# more memory; 12 Mpx keeps an A4 page scanned at 300 dpi (2480x3508 = 8.7 Mpx) as it is.
MAX_READ_PIXELS = 12_000_000
UPSCALE_BELOW = 900  # images whose longer side is smaller are read at twice the size


class OcrUnavailable(LrcalError):
    """The ``ocr`` extra (rapidocr-onnxruntime) is not installed."""


class ImageUnreadable(ValueError):
    """The bytes sent are not an image we can decode."""


def ocr_available() -> bool:
    """Whether the ``ocr`` extra is installed (found without importing it)."""
    name = "rapidocr_onnxruntime"
    if name in sys.modules:
        return sys.modules[name] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def require_ocr() -> None:
    if not ocr_available():
        raise OcrUnavailable(f"the local OCR model needs the 'ocr' extra (rapidocr-onnxruntime): {OCR_EXTRA_HINT}")


@dataclass(frozen=True)
class Page:
    """A decoded image: an RGB uint8 array (H, W, 3)."""

    rgb: Any  # numpy.ndarray

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(data: bytes) -> Page:
    """PNG/JPEG/WebP/GIF/... bytes -> RGB page (palette, grey and alpha images flattened on white;
    16-bit and float images rescaled to 8 bits: `lrcal.pixels.to_rgb`)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageUnreadable(f"image too large ({img.width}x{img.height} pixels; limit {MAX_PIXELS})")
            scale = min(1.0, math.sqrt(MAX_READ_PIXELS / max(1, img.width * img.height)))
            if scale < 1.0:
                img.draft("RGB", (int(img.width * scale), int(img.height * scale)))  # JPEG: decode smaller
            img.load()
            if is_wide(img):
                # 16-bit, 32-bit and float pixels: to 8 bits first (convert("RGB") clips every
                # value above 255 to white: a 16-bit grey page read as blank; and pillow
                # cannot reduce() a 16-bit image)
                img = to_rgb(img, max_pixels=MAX_READ_PIXELS)
            if img.width * img.height > MAX_READ_PIXELS:
                img = _scaled_down(img)
            rgb = to_rgb(img)  # transparency composited onto white
    except ImageUnreadable:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageUnreadable(f"cannot decode the image ({type(exc).__name__})") from None
    return Page(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))


def _scaled_down(img):
    """``img`` resized to at most ``MAX_READ_PIXELS`` (aspect kept): an integer box reduction
    first (cheap), then an exact resize."""
    from PIL import Image

    factor = int(math.sqrt(img.width * img.height / MAX_READ_PIXELS))
    if factor >= 2:
        img = img.reduce(factor)
    scale = math.sqrt(MAX_READ_PIXELS / (img.width * img.height))
    if scale < 1.0:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.BILINEAR)
    return img


def _prepare(page: Page, second: bool = False) -> tuple[Any, float]:
    """The array given to the detector (BGR) and its scale relative to the page.

    First reading: small images are enlarged 2x and median-filtered -- the detector finds
    small print far more reliably at that size, and the filter removes scanner speckle
    that would otherwise be read as punctuation or split words. Second reading (used when
    the first did not find what a question asks about): the other way round, the page as
    it is for small images, a 3x3 median filter for large ones.
    """
    import numpy as np
    from PIL import Image, ImageFilter

    scale = 1.0
    img = Image.fromarray(page.rgb)
    small = max(page.width, page.height) < UPSCALE_BELOW
    if small and not second:
        scale = 2.0
        img = img.resize((page.width * 2, page.height * 2), Image.LANCZOS).filter(ImageFilter.MedianFilter(5))
    elif not small and second:
        img = img.filter(ImageFilter.MedianFilter(3))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), scale


class RapidOcrEngine:
    """One RapidOCR instance (not shared between threads: the pool hands it to one request
    at a time)."""

    def __init__(self, threads: int | None = None) -> None:
        require_ocr()
        from rapidocr_onnxruntime import RapidOCR

        kwargs: dict[str, Any] = {}
        if threads:
            kwargs["intra_op_num_threads"] = int(threads)
        self._ocr = RapidOCR(**kwargs)

    def read(self, page: Page, second: bool = False) -> list[TextBox]:
        array, scale = _prepare(page, second)
        result, _ = self._ocr(array)
        boxes: list[TextBox] = []
        for quad, text, confidence in result or []:
            points = tuple((float(x) / scale, float(y) / scale) for x, y in quad)
            if len(points) != 4 or not str(text).strip():
                continue
            boxes.append(TextBox(str(text), float(confidence), points))  # type: ignore[arg-type]
        return boxes

    def warm_up(self) -> None:
        """Run once on a small rendered word: the first inference pays for ONNX graph setup."""
        from PIL import Image, ImageDraw
        import numpy as np

        img = Image.new("RGB", (320, 120), (255, 255, 255))
        ImageDraw.Draw(img).text((20, 40), "warm up 123", fill=(0, 0, 0))
        self.read(Page(np.asarray(img)))


def ink_colour(page: Page, box: TextBox) -> tuple[float, float, float] | None:
    """The colour of a box's strokes: the median of the pixels that differ most from the
    box's background (its border), after a 3x3 median filter against speckle."""
    import numpy as np
    from PIL import Image, ImageFilter

    x0, y0, x1, y1 = box.bounds
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(page.width, int(x1) + 1), min(page.height, int(y1) + 1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = np.asarray(Image.fromarray(page.rgb[y0:y1, x0:x1]).filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    background = np.median(border, axis=0)
    distance = np.sqrt(((crop - background) ** 2).sum(axis=2))
    if distance.max() < 40:
        return None
    ink = crop[distance >= max(40.0, np.percentile(distance, 85))]
    if len(ink) < 3:
        return None
    r, g, b = np.median(ink, axis=0)
    return float(r), float(g), float(b)


class EnginePool:
    """``workers`` engines; a request takes one (waiting FIFO-ish when all are busy).

    ONNX Runtime already spreads one inference over the cores, so one engine is the right
    default on a small machine; more engines share the cores between them.
    """

    def __init__(self, workers: int = 1, warm_up: bool = True) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        cores = os.cpu_count() or 1
        threads = None if workers == 1 else max(1, cores // workers)
        self.workers = workers
        self._free: queue.Queue[RapidOcrEngine] = queue.Queue()
        self._lock = threading.Lock()
        self.busy = 0
        self.max_busy = 0
        for _ in range(workers):
            engine = RapidOcrEngine(threads)
            if warm_up:
                engine.warm_up()
            self._free.put(engine)

    @contextlib.contextmanager
    def engine(self) -> Iterator[RapidOcrEngine]:
        engine = self._free.get()
        with self._lock:
            self.busy += 1
            self.max_busy = max(self.max_busy, self.busy)
        try:
            yield engine
        finally:
            with self._lock:
                self.busy -= 1
            self._free.put(engine)

    def read(self, page: Page, second: bool = False) -> list[TextBox]:
        with self.engine() as engine:
            return engine.read(page, second)


def selection_mark(page: Page, box: TextBox) -> bool | None:
    """Whether the check box just left of a label is marked (ticked, crossed or filled):
    None when no box is found there.

    A patch left of the label (in the label's own reading frame, so skewed scans work) is
    cleaned of speckle; the dark pixels' extent is the box, and its inner half decides:
    an empty box has ink only on its outline.
    """
    import numpy as np
    from PIL import Image, ImageFilter

    (x0, y0), (x1, y1), _, (x3, y3) = box.quad
    h = box.height
    ux, uy = x1 - x0, y1 - y0
    norm = max(1e-6, (ux * ux + uy * uy) ** 0.5)
    ux, uy = ux / norm, uy / norm
    vx, vy = -uy, ux  # down the text
    lx, ly = (x0 + x3) / 2, (y0 + y3) / 2  # middle of the label's left edge
    s = np.arange(-2.8 * h, -0.1 * h, 1.0)
    t = np.arange(-0.9 * h, 0.9 * h, 1.0)
    if len(s) < 4 or len(t) < 4:
        return None
    ss, tt = np.meshgrid(s, t)
    xs = np.clip(np.rint(lx + ss * ux + tt * vx).astype(int), 0, page.width - 1)
    ys = np.clip(np.rint(ly + ss * uy + tt * vy).astype(int), 0, page.height - 1)
    grey = page.rgb[ys, xs].astype(np.float32).mean(axis=2)
    grey = np.asarray(Image.fromarray(grey.astype(np.uint8)).filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
    paper = float(np.percentile(grey, 90))
    dark = grey < paper - 60
    if dark.sum() < 8:
        return None
    rows = np.where(dark.any(axis=1))[0]
    cols = np.where(dark.any(axis=0))[0]
    # the box: the rightmost cluster of dark columns (a box sits right before its label)
    groups = np.split(cols, np.where(np.diff(cols) > 2)[0] + 1)
    cols = groups[-1]
    c0, c1 = int(cols.min()), int(cols.max())
    sub = dark[:, c0 : c1 + 1]
    rows = np.where(sub.any(axis=1))[0]
    r0, r1 = int(rows.min()), int(rows.max())
    bw, bh = c1 - c0 + 1, r1 - r0 + 1
    if bw < 0.4 * h or bh < 0.4 * h or bw > 2.5 * h or not 0.5 <= bw / bh <= 2.0:
        return None
    inner = dark[r0 + int(bh * 0.3) : r1 - int(bh * 0.3) + 1, c0 + int(bw * 0.3) : c1 - int(bw * 0.3) + 1]
    if inner.size == 0:
        return None
    return float(inner.mean()) > 0.08
