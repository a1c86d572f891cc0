"""`lrcal policy show|set`: the routing policy (λ_cost, λ_latency) `route`, `live-validate` and
the TUI start from."""

from __future__ import annotations

from typing import Optional

import typer

from lrcal.cli._app import app, print_json, state

policy_app = typer.Typer(help="The routing policy: λ_cost and λ_latency used by default.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def show_command(
    ctx: typer.Context,
    history: bool = typer.Option(False, "--history", help="Every change, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Print the current routing policy (λ = 0 for both until one is set)."""
    store = state(ctx).store()
    rows = store.routing_policy_history() if history else [store.routing_policy()]
    if as_json:
        print_json(rows if history else rows[0])
        return
    if not rows:  # --history on a home where no policy was ever set
        typer.echo("No routing policy was ever set: λ_cost 0, λ_latency 0 (the default, quality only).")
        return
    for row in rows:
        when = f" — set {row['created_at']} by {row['source']}" if row["created_at"] else " (default: never set)"
        reason = f": {row['reason']}" if row.get("reason") else ""
        typer.echo(f"λ_cost {row['lambda_cost']:g}, λ_latency {row['lambda_latency']:g}{when}{reason}")


@policy_app.command("set")
def set_command(
    ctx: typer.Context,
    lambda_cost: Optional[float] = typer.Option(None, "--lambda-cost", min=0.0, max=1000.0, help="Weight of pool-normalized expected cost."),
    lambda_latency: Optional[float] = typer.Option(None, "--lambda-latency", min=0.0, max=1000.0, help="Weight of pool-normalized latency."),
    reason: str = typer.Option("", "--reason", help="Why (kept in the audit log)."),
) -> None:
    """Set the routing policy (a λ not given keeps its value)."""
    from lrcal.errors import UsageError
    from lrcal.services.routing_policy import set_policy

    if lambda_cost is None and lambda_latency is None:
        raise UsageError("give --lambda-cost and/or --lambda-latency")
    row = set_policy(state(ctx).store(), lambda_cost=lambda_cost, lambda_latency=lambda_latency, reason=reason)
    typer.echo(f"Routing policy: λ_cost {row['lambda_cost']:g}, λ_latency {row['lambda_latency']:g}.")
