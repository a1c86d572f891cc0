"""Commands: ``lrcal sets validate|generate`` (list/show/import live with the store)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, print_json, state
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
    n: int = typer.Option(128, "--n", "-n", help="Number of examples."),
    seed: int = typer.Option(0, "--seed", help="Random seed (built-in sets use 1, 2 and 3)."),
    groups: Optional[str] = typer.Option(
        None, "--groups", help="Comma-separated task groups (default: ocr,chart,document,spatial,vqa,math)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT_DIR."),
) -> None:
    """Generate a synthetic calibration set with pillow (deterministic for given arguments)."""
    from lrcal.calsets import SetError
    from lrcal.calsets.format import TASK_GROUPS
    from lrcal.calsets.generator import check_arguments, generate_set

    set_name = name or out_dir.resolve().name
    chosen = tuple(g.strip() for g in groups.split(",") if g.strip()) if groups is not None else TASK_GROUPS
    try:
        check_arguments(set_name, n, seed, chosen)
    except SetError as exc:
        raise UsageError(str(exc)) from None
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
