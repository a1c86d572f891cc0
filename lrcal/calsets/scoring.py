"""Scoring a model's raw answer against a calibration example's reference.

Rules per ``answer_type`` (docs/calibration-sets.md has the full description):

- ``multiple_choice``: the chosen option is read as a letter ("B", "(B)", "B) cat",
  "Answer: C", "option b") or as the text of an option; naming two options by any of those
  rules ("B or C", "(B) cat") is no answer; score 1 iff it is the reference.
- ``exact``: normalized string equality (Unicode NFKC, case-folded, whitespace collapsed,
  surrounding quotes/brackets and trailing punctuation stripped, articles a/an/the dropped).
- ``number``: |x - ref| <= max(tolerance * |ref|, 1e-6), tolerance relative (default 0).
  Understands "1,234", "12.0 %", "$3.50", "-0.5", "3/4", "1.5e3", worked results after a
  marker ("Answer: 12 × 3 = 36" is 36) and number words ("two hundred", "twenty-one"). A
  percent sign on either side also allows the fraction ("12.5%" vs 0.125).
- ``anls``: ANLS similarity 1 - NL (normalized Levenshtein distance) when NL < 0.5, else 0;
  correct iff the similarity is >= 0.5.
- ``yes_no``: a leading yes/no decides; else yes/true/correct vs no/false/incorrect/"not true"
  anywhere, and both named is no answer.

For every type the answer is looked for, in order, after the last "answer is"/"Answer:"
marker, in the last **bold** span, then in the whole text (reasoning inside
``<think>...</think>`` is dropped first). A missing or empty answer scores 0.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

MAX_RAW_CHARS = 20_000  # longer answers are cut: bounded time on hostile output
ABS_TOLERANCE = 1e-6
ANLS_THRESHOLD = 0.5


@dataclass(frozen=True)
class Score:
    parsed: str | None  # what was read from the answer (option letter, number, text, yes/no)
    score: float  # in [0, 1]
    correct: bool


ZERO = Score(None, 0.0, False)


def score_answer(example: Any, raw_answer: str | None) -> Score:
    """Score ``raw_answer`` against ``example`` (an ``Example`` or a mapping with
    ``answer``, ``answer_type`` and optional ``choices``/``tolerance``)."""
    answer, answer_type, choices, tolerance = _fields(example)
    if raw_answer is None:
        return ZERO
    text = clean_raw(raw_answer)
    if not text:
        return ZERO
    if answer_type == "multiple_choice":
        return _score_choice(answer, choices, text)
    if answer_type == "exact":
        return _score_exact(answer, text)
    if answer_type == "number":
        return _score_number(answer, tolerance, text)
    if answer_type == "anls":
        return _score_anls(answer, text)
    if answer_type == "yes_no":
        return _score_yes_no(answer, text)
    raise ValueError(f"unknown answer_type {answer_type!r}")


def _fields(example: Any) -> tuple[str, str, tuple[str, ...] | None, float | None]:
    if isinstance(example, Mapping):
        get = example.get
    else:
        def get(key: str, default: Any = None) -> Any:
            return getattr(example, key, default)

    answer = get("answer")
    answer_type = get("answer_type")
    choices = get("choices")
    tolerance = get("tolerance")
    if not isinstance(answer, str) or not isinstance(answer_type, str):
        raise ValueError("an example needs a string 'answer' and 'answer_type'")
    return answer, answer_type, tuple(choices) if choices else None, tolerance


# ---- text helpers -----------------------------------------------------------

_THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_MARKER = re.compile(
    r"\b(?:final\s+answer|answer)\b[^:\n=]{0,40}?(?:\bis\b|:|=)[\s*:]*",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*([^*\n]{1,200})\*\*")
_QUOTED = re.compile(r"\"([^\"\n]{1,200})\"|“([^”\n]{1,200})”|(?<!\w)'([^'\n]{1,200})'(?!\w)")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_QUOTES = "\"'`“”‘’«»„"
_BRACKETS = "()[]{}<>"
_TRAILING = ".,;:!?。、"


def clean_raw(raw: str) -> str:
    """Cut, drop <think> reasoning, and strip; the text every rule starts from."""
    text = raw[:MAX_RAW_CHARS] if len(raw) > MAX_RAW_CHARS else raw
    if "<think>" in text.lower() or "</think>" in text.lower():
        text = _THINK.sub(" ", text)
        lower = text.lower()
        if "</think>" in lower:  # an opening tag was cut off: keep what follows the close
            text = text[lower.rindex("</think>") + len("</think>") :]
    return text.strip()


def normalize_text(text: str, drop_articles: bool = True) -> str:
    """Case-folded NFKC text without surrounding quotes/brackets, trailing punctuation,
    articles (unless ``drop_articles`` is False) or repeated whitespace."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("**", "")
    text = " ".join(text.split())
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip(_QUOTES).rstrip(_TRAILING).strip()
        if len(text) >= 2 and text[0] in "([{<" and text[-1] in ")]}>":
            text = text[1:-1]
    if drop_articles:
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def comparable(reference: str) -> tuple[str, bool]:
    """The normalized reference and whether articles are dropped: an answer that *is* an
    article ("The", "A") keeps it so that there is something to compare."""
    normalized = normalize_text(reference)
    if normalized:
        return normalized, True
    return normalize_text(reference, drop_articles=False), False


