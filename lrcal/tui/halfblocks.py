"""Images in the terminal as "▀" half blocks: two pixels per cell, top = foreground colour,
bottom = background colour."""

from __future__ import annotations

import io

import numpy as np


def image_halfblocks(data: bytes | None, width: int, height: int):
    """The image as rich Text of half blocks, fitted into ``width`` × ``height`` cells with its
    aspect ratio kept."""
    from PIL import Image
    from rich.color import Color
    from rich.style import Style
    from rich.text import Text

    if not data:
        return Text("(no image)", style="dim")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = min(width / w, (2 * height) / h)
            cols = max(1, min(width, round(w * scale)))
            rows2 = max(2, min(2 * height, round(h * scale)))
            rows2 += rows2 % 2
            pixels = np.asarray(im.resize((cols, rows2), Image.Resampling.BOX), dtype=np.uint8)
    except Exception:
        return Text("(image cannot be decoded)", style="dim")
    text = Text(no_wrap=True, overflow="crop")
    styles: dict[tuple, Style] = {}
    for y in range(0, rows2, 2):
        if y:
            text.append("\n")
        for x in range(cols):
            top = tuple(int(v) for v in pixels[y, x])
            bottom = tuple(int(v) for v in pixels[y + 1, x])
            key = top + bottom
            style = styles.get(key)
            if style is None:
                style = styles[key] = Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom))
            text.append("▀", style)
    return text
