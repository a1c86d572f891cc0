"""Command: demo."""

from __future__ import annotations

from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, print_table


@app.command("demo", epilog=examples("lrcal demo", "lrcal --home /tmp/demo demo --fresh --train-size 300"))
def demo_command(
    ctx: typer.Context,
    fresh: bool = typer.Option(False, "--fresh", help="Delete a previous demo in this home first."),
    train_size: int = typer.Option(1000, "--train-size", min=64, max=1_000_000, help="Examples in the generated training set."),
    latency_scale: float = typer.Option(0.5, "--latency-scale", min=0.0, max=100.0, help="Scale of the simulated latencies."),
    lambda_cost: Optional[float] = typer.Option(None, "--lambda-cost", min=0.0, max=1000.0,
                                                help="λ_cost used by the validation gate (default: the routing policy)."),  # fmt: skip
    lambda_latency: Optional[float] = typer.Option(None, "--lambda-latency", min=0.0, max=1000.0,
                                                   help="λ_latency used by the gate (default: the routing policy)."),  # fmt: skip
    with_real_ocr: bool = typer.Option(
        False, "--with-real-ocr", help="Also onboard a real local OCR model (needs the ocr extra)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run the end-to-end onboarding demo on SIMULATED endpoints (about 2 minutes)."""
    from lrcal.services.demo import DemoOptions, run_demo

    home = state(ctx).home
    console = err_console()
    options = DemoOptions(
        fresh=fresh, train_size=train_size, latency_scale=latency_scale, lambda_cost=lambda_cost,
        lambda_latency=lambda_latency, with_real_ocr=with_real_ocr,
    )  # fmt: skip
    console.print(f"[bold]lrcal demo[/] in {home} — SIMULATED endpoints (see `lrcal sim zoo`)")
    result = run_demo(home, options, say=lambda line: console.print(line, highlight=False))
    if as_json:
        print_json(result.as_dict())
        return
    _print_summary(result)


SUMMARY_COLUMNS = [
    Column("model", "candidate"),
    Column("decision", "decision"),
    Column("examples", "examples", drop=3, justify="right"),
    Column("share", "traffic", justify="right"),
    Column("quality", "quality", justify="right"),
    Column("p95", "p95 latency", drop=1, justify="right"),
    Column("cost", "mean cost", drop=2, justify="right"),
]


def _print_summary(result) -> None:
    from rich.console import Console

    console = Console()
    rows = [
        {"model": c["model"], "decision": c["decision"], "examples": f"{c['examples_used']}/{c['examples_planned']}",
         "share": f"{c['share']:.0%}", "quality": f"{c['quality_without']:.3f}→{c['quality_with']:.3f}",
         "p95": f"{c['p95_without']:.0f}→{c['p95_with']:.0f} ms", "cost": _pct(c["cost_with"], c["cost_without"])}
        for c in result.candidates
    ]  # fmt: skip
    print_table(rows, SUMMARY_COLUMNS, title=f"Onboarding results (router {result.router_version})", console=console)
    for c in result.candidates:
        console.print(f"[bold]{c['model']}[/] — {c['decision']}:")
        for reason in c["reasons"]:
            console.print(f"  • {reason}", highlight=False)
        if c.get("report"):
            console.print(f"  report: {c['report']}")
    console.print(f"\nDone in {result.seconds:.0f}s. Everything is in {result.home}. Next:")
    console.print(f"  lrcal --home {result.home} models")
    console.print(f"  lrcal --home {result.home} tui")


def _pct(new: float, old: float) -> str:
    if not old:
        return "–"
    return f"{(new - old) / old * 100:+.0f}%"
