"""Commands: bench router / forward / features (others add calibrate / coldstart)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json

bench_app = typer.Typer(
    help="Offline benchmarks: router quality against baselines, forward time, featurizer speed.",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")


def _threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _pct(value: float) -> str:
    return "-" if value is None or value != value else f"{100 * value:.1f}"


@bench_app.command("router")
def bench_router_command(
    outcomes: Path = typer.Option(..., "--outcomes", help="Outcome CSV (wide format; long format with --samples)."),
    samples: Optional[Path] = typer.Option(None, "--samples", help="Long format: the samples CSV for --outcomes."),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Resolve image paths against this directory."),
    name: Optional[str] = typer.Option(None, "--name", help="Dataset name (default: the file name)."),
    seeds: int = typer.Option(3, "--seeds", min=1, max=50, help="Number of splits (seeds 0..N-1)."),
    ensemble: int = typer.Option(3, "--ensemble", min=1, max=10, help="Router networks averaged per split."),
    threads: int = typer.Option(2, "--threads", min=1, max=64, help="torch CPU threads."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Router test accuracy vs best single, per-task best, kNN, per-model logistic, random, oracle
    (stratified 70/10/20 per seed; everything chosen on validation)."""
    from lrcal.evaluation.router_bench import bench_router
    from lrcal.outcomes import read_long_csv, read_wide_csv

    _threads(threads)
    table = read_long_csv(outcomes, samples, images_dir=images_dir, name=name) if samples else read_wide_csv(
        outcomes, images_dir=images_dir, name=name)
    console = err_console()
    result = bench_router(table, range(seeds), ensemble=ensemble,
                          progress=None if as_json else (lambda m: console.print(f"[dim]{m}[/dim]")))
    if as_json:
        print_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    out = Console()
    table_view = Table(title=f"{result['dataset']}: {result['n_samples']} samples × {result['n_models']} models, "
                             f"{len(result['seeds'])} seeds (test accuracy %, mean ± std)")
    for col in ("method", "accuracy", "router − method", "router wins", "distinct picks", "top pick share"):
        table_view.add_column(col, justify="left" if col == "method" else "right")
    for method, entry in result["methods"].items():
        paired = result["paired_router_minus"].get(method)
        table_view.add_row(
            method,
            f"{_pct(entry['accuracy_mean'])} ± {_pct(entry['accuracy_std'])}",
            f"{100 * paired['diff_mean']:+.1f} ± {_pct(paired['diff_std'])}" if paired else "",
            f"{paired['router_wins']}/{len(result['seeds'])}" if paired else "",
            f"{entry['distinct_models_mean']:.1f}" if "distinct_models_mean" in entry else "",
            _pct(entry.get("top_pick_share_mean")) if "top_pick_share_mean" in entry else "",
        )
    out.print(table_view)
    if "costs" in result:
        c = result["costs"]
        out.print(f"cost frontier: nAUC {c['nauc']['mean']:.3f} ± {c['nauc']['std']:.3f}, Ps {_pct(c['ps']['mean'])}, "
                  f"QNC {c['qnc']['mean']:.3f}" if c["qnc"]["mean"] == c["qnc"]["mean"] else "QNC: best single never reached")
    out.print(f"[dim]{result['seconds']:.0f}s, {result['torch_threads']} threads; router ensemble of {result['ensemble']}[/dim]")


@bench_app.command("forward")
def bench_forward_command(
    models: str = typer.Option("10,20", "--models", help="Comma-separated pool sizes."),
    threads: int = typer.Option(2, "--threads", min=1, max=64, help="torch CPU threads."),
    repeats: int = typer.Option(5, "--repeats", min=1, max=50, help="Best of this many timing runs."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Router forward time per query at batch 256 and batch 1, parameter count, against a
    reference-style network measured in the same run."""
    from lrcal.errors import UsageError
    from lrcal.evaluation.speed import bench_forward

    try:
        sizes = [int(x) for x in models.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--models must be comma-separated integers (got {models!r})") from None
    if not sizes or any(k < 1 or k > 512 for k in sizes):
        raise UsageError("--models must list pool sizes between 1 and 512")
    result = bench_forward(sizes, threads=threads, repeats=repeats)
    if as_json:
        print_json(result)
        return
    typer.echo(f"parameters: {result['parameters']:,} (reference-style: {result['reference_style_parameters']:,}); "
               f"H={result['hidden']}, L={result['layers']}, {threads} threads")
    for row in result["rows"]:
        typer.echo(f"K={row['models']:>3}  batch {row['batch']:>3}: {row['ms_per_query']:.4f} ms/query  "
                   f"(reference-style {row['reference_style_ms_per_query']:.4f}; ratio {row['ratio']:.2f})")


@bench_app.command("features")
def bench_features_command(
    queries: int = typer.Option(1000, "--queries", min=1, max=100000, help="Number of queries (one image each)."),
    size: int = typer.Option(512, "--size", min=8, max=4096, help="Image side in pixels."),
    image_format: str = typer.Option("jpeg", "--format", help="jpeg or png."),
    threads: int = typer.Option(2, "--threads", min=1, max=64, help="Decoder threads (and torch threads)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Featurizer throughput on synthetic images against plain pillow decoding of the same files."""
    from lrcal.errors import UsageError
    from lrcal.evaluation.speed import bench_features

    if image_format not in ("jpeg", "png"):
        raise UsageError("--format must be jpeg or png")
    result = bench_features(queries, size, image_format, threads)
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{queries} queries with {size}×{size} {image_format} images: featurize {result['featurize_seconds']:.2f}s "
        f"({result['ms_per_query']:.2f} ms/query; CPU {result['cpu_ms_per_query']:.2f} ms/query), pillow decode only "
        f"{result['decode_only_seconds']:.2f}s (ratio {result['ratio_to_decode']:.2f}); deterministic: {result['deterministic']}"
    )
