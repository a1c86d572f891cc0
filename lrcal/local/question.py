"""Reading a prompt the way a text-only reader can: what is asked (a word, a number, a
yes/no, one of some options), which words of the question might be printed in the image
(keys to look up), and whether the question is about text at all.

Generic English heuristics over the prompt -- never an example id, never a reference.
A prompt built by ``lrcal.calsets.build_prompt`` has the question, then ``Options:`` and
``(A) ...`` lines for multiple choice, then one ``Answer ...`` instruction line; plain
prompts from any client work too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Words that say how to ask, not what to look for: function words, question words, verbs
# of reading and showing, and the names of document parts and picture kinds.
STOPWORDS = frozenset(
    """
    a an the of for in on at to from by with and or as into onto over under than then that this these those
    it its it's there here is are was were be been being am do does did done has have had having can could
    should would will shall may might must what which who whom whose where when why how much many
    i you we they me us them my your our their one ones any some all each every other another such
    read reading transcribe say says said tell give given show shown shows write written print printed
    enter entered list listed label labelled labeled appear appears appearing find look looking up see
    seen according name named called mention mentioned contain contains containing display displayed
    state stated indicate indicated mark marked carry carries bear bears use used exactly precisely
    image picture photo photograph screenshot scan document page form field table column row entry
    entries value values box receipt invoice chart graph plot diagram bar bars pie slice legend axis
    sign text word words number numbers code letters letter line lines title heading item items amount
    price prices cost costs paid pay share percent percentage per cent big large largest main small
    whole following visible anywhere shown kind type sort please answer question option options
    high tall next biggest bigger larger smaller smallest prominent bold clear clearly alphanumeric numeric
    checked ticked selected crossed filled
    exact single only handwritten typed capital capitals uppercase lowercase font ink
    """.split()
)

COLOURS = {
    "red": (205, 35, 35),
    "green": (35, 145, 55),
    "blue": (35, 75, 205),
    "orange": (240, 140, 25),
    "purple": (125, 55, 165),
    "violet": (140, 70, 200),
    "brown": (125, 80, 40),
    "black": (25, 25, 25),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "yellow": (235, 205, 30),
    "pink": (235, 120, 175),
    "cyan": (30, 185, 205),
    "teal": (20, 128, 128),
    "navy": (25, 35, 110),
    "magenta": (205, 40, 160),
}

# What text a question asks to be read.
TEXT_OBJECTS = frozenset(
    "word words text number code serial plate ticket batch sign title heading caption label labels letters phrase".split()
)
READ_VERBS = re.compile(
    r"\b(read|transcribe|written|printed|says?|shown|shows|displayed|spelled|spelt|inscribed|appears?|text|words?|"
    r"number|code|serial|sign|caption|label)\b",
    re.IGNORECASE,
)
# Questions about how things look or where they are: a reader cannot tell, unless the
# question names the text it is about ("the biggest word", "the word in red").
VISUAL = re.compile(
    r"\b(colou?rs?|shapes?|shaped|objects?|bigger|smaller|larger|largest|smallest|biggest|tallest|shortest|"
    r"highest|lowest|peak|position|left|right|above|below|nearest|closest|furthest|farthest|corner|quadrant|"
    r"topmost|bottommost|leftmost|rightmost|describe|selected|checked|ticked|visible)\b",
    re.IGNORECASE,
)
# Questions whose answer is computed, compared or counted rather than printed.
COMPUTED = re.compile(
    r"\b(solve|satisf\w*|equations?|calculations?|calculate|compute|result|perimeter|circumference|hypotenuse|angles?|"
    r"degrees|fraction|shaded|sequence|replaces?|difference|exceeds?|increased?|decreased?|higher|lower|"
    r"combined|sum|average|true|correct|count|greater|fewer|more|less|compare|round(?:ed)?|decimals?)\b"
    r"|\bhow (many|long|far|old)\b|\bnext\b(?!\s+to\b)",
    re.IGNORECASE,
)
_YES_NO_START = re.compile(r"^(is|are|was|were|does|do|did|can|could|has|have|had|will|would|should)\b", re.IGNORECASE)
_INSTRUCTION = re.compile(r"^answer\b.*$", re.IGNORECASE)
_OPTION_LINE = re.compile(r"^\s*\(([A-Za-z])\)\s*(.+?)\s*$")
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’")
_NUMBER_QUESTION = re.compile(r"^(how (much|many)|what (number|amount))\b", re.IGNORECASE)
_AFTER_TEXT_NOUN = re.compile(
    r"\b(?:word|phrase|text|term|name|stamp(?:ed)?|reads?|says?|labell?ed)\s+([A-Za-z0-9][\w.-]*)", re.IGNORECASE
)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.,'’+/@&-]*")


@dataclass
class Query:
    """A parsed prompt."""

    question: str  # the question itself (no options, no instruction)
    options: list[str] = field(default_factory=list)  # multiple-choice texts, in letter order
    wants: str = "text"  # "choice" | "yes_no" | "number" | "text"

    @property
    def lower(self) -> str:
        return self.question.casefold()

    def mentions(self, *words: str) -> bool:
        return any(re.search(rf"\b{re.escape(w)}\b", self.lower) for w in words)

    def colour(self) -> str | None:
        """The colour the question names, if any (first one)."""
        found = [(m.start(), m.group(1)) for m in re.finditer(r"\b(" + "|".join(COLOURS) + r")\b", self.lower)]
        return min(found)[1] if found else None

    def quoted(self) -> list[str]:
        return [next(g for g in m.groups() if g is not None).strip() for m in _QUOTED.finditer(self.question)]

    @property
    def about_text(self) -> bool:
        """The question names a piece of text as its object (a word, a code, a sign...)."""
        return any(t in TEXT_OBJECTS for t in re.findall(r"[a-z]+", self.lower))

    @property
    def reads(self) -> bool:
        return bool(READ_VERBS.search(self.question))

    @property
    def computed(self) -> bool:
        return bool(COMPUTED.search(self.question))

    @property
    def visual(self) -> bool:
        return bool(VISUAL.search(self.question))


def parse_prompt(prompt: str) -> Query:
    """Split a prompt into question, options and the kind of answer wanted."""
    question_lines: list[str] = []
    options: list[str] = []
    instruction = ""
    in_options = False
    for raw in prompt.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.casefold().rstrip(":") in ("options", "choices"):
            in_options = True
            continue
        option = _OPTION_LINE.match(line)
        if option and (in_options or options) and option.group(1).upper() == chr(ord("A") + len(options)):
            options.append(option.group(2))
            continue
        if _INSTRUCTION.match(line) and (question_lines or options):
            instruction = line.casefold()
            continue
        if not options:
            question_lines.append(line)
    question = " ".join(question_lines).strip()
    query = Query(question=question, options=options)
    if options:
        query.wants = "choice"
    elif "yes or no" in instruction or ("answer" not in instruction and _YES_NO_START.match(question)):
        query.wants = "yes_no"
    elif re.search(r"\bwith (a|one) (number|numeric)", instruction) or _NUMBER_QUESTION.match(question):
        query.wants = "number"
    return query


# The longest key looked up, in words. Keys of questions are a few words (the built-in sets'
# longest is 3); every sub-run of a long run of words would be quadratic in its length (a
# 400-word prompt without stop words took a minute to parse), so longer runs give only
# their sub-runs of up to this many words. Quoted spans are kept whole.
MAX_KEY_WORDS = 8


def key_phrases(question: str) -> list[str]:
    """Candidate keys to look up in the text: quoted spans first, then every run of
    content words (not stop words) and its contiguous sub-runs of at most
    ``MAX_KEY_WORDS`` words, longest first. Linear in the question's length."""
    keys: list[str] = []
    for quoted in [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(question)]:
        quoted = quoted.strip()
        if quoted and quoted not in keys:
            keys.append(quoted)
    stripped = _QUOTED.sub(" | ", question)
    runs: list[list[str]] = [[]]
    for piece in re.split(r"([?!;:=()|]|,\s|\.\s|\.$)", stripped):
        if piece is None:
            continue
        if re.fullmatch(r"[?!;:=()|]|,\s|\.\s|\.", piece):
            runs.append([])
            continue
        for token in _TOKEN.findall(piece):
            token = re.sub(r"['’]s$", "", token).rstrip(".,'’")
            if not token:
                continue
            if token.casefold() in STOPWORDS or token.casefold() in COLOURS:
                runs.append([])
            else:
                runs[-1].append(token)
    seen = set(keys)
    grams: list[str] = []
    for run in runs:
        for size in range(min(len(run), MAX_KEY_WORDS), 0, -1):
            for start in range(0, len(run) - size + 1):
                gram = " ".join(run[start : start + size])
                if gram not in seen and len(re.sub(r"\W", "", gram)) >= 2:
                    seen.add(gram)
                    grams.append(gram)
    return keys + grams


def content_words(question: str) -> list[str]:
    """Words of the question that name something to look for (not stop words, colours or
    the kind of text asked for)."""
    words: list[str] = []
    seen: set[str] = set()
    for gram in key_phrases(question):
        for word in gram.split():
            if word.casefold() not in TEXT_OBJECTS and word not in seen:
                seen.add(word)
                words.append(word)
    return words


def probe_phrase(query: Query) -> str | None:
    """The word a yes/no question asks about ("Does the word 'otter' appear...?",
    "Is the page stamped PAID?", "Does it carry an OVERDUE stamp?")."""
    quoted = query.quoted()
    if quoted:
        return quoted[0]
    q = query.question
    match = _AFTER_TEXT_NOUN.search(q)
    if match and match.group(1).casefold() not in STOPWORDS:
        return match.group(1)
    match = re.search(r"\b(?:an?|the)\s+([A-Za-z0-9][\w.-]*)\s+(?:stamp|label|sign|word|mark)\b", q, re.IGNORECASE)
    if match and match.group(1).casefold() not in STOPWORDS:
        return match.group(1)
    capitals = [t for t in re.findall(r"\b[A-Z][A-Z0-9-]{2,}\b", q)]
    return capitals[0] if capitals else None
