"""Query featurizer: fixed shape, determinism, real pixel statistics, metadata handling, and
no answer / outcome ever reaching a feature."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lrcal.errors import LrcalError
from lrcal.features import FeatureSpec, Query, featurize, featurize_table, fit_feature_spec
from lrcal.features.image import IMAGE_STAT_NAMES
from lrcal.features.spec import FEATURE_FORMAT_VERSION
from lrcal.features.text import CUE_NAMES
from lrcal.outcome_table import OutcomeTable


def stat(spec: FeatureSpec, row: np.ndarray, name: str) -> float:
    return float(row[spec.blocks["image"][0] + IMAGE_STAT_NAMES.index(name)])


def cue(spec: FeatureSpec, row: np.ndarray, name: str) -> float:
    return float(row[spec.blocks["cues"][0] + CUE_NAMES.index(name)])


@pytest.fixture
def images(tmp_path):
    paths = {}
    Image.new("RGB", (300, 200), (255, 255, 255)).save(tmp_path / "white.png")
    Image.new("RGB", (64, 64), (0, 0, 0)).save(tmp_path / "black.jpg")
    doc = Image.new("RGB", (400, 400), (255, 255, 255))
    draw = ImageDraw.Draw(doc)
    rng = np.random.default_rng(0)
    for y in range(10, 390, 14):
        x = 10
        while x < 370:
            w = int(rng.integers(6, 30))
            draw.rectangle([x, y, x + w, y + 6], fill=(0, 0, 0))
            x += w + 5
    doc.save(tmp_path / "doc.png")
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    photo = np.stack([xx * 255, yy * 255, (1 - xx) * 200], -1).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=90)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    for name in ("white.png", "black.jpg", "doc.png", "photo.jpg", "broken.png"):
        paths[name.split(".")[0]] = str(tmp_path / name)
    return paths


def test_shape_blocks_and_determinism(images):
    spec = FeatureSpec(task_vocab=("chart", "ocr"), categorical_columns=("source",))
    queries = [
        Query(question="What is the total? (A) 1 (B) 2", images=[images["doc"]], task="ocr", metadata={"source": "x"}),
        Query(question="Is the sky blue?", images=[images["photo"]], task="unknown-task"),
        Query(),
    ]
    a = featurize(spec, queries)
    b = featurize(spec, queries, workers=1)
    assert a.shape == (3, spec.dim) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert spec.dim == max(end for _, end in spec.blocks.values())
    assert np.isfinite(a).all()
    # a new process-independent hash: the same question always lands in the same buckets
    again = featurize(FeatureSpec(task_vocab=("chart", "ocr"), categorical_columns=("source",)), queries[:1])
    assert np.array_equal(again[0], a[0])


def test_text_features_and_cues():
    spec = FeatureSpec()
    x = featurize(spec, [
        Query(question="How many apples are on the table?"),
        Query(question="Is the cat black? Answer yes or no."),
        Query(question="Which option is right? (A) red (B) blue"),
        Query(question="Find $m\\angle H$ if x^2 = 4"),
        Query(question=None),
        Query(question="△ABC的两内角平分线OB、OC相交于点O"),
    ])
    word, char = spec.block("word"), spec.block("char")
    assert np.linalg.norm(x[0, word]) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(x[0, char]) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(x[0, word], x[1, word])
    assert cue(spec, x[0], "numeric_answer") == 1 and cue(spec, x[0], "asks_count") == 1
    assert cue(spec, x[1], "yes_no") == 1 and cue(spec, x[1], "question_mark") == 1
    assert cue(spec, x[2], "multiple_choice") == 1
    assert cue(spec, x[3], "math_markup") > 0
    assert cue(spec, x[4], "text_absent") == 1 and np.all(x[4, word] == 0)
    assert cue(spec, x[5], "cjk_fraction") > 0.3


def test_choices_column_is_text_not_category():
    spec = fit_feature_spec(["t"] * 4, [{"choices": '["12", "13"]', "grade": "high"}] * 4)
    assert spec.categorical_columns == ("grade",)
    with_choices = featurize(spec, [Query(question="Find x", metadata={"choices": '["12", "13"]'})])[0]
    without = featurize(spec, [Query(question="Find x")])[0]
    assert cue(spec, with_choices, "n_choices") > 0 and cue(spec, with_choices, "multiple_choice") == 1
    assert not np.allclose(with_choices[spec.block("word")], without[spec.block("word")])


def test_pixel_statistics_are_real(images):
    spec = FeatureSpec()
    names = ["white", "black", "doc", "photo"]
    x = featurize(spec, [Query(images=[images[n]]) for n in names])
    rows = dict(zip(names, x))
    assert stat(spec, rows["white"], "mean_r") == pytest.approx(1.0, abs=0.01)
    assert stat(spec, rows["black"], "mean_g") == pytest.approx(0.0, abs=0.02)
    assert stat(spec, rows["white"], "log_aspect") == pytest.approx(np.log(1.5), abs=1e-4)
    assert stat(spec, rows["photo"], "colourfulness") > stat(spec, rows["doc"], "colourfulness")
    assert stat(spec, rows["doc"], "text_likeness") > 0.3 > stat(spec, rows["photo"], "text_likeness")
    assert stat(spec, rows["doc"], "edge_density") > stat(spec, rows["white"], "edge_density")
    proj = spec.block("image").start + len(IMAGE_STAT_NAMES)
    assert np.abs(rows["photo"][proj:spec.block("image").stop]).sum() > 0
    for row in x:
        assert stat(spec, row, "has_image") == 1 and stat(spec, row, "image_unreadable") == 0


def test_missing_and_unreadable_images_are_zeros_plus_flag(images, tmp_path):
    spec = FeatureSpec()
    x = featurize(spec, [Query(images=[str(tmp_path / "gone.png")]), Query(images=[images["broken"]]), Query()])
    block = spec.block("image")
    for row in x[:2]:
        assert stat(spec, row, "image_unreadable") == 1 and stat(spec, row, "has_image") == 0
        assert np.all(row[block.start + 3 : block.stop] == 0)
    assert np.all(x[2, block] == 0)


def test_task_and_metadata_blocks():
    spec = fit_feature_spec(
        ["ocr", "chart", "ocr", None],
        [{"source": "a", "answer": "42", "m1_correct": "1", "free": f"unique {i}"} for i in range(4)],
    )
    assert spec.task_vocab == ("chart", "ocr")
    assert spec.categorical_columns == ("source",)  # answer / outcome / free-text columns are never categories
    x = featurize(spec, [Query(task="ocr", metadata={"source": "a"}), Query(task="new"), Query(task=None),
                         Query(metadata={"source": "b"})])
    task = spec.block("task")
    assert x[0, task].tolist() == [0, 1, 0, 0]
    assert x[1, task].tolist() == [0, 0, 1, 0]
    assert x[2, task].tolist() == [0, 0, 0, 1]
    meta = spec.block("meta")
    assert np.abs(x[0, meta]).sum() == 1 and not np.array_equal(x[0, meta], x[3, meta])


def test_answers_and_outcomes_never_change_features():
    def table(answers, scores, predictions):
        return OutcomeTable(
            name="t", sample_ids=["a", "b"], tasks=["x", "y"], questions=["What is 2+2?", "Name it"],
            answers=answers, images=[[], []], metadata=[{"source": "s"}, {"source": "t"}], models=["m"],
            scores=np.array(scores, dtype=float), cost_usd=np.array([[0.1], [0.9]]), predictions={"m": predictions},
        )

    spec = FeatureSpec(task_vocab=("x", "y"), categorical_columns=("source",))
    first = featurize_table(spec, table(["4", "cat"], [[1], [0]], ["4", "dog"]))
    second = featurize_table(spec, table(["5", "dog"], [[0], [1]], ["7", "cat"]))
    assert np.array_equal(first, second)


def test_spec_round_trip_and_mismatch():
    spec = fit_feature_spec(["a", "b"], [{"k": "v"}, {"k": "v"}])
    again = FeatureSpec.from_dict(spec.to_dict())
    assert again == spec and again.fingerprint() == spec.fingerprint()
    spec.check_same(again)
    other = FeatureSpec(task_vocab=("a", "c"), categorical_columns=spec.categorical_columns)
    with pytest.raises(LrcalError, match="feature spec mismatch on 'task_vocab'"):
        other.check_same(spec)
    data = spec.to_dict()
    data["version"] = FEATURE_FORMAT_VERSION + 1
    with pytest.raises(LrcalError, match="version"):
        FeatureSpec.from_dict(data)
    data = spec.to_dict()
    data["dim"] = 3
    with pytest.raises(LrcalError, match="dim"):
        FeatureSpec.from_dict(data)


def test_huge_and_odd_text_is_fine():
    spec = FeatureSpec()
    x = featurize(spec, [Query(question="word " * 200_000), Query(question="\ud800 lone surrogate \x00 nul"),
                         Query(question="🙂" * 5000)])
    assert np.isfinite(x).all()


def _page(size=(120, 60)) -> np.ndarray:
    a = np.full((size[1], size[0], 3), 240, np.uint8)
    a[10:30, 10:100] = 20
    return a


def test_pixels_are_read_as_a_person_sees_them(tmp_path):
    """A review: a 16-bit grey page was featurized as pure white, a transparent chart as a dark
    image and an EXIF-rotated photo sideways, unlike the same picture saved plainly."""
    page = _page()
    plain = tmp_path / "plain.png"
    Image.fromarray(page).save(plain)
    grey8 = tmp_path / "grey8.png"
    Image.fromarray(page[:, :, 0]).save(grey8)
    grey16 = tmp_path / "grey16.png"
    Image.fromarray(page[:, :, 0].astype(np.uint16) * 257).save(grey16)
    transparent = tmp_path / "transparent.png"
    rgba = np.zeros((60, 120, 4), np.uint8)
    rgba[10:30, 10:100] = (20, 20, 20, 255)
    Image.fromarray(rgba, "RGBA").save(transparent)
    on_white = tmp_path / "on_white.png"
    Image.fromarray(np.where(rgba[:, :, 3:] > 0, rgba[:, :, :3], 255).astype(np.uint8)).save(on_white)
    upright = tmp_path / "upright.jpg"
    Image.fromarray(page).save(upright, quality=95)
    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 8  # stored a quarter turn clockwise: display after a quarter turn back
    Image.fromarray(page).transpose(Image.ROTATE_270).save(turned, quality=95, exif=exif)
    spec = FeatureSpec()
    X = featurize(spec, [Query(images=[str(p)]) for p in (grey8, grey16, transparent, on_white, upright, turned)])
    block = X[:, spec.block("image")]
    assert np.abs(block[0] - block[1]).max() < 1e-6
    assert np.abs(block[2] - block[3]).max() < 0.02
    assert np.abs(block[4] - block[5]).max() < 0.05
    # a router trained before keeps reading pixels as it was trained (its spec has no field)
    legacy = FeatureSpec.from_dict({k: v for k, v in spec.to_dict().items() if k != "image_decode"})
    assert legacy.image_decode == 1 and "image_decode" not in legacy.to_dict()
    old = featurize(legacy, [Query(images=[str(grey16)]), Query(images=[str(grey8)])])[:, spec.block("image")]
    assert np.abs(old[0] - old[1]).max() > 0.1
    assert spec.to_dict()["image_decode"] == 2 and FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(LrcalError, match="image decoding 7"):
        FeatureSpec.from_dict({**spec.to_dict(), "image_decode": 7})


def test_a_large_wide_image_is_shrunk_before_its_values_are_rescaled():
    """A review: a 6000x6000 16-bit page was rescaled whole in float64 (2.7 s, +750 MB) for a
    128-pixel working copy."""
    from lrcal.pixels import to_rgb

    page = np.zeros((3000, 3000), np.uint16)
    page[500:1000, 500:2500] = 60000
    small = to_rgb(Image.fromarray(page), max_pixels=512 * 512)
    assert small.mode == "RGB" and small.width * small.height <= 512 * 512 and small.width == small.height
    assert np.asarray(small).max() == round(60000 / 257)
    assert to_rgb(Image.fromarray(page)).size == (3000, 3000)  # no limit: as it was
