"""Answering a question from recognised text only.

The answerer sees the question and what the OCR engine read (text, boxes, and the ink
colour of a box on request) -- nothing else: no example id, no manifest, no reference
answer. It answers what a text reader can:

* read the main word / number / code / sign text (the most prominent text);
* look up the value next to a key (same box after the key, the box to its right on the
  same row, the box below it; a chart's printed value above its label) and a table cell
  (row key x column header), or the row whose cell holds a value;
* yes/no: is a word written (stamped, printed) in the image;
* multiple choice whose options are words: the option that is written in the image;
* the title (the largest text near the top), a word printed in a given ink colour, and
  the number of priced lines on a receipt.

Anything else -- positions, colours of things, shapes, counts of objects, comparisons,
sums -- gets a short refusal: an honest weak specialist.
"""

from __future__ import annotations

import colorsys
import re
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from lrcal.local.layout import Layout, Placed, TextBox
from lrcal.local.question import COLOURS, STOPWORDS, Query, content_words, key_phrases, parse_prompt, probe_phrase
from lrcal.local.textmatch import Match, allowed_errors, find, plain, similarity

DECLINE = "I can only read text; I cannot tell."
NO_TEXT = "I cannot read any text in this image, so I cannot tell."
NO_IMAGE = "No image was sent; I can only read text in images."

InkFn = Callable[[TextBox], "tuple[float, float, float] | None"]
MarkFn = Callable[[TextBox], "bool | None"]

_NUMBER = re.compile(r"[-+]?[$€£]?\s?\d[\d,]*(?:\.\d+)?\s?%?")
_MONEY_END = re.compile(r"\d+[.,]\d{2}\s*$")
_TOTAL_WORDS = re.compile(r"total|tax|vat|change|cash|card|balance|due|discount|tip|paid|amount", re.IGNORECASE)
_SEPARATORS = " \t:=.-–—|>"
# Keys (and loose words) of one question looked up in the text, at most: each is matched
# against every box, so a long prompt would cost seconds per hundred words. Questions have
# a handful (the built-in sets' most is 9 keys; a run of 11 words without a stop word gives 60);
# the first ones, in key order, are kept.
MAX_LOOKUP_KEYS = 64
MAX_LOOSE_WORDS = 32


@dataclass(frozen=True)
class Reading:
    """What the engine read from one image."""

    layout: Layout
    ink: InkFn | None = None  # ink colour of a box, from the pixels
    marked: MarkFn | None = None  # is the check box left of a label marked (None: no box)


@dataclass(frozen=True)
class KeyHit:
    key: str
    placed: Placed
    match: Match
    quoted: bool

    @property
    def rank(self) -> tuple:
        text = self.placed.text
        ends_clean = self.match.end >= len(text) or not text[self.match.end].isalnum()
        return (round(self.match.error_rate, 3), not ends_clean, self.match.start > 0, -self.match.needle_len)


@dataclass(frozen=True)
class Reply:
    """An answer, and whether it is settled: False when a text question's text was not
    found in this reading (another reading of the image, e.g. at another scale, may find it)."""

    text: str
    settled: bool = True


def answer_prompt(prompt: str, reading: Reading | None) -> str:
    """The answer text to one prompt (question + options + instruction)."""
    return reply(parse_prompt(prompt), reading).text


def intent(query: Query) -> str | None:
    """What kind of text question this is, from the question alone; None: not a question
    a text reader can answer (positions, looks, counts of things, sums...)."""
    if query.wants == "number" and re.search(r"\bhow many\b", query.lower):
        return "count_lines" if _asks_priced_lines(query) else None
    if query.computed:
        return None
    if query.wants == "choice":
        return "choice" if (query.about_text or query.reads) and not (query.visual and not query.about_text) else None
    if query.wants == "yes_no":
        if query.mentions("checked", "ticked", "selected", "crossed", "marked", "filled"):
            return "mark"
        if query.about_text or query.reads or query.mentions("stamp", "stamped", "written", "printed"):
            return "presence" if probe_phrase(query) else None
        return None
    colour = query.colour()
    if colour and query.about_text and not re.search(r"\b(what|which) colou?r\b", query.lower):
        return "colour_word"
    if query.visual and not query.about_text:
        return None
    if query.mentions("title", "heading", "headline"):
        return "title"
    if content_words(query.question):
        return "lookup"
    return "read" if query.reads else None


