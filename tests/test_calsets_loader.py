"""Loading and validating calibration sets, against a corpus of broken sets built in tmp dirs."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from lrcal.calsets import (
    MAX_IMAGE_PIXELS,
    SetError,
    build_prompt,
    image_data_url,
    image_mime_type,
    load_set,
    read_image_bytes,
    resolve_set,
    validate_set,
)
from lrcal.calsets.format import MAX_LINE_BYTES
from lrcal.errors import LrcalError, NotFound

# ---- helpers (also used by the hypothesis tests) ---------------------------------------


def png_bytes(size: tuple[int, int] = (8, 6), colour=(200, 30, 30), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int, bit_depth: int = 8, colour_type: int = 2, idat: bytes = b"") -> bytes:
    """A PNG whose header declares any size (the pixel data may be absent)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + (_chunk(b"IDAT", idat) if idat else b"") + _chunk(b"IEND", b"")


def cheap_big_png(width: int, height: int) -> bytes:
    """A real, complete 1-bit PNG of width x height that compresses to a few kB."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return png_declaring(width, height, bit_depth=1, colour_type=0, idat=data)


def record(i: int = 0, **overrides) -> dict:
    base = {
        "id": f"ex-{i}",
        "task_group": "ocr",
        "question": "What word is shown?",
        "answer": "apple",
        "answer_type": "exact",
        "image": f"images/{i}.png",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


def make_set(root: Path, records: list, images: dict[str, bytes] | None = None, set_json=None, raw_lines=None) -> Path:
    """A set directory; every ``images/<digits>.png`` referenced gets a small valid PNG unless given."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    lines = []
    for rec in records:
        lines.append(json.dumps(rec, ensure_ascii=False) if isinstance(rec, dict) else rec)
        img = rec.get("image") if isinstance(rec, dict) else None
        if isinstance(img, str) and re.fullmatch(r"images/\d+\.png", img) and (images is None or img not in images):
            path = root / img
            if not path.exists():
                path.write_bytes(png_bytes(colour=(len(lines) * 7 % 256, 40, 90)))
    for name, data in (images or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if raw_lines is not None:
        (root / "manifest.jsonl").write_bytes(raw_lines)
    else:
        (root / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if set_json is not None:
        (root / "set.json").write_text(json.dumps(set_json) if not isinstance(set_json, str) else set_json)
    return root


def kinds(problems) -> list[str]:
    return [p.kind for p in problems]


# ---- good sets -------------------------------------------------------------------------


def test_valid_set_loads_with_absolute_paths_hashes_and_version(tmp_path):
    root = make_set(
        tmp_path / "good",
        [
            record(0),
            record(1, answer_type="multiple_choice", answer="dog", choices=["cat", "dog", "cow"], task_group="vqa"),
            record(2, answer_type="number", answer="1,234", tolerance=0.01, task_group="chart"),
            record(3, answer_type="yes_no", answer="No", task_group="spatial", meta={"difficulty": 0.5, "subtype": "x"}),
            record(4, answer_type="anls", answer="John Smith", task_group="document"),
        ],
    )
    cset = load_set(root)
    assert validate_set(root) == []
    assert cset.name == "good" and len(cset) == 5
    assert cset.task_groups == ("ocr", "chart", "document", "spatial", "vqa")
    assert len(cset.version) == 64 and cset.short_version == cset.version[:12]
    ex = cset.examples[1]
    assert ex.choices == ("cat", "dog", "cow") and ex.image_path.is_absolute()
    assert ex.image_path == (root / "images/1.png").resolve()
    assert cset.examples[3].difficulty == 0.5 and cset.examples[3].subtype == "x"
    assert cset.examples[2].tolerance == 0.01 and cset.examples[0].line == 1
    assert read_image_bytes(ex) == (root / "images/1.png").read_bytes()
    assert image_mime_type(ex) == "image/png"
    assert image_data_url(ex).startswith("data:image/png;base64,iVBOR")
    assert "(A) cat" in build_prompt(ex) and "(C) cow" in build_prompt(ex)


def test_version_tracks_manifest_and_image_bytes_but_not_location(tmp_path):
    root = make_set(tmp_path / "a", [record(0), record(1)])
    v1 = load_set(root).version
    assert load_set(root).version == v1  # stable
    moved = tmp_path / "elsewhere"
    os.rename(root, moved)
    assert load_set(moved).version == v1  # copied/moved together: same version
    (moved / "images/1.png").write_bytes(png_bytes(colour=(1, 2, 3)))
    v2 = load_set(moved).version
    assert v2 != v1
    text = (moved / "manifest.jsonl").read_text().replace("apple", "pear")
    (moved / "manifest.jsonl").write_text(text)
    assert load_set(moved).version not in (v1, v2)


def test_set_json_name_description_and_declared_groups(tmp_path):
    root = make_set(
        tmp_path / "dir",
        [record(0, task_group="medical")],
        set_json={"name": "my-set", "task_groups": ["medical"], "description": "x"},
    )
    cset = load_set(root)
    assert cset.name == "my-set" and cset.task_groups == ("medical",) and cset.description == "x"


def test_one_by_one_image_text_only_example_bom_and_blank_lines(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "tiny.png").write_bytes(png_bytes((1, 1)))
    lines = [
        json.dumps(record(0, image="tiny.png")),
        "",
        "   ",
        json.dumps(record(1, image=_DROP)),
    ]
    (root / "manifest.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    cset = load_set(root)
    assert [e.line for e in cset.examples] == [1, 4]
    assert cset.examples[1].image_path is None and cset.examples[1].image_sha256 is None


def test_symlink_inside_the_set_is_allowed(tmp_path):
    root = make_set(tmp_path / "s", [record(0, image="alias.png")], images={"real.png": png_bytes()})
    os.symlink(root / "real.png", root / "alias.png")
    assert validate_set(root) == []


def test_unicode_questions_answers_and_ids_load(tmp_path):
    root = make_set(
        tmp_path / "u",
        [
            record(0, id="ex-ü-日本", question="Quelle est la réponse ? 🤔 ‏עברית‎ e\u0301", answer="Ångström"),
            record(1, id="ex-1", question="x\u200b" * 3, answer="ｆｕｌｌｗｉｄｔｈ"),
        ],
    )
    cset = load_set(root)
    assert cset.examples[0].answer == "Ångström"


# ---- broken sets: every problem reported ------------------------------------------------


def test_missing_image_duplicate_id_and_bad_answer_type_are_all_listed(tmp_path):
    root = make_set(
        tmp_path / "broken",
        [record(0), record(1, image="images/nope.png"), record(0, image="images/0.png"), record(3, answer_type="essay")],
    )
    problems = validate_set(root)
    assert kinds(problems) == ["missing_image", "duplicate_id", "unknown_answer_type"]
    assert [p.line for p in problems] == [2, 3, 4]
    assert problems[1].example_id == "ex-0" and "first on line 1" in problems[1].message
    assert str(problems[0]).startswith(f"{root / 'manifest.jsonl'}:2: missing_image: ")


def test_load_set_raises_one_line_error_naming_file_line_and_count(tmp_path):
    root = make_set(tmp_path / "broken", [record(0), record(1, question="  "), record(2, answer_type="essay"), record(3, task_group="cooking")])
    with pytest.raises(SetError) as info:
        load_set(root)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{root / 'manifest.jsonl'}:2: question is empty")
    assert "and 2 more problems" in message
    assert isinstance(info.value, LrcalError) and len(info.value.problems) == 3


@pytest.mark.parametrize(
    "overrides, kind",
    [
        ({"id": 5}, "wrong_type"),
        ({"id": ""}, "empty_value"),
        ({"id": "a\nb"}, "bad_value"),
        ({"id": "x" * 300}, "bad_value"),
        ({"question": ["q"]}, "wrong_type"),
        ({"question": ""}, "empty_value"),
        ({"question": _DROP}, "missing_field"),
        ({"answer": 42}, "wrong_type"),
        ({"answer": _DROP}, "missing_field"),
        ({"answer": "   "}, "empty_value"),
        ({"answer": "..."}, "bad_answer"),
        ({"answer_type": "free"}, "unknown_answer_type"),
        ({"answer_type": None}, "wrong_type"),
        ({"task_group": "cooking"}, "unknown_task_group"),
        ({"task_group": _DROP}, "missing_field"),
        ({"tolerance": "0.1"}, "wrong_type"),
        ({"tolerance": -0.5}, "bad_tolerance"),
        ({"tolerance": True}, "wrong_type"),
        ({"image": 7}, "wrong_type"),
        ({"image": ""}, "bad_value"),
        ({"meta": []}, "wrong_type"),
        ({"meta": {"difficulty": 2}}, "bad_value"),
        ({"meta": {"difficulty": "hard"}}, "wrong_type"),
        ({"meta": {"subtype": 3}}, "wrong_type"),
        ({"choices": "a,b"}, "wrong_type"),
        ({"choices": ["a", 1]}, "wrong_type"),
        ({"choices": ["only"]}, "bad_choices"),
        ({"choices": ["Cat", "cat."]}, "bad_choices"),
        ({"choices": ["a", ""]}, "bad_choices"),
        ({"answer_type": "multiple_choice", "answer": "dog"}, "missing_choices"),
        ({"answer_type": "multiple_choice", "answer": "emu", "choices": ["cat", "dog"]}, "answer_not_in_choices"),
        ({"answer_type": "multiple_choice", "answer": "C", "choices": ["cat", "dog"]}, "answer_not_in_choices"),
        ({"answer_type": "number", "answer": "about five"}, "bad_answer"),
        ({"answer_type": "number", "answer": "3 4"}, "bad_answer"),
        ({"answer_type": "yes_no", "answer": "maybe"}, "bad_answer"),
    ],
)
def test_field_problems(tmp_path, overrides, kind):
    root = make_set(tmp_path / "s", [record(0, **overrides)])
    problems = validate_set(root)
    assert kind in kinds(problems), problems
    assert all(p.line == 1 for p in problems)
    with pytest.raises(SetError):
        load_set(root)


def test_multiple_choice_letter_answers_without_choices_are_valid(tmp_path):
    root = make_set(tmp_path / "s", [record(0, answer_type="multiple_choice", answer="(B)", question="(A) x (B) y")])
    assert validate_set(root) == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1" + "0" * 400, "-1" + "0" * 400])
def test_non_finite_numbers_are_refused(tmp_path, literal):
    line = json.dumps(record(0, answer_type="number", answer="3")).replace('"answer_type"', f'"tolerance": {literal}, "answer_type"')
    root = make_set(tmp_path / "s", [line])
    assert kinds(validate_set(root)) == ["non_finite"]
    line = json.dumps(record(1)).replace('"image"', f'"meta": {{"score": [{literal}]}}, "image"')
    root = make_set(tmp_path / "t", [line])
    assert kinds(validate_set(root)) == ["non_finite"]


@pytest.mark.parametrize(
    "line, kind",
    [
        ("{not json", "invalid_json"),
        ('{"id": "a",}', "invalid_json"),
        ("[1, 2, 3]", "not_an_object"),
        ('"just a string"', "not_an_object"),
        ("null", "not_an_object"),
        ("[" * 50_000 + "]" * 50_000, "invalid_json"),
        ('{"id": "\\ud800", "task_group": "ocr", "question": "q", "answer": "a", "answer_type": "exact"}', "bad_value"),
        ('{"id": 1' + "0" * 5000 + "}", "invalid_json"),
    ],
)
def test_unparseable_lines_are_reported_and_later_lines_still_checked(tmp_path, line, kind):
    root = make_set(tmp_path / "s", [line, record(1, answer_type="essay")])
    problems = validate_set(root)
    assert kinds(problems) == [kind, "unknown_answer_type"]
    assert [p.line for p in problems] == [1, 2]


def test_invalid_utf8_and_huge_lines(tmp_path):
    good = json.dumps(record(2)).encode()
    huge = b'{"id": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}'
    raw = b'{"id": "\xff\xfe"}\n' + huge + b"\n" + good + b"\n"
    root = make_set(tmp_path / "s", [record(2)], raw_lines=raw)
    problems = validate_set(root)
    assert kinds(problems) == ["encoding", "huge_line"]
    assert [p.line for p in problems] == [1, 2]
    assert "limit" in problems[1].message
    # the valid third line is not lost: once the bad lines go, the set loads
    (root / "manifest.jsonl").write_bytes(good + b"\n")
    assert len(load_set(root)) == 1


def test_huge_line_without_trailing_newline(tmp_path):
    root = make_set(tmp_path / "s", [], raw_lines=b"{" + b" " * (MAX_LINE_BYTES * 2))
    assert kinds(validate_set(root)) == ["huge_line"]


@pytest.mark.parametrize(
    "image",
    ["../outside.png", "images/../../outside.png", "/etc/hostname", "C:\\x.png", "images\\0.png", "a\x00b.png"],
)
def test_image_paths_escaping_the_set_are_refused(tmp_path, image):
    (tmp_path / "outside.png").write_bytes(png_bytes())
    root = make_set(tmp_path / "s", [record(0, image=image)])
    problems = validate_set(root)
    assert kinds(problems) == ["unsafe_path"], problems


def test_symlinks_pointing_outside_are_refused(tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    (tmp_path / "outdir").mkdir()
    (tmp_path / "outdir" / "x.png").write_bytes(png_bytes())
    root = make_set(tmp_path / "s", [record(0, image="link.png"), record(1, image="linkdir/x.png"), record(2, image="loop.png")])
    os.symlink(outside, root / "link.png")
    os.symlink(tmp_path / "outdir", root / "linkdir")
    os.symlink(root / "loop.png", root / "loop.png")
    problems = validate_set(root)
    assert kinds(problems)[:2] == ["unsafe_path", "unsafe_path"]
    assert "outside the set directory" in problems[0].message
    assert kinds(problems)[2] in ("unsafe_path", "missing_image")


def test_special_files_are_not_read(tmp_path):
    root = make_set(tmp_path / "s", [record(0, image="fifo.png"), record(1, image="images")])
    os.mkfifo(root / "fifo.png")  # reading it would block forever
    assert kinds(validate_set(root)) == ["not_a_file", "not_a_file"]


def test_corrupt_truncated_empty_and_unsupported_images(tmp_path):
    good = png_bytes((40, 30))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    images = {
        "images/truncated.png": good[: len(good) // 2],
        "images/flipped.png": bytes(flipped),
        "images/empty.png": b"",
        "images/text.png": b"hello, not an image",
        "images/header_only.png": png_declaring(10, 10),
    }
    bmp = io.BytesIO()
    Image.new("RGB", (4, 4)).save(bmp, format="BMP")
    images["images/pic.bmp"] = bmp.getvalue()
    names = list(images)
    root = make_set(tmp_path / "s", [record(i, image=name) for i, name in enumerate(names)], images=images)
    problems = validate_set(root)
    by_line = {p.line: p.kind for p in problems}
    assert by_line == {
        1: "corrupt_image",
        2: "corrupt_image",
        3: "corrupt_image",
        4: "unsupported_image",
        5: "corrupt_image",
        6: "unsupported_image",
    }


def test_decompression_bombs_are_reported_not_decoded(tmp_path):
    images = {
        "images/declared.png": png_declaring(20000, 20000),  # 400 Mpx: beyond pillow's own hard limit too
        "images/cheap.png": cheap_big_png(7000, 7000),  # a real 49 Mpx image of a few kB
    }
    assert len(images["images/cheap.png"]) < 100_000
    root = make_set(tmp_path / "s", [record(0, image="images/declared.png"), record(1, image="images/cheap.png")], images=images)
    problems = validate_set(root)
    assert kinds(problems) == ["image_too_large", "image_too_large"]
    assert "7000x7000" in problems[1].message and f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx" in problems[1].message


def test_image_within_pixel_limit_loads(tmp_path):
    images = {"images/wide.png": cheap_big_png(6000, 600)}  # 3.6 Mpx
    root = make_set(tmp_path / "s", [record(0, image="images/wide.png")], images=images)
    assert validate_set(root) == []


def test_same_image_shared_by_examples_is_checked_once_and_allowed(tmp_path):
    root = make_set(tmp_path / "s", [record(0, image="images/0.png"), record(1, image="images/0.png", question="Other?")])
    cset = load_set(root)
    assert cset.examples[0].image_sha256 == cset.examples[1].image_sha256


def test_directory_level_problems(tmp_path):
    assert kinds(validate_set(tmp_path / "absent")) == ["not_a_directory"]
    (tmp_path / "file").write_text("x")
    assert kinds(validate_set(tmp_path / "file")) == ["not_a_directory"]
    (tmp_path / "empty").mkdir()
    assert kinds(validate_set(tmp_path / "empty")) == ["missing_manifest"]
    root = make_set(tmp_path / "nothing", [], raw_lines=b"\n\n")
    assert kinds(validate_set(root)) == ["empty_set"]


@pytest.mark.parametrize(
    "content",
    ['["x"]', "{bad", '{"name": 3}', '{"task_groups": "ocr"}', '{"task_groups": [""]}', '{"name": "a\\nb"}'],
)
def test_bad_set_json(tmp_path, content):
    root = make_set(tmp_path / "s", [record(0)], set_json=content)
    problems = validate_set(root)
    assert kinds(problems) == ["bad_set_info"]
    assert problems[0].file.endswith("set.json") and problems[0].line is None


def test_read_image_bytes_detects_changes_after_loading(tmp_path):
    root = make_set(tmp_path / "s", [record(0)])
    example = load_set(root).examples[0]
    (root / "images/0.png").write_bytes(png_bytes(colour=(9, 9, 9)))
    with pytest.raises(SetError, match="changed since the set was loaded"):
        read_image_bytes(example)
    (root / "images/0.png").unlink()
    with pytest.raises(SetError, match="does not exist"):
        read_image_bytes(example)


def test_problem_messages_are_single_lines_even_for_hostile_values(tmp_path):
    root = make_set(
        tmp_path / "s",
        [
            record(0, task_group="a\nb\rc\u202e"),
            record(1, answer_type="x\ny"),
            record(2, image="../\n.png"),
            '{"a\\nb": NaN}',
        ],
    )
    problems = validate_set(root)
    assert len(problems) >= 4
    for problem in problems:
        assert "\n" not in str(problem) and "\r" not in str(problem) and "\u202e" not in str(problem)


# ---- resolving names ---------------------------------------------------------------------------


def test_resolve_builtin_names_paths_and_home_sets(tmp_path):
    from lrcal.calsets import builtin_set_names

    assert builtin_set_names() == ["builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", "builtin-v1-pool"]
    path = resolve_set("builtin-v1")
    assert (path / "manifest.jsonl").is_file() and path.name == "builtin-v1"
    own = make_set(tmp_path / "mine", [record(0)])
    assert resolve_set(str(own)) == own
    assert resolve_set(own / "manifest.jsonl") == own
    home = tmp_path / "home"
    make_set(home / "sets" / "imported-a", [record(0)])
    assert resolve_set("imported-a", home) == home / "sets" / "imported-a"
    with pytest.raises(NotFound) as info:
        resolve_set("nope", home)
    assert "builtin-v1, builtin-v1-quick, builtin-v1-holdout, builtin-v1-pool, imported-a" in str(info.value)
    with pytest.raises(NotFound):
        resolve_set("../builtin-v1", home)


def test_a_key_given_twice_in_a_record_is_a_problem(tmp_path):
    """JSON keeps the last of two equal keys; which id (or answer) was meant is unknown."""
    line = json.dumps(record(0)).replace('"id": ', '"id": "first", "id": ', 1)
    root = make_set(tmp_path / "s", [line])
    assert kinds(validate_set(root)) == ["duplicate_key"]


def test_ids_that_only_spaces_or_unicode_normalisation_tell_apart_are_refused(tmp_path):
    root = make_set(tmp_path / "s", [record(0, id=" ex-0")])
    assert kinds(validate_set(root)) == ["bad_value"]  # a leading space
    composed, decomposed = record(0), record(1)
    composed["id"], decomposed["id"] = "caf\u00e9", "cafe\u0301"
    root = make_set(tmp_path / "t", [composed, decomposed])
    assert kinds(validate_set(root)) == ["duplicate_id"]
