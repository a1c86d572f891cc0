"""Inputs that used to leave silently wrong data behind (a review of `import-outcomes`,
calibration sets and removed models): each test fails on the code before the fix.

* the same query stored twice (a log re-imported with other line endings or under another
  name, a corrected version of a log, `builtin-v1` then its subset `builtin-v1-quick`) counted
  twice in training and in the calibrated counts;
* an error column written by pandas or R (`0.0`, `NaN`, `NA`) marked successful calls as errors;
* per-model columns in another case (`B_Correct`, `a_Cost`) or of an unknown kind
  (`a_latency_s`) were dropped, or became query features;
* a removed model took new outcomes and tokens, and `route --models` picked it; a set could take
  a built-in set's name;
* only the first of a sample's images reached the router;
* a changed endpoint reused the previous model's outcomes without a word;
* stored text was read as console markup (a traceback) and its control characters reached the
  terminal; sample ids equal once Unicode-normalised were two samples.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures.flows import register_zoo
from tests.test_calsets_loader import png_bytes

V1 = "sample_id,task,question,a_correct,b_correct\ns0,ocr,q0,0,1\ns1,ocr,q1,1,0\ns2,chart,q2,1,1\n"


def _write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def _training_table(home: Path, models=("a", "b")):
    from lrcal.services.tables import outcome_table
    from lrcal.store import Store

    store = Store.open(home)
    try:
        table, _examples = outcome_table(store, list(models))
        return table
    finally:
        store.close()


def _count(home: Path, sql: str) -> int:
    conn = sqlite3.connect(home / "lrcal.db")
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def test_the_same_log_again_is_one_import_whatever_its_bytes_or_name(cli, home, tmp_path):
    first = _write(tmp_path / "lf" / "v1.csv", V1)
    assert cli("import-outcomes", str(first)).exit_code == 0
    crlf = _write(tmp_path / "crlf" / "v1.csv", V1, newline="\r\n")
    again = cli("import-outcomes", str(crlf), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["already_imported"] is True
    before = _count(home, "select count(*) from outcomes")
    renamed = cli("import-outcomes", str(first), "--name", "other")
    assert renamed.exit_code == 1
    assert "already imported as 'v1'" in renamed.output and len(renamed.output.strip().splitlines()) == 1
    assert _count(home, "select count(*) from outcomes") == before
    assert _training_table(home).n_samples == 3


def test_a_corrected_version_replaces_the_older_outcomes_in_training(cli, home, tmp_path):
    assert cli("import-outcomes", str(_write(tmp_path / "a" / "log.csv", V1))).exit_code == 0
    v2 = V1.replace("s0,ocr,q0,0,1", "s0,ocr,q0,1,1") + "s3,chart,q3,0,0\n"
    result = cli("import-outcomes", str(_write(tmp_path / "b" / "log.csv", v2)), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["replaced_samples"] == 3
    text = cli("import-outcomes", str(_write(tmp_path / "c" / "log.csv", v2 + "s4,ocr,q4,1,1\n")))
    assert "It replaces version" in text.output and "the outcomes of those versions' 4 samples give way to this version's" in text.output
    table = _training_table(home)
    assert sorted(sid.split(":")[1] for sid in table.sample_ids) == ["s0", "s1", "s2", "s3", "s4"]
    s0 = next(i for i, sid in enumerate(table.sample_ids) if sid.endswith(":s0"))
    assert table.scores[s0].tolist() == [1.0, 1.0]  # the corrected score, once


def test_a_corrected_question_or_a_dropped_sample_leaves_training_with_its_version(cli, home, tmp_path):
    """Versions replaced each other by query, and a corrected question is another query: the old
    s1 stayed in training beside the corrected one with the opposite label, a sample the new
    version drops stayed, and the message said 2 samples were replaced. A version now replaces
    what the older ones held for each model it has outcomes for."""
    v1 = "sample_id,task,question,a_correct,b_correct\ns1,t,What colr is it,1,0\ns2,t,q2,0,1\ns3,t,q3,1,1\n"
    v2 = "sample_id,task,question,a_correct,b_correct\ns1,t,What color is it,0,1\ns2,t,q2,,1\n"
    assert cli("import-outcomes", str(_write(tmp_path / "1" / "v1.csv", v1)), "--name", "logs").exit_code == 0
    result = cli("import-outcomes", str(_write(tmp_path / "2" / "v2.csv", v2)), "--name", "logs", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["replaced_samples"], summary["dropped_samples"], len(summary["replaced_versions"])) == (3, 1, 1)
    table = _training_table(home)
    rows = {q: s for q, s in zip(table.questions, table.scores.tolist())}
    assert set(rows) == {"What color is it", "q2"}
    assert rows["What color is it"] == [0.0, 1.0]
    assert rows["q2"][0] != rows["q2"][0] and rows["q2"][1] == 1.0  # a's emptied cell: no outcome now
    # the accuracy that picks the validation report's strongest incumbent reads the same rows
    # (it averaged every stored row: 2 of 4 here)
    from lrcal.services.router_context import RoutingContext
    from lrcal.store import Store

    store = Store.open(home)
    assert RoutingContext(store, "none", router=None).calibration_accuracy("a") == 0.0
    store.close()
    # an older version imported again is the latest once more (it said "nothing to do" while
    # training kept the newer one)
    outcomes = _count(home, "select count(*) from outcomes")
    again = cli("import-outcomes", str(_write(tmp_path / "3" / "v1.csv", v1)), "--name", "logs")
    assert again.exit_code == 0 and "it is the latest again for a, b" in again.output, again.output
    table = _training_table(home)
    assert sorted(table.questions) == ["What colr is it", "q2", "q3"]
    # no copies: newer outcome ids would win over calibration outcomes of the same queries stored since
    assert _count(home, "select count(*) from outcomes") == outcomes
    assert "nothing to do" in cli("import-outcomes", str(tmp_path / "3" / "v1.csv"), "--name", "logs").output
    # back and forth: each version is current after its import, again and again
    for version, questions in ((tmp_path / "2" / "v2.csv", ["What color is it", "q2"]),
                               (tmp_path / "3" / "v1.csv", ["What colr is it", "q2", "q3"])):
        result = cli("import-outcomes", str(version), "--name", "logs")
        assert result.exit_code == 0 and "it is the latest again" in result.output, result.output
        assert sorted(_training_table(home).questions) == questions


def test_a_version_with_an_empty_column_imported_again_is_nothing_to_do(cli, home, tmp_path):
    """A review: a run with no outcomes counted as replaced, so every import again of a version
    whose column b is empty 'restored' b and added another empty run."""
    v1 = "sample_id,task,question,a_correct,b_correct\ns1,t,q1,1,0\ns2,t,q2,0,1\n"
    v2 = "sample_id,task,question,a_correct,b_correct\ns1,t,q1,1,\ns2,t,q2,1,\n"
    assert cli("import-outcomes", str(_write(tmp_path / "1" / "log.csv", v1))).exit_code == 0
    assert cli("import-outcomes", str(_write(tmp_path / "2" / "log.csv", v2))).exit_code == 0
    runs = _count(home, "select count(*) from runs")
    again = cli("import-outcomes", str(tmp_path / "2" / "log.csv"), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["already_imported"] is True, again.output
    assert _count(home, "select count(*) from runs") == runs
    table = _training_table(home)
    assert table.scores[:, 1].tolist() == [0.0, 1.0]  # b keeps v1's outcomes: v2 has none for it


def test_a_model_without_a_column_in_the_new_version_keeps_its_older_outcomes(cli, home, tmp_path):
    assert cli("import-outcomes", str(_write(tmp_path / "1" / "log.csv", V1))).exit_code == 0
    only_a = "sample_id,task,question,a_correct\ns0,ocr,q0,1\n"
    assert cli("import-outcomes", str(_write(tmp_path / "2" / "log.csv", only_a))).exit_code == 0
    table = _training_table(home)
    scores = {q: s for q, s in zip(table.questions, table.scores.tolist())}
    assert scores["q0"] == [1.0, 1.0] and scores["q1"][1] == 0.0 and scores["q1"][0] != scores["q1"][0]


@pytest.mark.parametrize("header, needle", [
    ("m_correct,M_correct", "models 'm' and 'M' differ only in case"),
    ("GPT-4o_correct", "differs only in case from the model 'gpt-4o'"),
    ("lrcal/auto_correct", "routing alias"),
])
def test_a_log_cannot_create_a_case_twin_or_the_routing_alias(cli, home, tmp_path, header, needle):
    assert cli("add-model", "gpt-4o", "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    cells = ",".join("1" for _ in header.split(","))
    result = cli("import-outcomes", str(_write(tmp_path / "log.csv", f"sample_id,task,{header}\ns1,ocr,{cells}\n")))
    assert result.exit_code == 1 and needle in result.output, result.output
    assert _count(home, "select count(*) from models") == 1
    assert _count(home, "select count(*) from outcomes") == 0


def test_a_second_byte_order_mark_and_a_spelled_out_id_header_keep_the_ids(cli, home, tmp_path):
    bom = "\ufeff\ufeffsample_id,task,question,a_correct\nq9,t,hello,1\nq7,t,bye,0\n"
    assert cli("import-outcomes", str(_write(tmp_path / "bom.csv", bom))).exit_code == 0
    spelled = "Sample ID,task,question,b_correct\nz1,t,hi,1\n"
    assert cli("import-outcomes", str(_write(tmp_path / "spelled.csv", spelled))).exit_code == 0
    conn = sqlite3.connect(home / "lrcal.db")
    ids = sorted(r[0] for r in conn.execute("select example_id from examples"))
    conn.close()
    assert ids == ["q7", "q9", "z1"]


def test_csv_output_quotes_a_lone_carriage_return(cli, home, tmp_path):
    import csv
    import io

    body = 'sample_id,task,question,a_correct\ns1,t,"line one\rline two",1\ns2,t,plain,0\n'
    assert cli("import-outcomes", str(_write(tmp_path / "cr.csv", body))).exit_code == 0
    out = cli("outcomes", "--csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout, newline="")))
    assert len(rows) == 2 and any("line one\rline two" in row.values() for row in rows)


def test_samples_of_two_logs_with_only_ids_and_tasks_stay_apart(cli, home, tmp_path):
    """Without a question or an image the same id in two logs may be two queries: the set's name
    tells them apart (a log's own versions still replace each other)."""
    bare = "sample_id,task,a_correct,b_correct\nval_1,Counting,1,0\nval_2,Counting,0,1\n"
    assert cli("import-outcomes", str(_write(tmp_path / "x.csv", bare))).exit_code == 0
    other = bare.replace(",1,0\n", ",0,0\n")
    assert cli("import-outcomes", str(_write(tmp_path / "y.csv", other))).exit_code == 0
    assert _training_table(home).n_samples == 4


@pytest.mark.parametrize("cell, error", [("0.0", False), ("NaN", False), ("NA", False), ("<NA>", False),
                                         ("nan", False), ("0", False), ("1.0", True), ("True", True),
                                         ("timeout after 30 s", True)])
def test_error_cells_that_pandas_or_r_write_for_no_error(cell, error):
    from lrcal.outcome_table.csv_rows import parse_error_flag

    assert parse_error_flag(cell) is error


def test_per_model_columns_in_any_case_and_unknown_ones_are_not_features(cli, home, tmp_path):
    text = ("sample_id,question,a_correct,B_Correct,a_Cost,a_latency_s,note\n"
            "s1,q1,1,0,0.1,2,x\ns2,q2,0,1,0.2,3,x\ns3,q3,1,1,0.1,2,y\n")
    result = cli("import-outcomes", str(_write(tmp_path / "case.csv", text)), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["models"] == ["a", "B"] and summary["ignored_columns"] == ["a_latency_s"]
    table = _training_table(home, ("a", "B"))
    assert all("a_latency_s" not in meta and "a_Cost" not in meta for meta in table.metadata)
    assert all(meta.get("note") in ("x", "y") for meta in table.metadata)
    assert sorted(table.cost_usd[:, 0].tolist()) == [0.1, 0.1, 0.2]
    shown = cli("import-outcomes", str(_write(tmp_path / "case2.csv", text + "s4,q4,0,0,0.1,2,x\n")))
    assert "left out 1 column(s) not read as outcomes" in shown.output and "a_latency_s" in shown.output


def test_long_format_names_the_columns_it_does_not_read(cli, home, tmp_path):
    # both files' unused columns were dropped without a word: model c's outcomes in the samples
    # CSV, and a 'latency' / 'cost_cents' / 'prediction' that are not aliases the reader knows
    samples = _write(tmp_path / "s.csv", "sample_id,question,c_correct\ns1,q1,1\ns2,q2,0\n")
    outcomes = _write(tmp_path / "l.csv", "sample_id,model,score,latency,cost_cents,prediction\n"
                                          "s1,a,1,1200,5,foo\ns2,a,0,900,7,bar\n")
    shown = cli("import-outcomes", str(outcomes), "--samples", str(samples))
    assert shown.exit_code == 0, shown.output
    assert "left out 4 column(s) not read as outcomes" in shown.output and "cost_cents (l.csv)" in shown.output
    result = cli("import-outcomes", str(outcomes), "--samples", str(samples), "--json")  # already imported
    summary = json.loads(result.stdout)
    assert summary["models"] == ["a"]
    assert summary["ignored_columns"] == ["c_correct (s.csv)", "latency (l.csv)", "cost_cents (l.csv)",
                                          "prediction (l.csv)"]
    assert all("c_correct" not in meta for meta in _training_table(home, ("a",)).metadata)


def test_a_removed_model_takes_no_new_outcomes_and_no_new_token(cli, home, tmp_path):
    assert cli("import-outcomes", str(_write(tmp_path / "v1.csv", V1))).exit_code == 0
    assert cli("models", "remove", "a", "--yes").exit_code == 0
    before = _count(home, "select count(*) from outcomes")
    result = cli("import-outcomes", str(_write(tmp_path / "more.csv", V1.replace("q", "Q"))))
    assert result.exit_code == 1 and "were removed" in result.output
    assert _count(home, "select count(*) from outcomes") == before
    refit = cli("calibrate", "a", "--refit")
    assert refit.exit_code != 0 and "removed" in refit.output
    assert _count(home, "select count(*) from model_tokens") == 0


@pytest.mark.parametrize("name", ["builtin-v1-holdout", "   ", "x\x1b[2Jy", "two\nlines"])
def test_an_outcome_log_cannot_take_a_set_name_that_hides_or_garbles(cli, home, tmp_path, name):
    result = cli("import-outcomes", str(_write(tmp_path / "v1.csv", V1)), "--name", name)
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
    assert _count(home, "select count(*) from calibration_sets") == 0


def test_a_calibration_set_named_like_a_builtin_one_is_refused(cli, home, tmp_path):
    from lrcal.calsets.generator import generate_set

    fake = tmp_path / "fake"
    generate_set(fake, "builtin-v1-holdout", 12, 0)  # (`sets generate` refuses a built-in name up front)
    assert cli("add-model", "m", "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    result = cli("calibrate", "m", "--set", str(fake))
    assert result.exit_code == 1 and "a built-in set's name" in result.output
    assert _count(home, "select count(*) from calibration_sets") == 0


def test_all_of_a_samples_images_reach_the_router(cli, home, tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    (images / "p.png").write_bytes(png_bytes((8, 8)))
    (images / "q.png").write_bytes(png_bytes((9, 7)))
    text = ('sample_id,question,image_paths,a_correct,b_correct\n'
            's1,q1,"[""p.png"", ""q.png""]",1,0\ns2,q2,p.png,0,1\n')
    result = cli("import-outcomes", str(_write(tmp_path / "multi.csv", text)), "--images-dir", str(images))
    assert result.exit_code == 0, result.output
    table = _training_table(home)
    by_id = {sid.split(":")[1]: imgs for sid, imgs in zip(table.sample_ids, table.images)}
    assert len(by_id["s1"]) == 2 and len(by_id["s2"]) == 1
    assert all(Path(p).is_file() and str(home) in p for imgs in by_id.values() for p in imgs)  # copies in the home


def test_an_imported_registered_model_is_said_to_stay_out_of_training(cli, home, tmp_path):
    assert cli("add-model", "a", "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    result = cli("import-outcomes", str(_write(tmp_path / "v1.csv", V1)))
    assert result.exit_code == 0 and "warning: a registered with an endpoint and not calibrated yet" in result.output


def test_a_subset_set_calibrated_after_its_parent_counts_each_query_once(cli, home, zoo_server):
    """`builtin-v1-quick` holds 64 of `builtin-v1`'s examples (same ids, same images)."""
    model = "sim-docreader-m"
    register_zoo(cli, zoo_server, names={model})
    assert cli("calibrate", model, "--limit", "32", "--no-fit").exit_code == 0
    assert cli("calibrate", model, "--set", "builtin-v1-quick", "--limit", "32", "--no-fit").exit_code == 0
    assert _count(home, "select count(*) from outcomes") == 64  # both runs are kept, for audit
    mine = next(m for m in json.loads(cli("models", "--json").stdout) if m["name"] == model)
    assert mine["calibrated_examples"] == 32
    from lrcal.services.onboarding import calibration_rows
    from lrcal.store import Store

    store = Store.open(home)
    try:
        assert len(calibration_rows(store, store.get_model(model))) == 32
    finally:
        store.close()


def test_a_changed_endpoint_is_said_to_leave_outcomes_of_the_previous_one(cli, home, zoo_server):
    """`models set --api-model` then `calibrate` reported the previous model's accuracy as if
    measured now: the change now warns, and a resumed run says what it reused."""
    model = "sim-docreader-m"
    register_zoo(cli, zoo_server, names={model})
    assert cli("calibrate", model, "--limit", "12", "--no-fit").exit_code == 0
    changed = cli("models", "set", model, "--api-model", "sim-lite-s")
    assert changed.exit_code == 0
    assert "12 stored calibration/validation outcomes" in changed.output and "--fresh" in changed.output
    prices = cli("models", "set", model, "--price-in", "0.5")
    assert "previous endpoint" not in prices.output  # a price says nothing about who answers
    again = cli("calibrate", model, "--limit", "12", "--no-fit")
    assert again.exit_code == 0 and "0 examples asked now, the other outcomes reused" in again.output


def test_stored_text_is_shown_as_it_is_in_tables(cli, home, tmp_path):
    """A question holding `[/x]` stopped `lrcal outcomes` with a rich MarkupError traceback, and
    an ESC sequence in a sample id reached the terminal."""
    text = 'sample_id,question,a_correct,b_correct\n"s[/red]1","what [/x] is [bold]this",1,0\ns2,"q\x1b[2J2",0,1\n'
    assert cli("import-outcomes", str(_write(tmp_path / "m.csv", text))).exit_code == 0
    shown = cli("outcomes", "a")
    assert shown.exit_code == 0, shown.output
    assert "what [/x] is [bold]this" in shown.output and "\x1b" not in shown.output
    assert "q\\x1b" in shown.output  # escaped, visible
    # an id with a control character is refused at import, as a calibration set's is
    refused = cli("import-outcomes", str(_write(tmp_path / "esc.csv", 'sample_id,a_correct\n"s\x1b[2J2",1\n')))
    assert refused.exit_code == 1 and "control or invisible format characters" in refused.output


def test_sample_ids_that_only_unicode_normalisation_tells_apart_are_one(cli, home, tmp_path):
    text = "sample_id,a_correct,b_correct\n\u00e9,1,0\ne\u0301,0,1\n"
    result = cli("import-outcomes", str(_write(tmp_path / "nfc.csv", text)))
    assert result.exit_code == 1 and "duplicate sample id" in result.output
    assert _count(home, "select count(*) from calibration_sets") == 0


def test_route_refuses_a_removed_model(tui_home_copy):
    from typer.testing import CliRunner

    from lrcal.cli import app

    def run(*args):
        return CliRunner().invoke(app, ["--home", str(tui_home_copy), *args], catch_exceptions=False)

    assert run("models", "remove", "sim-legacy-xl", "--yes").exit_code == 0
    result = run("route", "-q", "what is this?", "--models", "sim-legacy-xl,sim-lite-s")
    assert result.exit_code == 1 and "sim-legacy-xl: removed" in result.output
    assert run("route", "-q", "what is this?", "--models", "sim-lite-s,sim-chartqa-m").exit_code == 0


def test_models_left_out_of_training_are_named(cli, home, tmp_path):
    """A model with too few outcomes to train on, imported (no endpoint to onboard), was dropped
    by `router train` without a word; `route` then said it had no token. An all-empty column
    imported silently as a model with no outcome."""
    rows = ["sample_id,task,question,a_correct,b_correct,c_correct,d_correct"]
    rows += [f"s{i},t{i % 3},q {i % 7},{'1' if i < 30 else ''},{i % 2},{(i // 2) % 2}," for i in range(300)]
    imported = cli("import-outcomes", str(_write(tmp_path / "sparse.csv", "\n".join(rows) + "\n")))
    assert "warning: no outcome at all (every cell empty) for d" in imported.output
    trained = cli("router", "train", "--ensemble", "1")
    assert trained.exit_code == 0, trained.output
    assert "Not trained on, no token: a (30 outcomes against 300 for the most" in trained.output


def test_a_log_of_the_same_queries_under_another_name_says_so(cli, home, tmp_path):
    """Outcomes of the same queries under another name replaced the first log's in training
    (the latest outcome per query) without a word."""
    assert cli("import-outcomes", str(_write(tmp_path / "base.csv", V1))).exit_code == 0
    flipped = V1.replace(",0,1\n", ",9,9\n").replace(",1,0\n", ",0,1\n").replace(",9,9\n", ",1,0\n")
    result = cli("import-outcomes", str(_write(tmp_path / "flip.csv", flipped)))
    assert result.exit_code == 0, result.output
    assert "3 of its samples are the same queries as in set 'base'" in result.output
