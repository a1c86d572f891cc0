"""Command: import-outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, print_json, state


@app.command("import-outcomes")
def import_outcomes_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Wide outcome CSV (MMR-Bench compatible), or the long CSV with --samples."),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Resolve image paths against this directory."),
    name: Optional[str] = typer.Option(None, "--name", help="Dataset name (default: the file name)."),
    samples: Optional[Path] = typer.Option(
        None, "--samples", help="Long format: FILE has sample_id, model_id, score[, cost, tokens, latency_ms]; this CSV has the samples."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Import real per-model outcome logs as training data for the shared router."""
    from lrcal.services.imports import import_outcomes

    summary = import_outcomes(state(ctx).store(), file, images_dir=images_dir, name=name, samples_path=samples)
    if as_json:
        print_json(summary)
        return
    if summary["already_imported"]:
        typer.echo(f"{file} is already imported as {summary['dataset']} ({summary['version'][:12]}); nothing to do.")
        return
    typer.echo(
        f"Imported {summary['dataset']}: {summary['samples']} samples × {len(summary['models'])} models "
        f"({summary['outcomes']} outcomes, {len(summary['tasks'])} tasks)."
    )
    typer.echo("Next: lrcal router train")
