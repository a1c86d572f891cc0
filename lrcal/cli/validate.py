"""Command: live-validate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, print_table

HELP = """Send held-out queries live to the candidate and the enabled models, batch by batch, until
the gate's rules are decided; record the decision with its reasons.

The status changes only as asked: a passing model is enabled only with --enable (which also
saves the recommended λ as the routing policy); an enabled model that fails stays enabled
unless --apply; an undecided run changes nothing.

Exit codes: 0 passed, 3 rejected, 4 undecided (budget or examples ran out), 1 error."""


@app.command(
    "live-validate",
    help=HELP,
    epilog=examples(
        "lrcal live-validate my-vlm",
        "lrcal live-validate my-vlm --lambda-cost 0.5 --enable",
        "lrcal live-validate my-vlm --budget-usd 2 --report reports/my-vlm",
    ),
)
def live_validate_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Calibrated model to validate."),
    set_ref: str = typer.Option("builtin-v1-holdout", "--set", help="Held-out set (disjoint from the calibration set)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, max=1_000_000, help="Plan at most N queries, stratified by task group."),
    batch: int = typer.Option(24, "--batch", min=1, max=100_000, help="Queries per look of the sequential gate."),
    sequential: bool = typer.Option(True, "--sequential/--no-sequential",
                                    help="Stop as soon as the rules are decided (else send every query, look once)."),  # fmt: skip
    error_rate: float = typer.Option(0.05, "--error-rate", min=0.001, max=0.49,
                                     help="Chance that a rule's verdict is wrong, over every look."),  # fmt: skip
    lambda_cost: Optional[float] = typer.Option(None, "--lambda-cost", min=0.0, max=1000.0,
                                                help="λ_cost of the routing policy judged (default: `lrcal policy show`)."),  # fmt: skip
    lambda_latency: Optional[float] = typer.Option(None, "--lambda-latency", min=0.0, max=1000.0,
                                                   help="λ_latency of the routing policy judged (default: the stored one)."),  # fmt: skip
    min_gain: float = typer.Option(0.01, "--min-gain", min=0.0, max=1.0, help="Gain path: quality gain (absolute) the interval must clear."),
    quality_tolerance: float = typer.Option(0.02, "--quality-tolerance", min=0.0, max=1.0,
                                            help="Saving path: quality loss the interval's lower bound may show."),  # fmt: skip
    min_saving: float = typer.Option(0.15, "--min-saving", min=0.0, max=1.0, help="Saving path: relative cost or p95 cut."),
    max_p95_increase: float = typer.Option(0.10, "--max-p95-increase", min=0.0, max=100.0, help="Both paths: allowed rise of p95 latency."),
    max_cost_increase: float = typer.Option(0.10, "--max-cost-increase", min=0.0, max=100.0, help="Both paths: allowed rise of mean cost."),
    max_error_rate: float = typer.Option(0.05, "--max-error-rate", min=0.0, max=1.0,
                                         help="Both paths: share of the candidate's requests that may fail."),  # fmt: skip
    min_share: float = typer.Option(0.05, "--min-share", min=0.0, max=1.0,
                                    help="Both paths: share of queries the router must send the candidate."),  # fmt: skip
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", min=0.0, max=1e6,
                                               help="Stop before the estimated spend exceeds this."),  # fmt: skip
    concurrency: Optional[int] = typer.Option(None, "--concurrency", min=1, max=1024, help="Parallel requests per model (at most each model's max concurrency)."),
    fresh: bool = typer.Option(False, "--fresh", help="Request every outcome again (ignore the stored ones)."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Request again the stored failed requests."),
    enable: bool = typer.Option(False, "--enable", help="If it passes: enable it and save the recommended λ."),
    apply: bool = typer.Option(False, "--apply", help="If an enabled model fails: take it out of routing."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write report.md, report.json and PNG plots here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    from lrcal.gate.decision import GateConfig
    from lrcal.services.live_validation import EXIT_CODES, ValidateRequest, live_validate

    gate = GateConfig(
        lambda_cost=lambda_cost, lambda_latency=lambda_latency, error_rate=error_rate, min_gain=min_gain,
        quality_tolerance=quality_tolerance, min_saving=min_saving, max_p95_increase=max_p95_increase,
        max_cost_increase=max_cost_increase, max_error_rate=max_error_rate, min_share=min_share,
    )  # fmt: skip
    request = ValidateRequest(model=name, set_ref=set_ref, limit=limit, gate=gate, budget_usd=budget_usd,
                              enable=enable, apply=apply, report_dir=report, concurrency=concurrency, fresh=fresh,
                              retry_errors=retry_errors, sequential=sequential, batch=batch)  # fmt: skip
    console = err_console()
    try:
        result = live_validate(state(ctx).store(), request, on_look=None if as_json else (
            lambda look, n, decision: console.print(f"look {look}: {n} examples → {_look_line(decision)}", highlight=False)
        ))  # fmt: skip
    except KeyboardInterrupt:
        console.print("Interrupted: no decision recorded and no status changed; the outcomes received are stored "
                      f"and reused by the next `lrcal live-validate {name}`.", highlight=False)
        raise typer.Exit(130) from None
    if as_json:
        print_json(_public(result))
    else:
        _print_result(result)
    if result.get("report_error"):  # the decision stands (recorded, exit code kept); only the files are missing
        console.print(f"warning: decision recorded, report not written: {result['report_error']}", highlight=False,
                      markup=False)
    raise typer.Exit(EXIT_CODES[result["decision"]])


def _look_line(decision) -> str:
    if decision.decision != "undecided":
        return decision.decision
    open_rules = [r.label for r in decision.rules if r.verdict == "undecided"]
    return "undecided (" + ", ".join(open_rules) + ")"


def _public(result: dict) -> dict:
    keys = ("model", "set", "set_version", "n", "decision", "path", "status", "note", "reasons", "rules",
            "recommended_policy", "policy_saved", "sequential", "policies", "per_task", "frontier", "router_version",
            "incumbents", "parameters", "checks", "spend_usd", "requests", "outcomes_cost_usd", "budget_usd",
            "skipped_examples", "fresh", "retry_errors", "strongest_incumbent", "cheapest_incumbent", "expected",
            "report", "report_error")  # fmt: skip
    return {k: result[k] for k in keys if k in result}


POLICY_COLUMNS = [
    Column("policy", "policy"),
    Column("quality", "quality", justify="right"),
    Column("cost", "mean cost", drop=3, justify="right"),
    Column("p50", "p50 ms", drop=2, justify="right"),
    Column("p95", "p95 ms", justify="right"),
    Column("errors", "errors", drop=4, justify="right"),
    Column("traffic", "traffic", drop=1, shrink_to=24, wrap=True),
]
TRAFFIC_SHOWN = 2  # models named per traffic cell; the JSON has every share
RULE_COLUMNS = [
    Column("rule", "rule", shrink_to=18, wrap=True),
    Column("paths", "path", drop=2),
    Column("threshold", "threshold", drop=1, shrink_to=12, wrap=True),
    Column("measured", "measured [interval]", shrink_to=20, wrap=True),
    Column("verdict", "verdict"),
]
VERDICT_COLOURS = {"pass": "green", "fail": "red", "undecided": "yellow"}


def rule_rows(result: dict) -> list[dict]:
    from rich.text import Text

    return [
        {"rule": rule["label"], "paths": ",".join(rule["paths"]),
         "threshold": "≥ predicted low" if rule["key"] == "prediction" else rule["threshold_text"],
         "measured": (rule["detail"] if rule["key"] == "prediction" else rule["measured_text"]) + _at(rule, result),
         "verdict": Text(rule["verdict"], style=VERDICT_COLOURS[rule["verdict"]])}
        for rule in result["rules"]
    ]  # fmt: skip


def _at(rule: dict, result: dict) -> str:
    """A rule decided at an earlier look keeps that look's interval: say at how many queries."""
    at = rule.get("decided_at")
    return f" (at {at} queries)" if at is not None and at != result.get("n") else ""


