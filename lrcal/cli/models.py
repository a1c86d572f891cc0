"""Commands: add-model, models, enable, disable, events."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, print_rows, state

MODEL_COLUMNS = [
    "name",
    "status",
    "price_in_per_mtok",
    "price_out_per_mtok",
    "calibrated_examples",
    "token_fitted",
    "enabled",
]

MODEL_HEADERS = {
    "price_in_per_mtok": "$/Mtok in",
    "price_out_per_mtok": "$/Mtok out",
    "calibrated_examples": "calibrated",
    "token_fitted": "token",
}


@app.command("add-model")
def add_model_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A short unique name for the model."),
    base_url: str = typer.Option(..., "--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    api_model: Optional[str] = typer.Option(None, "--api-model", help="Model id sent to the API (default: NAME)."),
    api_style: str = typer.Option("openai", "--api-style", help="openai (/chat/completions) or ollama (/api/chat)."),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="NAME of the environment variable holding the API key (the key is never stored)."
    ),
    price_in: float = typer.Option(0.0, "--price-in", min=0.0, help="USD per million input tokens."),
    price_out: float = typer.Option(0.0, "--price-out", min=0.0, help="USD per million output tokens."),
    max_concurrency: int = typer.Option(4, "--max-concurrency", min=1, help="Parallel requests at most."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, help="Per-request timeout in seconds."),
    max_retries: Optional[int] = typer.Option(
        None, "--max-retries", min=0, help="Retries per request on transient faults (default 4)."
    ),
    no_probe: bool = typer.Option(False, "--no-probe", help="Do not contact the endpoint before registering."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored model as JSON."),
) -> None:
    """Register a model endpoint (probes /models and one tiny request unless --no-probe)."""
    from lrcal.services.models import add_model

    store = state(ctx).store()
    row = add_model(
        store,
        name,
        base_url=base_url,
        api_model=api_model,
        api_style=api_style,
        api_key_env=api_key_env,
        price_in=price_in,
        price_out=price_out,
        max_concurrency=max_concurrency,
        timeout_s=timeout,
        probe=not no_probe,
        max_retries=max_retries,
    )
    notes = row.pop("notes", [])
    if as_json:
        print_json(row)
        return
    console = err_console()
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")
    typer.echo(f"Added {row['name']} ({row['base_url']}, model {row['api_model']}); status {row['status']}.")
    typer.echo(f"Next: lrcal calibrate {row['name']}")


@app.command("models")
def models_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="JSON list."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV."),
    all_columns: bool = typer.Option(False, "--all", help="Show every column in the table."),
) -> None:
    """List models with status, prices, calibration and token state."""
    from lrcal.services.models import model_overview

    rows = model_overview(state(ctx).store())
    if as_json:
        print_json(rows)
        return
    if not rows and not as_csv:
        typer.echo("No models yet. Add one with: lrcal add-model NAME --base-url URL (or try `lrcal demo`).")
        return
    columns = None if all_columns or as_csv else MODEL_COLUMNS
    print_rows(rows, "csv" if as_csv else "table", columns=columns, title="Models", headers=MODEL_HEADERS)


@app.command("enable")
def enable_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model to enable for routing."),
    force: bool = typer.Option(False, "--force", help="Enable without a passed validation (recorded)."),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the audit log)."),
) -> None:
    """Enable a validated model: the router may send it traffic."""
    from lrcal.services.models import enable

    row = enable(state(ctx).store(), name, force=force, reason=reason)
    typer.echo(f"{row['name']} is {row['status']}.")


@app.command("disable")
def disable_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model to take out of routing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the audit log)."),
) -> None:
    """Disable a model: the router stops sending it traffic."""
    from lrcal.errors import UsageError
    from lrcal.services.models import disable

    store = state(ctx).store()
    store.get_model(name)  # unknown model → one-line error before any prompt
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to disable '{name}' without confirmation; pass --yes")
        typer.confirm(f"Disable {name}? It will receive no traffic", abort=True)
    row = disable(store, name, reason=reason)
    typer.echo(f"{row['name']} is {row['status']}.")


@app.command("events")
def events_command(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, help="Only this model's events."),
    limit: int = typer.Option(50, "--limit", min=1, help="Newest N events."),
    as_json: bool = typer.Option(False, "--json", help="JSON list."),
    as_csv: bool = typer.Option(False, "--csv", help="CSV."),
) -> None:
    """Show the audit log: added, calibrated, token fitted, validated, enabled, rejected, disabled."""
    store = state(ctx).store()
    if model is not None:
        store.get_model(model)
    rows = store.events(model, limit=limit)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["ts"] = row["ts"][:19].replace("T", " ")
    print_rows(rows, "csv" if as_csv else "table", columns=["id", "ts", "model", "kind", "message"], title="Events")
