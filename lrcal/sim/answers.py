"""What a simulated model says: the reference answer in varied phrasing, or a plausible
wrong answer of the right format. Every choice is a deterministic function of its key.

Phrasings (the project's scorer must read all of them; tests check it does):

* multiple choice: ``B``, ``(B)``, ``The answer is (B).``, ``Answer: B``, ``**B**``,
  ``B. <option text>``, ``(B) <option text>``
* number: ``42``, ``It's 42.``, ``The answer is 42.``, ``Answer: 42``, ``**42**``
* yes/no: ``Yes``, ``Yes.``, ``yes``, ``Yes, it is.``, ``The answer is yes.`` (and the same for no)
* exact / ANLS text: ``word``, ``word.``, ``The answer is word.``, ``Answer: word``,
  ``**word**``, ``"word"``
"""

from __future__ import annotations

import math
import re

from lrcal.calsets.scoring import levenshtein, normalize_text
from lrcal.sim.draws import rng
from lrcal.sim.index import SimExample

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_CHOICE_FORMS = ("{L}", "({L})", "The answer is ({L}).", "Answer: {L}", "**{L}**", "{L}. {T}", "({L}) {T}")
_NUMBER_FORMS = ("{a}", "It's {a}.", "The answer is {a}.", "Answer: {a}", "**{a}**")
_YES_NO_FORMS = {
    "yes": ("Yes", "Yes.", "yes", "Yes, it is.", "The answer is yes."),
    "no": ("No", "No.", "no", "No, it is not.", "The answer is no."),
}
_TEXT_FORMS = ("{a}", "{a}.", "The answer is {a}.", "Answer: {a}", "**{a}**", '"{a}"')
# every reply template by answer type (scripts/compare_scorers.py checks a scorer change on them)
REPLY_FORMS = {"multiple_choice": _CHOICE_FORMS, "number": _NUMBER_FORMS, "yes_no": _YES_NO_FORMS,
               "exact": _TEXT_FORMS, "anls": _TEXT_FORMS}

GENERIC_ANSWERS = (
    "I can't tell from this image.",
    "The image does not show enough detail to answer that.",
    "I'm not sure; the image is unclear to me.",
    "It is hard to say from the image alone.",
)

# Characters an OCR-like reader confuses (both ways).
_CONFUSIONS = {
    "0": "O", "O": "0", "o": "0", "1": "l", "l": "1", "I": "1", "5": "S", "S": "5", "8": "B",
    "B": "8", "2": "Z", "Z": "2", "6": "G", "G": "6", "rn": "m", "m": "rn", "e": "c", "c": "e",
    "a": "o", "u": "v", "v": "u", "n": "h", "h": "n", "i": "j", "t": "f",
}  # fmt: skip

_NUMBER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[-+]?\d+(?:\.\d+)?|[-+]?\.\d+")


def choice_index(answer: str, choices: tuple[str, ...] | None) -> int | None:
    """The reference option: a choice's text, else a letter (``B``, ``(B)``)."""
    if choices:
        target = " ".join(answer.casefold().split())
        for i, choice in enumerate(choices):
            if " ".join(choice.casefold().split()) == target:
                return i
    stripped = answer.strip().strip("()[]. ").upper()
    if len(stripped) == 1 and stripped in LETTERS:
        index = LETTERS.index(stripped)
        if not choices or index < len(choices):
            return index
    return None


def yes_no(answer: str) -> str | None:
    word = answer.strip().strip(".!").casefold()
    if word in ("yes", "true", "y"):
        return "yes"
    if word in ("no", "false", "n"):
        return "no"
    return None


def phrase(example: SimExample, answer: str, key: tuple[object, ...]) -> str:
    """Wrap ``answer`` (a value of the example's type) in one of the natural phrasings."""
    r = rng(*key, "phrase")
    kind = example.answer_type
    if kind == "multiple_choice":
        index = choice_index(answer, example.choices)
        if index is None:
            return r.choice(_TEXT_FORMS).format(a=answer)
        forms = _CHOICE_FORMS if example.choices else _CHOICE_FORMS[:5]
        text = example.choices[index] if example.choices else ""
        return r.choice(forms).format(L=LETTERS[index], T=text)
    if kind == "yes_no":
        word = yes_no(answer)
        if word is not None:
            return r.choice(_YES_NO_FORMS[word])
    if kind == "number":
        return r.choice(_NUMBER_FORMS).format(a=answer.strip())
    return r.choice(_TEXT_FORMS).format(a=answer.strip())