def reply(query: Query, reading: Reading | None) -> Reply:
    kind = intent(query)
    if kind is None:
        return Reply(DECLINE)
    if reading is None:
        return Reply(NO_IMAGE)
    layout = reading.layout
    if not layout.boxes:
        return Reply(NO_TEXT, settled=False)
    if kind == "presence":
        probe = probe_phrase(query) or ""
        if _found_anywhere(probe, layout):
            return Reply(f'Yes, "{probe}" is written in the image.')
        return Reply(f'No, "{probe}" is not written in the image.', settled=False)
    if kind == "count_lines":
        text = _count_priced_lines(layout)
    elif kind == "choice":
        text = _choose_written_option(query, layout)
    elif kind == "mark":
        text = _selection_mark(query, reading)
    elif kind == "colour_word":
        text = _word_in_colour(query.colour() or "", reading)
    elif kind == "title":
        text = _title(layout)
    elif kind == "lookup":
        # a key that is not found is not answered with whatever text is biggest
        text = _look_up(query, layout)
    else:
        text = _read_main_text(query, layout)
    return Reply(text) if text else Reply(DECLINE, settled=False)


# ---- reading the main text ---------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    parts: tuple[Placed, ...]

    @property
    def text(self) -> str:
        return " ".join(p.text.strip() for p in self.parts).strip()

    @property
    def height(self) -> float:
        return statistics.median(p.h for p in self.parts)

    @property
    def confidence(self) -> float:
        return statistics.fmean(p.box.confidence for p in self.parts)

    @property
    def prominence(self) -> float:
        return self.height * (0.5 + 0.5 * self.confidence)

    @property
    def top(self) -> float:
        return min(p.y0 for p in self.parts)


def _phrases(layout: Layout) -> list[Phrase]:
    return [Phrase(tuple(parts)) for parts in layout.phrases()]


def _read_main_text(query: Query, layout: Layout) -> str | None:
    phrases = [p for p in _phrases(layout) if plain(p.text)]
    wants_code = query.mentions("code", "serial", "plate", "ticket", "ref", "reference", "batch", "id", "alphanumeric")
    if query.wants == "number" or (query.mentions("number") and not wants_code):
        numbered = [p for p in phrases if re.search(r"\d", p.text)]
        if not numbered:
            return None
        best = max(numbered, key=lambda p: p.prominence)
        return _number_in(best.text, longest=True)
    if wants_code:
        coded = [p for p in phrases if len(plain(p.text)) >= 4 and plain(p.text) not in _LABEL_WORDS]
        if not coded:
            return None
        best = max(coded, key=lambda p: (p.prominence, bool(re.search(r"\d", p.text))))
        return re.sub(r"\s+", "", best.text).strip(".,;:")
    if not phrases:
        return None
    best = max(phrases, key=lambda p: p.prominence)
    return best.text.strip(" .,;:")


_LABEL_WORDS = frozenset({"code", "serial", "ref", "ticket", "plate", "batch", "no", "number", "id"})


def _number_in(text: str, longest: bool = False) -> str | None:
    found = [m.group(0).strip() for m in _NUMBER.finditer(text)]
    found = [f for f in found if re.search(r"\d", f)]
    if not found:
        return None
    if longest:
        return max(found, key=lambda f: len(re.sub(r"\D", "", f)))
    return found[0]


def _title(layout: Layout) -> str | None:
    phrases = [p for p in _phrases(layout) if len(plain(p.text)) >= 2]
    top = [p for p in phrases if p.top <= 0.35 * layout.height] or phrases
    if not top:
        return None
    tallest = max(p.height for p in top)
    title = min((p for p in top if p.height >= 0.85 * tallest), key=lambda p: p.top)
    return title.text.strip(" .,;:")


# ---- yes / no: is a word written ---------------------------------------------------------


def _found_anywhere(needle: str, layout: Layout) -> bool:
    limit = allowed_errors(len(plain(needle)))
    texts = [p.text for p in layout.boxes] + [ph.text for ph in _phrases(layout) if len(ph.parts) > 1]
    for text in texts:
        match = find(needle, text)
        if match is not None and match.cost <= limit and _starts_word(text, match):
            return True
    return False


def _starts_word(text: str, match: Match) -> bool:
    return match.start == 0 or not text[match.start - 1].isalnum()


# ---- yes / no: is a check box marked ---------------------------------------------------


def _selection_mark(query: Query, reading: Reading) -> str | None:
    """"Is the 'Gift wrap' box checked?": find the label, look at the box left of it."""
    if reading.marked is None:
        return None
    for hit in _key_hits(query, reading.layout):
        marked = reading.marked(hit.placed.box)
        if marked is None:
            continue
        return f'Yes, "{hit.placed.text}" is marked.' if marked else f'No, "{hit.placed.text}" is not marked.'
    return None


