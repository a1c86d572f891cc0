"""`lrcal serve`: an OpenAI-compatible routing gateway (starlette under uvicorn).

``config`` (`GatewayConfig`), ``request`` (parsing and checking a chat request), ``routing``
(the routing snapshot and the decision for one request), ``upstream`` (one attempt at one model,
streaming relay), ``health`` (per-model concurrency and cooldowns), ``relay`` (the streaming
response that notices a client leaving), ``traffic_log`` (the log queue and its writer thread),
``shadow`` (shadow sampling and answer agreement), ``app`` (the ASGI app), ``runner`` (uvicorn in
the foreground or on a thread), ``bench`` (`lrcal bench serve`). docs/serve.md describes it.

Imports starlette, uvicorn, httpx, torch (through the router): the CLI imports this package
only inside its commands.
"""
