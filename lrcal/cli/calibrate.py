"""Command: calibrate."""

from __future__ import annotations

from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.errors import LrcalError


@app.command("calibrate")
def calibrate_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model to calibrate."),
    set_ref: str = typer.Option("builtin-v1", "--set", help="Calibration set: built-in name, set in the home, or path."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use N examples, stratified by task group."),
    concurrency: Optional[int] = typer.Option(
        None, "--concurrency", min=1, help="Parallel requests (default: the model's max concurrency)."
    ),
    fresh: bool = typer.Option(
        False, "--fresh", help="Start a new run that asks every example again (stored outcomes are not reused)."
    ),
    retry_errors: bool = typer.Option(
        False, "--retry-errors", help="Ask again only for the examples whose stored outcome is an endpoint error."
    ),
    no_fit: bool = typer.Option(False, "--no-fit", help="Store outcomes only; do not fit the capability token."),
    refit: bool = typer.Option(
        False, "--refit", help="Refit the token from stored outcomes (no endpoint calls), e.g. after a router retrain."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Run a calibration set against a model, store every outcome, then fit its capability token."""
    from lrcal.services.calibration import CalibrateRequest, calibrate_and_fit

    store = state(ctx).store()
    request = CalibrateRequest(model=name, set_ref=set_ref, limit=limit, concurrency=concurrency, fresh=fresh,
                               retry_errors=retry_errors)  # fmt: skip
    with _progress(enabled=True) as (on_start, on_outcome):
        report = calibrate_and_fit(store, request, fit=not no_fit, refit=refit, on_start=on_start,
                                   on_outcome=on_outcome, notify=err_console().print)  # fmt: skip
    if as_json:
        print_json(report)
    else:
        _print_report(report)
    if report.get("not_calibrated"):
        raise LrcalError(report["not_calibrated"])


class _progress:
    """A transient rich progress bar on stderr; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.progress = None
        self.task = None

    def __enter__(self):
        import sys

        if self.enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("errors {task.fields[errors]}"),
                TimeRemainingColumn(),
                console=err_console(),
                transient=True,
            )
            self.progress.__enter__()
        return self.on_start, self.on_outcome

    def on_start(self, total: int, done: int) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task("calibrating", total=total, completed=done, errors=0)

    def on_outcome(self, example: dict, fields: dict) -> None:
        if self.progress is not None and self.task is not None:
            task = self.progress.tasks[self.task]
            errors = task.fields["errors"] + (1 if fields.get("error_kind") else 0)
            self.progress.update(self.task, advance=1, errors=errors)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.__exit__(*exc)
        return False


def _fmt(value, spec: str = ".3f", empty: str = "–") -> str:
    return empty if value is None else format(value, spec)


def _print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    token = report.get("token") or {}
    per_task_token = token.get("per_task", {}) if token.get("fitted") else {}
    title = (
        f"{report['model']} on {report['set']} ({report['set_version'][:12]}): "
        f"{report['completed']}/{report['examples']} examples, accuracy {_fmt(report['accuracy'])}"
    )
    table = Table(title=title)
    for col in ("task group", "n", "accuracy", "p50 ms", "p95 ms", "mean cost $", "errors"):
        table.add_column(col, justify="right" if col != "task group" else "left")
    if per_task_token:
        table.add_column("predicted (interval)", justify="right")
    for group, stats in report["per_task"].items():
        cells = [
            group,
            str(stats["n"]),
            _fmt(stats["accuracy"]),
            _fmt(stats["latency_ms_p50"], ".0f"),
            _fmt(stats["latency_ms_p95"], ".0f"),
            _fmt(stats["cost_usd_mean"], ".6f"),
            str(stats["errors"]),
        ]
        if per_task_token:
            pred = per_task_token.get(group)
            cells.append(
                f"{pred['predicted']:.3f} ({pred['low']:.2f}–{pred['high']:.2f})" if pred else "–"
            )
        table.add_row(*cells)
    console.print(table)
    if report.get("errors_by_kind"):
        console.print("errors by kind: " + ", ".join(f"{k} {v}" for k, v in report["errors_by_kind"].items())
                      + f" ({report['error_rate']:.0%} of requests; excluded from accuracy, not counted wrong)")
    if report["completed"] < report["examples"]:
        console.print(
            f"[yellow]incomplete:[/] {report['examples'] - report['completed']} examples have no outcome; "
            f"run the same command again to resume"
        )
    console.print(f"status: {report.get('status')}")
    if per_task_token and token.get("method"):
        how = ("profile only (cross-validation kept the residual out)" if token["method"] == "profile"
               else f"profile + fitted residual (prior strength {token.get('prior_strength'):g})")
        console.print(f"token: router {token.get('router_version')}, {token.get('n_examples')} examples, {how}, "
                      f"fitted in {token.get('fit_seconds', 0.0):.2f}s with the router frozen")
    if token and not token.get("fitted") and token.get("message"):
        console.print(token["message"])
