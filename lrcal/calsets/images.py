"""Safe checks of untrusted image files: containment, size, format, bombs, decodability.

Pillow is imported lazily so that ``import lrcal.calsets`` stays light.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lrcal.calsets.format import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_PATH_CHARS
from lrcal.image_formats import IMAGE_MIME_TYPES, sniff_format


class ImageProblem(Exception):
    """An image cannot be used; ``kind`` is the problem kind reported by the validator."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ImageInfo:
    path: Path  # absolute, symlinks resolved
    sha256: str
    format: str  # PNG | JPEG | WEBP | GIF
    width: int
    height: int
    size_bytes: int

    @property
    def mime(self) -> str:
        return IMAGE_MIME_TYPES[self.format]


def mime_type_for_bytes(data: bytes) -> str:
    fmt = sniff_format(data)
    if fmt is None:
        raise ValueError("not a PNG, JPEG, WebP or GIF image")
    return IMAGE_MIME_TYPES[fmt]


def resolve_inside(set_dir: Path, relative: str) -> Path:
    """The absolute path of ``relative`` inside ``set_dir`` (already resolved), or ImageProblem.

    Refused: absolute paths, drive letters, backslashes, ``..`` components, NUL, and
    anything whose real path (symlinks followed) leaves the set directory.
    """
    if not relative.strip():
        raise ImageProblem("bad_value", "image path is empty")
    if len(relative) > MAX_PATH_CHARS:
        raise ImageProblem("unsafe_path", f"image path is longer than {MAX_PATH_CHARS} characters")
    if "\x00" in relative:
        raise ImageProblem("unsafe_path", "image path contains a NUL character")
    if "\\" in relative:
        raise ImageProblem("unsafe_path", f"image path {relative!r} uses backslashes; use '/' separators")
    posix = PurePosixPath(relative)
    if posix.is_absolute() or (len(relative) >= 2 and relative[1] == ":"):
        raise ImageProblem("unsafe_path", f"image path {relative!r} is absolute; it must be relative to the set directory")
    if ".." in posix.parts:
        raise ImageProblem("unsafe_path", f"image path {relative!r} escapes the set directory ('..')")
    candidate = set_dir.joinpath(*posix.parts)
    try:
        real = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise ImageProblem("unsafe_path", f"image path {relative!r} cannot be resolved ({exc.__class__.__name__})") from None
    if real != set_dir and set_dir not in real.parents:
        raise ImageProblem("unsafe_path", f"image path {relative!r} resolves outside the set directory (symlink to {str(real)!r})")
    return real


def read_checked_bytes(path: Path, shown: str) -> bytes:
    """Read a regular file of bounded size (never a FIFO or device)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageProblem("missing_image", f"image {shown!r} does not exist") from None
    except OSError as exc:
        raise ImageProblem("missing_image", f"image {shown!r} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImageProblem("not_a_file", f"image {shown!r} is not a regular file")
    if st.st_size > MAX_IMAGE_BYTES:
        raise ImageProblem(
            "image_too_big", f"image {shown!r} is {st.st_size / 2**20:.1f} MiB; the limit is {MAX_IMAGE_BYTES >> 20} MiB"
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise ImageProblem("missing_image", f"image {shown!r} cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem("image_too_big", f"image {shown!r} grew beyond {MAX_IMAGE_BYTES >> 20} MiB while reading")
    return data


def inspect_image_header(data: bytes, label: str) -> tuple[str, int, int]:
    """(format, width, height) from the header alone, or ImageProblem naming ``label`` (e.g.
    "image 'a.png'"): a PNG/JPEG/WebP/GIF whose header opens, with 1 to MAX_IMAGE_PIXELS pixels.
    A decompression bomb costs nothing; a body truncated after its header is not detected (the
    featurizer flags images it cannot decode). Shared by `import-outcomes` and `lrcal serve`."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageProblem("unsupported_image", f"{label} is not a PNG, JPEG, WebP or GIF file")
    from PIL import Image

    over_limit = f"{label} has more than {MAX_IMAGE_PIXELS:,} pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
    except Image.DecompressionBombError:  # pillow refused it from the header alone
        raise ImageProblem("image_too_large", f"{over_limit} (pillow's decompression-bomb guard)") from None
    except Exception as exc:  # noqa: BLE001 - a third-party decoder on hostile bytes
        raise ImageProblem("corrupt_image", f"{label} is corrupt ({exception_line(exc)[:120]})") from None
    if width < 1 or height < 1:
        raise ImageProblem("corrupt_image", f"{label} has no pixels ({width}x{height})")
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageProblem("image_too_large", f"{over_limit} ({width}x{height}; decompression-bomb guard)")
    return fmt, width, height


def inspect_image_bytes(data: bytes, shown: str) -> tuple[str, int, int]:
    """(format, width, height) after a full decode, or ImageProblem.

    The pixel limit is checked from the header *before* decoding, so a bomb costs
    nothing; Pillow's own bomb error (beyond 2x its limit) is reported the same way.
    """
    if not data:
        raise ImageProblem("corrupt_image", f"image {shown!r} is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageProblem("unsupported_image", f"image {shown!r} is not a PNG, JPEG, WebP or GIF file")
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                width, height = img.size
                _check_pixels(width, height, shown)
                img.load()
            if fmt == "PNG":  # CRCs and the chunk stream; load() alone skips some of it
                with Image.open(io.BytesIO(data), formats=[fmt]) as img:
                    img.verify()
    except ImageProblem:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageProblem("image_too_large", f"image {shown!r}: {exception_line(exc)} (limit {MAX_IMAGE_PIXELS:,} pixels)") from None
    except MemoryError:
        raise ImageProblem("image_too_large", f"image {shown!r} needs too much memory to decode") from None
    except Exception as exc:  # third-party decoder on hostile bytes: any failure means corrupt
        raise ImageProblem("corrupt_image", f"image {shown!r} is corrupt or truncated ({exception_line(exc)})") from None
    if width < 1 or height < 1:
        raise ImageProblem("corrupt_image", f"image {shown!r} has no pixels ({width}x{height})")
    return fmt, width, height


def _check_pixels(width: int, height: int, shown: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageProblem(
            "image_too_large",
            f"image {shown!r} is {width}x{height} = {width * height / 1e6:.1f} Mpx; the limit is "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx (decompression-bomb guard)",
        )


def check_image(set_dir: Path, relative: str) -> ImageInfo:
    """Every check of one image referenced by a manifest line."""
    path = resolve_inside(set_dir, relative)
    data = read_checked_bytes(path, relative)
    fmt, width, height = inspect_image_bytes(data, relative)
    return ImageInfo(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        width=width,
        height=height,
        size_bytes=len(data),
    )


_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")


def exception_line(exc: BaseException) -> str:
    """The exception's text on one line, without object reprs (messages stay reproducible)."""
    text = _OBJECT_REPR.sub("", str(exc)).strip() or exc.__class__.__name__
    return " ".join(text.split())[:200]