def traffic_text(share: dict[str, float]) -> str:
    ranked = [(m, s) for m, s in sorted(share.items(), key=lambda kv: -kv[1]) if s >= 0.01]
    text = ", ".join(f"{m} {s:.0%}" for m, s in ranked[:TRAFFIC_SHOWN])
    return text + (f", +{len(ranked) - TRAFFIC_SHOWN} more" if len(ranked) > TRAFFIC_SHOWN else "")


def policy_rows(result: dict) -> list[dict]:
    from lrcal.gate.report import POLICY_LABELS
    from lrcal.tui import fmt

    return [
        {"policy": POLICY_LABELS.get(key, key), "quality": f"{stats['quality']:.3f}",
         "cost": fmt.usd(stats["cost_usd_mean"]), "p50": f"{stats['latency_ms_p50']:.0f}",
         "p95": f"{stats['latency_ms_p95']:.0f}", "errors": f"{stats['error_rate']:.1%}",
         "traffic": traffic_text(stats["share"])}
        for key, stats in result["policies"].items()
    ]  # fmt: skip


def _print_result(result: dict) -> None:
    from rich.console import Console

    from lrcal.gate.report import recommendation_text

    console = Console()
    run = result["sequential"]
    print_table(rule_rows(result), RULE_COLUMNS, console=console,
                title=f"Gate for {result['model']}: {result['n']} of {run['examples_planned']} queries "
                      f"({run['looks_taken']} look(s)), {result['set']}")  # fmt: skip
    print_table(policy_rows(result), POLICY_COLUMNS, console=console, title="Policies on the same queries")
    console.print(f"recommended λ: {recommendation_text(result, markdown=False)}", highlight=False)
    console.print(f"examples used: {result['n']} of {run['examples_planned']}; spent ${result['spend_usd']:.4f} on "
                  f"{result['requests']} requests", highlight=False)  # fmt: skip
    colour = {"validated": "green", "rejected": "red", "undecided": "yellow"}[result["decision"]]
    console.print(f"[bold {colour}]{result['reasons'][-1]}[/]", highlight=False)
    console.print(f"status: {result['status']} {result.get('note') or ''}".rstrip(), highlight=False)
    if result.get("report"):
        console.print(f"report: {result['report']['markdown']}")