# ---- multiple choice: which option is written ----------------------------------------------


def _choose_written_option(query: Query, layout: Layout) -> str | None:
    if not (query.about_text or query.reads) or (query.visual and not query.about_text):
        return None
    texts = [(p.text, p.h) for p in layout.boxes] + [(ph.text, ph.height) for ph in _phrases(layout) if len(ph.parts) > 1]
    scored: list[tuple[float, float, int]] = []
    for i, option in enumerate(query.options):
        if not plain(option):
            continue
        best: tuple[float, float] | None = None
        for text, height in texts:
            match = find(option, text)
            if match is None or not _starts_word(text, match):
                continue
            # a whole box that is the option beats the option inside a longer text
            extra = max(0, len(plain(text)) - match.needle_len) / max(1, match.needle_len)
            candidate = (match.error_rate + 0.1 * min(extra, 2.0), -height)
            if best is None or candidate < best:
                best = candidate
        if best is not None:
            scored.append((best[0], best[1], i))
    if not scored:
        return None
    scored.sort()
    error, _, index = scored[0]
    if error > 0.45:
        return None
    if len(scored) > 1 and scored[1][0] - error < 0.1 and scored[1][0] <= 0.2:
        return None  # two options written equally well: cannot tell which is meant
    letter = chr(ord("A") + index)
    return f"({letter}) {query.options[index]}"


# ---- a word in a given ink colour ----------------------------------------------------------


def _word_in_colour(colour: str, reading: Reading) -> str | None:
    if reading.ink is None:
        return None
    best: tuple[float, Placed] | None = None
    for placed in reading.layout.boxes:
        if len(plain(placed.text)) < 2:
            continue
        ink = reading.ink(placed.box)
        if ink is None:
            continue
        distance = colour_distance(ink, COLOURS[colour])
        if best is None or distance < best[0]:
            best = (distance, placed)
    if best is None or best[0] > 3.0:
        return None
    return best[1].text.strip(" .,;:")


def colour_distance(ink: tuple[float, float, float], target: tuple[int, int, int]) -> float:
    """How far an ink is from a named colour, in hue first: blur and thin strokes wash a
    colour out towards the paper (lighter, less saturated) but keep its hue."""
    h1, s1, v1 = colorsys.rgb_to_hsv(*(c / 255.0 for c in ink))
    h2, s2, v2 = colorsys.rgb_to_hsv(*(c / 255.0 for c in target))
    if s2 < 0.15:  # black, grey, white: no hue, judged by saturation and brightness
        return 3.0 * s1 + abs(v1 - v2) * 2.0
    if s1 < 0.08:
        return 3.0 + abs(v1 - v2)  # a grey ink is not a colour
    hue = abs(h1 - h2) * 360.0
    hue = min(hue, 360.0 - hue)
    return hue / 30.0 + 0.75 * abs(v1 - v2)


# ---- receipts: how many priced lines -------------------------------------------------------


def _asks_priced_lines(query: Query) -> bool:
    """"How many items are listed on the receipt?" (not "how many birds...")."""
    return bool(
        re.search(r"\b(items?|products?|articles?|lines?|entries|positions)\b", query.lower)
        and query.mentions("receipt", "bought", "purchased", "listed", "ordered", "invoice", "bill")
    )


def _count_priced_lines(layout: Layout) -> str | None:
    rows = layout.rows
    totals = [i for i, row in enumerate(rows) if any(_TOTAL_WORDS.search(p.text) for p in row)]
    if not totals:
        return None
    count = 0
    for row in rows[: totals[0]]:
        texts = [p.text for p in row]
        if len(row) >= 2 and _MONEY_END.search(texts[-1]) and re.search(r"[A-Za-z]{2}", " ".join(texts[:-1])):
            count += 1
        elif len(row) == 1 and re.search(r"[A-Za-z]{2}.*\s\d+[.,]\d{2}\s*$", texts[0]):
            count += 1  # item and price read as one box
    return str(count) if count else None


# ---- key lookups -------------------------------------------------------------------------


