"""Pixel features computed with pillow + numpy (never the file name).

Per image, from a thumbnail of at most ~128 px on the long side (JPEG is decoded at reduced
scale via ``draft``, so a 512x512 photo costs well under a millisecond to decode):
size, aspect ratio, colour statistics, grey-level entropy, edge density, a text-likeness
score, and a fixed random projection of a 16x16 grey thumbnail. A query with several images
averages the per-image features. A missing or unreadable image gives zeros plus a flag.
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Sequence

import numpy as np

IMAGE_STAT_NAMES = (
    "has_image",
    "image_unreadable",
    "log_images",
    "log_width",
    "log_height",
    "log_aspect",
    "mean_r",
    "mean_g",
    "mean_b",
    "std_gray",
    "mean_saturation",
    "colourfulness",
    "gray_entropy",
    "white_fraction",
    "dark_fraction",
    "edge_density",
    "transition_density",
    "text_row_fraction",
    "text_likeness",
)
_STATS = len(IMAGE_STAT_NAMES)
_WORK_SIDE = 128


@lru_cache(maxsize=8)
def projection_matrix(thumb_size: int, out_dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, thumb_size, out_dim, 0x1A6E]))
    return (rng.standard_normal((thumb_size * thumb_size, out_dim)) / math.sqrt(thumb_size * thumb_size)).astype(np.float32)


def _load(path: str):
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            width, height = im.size
            if im.format == "JPEG":
                im.draft("RGB", (_WORK_SIDE, _WORK_SIDE))
            im = im.convert("RGB")
            side = max(im.size)
            if side > _WORK_SIDE + _WORK_SIDE // 4:
                im = im.reduce(max(1, side // _WORK_SIDE))
            im.load()
    return width, height, im


_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def single_image_features(path: str, thumb_size: int, proj: np.ndarray) -> np.ndarray | None:
    """Stats (without the 3 leading flags/count) + projection for one image, or None if unreadable."""
    from PIL import Image

    try:
        width, height, im = _load(path)
    except Exception:  # noqa: BLE001 - any decode failure (truncated, bomb, not an image) is a flag
        return None
    rgb = np.asarray(im, dtype=np.float32) * (1.0 / 255.0)
    if rgb.ndim != 3 or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        return None
    h, w = rgb.shape[:2]
    # planar channels: numpy reductions over a trailing axis of 3 are very slow
    r, g, b = np.ascontiguousarray(rgb.transpose(2, 0, 1))
    gray = 0.299 * r + 0.587 * g + 0.114 * b
    mean_rgb = (float(r.mean()), float(g.mean()), float(b.mean()))
    cmax = np.maximum(np.maximum(r, g), b)
    cmin = np.minimum(np.minimum(r, g), b)
    saturation = (cmax - cmin) / np.maximum(cmax, 1e-3)
    rg = r - g
    yb = 0.5 * (r + g) - b
    colourfulness = math.sqrt(float(rg.var()) + float(yb.var())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
    hist = np.bincount(np.minimum((gray * 16).astype(np.int32), 15).ravel(), minlength=16).astype(np.float64)
    p = hist[hist > 0] / hist.sum()
    entropy = float(-(p * np.log(p)).sum() / math.log(16))
    gx = np.abs(gray[:, 1:] - gray[:, :-1])
    gy = np.abs(gray[1:, :] - gray[:-1, :])
    edge_density = 0.5 * (float(np.count_nonzero(gx > 0.1)) / gx.size + float(np.count_nonzero(gy > 0.1)) / gy.size)
    strong = gx > 0.25
    row_density = strong.mean(axis=1)
    text_rows = float(np.count_nonzero((row_density > 0.04) & (row_density < 0.5))) / len(row_density)
    text_likeness = _text_likeness(strong, saturation, gray)
    stats = np.array(
        [
            math.log1p(width) / 8.0,
            math.log1p(height) / 8.0,
            math.log(max(width, 1) / max(height, 1)),
            float(mean_rgb[0]),
            float(mean_rgb[1]),
            float(mean_rgb[2]),
            float(gray.std()) * 2.0,
            float(saturation.mean()),
            colourfulness,
            entropy,
            float(np.count_nonzero(gray > 0.9)) / gray.size,
            float(np.count_nonzero(gray < 0.15)) / gray.size,
            edge_density,
            float(strong.mean()),
            text_rows,
            text_likeness,
        ],
        dtype=np.float32,
    )
    thumb = np.asarray(im.convert("L").resize((thumb_size, thumb_size), Image.BOX), dtype=np.float32).ravel()
    thumb = (thumb - thumb.mean()) / (thumb.std() + 1e-3)
    return np.concatenate([stats, thumb @ proj])


def _block_means(a: np.ndarray, grid: int) -> np.ndarray:
    h, w = a.shape
    bh, bw = h // grid, w // grid
    return a[: bh * grid, : bw * grid].reshape(grid, bh, grid, bw).mean(axis=(1, 3))


def _text_likeness(strong: np.ndarray, saturation: np.ndarray, gray: np.ndarray, grid: int = 8) -> float:
    """Fraction of grid cells that look like printed text: dense, high-contrast horizontal
    transitions on a low-saturation background."""
    h, w = strong.shape
    if h < grid or w < grid:
        return 0.0
    g = gray[:, :w]
    density = _block_means(strong.astype(np.float32), grid)
    sat = _block_means(saturation[:, :w], grid)
    mean = _block_means(g, grid)
    var = _block_means(g * g, grid) - mean * mean
    hits = (density > 0.04) & (density < 0.5) & (sat < 0.25) & (var > 0.0225)
    return float(hits.mean())


def image_features(paths: Sequence[str], *, thumb_size: int, proj_dim: int, seed: int, max_images: int) -> np.ndarray:
    out = np.zeros(_STATS + proj_dim, dtype=np.float32)
    if not paths:
        return out
    proj = projection_matrix(thumb_size, proj_dim, seed)
    per_image = [single_image_features(p, thumb_size, proj) for p in list(paths)[:max_images]]
    readable = [x for x in per_image if x is not None]
    out[2] = math.log1p(len(paths)) / 2.0
    if not readable:
        out[1] = 1.0
        return out
    out[0] = 1.0
    out[1] = 1.0 if len(readable) < len(per_image) else 0.0
    out[3:] = np.mean(readable, axis=0)
    return out


def batch_image_features(
    image_lists: Sequence[Sequence[str]], *, thumb_size: int, proj_dim: int, seed: int, max_images: int,
    workers: int | None = None,
) -> np.ndarray:
    """[N, stats + proj] for N queries; decodes in a thread pool (pillow releases the GIL)."""
    n = len(image_lists)
    out = np.zeros((n, _STATS + proj_dim), dtype=np.float32)
    todo = [i for i, paths in enumerate(image_lists) if paths]
    if not todo:
        return out

    def one(i: int) -> np.ndarray:
        return image_features(image_lists[i], thumb_size=thumb_size, proj_dim=proj_dim, seed=seed, max_images=max_images)

    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if workers <= 1 or len(todo) < 8:
        for i in todo:
            out[i] = one(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, row in zip(todo, pool.map(one, todo, chunksize=16)):
                out[i] = row
    return out