def after_marker(text: str) -> str | None:
    """The first line after the last "answer is" / "Answer:" marker, if any."""
    markers = list(_MARKER.finditer(text))
    if not markers:
        return None
    after = text[markers[-1].end() :].strip()
    return after.split("\n", 1)[0].strip() or None


def answer_candidates(text: str) -> list[str]:
    """Where an answer may sit, most specific first: after the last marker, the last
    bold span, the last quoted span, the first line, the whole text."""
    out: list[str] = []
    marked = after_marker(text)
    if marked:
        out.append(marked)
    bolds = _BOLD.findall(text)
    if bolds:
        out.append(bolds[-1].strip())
    quoted = [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)]
    if quoted:
        out.append(quoted[-1].strip())
    out.append(text.split("\n", 1)[0].strip())
    out.append(text)
    unique: list[str] = []
    for candidate in out:
        if candidate and candidate not in unique:
            unique.append(candidate)
    return unique


# ---- exact --------------------------------------------------------------------


def _score_exact(answer: str, text: str) -> Score:
    reference, drop = comparable(answer)
    candidates = answer_candidates(text)
    for candidate in candidates:
        if normalize_text(candidate, drop) == reference:
            return Score(_short(candidate), 1.0, True)
    return Score(_short(candidates[0]), 0.0, False)


# ---- ANLS ---------------------------------------------------------------------


def anls_similarity(prediction: str, reference: str) -> float:
    """1 - normalized Levenshtein distance, or 0 when that distance is >= 0.5 (ANLS, tau=0.5)."""
    b, drop = comparable(reference)
    a = normalize_text(prediction, drop)
    if a == b:
        return 1.0
    longest = max(len(a), len(b))
    if longest == 0:
        return 0.0
    if abs(len(a) - len(b)) / longest >= ANLS_THRESHOLD:  # distance >= length difference
        return 0.0
    distance = levenshtein(a, b, bound=math.ceil(ANLS_THRESHOLD * longest))
    nl = distance / longest
    return 0.0 if nl >= ANLS_THRESHOLD else 1.0 - nl


def levenshtein(a: str, b: str, bound: int | None = None) -> int:
    """Edit distance; stops early once every path exceeds ``bound`` (returns > bound)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if bound is not None and min(current) > bound:
            return bound + 1
        previous = current
    return previous[-1]


def _score_anls(answer: str, text: str) -> Score:
    best_score, best = 0.0, None
    for candidate in answer_candidates(text):
        if len(candidate) > 4 * max(len(answer), 16):  # cannot be within NL < 0.5
            continue
        similarity = anls_similarity(candidate, answer)
        if best is None or similarity > best_score:
            best_score, best = similarity, candidate
    if best is None:
        best = answer_candidates(text)[0]
    return Score(_short(best), round(best_score, 6), best_score >= ANLS_THRESHOLD)


# ---- numbers --------------------------------------------------------------------

_NUMBER = re.compile(
    r"""
    (?P<sign>[-+\u2212\u2013])?\s?
    (?P<cur>[$€£¥])?\s?
    (?P<sign2>[-+\u2212])?
    (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
    (?:\s?/\s?(?P<den>\d+(?:\.\d+)?)(?![\d/]))?
    (?:[eE](?P<exp>[-+]?\d{1,3})\b)?
    (?:\s?(?P<pct>%|percent\b|per\s?cent\b))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
}  # fmt: skip
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
# What may sit between two words of one spelled-out number: "twenty-one", "two hundred",
# "one hundred and five" ("and" only after hundred/thousand, else "three and four" would be 7).
_WORD_JOINER = re.compile(r"\s*-\s*|\s+")
_AND_JOINER = re.compile(r"\s+and\s+", re.IGNORECASE)
# Which kinds of word may follow which inside one number ("twenty" then "one", not "one" then "two").
_MAY_FOLLOW = {
    "unit": {"tens", "hundred", "thousand"},
    "teen": {"hundred", "thousand"},
    "tens": {"hundred", "thousand"},
    "hundred": {"unit", "teen"},
    "thousand": {"unit", "teen", "tens", "hundred"},
    "zero": set(),
}


