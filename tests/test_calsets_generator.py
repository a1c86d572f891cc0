"""The pillow generator and the committed built-in sets."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from lrcal.calsets import TASK_GROUPS, SetError, build_prompt, load_set, resolve_set, score_answer, validate_set
from lrcal.calsets.format import ANSWER_TYPES
from lrcal.calsets.generator import (
    BUILTIN_SEEDS,
    BUILTIN_SIZES,
    POOL_SET_NAME,
    SUBTYPES,
    TRAIN_SET_NAME,
    generate_examples,
    generate_set,
    provenance,
)
from lrcal.calsets.overlap import duplicate_images, overlap

REPO = Path(__file__).resolve().parent.parent
MAX_SUBTYPES = max(len(s) for s in SUBTYPES.values())


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_byte_identical_sets(tmp_path):
    a = generate_set(tmp_path / "a", "det", 14, 5)
    b = generate_set(tmp_path / "b", "det", 14, 5)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert a.version == b.version == load_set(tmp_path / "a").version
    assert a.examples == load_set(tmp_path / "a").examples
    c = generate_set(tmp_path / "c", "det", 14, 6)
    assert c.version != a.version


def test_a_shorter_set_is_a_prefix_of_a_longer_one():
    short = list(generate_examples("p", 7, 2))
    long = list(generate_examples("p", 13, 2))
    assert [(g.record, g.png) for g in short] == [(g.record, g.png) for g in long[:7]]


def test_groups_interleave_with_near_equal_counts():
    records = [g.record for g in generate_examples("cnt", 20, 1)]
    assert [r["task_group"] for r in records[:6]] == list(TASK_GROUPS)
    assert Counter(r["task_group"] for r in records) == {"ocr": 4, "chart": 4, "document": 3, "spatial": 3, "vqa": 3, "math": 3}
    only = [g.record["task_group"] for g in generate_examples("two", 5, 1, groups=("math", "ocr"))]
    assert only == ["math", "ocr", "math", "ocr", "math"]


def test_every_subtype_yields_a_valid_self_consistent_example(tmp_path):
    n = len(TASK_GROUPS) * MAX_SUBTYPES  # every group cycles through all its subtypes
    cset = generate_set(tmp_path / "all", "cover", n, 11)
    assert validate_set(tmp_path / "all") == []
    seen = {(e.task_group, e.subtype) for e in cset.examples}
    assert seen == {(g, s) for g, subtypes in SUBTYPES.items() for s in subtypes}
    assert {e.answer_type for e in cset.examples} == set(ANSWER_TYPES)
    for e in cset.examples:
        assert 0.0 <= e.difficulty <= 1.0
        assert score_answer(e, e.answer).correct, e  # the reference scores as correct
        with Image.open(e.image_path) as img:
            assert 256 <= min(img.size) and max(img.size) <= 640, (e.id, img.size)
            assert img.format == "PNG"
        if e.answer_type == "multiple_choice":
            assert e.answer in e.choices and len(e.choices) >= 2
            wrong = next(c for c in e.choices if c != e.answer)
            assert not score_answer(e, wrong).correct
            assert f"(A) {e.choices[0]}" in build_prompt(e)
        if e.answer_type == "number":
            assert e.tolerance is not None and e.tolerance >= 0
    for group in TASK_GROUPS:
        types = {e.answer_type for e in cset.examples if e.task_group == group}
        assert len(types) >= 3, (group, types)  # real variety inside every group


def test_difficulty_spreads_inside_every_group():
    records = [g.record for g in generate_examples("spread", 150, 4)]
    for group in TASK_GROUPS:
        values = [r["meta"]["difficulty"] for r in records if r["task_group"] == group]
        assert max(values) - min(values) > 0.5, group
        assert len(set(values)) > len(values) // 2


def test_different_seeds_or_names_share_no_image_or_example():
    sets = {
        key: list(generate_examples(*key))
        for key in (("s", 60, 1), ("s", 60, 2), ("t", 60, 1))
    }
    images = [{g.sha256 for g in examples} for examples in sets.values()]
    assert all(len(s) == 60 for s in images)  # no duplicate inside a set
    assert not (images[0] & images[1]) and not (images[0] & images[2]) and not (images[1] & images[2])
    ids_s = {g.record["id"] for g in sets[("s", 60, 1)]}
    ids_t = {g.record["id"] for g in sets[("t", 60, 1)]}
    assert not ids_s & ids_t


def test_rendered_text_uses_only_glyphs_of_pillows_default_font(monkeypatch):
    drawn: list[str] = []
    original_text = ImageDraw.ImageDraw.text

    def recording_text(self, xy, text, *args, **kwargs):
        drawn.append(text)
        return original_text(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", recording_text)
    list(generate_examples("glyphs", len(TASK_GROUPS) * MAX_SUBTYPES, 3))
    supported = {chr(c) for c in range(32, 127)} | {"°"}
    bad = {ch for text in drawn for ch in text} - supported
    assert drawn and not bad, f"characters the default font renders as boxes: {bad}"


def test_generate_refuses_non_empty_dirs_and_force_replaces(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SetError, match="not empty"):
        generate_set(out, "x", 3, 0)
    assert (out / "keep.txt").read_text() == "mine"  # nothing written
    cset = generate_set(out, "x", 3, 0, overwrite=True)
    assert len(cset) == 3 and not (out / "keep.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


@pytest.mark.parametrize(
    "name, n, seed, groups",
    [("", 3, 0, TASK_GROUPS), ("a b", 3, 0, TASK_GROUPS), ("../x", 3, 0, TASK_GROUPS), ("ok", 0, 0, TASK_GROUPS),
     ("ok", 3, -1, TASK_GROUPS), ("ok", 3, 0, ("ocr", "cooking")), ("ok", 3, 0, ()), ("ok", 3, 0, ("ocr", "ocr"))],
)  # fmt: skip
def test_bad_generator_arguments(tmp_path, name, n, seed, groups):
    with pytest.raises(SetError):
        generate_set(tmp_path / "o", name, n, seed, groups)
    assert not (tmp_path / "o").exists()


# ---- the committed built-in sets -------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin():
    return {name: load_set(resolve_set(name)) for name in ("builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", POOL_SET_NAME)}


def test_builtin_sets_sizes_groups_and_bytes(builtin):
    assert len(builtin["builtin-v1"]) == 128
    assert len(builtin["builtin-v1-quick"]) == 64
    assert len(builtin["builtin-v1-holdout"]) == BUILTIN_SIZES["builtin-v1-holdout"] >= 128
    assert builtin["builtin-v1"].group_counts() == {"ocr": 22, "chart": 22, "document": 21, "spatial": 21, "vqa": 21, "math": 21}
    assert builtin["builtin-v1-quick"].group_counts() == {"ocr": 11, "chart": 11, "document": 11, "spatial": 11, "vqa": 10, "math": 10}
    assert set(builtin["builtin-v1-holdout"].group_counts().values()) == {24}
    # the adaptive sampler's candidate pool: at least 512 across the 6 groups, more than any budget
    assert len(builtin[POOL_SET_NAME]) == BUILTIN_SIZES[POOL_SET_NAME] >= 512
    assert set(builtin[POOL_SET_NAME].group_counts()) == set(TASK_GROUPS)
    assert min(builtin[POOL_SET_NAME].group_counts().values()) >= 85
    total = sum(p.stat().st_size for name in builtin for p in (REPO / "calibration_sets" / name).rglob("*") if p.is_file())
    assert total < 8_000_000  # 7.46 MB with the 512-example pool
    for cset in builtin.values():
        assert not duplicate_images(cset)


def test_quick_is_a_stratified_subset_with_identical_bytes(builtin):
    full, quick = builtin["builtin-v1"], builtin["builtin-v1-quick"]
    by_id = full.by_id()
    full_lines = set((full.path / "manifest.jsonl").read_bytes().splitlines())
    assert set((quick.path / "manifest.jsonl").read_bytes().splitlines()) <= full_lines
    for e in quick.examples:
        twin = by_id[e.id]
        assert e.image_path.read_bytes() == twin.image_path.read_bytes()
        assert e.image_path.parent.parent == quick.path  # its own copy, not a link into builtin-v1
    for group in TASK_GROUPS:  # every subtype of a group that builtin-v1 has appears in quick when it fits
        full_subtypes = {e.subtype for e in full.examples if e.task_group == group}
        quick_subtypes = {e.subtype for e in quick.examples if e.task_group == group}
        assert len(quick_subtypes) == min(len(full_subtypes), quick.group_counts()[group])


def test_holdout_and_training_set_are_disjoint_from_builtin_v1(builtin):
    full, holdout, pool = builtin["builtin-v1"], builtin["builtin-v1-holdout"], builtin[POOL_SET_NAME]
    assert not overlap(full, holdout)
    assert not overlap(pool, holdout) and not overlap(pool, full)
    # the training set is prefix-stable: its first 240 examples are those the demo generates
    train = list(generate_examples(TRAIN_SET_NAME, 240, BUILTIN_SEEDS[TRAIN_SET_NAME]))
    train_images = {g.sha256 for g in train}
    train_pairs = {(g.sha256, g.record["question"]) for g in train}
    train_ids = {g.record["id"] for g in train}
    for cset in (full, holdout, pool):
        assert not train_images & {e.image_sha256 for e in cset.examples}
        assert not train_pairs & {(e.image_sha256, e.question) for e in cset.examples}
        assert not train_ids & {e.id for e in cset.examples}


def test_committed_sets_match_a_fresh_generation_with_the_same_builds(builtin):
    info = json.loads((REPO / "calibration_sets" / "builtin-v1" / "set.json").read_text())
    recorded = {k: info["generator"].get(k) for k in ("generator_version", "pillow", "numpy", "zlib", "freetype2")}
    if recorded != provenance():
        pytest.skip(f"generated with other builds ({recorded}); bytes may differ from {provenance()}")
    fresh = list(generate_examples("builtin-v1", 128, BUILTIN_SEEDS["builtin-v1"]))
    committed = builtin["builtin-v1"]
    lines = (committed.path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [g.record for g in fresh]
    assert [e.image_sha256 for e in committed.examples] == [g.sha256 for g in fresh]


def test_builtin_images_decode_as_png_within_size_bounds(builtin):
    for e in builtin["builtin-v1-quick"].examples:
        with Image.open(io.BytesIO(e.image_path.read_bytes())) as img:
            assert img.format == "PNG" and 256 <= min(img.size) and max(img.size) <= 640


@pytest.mark.slow
def test_full_training_set_is_disjoint_from_the_committed_sets(tmp_path, builtin):
    train = generate_set(tmp_path / "train", TRAIN_SET_NAME, BUILTIN_SIZES[TRAIN_SET_NAME], BUILTIN_SEEDS[TRAIN_SET_NAME])
    assert len(train) == 1000 and not duplicate_images(train)
    for name in ("builtin-v1", "builtin-v1-holdout", POOL_SET_NAME):
        assert not overlap(train, builtin[name]), name
