"""Running the gateway under uvicorn: in the foreground (`lrcal serve`, one process or
``--workers N`` processes sharing the port), or on a background thread (tests, the benchmark)."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from lrcal.errors import LrcalError
from lrcal.gateway.config import CONFIG_ENV, GatewayConfig

LOG_LEVEL = "warning"


def check_config(config: GatewayConfig) -> dict:
    """What the gateway will route with, read once before uvicorn starts, so that a home without a
    router, an unset key variable or a bad shadow candidate is a one-line error, not a worker crash."""
    from lrcal.gateway.routing import load_table
    from lrcal.store import Store

    config.api_key()
    store = Store.open(config.home)
    try:
        table = load_table(store, config)
    finally:
        store.close()
    # a model's limit is split among the workers, one slot each at least
    below = {name: up.max_concurrency for name, up in table.upstreams.items() if up.max_concurrency < config.workers}
    return {"router_version": table.version, "routed": table.routed, "served": table.served, "shadow": table.shadow,
            "lambda_cost": table.policy.lambda_cost, "lambda_latency": table.policy.lambda_latency,
            "limits_below_workers": below}  # fmt: skip


def serve_forever(config: GatewayConfig) -> None:
    """Serve until Ctrl-C / SIGTERM (uvicorn handles both and drains open requests)."""
    import uvicorn

    common = dict(host=config.host, port=config.port, log_level=LOG_LEVEL, access_log=False,
                  timeout_graceful_shutdown=30)  # fmt: skip
    if config.workers == 1:
        from lrcal.gateway.app import create_app

        uvicorn.run(create_app(config), **common)
        return
    os.environ[CONFIG_ENV] = config.to_json()  # the workers' settings; the key stays in its own variable
    uvicorn.run("lrcal.gateway.app:app_from_env", factory=True, workers=config.workers, **common)


class GatewayThread:
    """A gateway on a background thread of this process, on a free port of 127.0.0.1:

    >>> with GatewayThread(GatewayConfig(home=str(home))) as gw:
    ...     openai.OpenAI(base_url=gw.url, api_key="-")
    """

    def __init__(self, config: GatewayConfig, *, transport: Any = None) -> None:
        import uvicorn

        from lrcal.gateway.app import create_app

        self.app = create_app(config, transport=transport)
        self.gateway = self.app.state.gateway
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((config.host, config.port))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://{config.host}:{self.port}/v1"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level=LOG_LEVEL, access_log=False, lifespan="on",
                                                     timeout_graceful_shutdown=5))  # fmt: skip
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  (not the main thread)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name=f"lrcal-gateway-{self.port}", daemon=True)  # fmt: skip

    def start(self, timeout_s: float = 60.0) -> "GatewayThread":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise LrcalError("the gateway did not start (see the log above)")
            if time.monotonic() > deadline:
                raise LrcalError(f"the gateway did not start within {timeout_s:g} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()

    def __enter__(self) -> "GatewayThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
