"""Command: calibrate."""

from __future__ import annotations

from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.cli.help_text import examples
from lrcal.cli.output import Column, print_table
from lrcal.errors import LrcalError


@app.command(
    "calibrate",
    epilog=examples(
        "lrcal calibrate my-vlm",
        "lrcal calibrate my-vlm --set builtin-v1-quick --limit 32",
        "lrcal calibrate my-vlm --refit      # after `lrcal router train`",
    ),
)
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
    progress = _progress(enabled=True)
    try:
        with progress as (on_start, on_outcome):
            report = calibrate_and_fit(store, request, fit=not no_fit, refit=refit, on_start=on_start,
                                       on_outcome=on_outcome, notify=err_console().print)  # fmt: skip
    except KeyboardInterrupt:
        err_console().print(progress.interrupted_message(), highlight=False)
        raise typer.Exit(130) from None
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
        self.total: int | None = None  # examples of the run, once known
        self.stored = 0  # of them with an outcome stored

    def interrupted_message(self) -> str:
        if self.total is None:
            return "Interrupted before any request was sent; run the same command to start again."
        return f"Interrupted: {self.stored} of {self.total} stored; run the same command to resume."

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
        self.total, self.stored = total, done
        if self.progress is not None:
            self.task = self.progress.add_task("calibrating", total=total, completed=done, errors=0)

    def on_outcome(self, example: dict, fields: dict) -> None:
        self.stored += 1
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


REPORT_COLUMNS = [
    Column("group", "task group"),
    Column("n", "n", justify="right"),
    Column("accuracy", "accuracy", justify="right"),
    Column("p50", "p50 ms", drop=3, justify="right"),
    Column("p95", "p95 ms", drop=2, justify="right"),
    Column("cost", "mean cost", drop=4, justify="right"),
    Column("errors", "errors", drop=5, justify="right"),
    Column("predicted", "predicted (90% interval)", justify="right"),
]


def report_rows(report: dict) -> tuple[list[dict], list]:
    """The report's per-task table: (rows, columns); the predicted column only with a fitted token."""
    from lrcal.tui import fmt

    token = report.get("token") or {}
    per_task_token = token.get("per_task", {}) if token.get("fitted") else {}
    rows = []
    for group, stats in report["per_task"].items():
        pred = per_task_token.get(group)
        rows.append({
            "group": group, "n": str(stats["n"]), "accuracy": _fmt(stats["accuracy"]),
            "p50": _fmt(stats["latency_ms_p50"], ".0f"), "p95": _fmt(stats["latency_ms_p95"], ".0f"),
            "cost": fmt.usd(stats["cost_usd_mean"]), "errors": str(stats["errors"]),
            "predicted": f"{pred['predicted']:.3f} ({pred['low']:.2f}–{pred['high']:.2f})" if pred else "–",
        })  # fmt: skip
    columns = REPORT_COLUMNS if per_task_token else REPORT_COLUMNS[:-1]
    return rows, columns


def _print_report(report: dict) -> None:
    from rich.console import Console

    from lrcal.services.onboarding import fit_method_words

    console = Console()
    token = report.get("token") or {}
    title = (
        f"{report['model']} on {report['set']} ({report['set_version'][:12]}): "
        f"{report['completed']}/{report['examples']} examples, accuracy {_fmt(report['accuracy'])}"
    )
    rows, columns = report_rows(report)
    print_table(rows, columns, title=title, console=console)
    if report.get("errors_by_kind"):
        console.print("errors by kind: " + ", ".join(f"{k} {v}" for k, v in report["errors_by_kind"].items())
                      + f" ({report['error_rate']:.0%} of requests; excluded from accuracy, not counted wrong)")
    if report["completed"] < report["examples"]:
        console.print(
            f"[yellow]incomplete:[/] {report['examples'] - report['completed']} examples have no outcome; "
            f"run the same command again to resume"
        )
    console.print(f"status: {report.get('status')}")
    if token.get("fitted") and token.get("method"):
        how = fit_method_words(token["method"], token.get("prior_strength"))
        console.print(f"token: router {token.get('router_version')}, {token.get('n_examples')} examples, {how}, "
                      f"fitted in {token.get('fit_seconds', 0.0):.2f}s with the router frozen")
    if token and not token.get("fitted") and token.get("message"):
        console.print(token["message"])
