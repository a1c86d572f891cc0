"""The local OCR model's answerer on hand-made OCR readings (no engine needed): question
parsing, key lookups by geometry, tables, receipts, yes/no, multiple choice, refusals.

Also: the CLI's one-line error when the ``ocr`` extra is missing (a real subprocess with
the import blocked) -- these run everywhere, with or without the extra.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from lrcal.calsets import build_prompt, score_answer
from lrcal.local.answerer import DECLINE, NO_TEXT, Reading, answer_prompt, colour_distance, intent, reply
from lrcal.local.layout import Layout, TextBox
from lrcal.local.question import COLOURS, content_words, key_phrases, parse_prompt, probe_phrase
from lrcal.local.textmatch import find, similarity
from tests.conftest import REPO_ROOT


def box(text: str, x: float, y: float, w: float | None = None, h: float = 16, conf: float = 0.95) -> TextBox:
    w = w if w is not None else 8.5 * len(text)
    return TextBox(text, conf, ((x, y), (x + w, y), (x + w, y + h), (x, y + h)))


def rotated(boxes: list[TextBox], degrees: float, cx: float = 200, cy: float = 200) -> list[TextBox]:
    a = math.radians(degrees)

    def turn(p):
        x, y = p[0] - cx, p[1] - cy
        return (cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a))

    return [TextBox(b.text, b.confidence, tuple(turn(p) for p in b.quad)) for b in boxes]


def reading(boxes: list[TextBox], width: float = 400, height: float = 400, **kw) -> Reading:
    return Reading(Layout.from_boxes(boxes, width, height), **kw)


def ask(example: dict, boxes: list[TextBox], **kw) -> str:
    return answer_prompt(build_prompt(example), reading(boxes, **kw))


def correct(example: dict, answer: str) -> bool:
    return score_answer(example, answer).correct


def assert_answers(boxes: list[TextBox], answer_type: str, cases: list[tuple[str, str]], **kw) -> None:
    """Every (question, reference answer) of ``cases`` answered correctly from ``boxes``."""
    for question, answer in cases:
        example = {"question": question, "answer_type": answer_type, "answer": answer}
        assert correct(example, ask(example, boxes, **kw)), question


TABLE = [
    box("City", 20, 50), box("Population", 95, 50), box("Area", 180, 50), box("Founded", 225, 50),
    box("Lima", 20, 75), box("1,311,000", 95, 75), box("171", 180, 75), box("1227", 225, 75),
    box("Tartu", 20, 97), box("936,000", 95, 97), box("465", 180, 97), box("1503", 225, 97),
    box("Leeds", 20, 119), box("1,931,000", 95, 119), box("664", 180, 119), box("168", 225, 119),
]  # fmt: skip


# ---- prompts -----------------------------------------------------------------------------


def test_parse_prompt_reads_build_prompt_output():
    mc = parse_prompt(build_prompt({"question": "Which word is shown?", "answer_type": "multiple_choice",
                                    "choices": ["cat", "dog", "emu"]}))  # fmt: skip
    assert (mc.question, mc.options, mc.wants) == ("Which word is shown?", ["cat", "dog", "emu"], "choice")
    assert parse_prompt(build_prompt({"question": "What is the total?", "answer_type": "number"})).wants == "number"
    assert parse_prompt(build_prompt({"question": "Is it stamped PAID?", "answer_type": "yes_no"})).wants == "yes_no"
    # "single word, number or short phrase" is not a request for a number
    assert parse_prompt(build_prompt({"question": "Read the code.", "answer_type": "exact"})).wants == "text"
    # plain prompts from any client
    assert parse_prompt("Does the word 'otter' appear in the image?").wants == "yes_no"
    assert parse_prompt("How much did the milk cost?").wants == "number"


def test_key_phrases_quoted_first_without_stop_words():
    assert key_phrases("What is the 'Customer ID' entry on this invoice?") == ["Customer ID"]
    assert key_phrases("In the table, what is listed under Area for Bologna?")[:2] == ["Area", "Bologna"]
    assert "Due date" in key_phrases("According to the document, what is written next to Due date?")
    assert content_words("Transcribe the biggest word in this picture.") == []
    assert probe_phrase(parse_prompt("Does this page carry an OVERDUE stamp?")) == "OVERDUE"
    assert probe_phrase(parse_prompt("Can you find the word otter in the list shown?")) == "otter"


def test_fuzzy_find_tolerates_ocr_errors_and_reports_spans():
    match = find("Customer ID", "CustomerID: C7435")
    assert match is not None and match.cost == 0 and "CustomerID: C7435"[match.end :] == ": C7435"
    assert find("reference", "Referencc. GEGMUY").cost <= 1  # one misread letter
    assert similarity("North Star", "NorthStar") == 1.0  # spaces dropped by the recogniser


# ---- what it refuses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, answer_type, choices",
    [
        ("Is the orange triangle left of, right of, above or below the black triangle?", "multiple_choice",
         ["left of", "right of", "above", "below"]),
        ("How many hexagons are in the image?", "number", None),
        ("What colour is the star?", "exact", None),
        ("Does the picture contain a blue diamond?", "yes_no", None),
        ("Which category has the highest value?", "multiple_choice", ["Apples", "Pears", "Plums"]),
        ("What is the difference between Eagles and Hawks?", "number", None),
        ("What value of x satisfies the equation in the image?", "number", None),
        ("What number comes next in the sequence?", "number", None),
        ("Is the equation in the image correct?", "yes_no", None),
    ],
)  # fmt: skip
def test_declines_questions_a_text_reader_cannot_answer(question, answer_type, choices):
    example = {"question": question, "answer_type": answer_type, "choices": choices}
    query = parse_prompt(build_prompt(example))
    assert intent(query) is None
    # even when the image holds text that names the options
    assert ask(example, [box("Apples", 20, 20), box("Pears", 120, 20), box("7", 20, 60)]) == DECLINE


def test_no_text_found_is_said_and_not_settled():
    result = reply(parse_prompt("What word is written in the image?"), reading([]))
    assert result.text == NO_TEXT and not result.settled


# ---- reading -----------------------------------------------------------------------------


def test_reads_the_most_prominent_text_not_the_distractors():
    boxes = [box("chess", 30, 20, h=12), box("BEACON", 120, 150, h=48), box("ribbon", 300, 360, h=12)]
    example = {"question": "Which word appears in large letters?", "answer_type": "exact", "answer": "BEACON"}
    assert correct(example, ask(example, boxes))
    number = {"question": "What number is shown in the image?", "answer_type": "number", "answer": "661069.88"}
    assert correct(number, ask(number, [box("Total: 661,069.88", 40, 150, h=40)]))


def test_code_is_the_big_text_not_its_small_label():
    boxes = [box("SERIAL", 60, 80, h=12), box("G39-MK9T99", 80, 130, h=40)]
    example = {"question": "Read the code printed in the box exactly.", "answer_type": "exact", "answer": "G39-MK9T99"}
    assert correct(example, ask(example, boxes))


def test_title_is_the_largest_text_near_the_top():
    boxes = [box("Rental Agreement", 100, 20, h=24), box("basket fountain sunset", 24, 80, h=10),
             box("OVERDUE", 150, 220, h=34)]  # fmt: skip
    example = {"question": "What is the title of this document?", "answer_type": "anls", "answer": "Rental Agreement"}
    assert correct(example, ask(example, boxes))


# ---- key lookups --------------------------------------------------------------------------


def test_value_right_of_a_key_or_after_it_in_the_same_box():
    form = [box("Date:", 24, 60), box("2021-12-20", 120, 60), box("Reference: PXUJAW", 24, 100),
            box("Email:", 24, 140), box("nadia.becker@post.org", 120, 140)]  # fmt: skip
    assert_answers(form, "exact", [
        ("What is the date entered on this form?", "2021-12-20"),
        ("What is written in the 'Reference' field?", "PXUJAW"),
        ("Read the value of the field labelled Email.", "nadia.becker@post.org"),
    ])  # fmt: skip


def test_value_below_a_key_when_nothing_is_to_its_right():
    boxes = [box("Ship to", 24, 60), box("10 Church Avenue", 24, 82)]
    example = {"question": "What value is given for 'Ship to'?", "answer_type": "anls", "answer": "10 Church Avenue"}
    assert correct(example, ask(example, boxes))


def test_unknown_key_is_not_answered_with_other_text():
    boxes = [box("Membership Form", 100, 20, h=24), box("Date:", 24, 60), box("2025-12-06", 120, 60)]
    example = {"question": "Read the value of the field labelled City.", "answer_type": "anls", "answer": "Ghent"}
    assert ask(example, boxes) == DECLINE


@pytest.mark.parametrize("skew", [0.0, 4.0, -5.0])
def test_table_cell_row_key_by_column_header_on_a_skewed_scan(skew):
    boxes = rotated(TABLE, skew)
    assert_answers(boxes, "number", [
        ("What is the Area value for Leeds?", "664"),
        ("In the table, what is listed under Population for Tartu?", "936000"),
        ("Look up Lima: what does the Founded column say?", "1227"),
    ])  # fmt: skip


def test_misread_column_header_is_still_used():
    boxes = [b if b.text != "Area" else box("Ata", 180, 50) for b in TABLE]
    example = {"question": "What is the Area value for Leeds?", "answer_type": "number", "answer": "664"}
    assert correct(example, ask(example, boxes))


def test_row_holding_a_value():
    example = {"question": "Which row has 465 in the Area column?", "answer_type": "anls", "answer": "Tartu"}
    assert correct(example, ask(example, TABLE))


def test_receipt_total_is_not_the_subtotal_and_items_are_counted():
    receipt = [box("TINY TOYS", 100, 10), box("Noodles", 18, 60), box("14.77", 200, 60), box("Milk", 18, 84),
               box("3.27", 200, 84), box("Butter", 18, 108), box("2.41", 200, 108), box("Subtotal", 18, 140),
               box("20.45", 200, 140), box("Tax 10%", 18, 164), box("2.05", 200, 164), box("TOTAL", 18, 188),
               box("22.50", 200, 188)]  # fmt: skip
    assert_answers(receipt, "number", [
        ("What is the total amount on the receipt?", "22.50"),
        ("How much did the milk cost?", "3.27"),
        ("How many different items are listed on the receipt?", "3"),
    ])  # fmt: skip


def test_printed_chart_values_above_a_bar_label_and_in_a_legend():
    bars = [box("Sales", 150, 10), box("109", 60, 120), box("54", 160, 200), box("Grapes", 50, 300),
            box("Kiwis", 150, 300)]  # fmt: skip
    example = {"question": "What is the value of Grapes in the bar chart?", "answer_type": "number", "answer": "109"}
    assert correct(example, ask(example, bars))
    legend = [box("Porto 23%", 250, 100), box("Lyon 41%", 250, 120)]
    share = {"question": "What percentage does Porto account for?", "answer_type": "number", "answer": "23"}
    assert correct(share, ask(share, legend))


# ---- yes/no and multiple choice -----------------------------------------------------------


def test_word_presence_yes_and_no():
    boxes = [box("chess", 40, 40), box("otter", 40, 80), box("radish", 40, 120)]
    yes = {"question": "Can you find the word otter in the list shown?", "answer_type": "yes_no", "answer": "yes"}
    no = {"question": "Does the word 'tomato' appear in the image?", "answer_type": "yes_no", "answer": "no"}
    assert correct(yes, ask(yes, boxes)) and correct(no, ask(no, boxes))
    missing = reply(parse_prompt(build_prompt(no)), reading(boxes))
    assert not missing.settled  # "no" may be a missed word: another reading may find it


def test_multiple_choice_picks_the_written_option():
    example = {"question": "Which of these words is written in the image?", "answer_type": "multiple_choice",
               "choices": ["harbor", "citrus", "drum", "jacket"], "answer": "drum"}  # fmt: skip
    assert correct(example, ask(example, [box("drurn", 100, 100, h=40)]))  # rn read for m
    assert ask(example, [box("zebra", 100, 100)]) == DECLINE  # none written: no guess


def test_word_in_a_given_ink_colour():
    boxes = [box("delta", 40, 40), box("potato", 40, 80), box("orchid", 40, 120)]
    inks = {"delta": (144, 146, 141), "potato": (156, 208, 153), "orchid": (230, 153, 149)}  # washed out by blur
    example = {"question": "Which word is written in green?", "answer_type": "exact", "answer": "potato"}
    assert correct(example, ask(example, boxes, ink=lambda b: inks[b.text]))
    assert colour_distance((156, 208, 153), COLOURS["green"]) < colour_distance((144, 146, 141), COLOURS["green"])


def test_check_box_marks_come_from_the_mark_reader():
    boxes = [box("Gift wrap", 40, 40), box("Insurance", 40, 80)]
    marks = {"Gift wrap": True, "Insurance": False}
    assert_answers(boxes, "yes_no", [("Is the 'Gift wrap' box checked?", "yes"),
                                     ("Has 'Insurance' been ticked on this form?", "no")], marked=lambda b: marks[b.text])  # fmt: skip


# ---- the CLI without the extra ------------------------------------------------------------


def test_serve_without_the_ocr_extra_is_a_one_line_error():
    code = (
        "import sys; sys.modules['rapidocr_onnxruntime'] = None\n"
        "from lrcal.cli import main\n"
        "main(['local', 'serve', '--port', '0'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "pip install 'lrcal[ocr]'" in lines[0]
    assert "base_url" not in proc.stdout


def test_local_models_lists_the_real_model(cli):
    result = cli("local", "models", "--json")
    assert result.exit_code == 0 and '"rapidocr-ppocrv4"' in result.output
