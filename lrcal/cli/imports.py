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
    if summary["restored_for"]:
        typer.echo(f"{file} is version {summary['version'][:12]} of {summary['dataset']}, imported before; it is the "
                   f"latest again for {', '.join(summary['restored_for'])}.")
    else:
        typer.echo(
            f"Imported {summary['dataset']}: {summary['samples']} samples × {len(summary['models'])} models "
            f"({summary['outcomes']} outcomes, {len(summary['tasks'])} tasks)."
        )
    if summary["replaced_versions"]:
        versions = ", ".join(v[:12] for v in summary["replaced_versions"])
        dropped = f", {summary['dropped_samples']} of them not in this version" if summary["dropped_samples"] else ""
        those = "that version" if len(summary["replaced_versions"]) == 1 else "those versions"
        typer.echo(f"It replaces version {versions} of {summary['dataset']} for its models: in training the outcomes "
                   f"of {those}' {summary['replaced_samples']} samples give way to this version's{dropped}.")
    for other, n in summary["queries_also_in"].items():
        typer.echo(f"{n} of its samples are the same queries as in set '{other}': in training the latest outcome of "
                   "each model on a query is the one used.")
    if summary["models_without_outcomes"]:
        typer.echo(f"warning: no outcome at all (every cell empty) for {', '.join(summary['models_without_outcomes'])}")
    if summary["ignored_columns"]:
        typer.echo(f"warning: left out {len(summary['ignored_columns'])} column(s) not read as outcomes "
                   f"(named after a model but not one of its known outcome columns, or in the long format not a "
                   f"known outcome column): {', '.join(summary['ignored_columns'])} (docs/cli.md, import-outcomes)")
    if summary["not_trained"]:
        typer.echo(f"warning: {', '.join(summary['not_trained'])} registered with an endpoint and not calibrated yet: "
                   "router training leaves these outcomes out until `lrcal calibrate NAME` has run.")
    typer.echo("Next: lrcal router train")
