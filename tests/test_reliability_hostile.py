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
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrcal.outcome_table import MAX_CELL_CHARS
from tests.fixtures.sim import TINY_EXAMPLES, write_tiny_set
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
    "cost beyond one call": ("s1,ocr,q,a,,1,1e300,1\n", ["'m1_cost'", "more than one call can have"]),
    "score out of range": ("s1,ocr,q,a,,1,,1.01\n", ["'m2_correct'", "outside [0, 1]"]),
    "score of the wrong type": ("s1,ocr,q,a,,[1],,1\n", ["'m1_correct'", "not a number"]),
    "duplicate ids": ("s1,ocr,q,a,,1,,1\ns2,ocr,q,a,,1,,1\ns1,ocr,q,a,,0,,0\n",
                      ["row 3 (line 4)", "'sample_id'", "duplicate sample id 's1'", "first at row 1"]),
    "empty id": ("s1,ocr,q,a,,1,,1\n ,ocr,q,a,,1,,1\n", ["row 2", "empty sample id"]),
    "missing field": ("s1,ocr,q,a,,1,1\n", ["row 1", "7 fields", "header has 8"]),
    "extra fields": ("s1,ocr,q,a,,1,,1," + ",".join(["x"] * 5000) + "\n", ["row 1", "5008 fields"]),
    "huge cell": (f"s1,ocr,{'x' * (MAX_CELL_CHARS + 1)},a,,1,,1\n", ["row 1 (line 2)", "'question'", "limit"]),
    "unterminated quote": ('s1,ocr,"never closed,a,,1,,1\n', ["line 2", "a quoted cell is never closed"]),
    # the lenient csv reader took every later row into the last cell, the field count still right
    "unterminated quote in the last column": ('s1,ocr,q,a,,1,,"1\ns2,ocr,q,a,,0,,0\n', ["never closed"]),
    "stray quote in a quoted cell": ('s1,ocr,"What is "5" ok",a,,1,,1\n', ["line 2", "must be doubled"]),
    "Python number syntax": ("s1,ocr,q,a,,0_1,,1\n", ["'m1_correct'", "not a number"]),
    "digits of another script": ("s1,ocr,q,a,,\u0661,,1\n", ["'m1_correct'", "not a number"]),
    "zero-width character in an id": ("s1,ocr,q,a,,1,,1\ns1\u200b,ocr,q,a,,0,,0\n",
                                      ["row 2", "'sample_id'", "invisible format characters"]),
    "missing image": ("s1,ocr,q,a,nope.png,1,,1\n", ["row 1", "'image'", "not found"]),
    "image path escaping with ..": ("s1,ocr,q,a,../secret.png,1,,1\n", ["row 1", "'image'", "escapes"]),
    "image URL": ("s1,ocr,q,a,https://example.com/a.png,1,,1\n", ["'image'", "is a URL"]),
    "image list that is not JSON": ('s1,ocr,q,a,"[ok.png",1,,1\n', ["'image'", "not valid JSON"]),
    # a RecursionError traceback before
    "image list nested 5000 deep": (f's1,ocr,q,a,"{"[" * 5000}{"]" * 5000}",1,,1\n', ["'image'", "not valid JSON"]),
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
    _refused(cli, home, [str(tmp_path)], ["is a directory, expected an outcome CSV file"])


