"""The text sent to a model for an example: the question, lettered options, and a
one-line instruction on the answer's form (so that scoring can read it)."""

from __future__ import annotations

from typing import Any

from lrcal.calsets.scoring import letter

INSTRUCTIONS = {
    "multiple_choice": "Answer with the option's letter.",
    "exact": "Answer with a single word, number or short phrase.",
    "number": "Answer with a number.",
    "anls": "Answer with a single word or short phrase.",
    "yes_no": "Answer yes or no.",
}


def build_prompt(example: Any) -> str:
    """``example``: an ``Example`` or a mapping with question, answer_type, choices."""
    get = example.get if isinstance(example, dict) else (lambda key: getattr(example, key, None))
    question = str(get("question")).strip()
    answer_type = get("answer_type")
    choices = get("choices")
    lines = [question]
    if choices:
        lines.append("Options:")
        lines.extend(f"({letter(i)}) {choice}" for i, choice in enumerate(choices))
    instruction = INSTRUCTIONS.get(answer_type or "")
    if instruction:
        lines.append(instruction)
    return "\n".join(lines)
