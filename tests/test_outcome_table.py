"""`lrcal.outcome_table`: wide / long outcome CSV parsing (the happy paths, the real files, one-line
errors) and the table itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrcal.errors import LrcalError
from lrcal.outcome_table import OutcomeTable, read_long_csv, read_outcome_table, read_wide_csv
from tests.conftest import SHARED_DATA


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def test_wide_basic_with_optional_columns(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    csv = write(
        tmp_path / "o.csv",
        "sample_id,task,question,answer,image,source,m1_correct,m1_cost,m1_tokens,m1_latency_ms,m1_prediction,m2_correct\n"
        "s1,ocr,What?,A,a.png,web,1,0.001,12,300,A,0\n"
        "s2,,Why?,B,,,0.5,,,,,\n",
    )
    table = read_wide_csv(csv, images_dir=tmp_path / "img")
    assert table.models == ["m1", "m2"]
    assert table.sample_ids == ["s1", "s2"]
    assert table.tasks == ["ocr", None]
    assert table.questions == ["What?", "Why?"]
    assert table.answers == ["A", "B"]
    assert table.images[0] == [str((tmp_path / "img" / "a.png").resolve())] and table.images[1] == []
    assert table.metadata == [{"source": "web"}, {}]
    assert table.scores[0].tolist() == [1.0, 0.0]
    assert table.scores[1, 0] == 0.5 and np.isnan(table.scores[1, 1])
    assert table.cost_usd[0, 0] == pytest.approx(0.001) and np.isnan(table.cost_usd[0, 1])
    assert table.output_tokens[0, 0] == 12 and table.latency_ms[0, 0] == 300
    assert table.predictions == {"m1": ["A", None]}
    assert table.name == "o"


def test_mmr_bench_dataset_idx_gives_the_task(tmp_path):
    csv = write(tmp_path / "mmr.csv",
                "dataset_idx,question,answer,A_correct,A_cost,A_token\n"
                "OCRBench_12,q,a,1,0.1,5\nSEEDBench2_Plus_3,q,a,0,0.2,7\nMathVista_1,q,a,1,,\n")
    table = read_wide_csv(csv)
    assert table.tasks == ["OCRBench", "SEEDBench2_Plus", "MathVista"]
    assert table.output_tokens[:, 0].tolist()[:2] == [5, 7]


def test_task_aliases_and_json_image_lists(tmp_path):
    for name in ("x.png", "y.png"):
        (tmp_path / name).write_bytes(b"x")
    csv = write(tmp_path / "o.csv", 'pid,dataset,image_paths,m_correct\n1,d1,"[""x.png"", ""y.png""]",1\n')
    table = read_wide_csv(csv)
    assert table.tasks == ["d1"] and len(table.images[0]) == 2


def test_real_files_parse():
    if not (SHARED_DATA / "blink_val_outcomes.csv").exists():
        pytest.skip(f"the shared outcome logs are not next to this checkout ({SHARED_DATA})")
    blink = read_wide_csv(SHARED_DATA / "blink_val_outcomes.csv")
    assert (blink.n_samples, blink.n_models) == (1901, 19)
    assert len(set(blink.tasks)) == 14 and blink.questions[0] is None
    vista = read_wide_csv(SHARED_DATA / "mathvista_testmini_outcomes.csv")
    assert (vista.n_samples, vista.n_models) == (1000, 23)
    assert {"question_type", "answer_type", "source", "category", "context", "grade"} <= set(vista.metadata[0])
    assert "answer" not in vista.metadata[0]


@pytest.mark.parametrize(
    "text, needles",
    [
        ("sample_id,question\ns1,q\n", ["no '<model>_correct' column"]),
        ("sample_id,m_correct\ns1,1\ns1,0\n", ["row 2", "duplicate sample id", "first at row 1", "'sample_id'"]),
        ("sample_id,m_correct\ns1,1.5\n", ["row 1", "'m_correct'", "outside [0, 1]"]),
        ("sample_id,m_correct\ns1,-0.1\n", ["'m_correct'", "outside [0, 1]"]),
        ("sample_id,m_correct\ns1,nan\n", ["'m_correct'", "not finite"]),
        ("sample_id,m_correct\ns1,inf\n", ["'m_correct'", "not finite"]),
        ("sample_id,m_correct\ns1,yes please\n", ["'m_correct'", "not a number"]),
        ("sample_id,m_correct,m_cost\ns1,1,-3\n", ["'m_cost'", ">= 0"]),
        ("sample_id,m_correct\ns1,1,2\n", ["row 1", "3 fields"]),
        ("sample_id,m_correct,m_correct\ns1,1,1\n", ["appears twice"]),
        ("", ["empty file"]),
        ("sample_id,m_correct\n", ["no data rows"]),
        ("sample_id,m_correct\n,1\n", ["empty sample id"]),
    ],
)
def test_malformed_wide_files_give_one_line_errors(tmp_path, text, needles):
    csv = write(tmp_path / "bad.csv", text)
    with pytest.raises(LrcalError) as excinfo:
        read_wide_csv(csv)
    message = one_line_error(excinfo)
    assert str(csv) in message
    for needle in needles:
        assert needle in message, message


def test_row_and_line_numbers_count_multiline_fields(tmp_path):
    csv = write(tmp_path / "o.csv", 'sample_id,question,m_correct\ns1,"two\nlines",1\ns2,q,7\n')
    with pytest.raises(LrcalError) as excinfo:
        read_wide_csv(csv)
    assert "row 2 (line 4)" in one_line_error(excinfo)


def test_image_errors(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    cases = {
        "missing.png": "not found",
        "../secret.png": "escapes the images directory",
        str(tmp_path / "secret.png"): "escapes the images directory",
        "http://example.com/a.png": "is a URL",
        "[1, 2]": "JSON list of paths",
        "[broken": "not valid JSON",
    }
    for cell, needle in cases.items():
        csv = write(tmp_path / "o.csv", f"sample_id,image,m_correct\ns1,{json.dumps(cell)},1\n")
        with pytest.raises(LrcalError) as excinfo:
            read_wide_csv(csv, images_dir=images)
        message = one_line_error(excinfo)
        assert needle in message and "'image'" in message and "row 1" in message, message
    with pytest.raises(LrcalError, match="images directory does not exist"):
        read_wide_csv(write(tmp_path / "ok.csv", "sample_id,m_correct\ns1,1\n"), images_dir=tmp_path / "nope")


def test_not_utf8_and_nul_bytes(tmp_path):
    bad = tmp_path / "latin.csv"
    bad.write_bytes("sample_id,m_correct\né,1\n".encode("latin-1"))
    with pytest.raises(LrcalError) as excinfo:
        read_wide_csv(bad)
    assert "line 2" in one_line_error(excinfo) and "UTF-8" in str(excinfo.value)
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"sample_id,m_correct\ns\x001,1\n")
    with pytest.raises(LrcalError, match="NUL"):
        read_wide_csv(nul)
    with pytest.raises(LrcalError, match="no such file"):
        read_wide_csv(tmp_path / "absent.csv")


def test_huge_fields_and_odd_unicode_are_data(tmp_path):
    huge = "x" * 300_000
    odd = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 RTL \u0301 ½ 中文"
    csv = write(tmp_path / "o.csv", f'\ufeffsample_id,question,m_correct\n"{odd}","\u202e{huge}\ufeff",1\n')
    table = read_wide_csv(csv)
    assert table.sample_ids == [odd] and len(table.questions[0]) == 300_002


@pytest.mark.parametrize("invisible", ["\u200b", "\u202e", "\ufeff", "\x1b", "\u00ad"])
def test_sample_ids_with_invisible_or_control_characters_are_refused(tmp_path, invisible):
    # "s1" and "s1" + a zero-width space were two samples that every listing shows alike
    csv = write(tmp_path / "o.csv", f'sample_id,m_correct\ns1,1\n"s1{invisible}",0\n')
    with pytest.raises(LrcalError, match=r"row 2 .*'sample_id'.*control or invisible format characters"):
        read_wide_csv(csv)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_cells_never_crash(tmp_path_factory, cell):
    path = tmp_path_factory.mktemp("fuzz") / "o.csv"
    import csv as csv_module

    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv_module.writer(fh)
        writer.writerow(["sample_id", "question", "m_correct"])
        writer.writerow(["s1", cell, cell])
    try:
        table = read_wide_csv(path)
    except LrcalError as exc:
        assert "\n" not in str(exc)
    else:
        assert table.n_samples == 1


def test_long_format(tmp_path):
    samples = write(tmp_path / "samples.csv", "sample_id,task,question,answer\na,ocr,q1,x\nb,math,q2,y\n")
    outcomes = write(tmp_path / "outcomes.csv",
                     "sample_id,model_id,score,cost,tokens,latency_ms\na,m1,1,0.1,10,200\nb,m1,0,0.2,20,300\na,m2,0.5,,,\n")
    table = read_long_csv(outcomes, samples)
    assert table.models == ["m1", "m2"] and table.tasks == ["ocr", "math"]
    assert table.scores[0].tolist() == [1.0, 0.5] and table.scores[1, 0] == 0.0 and np.isnan(table.scores[1, 1])
    assert table.cost_usd[1, 0] == pytest.approx(0.2) and table.latency_ms[0, 0] == 200


def test_read_outcome_table_reads_the_long_format_only_with_a_samples_file(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    checked: list[Path] = []
    wide = write(tmp_path / "wide.csv", "sample_id,image,m1_correct\na,a.png,1\nb,,0\n")
    table = read_outcome_table(wide, images_dir=tmp_path / "img", name="w", image_check=checked.append)
    assert (table.name, table.models, table.scores[:, 0].tolist()) == ("w", ["m1"], [1.0, 0.0])
    assert checked == [(tmp_path / "img" / "a.png").resolve()]
    samples = write(tmp_path / "samples.csv", "sample_id,image\na,a.png\nb,\n")
    outcomes = write(tmp_path / "outcomes.csv", "sample_id,model_id,score\nb,m2,1\n")
    table = read_outcome_table(outcomes, samples, images_dir=tmp_path / "img", image_check=checked.append)
    assert (table.name, table.sample_ids, table.models) == ("outcomes", ["a", "b"], ["m2"])
    assert np.isnan(table.scores[0, 0]) and table.scores[1, 0] == 1.0 and len(checked) == 2
    with pytest.raises(LrcalError) as excinfo:  # a long outcomes file read as wide has no <model>_correct
        read_outcome_table(outcomes)
    assert "'<model>_correct'" in one_line_error(excinfo)


@pytest.mark.parametrize(
    "outcomes_text, needle",
    [
        ("sample_id,model_id,score\nzzz,m1,1\n", "not in samples.csv"),
        ("sample_id,model_id,score\na,m1,1\na,m1,0\n", "duplicate outcome"),
        ("sample_id,model_id,score\na,m1,2\n", "outside [0, 1]"),
        ("sample_id,model_id\na,m1\n", "no score column"),
        ("sample_id,model_id,score\n", "no outcome rows"),
    ],
)
def test_long_format_errors(tmp_path, outcomes_text, needle):
    samples = write(tmp_path / "samples.csv", "sample_id,task\na,ocr\n")
    outcomes = write(tmp_path / "outcomes.csv", outcomes_text)
    with pytest.raises(LrcalError) as excinfo:
        read_long_csv(outcomes, samples)
    assert needle in one_line_error(excinfo)


def test_table_selection_and_hash():
    table = OutcomeTable(
        name="t", sample_ids=["a", "b", "c"], tasks=["x", "y", None], questions=["q1", None, "q3"],
        answers=["1", "2", "3"], images=[[], [], []], metadata=[{}, {}, {}], models=["m1", "m2"],
        scores=np.array([[1, 0], [0, 1], [np.nan, 1]], dtype=float),
    )
    sub = table.select_rows([2, 0]).select_models(["m2"])
    assert sub.sample_ids == ["c", "a"] and sub.scores[:, 0].tolist() == [1.0, 0.0]
    assert table.content_hash() == table.select_rows([0, 1, 2]).content_hash()
    changed = table.select_rows([0, 1, 2])
    changed.scores[0, 0] = 0.0
    assert changed.content_hash() != table.content_hash()
    with pytest.raises(LrcalError, match="unknown model"):
        table.select_models(["nope"])


def test_an_error_column_saying_ok_is_not_an_error():
    """`OK` in a long-format error column counted the call as failed (it left the training table)."""
    from lrcal.outcome_table.csv_rows import parse_error_flag

    for cell in ("", " ", "0", "false", "No", "none", "null", "OK", "success", "n/a", "-"):
        assert not parse_error_flag(cell), cell
    for cell in ("1", "true", "timeout", "HTTP 500: upstream", "error"):
        assert parse_error_flag(cell), cell
