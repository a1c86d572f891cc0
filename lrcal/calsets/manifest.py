"""Reading ``manifest.jsonl`` lines and validating each record's fields.

Everything here is about the text of the manifest; image files are checked in
``images.py`` and the two are tied together in ``loader.py``.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterator

from lrcal.calsets.format import ANSWER_TYPES, MAX_ID_CHARS, MAX_LINE_BYTES
from lrcal.input_files import has_hidden_characters

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


@dataclass
class RawLine:
    number: int  # 1-based
    text: str | None  # None when the line could not be read as text
    problem: tuple[str, str] | None = None  # (kind, message) for unreadable lines


@dataclass
class Record:
    """The validated fields of one manifest line (``issues`` empty when usable)."""

    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    issues: list[tuple[str, str]] = field(default_factory=list)

    @property
    def example_id(self) -> str | None:
        value = self.fields.get("id")
        return value if isinstance(value, str) else None


def iter_lines(handle: BinaryIO) -> Iterator[RawLine]:
    """Yield the manifest's lines, never holding more than one capped line in memory.

    Blank lines are skipped; a UTF-8 byte-order mark on the first line is tolerated.
    """
    number = 0
    while True:
        chunk = handle.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        number += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            total = len(chunk)
            while True:  # skip the rest of the oversized line
                rest = handle.readline(1 << 16)
                total += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            yield RawLine(
                number,
                None,
                ("huge_line", f"line is {total:,} bytes; the limit is {MAX_LINE_BYTES:,} bytes per line"),
            )
            continue
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RawLine(number, None, ("encoding", f"line is not valid UTF-8 (byte {exc.start})"))
            continue
        if not text.strip():
            continue
        yield RawLine(number, text)


def parse_record(raw: RawLine, known_groups: set[str]) -> Record:
    """Decode and validate one manifest line; all problems of the line are collected."""
    record = Record(raw.number)
    if raw.problem is not None:
        record.issues.append(raw.problem)
        return record
    assert raw.text is not None
    duplicates: list[str] = []

    def keep_pairs(pairs: list[tuple[str, Any]]) -> dict:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        obj = json.loads(raw.text, object_pairs_hook=keep_pairs)
    except RecursionError:
        record.issues.append(("invalid_json", "JSON is nested too deeply"))
        return record
    except ValueError as exc:  # JSONDecodeError and int-size limits
        record.issues.append(("invalid_json", f"invalid JSON ({_one_line(exc)})"))
        return record
    if duplicates:  # JSON would keep the last silently: which one was meant is unknown
        record.issues.append(("duplicate_key", f"key {show(duplicates[0])} appears more than once in the record"))
        return record
    if not isinstance(obj, dict):
        record.issues.append(("not_an_object", f"each line must be a JSON object, got {json_type(obj)}"))
        return record
    for kind, message in _scan_values(obj):
        record.issues.append((kind, message))
    if record.issues:  # NaN/surrogates anywhere: the record cannot be stored safely
        _copy_id(obj, record)
        return record
    _validate_fields(obj, record, known_groups)
    return record


def _copy_id(obj: dict, record: Record) -> None:
    if isinstance(obj.get("id"), str):
        record.fields["id"] = obj["id"]


def _validate_fields(obj: dict, record: Record, known_groups: set[str]) -> None:
    issues = record.issues
    out = record.fields

    # The required string fields, in the order their problems are reported: each with the
    # problem its value has (kind, message), or None when it is kept.
    required: dict[str, Callable[[str], tuple[str, str] | None]] = {
        "id": _id_problem,
        "task_group": lambda group: _task_group_problem(group, known_groups),
        "question": lambda question: _empty_problem("question", question),
        "answer_type": _answer_type_problem,
        "answer": lambda answer: _empty_problem("answer", answer),
    }
    for name, problem_of in required.items():
        value = _required_str(obj, name, issues)
        if value is None:
            continue
        problem = problem_of(value)
        if problem is None:
            out[name] = value
        else:
            issues.append(problem)

    choices = _optional_choices(obj, issues)
    if choices is not None:
        out["choices"] = choices

    tolerance = obj.get("tolerance")
    if tolerance is not None:
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            issues.append(("wrong_type", f"tolerance must be a number, got {json_type(tolerance)}"))
        elif not _finite(tolerance) or tolerance < 0:
            issues.append(("bad_tolerance", f"tolerance must be a finite number >= 0, got {tolerance!r}"))
        else:
            out["tolerance"] = float(tolerance)

    image = obj.get("image")
    if image is not None:
        if not isinstance(image, str):
            issues.append(("wrong_type", f"image must be a string path, got {json_type(image)}"))
        else:
            out["image"] = image  # the path itself is checked with the file (loader)

    meta = obj.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            issues.append(("wrong_type", f"meta must be an object, got {json_type(meta)}"))
        else:
            _validate_meta(meta, issues)
            out["meta"] = meta

    answer_type = out.get("answer_type")
    if answer_type is not None:
        # Fields of another answer type would change the prompt (options listed for a number)
        # or be silently ignored by scoring (a tolerance on yes/no).
        if answer_type != "multiple_choice" and obj.get("choices") is not None:
            issues.append(("bad_choices", f"choices are only for multiple_choice answers, not {answer_type}"))
        if answer_type != "number" and tolerance is not None:
            issues.append(("bad_tolerance", f"tolerance is only for number answers, not {answer_type}"))

    if "answer_type" in out and "answer" in out:
        _check_answer_fits_type(out["answer"], out["answer_type"], out.get("choices"), "choices" in obj, issues)


def _id_problem(ident: str) -> tuple[str, str] | None:
    if not ident.strip():
        return ("empty_value", "id is empty")
    if len(ident) > MAX_ID_CHARS:
        return ("bad_value", f"id is longer than {MAX_ID_CHARS} characters")
    if has_hidden_characters(ident):
        return ("bad_value", f"id {show(ident)} contains control or invisible format characters")
    if ident != ident.strip():  # "a" and "a " would be two examples no one can tell apart
        return ("bad_value", f"id {show(ident)} has leading or trailing spaces")
    return None


def _task_group_problem(group: str, known_groups: set[str]) -> tuple[str, str] | None:
    if group in known_groups:
        return None
    return (
        "unknown_task_group",
        f"task_group {show(group)} is not one of {', '.join(sorted(known_groups))} "
        "(declare new groups in set.json 'task_groups')",
    )


def _empty_problem(name: str, value: str) -> tuple[str, str] | None:
    return ("empty_value", f"{name} is empty") if not value.strip() else None


def _answer_type_problem(answer_type: str) -> tuple[str, str] | None:
    if answer_type in ANSWER_TYPES:
        return None
    return ("unknown_answer_type", f"answer_type {show(answer_type)} is not one of {', '.join(ANSWER_TYPES)}")


def _validate_meta(meta: dict, issues: list[tuple[str, str]]) -> None:
    difficulty = meta.get("difficulty")
    if difficulty is not None:
        if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)):
            issues.append(("wrong_type", f"meta.difficulty must be a number, got {json_type(difficulty)}"))
        elif not 0.0 <= difficulty <= 1.0:
            issues.append(("bad_value", f"meta.difficulty must be in [0, 1], got {difficulty!r}"))
    subtype = meta.get("subtype")
    if subtype is not None and not isinstance(subtype, str):
        issues.append(("wrong_type", f"meta.subtype must be a string, got {json_type(subtype)}"))


def _optional_choices(obj: dict, issues: list[tuple[str, str]]) -> tuple[str, ...] | None:
    if "choices" not in obj or obj["choices"] is None:
        return None
    choices = obj["choices"]
    if not isinstance(choices, list):
        issues.append(("wrong_type", f"choices must be an array of strings, got {json_type(choices)}"))
        return None
    bad = [json_type(c) for c in choices if not isinstance(c, str)]
    if bad:
        issues.append(("wrong_type", f"choices must all be strings, got {', '.join(sorted(set(bad)))}"))
        return None
    if len(choices) < 2:
        issues.append(("bad_choices", f"choices must list at least 2 options, got {len(choices)}"))
        return None
    if len(choices) > 26:
        issues.append(("bad_choices", f"choices may list at most 26 options (A-Z), got {len(choices)}"))
        return None
    if any(not c.strip() for c in choices):
        issues.append(("bad_choices", "choices contain an empty option"))
        return None
    # Each option is one "(A) ..." line of the prompt: a line break would forge another option.
    for choice in choices:
        if any(_breaks_or_hides(ch) for ch in choice):
            issues.append(
                ("bad_choices", f"choice {show(choice)} contains a line break, control or invisible format character")
            )
            return None
    from lrcal.calsets.scoring import comparable, letter

    normalized = [comparable(c)[0] for c in choices]
    if not all(normalized):
        issues.append(("bad_choices", "choices contain an option that is only punctuation"))
        return None
    if len(set(normalized)) != len(normalized):
        issues.append(("bad_choices", "choices contain duplicates (after normalizing case and punctuation)"))
        return None
    # A reply "B" must mean option (B): a one-letter choice elsewhere would make it mean another.
    for i, text in enumerate(normalized):
        if len(text) == 1 and "a" <= text <= "z":
            named = ord(text) - ord("a")
            if named != i and named < len(choices):
                issues.append(
                    (
                        "bad_choices",
                        f"choice {show(choices[i])} is option ({letter(i)}) but reads as the letter of option "
                        f"({letter(named)}); put one-letter choices at their own letter or reword them",
                    )
                )
                return None
    return tuple(choices)


def _breaks_or_hides(ch: str) -> bool:
    """Control, format and unassigned characters, and the Unicode line/paragraph separators."""
    return has_hidden_characters(ch) or unicodedata.category(ch) in ("Zl", "Zp")


def _check_answer_fits_type(
    answer: str,
    answer_type: str,
    choices: tuple[str, ...] | None,
    had_choices: bool,
    issues: list[tuple[str, str]],
) -> None:
    from lrcal.calsets import scoring

    if answer_type == "multiple_choice":
        if choices is None and had_choices:
            return  # the choices problem is already reported
        if scoring.reference_choice_index(answer, choices) is None:
            if choices is None:
                issues.append(
                    (
                        "missing_choices",
                        f"multiple_choice answer {show(answer)} needs 'choices', or must be an option letter (A-Z)",
                    )
                )
            else:
                issues.append(
                    (
                        "answer_not_in_choices",
                        f"answer {show(answer)} is neither one of the {len(choices)} choices nor their letter",
                    )
                )
    elif answer_type == "number":
        if scoring.parse_reference_number(answer) is None:
            issues.append(("bad_answer", f"answer {show(answer)} is not a number (answer_type number)"))
    elif answer_type == "yes_no":
        if scoring.reference_yes_no(answer) is None:
            issues.append(("bad_answer", f"answer {show(answer)} must be yes or no (answer_type yes_no)"))
    elif not scoring.comparable(answer)[0]:
        issues.append(("bad_answer", f"answer {show(answer)} is only punctuation; nothing to compare"))


def _required_str(obj: dict, key: str, issues: list[tuple[str, str]]) -> str | None:
    if key not in obj:
        issues.append(("missing_field", f"missing field '{key}'"))
        return None
    value = obj[key]
    if not isinstance(value, str):
        issues.append(("wrong_type", f"{key} must be a string, got {json_type(value)}"))
        return None
    return value


def _finite(number: int | float) -> bool:
    """A JSON number that is a finite float (an integer literal of 400 digits is not: it has no float)."""
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


def _scan_values(obj: Any) -> Iterator[tuple[str, str]]:
    """Non-finite numbers and unpaired surrogates anywhere in the record (iterative: no recursion)."""
    stack: list[tuple[str, Any]] = [("", obj)]
    reported: set[str] = set()
    while stack:
        where, value = stack.pop()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _finite(value):
            if "non_finite" not in reported:
                reported.add("non_finite")
                shown_value = repr(value) if isinstance(value, float) else f"an integer of {value.bit_length()} bits"
                yield ("non_finite", f"{show(where or 'value')} is {shown_value}; NaN, Infinity and numbers "
                                     "beyond a float's range are not allowed")
        elif isinstance(value, str):
            if "surrogate" not in reported and not encodable(value):
                reported.add("surrogate")
                yield ("bad_value", f"{show(where or 'value')} contains an unpaired UTF-16 surrogate")
        elif isinstance(value, dict):
            for key, item in value.items():
                if "surrogate" not in reported and not encodable(key):
                    reported.add("surrogate")
                    yield ("bad_value", "a key contains an unpaired UTF-16 surrogate")
                stack.append((f"{where}.{key}" if where else str(key), item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))


def encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (no unpaired surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def show(value: str, limit: int = 60) -> str:
    """A short, one-line, escaped rendering of user text for messages."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return repr(text)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
