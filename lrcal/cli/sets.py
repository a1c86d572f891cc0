"""Commands: ``lrcal sets validate|generate`` (list/show/import live with the store)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, print_json, state
from lrcal.cli.help_text import examples as example_lines_epilog
from lrcal.cli.output import Column, cell, print_json_or_text, print_rows, print_table, with_output_format
from lrcal.errors import LrcalError, UsageError

sets_app = typer.Typer(
    name="sets",
    help="Calibration sets: validate a set directory, generate synthetic sets.",
    no_args_is_help=True,
)
app.add_typer(sets_app, name="sets")


@sets_app.command("validate")
def validate_command(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="A set directory, or the name of a built-in or imported set."),
    as_json: bool = typer.Option(False, "--json", help="Print {ok, path, problems, ...} as JSON."),
) -> None:
    """Check a set and list every problem as 'file:line: kind: message' (exit 1 if any)."""
    from lrcal.calsets import SetError, load_set, resolve_set

    directory = resolve_set(path, state(ctx).home)
    try:
        cset = load_set(directory)
    except SetError as exc:
        if as_json:
            print_json({"ok": False, "path": str(directory), "problems": [p.to_dict() for p in exc.problems]})
            raise typer.Exit(1)
        for problem in exc.problems:
            typer.echo(str(problem))
        count = len(exc.problems)
        raise LrcalError(f"{count} problem{'s' if count != 1 else ''} in {directory}") from None
    counts = cset.group_counts()
    if as_json:
        print_json(
            {
                "ok": True,
                "path": str(cset.path),
                "name": cset.name,
                "version": cset.version,
                "examples": len(cset),
                "task_groups": counts,
                "problems": [],
            }
        )
        return
    groups = ", ".join(f"{group} {n}" for group, n in counts.items())
    typer.echo(f"OK {cset.name}: {len(cset)} examples ({groups}), version {cset.short_version}")


@sets_app.command("generate")
def generate_command(
    out_dir: Path = typer.Argument(..., help="Directory to write (must be empty or absent unless --force)."),
    name: Optional[str] = typer.Option(None, "--name", help="Set name, also the id prefix (default: the directory's name)."),
    n: int = typer.Option(128, "--n", "-n", min=1, max=1_000_000, help="Number of examples."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Random seed (built-in sets use 1, 2 and 3)."),
    groups: Optional[str] = typer.Option(
        None, "--groups", help="Comma-separated task groups (default: ocr,chart,document,spatial,vqa,math)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT_DIR."),
) -> None:
    """Generate a synthetic calibration set with pillow (deterministic for given arguments)."""
    from lrcal.calsets import BUILTIN_SET_NAMES, SetError
    from lrcal.calsets.format import TASK_GROUPS
    from lrcal.calsets.generator import check_arguments, generate_set

    set_name = name or out_dir.resolve().name
    chosen = tuple(g.strip() for g in groups.split(",") if g.strip()) if groups is not None else TASK_GROUPS
    try:
        check_arguments(set_name, n, seed, chosen)
    except SetError as exc:
        raise UsageError(str(exc)) from None
    # A set is found by its name, so one named like a built-in set would hide it; `calibrate`
    # refuses such a set, so refuse it here before anything is written (as `sets import` does).
    # (scripts/generate_builtin_sets.py makes the built-in sets through generate_set, not this command.)
    if set_name in BUILTIN_SET_NAMES:
        raise LrcalError(f"'{set_name}' is a built-in set name; choose another with --name")
    if out_dir.exists() and not out_dir.is_dir():
        raise LrcalError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise LrcalError(f"{out_dir} is not empty (use --force to replace it)")
    started = time.perf_counter()
    cset = generate_set(out_dir, set_name, n, seed, chosen, overwrite=force)
    seconds = time.perf_counter() - started
    counts = ", ".join(f"{group} {k}" for group, k in cset.group_counts().items())
    typer.echo(
        f"Wrote {len(cset)} examples to {out_dir} ({counts}), version {cset.short_version} "
        f"in {seconds:.1f} s ({len(cset) / max(seconds, 1e-9):.0f} examples/s)"
    )


SET_COLUMNS = [
    Column("name", "name"),
    Column("source", "source", drop=3),
    Column("examples", "examples", justify="right"),
    Column("version", "version", drop=2),
    Column("task_groups", "task groups", drop=1, shrink_to=24, wrap=True),
]
GROUP_COLUMNS = [
    Column("group", "task group"),
    Column("n", "n", justify="right"),
    Column("subtypes", "subtypes", shrink_to=20, wrap=True),
    Column("answer_types", "answer types", drop=1, shrink_to=14, wrap=True),
]
SAMPLE_COLUMNS = [
    Column("id", "id", drop=2),
    Column("task_group", "task group", drop=1),
    Column("question", "question", shrink_to=24, wrap=True),
    Column("answer", "answer", shrink_to=10),
    Column("answer_type", "type", drop=3),
]


@sets_app.command("list", epilog=example_lines_epilog("lrcal sets list", "lrcal sets list --json"))
@with_output_format
def list_command(
    ctx: typer.Context,
    *,
    fmt: str,
) -> None:
    """List calibration sets: built-in, imported into the home, and those registered in the store."""
    from lrcal.services.sets import available_sets

    rows = available_sets(state(ctx).store())
    table_rows = [
        {**{k: cell(v) for k, v in row.items()}, "version": (row["version"] or "")[:12],
         "task_groups": ", ".join(f"{g} {n}" for g, n in (row["task_groups"] or {}).items())}
        for row in rows
    ]  # fmt: skip
    print_rows(rows, fmt, SET_COLUMNS, title="Calibration sets", table_rows=table_rows)


@sets_app.command("show", epilog=example_lines_epilog("lrcal sets show builtin-v1", "lrcal sets show builtin-v1 --examples 10"))
def show_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Set name (built-in, imported) or directory."),
    examples: int = typer.Option(5, "--examples", min=0, max=1_000_000, help="How many example rows to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the set summary as JSON."),
) -> None:
    """Show a set: version, counts per task group, subtype and answer type, and a few examples."""
    from lrcal.services.sets import describe_set

    print_json_or_text(describe_set(state(ctx).store(), name, n_examples=examples), as_json, _print_set)


def _print_set(info: dict) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{info['name']}[/] — {info['examples']} examples, version {info['version'][:12]}")
    console.print(f"path: {info['path']}", highlight=False)
    if info.get("description"):
        console.print(info["description"])
    groups = [{"group": group, "n": str(stats["n"]), "subtypes": ", ".join(stats["subtypes"]),
               "answer_types": ", ".join(stats["answer_types"])} for group, stats in info["task_groups"].items()]  # fmt: skip
    print_table(groups, GROUP_COLUMNS, title="Task groups", console=console)
    if info["sample"]:
        print_table(info["sample"], SAMPLE_COLUMNS, title="Examples", console=console)


@sets_app.command("import")
def import_command(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A calibration-set directory (manifest.jsonl + images)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name to use (default: set.json's name or the directory name)."),
    as_json: bool = typer.Option(False, "--json", help="Print the registered set as JSON."),
) -> None:
    """Validate a set, copy it into the home (so it can be used by name) and register it."""
    from lrcal.services.sets import import_set

    print_json_or_text(import_set(state(ctx).store(), path, name=name), as_json, _print_imported)


def _print_imported(row: dict) -> None:
    typer.echo(f"Imported {row['name']}: {row['size']} examples, version {row['version'][:12]} ({row['path']}).")
    typer.echo(f"Use it with: lrcal calibrate MODEL --set {row['name']}")
