"""Commands: router train|list|pin, route."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, print_rows, print_table, with_output_format

VERSION_COLUMNS = [
    Column("version", "version"),
    Column("created_at", "created (UTC)", drop=2),
    Column("models", "models", justify="right"),
    Column("examples", "examples", justify="right", drop=1),
    Column("pinned", "pinned"),
    Column("path", "path", drop=3, shrink_to=20),
]

ROUTE_COLUMNS = [
    Column("model", "model"),
    Column("mu", "μ", drop=4, justify="right"),
    Column("sigma", "σ", drop=3, justify="right"),
    Column("delta", "δ", drop=5, justify="right"),
    Column("network_score", "μ̃", drop=6, justify="right"),
    Column("score", "decision", justify="right"),
    Column("expected_cost_usd", "exp. cost", drop=2, justify="right"),
    Column("expected_latency_ms", "exp. ms", drop=1, justify="right"),
    Column("utility", "utility", justify="right"),
    Column("chosen", ""),
]

router_app = typer.Typer(name="router", help="The shared router: train it, list versions, pin one.", no_args_is_help=True)
app.add_typer(router_app, name="router")


def _split(value: Optional[str]) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:  # "--models ,," names nothing: never silently the default set
        from lrcal.errors import UsageError

        raise UsageError(f"--models: no model names in {value!r} (give MODEL,MODEL,... or leave the option out)")
    return names


@router_app.command(
    "train",
    epilog=examples("lrcal router train", "lrcal router train --outcomes logs.csv --images-dir images/"),
)
def train_command(
    ctx: typer.Context,
    outcomes: Optional[Path] = typer.Option(
        None, "--outcomes", help="Import this wide outcome CSV first (same as `lrcal import-outcomes`)."
    ),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Images of --outcomes."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated models to train on (default: see docs)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Random seed."),
    ensemble: Optional[int] = typer.Option(None, "--ensemble", min=1, max=20, help="Networks in the ensemble (default 3)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train the shared router on stored outcomes; then fit tokens for calibrated models it did not train on."""
    from lrcal.services.training import train_router

    if images_dir is not None and outcomes is None:
        from lrcal.errors import UsageError

        raise UsageError("--images-dir goes with --outcomes (the images of that file)")
    store = state(ctx).store()
    if outcomes is not None:
        from lrcal.services.imports import import_outcomes

        import_outcomes(store, outcomes, images_dir=images_dir)
    console = err_console()
    result = train_router(
        store, models=_split(models), seed=seed, ensemble=ensemble,
        progress=None if as_json else (lambda m: console.print(f"[dim]{m}[/]")),
    )  # fmt: skip
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"Router {result['version']} trained on {len(result['models'])} models × {result['examples']} examples "
        f"in {result['seconds']:.1f}s ({result['parameters']:,} parameters per network, {result['ensemble']} "
        f"network{'s' if result['ensemble'] != 1 else ''})."
    )
    prior = result["profile_prior"]
    centre = "each task's difficulty-adjusted centre" if prior["center"] == "task" else "the model's overall accuracy"
    chosen = (f"chosen by {prior['chosen_by']}" if prior["chosen_by"] != "fixed"
              else "fixed: too few rows or models to choose it by simulated cold starts, or the config fixes it")
    rows = f"{prior['strength']:g} pseudo-row{'' if prior['strength'] == 1 else 's'}"
    typer.echo(f"Per-task accuracy in profiles: shrunk toward {centre} with {rows} ({chosen}).")
    if result["onboarded"]:
        typer.echo(f"Tokens fitted (router frozen) for: {', '.join(result['onboarded'])}")
    for name, why in result["left_out"].items():
        typer.echo(f"Not trained on, no token: {name} ({why})")


@router_app.command("list", epilog=examples("lrcal router list", "lrcal router list --json"))
@with_output_format
def list_command(
    ctx: typer.Context,
    *,
    fmt: str,
) -> None:
    """List trained router versions (the newest, or the pinned one, is used)."""
    from lrcal.store import loads

    store = state(ctx).store()
    rows = []
    for row in store.router_versions():
        metrics = loads(row["metrics"], {})
        rows.append(
            {
                "version": row["version"],
                "created_at": row["created_at"][:19].replace("T", " "),
                "models": len(loads(row["models"], [])),
                "examples": metrics.get("train_rows", 0) + metrics.get("val_rows", 0),
                "pinned": bool(row["pinned"]),
                "path": row["path"],
            }
        )
    if not rows and fmt == "table":
        typer.echo("No router trained yet: run `lrcal router train`.")
        return
    print_rows(rows, fmt, VERSION_COLUMNS, title="Router versions")


