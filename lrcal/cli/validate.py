"""Command: live-validate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, print_table


@app.command(
    "live-validate",
    epilog=examples(
        "lrcal live-validate my-vlm",
        "lrcal live-validate my-vlm --limit 48 --lambda-cost 0.5 --enable",
        "lrcal live-validate my-vlm --budget-usd 2 --report reports/my-vlm",
    ),
)
def live_validate_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Calibrated model to validate."),
    set_ref: str = typer.Option("builtin-v1-holdout", "--set", help="Held-out set (disjoint from the calibration set)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use N queries, stratified by task group."),
    lambda_cost: float = typer.Option(0.0, "--lambda-cost", min=0.0, help="λ_cost of the routing policy judged."),
    lambda_latency: float = typer.Option(0.0, "--lambda-latency", min=0.0, help="λ_latency of the routing policy."),
    min_gain: float = typer.Option(0.02, "--min-gain", help="Quality gain (absolute) needed to enable."),
    min_confidence: float = typer.Option(0.8, "--min-confidence", min=0.0, max=1.0,
                                         help="Paired-bootstrap P(gain > 0) needed to enable."),  # fmt: skip
    max_p95_increase: float = typer.Option(0.10, "--max-p95-increase", help="Allowed relative rise of p95 latency."),
    max_cost_increase: float = typer.Option(0.10, "--max-cost-increase", help="Allowed relative rise of mean cost."),
    quality_tolerance: float = typer.Option(0.005, "--quality-tolerance", min=0.0,
                                            help="Quality loss tolerated on the saving path."),  # fmt: skip
    min_saving: float = typer.Option(0.15, "--min-saving", min=0.0, help="Relative cost or p95 cut that counts."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", min=0.0,
                                               help="Stop before the estimated spend exceeds this."),  # fmt: skip
    concurrency: Optional[int] = typer.Option(None, "--concurrency", min=1, help="Parallel requests per model."),
    enable: bool = typer.Option(False, "--enable", help="Enable the model if it passes (same transaction)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write report.md, report.json and PNG plots here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Send held-out queries live to the candidate and the enabled models; enable or reject it, with reasons."""
    from lrcal.services.live_validation import ValidateRequest, live_validate
    from lrcal.gate.decision import GateConfig

    gate = GateConfig(
        lambda_cost=lambda_cost, lambda_latency=lambda_latency, min_gain=min_gain, min_confidence=min_confidence,
        max_p95_increase=max_p95_increase, max_cost_increase=max_cost_increase,
        quality_tolerance=quality_tolerance, min_saving=min_saving,
    )  # fmt: skip
    request = ValidateRequest(model=name, set_ref=set_ref, limit=limit, gate=gate, budget_usd=budget_usd,
                              enable=enable, report_dir=report, concurrency=concurrency)  # fmt: skip
    console = err_console()
    result = live_validate(
        state(ctx).store(),
        request,
        on_model=None if as_json else (
            lambda model, total, have: console.print(
                f"[dim]{model}: {have}/{total} outcomes stored, {total - have} to request[/]"
            )
        ),
    )
    if as_json:
        print_json(_public(result))
        return
    _print_result(result)


def _public(result: dict) -> dict:
    keys = ("model", "set", "set_version", "n", "decision", "status", "reasons", "policies", "per_task", "frontier",
            "router_version", "incumbents", "parameters", "checks", "spend_usd", "budget_usd", "skipped_examples",
            "strongest_incumbent", "cheapest_incumbent", "expected", "report")  # fmt: skip
    return {k: result[k] for k in keys if k in result}


POLICY_COLUMNS = [
    Column("policy", "policy"),
    Column("quality", "quality", justify="right"),
    Column("cost", "mean cost", drop=3, justify="right"),
    Column("p50", "p50 ms", drop=2, justify="right"),
    Column("p95", "p95 ms", justify="right"),
    Column("traffic", "traffic", drop=1, shrink_to=24, wrap=True),
]
TRAFFIC_SHOWN = 2  # models named per traffic cell; the JSON has every share


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
         "p95": f"{stats['latency_ms_p95']:.0f}", "traffic": traffic_text(stats["share"])}
        for key, stats in result["policies"].items()
    ]  # fmt: skip


def _print_result(result: dict) -> None:
    from rich.console import Console

    console = Console()
    print_table(policy_rows(result), POLICY_COLUMNS, console=console,
                title=f"Live validation of {result['model']} on {result['set']} ({result['n']} queries)")  # fmt: skip
    for reason in result["reasons"]:
        console.print(f"• {reason}", highlight=False)
    colour = "green" if result["decision"] == "validated" else "red"
    console.print(f"[bold {colour}]{result['decision'].upper()}[/] — status now {result['status']}")
    if result.get("report"):
        console.print(f"report: {result['report']['markdown']}")
