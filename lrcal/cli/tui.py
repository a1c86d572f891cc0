"""`lrcal tui`: the interactive review of per-task routing (Textual)."""

from __future__ import annotations

from typing import Optional

import typer

from lrcal.cli._app import app, state
from lrcal.cli.help_text import examples
from lrcal.errors import LrcalError


@app.command("tui", epilog=examples("lrcal tui", "lrcal --home .lrcal-demo tui --lambda-cost 0.5"))
def tui(
    ctx: typer.Context,
    set_ref: Optional[str] = typer.Option(
        None, "--set", help="Route this stored set's queries (default: the last validation's, else the last calibration's)."
    ),
    lambda_cost: Optional[float] = typer.Option(
        None, "--lambda-cost", min=0.0, max=1000.0, help="Initial λ_cost (default: the routing policy; change it live with [ and ])."
    ),
    lambda_latency: Optional[float] = typer.Option(
        None, "--lambda-latency", min=0.0, max=1000.0, help="Initial λ_latency (default: the routing policy; live with , and .)."
    ),
) -> None:
    """Review per-task routing interactively: models, routing table, λ trade-offs, examples, charts."""
    state(ctx).require_home(empty_dir_ok=True)
    if not interactive_terminal():
        # Textual would write escape codes into the file or pipe and wait for keys that never come.
        raise LrcalError(
            "lrcal tui needs an interactive terminal (its output is redirected or piped); "
            "use `lrcal models`, `lrcal route` or `lrcal events` in scripts"
        )
    from lrcal.services.review import ReviewService
    from lrcal.services.routing_policy import resolved
    from lrcal.tui.app import LrcalApp  # textual is imported only here

    lambda_cost, lambda_latency = resolved(state(ctx).store(), lambda_cost, lambda_latency)
    service = ReviewService(state(ctx).home)
    LrcalApp(service, set_ref=set_ref, lambda_cost=lambda_cost, lambda_latency=lambda_latency).run()


def interactive_terminal() -> bool:
    import sys

    return sys.stdout.isatty() and sys.stdin.isatty()