def _key_hits(query: Query, layout: Layout) -> list[KeyHit]:
    """For each candidate key of the question, its best occurrence in the text; keys that
    are part of a longer found key are dropped."""
    quoted = set(query.quoted())
    hits: list[KeyHit] = []
    for key in key_phrases(query.question)[:MAX_LOOKUP_KEYS]:
        key_len = len(plain(key))
        limit = allowed_errors(key_len)
        best: KeyHit | None = None
        for placed in layout.boxes:
            match = find(key, placed.text)
            if match is None or match.cost > limit or not _starts_word(placed.text, match):
                continue
            if key_len <= 3 and match.end < len(placed.text) and placed.text[match.end].isalnum():
                continue  # a short key must be a whole word
            hit = KeyHit(key, placed, match, key in quoted)
            if best is None or hit.rank < best.rank:
                best = hit
        if best is not None:
            hits.append(best)
    kept: list[KeyHit] = []
    for hit in sorted(hits, key=lambda h: (not h.quoted, -len(plain(h.key)))):
        if any(plain(hit.key) in plain(k.key) for k in kept):
            continue
        if any(k.placed.index == hit.placed.index for k in kept):
            continue
        kept.append(hit)
    return kept


def _look_up(query: Query, layout: Layout) -> str | None:
    hits = _key_hits(query, layout)
    if not hits:
        return None
    wants_number = query.wants == "number"
    if re.match(r"^\s*(which|whose|who)\b", query.lower) and not wants_number:
        found = _row_of_value(hits, layout)
        if found:
            return found
    if len(hits) == 1:
        hits = hits + _loose_headers(query, hits[0], layout)
    if len(hits) >= 2:
        found = _table_cell(hits, layout, wants_number)
        if found:
            return found
        hits = [h for h in hits if h.match.cost <= allowed_errors(h.match.needle_len)]
    for hit in sorted(hits, key=lambda h: (not h.quoted, h.rank)):
        value = _value_next_to(hit, layout, wants_number)
        if value:
            return value
    return None


def _value_next_to(hit: KeyHit, layout: Layout, wants_number: bool) -> str | None:
    rest = hit.placed.text[hit.match.end :].lstrip(_SEPARATORS).strip()
    if plain(rest):  # "Key: value" read as one box: that is the value, readable or not
        return _as_answer(rest, wants_number)
    candidates = [p.text for p in layout.right_of(hit.placed)]
    candidates += [p.text for p in layout.below(hit.placed, max_rows=1.5)]
    if wants_number:
        candidates += [p.text for p in layout.above_in_column(hit.placed)[:3]]
    for text in candidates:
        value = _as_answer(text, wants_number)
        if value:
            return value
    return None


def _as_answer(text: str, wants_number: bool) -> str | None:
    if wants_number:
        return _number_in(text)
    value = text.strip(" .,;:|")
    return value if plain(value) else None


def _loose_headers(query: Query, hit: KeyHit, layout: Layout) -> list[KeyHit]:
    """Column headers misread worse than a key may be ("Ata" for "Area"): a question word
    that is not found elsewhere, read loosely against whole boxes above the row key."""
    out: list[KeyHit] = []
    found = plain(hit.key)
    for word in content_words(query.question)[:MAX_LOOSE_WORDS]:
        if len(plain(word)) < 3 or plain(word) in found:
            continue
        best: tuple[float, Placed] | None = None
        for placed in layout.boxes:
            if placed.cy >= hit.placed.y0 or layout.same_row(placed, hit.placed):
                continue
            score = similarity(word, placed.text)
            if score >= 0.5 and (best is None or score > best[0]):
                best = (score, placed)
        if best is not None:
            cost = (1.0 - best[0]) * len(plain(word))
            out.append(KeyHit(word, best[1], Match(cost, 0, len(best[1].text), len(plain(word))), False))
    return out


def _table_cell(hits: Sequence[KeyHit], layout: Layout, wants_number: bool) -> str | None:
    """Row key x column header: the two best keys on different rows, the upper one the header."""
    for a in hits:
        for b in hits:
            if a is b or layout.same_row(a.placed, b.placed) or a.placed.cy >= b.placed.cy:
                continue
            cell = layout.cell(b.placed, a.placed)  # b's row, a's column
            if cell is not None:
                value = _as_answer(cell.text, wants_number)
                if value:
                    return value
    return None


def _row_of_value(hits: Sequence[KeyHit], layout: Layout) -> str | None:
    """"Which row has 465 in the Area column?": the first cell of the row holding a value."""
    for hit in sorted(hits, key=lambda h: (not re.search(r"\d", h.key), h.rank)):
        first = layout.leftmost_in_row(hit.placed)
        if first.index == hit.placed.index:
            continue  # the key is itself a row name
        text = first.text.strip(" .,;:|")
        if plain(text) and plain(text).casefold() not in STOPWORDS:
            return text
    return None
