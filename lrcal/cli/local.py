"""Commands: local serve|models -- REAL local models behind the OpenAI-compatible API."""

from __future__ import annotations

from typing import List, Optional

import typer

from lrcal.cli._app import app, print_json
from lrcal.cli._serving import api_key_env_option, api_key_from_env, check_serve_options, serve_in_foreground
from lrcal.errors import UsageError

local_app = typer.Typer(
    help="REAL local models (RapidOCR PP-OCRv4 on the CPU) served over the OpenAI-compatible API.",
    no_args_is_help=True,
)
app.add_typer(local_app, name="local")


@local_app.command("serve")
def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8766, "--port", min=0, max=65535, help="Port to listen on (0 picks a free port, printed)."),
    model: List[str] = typer.Option([], "--model", help="Model to serve; repeatable (default: rapidocr-ppocrv4)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="OCR engines working at once; more requests wait (default 1: one engine already uses every core)."),
    api_key_env: Optional[str] = api_key_env_option(),
) -> None:
    """Serve the REAL local OCR model (OpenAI /v1 and Ollama /api) until Ctrl-C."""
    import time

    from lrcal.serve.server import listen_host

    host = listen_host(host, "--host")  # an empty host would listen everywhere: refused, exit 2
    check_serve_options(port, {"--workers": (workers, 1)})
    api_key = api_key_from_env(api_key_env)
    from lrcal.local import LOCAL_MODELS, LocalServer, require_ocr

    unknown = [m for m in model if m not in LOCAL_MODELS]
    if unknown:
        raise UsageError(f"--model: unknown local model {unknown[0]!r}; available: {', '.join(LOCAL_MODELS)}")
    require_ocr()  # the one-line "pip install 'lrcal[ocr]'" error before anything loads
    typer.echo("loading the OCR engine and warming it up...", err=True)
    start = time.monotonic()
    server = LocalServer(model or None, host, port, workers=workers, api_key=api_key)
    lines = [
        f"REAL local model server (lrcal local): {len(server.model_names)} model(s) on the CPU, "
        f"{workers} engine(s), ready in {time.monotonic() - start:.1f} s",
        f"base_url: {server.url}",
    ]
    for name in server.model_names:
        lines.append(f"REAL model: {name}  ({LOCAL_MODELS[name].description}; answers only text-reading questions)")
    serve_in_foreground(server, lines, api_key_env)


@local_app.command("models")
def models_command(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the REAL local models and whether their engine is installed."""
    from lrcal.local import LOCAL_MODELS, OCR_EXTRA_HINT, ocr_available

    installed = ocr_available()
    rows = [
        {"model": m.name, "engine": m.engine, "installed": installed, "description": m.description}
        for m in LOCAL_MODELS.values()
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "installed" if row["installed"] else f"not installed ({OCR_EXTRA_HINT})"
        typer.echo(f"{row['model']}  [{row['engine']}: {state}]  {row['description']}")
