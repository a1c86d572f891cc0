"""The gate's decision at one look: every rule with its interval, the paths, reasons in words.

Rules (thresholds are `GateConfig` fields, every one a CLI option):

* **gain path** -- quality gain (with − without) ≥ ``min_gain``;
* **saving path** -- quality holds: the gain ≥ −``quality_tolerance`` (non-inferiority on
  the lower bound), and mean cost or p95 latency falls by ``min_saving`` or more;
* **both paths** -- p95 latency rises by at most ``max_p95_increase`` and mean cost by at
  most ``max_cost_increase`` (ratios with / without); the candidate's own requests fail at
  most ``max_error_rate`` of the time; the router sends it at least ``min_share`` of the
  queries; and where it wins a task group (most of the group's traffic) its live accuracy
  reaches the lower end of what onboarding predicted.

The quality difference and both ratios are paired bootstrap intervals over the queries where
both policies' chosen models answered (a failed request is excluded, never a wrong answer);
the error rate and the share are Wilson intervals. Every interval is estimate ± z·SE with the
sequential plan's z for this look (`lrcal.gate.sequential`), so each rule's verdict is wrong
with probability at most ``error_rate`` over the whole run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lrcal.gate.intervals import Interval, PairedOutcomes, mean_cost_ratio, p95_ratio, quality_difference, wilson
from lrcal.gate.policies import PolicyResult
from lrcal.gate.rules import (
    ABOVE,
    BELOW,
    FAIL,
    GAIN,
    PASS,
    PATHS,
    SAVING,
    UNDECIDED,
    Rule,
    either,
    examples_needed,
    gate_verdict,
    judged,
    keep_decided,
    measured_text,
    path_verdict,
    threshold_text,
)


@dataclass
class GateConfig:
    lambda_cost: float | None = None  # None: the stored routing policy (`lrcal policy show`)
    lambda_latency: float | None = None
    error_rate: float = 0.05  # chance that a rule's verdict is wrong, over every look
    min_gain: float = 0.01
    quality_tolerance: float = 0.02
    min_saving: float = 0.15
    max_p95_increase: float = 0.10
    max_cost_increase: float = 0.10
    max_error_rate: float = 0.05
    min_share: float = 0.05
    bootstrap: int = 2000
    seed: int = 0


@dataclass
class LookEvidence:
    """What the gate sees at one look."""

    candidate: str
    n: int  # queries seen
    paired: PairedOutcomes  # the queries where both policies' models answered
    candidate_calls: int
    candidate_errors: int
    routed_to_candidate: int  # queries the router sends to the candidate
    with_result: PolicyResult
    without_result: PolicyResult
    live_candidate_by_task: dict[str, tuple[float, int]]  # (summed score, answered requests)
    predicted_by_task: dict[str, dict]


@dataclass
class Decision:
    decision: str  # "validated" | "rejected" | "undecided"
    path: str | None  # the path that decided: "gain", "saving", "both" (a rejection), None
    rules: list[Rule]
    reasons: list[str]
    examples_needed: float  # about how many examples in all would settle it (inf: none)
    prediction_rows: list[dict] = field(default_factory=list)

    def rules_by_key(self) -> dict[str, Rule]:
        return {r.key: r for r in self.rules}


def measure_rules(evidence: LookEvidence, config: GateConfig, z: float) -> tuple[list[Rule], list[dict]]:
    """Every rule judged at this look (``z``: the look's boundary); and the prediction rows."""
    paired, n, c = evidence.paired, evidence.n, config
    rows = paired.resampled_rows(c.bootstrap, c.seed)
    quality = quality_difference(paired, rows, z)
    p95, cost = p95_ratio(paired, rows, z), mean_cost_ratio(paired, rows, z)
    errors = wilson(evidence.candidate_errors, evidence.candidate_calls, z)
    share = wilson(evidence.routed_to_candidate, n, z)
    cost_saving = Rule("cost_saving", "mean cost down", (SAVING,), 1 - c.min_saving, BELOW, cost, "ratio")
    p95_saving = Rule("p95_saving", "p95 latency down", (SAVING,), 1 - c.min_saving, BELOW, p95, "ratio")
    prediction, prediction_rows = prediction_rule(evidence, z)
    rules = [
        judged(Rule("quality_gain", "quality gain", (GAIN,), c.min_gain, ABOVE, quality, "points"), n),
        judged(Rule("quality_holds", "quality holds", (SAVING,), -c.quality_tolerance, ABOVE, quality, "points"), n),
        either("saving", "saving", (SAVING,), (cost_saving, p95_saving), n),
        judged(Rule("p95_bound", "p95 latency", PATHS, 1 + c.max_p95_increase, BELOW, p95, "ratio"), n),
        judged(Rule("cost_bound", "mean cost", PATHS, 1 + c.max_cost_increase, BELOW, cost, "ratio"), n),
        judged(Rule("error_rate", "candidate error rate", PATHS, c.max_error_rate, BELOW, errors, "share"), n),
        judged(Rule("share", "traffic to candidate", PATHS, c.min_share, ABOVE, share, "share"), n),
        prediction,
    ]
    return rules, prediction_rows


def prediction_rule(evidence: LookEvidence, z: float) -> tuple[Rule, list[dict]]:
    """Where the candidate wins a task group, its live accuracy's upper bound must reach the
    predicted lower bound (both are noisy: only a clear shortfall fails)."""
    rows: list[dict] = []
    for task, stats in evidence.with_result.per_task.items():
        share = stats["share"].get(evidence.candidate, 0.0)
        if share < 0.5:
            continue
        predicted = evidence.predicted_by_task.get(task)
        total, answered = evidence.live_candidate_by_task.get(task, (0.0, 0))
        if predicted is None or answered == 0:
            rows.append({"task": task, "share": share, "live": None, "predicted": None, "pass": True,
                         "note": "no prediction for this group" if predicted is None else "no answered request"})
            continue
        live = wilson(total, answered, z)
        rows.append({"task": task, "share": share, "live": live.estimate, "live_low": live.low,
                     "live_high": live.high, "predicted": predicted["predicted"], "low": predicted["low"],
                     "high": predicted["high"], "pass": live.high >= predicted["low"], "interval": live})  # fmt: skip
    checked = [r for r in rows if r.get("interval") is not None]
    worst = min(checked, key=lambda r: r["live_high"] - r["low"]) if checked else None
    interval = worst["interval"] if worst else Interval(math.nan, math.nan, math.nan, math.nan)
    verdict = PASS if all(r["pass"] for r in rows) else FAIL
    detail = "; ".join(
        f"{r['task']} live {r['live']:.2f} [{r['live_low']:.2f}, {r['live_high']:.2f}] vs predicted "
        f"{r['predicted']:.2f} [{r['low']:.2f}, {r['high']:.2f}]" for r in checked
    ) or "the candidate wins no task group"
    rule = Rule("prediction", "live accuracy vs prediction", PATHS, worst["low"] if worst else 0.0, ABOVE, interval,
                "share", verdict=verdict, decided_at=evidence.n, detail=detail)  # fmt: skip
    for r in rows:
        r.pop("interval", None)
    return rule, rows


def decide(
    evidence: LookEvidence, config: GateConfig, z: float, previous: dict[str, Rule] | None = None
) -> Decision:
    """The gate at one look. ``previous``: the rules of the last look; a rule decided there
    keeps its verdict (its error rate was spent when it crossed)."""
    rules, prediction_rows = measure_rules(evidence, config, z)
    rules = keep_decided(previous or {}, rules)
    decision, path = gate_verdict(rules)
    needed = examples_needed(rules, evidence.n, z) if decision == "undecided" else float(evidence.n)
    reasons = [headline(evidence, {r.key: r for r in rules})]
    reasons += [path_sentence(rules, p) for p in PATHS]
    reasons.append(verdict_sentence(decision, path, rules, evidence, needed))
    return Decision(decision, path, rules, reasons, needed, prediction_rows)


# ---- words ----------------------------------------------------------------------------


def headline(evidence: LookEvidence, rules: dict[str, Rule]) -> str:
    w, wo, c = evidence.with_result, evidence.without_result, evidence.candidate
    left_out = evidence.n - evidence.paired.n
    excluded = f" ({left_out} left out: a chosen model's request failed)" if left_out else ""
    return (
        f"Routing with {c} vs without it, {evidence.paired.n} paired queries{excluded}: quality {w.quality:.3f} vs "
        f"{wo.quality:.3f} ({measured_text(rules['quality_gain'])} pts), p95 latency {w.latency_ms_p95:.0f} vs "
        f"{wo.latency_ms_p95:.0f} ms ({measured_text(rules['p95_bound'])}), mean cost ${w.cost_usd_mean:.6f} vs "
        f"${wo.cost_usd_mean:.6f} ({measured_text(rules['cost_bound'])}); {c} gets "
        f"{evidence.routed_to_candidate / max(evidence.n, 1):.0%} of the queries and "
        f"{evidence.candidate_errors} of its {evidence.candidate_calls} requests failed."
    )


def rule_sentence(rule: Rule) -> str:
    if rule.key == "prediction":
        return f"{rule.label}: {rule.detail} — {rule.verdict}"
    what = f" ({rule.detail})" if rule.detail else ""
    return f"{rule.label}{what} {measured_text(rule)} vs {threshold_text(rule)} — {rule.verdict}"


def path_sentence(rules: list[Rule], path: str) -> str:
    verdict = path_verdict(rules, path)
    mine = [r for r in rules if path in r.paths]
    if verdict == PASS:
        shown = mine
    else:
        shown = [r for r in mine if r.verdict == (FAIL if verdict == FAIL else UNDECIDED)]
    verb = {PASS: "passes", FAIL: "fails", UNDECIDED: "is undecided"}[verdict]
    return f"{path.capitalize()} path {verb}: " + "; ".join(rule_sentence(r) for r in shown) + "."


def verdict_sentence(decision: str, path: str | None, rules: list[Rule], evidence: LookEvidence, needed: float) -> str:
    if decision == "validated":
        return f"ENABLE ({path} path): every {path}-path rule passes at the configured error rate."
    if decision == "rejected":
        common = [r for r in rules if r.verdict == FAIL and set(r.paths) == set(PATHS)]
        failed = common or [r for r in rules if r.verdict == FAIL]
        return "REJECT: " + "; ".join(f"{rule_sentence(r)} ({' and '.join(r.paths)} path)" for r in failed) + "."
    more = "no finite number of" if not math.isfinite(needed) else f"about {max(0, math.ceil(needed - evidence.n))}"
    return f"UNDECIDED after {evidence.n} examples: {more} more examples would be needed."
