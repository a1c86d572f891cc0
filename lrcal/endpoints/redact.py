"""Remove an API key from text an endpoint sent back, in every form a server may echo it.

A careless server may repeat the key in an error body or even in an answer: as sent, in
another case, URL-encoded (``%2B``, ``+`` for a space) or base64-encoded (``Basic`` auth
headers, tokens inside JSON), and each of these JSON-escaped (PHP writes ``/`` as ``\\/``, Gson
``=`` as ``\\u003d``). Each form is replaced by ``[redacted]`` before the text is stored,
printed or logged.
"""

from __future__ import annotations

import base64
import functools
import re
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4  # shorter values would redact ordinary words
MIN_BASE64_CORE = 8  # base64 runs shorter than this are too likely to occur by chance
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


def redact(text: str, secret: str | None) -> str:
    """``text`` with every form of ``secret`` (and any bearer token) replaced: the value as
    stored, and stripped, as it is sent (a key variable ending in a newline is echoed without it)."""
    for form in (secret, secret.strip()) if secret else ():
        if len(form) >= MIN_SECRET_CHARS:
            text = _pattern(form).sub(REDACTED, text)
    return _BEARER.sub(r"\1" + REDACTED, text)


@functools.lru_cache(maxsize=8)
def _pattern(secret: str) -> re.Pattern[str]:
    textual = {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}
    encoded = _base64_cores(secret.encode("utf-8"))
    # Textual forms match in any case (``%2b`` = ``%2B``); base64 is case-sensitive.
    parts = [f"(?i:{_json_tolerant(form)})" for form in sorted(textual, key=len, reverse=True)]
    parts += [_json_tolerant(form) for form in sorted(encoded, key=len, reverse=True)]
    return re.compile("|".join(parts))


_SHORT_ESCAPES = {"/": "\\/", '"': '\\"', "\\": "\\\\"}


def _json_tolerant(form: str) -> str:
    """A pattern for ``form`` as is or inside a raw JSON string: a JSON encoder may write any
    character as ``\\uXXXX`` (letters and digits too), and ``/``, ``"``, ``\\`` short (``\\/``). A
    body redacted before it is decoded -- or one cut too short to decode -- would otherwise keep
    the key, readable after one unescape."""
    out = []
    for ch in form:
        alternatives = [re.escape(ch)]
        if ord(ch) <= 0xFFFF:
            hex_digits = f"{ord(ch):04x}"
            alternatives.append("\\\\u" + "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in hex_digits))
        if ch in _SHORT_ESCAPES:
            alternatives.append(re.escape(_SHORT_ESCAPES[ch]))
        out.append(alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")")
    return "".join(out)


def _base64_cores(data: bytes) -> set[str]:
    """The base64 characters that depend only on ``data``, wherever it starts in a larger
    encoded string (three alignments), in the standard and the URL-safe alphabet."""
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        start = -(-offset // 3) * 4  # the first 4-character group that holds only secret bytes
        end = (offset + len(data)) // 3 * 4
        core = encoded[start:end]
        if len(core) >= MIN_BASE64_CORE:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores
