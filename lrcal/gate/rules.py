"""A gate rule: a threshold, a measured interval, and a verdict that only the interval decides.

A rule that passes when its value is *above* the threshold passes when the whole interval is
(low ≥ threshold) and fails when the whole interval is below (high < threshold); in between
it is undecided. Rules that pass *below* their threshold mirror this. A rule belongs to one or
both paths (gain, saving); a path passes when every one of its rules passes, fails as soon as
one fails, and the gate accepts when a path passes, rejects when both fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from lrcal.gate.intervals import Interval

PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"
GAIN, SAVING = "gain", "saving"
PATHS = (GAIN, SAVING)
ABOVE, BELOW = "above", "below"


@dataclass(frozen=True)
class Rule:
    key: str
    label: str  # what is measured, in words
    paths: tuple[str, ...]
    threshold: float
    direction: str  # ABOVE: passes when the value is at or above the threshold; BELOW: at or below
    interval: Interval
    unit: str  # "points" (score difference), "ratio" (with / without), "share" (a proportion)
    verdict: str = UNDECIDED
    decided_at: int | None = None  # examples seen at the look that decided it
    detail: str = ""  # extra words (the prediction check's groups, the saving's side)
    options: tuple["Rule", ...] = field(default=(), repr=False)  # an either-or rule's alternatives

    def as_dict(self) -> dict:
        return {
            "key": self.key, "label": self.label, "paths": list(self.paths), "threshold": self.threshold,
            "direction": self.direction, "unit": self.unit, "interval": self.interval.as_dict(),
            "verdict": self.verdict, "decided_at": self.decided_at, "detail": self.detail,
            "threshold_text": threshold_text(self), "measured_text": measured_text(self),
        }  # fmt: skip


def judged(rule: Rule, n: int) -> Rule:
    """``rule`` with the verdict its interval gives (decided at ``n`` examples when it is)."""
    lo, hi, t = rule.interval.low, rule.interval.high, rule.threshold
    if math.isnan(rule.interval.estimate):
        verdict = UNDECIDED
    elif rule.direction == ABOVE:
        verdict = PASS if lo >= t else FAIL if hi < t else UNDECIDED
    else:
        verdict = PASS if hi <= t else FAIL if lo > t else UNDECIDED
    return replace(rule, verdict=verdict, decided_at=n if verdict != UNDECIDED else None)


def either(key: str, label: str, paths: tuple[str, ...], options: tuple[Rule, ...], n: int) -> Rule:
    """A rule that passes when one of ``options`` passes and fails when all of them fail;
    it reports the option closest to passing."""
    judged_options = tuple(judged(o, n) for o in options)
    verdicts = [o.verdict for o in judged_options]
    verdict = PASS if PASS in verdicts else FAIL if all(v == FAIL for v in verdicts) else UNDECIDED
    shown = next((o for o in judged_options if o.verdict == verdict), judged_options[0])
    if verdict == UNDECIDED:
        shown = next(o for o in judged_options if o.verdict == UNDECIDED)
    return replace(shown, key=key, label=label, paths=paths, verdict=verdict,
                   decided_at=n if verdict != UNDECIDED else None, detail=shown.label,
                   options=judged_options)  # fmt: skip


def keep_decided(previous: dict[str, Rule], current: list[Rule]) -> list[Rule]:
    """Each rule's first decision stands: the spending plan charged its error rate at that look.
    A rule that only ever passes "so far" (the prediction check) is re-judged at every look."""
    out = []
    for rule in current:
        before = previous.get(rule.key)
        out.append(before if before is not None and before.verdict != UNDECIDED and before.key != "prediction" else rule)
    return out


def path_verdict(rules: list[Rule], path: str) -> str:
    verdicts = [r.verdict for r in rules if path in r.paths]
    if FAIL in verdicts:
        return FAIL
    return PASS if verdicts and all(v == PASS for v in verdicts) else UNDECIDED


def gate_verdict(rules: list[Rule]) -> tuple[str, str | None]:
    """(decision, the path that decided): validated by the first passing path, rejected when
    both fail ("both"), else undecided."""
    verdicts = {path: path_verdict(rules, path) for path in PATHS}
    for path in PATHS:
        if verdicts[path] == PASS:
            return "validated", path
    if all(v == FAIL for v in verdicts.values()):
        return "rejected", "both"
    return "undecided", None


def examples_needed(rules: list[Rule], n: int, z: float) -> float:
    """About how many examples in all would settle the gate, were the estimates to hold: each
    undecided rule heads for the verdict its estimate is on the side of, its interval shrinking
    like 1/sqrt(n); a path fails with its first failing rule or passes with its last passing one;
    the gate is settled by its first passing path, or by the last of its paths to fail
    (inf when an estimate sits exactly on its threshold)."""
    outcomes = {}
    for path in PATHS:
        mine = [r for r in rules if path in r.paths]
        if any(r.verdict == FAIL for r in mine):
            outcomes[path] = (FAIL, float(n))
            continue
        heading = [_heading(r, n, z) for r in mine if r.verdict == UNDECIDED]
        fails = [need for verdict, need in heading if verdict == FAIL]
        if fails:
            outcomes[path] = (FAIL, min(fails))
        else:
            outcomes[path] = (PASS, max([need for _, need in heading], default=float(n)))
    passing = [need for verdict, need in outcomes.values() if verdict == PASS]
    if passing:
        return min(passing)
    return max(need for _, need in outcomes.values())


def _heading(rule: Rule, n: int, z: float) -> tuple[str, float]:
    """(the verdict an undecided rule heads for, the examples it needs to reach it)."""
    if rule.options:  # either-or: passes with its quickest passing option, fails with its slowest
        headings = [_heading(o, n, z) for o in rule.options]
        passes = [need for verdict, need in headings if verdict == PASS]
        return (PASS, min(passes)) if passes else (FAIL, max(need for _, need in headings))
    interval, t = rule.interval, rule.threshold
    if rule.unit == "ratio":
        if not (interval.estimate > 0 and t > 0):
            return UNDECIDED, math.inf
        estimate, threshold, se = math.log(interval.estimate), math.log(t), interval.se
    elif rule.unit == "share":  # Wilson: the spread of a proportion at the threshold
        estimate, threshold, se = interval.estimate, t, math.sqrt(t * (1 - t) / max(n, 1))
    else:
        estimate, threshold, se = interval.estimate, t, interval.se
    if not (math.isfinite(estimate) and math.isfinite(se)) or estimate == threshold:
        return UNDECIDED, math.inf
    above = estimate > threshold
    verdict = PASS if above == (rule.direction == ABOVE) else FAIL
    return verdict, n * (z * se / abs(estimate - threshold)) ** 2


# ---- words ----------------------------------------------------------------------------


def threshold_text(rule: Rule) -> str:
    sign = "≥" if rule.direction == ABOVE else "≤"
    if rule.unit == "share":
        return f"{sign} {rule.threshold:.0%}" if round(rule.threshold, 2) == rule.threshold else f"{sign} {rule.threshold:.1%}"
    return f"{sign} {_value_text(rule.unit, rule.threshold)}" + (" pts" if rule.unit == "points" else "")


def measured_text(rule: Rule) -> str:
    i = rule.interval
    if rule.unit == "ratio" and math.isinf(i.se) and math.isinf(i.high) and i.low == 0.0:
        return f"{_value_text(rule.unit, i.estimate)} [not measured: no query differs]"
    return f"{_value_text(rule.unit, i.estimate)} [{_value_text(rule.unit, i.low)}, {_value_text(rule.unit, i.high)}]"


def _value_text(unit: str, value: float) -> str:
    """Points for a score difference, a signed percentage for a ratio, a percentage for a share."""
    if unit == "points":
        return _pts(value)
    return _pct(value - 1.0) if unit == "ratio" else _share(value)


def _pts(value: float) -> str:
    return f"{value * 100:+.1f}" if math.isfinite(value) else "n/a"


def _pct(value: float) -> str:
    return f"{value * 100:+.0f}%" if math.isfinite(value) else "n/a"


def _share(value: float) -> str:
    return f"{value:.1%}" if math.isfinite(value) else "n/a"
