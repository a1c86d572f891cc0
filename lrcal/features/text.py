"""Text features: signed hashed word / character n-grams and question-type cues.

Hashing needs no fitted vocabulary, so a question never seen in training still maps into
the same fixed dimension. Hashes are crc32 (stable across processes, unlike ``hash``).
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from functools import lru_cache

import numpy as np

CUE_NAMES = (
    "text_absent",
    "log_chars",
    "log_words",
    "log_lines",
    "question_mark",
    "multiple_choice",
    "n_choices",
    "numeric_answer",
    "yes_no",
    "math_markup",
    "digit_fraction",
    "non_ascii_fraction",
    "cjk_fraction",
    "uppercase_fraction",
    "asks_count",
    "asks_read_text",
)

_WORD = re.compile(r"\w+", re.UNICODE)
_CHOICE_MARK = re.compile(r"(^|\s)\(?[A-Ea-e][\).:]\s|\bchoices?\s*:|\boptions?\s*:", re.IGNORECASE)
_NUMERIC = re.compile(
    r"\b(how many|how much|what is the (value|sum|area|perimeter|length|number|total|difference|ratio|percentage)|"
    r"calculate|compute|round|integer|decimal|float)\b",
    re.IGNORECASE,
)
_YES_NO = re.compile(r"^\s*(is|are|does|do|did|can|could|was|were|will|has|have|should)\b|\byes or no\b", re.IGNORECASE)
_MATH = re.compile(r"\$|\\frac|\\angle|\\mathrm|\\sqrt|\^|=|∠|△|√|π")
_COUNT = re.compile(r"\b(how many|count|number of)\b", re.IGNORECASE)
_READ = re.compile(r"\b(text|written|say|says|title|label|ocr|read|word|letters?|sign)\b", re.IGNORECASE)


@lru_cache(maxsize=1 << 18)
def signed_bucket(token: str, dim: int) -> int:
    """Signed bucket: +(b+1) or -(b+1), so 0 is never a valid result."""
    h = zlib.crc32(token.encode("utf-8", "surrogatepass"))
    bucket = (h >> 1) % dim
    return bucket + 1 if h & 1 else -(bucket + 1)


def normalize_text(text: str, max_chars: int) -> str:
    text = unicodedata.normalize("NFKC", text[: max_chars * 2])[:max_chars]
    return text.lower()


def hashed_ngrams(text: str, dim: int, ngrams: tuple[int, int], kind: str) -> np.ndarray:
    """Sublinear (log1p) term counts of signed-hashed n-grams, L2-normalized."""
    out = np.zeros(dim, dtype=np.float32)
    if not text:
        return out
    counts: dict[int, float] = {}
    lo, hi = ngrams
    if kind == "word":
        words = _WORD.findall(text)
        for n in range(lo, hi + 1):
            for i in range(len(words) - n + 1):
                key = signed_bucket("w" + str(n) + ":" + " ".join(words[i : i + n]), dim)
                counts[key] = counts.get(key, 0.0) + 1.0
    else:
        for word in _WORD.findall(text):
            padded = f" {word} "
            for n in range(lo, hi + 1):
                for i in range(len(padded) - n + 1):
                    key = signed_bucket("c:" + padded[i : i + n], dim)
                    counts[key] = counts.get(key, 0.0) + 1.0
    if not counts:
        return out
    for key, count in counts.items():
        out[abs(key) - 1] += math.copysign(math.log1p(count), key)
    norm = float(np.linalg.norm(out))
    if norm > 0:
        out /= norm
    return out


def text_cues(text: str | None, n_choices: int) -> np.ndarray:
    cues = np.zeros(len(CUE_NAMES), dtype=np.float32)
    if not text:
        cues[0] = 1.0
        cues[5] = 1.0 if n_choices else 0.0
        cues[6] = math.log1p(n_choices) / 2.0
        return cues
    n_chars = len(text)
    words = _WORD.findall(text)
    sample = text[:4000]
    n = max(len(sample), 1)
    digits = sum(ch.isdigit() for ch in sample)
    non_ascii = sum(ord(ch) > 127 for ch in sample)
    cjk = sum("\u4e00" <= ch <= "\u9fff" or "\u3040" <= ch <= "\u30ff" or "\uac00" <= ch <= "\ud7af" for ch in sample)
    upper = sum(ch.isupper() for ch in sample)
    cues[1] = math.log1p(n_chars) / 8.0
    cues[2] = math.log1p(len(words)) / 6.0
    cues[3] = math.log1p(text.count("\n")) / 3.0
    cues[4] = 1.0 if "?" in text or "？" in text else 0.0
    cues[5] = 1.0 if n_choices or _CHOICE_MARK.search(sample) else 0.0
    cues[6] = math.log1p(n_choices) / 2.0
    cues[7] = 1.0 if _NUMERIC.search(sample) else 0.0
    cues[8] = 1.0 if _YES_NO.search(sample) else 0.0
    cues[9] = min(len(_MATH.findall(sample)) / 5.0, 1.0)
    cues[10] = digits / n
    cues[11] = non_ascii / n
    cues[12] = cjk / n
    cues[13] = upper / n
    cues[14] = 1.0 if _COUNT.search(sample) else 0.0
    cues[15] = 1.0 if _READ.search(sample) else 0.0
    return cues