@dataclass(frozen=True)
class ParsedNumber:
    value: float
    percent: bool
    text: str


def find_numbers(text: str) -> list[ParsedNumber]:
    """Every number in ``text``, in order (digits; number words only when there are none)."""
    out: list[ParsedNumber] = []
    for match in _NUMBER.finditer(text):
        value = _number_value(match, text)
        if value is not None:
            out.append(ParsedNumber(value, bool(match.group("pct")), match.group(0).strip()))
    if not out:
        out = _word_numbers(text)
    return out


def _word_kind(value: int) -> str:
    if value == 0:
        return "zero"
    if value < 10:
        return "unit"
    if value < 20:
        return "teen"
    if value < 100:
        return "tens"
    return "hundred" if value == 100 else "thousand"


def _word_numbers(text: str) -> list[ParsedNumber]:
    """Spelled-out numbers, adjacent words combined: "twenty-one" is 21, "two hundred" 200,
    "one hundred twenty" 120, while "one two" stays 1 and 2."""
    out: list[ParsedNumber] = []
    total = current = 0
    start = end = 0
    last: str | None = None
    for match in _NUMBER_WORD.finditer(text):
        value = _NUMBER_WORDS[match.group(1).lower()]
        kind = _word_kind(value)
        gap = text[end : match.start()]
        joined = last is not None and (
            _WORD_JOINER.fullmatch(gap) is not None
            or (last in ("hundred", "thousand") and _AND_JOINER.fullmatch(gap) is not None)
        )
        fits = joined and last in _MAY_FOLLOW[kind] and not (kind == "hundred" and current >= 100)
        fits = fits and not (kind == "thousand" and total > 0)
        if last is not None and not fits:
            out.append(ParsedNumber(float(total + current), False, text[start:end]))
            total = current = 0
            last = None
        if last is None:
            start = match.start()
        if kind == "hundred":
            current = (current or 1) * 100
        elif kind == "thousand":
            total += (current or 1) * 1000
            current = 0
        else:
            current += value
        last, end = kind, match.end()
    if last is not None:
        out.append(ParsedNumber(float(total + current), False, text[start:end]))
    return out


def _number_value(match: re.Match, text: str) -> float | None:
    try:
        value = float(match.group("num").replace(",", ""))
        if match.group("den"):
            den = float(match.group("den"))
            if den == 0:
                return None
            value /= den
        if match.group("exp"):
            value *= 10.0 ** int(match.group("exp"))
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(value):
        return None
    negative = False
    sign = match.group("sign")
    if sign and sign != "+":
        # a minus right after a word, digit or ')' is subtraction ("7 - 2"), not a sign
        before = text[: match.start()].rstrip()
        negative = not (before and (before[-1].isalnum() or before[-1] in ")]"))
    if match.group("sign2") and match.group("sign2") != "+":
        negative = True
    return -value if negative else value


def extract_number(text: str) -> ParsedNumber | None:
    """The answer's number: the first after the last answer marker, else the one in the last
    bold span, else the last number in the text. A marked line or bold span that holds a
    worked result ("Answer: 12 × 3 = 36") gives the number after its last "=" instead."""
    markers = list(_MARKER.finditer(text))
    if markers:
        result = _result_after_equals(after_marker(text))
        if result is not None:
            return result
        found = find_numbers(text[markers[-1].end() :])
        if found:
            return found[0]
    bolds = [b for b in _BOLD.findall(text) if find_numbers(b)]
    if bolds:
        return _result_after_equals(bolds[-1]) or find_numbers(bolds[-1])[0]
    found = find_numbers(text)
    return found[-1] if found else None


