"""Commands: bench router / forward / features / calibrate / coldstart."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state

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
    seeds: int = typer.Option(3, "--seeds", min=1, max=50, help="Number of seeds (0..N-1): splits, or repeats of the folds."),
    folds: Optional[int] = typer.Option(
        None, "--folds", min=2, max=20,
        help="K-fold cross-fitting: every row a test row once per seed (default: one 70/10/20 split per seed)."),
    null: bool = typer.Option(
        False, "--null",
        help="Null test: permute the query columns among rows of the same task (outcomes stay); "
             "no per-query method can then beat the per-task best."),
    ablate: str = typer.Option(
        "", "--ablate", metavar="PARTS",
        help="Also retrain the router with each of these parts flipped, comma-separated: capsules, affinity, prior "
             "(switched off), latent (latent communication) and linear (the per-model linear heads), both off by "
             "default: switched on."),
    decision_folds: Optional[int] = typer.Option(
        None, "--decision-folds", min=0, max=10,
        help="Folds inside the training rows that fit the decision rule (0: decide on the network's scores; "
             "default: the router's)."),
    ensemble: int = typer.Option(3, "--ensemble", min=1, max=10, help="Router networks averaged per split."),
    threads: int = typer.Option(1, "--threads", min=1, max=64, help="torch CPU threads (1: small networks, see docs/router.md)." ),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Router test accuracy vs best single, per-task best, kNN, per-model logistic, random, oracle,
    with paired differences and their 95 % intervals (everything chosen inside the training rows).

    Example: lrcal bench router --outcomes data.csv --folds 5 --seeds 2 --ablate latent,capsules
    """
    from lrcal.evaluation.router_bench import bench_router
    from lrcal.outcome_table import read_outcome_table

    _threads(threads)
    parts = [p.strip() for p in ablate.split(",") if p.strip()]
    table = read_outcome_table(outcomes, samples, images_dir=images_dir, name=name)
    console = err_console()
    result = bench_router(table, range(seeds), folds=folds, null=null, ablate=parts, ensemble=ensemble,
                          decision_folds=decision_folds,
                          progress=None if as_json else (lambda m: console.print(f"[dim]{m}[/dim]")))
    if as_json:
        print_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    out = Console()
    title = (f"{result['dataset']}: {result['n_samples']} samples × {result['n_models']} models, "
             f"{result['protocol']}, {len(result['seeds'])} seed(s) (test accuracy %)")
    table_view = Table(title=title)
    for col in ("method", "accuracy", "router − method [95% CI]", "seeds won", "distinct picks", "top pick share"):
        table_view.add_column(col, justify="left" if col == "method" else "right")
    for method, entry in result["methods"].items():
        paired = result["paired_router_minus"].get(method)
        spread = f" ± {_pct(entry['accuracy_std'])}" if len(result["seeds"]) > 1 else ""
        label = method
        if method.startswith("ablate:"):
            label = "router, " + result.get("ablation_labels", {}).get(method[len("ablate:"):], method)
        table_view.add_row(
            label,
            f"{_pct(entry['accuracy_mean'])}{spread}",
            (f"{100 * paired['diff_mean']:+.1f} [{100 * paired['ci95'][0]:+.1f}, {100 * paired['ci95'][1]:+.1f}]"
             if paired else ""),
            f"{paired['router_wins']}/{len(result['seeds'])}" if paired else "",
            f"{entry['distinct_models_mean']:.1f}" if "distinct_models_mean" in entry else "",
            _pct(entry.get("top_pick_share_mean")) if "top_pick_share_mean" in entry else "",
        )
    out.print(table_view)
    if "costs" in result:
        c = result["costs"]
        out.print(f"cost frontier: nAUC {c['nauc']['mean']:.3f} ± {c['nauc']['std']:.3f}, Ps {_pct(c['ps']['mean'])}, "
                  f"QNC {c['qnc']['mean']:.3f}" if c["qnc"]["mean"] == c["qnc"]["mean"] else "QNC: best single never reached")
    router = result["methods"]["router"]
    if router.get("mu_ece_mean") is not None:
        slope = router.get("level_slope_mean")
        out.print(f"router μ calibration: ECE {router['mu_ece_mean']:.3f}"
                  + (f", level slope {slope:.2f} (measured model accuracy on mean predicted μ; 1 = calibrated gaps)"
                     if slope is not None else ""))
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


