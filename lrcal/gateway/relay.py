"""An ASGI streaming response that notices a client leaving while the upstream is quiet.

Starlette's `StreamingResponse` (under ASGI 2.4 servers) only learns of a disconnect when its
next write fails, which may be long after the client left; until then the model keeps
generating. Here a second task waits for ``http.disconnect`` and cancels the stream at once:
the event generator's ``finally`` closes the upstream request.
"""

from __future__ import annotations

import asyncio
from typing import AsyncGenerator, Mapping

from starlette.types import Receive, Scope, Send


class RelayResponse:
    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None], headers: Mapping[str, str]) -> None:
        self.events = events
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.headers += [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                         (b"x-accel-buffering", b"no")]  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pump() -> None:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            async for chunk in self.events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.ensure_future(pump())
        listening = asyncio.ensure_future(listen())
        try:
            await asyncio.wait({pumping, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pumping, listening):
                task.cancel()
            await asyncio.gather(pumping, listening, return_exceptions=True)
            await self.events.aclose()  # runs the generator's finally if it never started or sat at a yield