def wrong_answer(example: SimExample, others: list[str], key: tuple[object, ...]) -> str:
    """A plausible wrong value of the right format (not yet phrased)."""
    r = rng(*key, "wrong")
    kind = example.answer_type
    if kind == "multiple_choice":
        index = choice_index(example.answer, example.choices)
        count = len(example.choices) if example.choices else 4
        if index is not None and count > 1:
            wrong = r.choice([i for i in range(count) if i != index])
            return example.choices[wrong] if example.choices else LETTERS[wrong]
    if kind == "yes_no":
        word = yes_no(example.answer)
        if word is not None:
            return "no" if word == "yes" else "yes"
    if kind == "number":
        wrong_number = _nearby_number(example.answer, example.tolerance, r)
        if wrong_number is not None:
            return wrong_number
    # exact / anls (and anything unparseable): another answer seen in the group, or a misreading.
    # For ANLS a wrong answer must be far (similarity < 0.5), else it would earn credit.
    heavy = kind == "anls"
    pool = [o for o in others if _is_wrong(o, example.answer, heavy)]
    if pool and (heavy or r.random() < 0.5):
        return r.choice(pool)
    return _misread(example.answer, heavy=heavy, r=r)


def _similarity(a: str, b: str) -> float:
    """1 - normalized Levenshtein distance."""
    return 1.0 - levenshtein(a, b) / max(len(a), len(b), 1)


def _is_wrong(candidate: str, answer: str, far: bool) -> bool:
    """Whether ``candidate`` differs from ``answer`` once normalized as the scorer does; ``far``:
    also more than half its characters apart, so that ANLS gives it no credit."""
    a, b = normalize_text(candidate), normalize_text(answer)
    if not a or a == b:
        return False
    return _similarity(a, b) < 0.5 if far else True


def _nearby_number(answer: str, tolerance: float | None, r) -> str | None:
    """The answer with its number moved outside the tolerance, formatted the same way."""
    match = _NUMBER.search(answer)
    if match is None:
        return None
    raw = match.group(0)
    try:
        value = float(raw.replace(",", ""))
    except ValueError:
        return None
    decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
    unit = 10.0 ** (-decimals)
    allowed = max((tolerance or 0.0) * abs(value), 1e-6)
    step = max(unit, abs(value) * r.uniform(0.08, 0.3), allowed * 2.0 + unit)
    if decimals == 0:
        step = float(max(1, math.ceil(step)))
    sign = r.choice((-1.0, 1.0))
    if value >= 0 and value - step < 0:
        sign = 1.0  # keep counts and amounts non-negative
    wrong = value + sign * step
    text = f"{wrong:.{decimals}f}" if decimals else str(int(round(wrong)))
    if "," in raw:
        text = f"{int(round(wrong)):,}" if not decimals else f"{wrong:,.{decimals}f}"
    return answer[: match.start()] + text + answer[match.end() :]


def _misread(answer: str, heavy: bool, r) -> str:
    """An OCR-like misreading: one or two confusable characters, or (heavy) most of them."""
    text = answer.strip() or "?"
    for _ in range(20):
        chars = list(text)
        edits = min(len(chars), max(1, math.ceil(len(chars) * 0.7))) if heavy else min(len(chars), r.choice((1, 1, 2)))
        for i in r.sample(range(len(chars)), edits):
            replacement = _CONFUSIONS.get(chars[i])
            if replacement is None or heavy:
                replacement = r.choice([c for c in "abcdefghkmnpqrstuvwxyz2345679" if c != chars[i].lower()])
            chars[i] = replacement
        candidate = "".join(chars)
        if _is_wrong(candidate, text, heavy):
            return candidate
    return "unreadable" if _is_wrong("unreadable", text, heavy) else "illegible text"
