"""`lrcal sim serve|zoo`: SIMULATED model endpoints for demos and tests."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lrcal.cli._app import app, print_json, state
from lrcal.cli._serving import api_key_env_option, api_key_from_env, check_serve_options, serve_in_foreground
from lrcal.errors import UsageError

sim_app = typer.Typer(
    help="SIMULATED model endpoints (demos and tests): answers come from skill profiles, not real models.",
    no_args_is_help=True,
)
app.add_typer(sim_app, name="sim")


def _pairs(values: list[str], option: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise UsageError(f"{option} takes {what} (got '{value}')")
        out[key.strip()] = val.strip()
    return out


def _rates(values: list[str]) -> dict[str, float]:
    from lrcal.sim.chaos import fault_kind

    rates: dict[str, float] = {}
    for kind, rate in _pairs(values, "--chaos", "KIND=RATE, e.g. http_429=0.1").items():
        try:
            rates[fault_kind(kind).value] = float(rate)
        except ValueError:
            raise UsageError(f"--chaos {kind}: rate must be a number (got '{rate}')") from None
    return rates


def _load_sets(names: list[str], home) -> tuple[list, list[str]]:
    """The sets to recognise: every built-in set, every set under the home (e.g. a training set
    generated there), and the sets given by name or path -- given sets add to the others, they
    never replace them (a simulator that stopped recognising the built-in sets would answer every
    calibration query with a non-answer)."""
    from lrcal.calsets import builtin_set_names, load_set, resolve_set
    from lrcal.calsets.resolve import home_set_names
    from lrcal.errors import LrcalError

    sets, warnings, seen = [], [], set()

    def add(path) -> None:
        key = str(Path(path).resolve())
        if key not in seen:
            seen.add(key)
            sets.append(load_set(path))

    for name in names:  # a set asked for by name must load: a one-line error otherwise
        add(resolve_set(name, home))
    for name in builtin_set_names():
        try:
            add(resolve_set(name, home))
        except LrcalError as exc:
            warnings.append(f"built-in set {name} not loaded ({exc}); its examples get generic answers")
    for name in home_set_names(home):
        try:
            add(home / "sets" / name)
        except LrcalError as exc:
            warnings.append(f"set {name} in the home not loaded ({exc}); its examples get generic answers")
    return sets, warnings


@sim_app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on (0 picks a free port)."),
    zoo: str = typer.Option("default", "--zoo", help="'default' or a zoo JSON file (see docs/simulator.md)."),
    sets: List[str] = typer.Option([], "--set", help="One more calibration set (name or path) to recognise; repeatable. The built-in sets and every set in the home are always recognised."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1, help="Seed of every simulated decision (answers, latencies, faults)."),
    latency_scale: float = typer.Option(1.0, "--latency-scale", min=0.0, max=100.0, help="Multiply every simulated latency (tests use 0.01-0.05)."),
    fixed_latency_ms: Optional[float] = typer.Option(None, "--fixed-latency-ms", min=0.0, max=600000.0, help="Answer every request in exactly this many ms (benchmarks)."),
    fail_rate: float = typer.Option(0.0, "--fail-rate", min=0.0, max=1.0, help="Per-attempt probability of HTTP 500/502/503 or 429 with Retry-After."),
    slow_rate: float = typer.Option(0.0, "--slow-rate", min=0.0, max=1.0, help="Per-attempt probability of a stall after headers or a stream that never sends [DONE]."),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate", min=0.0, max=1.0, help="Per-attempt probability of invalid JSON, a huge body, non-UTF-8 bytes or a missing usage block."),
    reset_rate: float = typer.Option(0.0, "--reset-rate", min=0.0, max=1.0, help="Per-attempt probability of a connection reset mid-response."),
    chaos: List[str] = typer.Option([], "--chaos", help="KIND=RATE for one fault kind (e.g. http_429=0.1); repeatable."),
    permanent_fault: List[str] = typer.Option([], "--permanent-fault", help="EXAMPLE_ID=KIND: fail every attempt on that example; repeatable."),
    chaos_model: List[str] = typer.Option([], "--chaos-model", help="Inject faults only for this model; repeatable (default: all)."),
    refuse_stream: bool = typer.Option(False, "--refuse-stream", help="Reject stream=true with HTTP 400 (clients must fall back)."),
    retry_after: float = typer.Option(1.0, "--retry-after", min=0.0, max=3600.0, help="Seconds sent in Retry-After with 429/503."),
    stall_s: float = typer.Option(75.0, "--stall-s", min=0.0, max=86400.0, help="How long stalls last (longer than a client timeout)."),
    api_key_env: Optional[str] = api_key_env_option(),
) -> None:
    """Serve the SIMULATED zoo (OpenAI /v1 and Ollama /api) until Ctrl-C."""
    from lrcal.sim import ChaosConfig, SimServer, load_zoo

    from lrcal.serve.server import listen_host

    host = listen_host(host, "--host")  # an empty host would listen everywhere: refused, exit 2
    check_serve_options(port, {"--latency-scale": (latency_scale, 0), "--fixed-latency-ms": (fixed_latency_ms, 0)})
    permanent = {k: v for k, v in _pairs(permanent_fault, "--permanent-fault", "EXAMPLE_ID=KIND").items()}
    zoo_obj = load_zoo(zoo)
    unknown = sorted(set(chaos_model) - set(zoo_obj.names))
    if unknown:
        raise UsageError(f"--chaos-model: not in the zoo: {', '.join(unknown)}")
    config = ChaosConfig(
        fail_rate=fail_rate,
        slow_rate=slow_rate,
        malformed_rate=malformed_rate,
        reset_rate=reset_rate,
        rates=_rates(chaos),
        permanent=permanent,
        models=frozenset(chaos_model) if chaos_model else None,
        refuse_stream=refuse_stream,
        retry_after_s=retry_after,
        stall_s=stall_s,
    )
    api_key = api_key_from_env(api_key_env)
    loaded, warnings = _load_sets(sets, state(ctx).home)
    server = SimServer(
        zoo_obj,
        loaded,
        host,
        port,
        seed=seed,
        latency_scale=latency_scale,
        fixed_latency_ms=fixed_latency_ms,
        chaos=config,
        api_key=api_key,
    )
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    set_names = ", ".join(getattr(s, "name", "?") for s in loaded) or "none"
    lines = [
        f"SIMULATED model server (lrcal sim): zoo '{zoo_obj.name}', {len(zoo_obj.models)} models, "
        f"{len(server.index)} known examples (sets: {set_names}), seed {seed}",
        f"base_url: {server.url}",
    ]
    for model in zoo_obj.models:
        lines.append(
            f"SIMULATED model: {model.name}  (${model.price_in_per_mtok:g} in / ${model.price_out_per_mtok:g} out "
            f"per Mtok; {model.role})"
        )
    lines.append(f"chaos: {config.describe()}")
    serve_in_foreground(server, lines, api_key_env)


@sim_app.command("zoo")
def zoo_command(
    zoo: str = typer.Option("default", "--zoo", help="'default' or a zoo JSON file."),
    as_json: bool = typer.Option(False, "--json", help="Print the zoo as JSON."),
) -> None:
    """Print the SIMULATED zoo: models, per-group skills, latency, prices."""
    from lrcal.sim import TASK_GROUPS, load_zoo

    zoo_obj = load_zoo(zoo)
    if as_json:
        print_json(zoo_obj.to_dict())
        return
    from rich.console import Console

    from lrcal.cli.output import Column, print_table

    groups = list(TASK_GROUPS) + sorted({g for m in zoo_obj.models for g in m.skills} - set(TASK_GROUPS))
    columns = [Column("model", "model")]
    columns += [Column(g, "doc" if g == "document" else g, justify="right") for g in groups]
    columns += [Column("p50ms", "p50ms", drop=1, justify="right"), Column("in", "$in", drop=3, justify="right"),
                Column("out", "$out", drop=2, justify="right")]  # fmt: skip
    rows = [
        {"model": model.name, **{g: f"{model.skills[g]:.2f}" if g in model.skills else "-" for g in groups},
         "p50ms": f"{model.median_latency_ms:.0f}", "in": f"{model.price_in_per_mtok:g}",
         "out": f"{model.price_out_per_mtok:g}"}
        for model in zoo_obj.models
    ]  # fmt: skip
    console = Console()
    print_table(rows, columns, console=console, title=f"SIMULATED zoo '{zoo_obj.name}'",
                caption="skill = accuracy at difficulty 0.5 (doc = document); p50ms = median latency at scale 1; "
                "$in/$out = USD per million tokens")  # fmt: skip
    for model in zoo_obj.models:
        console.print(f"  {model.name}: {model.role}", highlight=False)
