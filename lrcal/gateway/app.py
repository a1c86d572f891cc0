"""The gateway's ASGI app (starlette): ``POST /v1/chat/completions``, ``GET /v1/models``,
``GET /health``.

A request for the alias (``lrcal/auto``) is routed (`lrcal.gateway.routing.rank`, in a routing
thread so that featurizing and the forward pass never hold the event loop); a concrete model
name goes to that model. The chosen model is tried first, then the next ones by utility when
it fails (`lrcal.gateway.upstream`). The response names the model that served in ``model`` and
in ``X-Lrcal-Route``; every request and attempt goes to the traffic log through a queue.

The store is read in a thread of its own: at start, and every ``reload_s`` for its fingerprint,
so an enabled or disabled model, a new router version or a new routing policy is picked up
within seconds, without a restart.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hmac
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lrcal.gateway.config import GatewayConfig
from lrcal.gateway.errors import ApiError, bad_request
from lrcal.gateway.health import ModelHealth
from lrcal.gateway.images import ImageFetcher
from lrcal.gateway.relay import RelayResponse
from lrcal.gateway.request import ChatCall, lambda_overrides, parse_chat, routing_metadata, task_label, too_large
from lrcal.gateway.routing import Ranking, RoutingTable, load_table, rank, shadow_mu
from lrcal.gateway.shadow import agrees, sampled
from lrcal.gateway.traffic_log import Entry, TrafficLog
from lrcal.gateway.upstream import Attempt, Forwarder, StreamRelay

log = logging.getLogger("lrcal.gateway")

SHADOW_WAIT_S = 600.0  # how long a shadow call waits for the served answer it is compared with
CLIENT_LEFT_EARLY = "the client closed the connection before the stream started; the upstream request was cancelled"


class Gateway:
    def __init__(self, config: GatewayConfig, *, transport: Any = None) -> None:
        self.config = config
        self.health = ModelHealth(failures=config.cooldown_failures, cooldown_s=config.cooldown_s,
                                  workers=config.workers)  # fmt: skip
        self._expected_key = (config.api_key() or "").encode("utf-8") or None
        self._transport = transport
        self.forwarder: Forwarder | None = None
        self.images: ImageFetcher | None = None
        self.traffic = TrafficLog(config.home)
        self.table: RoutingTable | None = None
        self.reloads = 0
        self.last_reload_error: dict | None = None  # {"message", "at"} of the failing reload; None once one works
        self._shadow_problem: str | None = None  # the last reason the shadow candidate was left out (warned once)
        self.shadow_skipped: collections.Counter[str] = collections.Counter()  # sampled requests not copied, by reason
        self._store = None
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="lrcal-gateway-store")
        self._routing_thread = ThreadPoolExecutor(1, thread_name_prefix="lrcal-gateway-routing")
        self._background: set[asyncio.Task] = set()

    # ---- lifecycle -----------------------------------------------------------------
    async def _in_store(self, fn: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._store_thread, functools.partial(fn, *args))

    async def _in_router(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._routing_thread, functools.partial(fn, *args, **kwargs))

    async def startup(self) -> None:
        from lrcal.store import Store

        self._store = await self._in_store(Store.open, self.config.home)
        self.table = await self._in_store(load_table, self._store, self.config)
        self.forwarder = Forwarder(self._transport)
        self.images = ImageFetcher(self.config.image_fetch_s, self.config.max_image_bytes)
        self.traffic.start()
        self._spawn(self._reload_loop())

    async def shutdown(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.forwarder is not None:
            await self.forwarder.aclose()
        if self.images is not None:
            await self.images.aclose()
        await asyncio.get_running_loop().run_in_executor(None, self.traffic.close)
        if self._store is not None:
            await self._in_store(self._store.close)
        self._store_thread.shutdown(wait=False)
        self._routing_thread.shutdown(wait=False)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_s)
            try:
                fingerprint = await self._in_store(self._store.gateway_fingerprint)
                if self.table is None or fingerprint != self.table.fingerprint:
                    # a shadow candidate that cannot shadow any more is dropped, not a failed reload:
                    # that froze the routing (a disabled model kept serving, a promoted one was a 404)
                    table = await self._in_store(functools.partial(load_table, strict_shadow=False), self._store,
                                                 self.config, self.table)  # fmt: skip
                    self._note_shadow(table)
                    self.table = table
                    self.reloads += 1
                self.last_reload_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving with the routing we have
                message = " ".join(str(exc).split())[:500] or type(exc).__name__
                if self.last_reload_error is None or self.last_reload_error["message"] != message:  # once, not every poll
                    log.warning("lrcal serve: reload failed, still routing with router %s: %s",
                                self.table.version if self.table else "?", message)  # fmt: skip
                self.last_reload_error = {"message": message,
                                          "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}  # fmt: skip

    def _note_shadow(self, table: RoutingTable) -> None:
        """One warning when the shadow candidate is left out (and when it is back), not one per reload."""
        if table.shadow_problem == self._shadow_problem:
            return
        if table.shadow_problem is not None:
            log.warning("lrcal serve: shadow traffic stopped: %s", table.shadow_problem)
        elif table.shadow is not None:
            log.warning("lrcal serve: shadow traffic to %s resumed", table.shadow)
        self._shadow_problem = table.shadow_problem

    # ---- requests ------------------------------------------------------------------
    def _check_auth(self, request: Request) -> None:
        if self._expected_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        given_bytes = given.strip().encode("latin-1", errors="replace") if scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(given_bytes, self._expected_key):
            raise ApiError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")

    async def _body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_large(limit)
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise too_large(limit)
        return bytes(data)

    async def models(self, request: Request) -> Response:
        try:
            self._check_auth(request)
        except ApiError as exc:
            return exc.response()
        table = self.table
        names = [self.config.alias, *table.served]
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "lrcal"} for name in names]})  # fmt: skip

    async def health_view(self, request: Request) -> Response:
        """Liveness for anyone; with ``--api-key-env`` the details (models, shadow, policy, pid)
        only for a request carrying the key (a wrong key is a 401, as elsewhere)."""
        if self._expected_key is not None:
            if "authorization" not in request.headers:
                return JSONResponse({"status": "ok"})
            try:
                self._check_auth(request)
            except ApiError as exc:
                return exc.response()
        table = self.table
        return JSONResponse({"status": "ok", "pid": os.getpid(), "router_version": table.version, "routed": table.routed,
                             "served": table.served, "shadow": table.shadow, "shadow_problem": table.shadow_problem,
                             "shadow_skipped": dict(self.shadow_skipped), "reloads": self.reloads,
                             "last_reload_error": self.last_reload_error,
                             "policy": {"lambda_cost": table.policy.lambda_cost,
                                        "lambda_latency": table.policy.lambda_latency},
                             "cooling": {k: round(v, 1) for k, v in self.health.cooling().items()},
                             "traffic_rows_written": self.traffic.written})  # fmt: skip

    async def chat(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            self._check_auth(request)
            call = parse_chat(await self._body(request))
            overrides = lambda_overrides(request.headers)
            task = task_label(request.headers)
            call.route_metadata = routing_metadata(request.headers)
        except ApiError as exc:
            return exc.response()
        except ClientDisconnect:
            return Response(status_code=499)
        if call.remote_images and call.model == self.config.alias:  # only a routed request reads pixels
            await self.images.fill(call)
        exchange = Exchange(self, self.table, call, overrides, task, started)
        try:
            return await (self._unless_client_leaves(request, exchange) if call.stream else exchange.run())
        except ApiError as exc:
            exchange.finish(status=exc.status, error_kind=exc.error_kind, error_message=exc.message)
            return exc.response({"X-Request-Id": exchange.request_id})
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            log.exception("lrcal serve: request %s failed", exchange.request_id)
            exchange.finish(status=500, error_kind="internal", error_message=f"{type(exc).__name__}")
            return ApiError(500, f"internal error in the gateway ({type(exc).__name__}); request {exchange.request_id}",
                            code="internal_error").response({"X-Request-Id": exchange.request_id})  # fmt: skip

    async def _unless_client_leaves(self, request: Request, exchange: "Exchange") -> Response:
        """``exchange.run()`` for a stream, given up when the client disconnects before the first
        event: it waited for the model's timeout, then fell back to the next model for nobody
        (spend the log did not show) and counted a failure against the model. Once the stream
        has started, `RelayResponse` watches for the disconnect."""

        async def client_left() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        running = asyncio.ensure_future(exchange.run())
        leaving = asyncio.ensure_future(client_left())
        try:
            await asyncio.wait({running, leaving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            leaving.cancel()
            if not running.done():
                running.cancel()
            await asyncio.gather(leaving, running, return_exceptions=True)
        if not running.cancelled():  # (one that finished as the client left: its response sees the disconnect)
            return running.result()
        exchange.client_left()
        return Response(status_code=499)


class Exchange:
    """One chat request: its routing, its attempts, its response and its log row."""

    def __init__(self, gateway: Gateway, table: RoutingTable, call: ChatCall, overrides: dict, task: str | None,
                 started: float) -> None:  # fmt: skip
        self.gateway, self.table, self.call = gateway, table, call
        self.overrides, self.task, self.started = overrides, task, started
        self.request_id = uuid.uuid4().hex
        self.ranking: Ranking | None = None
        self.attempts: list[Attempt] = []
        self.routed = call.model == gateway.config.alias
        self.served_answer: asyncio.Future | None = None
        self.streamed: Attempt | None = None  # the attempt whose stream reached the client
        self.logged = False

    # ---- the decision -------------------------------------------------------------
    async def _order(self) -> list[tuple[str, float | None]]:
        table, call = self.table, self.call
        if self.routed:
            self.ranking = await self.gateway._in_router(rank, table, call, task=self.task, overrides=self.overrides,
                                                         cooling=self.gateway.health.cooling())  # fmt: skip
            return self.ranking.order[: self.gateway.config.max_attempts]
        if call.model not in table.served:
            raise ApiError(404, f"model '{call.model}' is not served here: ask for '{self.gateway.config.alias}' "
                           f"(the router chooses) or an enabled model ({', '.join(table.served) or 'none'})",
                           param="model", code="model_not_found")  # fmt: skip
        up = table.upstreams[call.model]
        if call.needs_images and not up.accepts_images:
            raise bad_request(f"model '{call.model}' does not accept image input (registered text-only) and this "
                              f"request has {call.n_images} image(s)", "messages",
                              code="missing_capability_image_input")  # fmt: skip
        left = self.gateway.health.is_cooling(call.model)
        if left is not None:
            raise ApiError(503, f"model '{call.model}' is cooling down after repeated failures; retry in {left:.0f} s",
                           code="model_cooling_down", headers={"Retry-After": str(max(1, round(left)))})  # fmt: skip
        return [(call.model, None)]

    async def run(self) -> Response:
        order = await self._order()
        if self.routed and self.table.shadow and sampled(self.request_id, self.gateway.config.shadow_rate):
            if self.call.needs_images and not self.table.upstreams[self.table.shadow].accepts_images:
                # as for served models: a text-only candidate is never sent an image
                self.gateway.shadow_skipped["needs_images"] += 1
            else:
                self.served_answer = asyncio.get_running_loop().create_future()
                self.gateway._spawn(self._shadow())
        try:
            return await self._attempt_in_order(order)
        finally:
            if not self.call.stream or not self.attempts or not self.attempts[-1].ok:
                self._resolve_served()

    async def _attempt_in_order(self, order: list[tuple[str, float | None]]) -> Response:
        gateway, health = self.gateway, self.gateway.health
        for name, utility in order:
            previous = self.attempts[-1] if self.attempts else None
            reason = ("named by the client" if not self.routed else "first choice" if previous is None
                      else f"fallback after {previous.model} failed ({previous.error_kind})")  # fmt: skip
            up = self.table.upstreams[name]
            slots = health.slots(name, up.max_concurrency)
            attempt = Attempt(model=name, reason=reason, utility=utility)
            self.attempts.append(attempt)
            await slots.acquire()
            attempt.started = time.perf_counter()  # the wait for a slot is the gateway's, not the model's
            if self.call.stream:
                try:
                    relay = await gateway.forwarder.open_stream(up, self.call, attempt)
                except asyncio.CancelledError:  # the client left (`Gateway._unless_client_leaves`)
                    slots.release()
                    attempt.fail("client_disconnected", CLIENT_LEFT_EARLY, fallback=False)
                    raise
                if relay is not None:
                    health.succeeded(name)
                    self.streamed = attempt
                    return RelayResponse(self._relay(relay, slots), self._headers(attempt))
                slots.release()
            else:
                try:
                    await gateway.forwarder.complete(up, self.call, attempt)
                finally:
                    slots.release()
                if attempt.ok:
                    health.succeeded(name)
                    self.finish(status=200)
                    # the bytes `complete` rendered: what is logged as a success is what the client gets
                    return Response(attempt.rendered, media_type="application/json", headers=self._headers(attempt))
            if not attempt.fallback:  # the request's own fault: the client hears the model's answer
                raise ApiError(attempt.status_code or 400, f"model {name} refused the request: {attempt.error_message}",
                               code="upstream_refused", error_kind=attempt.error_kind)  # fmt: skip
            if health.failed(name):
                log.warning("lrcal serve: %s cools down for %g s after %d failures in a row", name,
                            health.cooldown_s, health.failures)  # fmt: skip
        tried = "; ".join(f"{a.model}: {a.error_kind} ({a.error_message})" for a in self.attempts)
        last = self.attempts[-1] if self.attempts else None
        # the last model answered, with a status that is no answer (a redirect, 201): a bad gateway
        bad_answer = last is not None and last.status_code is not None and last.status_code != 200 and last.status_code < 400
        raise ApiError(502 if bad_answer else 503, f"no model could answer: {tried}", code="all_models_failed",
                       error_kind=last.error_kind if last else "unavailable")  # fmt: skip

    async def _relay(self, relay: StreamRelay, slots: asyncio.Semaphore):
        attempt = relay.attempt
        try:
            async for event in relay.events():
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            attempt.fail("client_disconnected", "the client closed the connection; the upstream request was cancelled",
                         fallback=False)  # fmt: skip
            raise
        finally:
            await relay.aclose()
            slots.release()
            if attempt.error_kind not in (None, "client_disconnected"):
                self.gateway.health.failed(attempt.model)
            self.finish(status=200, error_kind=attempt.error_kind, error_message=attempt.error_message)
            self._resolve_served()

    def client_left(self) -> None:
        """The client disconnected before the stream started: logged, no model failed."""
        for attempt in self.attempts:
            if attempt.ok:  # (one still waiting for a slot)
                attempt.fail("client_disconnected", CLIENT_LEFT_EARLY, fallback=False)
        self._resolve_served()
        self.finish(status=499, error_kind="client_disconnected", error_message=CLIENT_LEFT_EARLY)

    # ---- the response and the log -------------------------------------------------------
    def _headers(self, served: Attempt) -> dict[str, str]:
        parts = [f"model={served.model}"]
        if self.ranking is not None:
            parts.append(f"utility={served.utility:.4f}" if served.utility is not None else "utility=")
            runner = next(((n, u) for n, u in self.ranking.order if n != served.model), None)
            if runner is not None:
                parts += [f"runner_up={runner[0]}", f"runner_up_utility={runner[1]:.4f}"]
            if served.model != self.ranking.first[0]:
                parts.append(f"first_choice={self.ranking.first[0]}")
        else:
            parts.append("routed=no")
        parts.append(f"attempts={len(self.attempts)}")
        return {"X-Lrcal-Route": "; ".join(parts), "X-Request-Id": self.request_id,
                "X-Lrcal-Router-Version": self.table.version}  # fmt: skip

    def finish(self, *, status: int, error_kind: str | None = None, error_message: str | None = None) -> None:
        """Queue this request's rows for the traffic log (once)."""
        if self.logged:
            return
        self.logged = True
        served = self.streamed or (self.attempts[-1] if self.attempts and self.attempts[-1].ok else None)
        if served is not None and served.error_kind is None and status == 200:
            error_kind = error_message = None
        ranking = self.ranking
        first = ranking.first if ranking is not None else (self.call.model, None)
        runner = ranking.runner_up if ranking is not None else None
        policy = ranking.policy if ranking is not None else None
        row = {
            "request_id": self.request_id, "worker_pid": os.getpid(), "requested_model": self.call.model,
            "routed": int(self.routed), "router_version": self.table.version,
            "features_hash": ranking.features_hash if ranking else None, "task": self.task,
            "lambda_cost": policy.lambda_cost if policy else None,
            "lambda_latency": policy.lambda_latency if policy else None,
            "first_choice": first[0], "utility": first[1],
            "runner_up": runner[0] if runner else None, "runner_up_utility": runner[1] if runner else None,
            "served_model": served.model if served else None, "stream": int(self.call.stream),
            "n_images": self.call.n_images, "status_code": status, "error_kind": error_kind,
            "error_message": error_message, "attempts": len(self.attempts),
            "routing_ms": ranking.routing_ms if ranking else None,
            "latency_ms": (time.perf_counter() - self.started) * 1000.0,
            "ttft_ms": (served.ttft_ms + (served.started - self.started) * 1000.0)
            if served is not None and served.ttft_ms is not None else None,
            "input_tokens": served.input_tokens if served else None,
            "output_tokens": served.output_tokens if served else None,
            "cost_usd": sum(a.cost_usd or 0.0 for a in self.attempts) if any(a.cost_usd is not None for a in self.attempts) else None,
        }  # fmt: skip
        self.gateway.traffic.put(Entry(request=row, attempts=[a.row(self.request_id, i + 1) for i, a in enumerate(self.attempts)]))

    # ---- shadow ----------------------------------------------------------------------------
    def _resolve_served(self) -> None:
        if self.served_answer is not None and not self.served_answer.done():
            last = self.attempts[-1] if self.attempts else None
            ok = last is not None and last.ok
            self.served_answer.set_result((last.model if ok else None, last.answer if ok else None,
                                           last.latency_ms if ok else None))  # fmt: skip

    async def _shadow(self) -> None:
        table, gateway = self.table, self.gateway
        up = table.upstreams[table.shadow]
        attempt = Attempt(model=up.name, reason="shadow")
        slots = gateway.health.slots(up.name, up.max_concurrency)
        async with slots:
            attempt.started = time.perf_counter()
            await gateway.forwarder.complete(up, self.call, attempt)
        try:
            served_model, served_answer, _ = await asyncio.wait_for(asyncio.shield(self.served_answer), SHADOW_WAIT_S)
        except asyncio.TimeoutError:
            served_model, served_answer = None, None
        routed_model = served_model or self.ranking.first[0]
        mu, served_mu = await gateway._in_router(shadow_mu, table, self.ranking.features, routed_model)
        agreement = agrees(attempt.answer if attempt.ok else None, served_answer)
        gateway.traffic.put(Entry(shadow={
            "request_id": self.request_id, "model": up.name, "served_model": served_model, "predicted_mu": mu,
            "served_predicted_mu": served_mu, "latency_ms": attempt.latency_ms, "ttft_ms": attempt.ttft_ms,
            "input_tokens": attempt.input_tokens, "output_tokens": attempt.output_tokens, "cost_usd": attempt.cost_usd,
            "error_kind": attempt.error_kind, "error_message": attempt.error_message,
            "agrees": None if agreement is None else int(agreement)}))  # fmt: skip


async def _not_found(request: Request, exc: HTTPException) -> Response:
    return ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}",
                    code="not_found" if exc.status_code == 404 else None).response()  # fmt: skip


async def _internal(request: Request, exc: Exception) -> Response:
    return ApiError(500, f"internal error in the gateway ({type(exc).__name__})", code="internal_error").response()


def create_app(config: GatewayConfig, *, transport: Any = None) -> Starlette:
    """The ASGI app of one gateway worker (its state is set up in the app's lifespan)."""
    gateway = Gateway(config, transport=transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await gateway.startup()
        try:
            yield
        finally:
            await gateway.shutdown()

    app = Starlette(
        routes=[Route("/v1/chat/completions", gateway.chat, methods=["POST"]),
                Route("/v1/models", gateway.models, methods=["GET"]),
                Route("/health", gateway.health_view, methods=["GET"])],
        lifespan=lifespan, exception_handlers={HTTPException: _not_found, Exception: _internal},
    )  # fmt: skip
    app.state.gateway = gateway
    return app


def app_from_env() -> Starlette:
    """The factory each uvicorn worker calls (``--workers N``): settings from ``LRCAL_GATEWAY_CONFIG``."""
    return create_app(GatewayConfig.from_env())
