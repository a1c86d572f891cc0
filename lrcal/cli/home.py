"""`lrcal home`: where the home and its database are."""

from __future__ import annotations

import typer

from lrcal.cli._app import app, print_json, state
from lrcal.cli.help_text import examples


@app.command("home", epilog=examples("lrcal home", "cd \"$(lrcal home --dir)\"", "sqlite-utils tables \"$(lrcal home --db)\" --counts",
                                     "datasette \"$(lrcal home --db)\""))
def home_command(
    ctx: typer.Context,
    dir_only: bool = typer.Option(False, "--dir", help="Print only the home directory."),
    db_only: bool = typer.Option(False, "--db", help="Print only the database path."),
    as_json: bool = typer.Option(False, "--json", help="Print {home, database} as JSON."),
) -> None:
    """Print the home directory and its database.

    Open the database with sqlite-utils or Datasette; docs/store.md describes its tables."""
    from lrcal.home import db_path

    home = state(ctx).home
    database = db_path(home)
    if as_json:
        print_json({"home": str(home), "database": str(database), "database_exists": database.exists()})
    elif dir_only:
        typer.echo(str(home))
    elif db_only:
        typer.echo(str(database))
    else:
        typer.echo(f"home      {home}")
        typer.echo(f"database  {database}" + ("" if database.exists() else "  (not created yet)"))
