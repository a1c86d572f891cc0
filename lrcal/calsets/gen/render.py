"""Drawing toolkit shared by the task generators: fonts, text layers, shapes,
colours, degradations, and the difficulty bookkeeping.

Determinism: every random draw goes through the example's own ``Ctx`` (a
``random.Random`` and a numpy ``Generator`` seeded from the set name, seed and
index), and pillow's drawing and PNG encoding are deterministic for a given
pillow build.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Clearly distinct colours, each with the name a question may use.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 90, 200),
    "yellow": (240, 200, 20),
    "orange": (255, 127, 14),
    "purple": (128, 60, 170),
    "pink": (238, 120, 190),
    "brown": (140, 86, 45),
    "black": (25, 25, 25),
    "gray": (128, 128, 128),
}
CHART_COLOURS = [COLOURS[c] for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray")]


@dataclass
class Item:
    """What one subtype generator returns (the generator adds ids, paths, meta)."""

    image: Image.Image
    question: str
    answer: str
    answer_type: str
    difficulty: float
    choices: list[str] | None = None
    tolerance: float | None = None


@dataclass
class Difficulty:
    """Weighted mean of visible factors, each in [0, 1] (font size, rotation, noise, ...)."""

    terms: list[tuple[float, float]] = field(default_factory=list)

    def add(self, value: float, weight: float = 1.0) -> None:
        self.terms.append((min(1.0, max(0.0, float(value))), weight))

    def value(self) -> float:
        total = sum(w for _, w in self.terms)
        if total == 0:
            return 0.0
        return round(sum(v * w for v, w in self.terms) / total, 3)


class Redraw(Exception):
    """The random draw cannot satisfy a subtype's constraints: the generator retries the
    example with its next attempt seed."""


def attempts(limit: int = 60):
    """``for _ in attempts(): ...; if ok: break`` that raises Redraw instead of looping forever."""
    yield from range(limit)
    raise Redraw()


class Ctx:
    """Per-example randomness plus the latent difficulty ``level`` the parameters follow."""

    def __init__(self, rng: random.Random, nprng: np.random.Generator, level: float):
        self.rng = rng
        self.np = nprng
        self.level = level
        self.diff = Difficulty()

    def near(self, spread: float = 0.2) -> float:
        """A value in [0, 1] around the latent level (factors correlate, but not perfectly)."""
        return min(1.0, max(0.0, self.level + self.rng.gauss(0.0, spread)))

    def lerp(self, lo: float, hi: float, spread: float = 0.2) -> float:
        return lo + (hi - lo) * self.near(spread)

    def ilerp(self, lo: int, hi: int, spread: float = 0.2) -> int:
        return int(round(self.lerp(lo, hi + 0.999, spread) - 0.4999))

    def choice(self, seq):
        return seq[self.rng.randrange(len(seq))]

    def sample(self, seq, k: int) -> list:
        return self.rng.sample(list(seq), k)

    def coin(self, p: float = 0.5) -> bool:
        return self.rng.random() < p

    def item(self, image, question, answer, answer_type, choices=None, tolerance=None) -> Item:
        return Item(image, question, str(answer), answer_type, self.diff.value(), choices, tolerance)


def article(word: str) -> str:
    """'a' or 'an' for the (English) word that follows."""
    return "an" if word[:1].lower() in "aeiou" else "a"


# ---- fonts and text ------------------------------------------------------------------


@lru_cache(maxsize=128)
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(6, int(size)))


def text_box(text: str, size: int) -> tuple[int, int, int, int]:
    return font(size).getbbox(text)


def text_width(text: str, size: int) -> int:
    left, _, right, _ = text_box(text, size)
    return right - left


def fit_size(text: str, size: int, max_width: int, min_size: int = 8) -> int:
    """The largest size <= ``size`` at which ``text`` fits ``max_width``."""
    while size > min_size and text_width(text, size) > max_width:
        size -= 1
    return size


def text_layer(text: str, size: int, stretch: float = 1.0, shear: float = 0.0, stroke: int = 0) -> Image.Image:
    """A tight 'L' mask of the text, optionally stretched horizontally and sheared (italic)."""
    f = font(size)
    left, top, right, bottom = f.getbbox(text, stroke_width=stroke)
    pad = 2 + stroke
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), text, fill=255, font=f, stroke_width=stroke, stroke_fill=255)
    if abs(stretch - 1.0) > 1e-3:
        mask = mask.resize((max(1, int(w * stretch)), h), Image.BILINEAR)
    if abs(shear) > 1e-3:
        extra = int(abs(shear) * h) + 1
        mask = mask.transform(
            (mask.width + extra, h),
            Image.AFFINE,
            (1, shear, -extra if shear > 0 else 0, 0, 1, 0),
            resample=Image.BILINEAR,
        )
    return mask


def paste_text(
    img: Image.Image,
    text: str,
    size: int,
    fill: tuple[int, int, int],
    center: tuple[float, float],
    angle: float = 0.0,
    stretch: float = 1.0,
    shear: float = 0.0,
    stroke: int = 0,
) -> tuple[int, int, int, int]:
    """Draw ``text`` centred at ``center``, rotated by ``angle`` degrees; returns its box."""
    mask = text_layer(text, size, stretch, shear, stroke)
    if abs(angle) > 0.05:
        mask = mask.rotate(angle, resample=Image.BICUBIC, expand=True)
    x = int(round(center[0] - mask.width / 2))
    y = int(round(center[1] - mask.height / 2))
    img.paste(fill, (x, y, x + mask.width, y + mask.height), mask)
    return (x, y, x + mask.width, y + mask.height)


def rotated_extent(w: int, h: int, angle: float) -> tuple[int, int]:
    a = math.radians(angle)
    return (
        int(abs(w * math.cos(a)) + abs(h * math.sin(a))) + 1,
        int(abs(w * math.sin(a)) + abs(h * math.cos(a))) + 1,
    )


# ---- colours -------------------------------------------------------------------------


def jitter(rgb: tuple[int, int, int], ctx: Ctx, amount: int = 12) -> tuple[int, int, int]:
    return tuple(min(255, max(0, c + ctx.rng.randint(-amount, amount))) for c in rgb)  # type: ignore[return-value]


def light_background(ctx: Ctx) -> tuple[int, int, int]:
    base = ctx.rng.randint(228, 252)
    return tuple(min(255, base + ctx.rng.randint(-6, 6)) for _ in range(3))  # type: ignore[return-value]


def luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


def ink_for_contrast(bg: tuple[int, int, int], contrast: float, ctx: Ctx) -> tuple[int, int, int]:
    """A text colour whose luminance differs from ``bg`` by ``contrast`` (0..1) of the range."""
    target = luminance(bg) - contrast * luminance(bg) if luminance(bg) > 127 else luminance(bg) + contrast * (255 - luminance(bg))
    tint = [ctx.rng.randint(-25, 25) for _ in range(3)]
    base = [target + t for t in tint]
    shift = target - (0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2])
    return tuple(int(min(255, max(0, c + shift))) for c in base)  # type: ignore[return-value]


# ---- shapes --------------------------------------------------------------------------

SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")


def shape_points(kind: str, cx: float, cy: float, r: float, rotation: float = 0.0) -> list[tuple[float, float]]:
    def ring(n: int, radius: float, offset: float) -> list[tuple[float, float]]:
        return [
            (cx + radius * math.cos(offset + 2 * math.pi * i / n), cy + radius * math.sin(offset + 2 * math.pi * i / n))
            for i in range(n)
        ]

    rot = math.radians(rotation)
    if kind == "square":
        return ring(4, r * 1.3, math.pi / 4 + rot)
    if kind == "triangle":
        return ring(3, r * 1.25, -math.pi / 2 + rot)
    if kind == "diamond":
        return ring(4, r * 1.25, rot)
    if kind == "hexagon":
        return ring(6, r * 1.1, rot)
    if kind == "star":
        outer = ring(5, r * 1.3, -math.pi / 2 + rot)
        inner = ring(5, r * 0.55, -math.pi / 2 + math.pi / 5 + rot)
        return [p for pair in zip(outer, inner) for p in pair]
    raise ValueError(kind)


def draw_shape(
    draw: ImageDraw.ImageDraw,
    kind: str,
    cx: float,
    cy: float,
    r: float,
    fill,
    outline=None,
    rotation: float = 0.0,
    width: int = 2,
) -> None:
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill, outline=outline, width=width)
    else:
        draw.polygon(shape_points(kind, cx, cy, r, rotation), fill=fill, outline=outline, width=width)


def place_apart(
    ctx: Ctx,
    n: int,
    w: int,
    h: int,
    radius: float,
    margin: float,
    gap: float = 1.0,
    tries: int = 400,
) -> list[tuple[float, float]] | None:
    """``n`` centres at least ``2*radius*gap`` apart inside the canvas, or None."""
    points: list[tuple[float, float]] = []
    min_d = 2 * radius * gap
    for _ in range(tries):
        if len(points) == n:
            break
        x = ctx.rng.uniform(margin, w - margin)
        y = ctx.rng.uniform(margin, h - margin)
        if all((x - px) ** 2 + (y - py) ** 2 >= min_d**2 for px, py in points):
            points.append((x, y))
    return points if len(points) == n else None


# ---- degradations --------------------------------------------------------------------


def speckle(img: Image.Image, ctx: Ctx, density: float) -> Image.Image:
    """Salt-and-pepper / coloured speckles on ``density`` of the pixels (sparse noise keeps
    the PNG small while still hurting legibility)."""
    if density <= 0:
        return img
    arr = np.asarray(img, dtype=np.uint8).copy()
    h, w = arr.shape[:2]
    count = int(density * h * w)
    ys = ctx.np.integers(0, h, count)
    xs = ctx.np.integers(0, w, count)
    shades = ctx.np.integers(0, 2, count).astype(np.uint8) * 255
    if arr.ndim == 3:
        arr[ys, xs, :] = shades[:, None]
    else:
        arr[ys, xs] = shades
    return Image.fromarray(arr, mode=img.mode)


def low_resolution(img: Image.Image, radius: float) -> Image.Image:
    """Blur as a low-resolution scan would: down-sample by 1/(1+radius) and back up
    (cheaper than a Gaussian and closer to what cameras and scanners do)."""
    factor = 1.0 / (1.0 + radius)
    small = (max(1, int(img.width * factor)), max(1, int(img.height * factor)))
    return img.resize(small, Image.BILINEAR).resize(img.size, Image.BILINEAR)


def finish(
    img: Image.Image,
    ctx: Ctx,
    noise: float = 0.05,
    blur: float = 1.5,
    noise_weight: float = 1.0,
    blur_weight: float = 1.0,
) -> Image.Image:
    """Apply noise and blur following the latent level; both are recorded as difficulty.

    ``noise`` is the largest speckle density, ``blur`` the largest blur radius.
    """
    density = 0.0
    if ctx.level > 0.3 and ctx.coin(0.3 + 0.5 * ctx.level):
        density = noise * ctx.near(0.25)
    radius = 0.0
    if ctx.level > 0.25 and ctx.coin(0.2 + 0.5 * ctx.level):
        radius = blur * ctx.near(0.25)
    if radius >= 0.3:
        img = low_resolution(img, radius)
    else:
        radius = 0.0
    if density >= 0.002:
        img = speckle(img, ctx, density)
    else:
        density = 0.0
    ctx.diff.add(density / noise if noise else 0.0, noise_weight)
    ctx.diff.add(radius / blur if blur else 0.0, blur_weight)
    return img


def canvas_size(ctx: Ctx, lo: int = 256, hi: int = 640, aspect: tuple[float, float] = (0.75, 1.33)) -> tuple[int, int]:
    w = ctx.rng.randint(lo, hi)
    ratio = ctx.rng.uniform(*aspect)
    h = int(min(hi, max(lo, w / ratio)))
    return w, h
