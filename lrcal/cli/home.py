"""`lrcal home`: print the home directory."""

from __future__ import annotations

import typer

from lrcal.cli._app import app, state


@app.command("home")
def home_command(ctx: typer.Context) -> None:
    """Print the home directory (database and router artifacts live here)."""
    typer.echo(str(state(ctx).home))
