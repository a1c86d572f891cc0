"""8-bit RGB pixels of any image pillow opens, as a person sees it.

``Image.convert("RGB")`` alone clips 16-bit and float images (a 16-bit grey page came out pure
white, a float one black) and drops transparency onto black (a chart saved with a transparent
background became a dark image). The router's image features and the local OCR model both read
pixels through `to_rgb`. Pillow and numpy are imported by the callers' code paths only.
"""

from __future__ import annotations

# modes whose values are not 0-255 bytes
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def is_wide(img) -> bool:
    """Its values are not 0-255 bytes (16-bit, 32-bit integer or float pixels)."""
    return img.mode in _WIDE_MODES


def to_rgb(img, max_pixels: int | None = None):
    """``img`` (a pillow image) as 8-bit RGB: wide values rescaled to 0-255 (16-bit: / 257;
    float: 0-1 taken as the full range), transparency composited onto white. ``max_pixels``: a
    wide image larger than this is shrunk before its values are rescaled (a 6000x6000 16-bit
    page cost 2.7 s and 750 MB rescaled whole, for a 128-pixel working copy)."""
    from PIL import Image

    if is_wide(img):
        if max_pixels and img.width * img.height > max_pixels:
            img = _shrunk(img, max_pixels)
        img = _to_8bit_grey(img)
    if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def _shrunk(img, max_pixels: int):
    """``img`` box-filtered to at most ``max_pixels`` (aspect kept), in its own (wide) mode."""
    import math

    from PIL import Image

    scale = math.sqrt(max_pixels / (img.width * img.height))
    size = (max(1, int(img.width * scale)), max(1, int(img.height * scale)))
    try:
        return img.resize(size, Image.BOX)
    except (ValueError, OSError):  # a wide mode pillow cannot filter: through 32-bit integers
        return img.convert("I").resize(size, Image.BOX)


def _to_8bit_grey(img):
    import numpy as np
    from PIL import Image

    values = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max()) if values.size else 0.0
    if img.mode == "F" and top <= 1.0:
        values = values * 255.0
    elif img.mode.startswith("I;16") or top > 255.0:
        values = values / 257.0
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
