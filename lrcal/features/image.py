"""Pixel features computed with pillow + numpy (never the file name).

Every image is decoded into a fixed 128x128 working copy (JPEG at reduced scale via
``draft``, so a 512x512 photo costs well under a millisecond to decode); the per-pixel colour
work (grey, HSV saturation, YCbCr chroma, channel means, histogram) is done by pillow's C
routines in a thread pool (pillow releases the GIL), and the gradient statistics with numpy
over whole batches of working copies at once (uint8/int16): size, aspect ratio (of the
original), colour statistics, grey-level entropy, edge density, a text-likeness score, and a
fixed random projection of a 16x16 grey thumbnail. A query with several images averages the
per-image features. A missing or unreadable image gives zeros plus a flag.
"""

from __future__ import annotations

import functools
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
_PER_IMAGE = _STATS - 3  # everything but has_image, image_unreadable, log_images
_WORK_SIDE = 128
_GRID = 8
_CHUNK = 128


@lru_cache(maxsize=8)
def projection_matrix(thumb_size: int, out_dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, thumb_size, out_dim, 0x1A6E]))
    return (rng.standard_normal((thumb_size * thumb_size, out_dim)) / math.sqrt(thumb_size * thumb_size)).astype(np.float32)


class WorkingCopy:
    """What the decoding thread extracts with pillow's C routines (no GIL-bound numpy)."""

    __slots__ = ("width", "height", "gray", "saturation", "rgb_mean", "chroma", "hist")

    def __init__(self, width, height, gray, saturation, rgb_mean, chroma, hist):
        self.width, self.height = width, height
        self.gray = gray  # uint8 [128, 128]
        self.saturation = saturation  # uint8 [128, 128]: chroma |Cb-128| + |Cr-128| (a cheap saturation)
        self.rgb_mean = rgb_mean  # 3 floats in [0, 1]
        self.chroma = chroma  # (std Cb, std Cr, mean |Cb - 128|, mean |Cr - 128|) in [0, 1]
        self.hist = hist  # 256-bin grey histogram


@lru_cache(maxsize=1)
def _neutral_plane():
    from PIL import Image

    return Image.new("L", (_WORK_SIDE, _WORK_SIDE), 128)


_BINS = np.arange(256, dtype=np.float64)


