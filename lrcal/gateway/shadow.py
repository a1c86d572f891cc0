"""Shadow traffic: a share of requests is also sent to a validated, not yet enabled candidate.
Its answer is logged (``traffic_shadow``) and never returned; its spend is kept apart from the
served spend. Which requests: a hash of the request id below the rate (every worker agrees).

Agreement compares the final answers: the text after the last "answer is" / "Answer:" marker
(else the whole answer), normalized as the exact-match scorer does (case, whitespace, quotes,
trailing punctuation, articles), so "The answer is Paris." agrees with "paris".
"""

from __future__ import annotations

import hashlib

from lrcal.calsets.scoring import after_marker, clean_raw, normalize_text


def sampled(request_id: str, rate: float) -> bool:
    if rate <= 0:
        return False
    return int(hashlib.sha256(request_id.encode("ascii")).hexdigest()[:8], 16) / 0x1_0000_0000 < rate


def final_answer(text: str) -> str:
    cleaned = clean_raw(text or "")
    return normalize_text(after_marker(cleaned) or cleaned)


def agrees(candidate: str | None, served: str | None) -> bool | None:
    """Whether two answers say the same (None when either is missing)."""
    if not candidate or not served:
        return None
    return final_answer(candidate) == final_answer(served)
