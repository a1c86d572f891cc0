"""Command: traffic (what `lrcal serve` served, per model and task; shadow comparisons)."""

from __future__ import annotations

from typing import Optional

import typer

from lrcal.cli._app import app, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, cell, print_rows, with_output_format

_RIGHT = {"justify": "right"}
TRAFFIC_COLUMNS = [
    Column("model", "model"), Column("task", "task"), Column("requests", "requests", **_RIGHT),
    Column("share", "share", **_RIGHT), Column("p50_latency_ms", "p50 ms", **_RIGHT),
    Column("p95_latency_ms", "p95 ms", drop=4, **_RIGHT), Column("errors", "errors", drop=5, **_RIGHT),
    Column("client_left", "client left", drop=7, **_RIGHT), Column("fallbacks", "fallbacks", drop=6, **_RIGHT),
    # every attempt at the model, served or fallen back from: a model failing behind fallbacks shows here
    Column("attempts", "attempts", drop=8, **_RIGHT), Column("failed_attempts", "failed", drop=3, **_RIGHT),
    Column("failure_kinds", "failure kinds", drop=9, shrink_to=16, wrap=True),
    Column("cost_usd", "cost $", drop=2, **_RIGHT),
    Column("p50_ttft_ms", "p50 TTFT ms", drop=10, **_RIGHT), Column("p50_routing_ms", "routing ms", drop=11, **_RIGHT),
]
SHADOW_COLUMNS = [
    Column("model", "candidate"), Column("requests", "requests", **_RIGHT), Column("agreement", "agrees", **_RIGHT),
    Column("p50_latency_ms", "p50 ms", **_RIGHT), Column("served_p50_latency_ms", "served p50 ms", drop=2, **_RIGHT),
    Column("shadow_cost_usd", "shadow $", drop=3, **_RIGHT), Column("served_cost_usd", "served $", drop=4, **_RIGHT),
    Column("mean_predicted_mu", "μ", drop=5, **_RIGHT), Column("served_mean_predicted_mu", "served μ", drop=6, **_RIGHT),
    Column("errors", "errors", drop=7, **_RIGHT),
]


@app.command("traffic", epilog=examples("lrcal traffic", "lrcal traffic --json", "lrcal traffic --shadow",
                                        "lrcal traffic --since 2026-01-31T00:00"))  # fmt: skip
@with_output_format
def traffic_command(
    ctx: typer.Context,
    shadow: bool = typer.Option(False, "--shadow", help="Shadowed candidates beside the routed models instead."),
    since: Optional[str] = typer.Option(None, "--since", help="Only requests at or after this UTC time (ISO 8601)."),
    *,
    fmt: str,
) -> None:
    """What `lrcal serve` served: requests per model and task, share, p50/p95 latency, errors,
    fallbacks and cost; with --shadow, each shadowed candidate against the routed model."""
    from lrcal.services.traffic import parse_since, shadow_summary, traffic_summary

    since = parse_since(since)
    store = state(ctx).store()
    rows = shadow_summary(store, since) if shadow else traffic_summary(store, since)
    if not rows and fmt == "table":
        if since is not None:
            typer.echo(f"No {'shadow ' if shadow else ''}traffic since {since}.")
            return
        typer.echo("No shadow traffic yet: `lrcal serve --shadow MODEL`." if shadow
                   else "No traffic yet: start the gateway with `lrcal serve`.")  # fmt: skip
        return
    columns = SHADOW_COLUMNS if shadow else TRAFFIC_COLUMNS
    table_rows = [{c.key: _shown(c.key, row) for c in columns} for row in rows]
    print_rows(rows, fmt, columns, title="Shadow traffic" if shadow else "Traffic", table_rows=table_rows)


def _shown(key: str, row: dict) -> str:
    value = row.get(key)
    if key.endswith("cost_usd"):
        return _cost(value, row.get(key.removesuffix("_usd") + "_unknown") or 0)
    if value is None:
        return ""
    if key in ("share", "agreement"):
        return f"{100 * value:.1f}%"
    if key.endswith("_ms"):
        return f"{value:.1f}"
    if key == "failure_kinds":
        return ", ".join(f"{kind} {count}" for kind, count in value.items())
    return cell(value)


def _cost(total: float | None, unknown: int) -> str:
    """A spend: "—" when no row knows its cost (not $0), else the known part and how many rows lack one."""
    if total is None:
        return "—" if unknown else ""
    return f"{total:.4f}" + (f" ({unknown} unknown)" if unknown else "")
