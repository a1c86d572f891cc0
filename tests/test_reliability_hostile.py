"""Hostile outcome CSVs through the real `lrcal import-outcomes`: each bad file gives a one-line
error naming the file and the row/column (or line), exit code 1, and writes nothing — and what
was stored before stays as it was. (The calibration-set manifest corpus is in
tests/test_calsets_loader.py, tests/test_calsets_properties.py and tests/test_sets_store_cli.py.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrcal.outcome_table import MAX_CELL_CHARS
from tests.test_calsets_loader import cheap_big_png, png_bytes, png_declaring

TABLES = ("calibration_sets", "examples", "models", "runs", "outcomes", "events", "images")
GOOD = "sample_id,task,question,answer,image,m1_correct,m1_cost,m2_correct\n"


def _stored(home: Path) -> dict[str, int]:
    conn = sqlite3.connect(home / "lrcal.db")
    counts = {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in TABLES}
    conn.close()
    image_dir = home / "images"
    counts["image files"] = sum(1 for p in image_dir.rglob("*") if p.is_file()) if image_dir.exists() else 0
    return counts


def _image_dir(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    (images / "ok.png").write_bytes(png_bytes((12, 8)))
    (images / "one.png").write_bytes(png_bytes((1, 1)))
    return images


def _write(tmp_path: Path, body: str | bytes, name: str = "outcomes.csv") -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(body, bytes) else path.write_text)(body)
    return path


def _csv_row(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _refused(cli, home, args: list[str], needles: list[str]) -> str:
    before = _stored(home)
    result = cli("import-outcomes", *args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert result.stdout == ""
    assert _stored(home) == before, "a refused import wrote something"
    return lines[0]


@pytest.fixture
def seeded(cli, home, tmp_path):
    """A home with one good import already stored (so 'nothing lost' is checked too)."""
    images = _image_dir(tmp_path)
    good = _write(tmp_path, GOOD + "a,ocr,What?,A,ok.png,1,0.001,0\nb,chart,Which?,B,one.png,0.5,,1\n", "good.csv")
    result = cli("import-outcomes", str(good), "--images-dir", str(images), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcomes"] == 4
    return images


WIDE_CASES = {
    "nan score": ("s1,ocr,q,a,,nan,,1\n", ["row 1", "'m1_correct'", "not finite"]),
    "inf score": ("s1,ocr,q,a,,1,,inf\n", ["row 1", "'m2_correct'", "not finite"]),
    "-inf score": ("s1,ocr,q,a,,-inf,,1\n", ["'m1_correct'", "not finite"]),
    "overflowing score": ("s1,ocr,q,a,,1e999,,1\n", ["'m1_correct'", "not finite"]),
    "nan cost": ("s1,ocr,q,a,,1,nan,1\n", ["'m1_cost'", "finite number >= 0"]),
    "negative cost": ("s1,ocr,q,a,,1,-0.5,1\n", ["'m1_cost'", ">= 0"]),
    "score out of range": ("s1,ocr,q,a,,1,,1.01\n", ["'m2_correct'", "outside [0, 1]"]),
    "score of the wrong type": ("s1,ocr,q,a,,[1],,1\n", ["'m1_correct'", "not a number"]),
    "duplicate ids": ("s1,ocr,q,a,,1,,1\ns2,ocr,q,a,,1,,1\ns1,ocr,q,a,,0,,0\n",
                      ["row 3 (line 4)", "'sample_id'", "duplicate sample id 's1'", "first at row 1"]),
    "empty id": ("s1,ocr,q,a,,1,,1\n ,ocr,q,a,,1,,1\n", ["row 2", "empty sample id"]),
    "missing field": ("s1,ocr,q,a,,1,1\n", ["row 1", "7 fields", "header has 8"]),
    "extra fields": ("s1,ocr,q,a,,1,,1," + ",".join(["x"] * 5000) + "\n", ["row 1", "5008 fields"]),
    "huge cell": (f"s1,ocr,{'x' * (MAX_CELL_CHARS + 1)},a,,1,,1\n", ["row 1 (line 2)", "'question'", "limit"]),
    "unterminated quote": ('s1,ocr,"never closed,a,,1,,1\n', ["fields"]),
    "missing image": ("s1,ocr,q,a,nope.png,1,,1\n", ["row 1", "'image'", "not found"]),
    "image path escaping with ..": ("s1,ocr,q,a,../secret.png,1,,1\n", ["row 1", "'image'", "escapes"]),
    "image URL": ("s1,ocr,q,a,https://example.com/a.png,1,,1\n", ["'image'", "is a URL"]),
    "image list that is not JSON": ('s1,ocr,q,a,"[ok.png",1,,1\n', ["'image'", "not valid JSON"]),
}


@pytest.mark.parametrize("case", list(WIDE_CASES))
def test_bad_wide_files_are_refused_and_write_nothing(cli, home, tmp_path, seeded, case):
    rows, needles = WIDE_CASES[case]
    (tmp_path / "secret.png").write_bytes(png_bytes())
    path = _write(tmp_path, GOOD + rows)
    _refused(cli, home, [str(path), "--images-dir", str(seeded)], [str(path), *needles])


def test_absolute_paths_and_symlinks_out_of_the_images_directory_are_refused(cli, home, tmp_path, seeded):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes())
    os.symlink(outside, seeded / "link.png")
    os.symlink(tmp_path, seeded / "linkdir")
    for cell in (str(outside), "link.png", "linkdir/outside.png", '["ok.png", "link.png"]'):
        path = _write(tmp_path, GOOD + _csv_row(["s1", "ocr", "q", "a", cell, "1", "", "1"]))
        _refused(cli, home, [str(path), "--images-dir", str(seeded)], ["row 1", "'image'", "escapes"])


IMAGES = {
    "not an image": (b"hello, I am text", "not a PNG, JPEG, WebP or GIF"),
    "empty file": (b"", "not a PNG, JPEG, WebP or GIF"),
    "broken header": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "corrupt"),
    "20000x20000 declared": (png_declaring(20000, 20000), "more than 40,000,000 pixels"),
    "7000x7000 (49 Mpx, real)": (cheap_big_png(7000, 7000), "more than 40,000,000 pixels"),
}


@pytest.mark.parametrize("case", list(IMAGES))
def test_bad_images_are_refused_before_any_image_is_stored(cli, home, tmp_path, seeded, case):
    data, needle = IMAGES[case]
    (seeded / "bad.png").write_bytes(data)
    (seeded / "fresh.png").write_bytes(png_bytes((5, 5), colour=(1, 2, 3)))  # row 1 is fine: not stored either
    path = _write(tmp_path, GOOD + "s1,ocr,q,a,fresh.png,1,,1\ns2,ocr,q,a,bad.png,1,,1\n")
    needles = [str(path), "row 2 (line 3)", "column 'image'", "'bad.png'", needle]
    _refused(cli, home, [str(path), "--images-dir", str(seeded)], needles)


def test_undecodable_bytes_nul_and_empty_files(cli, home, tmp_path, seeded):
    latin = _write(tmp_path, (GOOD + "s1,ocr,q,a,,1,,1\nsé,ocr,q,a,,1,,1\n").encode("latin-1"), "latin.csv")
    _refused(cli, home, [str(latin)], [str(latin), "line 3", "not valid UTF-8"])
    nul = _write(tmp_path, (GOOD + "s1,ocr,q\x00,a,,1,,1\n").encode(), "nul.csv")
    _refused(cli, home, [str(nul)], [str(nul), "line 2", "NUL"])
    _refused(cli, home, [str(_write(tmp_path, "", "empty.csv"))], ["empty file"])
    _refused(cli, home, [str(_write(tmp_path, GOOD, "header.csv"))], ["no data rows"])
    _refused(cli, home, [str(_write(tmp_path, "sample_id,question\ns1,q\n", "nomodel.csv"))], ["'<model>_correct'"])
    _refused(cli, home, [str(tmp_path / "absent.csv")], ["no such file"])
    _refused(cli, home, [str(tmp_path)], ["no such file"])


LONG_CASES = {
    "nan score": ("sample_id,model_id,score\na,m1,nan\n", ["outcomes.csv", "row 1", "'score'", "not finite"]),
    "inf cost": ("sample_id,model_id,score,cost\na,m1,1,inf\n", ["'cost'", "finite number >= 0"]),
    "duplicate pair": ("sample_id,model_id,score\na,m1,1\nb,m1,1\na,m1,0\n", ["row 3", "duplicate outcome"]),
    "unknown sample": ("sample_id,model_id,score\nzz,m1,1\n", ["row 1", "'sample_id'", "not in samples.csv"]),
    "empty model": ("sample_id,model_id,score\na, ,1\n", ["row 1", "'model_id'", "empty model name"]),
}


@pytest.mark.parametrize("case", list(LONG_CASES))
def test_bad_long_files_are_refused_and_write_nothing(cli, home, tmp_path, seeded, case):
    text, needles = LONG_CASES[case]
    samples = _write(tmp_path, "sample_id,task,question,image\na,ocr,q1,ok.png\nb,math,q2,\n", "samples.csv")
    outcomes = _write(tmp_path, text)
    _refused(cli, home, [str(outcomes), "--samples", str(samples), "--images-dir", str(seeded)], needles)


def test_bad_long_samples_file_names_its_own_rows(cli, home, tmp_path, seeded):
    outcomes = _write(tmp_path, "sample_id,model_id,score\na,m1,1\n")
    for samples_text, needles in (
        ("sample_id,task\na,ocr\na,math\n", ["samples.csv", "row 2", "duplicate sample id"]),
        ("sample_id,image\na,../secret.png\n", ["samples.csv", "row 1", "'image'", "escapes"]),
    ):
        samples = _write(tmp_path, samples_text, "samples.csv")
        _refused(cli, home, [str(outcomes), "--samples", str(samples), "--images-dir", str(seeded)], needles)


def test_good_file_with_edge_cases_imports_once(cli, home, tmp_path, seeded):
    """1×1 images, odd unicode, a long (but legal) question, quoted newlines: data, not errors."""
    odd = "𝔘𝔫𝔦 \u202e RTL \u0301 ½ 中文"
    question = "y" * 200_000
    path = _write(tmp_path, GOOD + f'"{odd}",vqa,"{question}","two\nlines",one.png,1,0,\n')
    first = cli("import-outcomes", str(path), "--images-dir", str(seeded), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["outcomes"] == 1
    stored = _stored(home)
    again = cli("import-outcomes", str(path), "--images-dir", str(seeded), "--json")
    assert json.loads(again.stdout)["already_imported"] is True and _stored(home) == stored
    conn = sqlite3.connect(home / "lrcal.db")
    assert conn.execute("select count(*) from examples where example_id = ?", [odd]).fetchone()[0] == 1
    assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"


# ---- property: any CSV either imports or is refused with one line, writing nothing --------------

cells = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "1", "0", "0.5", "nan", "inf", "-1", "1e999", "ok.png", "../x.png", "yes", "s1"]),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.lists(cells, min_size=1, max_size=5), min_size=0, max_size=4), st.booleans())
def test_any_csv_imports_or_is_refused_with_nothing_written(store, tmp_path, seeded, rows, with_image):
    from lrcal.errors import LrcalError
    from lrcal.services.imports import import_outcomes

    header = ["sample_id", "m1_correct", "m2_correct"] + (["image"] if with_image else []) + ["note"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    path = _write(tmp_path, buffer.getvalue(), "fuzz.csv")
    before = _stored(store.home)
    try:
        summary = import_outcomes(store, path, images_dir=seeded)
    except LrcalError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        assert _stored(store.home) == before
    else:
        assert summary["samples"] >= 1 and summary["models"] == ["m1", "m2"]