def _hist_moments(hist: list[int], bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation (0..255 scale) from a pillow histogram."""
    h = np.asarray(hist, dtype=np.float64).reshape(bands, 256)
    count = h.sum(axis=1)
    mean = h @ _BINS / count
    var = np.maximum(h @ (_BINS * _BINS) / count - mean * mean, 0.0)
    return mean, np.sqrt(var)


_EXIF_ORIENTATION = 0x0112


def load_working_copy(path: str, decode: int = 2) -> WorkingCopy | None:
    """Decode one image into a fixed 128x128 working copy and its pillow-side statistics,
    or None if it cannot be decoded. ``decode`` (`FeatureSpec.image_decode`): 2 reads the image
    as a person sees it (EXIF orientation, 16-bit and float values rescaled, transparency on
    white: `lrcal.pixels.to_rgb`); 1 as routers trained before it did."""
    from PIL import Image, ImageChops, ImageOps

    from lrcal.pixels import to_rgb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                width, height = im.size
                if im.format == "JPEG":
                    im.draft("RGB", (_WORK_SIDE, _WORK_SIDE))
                if decode >= 2:
                    if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):  # turned a quarter
                        width, height = height, width
                    im = to_rgb(ImageOps.exif_transpose(im), max_pixels=(4 * _WORK_SIDE) ** 2)
                else:
                    im = im.convert("RGB")
                side = max(im.size)
                if side >= 2 * _WORK_SIDE:
                    im = im.reduce(max(1, side // _WORK_SIDE))
                if im.size != (_WORK_SIDE, _WORK_SIDE):
                    im = im.resize((_WORK_SIDE, _WORK_SIDE), Image.BILINEAR)
                ycc_img = im.convert("YCbCr")
                luma, cb, cr = ycc_img.split()
                # means/stddevs from pillow's C histograms (ImageStat sums them in Python)
                rgb_mean, _ = _hist_moments(im.histogram(), 3)
                ycc_mean, ycc_std = _hist_moments(ycc_img.histogram(), 3)
                neutral = _neutral_plane()
                sat = ImageChops.add(ImageChops.difference(cb, neutral), ImageChops.difference(cr, neutral))
                copy = WorkingCopy(
                    width,
                    height,
                    np.asarray(luma, dtype=np.uint8),
                    np.asarray(sat, dtype=np.uint8),
                    tuple(float(m) / 255.0 for m in rgb_mean),
                    (float(ycc_std[1]) / 255.0, float(ycc_std[2]) / 255.0, abs(float(ycc_mean[1]) - 128) / 255.0,
                     abs(float(ycc_mean[2]) - 128) / 255.0),
                    luma.histogram(),
                )
    except Exception:  # noqa: BLE001 - any decode failure (truncated, bomb, not an image) is a flag
        return None
    if width < 1 or height < 1 or copy.gray.shape != (_WORK_SIDE, _WORK_SIDE):
        return None
    return copy


def _block_means(a: np.ndarray, grid: int) -> np.ndarray:
    """[n, H, W] -> [n, grid, grid] block means (H, W cropped to multiples of grid)."""
    n, h, w = a.shape
    bh, bw = h // grid, w // grid
    return a[:, : bh * grid, : bw * grid].reshape(n, grid, bh, grid, bw).mean(axis=(2, 4), dtype=np.float32)


_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def batch_statistics(copies: Sequence[WorkingCopy], thumb_size: int, proj: np.ndarray) -> np.ndarray:
    """Per-image features [n, 16 stats + proj], the numpy part vectorized over the batch."""
    n = len(copies)
    gray8 = np.stack([c.gray for c in copies])  # [n, H, W] uint8
    sat8 = np.stack([c.saturation for c in copies])
    hist = np.asarray([c.hist for c in copies], dtype=np.float64)  # [n, 256]
    total = hist.sum(axis=1)
    gray_mean = hist @ _LEVELS / total
    gray_std = np.sqrt(np.maximum(hist @ (_LEVELS**2) / total - gray_mean**2, 0.0))
    coarse = hist.reshape(n, 16, 16).sum(axis=2) / total[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(coarse > 0, coarse * np.log(coarse), 0.0).sum(axis=1) / math.log(16)
    white = hist[:, 230:].sum(axis=1) / total  # grey > 0.9
    dark = hist[:, :39].sum(axis=1) / total  # grey < 0.15
    chroma = np.asarray([c.chroma for c in copies], dtype=np.float64)
    colourfulness = np.hypot(chroma[:, 0], chroma[:, 1]) + 0.3 * np.hypot(chroma[:, 2], chroma[:, 3])
    rgb_mean = np.asarray([c.rgb_mean for c in copies], dtype=np.float64)
    g16 = gray8.astype(np.int16)
    gx = np.abs(g16[:, :, 1:] - g16[:, :, :-1])
    gy = np.abs(g16[:, 1:, :] - g16[:, :-1, :])
    edge_density = 0.5 * ((gx > 25).mean(axis=(1, 2)) + (gy > 25).mean(axis=(1, 2)))  # 0.1 of full scale
    strong = gx > 64  # 0.25 of full scale
    row_density = strong.mean(axis=2)
    text_rows = ((row_density > 0.04) & (row_density < 0.5)).mean(axis=1)
    # text-likeness: grid cells with dense, high-contrast transitions on a low-saturation background
    w = strong.shape[2]
    density = _block_means(strong, _GRID)
    cell_sat = _block_means(sat8[:, :, :w], _GRID) / 255.0
    gray_w = gray8[:, :, :w].astype(np.float32) * (1.0 / 255.0)
    cell_mean = _block_means(gray_w, _GRID)
    cell_var = _block_means(gray_w * gray_w, _GRID) - cell_mean**2
    text_cells = (density > 0.04) & (density < 0.5) & (cell_sat < 0.15) & (cell_var > 0.0225)
    text_likeness = text_cells.reshape(n, -1).mean(axis=1)
    width = np.array([c.width for c in copies], dtype=np.float64)
    height = np.array([c.height for c in copies], dtype=np.float64)
    stats = np.stack(
        [
            np.log1p(width) / 8.0,
            np.log1p(height) / 8.0,
            np.log(np.maximum(width, 1) / np.maximum(height, 1)),
            rgb_mean[:, 0],
            rgb_mean[:, 1],
            rgb_mean[:, 2],
            gray_std * 2.0,
            sat8.reshape(n, -1).mean(axis=1) / 255.0,
            colourfulness,
            entropy,
            white,
            dark,
            edge_density,
            strong.mean(axis=(1, 2)),
            text_rows,
            text_likeness,
        ],
        axis=1,
    ).astype(np.float32)
    factor = _WORK_SIDE // thumb_size
    side = thumb_size * factor
    thumb = gray8[:, :side, :side].reshape(n, thumb_size, factor, thumb_size, factor).mean(axis=(2, 4), dtype=np.float32)
    thumb = thumb.reshape(n, -1)
    thumb = (thumb - thumb.mean(axis=1, keepdims=True)) / (thumb.std(axis=1, keepdims=True) + 0.25)
    # an explicit per-row reduction, not a BLAS matmul: a query's features must not depend
    # on which other queries share its batch (BLAS kernels vary with the batch shape)
    projected = (thumb[:, :, None] * proj[None, :, :]).sum(axis=1)
    return np.concatenate([stats, projected.astype(np.float32)], axis=1)


def image_features(paths: Sequence[str], *, thumb_size: int, proj_dim: int, seed: int, max_images: int,
                   decode: int = 2) -> np.ndarray:
    """Features of one query's images (see `batch_image_features`)."""
    return batch_image_features([paths], thumb_size=thumb_size, proj_dim=proj_dim, seed=seed, max_images=max_images,
                                workers=1, decode=decode)[0]


def batch_image_features(
    image_lists: Sequence[Sequence[str]], *, thumb_size: int, proj_dim: int, seed: int, max_images: int,
    workers: int | None = None, decode: int = 2,
) -> np.ndarray:
    """[N, stats + proj] for N queries."""
    n = len(image_lists)
    out = np.zeros((n, _STATS + proj_dim), dtype=np.float32)
    jobs = [(i, p) for i, paths in enumerate(image_lists) for p in list(paths)[:max_images]]
    for i, paths in enumerate(image_lists):
        if paths:
            out[i, 2] = math.log1p(len(paths)) / 2.0
    if not jobs:
        return out
    proj = projection_matrix(thumb_size, proj_dim, seed)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    paths = [p for _, p in jobs]
    load = functools.partial(load_working_copy, decode=decode)
    if workers <= 1 or len(paths) < 8:
        loaded = [load(p) for p in paths]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            loaded = list(pool.map(load, paths, chunksize=8))
    ok = [j for j, item in enumerate(loaded) if item is not None]
    per_image = np.zeros((len(jobs), _PER_IMAGE + proj_dim), dtype=np.float32)
    for start in range(0, len(ok), _CHUNK):
        chunk = ok[start : start + _CHUNK]
        per_image[chunk] = batch_statistics([loaded[j] for j in chunk], thumb_size, proj)
    readable = np.zeros(len(jobs), dtype=bool)
    readable[ok] = True
    owners = np.array([i for i, _ in jobs])
    sums = np.zeros((n, _PER_IMAGE + proj_dim), dtype=np.float64)
    np.add.at(sums, owners[readable], per_image[readable])
    n_ok = np.bincount(owners[readable], minlength=n)
    n_all = np.bincount(owners, minlength=n)
    has = n_ok > 0
    out[has, 3:] = (sums[has] / n_ok[has, None]).astype(np.float32)
    out[:, 0] = has.astype(np.float32)
    out[:, 1] = ((n_all > n_ok)).astype(np.float32)
    return out
