"""`lrcal serve` reads the pixels of http(s) images for routing: a real image server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading

import httpx
import pytest

from tests.fixtures.gateway import example_of, image_messages, logged

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def image_server(tmp_path, builtin_sets):
    """A plain HTTP server on 127.0.0.1 serving one built-in document page as /page.png."""
    example = example_of(builtin_sets, "document")
    (tmp_path / "page.png").write_bytes(example.image_path.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", example
    server.shutdown()
    server.server_close()


def url_messages(example, url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": example.question},
                                          {"type": "image_url", "image_url": {"url": url}}]}]  # fmt: skip


def features_of(home, messages, fetch_s: float = 2.0, max_bytes: int = 1 << 24):
    """The router's features for a request after the gateway's fetch, and how many images stayed unread."""
    import json

    from lrcal.gateway.images import ImageFetcher
    from lrcal.gateway.request import parse_chat
    from lrcal.gateway.routing import featurize, table_of_home

    table = table_of_home(home)
    call = parse_chat(json.dumps({"model": "lrcal/auto", "messages": messages}).encode())

    async def fill() -> int:
        fetcher = ImageFetcher(fetch_s, max_bytes)
        try:
            return await fetcher.fill(call)
        finally:
            await fetcher.aclose()

    unread = asyncio.run(fill())
    return featurize(table, call, None), unread


def test_a_fetched_image_gives_the_features_of_the_same_image_sent_inline(served_home, image_server):
    base, example = image_server
    inline, _ = features_of(served_home, image_messages(example))
    fetched, unread = features_of(served_home, url_messages(example, base + "/page.png"))
    assert unread == 0 and (fetched == inline).all()

    missing, unread = features_of(served_home, url_messages(example, base + "/nope.png"))
    assert unread == 1 and not (missing == inline).all()  # pixels unknown: different features, still routed
    too_big, unread = features_of(served_home, url_messages(example, base + "/page.png"), max_bytes=100)
    assert unread == 1 and (too_big == missing).all()
    off, unread = features_of(served_home, url_messages(example, base + "/page.png"), fetch_s=0)
    assert unread == 1 and (off == missing).all()


def test_the_gateway_routes_an_http_image_on_its_pixels_and_forwards_the_url(gateway, served_home, image_server,
                                                                              caplog):  # fmt: skip
    base, example = image_server
    gw = gateway()
    inline = httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto", "messages": image_messages(example)},
                        timeout=30)  # fmt: skip
    assert inline.status_code == 200
    # the simulated models accept only data: URLs, so the forwarded URL comes back as their 400:
    # what matters here is that the gateway routed on the same features
    remote = httpx.post(gw.url + "/chat/completions", timeout=30,
                        json={"model": "lrcal/auto", "messages": url_messages(example, base + "/page.png")})  # fmt: skip
    assert "remote image URLs" in remote.text  # the URL went upstream unchanged
    unreadable = httpx.post(gw.url + "/chat/completions", timeout=30,
                            json={"model": "lrcal/auto", "messages": url_messages(example, base + "/gone.png")})  # fmt: skip
    assert unreadable.status_code == remote.status_code
    rows = logged(served_home, 3)
    hashes = {row["request_id"]: row["features_hash"] for row in rows}
    ordered = [hashes[r.headers["x-request-id"]] for r in (inline, remote, unreadable)]
    assert ordered[0] == ordered[1] != ordered[2]
    assert any("gone.png not read for routing (HTTP 404)" in message for message in caplog.messages)


def test_image_fetch_seconds_out_of_range_is_a_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from lrcal.cli import app
    from lrcal.errors import UsageError
    from lrcal.gateway.config import GatewayConfig

    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "serve", "--image-fetch-s", "100"])
    assert result.exit_code == 2 and "--image-fetch-s" in result.output
    with pytest.raises(UsageError, match="--image-fetch-s must be between 0 and 60"):
        GatewayConfig(home=str(tmp_path), image_fetch_s=float("nan"))