# A worked result: only numbers, operators and "=" before the last "=" ("12 × 3 = 36").
_WORKED = re.compile(r"[\s\d.,+\-−–×xX*/÷^()%$·=]*\d[\s\d.,+\-−–×xX*/÷^()%$·=]*")


def _result_after_equals(line: str | None) -> ParsedNumber | None:
    """The first number after the last "=" of ``line`` when what precedes it is arithmetic
    ("Answer: 12 × 3 = 36" is 36), else None: an "=" in an explanation ("Answer: 12. Each
    box = 4 items.", "7 (where 1 unit = 10 km)") does not replace the answer."""
    if not line or "=" not in line:
        return None
    cut = line.rindex("=")
    if not _WORKED.fullmatch(line[:cut]):
        return None
    found = find_numbers(line[cut + 1 :])
    return found[0] if found else None


def parse_reference(answer: str) -> ParsedNumber | None:
    """A reference answer's number, percent sign kept: the whole string must be one number."""
    stripped = answer.strip()
    matches = [m for m in _NUMBER.finditer(stripped) if _number_value(m, stripped) is not None]
    if len(matches) != 1 or matches[0].group(0).strip() != stripped:
        return None
    value = _number_value(matches[0], stripped)
    assert value is not None
    return ParsedNumber(value, bool(matches[0].group("pct")), stripped)


def parse_reference_number(answer: str) -> float | None:
    """A reference answer's value (as written: "12.5%" is 12.5); None if it is not one number."""
    parsed = parse_reference(answer)
    return parsed.value if parsed else None


def format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


def numbers_match(value: float, reference: float, tolerance: float | None) -> bool:
    allowed = max((tolerance or 0.0) * abs(reference), ABS_TOLERANCE)
    return abs(value - reference) <= allowed


def _score_number(answer: str, tolerance: float | None, text: str) -> Score:
    reference = parse_reference(answer)
    if reference is None:
        raise ValueError(f"reference answer {answer!r} is not a number")
    found = extract_number(text)
    if found is None:
        return Score(None, 0.0, False)
    correct = numbers_match(found.value, reference.value, tolerance)
    # A percentage may also mean the fraction, on either side: "12%" vs 0.12, 0.125 vs "12.5%".
    if not correct and found.percent:
        correct = numbers_match(found.value / 100.0, reference.value, tolerance)
    if not correct and reference.percent:
        correct = numbers_match(found.value, reference.value / 100.0, tolerance)
    return Score(format_number(found.value), 1.0 if correct else 0.0, correct)


# ---- yes / no -------------------------------------------------------------------

