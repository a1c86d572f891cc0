"""Property tests: hostile manifests, images and answers never crash anything."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrcal.calsets import Problem, SetError, load_set, score_answer, validate_set
from lrcal.calsets.format import ANSWER_TYPES, TASK_GROUPS
from lrcal.calsets.scoring import format_number
from tests.test_calsets_loader import png_bytes

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILE_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12
)
field_values = {
    "id": st.one_of(st.text(max_size=20), json_values),
    "task_group": st.one_of(st.sampled_from(TASK_GROUPS), st.text(max_size=10), json_values),
    "question": st.one_of(st.text(max_size=40), json_values),
    "answer": st.one_of(st.text(max_size=20), st.sampled_from(["yes", "no", "3", "B", "1,234", "(A)"]), json_values),
    "answer_type": st.one_of(st.sampled_from(ANSWER_TYPES), st.text(max_size=10), json_values),
    "choices": st.one_of(st.lists(st.text(max_size=8), max_size=5), json_values),
    "image": st.one_of(
        st.sampled_from(["img.png", "../img.png", "/etc/passwd", "missing.png", "img.png/..", "", ".", "link.png"]),
        st.text(max_size=20),
        json_values,
    ),
    "tolerance": st.one_of(st.floats(allow_nan=True, allow_infinity=True), json_values),
    "meta": st.one_of(st.dictionaries(st.sampled_from(["difficulty", "subtype", "x"]), json_values, max_size=3), json_values),
}
records = st.fixed_dictionaries({}, optional=field_values)
lines = st.one_of(
    records.map(lambda r: json.dumps(r, ensure_ascii=False)),
    records.map(lambda r: json.dumps(r, ensure_ascii=True)),
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
)


def _set_dir(manifest: bytes) -> Path:
    root = Path(tempfile.mkdtemp(prefix="lrcal-prop-"))
    (root / "img.png").write_bytes(png_bytes((3, 2)))
    (root / "link.png").symlink_to("/etc/hostname")
    (root / "manifest.jsonl").write_bytes(manifest)
    return root


def _check(root: Path) -> None:
    try:
        problems = validate_set(root)
        assert all(isinstance(p, Problem) for p in problems)
        for p in problems:
            assert "\n" not in str(p) and "\r" not in str(p)
        try:
            cset = load_set(root)
        except SetError as exc:
            assert problems, "load_set failed although validate_set found nothing"
            assert "\n" not in str(exc) and exc.problems == problems
        else:
            assert not problems and len(cset.examples) >= 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


@FILE_SETTINGS
@given(st.lists(lines, min_size=0, max_size=6))
def test_random_manifest_lines_only_ever_give_problems(manifest_lines):
    _check(_set_dir("\n".join(manifest_lines).encode("utf-8", "surrogatepass")))


@FILE_SETTINGS
@given(st.binary(max_size=400))
def test_random_manifest_bytes_only_ever_give_problems(data):
    _check(_set_dir(data))


@FILE_SETTINGS
@given(st.binary(max_size=300), st.booleans())
def test_random_image_bytes_only_ever_give_problems(data, png_prefix):
    root = _set_dir(b"")
    (root / "img.png").write_bytes((b"\x89PNG\r\n\x1a\n" if png_prefix else b"") + data)
    line = {"id": "a", "task_group": "ocr", "question": "q", "answer": "a", "answer_type": "exact", "image": "img.png"}
    (root / "manifest.jsonl").write_text(json.dumps(line))
    _check(root)


answer_refs = st.one_of(
    st.builds(lambda c: {"answer": c[0], "answer_type": "multiple_choice", "choices": c},
              st.lists(st.text(min_size=1, max_size=8).filter(lambda s: any(ch.isalnum() for ch in s)), min_size=2, max_size=5, unique_by=lambda s: s.casefold().strip())),
    st.builds(lambda a: {"answer": a, "answer_type": "exact"}, st.text(min_size=1, max_size=12).filter(lambda s: any(ch.isalnum() for ch in s))),
    st.builds(lambda a: {"answer": a, "answer_type": "anls"}, st.text(min_size=1, max_size=12).filter(lambda s: any(ch.isalnum() for ch in s))),
    st.just({"answer": "12.5", "answer_type": "number", "tolerance": 0.01}),
    st.sampled_from([{"answer": "yes", "answer_type": "yes_no"}, {"answer": "no", "answer_type": "yes_no"}]),
)  # fmt: skip


@SETTINGS
@given(answer_refs, st.one_of(st.none(), st.text(max_size=200)))
def test_scoring_never_crashes_and_stays_in_range(ref, raw):
    try:
        result = score_answer(ref, raw)
    except ValueError:  # an invalid reference (e.g. duplicate choices after normalization)
        return
    assert 0.0 <= result.score <= 1.0
    assert result.correct == (result.score >= 0.5)


@SETTINGS
@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False).filter(lambda x: abs(x) > 1e-3 or x == 0))
def test_numbers_are_read_back_from_sentences(value):
    reference = format_number(value)
    ref = {"answer": reference, "answer_type": "number", "tolerance": 1e-9}
    for raw in (reference, f"The answer is {reference}.", f"I count {reference}", f"**{reference}**"):
        assert score_answer(ref, raw).correct, raw
    if value >= 1000 and float(value).is_integer():
        assert score_answer(ref, f"{int(value):,}").correct
    assert math.isfinite(float(score_answer(ref, reference).parsed))
