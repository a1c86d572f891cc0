"""The TUI's own rendering helpers: number formats and images as half blocks."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from lrcal.tui import fmt
from lrcal.tui.halfblocks import image_halfblocks


def _pixels_of(text) -> np.ndarray:
    """Back from half blocks to an RGB array (top = foreground, bottom = background)."""
    lines = text.split("\n")
    height, width = 2 * len(lines), max(len(line) for line in lines)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    for y, line in enumerate(lines):
        assert set(line.plain) == {"▀"}
        for span in line.spans:
            for x in range(span.start, span.end):
                out[2 * y, x] = span.style.color.get_truecolor()[:3]
                out[2 * y + 1, x] = span.style.bgcolor.get_truecolor()[:3]
    return out


def test_image_halfblocks_keeps_colours_and_aspect():
    from PIL import Image

    image = Image.new("RGB", (120, 60), (250, 250, 250))
    for x in range(60):
        for y in range(30):
            image.putpixel((x, y), (200, 20, 20))  # red top-left quarter
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    text = image_halfblocks(buffer.getvalue(), 40, 30)
    pixels = _pixels_of(text)
    assert pixels.shape[:2] == (20, 40)  # 2:1 kept, width-bound
    expected = np.asarray(image.resize((40, 20), Image.Resampling.BOX))
    np.testing.assert_array_equal(pixels, expected)
    assert tuple(pixels[0, 0]) == (200, 20, 20) and tuple(pixels[-1, -1]) == (250, 250, 250)
    tall = _pixels_of(image_halfblocks(buffer.getvalue(), 40, 5))
    assert tall.shape[:2] == (10, 20)  # height-bound


def test_image_halfblocks_of_bad_or_missing_bytes():
    assert "cannot be decoded" in image_halfblocks(b"\x89PNG not really", 10, 5).plain
    assert image_halfblocks(None, 10, 5).plain == "(no image)"


def test_image_halfblocks_of_a_stored_example(tui_demo_home):
    from lrcal.services.review import ReviewService

    with ReviewService(tui_demo_home).connect() as review:
        sha = review.snapshot().examples[0]["image_sha256"]
        data = review.image_bytes(sha)
    text = image_halfblocks(data, 30, 12)
    lines = text.split("\n")
    assert 1 <= len(lines) <= 12 and max(len(line) for line in lines) <= 30


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.8125, ".81"), (1.0, "1.0"), (0.996, "1.0"), (0.0, ".00"), (None, " – "), (math.nan, " – ")],
)
def test_quality_format(value, text):
    assert fmt.quality(value) == text


def test_other_formats():
    assert fmt.ms(6.54) == "6.5ms" and fmt.ms(61.4) == "61ms" and fmt.ms(1234) == "1.2s" and fmt.ms(15000) == "15s" and fmt.ms(None) == "–"
    assert fmt.usd(0.0075) == "$0.0075" and fmt.usd(3.6e-05) == "$0.000036" and fmt.usd(0.25) == "$0.25"
    assert fmt.share(0.333) == "33%" and fmt.lam(0.5) == "0.5" and fmt.lam(0.0) == "0"
    assert fmt.timestamp("2026-01-05T09:00:01.000+00:00") == "2026-01-05 09:00:01"


def test_plus_minus_is_the_half_width_in_four_characters():
    assert fmt.plus_minus(0.70, 0.88) == "±.09" and fmt.plus_minus(0.0, 1.0) == "±.50"
    assert fmt.plus_minus(None, 0.5) == "" and fmt.plus_minus(math.nan, 0.5) == ""


def test_wilson_interval():
    from lrcal.services.review.routing import wilson_interval

    low, high = wilson_interval(0.5, 100)
    assert low == pytest.approx(0.4184, abs=1e-3) and high == pytest.approx(0.5816, abs=1e-3)  # textbook, z=1.645
    low, high = wilson_interval(1.0, 8)
    assert 0.7 < low < 1.0 and high == 1.0  # never outside [0, 1], never zero-width
    assert wilson_interval(None, 5) == (None, None) and wilson_interval(0.5, 0) == (None, None)


def _png(width: int = 40, height: int = 20) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_graphics_widgets_for_kitty_and_sixel_terminals():
    """textual-image draws the real pixels where the terminal has a graphics protocol; under
    test (no terminal) the app falls back to half blocks."""
    from textual_image.widget import SixelImage, TGPImage

    from lrcal.tui.images import GRAPHICS, HALFBLOCKS, graphics_widget

    assert GRAPHICS == HALFBLOCKS  # pytest's stdout is not a terminal
    assert isinstance(graphics_widget(_png(), "tgp"), TGPImage)
    assert isinstance(graphics_widget(_png(), "sixel"), SixelImage)
    assert graphics_widget(_png(), HALFBLOCKS) is None
    assert graphics_widget(b"not an image", "tgp") is None


def test_viewer_command_and_a_missing_file(tmp_path, monkeypatch):
    from lrcal.tui import images

    assert images.viewer_command("/x.png", platform="darwin") == ["open", "/x.png"]
    monkeypatch.setattr(images.shutil, "which", lambda name: "/usr/bin/xdg-open" if name == "xdg-open" else None)
    assert images.viewer_command("/x.png", platform="linux") == ["/usr/bin/xdg-open", "/x.png"]
    monkeypatch.setattr(images.shutil, "which", lambda name: None)
    assert images.viewer_command("/x.png", platform="linux") is None
    assert "missing" in images.open_in_viewer(str(tmp_path / "gone.png"))
    picture = tmp_path / "a.png"
    picture.write_bytes(_png())
    assert "no image viewer found" in images.open_in_viewer(str(picture))