@bench_app.command("calibrate")
def bench_calibrate_command(
    n: int = typer.Option(128, "--n", min=1, max=10_000, help="Examples per calibration run."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, max=256, help="Concurrent requests."),
    latency_ms: float = typer.Option(100.0, "--latency-ms", min=0.0, max=60000.0, help="Fixed latency of the simulated endpoint."),
    repeats: int = typer.Option(3, "--repeats", min=1, max=50, help="Timed runs after the first."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Wall time of a calibration run against a fixed-latency simulated endpoint (own process),
    as a ratio to the ideal ceil(n / concurrency) x latency."""
    from lrcal.services.bench_calibrate import run_calibration_benchmark

    result = run_calibration_benchmark(n=n, concurrency=concurrency, latency_ms=latency_ms, repeats=repeats)
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{result['examples']} examples, concurrency {result['concurrency']}, endpoint latency {latency_ms:g} ms: "
        f"ideal {result['ideal_s']:.2f}s, best run {result['best_wall_s']:.2f}s (ratio {result['ratio_best']:.2f}), "
        f"median {result['median_wall_s']:.2f}s (ratio {result['ratio_median']:.2f}); first run in a new home "
        f"{result['first_run_wall_s']:.2f}s (ratio {result['first_run_ratio']:.2f})"
    )


@bench_app.command("coldstart")
def bench_coldstart_command(
    ctx: typer.Context,
    outcomes: Optional[Path] = typer.Option(None, "--outcomes", help="Outcome CSV (wide format; long format with --samples)."),
    from_home: bool = typer.Option(False, "--from-home", help="Use the calibration outcomes stored in the lrcal home instead of a file."),
    samples: Optional[Path] = typer.Option(None, "--samples", help="Long format: the samples CSV for --outcomes."),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Resolve image paths against this directory."),
    holdout: str = typer.Option("all", "--holdout", help="Models to hold out in turn: MODEL,MODEL,... or all."),
    ks: str = typer.Option("16,32,64,128", "--k", help="Calibration sizes, comma-separated."),
    folds: int = typer.Option(5, "--folds", min=2, max=20, help="Cross-fitting folds over samples."),
    seeds: int = typer.Option(1, "--seeds", min=1, max=20, help="Fold assignments (seeds 0..N-1)."),
    repeats: int = typer.Option(1, "--repeats", min=1, max=20, help="Calibration draws per (fold, model, k)."),
    sampler: str = typer.Option("uniform", "--sampler", help="How calibration rows are chosen: uniform, or "
                                "uniform,adaptive (both on the same folds and draws)."),
    stop_value: float = typer.Option(2e-4, "--stop-value", min=0.0, max=1.0, help="Adaptive sampler: stop once the "
                                     "remaining budget cannot buy this much routed accuracy (0: spend it all "
                                     "unless no decision can move)."),
    prior_scale: float = typer.Option(0.5, "--prior-scale", min=0.01, max=1.0, help="Adaptive sampler: hold the "
                                      "router's profile prior at this fraction of its strength (1: believe it "
                                      "fully; the card is smoothed at full strength either way)."),
    ensemble: int = typer.Option(1, "--ensemble", min=1, max=10, help="Router networks per training."),
    refit_rule: bool = typer.Option(False, "--refit-rule", help="Every router without a model fits its own decision "
                                    "rule on fold networks of its own (4 more networks each) instead of on its "
                                    "fold's full-pool out-of-fold predictions without the model."),
    threads: int = typer.Option(1, "--threads", min=1, max=64, help="torch CPU threads (per process with --jobs)."),
    jobs: int = typer.Option(1, "--jobs", min=0, max=256, help="Worker processes: 1 runs in this process, 0 one per available core; "
                             "the numbers do not depend on it."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the gain/harm curves to this PNG."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Cold-start onboarding: routers trained without a model, the model onboarded from k
    calibration rows with the router frozen, against profile-only, free-token, per-task lookup
    and full retrain (K-fold cross-fitting over samples)."""
    from lrcal.errors import UsageError
    from lrcal.evaluation.coldstart import bench_coldstart

    try:
        k_values = sorted({int(v) for v in ks.split(",") if v.strip()})
    except ValueError:
        raise UsageError(f"--k: expected comma-separated integers, got '{ks}'") from None
    if not k_values or min(k_values) < 16:
        raise UsageError("--k: calibration sizes must be at least 16")
    if jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per available core) or a positive number of processes (got {jobs})")
    _threads(threads)
    if from_home == (outcomes is not None):
        raise UsageError("give exactly one of --outcomes FILE.csv or --from-home")
    if from_home:
        from lrcal.services.tables import model_row_counts, outcome_table

        counts = model_row_counts(state(ctx).store())
        if not counts:
            raise UsageError("the lrcal home holds no calibration outcomes")
        table, _examples = outcome_table(state(ctx).store(), sorted(counts))
    else:
        from lrcal.outcome_table import read_outcome_table

        table = read_outcome_table(outcomes, samples, images_dir=images_dir)
    chosen = None if holdout.strip() == "all" else [h.strip() for h in holdout.split(",") if h.strip()]
    console = err_console()
    samplers = tuple(s.strip() for s in sampler.split(",") if s.strip())
    result = bench_coldstart(table, chosen, k_values, folds=folds, seeds=range(seeds), repeats=repeats, ensemble=ensemble,
                             jobs=jobs, samplers=samplers, stop_value=stop_value, refit_rule=refit_rule, prior_scale=prior_scale,
                             progress=None if as_json else (lambda m: console.print(f"[dim]{m}[/dim]")))
    if plot is not None:
        from lrcal.evaluation.coldstart import plot_coldstart

        plot_coldstart(result, plot)
    if as_json:
        print_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    out = Console()
    view = Table(title=f"{result['dataset']}: cold start, {len(result['holdout'])} held out, {folds} folds "
                       f"(headroom: {', '.join(result['headroom_models']) or 'none'})")
    view.add_column("method")
    for k in result["ks"]:
        view.add_column(f"k={k} acc / gain / harm", justify="right")

    def cells(entry):
        out_cells = []
        for k in result["ks"]:
            e = entry[str(k)]
            gain = "-" if e["gain_recovered"] is None else f"{e['gain_recovered']:.2f}"
            harm = "-" if e["harm"] is None else f"{e['harm']:.4f}"
            out_cells.append(f"{_pct(e['accuracy'])} / {gain} / {harm}")
        return out_cells

    view.add_row("onboard (frozen router)", *cells(result["k"]))
    if "adaptive" in result["samplers"]:
        view.add_row("onboard, adaptive sampler", *cells(result["samplers"]["adaptive"]["k"]))
    for name, entry in result["baselines"].items():
        view.add_row(name, *cells(entry))
    view.add_row("without the model", *[_pct(result["without"]["accuracy"])] * len(result["ks"]))
    view.add_row("full retrain", *[_pct(result["full_retrain"]["accuracy"])] * len(result["ks"]))
    out.print(view)
    per = Table(title="per held-out model (routed accuracy %)")
    for col in ("model", "headroom", "without", "full", *[f"k={k}" for k in result["ks"]]):
        per.add_column(col, justify="left" if col == "model" else "right")
    for row in result["per_model"]:
        per.add_row(row["model"], "yes" if row["headroom"] else "", _pct(row["U_without"]), _pct(row["U_full"]),
                    *[_pct(row["U_k"][str(k)]) for k in result["ks"]])
    out.print(per)
    out.print(_sampler_table(result))
    if result.get("adaptive_minus_uniform"):
        out.print(_paired_sampler_table(result))
    processes = f"{result['worker_processes']} worker processes" if result["worker_processes"] else "1 process"
    out.print(f"[dim]{result['seconds']:.0f}s on {processes} (router training {result['router_train_seconds']:.0f}s, "
              f"summed over processes), token fit "
              f"{result['fit_seconds']['mean']:.2f}s mean / {result['fit_seconds']['max']:.2f}s max[/dim]")


def _span(value, interval, spec: str, between: str = "–") -> str:
    """A value and its interval, "0.58 (0.43–0.72)"; "-" without a value."""
    if value is None:
        return "-"
    return f"{value:{spec}}" + (f" ({interval[0]:{spec}}{between}{interval[1]:{spec}})" if interval else "")


def _sampler_table(result: dict):
    """Per sampler and k: gain and harm with their intervals, examples used, each headroom
    model's gain; and the smallest k reaching each gain target."""
    from rich.table import Table

    level = f"{result['interval_level']:.0%}"
    view = Table(title=f"samplers ({result['repeats']} draws per fold, model and k; {level} intervals over draws and folds)")
    for col in ("sampler", "k", "used", "gain", "harm", "headroom models' gains", "k for gain 0.6 / 0.75 / 0.9"):
        view.add_column(col, justify="left" if col in ("sampler", "headroom models' gains") else "right")

    for name, entry in result["samplers"].items():
        reach = " / ".join("-" if v is None else str(v) for v in entry["examples_to_gain"].values())
        for i, k in enumerate(result["ks"]):
            e = entry["k"][str(k)]
            models = ", ".join(f"{h} {_span(g['gain'], g['interval'], '.2f')}" for h, g in e["per_model_gain"].items())
            used = "-" if e.get("examples_used") is None else f"{e['examples_used']:.0f}"
            view.add_row(name if i == 0 else "", str(k), used, _span(e["gain_recovered"], e["gain_interval"], ".2f"),
                         _span(e["harm"], e["harm_interval"], ".4f"), models or "-", reach if i == 0 else "")
    return view


def _paired_sampler_table(result: dict):
    """Adaptive at k minus uniform at k' >= k, paired over the same folds and draws."""
    from rich.table import Table

    level = f"{result['interval_level']:.0%}"
    view = Table(title=f"adaptive minus uniform, paired over the same folds and draws ({level} intervals)")
    for col in ("adaptive k", "uniform k", "gain difference", "share of replicates ≥ 0", "harm difference"):
        view.add_column(col, justify="right")

    for row in result["adaptive_minus_uniform"]:
        share = row["adaptive_at_least_as_good"]
        view.add_row(str(row["adaptive_k"]), str(row["uniform_k"]),
                     _span(row["gain_difference"], row["gain_difference_interval"], "+.3f", " to "),
                     "-" if share is None else f"{share:.2f}",
                     _span(row["harm_difference"], row["harm_difference_interval"], "+.4f", " to "))
    return view


@bench_app.command("tokenfit")
def bench_tokenfit_command(
    rows: int = typer.Option(128, "--rows", min=16, max=4096, help="Calibration rows."),
    pool: int = typer.Option(18, "--pool", min=1, max=256, help="Incumbents in the routing pool."),
    ensemble: int = typer.Option(3, "--ensemble", min=1, max=10, help="Router networks (one residual each)."),
    threads: int = typer.Option(1, "--threads", min=1, max=64, help="torch CPU threads."),
    repeats: int = typer.Option(3, "--repeats", min=1, max=20, help="Best of this many fits."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Onboarding's token fit time (CV + final fit; with the bootstrap) against the same
    cross-validation through full router forwards, measured in the same run."""
    from lrcal.evaluation.speed import bench_token_fit

    result = bench_token_fit(rows, pool, ensemble, threads, repeats)
    if as_json:
        print_json(result)
        return
    typer.echo(
        f"{rows} calibration rows, pool of {pool}, ensemble {ensemble}, {threads} thread(s): token fit "
        f"{result['fit_seconds_best']:.2f}s (with bootstrap intervals {result['fit_plus_bootstrap_seconds_best']:.2f}s; "
        f"target {result['target_seconds']:.0f}s); the same CV through full forwards ≈ "
        f"{result['baseline_full_forward_cv_seconds']:.1f}s (ratio {result['ratio_to_baseline']:.3f})"
    )
