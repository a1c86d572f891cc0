"""Example images in the terminal, as sharp as the terminal allows.

Terminals with Kitty's graphics protocol or Sixel get the real pixels through textual-image;
everywhere else the image is drawn in half blocks (two true-colour pixels per cell), and `v`
opens the stored file in the system's image viewer, which is how a scanned invoice stays
readable. textual-image asks the terminal what it supports when it is imported, which only
works before Textual takes over the terminal: this module imports it at import time, and the
app imports this module before it starts.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

HALFBLOCKS = "halfblocks"


def _detect() -> str:
    """'tgp' (Kitty), 'sixel' or 'halfblocks': what textual-image found the terminal can show."""
    try:
        from textual_image import renderable
        from textual_image.renderable.sixel import Image as SixelImage
        from textual_image.renderable.tgp import Image as TGPImage
    except Exception:  # not installed, or no terminal to ask
        return HALFBLOCKS
    if renderable.Image not in (TGPImage, SixelImage):
        return HALFBLOCKS
    import textual_image.widget  # noqa: F401  (measures the terminal's cells now, while it still can)

    return "tgp" if renderable.Image is TGPImage else "sixel"


GRAPHICS = _detect()


def graphics_widget(data: bytes, protocol: str = GRAPHICS):
    """A textual-image widget showing ``data`` with the terminal's graphics protocol (None when
    the terminal has none, or the bytes are not an image)."""
    if protocol == HALFBLOCKS:
        return None
    from PIL import Image

    try:
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except Exception:
        return None
    if protocol == "sixel":
        from textual_image.widget import SixelImage as Widget
    else:
        from textual_image.widget import TGPImage as Widget
    return Widget(picture, id="example-picture")


def viewer_command(path: str, platform: str = sys.platform) -> list[str] | None:
    """The command that opens ``path`` in the system's image viewer (None: none known here)."""
    if platform == "darwin":
        return ["open", path]
    if platform.startswith("win"):
        return None  # os.startfile, below
    opener = shutil.which("xdg-open")
    return [opener, path] if opener else None


def open_in_viewer(path: str) -> str | None:
    """Open the image file in the system viewer, detached; returns a one-line problem, or None."""
    if not os.path.exists(path):
        return f"the image file is missing: {path}"
    if sys.platform.startswith("win"):
        os.startfile(path)  # type: ignore[attr-defined]
        return None
    command = viewer_command(path)
    if command is None:
        return f"no image viewer found (xdg-open); the file is {path}"
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)  # fmt: skip
    except OSError as exc:
        return f"cannot start {command[0]}: {exc.strerror}; the file is {path}"
    return None
