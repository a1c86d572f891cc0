"""Command: outcomes — browse stored outcomes like `llm logs`."""

from __future__ import annotations

from typing import Optional

import typer

from lrcal.cli._app import app, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, cell, print_rows, with_output_format

OUTCOME_COLUMNS = [
    Column("id", "id", drop=9, justify="right"),
    Column("created_at", "time (UTC)", drop=7),
    Column("model", "model"),
    Column("set_name", "set", drop=8, shrink_to=10),
    Column("task_group", "task", drop=5),
    Column("question", "question", shrink_to=16),
    Column("reference", "reference", shrink_to=9),
    Column("answer", "answer", shrink_to=9),
    Column("score", "score", justify="right"),
    Column("latency_ms", "ms", drop=4, justify="right"),
    Column("error_kind", "error", drop=3, shrink_to=10),
    Column("example_id", "example", drop=6),
]


def _one_line(value) -> str:
    return " ".join(cell(value).split())


def _table_row(row: dict) -> dict:
    return {
        **{key: _one_line(value) for key, value in row.items()},
        "created_at": (row["created_at"] or "")[:16].replace("T", " "),
        "score": "" if row["score"] is None else f"{row['score']:.2f}",
        "latency_ms": "" if row["latency_ms"] is None else f"{row['latency_ms']:.0f}",
    }


@app.command(
    "outcomes",
    epilog=examples(
        "lrcal outcomes",
        "lrcal outcomes my-vlm -n 50 --wrong",
        "lrcal outcomes my-vlm --task chart --errors",
        "lrcal outcomes --set builtin-v1-holdout --json",
    ),
)
@with_output_format
def outcomes_command(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, help="Only this model's outcomes (a removed model's too)."),
    limit: int = typer.Option(20, "--limit", "-n", min=0, max=10_000_000, help="Newest N outcomes (0: all)."),
    set_name: Optional[str] = typer.Option(None, "--set", help="Only outcomes on this calibration set."),
    task: Optional[str] = typer.Option(None, "--task", help="Only this task group."),
    errors: bool = typer.Option(False, "--errors", help="Only failed calls (an error kind, no answer)."),
    wrong: bool = typer.Option(False, "--wrong", help="Only answers scored wrong."),
    *,
    fmt: str,
) -> None:
    """Browse stored outcomes, newest first: question, reference, answer, score, latency and error."""
    from lrcal.services.outcomes import browse_outcomes

    rows = browse_outcomes(state(ctx).store(), model, set_name=set_name, task=task, errors=errors, wrong=wrong,
                           limit=limit or None)  # fmt: skip
    if not rows and fmt == "table":
        typer.echo("No outcomes match." if (model or set_name or task or errors or wrong) else
                   "No outcomes yet: run `lrcal calibrate NAME` (or `lrcal demo`).")  # fmt: skip
        return
    columns = [c for c in OUTCOME_COLUMNS if not (model and c.key == "model")] if fmt == "table" else OUTCOME_COLUMNS
    title = f"Outcomes of {model}" if model else "Outcomes"
    print_rows(rows, fmt, columns, title=f"{title} (newest first)", table_rows=[_table_row(r) for r in rows])