LONG_CASES = {
    "nan score": ("sample_id,model_id,score\na,m1,nan\n", ["outcomes.csv", "row 1", "'score'", "not finite"]),
    "inf cost": ("sample_id,model_id,score,cost\na,m1,1,inf\n", ["'cost'", "finite number >= 0"]),
    # past SQLite's integer range: was a traceback (OverflowError)
    "huge token count": ("sample_id,model_id,score,tokens\na,m1,1,1e30\n", ["'tokens'", "more than one call"]),
    "fractional token count": ("sample_id,model_id,score,tokens\na,m1,1,5.5\n", ["'tokens'", "not a whole number"]),
    "latency beyond one call": ("sample_id,model_id,score,latency_ms\na,m1,1,1e300\n", ["more than one call"]),
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


def test_a_column_named_like_the_stores_extra_images_key_is_refused(cli, home, tmp_path, seeded):
    # it was overwritten by a sample's later images, or kept and never shown to the router
    path = _write(tmp_path, "sample_id,extra_image_sha256,m1_correct\ns1,mine,1\n")
    _refused(cli, home, [str(path)], [str(path), "header", "'extra_image_sha256'", "rename"])


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
    odd = "𝔘𝔫𝔦 RTL \u0301 ½ 中文"  # an id, so no invisible format character (that is refused)
    question = "\u202e" + "y" * 200_000
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


# ---- issue 20: names an import creates, set folders, local images ------------------------------

HOSTILE_MODEL_NAMES = {
    "path escape": "../../etc/x",
    "SQL in the name": "a'b; drop table models;--",
    "5,000 characters": "m" * 5000,
    "dot part": "org/./model",
    "leading underscore": "_hidden",
}


@pytest.mark.parametrize("case", list(HOSTILE_MODEL_NAMES))
def test_import_cannot_create_a_model_add_model_refuses(cli, home, tmp_path, seeded, case):
    """`import-outcomes` created models named '../../etc/x' or with SQL in them, which `add-model`
    refuses: one name rule for both."""
    name = HOSTILE_MODEL_NAMES[case]
    refused_by_add_model = cli("add-model", name, "--base-url", "http://127.0.0.1:9/v1", "--no-probe")
    assert refused_by_add_model.exit_code == 2 and "invalid model name" in refused_by_add_model.stderr
    wide = _write(tmp_path, _csv_row(["sample_id", "task", f"{name}_correct"]) + "s1,ocr,1\n", "names.csv")
    line = _refused(cli, home, [str(wide)], [str(wide), "invalid model name"])
    assert len(line) < 400  # a 5,000-character name is not echoed whole
    long_samples = _write(tmp_path, "sample_id,task\ns1,ocr\n", "samples.csv")
    long = _write(tmp_path, _csv_row(["sample_id", "model_id", "score"]) + _csv_row(["s1", name, "1"]), "long.csv")
    _refused(cli, home, [str(long), "--samples", str(long_samples)], [str(long), "invalid model name"])


def _set_with_extras(root: Path) -> Path:
    """A valid 8-example set whose folder also holds things the manifest never names."""
    src = write_tiny_set(root / "incoming")
    os.symlink("/etc/passwd", src / "passwd")
    os.symlink("..", src / "up")
    (src / "notes.txt").write_text("not part of the set\n")
    (src / "images" / "unused.png").write_bytes(png_bytes((3, 3)))
    return src


def _imported_files(home: Path, name: str) -> list[str]:
    target = home / "sets" / name
    assert not [p for p in target.rglob("*") if p.is_symlink()], "the copy holds a symlink"
    return sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())


def test_sets_import_copies_exactly_the_files_the_manifest_names(cli, home, tmp_path):
    """`sets import` copied the whole folder, following symlinks: /etc/passwd came along, `up -> ..`
    copied the parent (other homes included) until RecursionError."""
    src = _set_with_extras(tmp_path)
    result = cli("sets", "import", str(src), "--name", "incoming", "--json")
    assert result.exit_code == 0, result.output
    images = sorted(f"images/{ex['id']}.png" for ex in TINY_EXAMPLES)
    assert _imported_files(home, "incoming") == sorted(["manifest.jsonl", *images])
    assert not list(home.glob("sets/.*")), "a staging folder was left behind"


def test_sets_import_never_reads_devices_or_fifos(cli, home, tmp_path):
    """A symlink to /dev/zero filled the disk; a FIFO gave a traceback. Neither is named by the
    manifest, so neither is opened (this test would hang or fill the disk if one were)."""
    src = _set_with_extras(tmp_path)
    os.symlink("/dev/zero", src / "zero")
    os.mkfifo(src / "pipe")
    os.mkfifo(src / "images" / "pipe.png")
    result = cli("sets", "import", str(src), "--name", "incoming")
    assert result.exit_code == 0, result.output
    assert "pipe" not in " ".join(_imported_files(home, "incoming"))


def test_a_manifest_naming_a_device_or_fifo_is_refused_with_one_line(cli, home, tmp_path):
    for target, needle in (("/dev/zero", "resolves outside the set directory"), ("fifo", "not a regular file")):
        src = write_tiny_set(tmp_path / f"bad-{needle[:3]}", TINY_EXAMPLES[:2])
        image = src / "images" / f"{TINY_EXAMPLES[0]['id']}.png"
        image.unlink()
        if target == "fifo":
            os.mkfifo(image)
        else:
            os.symlink(target, image)
        result = cli("sets", "import", str(src), "--name", "bad")
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and needle in lines[0], result.output
        assert not (home / "sets" / "bad").exists() and not list(home.glob("sets/.*"))


