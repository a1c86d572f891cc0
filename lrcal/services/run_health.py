"""What a stored outcome measures, and when a run's outcomes can be trusted.

* An **endpoint error** (timeout, HTTP error, refused connection, unreadable response, an image
  missing from the home) is not an answer. It is excluded from accuracy, router training and
  token fits, and reported as an error rate; it is never counted as a wrong answer.
  (``imported_error`` rows of outcome logs keep the score their log gives them.)
* A **non-answer** is a reply the scorer could not read an answer of the example's type from
  (empty, or no option / number / yes-no in it). It is scored 0: the model did reply.

A run where half the requests failed, or half the replies are non-answers, says more about the
endpoint (a wrong key, a wrong model behind the URL, images not reaching it) than about the
model, so it never makes a model calibrated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from lrcal.store import IMPORTED_ERROR  # an outcome log's own error flag: the log's score stands

MISSING_IMAGE = "missing_image"  # the example's image file is gone from the home: nothing was sent
MAX_ERROR_SHARE = 0.5
MAX_NON_ANSWER_SHARE = 0.5


def is_endpoint_error(row: dict) -> bool:
    """The request failed: no answer was measured (excluded, not scored 0)."""
    kind = row.get("error_kind")
    return bool(kind) and kind != IMPORTED_ERROR


def is_measurement(row: dict) -> bool:
    return not is_endpoint_error(row)


def is_non_answer(row: dict) -> bool:
    """A reply without a readable answer (imported outcomes have no reply: never non-answers)."""
    return not row.get("error_kind") and row.get("raw_answer") is not None and row.get("parsed_answer") is None


def measured(rows: Iterable[dict]) -> list[dict]:
    return [row for row in rows if is_measurement(row)]


@dataclass(frozen=True)
class RunHealth:
    n: int
    errors: int
    non_answers: int
    error_causes: tuple[tuple[str, int], ...]  # (error kind, count), most frequent first

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0

    @property
    def non_answer_rate(self) -> float:
        answered = self.n - self.errors
        return self.non_answers / answered if answered else 0.0

    @property
    def trusted(self) -> bool:
        return self.n > 0 and self.problem is None

    @property
    def problem(self) -> str | None:
        """Why these outcomes cannot calibrate a model (one sentence), or None."""
        if self.n and self.error_rate >= MAX_ERROR_SHARE:
            causes = ", ".join(f"{kind} {count}" for kind, count in self.error_causes)
            return f"{self.errors} of {self.n} requests failed ({causes})"
        if self.n and self.non_answer_rate >= MAX_NON_ANSWER_SHARE:
            return (
                f"{self.non_answers} of {self.n - self.errors} replies had no readable answer (is the endpoint "
                "serving the model you registered, and does it receive the images?)"
            )
        return None

    def to_dict(self) -> dict:
        return {"n": self.n, "errors": self.errors, "error_rate": self.error_rate, "non_answers": self.non_answers,
                "non_answer_rate": self.non_answer_rate, "trusted": self.trusted, "problem": self.problem}  # fmt: skip


def run_health(rows: Iterable[dict]) -> RunHealth:
    rows = list(rows)
    kinds = Counter(row["error_kind"] for row in rows if is_endpoint_error(row))
    return RunHealth(
        n=len(rows),
        errors=sum(kinds.values()),
        non_answers=sum(1 for row in rows if is_non_answer(row)),
        error_causes=tuple(kinds.most_common()),
    )
