"""Fixes from the calibration-set review: scoring misreadings, fields that do not fit their
answer type, repeated examples, built-in names in `sets generate`, normalized overlap."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lrcal.calsets import load_set, resolve_set, score_answer, validate_set
from lrcal.calsets.format import normalize_question
from lrcal.calsets.overlap import overlap
from lrcal.calsets.scoring import extract_number, find_numbers
from lrcal.cli import app
from lrcal.sim.index import normalize_question as sim_normalize_question
from tests.test_calsets_loader import make_set, record

MC = {"answer": "dog", "answer_type": "multiple_choice", "choices": ["cat", "dog", "cow", "hen"]}


def mc_record(i: int, choices: list[str], answer: str) -> dict:
    return record(i, answer_type="multiple_choice", choices=choices, answer=answer, question="Which one?")


# ---- 1. one-letter choices away from their own letter ------------------------------------


def test_a_one_letter_choice_at_another_letter_is_refused(tmp_path):
    root = make_set(tmp_path / "s", [mc_record(0, ["C", "A", "B", "D"], "A")])
    problems = validate_set(root)
    assert [p.kind for p in problems] == ["bad_choices"]
    assert "choice 'C' is option (A) but reads as the letter of option (C)" in problems[0].message
    assert "\n" not in problems[0].message


@pytest.mark.parametrize(
    "choices",
    [
        ["A", "B", "C", "D"],  # each at its own letter: the letter and the text agree
        ["I", "you", "we"],  # 'I' is no option's letter among three
        ["6", "8", "9", "10"],  # digits are not letters
    ],
)
def test_one_letter_choices_that_cannot_be_misread_are_accepted(tmp_path, choices):
    assert validate_set(make_set(tmp_path / "s", [mc_record(0, choices, choices[1])])) == []


# ---- 2. numbers after a marker, spelled-out compound numbers -------------------------------


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("Answer: 12 × 3 = 36", 36),
        ("The answer is 3 + 4 = 7", 7),
        ("Final answer: 2*5 = 10.", 10),
        ("The answer is 7 - 6 = 1", 1),
        ("**3 + 4 = 7**", 7),  # the bold span is read the same way
        ("The answer is 36", 36),
        ("Answer: x = ?\nso 12", 12),  # nothing after '=': the first number after the marker
        # an '=' in an explanation is not a worked result (a review: these read 4, 4 and 10)
        ("Answer: 12. Each box = 4 items.", 12),
        ("The answer is 12 (3 boxes, 1 box = 4).", 12),
        ("Answer: 7 (where 1 unit = 10 km)", 7),
        ("Answer: 12 x 3 = 36", 36),
    ],
)
def test_a_worked_result_after_a_marker_reads_the_result(reply, expected):
    assert extract_number(reply).value == expected


@pytest.mark.parametrize(
    "text, values",
    [
        ("two hundred", [200]),
        ("twenty-one", [21]),
        ("twenty one", [21]),
        ("one hundred twenty", [120]),
        ("one hundred and five", [105]),
        ("two thousand five hundred", [2500]),
        ("nineteen hundred", [1900]),
        ("a hundred", [100]),
        ("one two three", [1, 2, 3]),  # no word may follow a unit: three numbers
        ("three and four", [3, 4]),  # 'and' joins only after hundred or thousand
        ("twenty thirty", [20, 30]),
        ("zero one", [0, 1]),
        ("There are three circles.", [3]),
    ],
)
def test_spelled_out_numbers_are_combined(text, values):
    assert [n.value for n in find_numbers(text)] == values


def test_spelled_out_compounds_score_as_their_value():
    assert not score_answer({"answer": "100", "answer_type": "number"}, "two hundred").correct
    assert score_answer({"answer": "200", "answer_type": "number"}, "two hundred").correct
    assert score_answer({"answer": "21", "answer_type": "number"}, "twenty-one").correct
    assert score_answer({"answer": "120", "answer_type": "number"}, "one hundred twenty").correct


# ---- 3. naming two options is no answer, by any rule ------------------------------------


@pytest.mark.parametrize(
    "reply",
    ["(B) or (C)", "Answer: B or C", "Either (C) or (B)", "option B or option C", "**B** or **C**", "B/C",
     "The answer is B, C", "(B) cat"],  # fmt: skip
)
def test_a_reply_naming_two_options_is_no_answer(reply):
    score = score_answer(MC, reply)
    assert (score.parsed, score.correct) == (None, False)


@pytest.mark.parametrize(
    "reply", ["B", "(B)", "B. dog", "(B) dog", "Answer: B", "**B**", "**A** is too small; **B** fits.",
              "Answer: B. I think A is wrong"],  # fmt: skip
)
def test_one_option_named_several_ways_still_counts(reply):
    assert score_answer(MC, reply).parsed == "B"


# ---- 4. repeated and contradictory examples ---------------------------------------------


def _same_prompt(i: int, answer: str, question: str = "Is it red?") -> dict:
    return record(i, answer_type="yes_no", answer=answer, question=question, image="images/0.png")


def test_the_same_image_and_question_with_another_answer_is_refused(tmp_path):
    root = make_set(tmp_path / "s", [_same_prompt(0, "yes"), _same_prompt(1, "no"), _same_prompt(2, "Yes")])
    problems = validate_set(root)
    assert [(p.line, p.kind) for p in problems] == [(2, "conflicting_answers"), (3, "duplicate_example")]
    assert "same image and question as line 1 (id 'ex-0') with another answer ('yes' vs 'no')" in problems[0].message


def test_a_repeat_is_found_through_case_and_spacing_of_the_question(tmp_path):
    root = make_set(tmp_path / "s", [_same_prompt(0, "yes"), _same_prompt(1, "yes", question="  is it  RED? ")])
    assert [p.kind for p in validate_set(root)] == ["duplicate_example"]


def test_a_shared_image_with_other_questions_or_options_is_fine(tmp_path):
    records = [
        _same_prompt(0, "yes"),
        _same_prompt(1, "no", question="Is it blue?"),
        mc_record(2, ["red", "blue"], "red") | {"image": "images/0.png"},
        mc_record(3, ["red", "green"], "green") | {"image": "images/0.png"},
    ]
    assert validate_set(make_set(tmp_path / "s", records)) == []


def test_builtin_sets_have_no_repeated_examples():
    for name in ("builtin-v1", "builtin-v1-quick", "builtin-v1-holdout", "builtin-v1-pool"):
        assert validate_set(resolve_set(name)) == [], name


# ---- 5. yes/no: negation, "correct"/"true", both polarities -----------------------------


@pytest.mark.parametrize(
    "reply, parsed",
    [
        ("It is not true.", "no"),
        ("Answer: not true", "no"),
        ("The equation is not correct.", "no"),
        ("It isn't correct", "no"),
        ("The equation is correct.", "yes"),
        ("The statement is true", "yes"),
        ("The claim is incorrect", "no"),
        ("It is true and it is false", None),  # both polarities, no leading answer word
        ("No, yes it is", "no"),  # a leading Yes/No decides (a review: "Yes, it is not incorrect."
        ("Yes, it is not incorrect.", "yes"),  # and "No; yes would be wrong." read no answer)
        ("Yes, the statement is true; it is not false.", "yes"),
        ("No; yes would be wrong.", "no"),
        ("No doubt", "yes"),
        ("Yes, there are no clouds.", "yes"),  # 'no clouds' is not an answer
        ("No, it is not.", "no"),
        ("There is no red square.", "no"),
        ("It is on the right", None),  # 'right' counts only as the first word
        ("The number is negative.", None),
    ],
)
def test_yes_no_reads_negation_and_refuses_both_polarities(reply, parsed):
    assert score_answer({"answer": "yes", "answer_type": "yes_no"}, reply).parsed == parsed


# ---- 6. a percent reference is compared on both scales -----------------------------------


@pytest.mark.parametrize(
    "reference, reply, correct",
    [
        ("50%", "0.5", True),
        ("12.5%", "0.125", True),
        ("50%", "50", True),
        ("50%", "50%", True),
        ("0.5", "50%", True),
        ("50%", "0.6", False),
        ("0.5", "50", False),  # without a percent sign 50 is fifty
    ],
)
def test_percent_references_accept_both_scales(reference, reply, correct):
    assert score_answer({"answer": reference, "answer_type": "number"}, reply).correct is correct


# ---- 7. fields that do not fit the answer type; line breaks in choices -------------------


@pytest.mark.parametrize(
    "overrides, kind, words",
    [
        ({"answer_type": "number", "answer": "3", "choices": ["3", "4"]}, "bad_choices", "only for multiple_choice"),
        ({"answer_type": "yes_no", "answer": "yes", "choices": ["yes", "no"]}, "bad_choices", "only for multiple_choice"),
        ({"answer_type": "yes_no", "answer": "yes", "tolerance": 0.1}, "bad_tolerance", "only for number"),
        ({"answer_type": "exact", "tolerance": 0}, "bad_tolerance", "only for number"),
        ({"answer_type": "multiple_choice", "answer": "cat", "choices": ["cat\n(B) cow", "dog"]}, "bad_choices",
         "line break"),
        ({"answer_type": "multiple_choice", "answer": "cat", "choices": ["cat", "d\u200bog"]}, "bad_choices",
         "invisible format"),
        ({"answer_type": "multiple_choice", "answer": "cat", "choices": ["cat", "dog\u2028"]}, "bad_choices",
         "line break"),
    ],
)
def test_fields_that_do_not_fit_the_answer_type_are_refused(tmp_path, overrides, kind, words):
    root = make_set(tmp_path / "s", [record(0, **overrides), record(1)])
    problems = validate_set(root)
    assert [(p.line, p.kind) for p in problems] == [(1, kind)]
    assert words in problems[0].message and "\n" not in problems[0].message


def test_fitting_fields_are_still_accepted(tmp_path):
    records = [
        record(0, answer_type="number", answer="3", tolerance=0.1),
        record(1, answer_type="multiple_choice", answer="cat", choices=["cat", "dog"]),
        record(2, answer_type="yes_no", answer="no", choices=None, tolerance=None),  # null is absent
    ]
    assert validate_set(make_set(tmp_path / "s", records)) == []


# ---- 8. `sets generate` refuses built-in names up front ----------------------------------


@pytest.mark.parametrize("name", ["builtin-v1", "builtin-v1-holdout"])
def test_generate_refuses_a_builtin_set_name(tmp_path, name):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sets", "generate", str(out), "--name", name, "--seed", "1", "-n", "3"])
    assert result.exit_code == 1
    assert f"'{name}' is a built-in set name; choose another with --name" in result.output
    assert not out.exists()


def test_generate_refuses_a_builtin_name_taken_from_the_directory(tmp_path):
    out = tmp_path / "builtin-v1-quick"
    result = CliRunner().invoke(app, ["sets", "generate", str(out), "-n", "3"])
    assert result.exit_code == 1 and "built-in set name" in result.output
    assert not out.exists()


# ---- 9. overlap compares normalized questions --------------------------------------------


def test_overlap_sees_a_pair_through_case_and_spacing(tmp_path):
    a = make_set(tmp_path / "a", [record(0, id="a-0", question="What colour is the star?")])
    b = make_set(tmp_path / "b", [record(0, id="b-0", question="  what COLOUR is the\tstar? ")])
    found = overlap(load_set(a), load_set(b))
    assert len(found.images) == 1 and len(found.pairs) == 1 and not found.ids


def test_question_normalization_matches_the_simulator():
    for text in ("  What  COLOUR?\t", "ｆｕｌｌ width", "Straße", "a\nb"):
        assert normalize_question(text) == sim_normalize_question(text)