def test_a_stale_partial_import_is_cleaned_up(cli, home, tmp_path):
    stale = home / "sets" / ".incoming.importing"
    stale.mkdir(parents=True)
    (stale / "half.png").write_bytes(b"\x89PNG")
    src = write_tiny_set(tmp_path / "incoming")
    assert cli("sets", "import", str(src)).exit_code == 0
    assert not stale.exists() and (home / "sets" / "incoming" / "manifest.jsonl").is_file()


def test_a_set_too_big_for_the_disk_is_refused_before_copying(tmp_path):
    from PIL import Image

    from tests.test_reliability_home import _namespace_prefix

    prefix = _namespace_prefix()
    if prefix is None:
        pytest.skip("needs a private tmpfs (unshare --mount, or a user namespace)")
    src = write_tiny_set(tmp_path / "big")
    # 3 MiB of noise (PNG cannot compress it): a 4 MiB disk cannot hold the set and the margin
    Image.frombytes("RGB", (1024, 1024), os.urandom(3 << 20)).save(src / "images" / "noise.png")
    with open(src / "manifest.jsonl", "a") as fh:
        fh.write(json.dumps({"id": "noise", "task_group": "ocr", "question": "q?", "answer": "a",
                             "answer_type": "exact", "image": "images/noise.png"}) + "\n")  # fmt: skip
    fs = tmp_path / "fs"
    fs.mkdir()
    script = (f'mount -t tmpfs -o size=4m tmpfs "{fs}" && "{sys.executable}" -m lrcal --home "{fs}/home" '
              f'sets import "{src}"; echo "exit=$?"; ls -a "{fs}/home/sets" 2>/dev/null')  # fmt: skip
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run([*prefix, "bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(repo)})  # fmt: skip
    assert "exit=1" in done.stdout, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not enough disk space" in lines[0], done.stderr
    assert ".big.importing" not in done.stdout and "\nbig\n" not in done.stdout


def test_sets_validate_and_import_agree_on_the_set_name(cli, home, tmp_path):
    """`sets validate` said OK for the name '../../evil', which `sets import` then refused."""
    src = write_tiny_set(tmp_path / "evil")
    (src / "set.json").write_text(json.dumps({"name": "../../evil"}))
    validated = cli("sets", "validate", str(src))
    assert validated.exit_code == 1 and "set name '../../evil' must be" in validated.stdout
    imported = cli("sets", "import", str(src))
    lines = [line for line in imported.stderr.splitlines() if line.strip()]
    assert imported.exit_code == 1 and len(lines) == 1 and "set name '../../evil'" in lines[0]
    named = cli("sets", "import", str(write_tiny_set(tmp_path / "ok")), "--name", "../escape")
    assert named.exit_code == 2 and "set name '../escape'" in named.stderr
    assert not (home / "sets").exists() or not any((home / "sets").iterdir())


def test_sets_import_refuses_an_imported_outcome_logs_name(cli, home, tmp_path):
    """The set took the name and hid the log: `outcomes --set log` showed nothing, and the log's
    next version could not be imported under its name."""
    log = _write(tmp_path, "sample_id,question,a_correct\ns1,q1,1\ns2,q2,0\n", "log.csv")
    assert cli("import-outcomes", str(log)).exit_code == 0
    before = _stored(home)
    result = cli("sets", "import", str(write_tiny_set(tmp_path / "tiny")), "--name", "log")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "already names an imported outcome log" in lines[0]
    assert _stored(home) == before and not (home / "sets" / "log").exists()
    assert len(json.loads(cli("outcomes", "a", "--set", "log", "--json").stdout)) == 2


def test_a_huge_image_sent_to_the_local_model_is_read_scaled_down():
    """A 6000x6000 image sent to `lrcal local serve` cost 1.6 GB of memory: the decoded page is
    capped (12 Mpx), larger ones are read scaled down."""
    from lrcal.local.engine import MAX_READ_PIXELS, decode_image

    page = decode_image(cheap_big_png(6000, 6000))
    assert page.width * page.height <= MAX_READ_PIXELS and page.width == page.height
    assert page.width >= 3000  # scaled, not refused
    small = decode_image(png_bytes((40, 30)))
    assert (small.width, small.height) == (40, 30)
