"""Commands: serve (the OpenAI-compatible routing gateway) and bench serve (its overhead)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from lrcal.cli._app import app, err_console, print_json, state
from lrcal.cli.bench import bench_app
from lrcal.cli.help_text import examples


@app.command(
    "serve",
    epilog=examples(
        "lrcal serve --port 8400",
        "lrcal serve --workers 2 --api-key-env LRCAL_GATEWAY_KEY",
        "lrcal serve --shadow sim-docreader-m --shadow-rate 0.1",
        "curl localhost:8400/v1/chat/completions -d '{\"model\": \"lrcal/auto\", \"messages\": "
        "[{\"role\": \"user\", \"content\": \"hi\"}]}'",
    ),
)
def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8400, "--port", min=0, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="uvicorn worker processes sharing the port."),
    alias: str = typer.Option("lrcal/auto", "--alias", help="The model name that asks the router to choose."),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="NAME of the environment variable holding the key clients must send (Bearer)."
    ),
    shadow: Optional[str] = typer.Option(None, "--shadow", help="A validated, not enabled model that gets copies."),
    shadow_rate: float = typer.Option(0.1, "--shadow-rate", min=0.0, max=1.0, help="Share of requests copied to it."),
    max_attempts: int = typer.Option(3, "--max-attempts", min=1, max=20, help="Models tried per request (fallbacks + 1)."),
    cooldown_failures: int = typer.Option(3, "--cooldown-failures", min=1, max=1000, help="Failures in a row that cool a model down."),
    cooldown_s: float = typer.Option(30.0, "--cooldown-s", min=0.0, max=86400.0, help="Seconds a failing model is left out."),
    reload_s: float = typer.Option(1.0, "--reload-s", min=0.05, max=3600.0, help="How often enable/disable, router and policy changes are looked for."),
    max_body_mb: float = typer.Option(20.0, "--max-body-mb", min=0.001, max=1024.0, help="Largest request body accepted, MB."),
    image_fetch_s: float = typer.Option(
        2.0, "--image-fetch-s", min=0.0, max=60.0,
        help="Seconds to fetch a request's http(s) images for the router's features (0: never; the model gets the URL either way).",
    ),
) -> None:
    """Serve an OpenAI-compatible API that routes each request with the router: model
    'lrcal/auto' is routed, a model's own name goes to it. See docs/serve.md."""
    from lrcal.gateway.config import GatewayConfig
    from lrcal.gateway.runner import check_config, serve_forever

    from lrcal.serve.server import listen_host, url_host

    host = listen_host(host, "--host")  # '' listened on every interface and printed http://:8400/v1
    cli_state = state(ctx)
    cli_state.store()  # a one-line error for a missing home, before anything starts
    config = GatewayConfig(home=str(cli_state.home), host=host, port=port, workers=workers, alias=alias,
                           api_key_env=api_key_env or None, shadow=shadow, shadow_rate=shadow_rate,
                           max_attempts=max_attempts, cooldown_failures=cooldown_failures, cooldown_s=cooldown_s,
                           reload_s=reload_s, max_body_bytes=int(max_body_mb * 1024 * 1024),
                           image_fetch_s=image_fetch_s)  # fmt: skip
    info = check_config(config)
    shown_host = url_host(host)
    lines = [
        f"lrcal serve: http://{shown_host}:{port}/v1 ({workers} worker{'s' if workers > 1 else ''})",
        f"router {info['router_version']}; '{alias}' routes over {len(info['routed'])} enabled model(s): "
        f"{', '.join(info['routed']) or 'none'}",
        f"routing policy: λ_cost {info['lambda_cost']:g}, λ_latency {info['lambda_latency']:g} "
        "(per request: X-Lrcal-Lambda-Cost, X-Lrcal-Lambda-Latency)",
    ]
    if info["shadow"]:
        lines.append(f"shadow: {shadow_rate:.0%} of routed requests are copied to {info['shadow']} (never returned)")
    if api_key_env:
        lines.append(f"requests must carry the API key held by ${api_key_env}")
    for name, limit in info["limits_below_workers"].items():
        lines.append(f"warning: {name}'s max concurrency {limit} is below the {workers} workers: each worker sends it "
                     f"one request at a time, up to {workers} at once")
    lines.append("serving until Ctrl-C; `lrcal traffic` summarises what was served")
    typer.echo("\n".join(lines))
    sys.stdout.flush()  # scripts wait for the banner
    serve_forever(config)


@bench_app.command("serve", epilog=examples("lrcal bench serve", "lrcal bench serve --clients 64 --duration 60 --json"))
def bench_serve_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print every number as JSON."),
    clients: int = typer.Option(64, "--clients", min=1, max=1024, help="Concurrent clients."),
    workers: int = typer.Option(1, "--workers", min=1, max=16, help="Gateway worker processes."),
    duration: float = typer.Option(10.0, "--duration", min=0.5, max=3600, help="Seconds of load, direct and through the gateway."),
    reps: int = typer.Option(200, "--reps", min=10, max=100_000, help="Routing decisions timed for the overhead."),
    sim_latency_ms: float = typer.Option(50.0, "--sim-latency-ms", min=0.0, max=60000.0, help="Latency of every simulated answer."),
) -> None:
    """Routing overhead (featurize + forward + policy, one request with one image, one thread) and
    gateway throughput with concurrent clients against the simulator, vs direct calls in the same run."""
    from lrcal.gateway.bench import bench_serve

    home = state(ctx).home
    state(ctx).store()  # a one-line error for a missing home
    console = err_console()
    result = bench_serve(home, clients=clients, duration_s=duration, reps=reps, sim_latency_ms=sim_latency_ms,
                         workers=workers, progress=(lambda _m: None) if as_json else (lambda m: console.print(f"[dim]{m}[/dim]")))  # fmt: skip
    if as_json:
        print_json(result)
        return
    o = result["routing_overhead_ms"]
    d, g = result["direct"], result["gateway"]
    typer.echo(f"routing overhead ({o['models']} models, one image, {o['threads']} thread): p50 {o['total']['p50']:.2f} ms, "
               f"p95 {o['total']['p95']:.2f} ms (featurize {o['featurize']['p50']:.2f}, forward {o['forward']['p50']:.2f}, "
               f"policy {o['policy']['p50']:.3f})")  # fmt: skip
    typer.echo(f"{clients} clients, {duration:g} s, simulated answers of {result['sim_latency_ms']:g} ms:")
    for name, run in (("direct", d), ("gateway", g)):
        typer.echo(f"  {name:8} {run['requests_per_s']:8.1f} req/s  p50 {run['latency_ms']['p50'] or 0:7.1f} ms  "
                   f"p99 {run['latency_ms']['p99'] or 0:7.1f} ms  failures {run['failures']}")  # fmt: skip
    typer.echo(f"throughput ratio {result['throughput_ratio']:.3f}; added p50 {result['added_p50_ms']:.1f} ms, "
               f"added p99 {result['added_p99_ms']:.1f} ms")  # fmt: skip
    log = g["log"]
    typer.echo(f"traffic log: {log['rows']} rows for {g['requests']} answers ({log['answered_not_logged']} lost, "
               f"{log['rows'] - log['distinct_request_ids']} doubled)")  # fmt: skip
