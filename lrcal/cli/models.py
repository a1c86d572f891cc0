"""Commands: add-model, models [set|remove], enable, disable, events."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, cell, csv_option, json_option, output_format, print_rows, table_option, with_output_format
from lrcal.model_limits import MAX_CONCURRENCY, MAX_PRICE_PER_MTOK, MAX_RETRIES, MAX_TIMEOUT_S

# The table's columns; `--all` adds ALL_MODEL_COLUMNS. Narrow terminals hide the highest drop rank first.
MODEL_COLUMNS = [
    Column("name", "name"),
    Column("status", "status"),
    Column("token", "token", drop=3),
    Column("calibrated_examples", "calibrated", drop=4, justify="right"),
    Column("price_in_per_mtok", "$/Mtok in", drop=5, justify="right"),
    Column("price_out_per_mtok", "$/Mtok out", drop=6, justify="right"),
]
ALL_MODEL_COLUMNS = MODEL_COLUMNS + [
    Column("base_url", "base URL", drop=7, shrink_to=18),
    Column("token_router_version", "router", drop=8),
    Column("api_model", "API model", drop=9, shrink_to=12),
    Column("api_key_env", "key variable", drop=10, shrink_to=12),
    Column("max_concurrency", "conc.", drop=11, justify="right"),
    Column("api_style", "style", drop=12),
    Column("source", "source", drop=13),
    Column("timeout_s", "timeout s", drop=14, justify="right"),
]

EVENT_COLUMNS = [
    Column("id", "id", drop=2, justify="right"),
    Column("ts", "time (UTC)", drop=1),
    Column("model", "model"),
    Column("kind", "event"),
    Column("message", "message", shrink_to=28, wrap=True),
]

models_app = typer.Typer(
    name="models",
    help="List registered models; change (set) or remove one.",
    invoke_without_command=True,
    epilog=examples("lrcal models", "lrcal models --all", "lrcal models --json", "lrcal models --csv > models.csv",
                    "lrcal models set NAME --price-in 0.4", "lrcal models remove NAME"),
)
app.add_typer(models_app, name="models")


@app.command(
    "add-model",
    epilog=examples(
        "lrcal add-model my-vlm --base-url http://127.0.0.1:8000/v1 --price-in 0.5 --price-out 1.5",
        "lrcal add-model gpt-4o --base-url https://api.openai.com/v1 --api-key-env OPENAI_API_KEY",
        "lrcal add-model llava --base-url http://127.0.0.1:11434 --api-style ollama --no-probe",
    ),
)
def add_model_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A short unique name for the model."),
    base_url: str = typer.Option(..., "--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."),
    api_model: Optional[str] = typer.Option(None, "--api-model", help="Model id sent to the API (default: NAME)."),
    api_style: str = typer.Option("openai", "--api-style", help="openai (/chat/completions) or ollama (/api/chat)."),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="NAME of the environment variable holding the API key (the key is never stored)."
    ),
    price_in: float = typer.Option(0.0, "--price-in", min=0.0, max=MAX_PRICE_PER_MTOK, help="USD per million input tokens."),
    price_out: float = typer.Option(0.0, "--price-out", min=0.0, max=MAX_PRICE_PER_MTOK, help="USD per million output tokens."),
    max_concurrency: int = typer.Option(4, "--max-concurrency", min=1, max=MAX_CONCURRENCY, help="Parallel requests at most."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.001, max=float(MAX_TIMEOUT_S), help="Per-request timeout in seconds."),
    max_retries: Optional[int] = typer.Option(
        None, "--max-retries", min=0, max=MAX_RETRIES, help="Retries per request on transient faults (default 4)."
    ),
    no_probe: bool = typer.Option(False, "--no-probe", help="Do not contact the endpoint before registering."),
    no_images: bool = typer.Option(
        False, "--no-images", help="Text-only model: `lrcal serve` never sends it an image (the probe also finds this)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the stored model as JSON."),
) -> None:
    """Register a model endpoint (probes /models, one tiny request and one tiny image unless --no-probe)."""
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
        images=not no_images,
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


def _list_models(ctx: typer.Context, fmt: str, all_columns: bool, removed: bool) -> None:
    from lrcal.services.models import model_overview

    rows = model_overview(state(ctx).store(), include_removed=removed)
    if not rows and fmt == "table":
        typer.echo("No models yet. Add one with: lrcal add-model NAME --base-url URL (or try `lrcal demo`).")
        return
    columns = ALL_MODEL_COLUMNS if all_columns or fmt != "table" else MODEL_COLUMNS
    table_rows = [{c.key: cell(row.get(c.key)) for c in columns} for row in rows]
    print_rows(rows, fmt, columns, title="Models", table_rows=table_rows)


@models_app.callback()
def models_callback(
    ctx: typer.Context,
    table: bool = table_option(),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
    all_columns: bool = typer.Option(False, "--all", help="Every column in the table (as far as it fits)."),
    removed: bool = typer.Option(False, "--removed", help="Also list removed models (kept for audit)."),
) -> None:
    """List models with status, prices, calibration and token state (trained, fitted, stale or
    none); `lrcal models set` and `lrcal models remove` change them."""
    if ctx.invoked_subcommand is None:
        _list_models(ctx, output_format(table, as_json, as_csv), all_columns, removed)


@models_app.command(
    "set",
    epilog=examples(
        "lrcal models set my-vlm --price-in 0.4 --price-out 1.2",
        "lrcal models set my-vlm --base-url http://10.0.0.5:8000/v1 --max-concurrency 8",
        "lrcal models set my-vlm --api-key-env ''    # send no key",
    ),
)
def set_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model to change."),
    price_in: Optional[float] = typer.Option(None, "--price-in", min=0.0, max=MAX_PRICE_PER_MTOK, help="USD per million input tokens."),
    price_out: Optional[float] = typer.Option(None, "--price-out", min=0.0, max=MAX_PRICE_PER_MTOK, help="USD per million output tokens."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible base URL."),
    api_model: Optional[str] = typer.Option(None, "--api-model", help="Model id sent to the API."),
    api_style: Optional[str] = typer.Option(None, "--api-style", help="openai or ollama."),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="NAME of the environment variable holding the API key ('' for none)."
    ),
    max_concurrency: Optional[int] = typer.Option(None, "--max-concurrency", min=1, max=MAX_CONCURRENCY, help="Parallel requests at most."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.001, max=float(MAX_TIMEOUT_S), help="Per-request timeout in seconds."),
    images: Optional[bool] = typer.Option(
        None, "--images/--no-images", help="Whether it takes image input (`lrcal serve` sends images only if so)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the changed model as JSON."),
) -> None:
    """Change a model's prices or endpoint settings (recorded in the audit log).

    New prices apply from now on: to the cost of every outcome stored afterwards and to routing's
    expected cost; stored outcomes keep the cost they were measured at."""
    from lrcal.services.models import change_model, shown_value

    row = change_model(
        state(ctx).store(), name, price_in=price_in, price_out=price_out, base_url=base_url, api_model=api_model,
        api_style=api_style, api_key_env=api_key_env, max_concurrency=max_concurrency, timeout_s=timeout, images=images,
    )  # fmt: skip
    if as_json:
        print_json(row)
        return
    if not row["changed"]:
        typer.echo(f"{name}: nothing changed (the values given are the current ones).")
        return
    for column, (old, new) in row["changed"].items():
        typer.echo(f"{name}: {column} {shown_value(old)} → {shown_value(new)}")
    if row["outcomes_from_previous_endpoint"]:
        typer.echo(f"warning: {row['outcomes_from_previous_endpoint']} stored calibration/validation outcomes of {name} "
                   "were measured on the previous endpoint, and calibrate and live-validate reuse them; if another "
                   f"model answers now, run `lrcal calibrate {name} --fresh` (and `live-validate --fresh`)", err=True)


@models_app.command(
    "remove",
    epilog=examples("lrcal models remove old-vlm", "lrcal models remove old-vlm --yes --purge"),
)
def remove_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model to remove."),
    purge: bool = typer.Option(False, "--purge", help="Also delete its runs, outcomes, tokens and validations."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the audit log)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was removed as JSON."),
) -> None:
    """Remove a model: never listed, routed to or trained on again.

    Its outcomes stay for audit (`lrcal outcomes NAME`) unless --purge; the audit log always stays."""
    from lrcal.errors import UsageError
    from lrcal.services.models import remove_model

    store = state(ctx).store()
    model = store.get_model(name)  # unknown model → one-line error before any prompt
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to remove '{name}' without confirmation; pass --yes")
        held = store.model_footprint(model["id"])
        what = (f"and delete its {held['outcomes']} outcomes, {held['runs']} runs, {held['tokens']} tokens and "
                f"{held['validations']} validations" if purge else f"(its {held['outcomes']} outcomes are kept)")
        typer.confirm(f"Remove {name} {what}?", abort=True)
    result = remove_model(store, name, purge=purge, reason=reason)
    if as_json:
        print_json(result)
        return
    if purge:
        typer.echo(f"Purged {name}: deleted {result['outcomes']} outcomes, {result['runs']} runs, "
                   f"{result['tokens']} tokens, {result['validations']} validations (the audit log stays).")
    else:
        typer.echo(f"Removed {name}; its {result['outcomes']} outcomes are kept for audit "
                   f"(`lrcal outcomes {name}`; `lrcal models remove {name} --purge` deletes them).")


@app.command("enable", epilog=examples("lrcal enable my-vlm", "lrcal enable my-vlm --force --reason 'canary'"))
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


@app.command("disable", epilog=examples("lrcal disable my-vlm --reason 'endpoint down'"))
def disable_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model to take out of routing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    reason: str = typer.Option("", "--reason", help="Why (recorded in the audit log)."),
) -> None:
    """Disable a model: the router stops sending it traffic."""
    from lrcal import lifecycle
    from lrcal.errors import LrcalError, UsageError
    from lrcal.services.models import disable

    store = state(ctx).store()
    model = store.get_model(name)  # unknown model → one-line error before any prompt
    if model["status"] not in (lifecycle.ENABLED, lifecycle.DISABLED):
        raise LrcalError(f"model '{name}' is {model['status']}, not enabled")  # before asking to confirm
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to disable '{name}' without confirmation; pass --yes")
        typer.confirm(f"Disable {name}? It will receive no traffic", abort=True)
    row = disable(store, name, reason=reason)
    typer.echo(f"{row['name']} is {row['status']}.")


@app.command("events", epilog=examples("lrcal events", "lrcal events my-vlm --limit 10", "lrcal events --json"))
@with_output_format
def events_command(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, help="Only this model's events."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1_000_000, help="Newest N events."),
    *,
    fmt: str,
) -> None:
    """Show the audit log: added, calibrated, token fitted, validated, enabled, rejected, disabled, changed, removed."""
    store = state(ctx).store()
    if model is not None:
        store.get_model(model)
    rows = store.events(model, limit=limit)
    table_rows = [{**{k: cell(v) for k, v in row.items()}, "ts": (row["ts"] or "")[:16].replace("T", " ")}
                  for row in rows]  # fmt: skip
    print_rows(rows, fmt, EVENT_COLUMNS, title="Events", table_rows=table_rows)
