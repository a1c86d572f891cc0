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
        "lrcal calibrate my-vlm --adaptive --budget 64   # examples chosen where the routing decision is open",
    ),
)
def calibrate_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model to calibrate."),
    set_ref: Optional[str] = typer.Option(
        None, "--set", help="Calibration set: built-in name, set in the home, or path (default builtin-v1; with "
        "--adaptive the candidate pool builtin-v1-pool; with --refit the set of the model's latest run)."
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, max=1_000_000, help="Use N examples, stratified by task group."),
    concurrency: Optional[int] = typer.Option(
        None, "--concurrency", min=1, max=1024, help="Parallel requests (default and most: the model's max concurrency)."
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
    adaptive: bool = typer.Option(
        False, "--adaptive", help="Choose the examples batch by batch where the routing decision is still open, "
        "from a candidate pool larger than the budget; stop when it is settled."
    ),
    budget: int = typer.Option(64, "--budget", min=16, max=100_000, help="With --adaptive: at most this many examples."),
    batch: int = typer.Option(16, "--batch", min=1, max=1024, help="With --adaptive: examples per batch (sent with the "
                              "endpoint's concurrency)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Run a calibration set against a model, store every outcome, then fit its capability token."""
    from lrcal.calsets.generator import POOL_SET_NAME
    from lrcal.services.adaptive_calibration import AdaptivePlan
    from lrcal.services.calibration import CalibrateRequest, calibrate_and_fit

    store = state(ctx).store()
    plan = AdaptivePlan(budget=budget, batch=batch) if adaptive else None
    if refit and adaptive:
        raise LrcalError("--refit refits from stored outcomes; --adaptive asks for new ones: use one of them")
    default_set = None if refit else POOL_SET_NAME if adaptive else "builtin-v1"  # --refit: the latest run's set
    request = CalibrateRequest(model=name, set_ref=set_ref or default_set, limit=limit,
                               concurrency=concurrency, fresh=fresh, retry_errors=retry_errors, adaptive=plan)
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


STOP_WORDS = {
    "settled": "no remaining example can change a routing decision by more than {stop:.4f} of routed accuracy",
    "budget spent": "the budget is spent",
    "pool exhausted": "the candidate pool has no example left",
}

ADAPTIVE_COLUMNS = [
    Column("group", "task group"),
    Column("n", "spent", justify="right"),
    Column("posterior", "quality (90% posterior interval)", justify="right"),
    Column("incumbents", "best incumbent", justify="right"),
    Column("routed", "share routed", drop=3, justify="right"),
    Column("verdict", "decision"),
]


def adaptive_rows(summary: dict) -> list[dict]:
    """Per task group: examples spent, the newcomer's posterior, the incumbents' level, the verdict."""
    rows = []
    for g in summary["groups"]:
        rows.append({
            "group": g["group"], "n": str(g["n"]),
            "posterior": f"{g['mean']:.3f} ({g['low']:.2f}–{g['high']:.2f})",
            "incumbents": _fmt(g["incumbents"]), "routed": f"{g['routed_share']:.0%}",
            "verdict": {"below": "below the incumbents", "above": "above the incumbents", "open": "open"}.get(
                g["verdict"], g["verdict"]),
        })  # fmt: skip
    return rows


def print_adaptive(summary: dict, console) -> None:
    why = STOP_WORDS.get(summary["stop"], summary["stop"] or "").format(stop=summary["stop_value"])
    console.print(f"adaptive: {summary['used']} of {summary['budget']} examples used in {summary['batches']} batches "
                  f"of up to {summary['batch']}; stopped: {summary['stop']} ({why})")
    print_table(adaptive_rows(summary), ADAPTIVE_COLUMNS, title="where the examples went (router "
                f"{summary['router_version']}'s view of the incumbents)", console=console)


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
    if report.get("resumed") and not report.get("adaptive"):  # (the adaptive summary says what it asked)
        asked = report.get("requested") or 0
        console.print(f"resumed run {report.get('run_id')}: {asked} example{'s' if asked != 1 else ''} asked now, "
                      f"the other outcomes reused (--fresh asks every example again)")
    if report.get("adaptive"):
        print_adaptive(report["adaptive"], console)
    console.print(f"status: {report.get('status')}")
    if token.get("fitted") and token.get("method"):
        how = fit_method_words(token["method"], token.get("prior_strength"))
        console.print(f"token: router {token.get('router_version')}, {token.get('n_examples')} examples, {how}, "
                      f"fitted in {token.get('fit_seconds', 0.0):.2f}s with the router frozen")
    if token and not token.get("fitted") and token.get("message"):
        console.print(token["message"])