@router_app.command("pin")
def pin_command(
    ctx: typer.Context,
    version: Optional[str] = typer.Argument(None, help="Version to use from now on (omit with --unpin)."),
    unpin: bool = typer.Option(False, "--unpin", help="Use the newest version again."),
) -> None:
    """Pin the router version the services use (default: the newest)."""
    from lrcal.errors import UsageError
    from lrcal.services.router_context import router_version_row

    if unpin and version:
        raise UsageError("give a VERSION to pin, or --unpin, not both")
    store = state(ctx).store()
    if unpin:
        was = store.unpin_router_versions()
        typer.echo(f"Unpinned {was}: the newest router version is used." if was else
                   "No version was pinned: the newest router version is used.")
        return
    if not version:
        raise UsageError("give a VERSION to pin, or --unpin")
    row = router_version_row(store, version)
    store.pin_router_version(row["id"])
    store.log_event("router_pinned", message=f"router {row['version']} pinned")
    typer.echo(f"Pinned router {row['version']}.")


@app.command(
    "route",
    epilog=examples(
        "lrcal route -q 'What is the total on this invoice?' --image invoice.png",
        "lrcal route -q 'Read the sign' --image sign.jpg --lambda-cost 0.5 --models my-vlm,gpt-4o",
    ),
)
@with_output_format
def route_command(
    ctx: typer.Context,
    question: str = typer.Option(..., "--question", "-q", help="The question to route."),
    image: Optional[Path] = typer.Option(None, "--image", help="Image file sent with the question."),
    task: Optional[str] = typer.Option(None, "--task", help="Task group, when known (optional)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated candidates (default: enabled models)."),
    lambda_cost: Optional[float] = typer.Option(None, "--lambda-cost", min=0.0, max=1000.0,
                                                help="Weight of pool-normalized expected cost (default: `lrcal policy show`)."),  # fmt: skip
    lambda_latency: Optional[float] = typer.Option(None, "--lambda-latency", min=0.0, max=1000.0,
                                                   help="Weight of pool-normalized latency (default: the stored policy)."),  # fmt: skip
    risk: float = typer.Option(0.0, "--risk", min=0.0, max=100.0, help="κ: rank by the decision score − κσ (risk-averse)."),
    meta: Optional[list[str]] = typer.Option(None, "--meta", help="COLUMN=VALUE: a metadata column the router "
                                             "was trained with (outcome logs' columns; repeatable)."),
    *,
    fmt: str,
) -> None:
    """Explain one routing decision: per model μ, σ, δ, μ̃, decision score, expected cost/latency, utility, choice."""
    from lrcal.services.route_query import explain_route, parse_metadata

    decision = explain_route(
        state(ctx).store(), question=question, image=image, task=task, models=_split(models),
        lambda_cost=lambda_cost, lambda_latency=lambda_latency, risk=risk, metadata=parse_metadata(meta or []),
    )  # fmt: skip
    for note in decision["notes"]:
        err_console().print(f"note: {note}", markup=False, highlight=False)
    if fmt == "json":
        print_json(decision)
        return
    if fmt == "csv":
        print_rows([{**row, "chosen": row["model"] == decision["choice"]} for row in decision["models"]], "csv",
                   ROUTE_COLUMNS)  # fmt: skip
        return
    print_table([route_table_row(row, decision["choice"]) for row in decision["models"]], ROUTE_COLUMNS,
                title=f"Route (router {decision['router_version']}): → {decision['choice']}")  # fmt: skip


def route_table_row(row: dict, choice: str | None) -> dict:
    from lrcal.tui import fmt

    return {
        "model": row["model"],
        "mu": f"{row['mu']:.3f}",
        "sigma": f"{row['sigma']:.3f}",
        "delta": f"{row['delta']:+.3f}",
        "network_score": "" if row.get("network_score") is None else f"{row['network_score']:.3f}",
        "score": f"{row['score']:.3f}",
        "expected_cost_usd": fmt.usd(row["expected_cost_usd"]),
        "expected_latency_ms": fmt.ms(row["expected_latency_ms"]),
        "utility": f"{row['utility']:.3f}",
        "chosen": "◀ chosen" if row["model"] == choice else "",
    }
