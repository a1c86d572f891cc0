"""Approximate text search for OCR output: case-, space- and punctuation-insensitive, with
a few character errors allowed (recognisers drop spaces and confuse 0/O, 1/l, rn/m...)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Pairs a recogniser confuses often cost half an edit.
_CONFUSABLE = {frozenset(p) for p in ("0o", "1l", "1i", "li", "5s", "8b", "2z", "6g", "9g", "vy", "uv", "ce", "ao", "ec")}


def normalize(text: str) -> tuple[str, list[int]]:
    """Letters and digits only, case-folded; plus each kept character's index in ``text``."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):  # per character, so indices stay those of ``text``
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isalnum():
                out.append(c)
                where.append(i)
    return "".join(out), where


def plain(text: str) -> str:
    return normalize(text)[0]


def _sub_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.5 if frozenset((a, b)) in _CONFUSABLE else 1.0


@dataclass(frozen=True)
class Match:
    """Where a needle was found in a text: edit cost, and the span in the *original* text."""

    cost: float
    start: int  # index in the original text of the first matched character
    end: int  # index in the original text just after the last matched character
    needle_len: int

    @property
    def error_rate(self) -> float:
        return self.cost / max(1, self.needle_len)


def find(needle: str, text: str) -> Match | None:
    """Best approximate occurrence of ``needle`` anywhere in ``text`` (semi-global edit
    distance: free start and end in ``text``). None when either is empty after normalizing."""
    n, _ = normalize(needle)
    t, where = normalize(text)
    if not n or not t:
        return None
    m = len(n)
    # column-wise DP over text positions: cost[i] = best cost of n[:i] ending at this position
    previous = [float(i) for i in range(m + 1)]
    start_prev = [0] * (m + 1)
    best_cost, best_end, best_start = previous[m], 0, 0
    for j in range(1, len(t) + 1):
        current = [0.0] * (m + 1)
        start_cur = [j] * (m + 1)  # matching nothing of the needle may start anywhere
        tj = t[j - 1]
        for i in range(1, m + 1):
            sub = previous[i - 1] + _sub_cost(n[i - 1], tj)
            dele = current[i - 1] + 1.0  # needle char missing in the text
            ins = previous[i] + 1.0  # extra text char
            if sub <= dele and sub <= ins:
                current[i], start_cur[i] = sub, start_prev[i - 1]
            elif dele <= ins:
                current[i], start_cur[i] = dele, start_cur[i - 1]
            else:
                current[i], start_cur[i] = ins, start_prev[i]
        if current[m] < best_cost:
            best_cost, best_end, best_start = current[m], j, start_cur[m]
        previous, start_prev = current, start_cur
    if best_end == 0:
        return None
    start = where[min(best_start, len(where) - 1)]
    end = where[best_end - 1] + 1
    return Match(best_cost, start, end, m)


def similarity(a: str, b: str) -> float:
    """1 - edit distance / longer length, on normalized text (1 = same, 0 = nothing shared)."""
    x, y = plain(a), plain(b)
    if not x and not y:
        return 1.0
    if not x or not y:
        return 0.0
    return 1.0 - _distance(x, y) / max(len(x), len(y))


def _distance(a: str, b: str) -> float:
    previous = [float(i) for i in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        current = [float(i)]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + _sub_cost(ca, cb)))
        previous = current
    return previous[-1]


def allowed_errors(length: int) -> float:
    """How many edits a needle of this many characters may need and still count as found."""
    if length <= 3:
        return 0.0
    if length <= 5:
        return 1.0
    return max(1.0, round(length * 0.2, 1))