_YES = {"yes", "yeah", "yep", "true", "correct", "right", "affirmative"}  # as the first word
_NO = {"no", "nope", "false", "incorrect", "wrong", "negative"}
# Anywhere in the answer: words that only ever mean the answer ("right", "wrong", "negative"
# and a bare "no" do not: "on the right", "the number is negative", "no clouds").
_YES_ANYWHERE = {"yes", "yeah", "yep", "true", "correct"}
_NO_ANYWHERE = {"nope", "false", "incorrect"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Rewritten before words are read: "not true" / "isn't correct" mean false; "no doubt" means yes.
_NEGATED_YES = re.compile(
    r"(?:\bnot|n['’]t|\bnever)\s+(?:(?:quite|entirely|completely|really|exactly|strictly|totally)\s+)?"
    r"(?:true|correct)\b",
    re.IGNORECASE,
)
_NO_DOUBT = re.compile(r"\b(?:no\s+doubt|without\s+(?:a\s+)?doubt|undoubtedly)\b", re.IGNORECASE)
# "no" as the answer itself, not as a determiner ("no clouds"): followed by punctuation or the end.
_NO_ALONE = re.compile(r"\bno\b(?=\s*(?:[.,;:!?)\]*]|$))", re.IGNORECASE)


def reference_yes_no(answer: str) -> str | None:
    word = normalize_text(answer)
    if word in ("yes", "true"):
        return "yes"
    if word in ("no", "false"):
        return "no"
    return None


def read_yes_no(text: str) -> str | None:
    """"yes"/"no" from an answer (rules in docs/calibration-sets.md): the first candidate that
    names a polarity decides (a leading Yes/No whatever follows), and one that names both without
    a leading answer word ("It is true and it is false") gives no answer."""
    for candidate in answer_candidates(text):
        words = [w.casefold() for w in _WORD.findall(candidate)]
        if not words:
            continue
        if words == ["y"]:
            return "yes"
        if words == ["n"]:
            return "no"
        found = _yes_no_in(candidate)
        if found is not None:
            return None if found == _BOTH else found
    return None


_BOTH = "both"


def _yes_no_in(candidate: str) -> str | None:
    """"yes", "no", ``_BOTH`` (both polarities named) or None (neither)."""
    rewritten = _NEGATED_YES.sub(" false ", _NO_DOUBT.sub(" yes ", candidate))
    words = [w.casefold() for w in _WORD.findall(rewritten)]
    if not words:
        return None
    leading = "yes" if words[0] in _YES else "no" if words[0] in _NO else None
    rest = words[1:] if leading else words
    says_yes = any(w in _YES_ANYWHERE for w in rest)
    # a bare "no" counts only as an answer ("Yes, no.", "I'd say no"), not in "no clouds"
    says_no = any(w in _NO_ANYWHERE for w in rest) or (
        _NO_ALONE.search(rewritten, pos=_after_first_word(rewritten) if leading else 0) is not None
    )
    if leading:
        # a leading Yes/No decides: what follows explains it ("Yes, it is not incorrect.",
        # "No; yes would be wrong."), and reading contradictions there lost clear answers
        return leading
    if says_yes and says_no:
        return _BOTH
    if says_yes or says_no:
        return "yes" if says_yes else "no"
    return "no" if "no" in words else None  # "There is no red square." reads no


def _after_first_word(text: str) -> int:
    match = _WORD.search(text)
    return match.end() if match else 0


def _score_yes_no(answer: str, text: str) -> Score:
    reference = reference_yes_no(answer)
    if reference is None:
        raise ValueError(f"reference answer {answer!r} is not yes or no")
    parsed = read_yes_no(text)
    correct = parsed == reference
    return Score(parsed, 1.0 if correct else 0.0, correct)


# ---- multiple choice ----------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ONLY_LETTER = re.compile(r"^[(\[]?\s*([A-Za-z])\s*[)\]]?[.:]?$")
_LEADING_LETTER = re.compile(r"^(?:\(([A-Za-z])\)|\[([A-Za-z])\]|([A-Za-z])\)|([A-Z])[.:])(?:\s|$)")
_NAMED_LETTER = re.compile(r"\b(?:option|choice|letter)\s*[(\[]?([A-Za-z])[)\]]?(?![A-Za-z])", re.IGNORECASE)
_PAREN_LETTER = re.compile(r"[(\[]([A-Z])[)\]]")
_BARE_LEADING = re.compile(r"^([A-Z])(?![\w'’-])")
# One letter offered as an alternative to another: a capital standing alone, bare or in
# brackets, optionally after "option" ("B or C", "(B)/(C)", "option B and option C").
_LETTER_FORM = r"(?:(?i:option|choice|letter)\s*)?[(\[]?(?<![\w'’])([A-Z])[)\]]?(?![\w'’-])"
_ALTERNATIVES = re.compile(
    _LETTER_FORM + r"\s*(?:,\s*)?(?i:or|and|/|,|vs\.?|versus)\s*(?:(?i:either)\s+)?" + _LETTER_FORM
)


def letter(index: int) -> str:
    return _LETTERS[index]


def reference_choice_index(answer: str, choices: tuple[str, ...] | list[str] | None) -> int | None:
    """The reference's option index: the text of a choice, else its letter."""
    if choices:
        index = _choice_equal_to(answer, choices)
        if index is not None:
            return index
    match = _ONLY_LETTER.match(answer.strip())
    if match:
        index = _LETTERS.index(match.group(1).upper())
        if choices is None or index < len(choices):
            return index
    return None


def read_choice(text: str, choices: tuple[str, ...] | None) -> int | None:
    """The option an answer picks, or None when it picks none or is ambiguous: the first
    candidate that names any option decides, and naming two different options is no answer."""
    count = len(choices) if choices else 26
    marked = after_marker(text)
    bold_line = _last_bold_line(text)
    for candidate in answer_candidates(text):
        named = _options_named(candidate, choices, count, from_marker=candidate == marked)
        if named and bold_line is not None and candidate == bold_line[0]:
            # "**B** or **C**": the last bold span alone would hide the other option
            named |= _alternative_letters(bold_line[1], count)
        if named:
            return named.pop() if len(named) == 1 else None
    return None


def _last_bold_line(text: str) -> tuple[str, str] | None:
    """(the last bold span's text as a candidate, the line it sits in)."""
    last = None
    for last in _BOLD.finditer(text):
        pass
    if last is None:
        return None
    line_start = text.rfind("\n", 0, last.start()) + 1
    line_end = text.find("\n", last.end())
    return last.group(1).strip(), text[line_start : line_end if line_end >= 0 else len(text)]


def _options_named(candidate: str, choices: tuple[str, ...] | None, count: int, from_marker: bool) -> set[int]:
    """Every option ``candidate`` names, by any rule: letters in any form and option texts."""
    segment = candidate.replace("**", "").strip()

    def ok(ch: str | None) -> int | None:
        if not ch:
            return None
        index = _LETTERS.index(ch.upper())
        return index if index < count else None

    if choices:  # the whole answer is one option's text
        index = _choice_equal_to(segment, choices)
        if index is not None:
            return {index}
    match = _ONLY_LETTER.match(segment)
    if match and ok(match.group(1)) is not None:
        return {ok(match.group(1))}  # type: ignore[set-item]
    named: set[int | None] = set()
    match = _LEADING_LETTER.match(segment)
    if match:
        picked = ok(next(g for g in match.groups() if g))
        # "(B) dog": the letter followed by exactly its own option's text
        if picked is not None and choices and _choice_equal_to(segment[match.end() :], choices) == picked:
            return {picked}
        named.add(picked)
    named.update(ok(m.group(1)) for m in _NAMED_LETTER.finditer(segment))
    named.update(ok(m.group(1)) for m in _PAREN_LETTER.finditer(segment))
    if from_marker:
        match = _BARE_LEADING.match(segment)
        if match:
            named.add(ok(match.group(1)))
    named |= _alternative_letters(segment, count)
    if choices:
        named |= _choice_texts_in(segment, choices)
    named.discard(None)
    return named  # type: ignore[return-value]


def _alternative_letters(segment: str, count: int) -> set[int]:
    """Letters offered as alternatives: "B or C", "(B)/(C)", "option B and option C"."""
    found: set[int] = set()
    for match in _ALTERNATIVES.finditer(segment.replace("**", "")):
        for ch in match.group(1, 2):
            index = _LETTERS.index(ch.upper())
            if index < count:
                found.add(index)
    return found


def _choice_equal_to(text: str, choices: tuple[str, ...] | list[str]) -> int | None:
    for i, choice in enumerate(choices):
        reference, drop = comparable(choice)
        if normalize_text(text, drop) == reference:
            return i
    return None


def _choice_texts_in(segment: str, choices: tuple[str, ...]) -> set[int]:
    """The options whose text appears in ``segment`` (the longer wins where one holds another)."""
    haystack = " " + " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", segment).casefold())) + " "
    spans: list[tuple[int, int, int]] = []
    for i, choice in enumerate(choices):
        needle = " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", choice).casefold()))
        if not needle:
            continue
        start = haystack.find(" " + needle + " ")
        if start >= 0:
            spans.append((start, start + len(needle) + 1, i))
    kept = [s for s in spans if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o in spans)]
    return {s[2] for s in kept}


def _score_choice(answer: str, choices: tuple[str, ...] | None, text: str) -> Score:
    reference = reference_choice_index(answer, choices)
    if reference is None:
        raise ValueError(f"reference answer {answer!r} is not one of the choices or an option letter")
    picked = read_choice(text, choices)
    if picked is None:
        return Score(None, 0.0, False)
    correct = picked == reference
    return Score(letter(picked), 1.0 if correct else 0.0, correct)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
