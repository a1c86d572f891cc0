"""Remote images for the router: a request's http(s) ``image_url`` parts are forwarded to the
model unchanged, and the gateway fetches its own copy so that the router's image features see the
pixels (a document page and a photo route differently).

A fetch is bounded (``GatewayConfig.image_fetch_s`` for all of a request's images together,
``max_image_bytes`` each) and never fails the request: an image that cannot be read in time
stays "an image, pixels unknown" for the router, and the request goes on with a warning in the
log. ``image_fetch_s`` 0 turns fetching off.
"""

from __future__ import annotations

import asyncio
import io
import logging

import httpx

from lrcal.gateway.request import ChatCall

log = logging.getLogger("lrcal.gateway")


class ImageFetcher:
    def __init__(self, timeout_s: float, max_bytes: int) -> None:
        self.timeout_s, self.max_bytes = timeout_s, max_bytes
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s or None), follow_redirects=True,
            headers={"User-Agent": "lrcal-gateway"}, limits=httpx.Limits(max_connections=64),
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.http.aclose()

    async def fill(self, call: ChatCall) -> int:
        """Replace ``call``'s remote image placeholders with the fetched bytes; returns how
        many stayed unread."""
        if not call.remote_images or self.timeout_s <= 0:
            return len(call.remote_images)
        fetches = [self._get(url) for _index, url in call.remote_images]
        try:
            results = await asyncio.wait_for(asyncio.gather(*fetches, return_exceptions=True), self.timeout_s)
        except asyncio.TimeoutError:
            results = [TimeoutError(f"not fetched within {self.timeout_s:g} s")] * len(fetches)
        unread = 0
        for (index, url), result in zip(call.remote_images, results):
            if isinstance(result, bytes) and result:
                call.images[index] = io.BytesIO(result)
                continue
            unread += 1
            reason = " ".join(str(result).split()) or type(result).__name__
            log.warning("lrcal serve: image %s not read for routing (%s); routed as an image of unknown pixels",
                        _short(url), reason[:200])  # fmt: skip
        return unread

    async def _get(self, url: str) -> bytes:
        async with self.http.stream("GET", url) as response:
            if response.status_code != 200:
                raise OSError(f"HTTP {response.status_code}")
            length = response.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                raise OSError(f"{int(length):,} bytes, more than the limit of {self.max_bytes:,}")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > self.max_bytes:
                    raise OSError(f"more than the limit of {self.max_bytes:,} bytes")
            return bytes(data)


def _short(url: str) -> str:
    """The URL without its query string (which may carry a signature) for the log."""
    return url.split("?", 1)[0][:200]
