"""`lrcal serve` under faults: fallback by utility, every model down, a stream that breaks after
it started, a client that leaves mid-stream, cooldowns."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.fixtures.gateway import example_of, image_messages, logged, wait_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def first_choice(gw, messages) -> tuple[str, str]:
    response = httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto", "messages": messages}, timeout=30)
    route = dict(part.split("=", 1) for part in response.headers["x-lrcal-route"].split("; "))
    return route["model"], route["runner_up"]


def attempts_of(home, request_id):
    from lrcal.store import Store

    store = Store.open(home)
    try:
        return store.traffic_attempts(request_id)
    finally:
        store.close()


def test_the_chosen_endpoint_down_falls_back_to_the_runner_up_and_logs_the_error(gateway, served_home, served_cli,
                                                                                  builtin_sets):  # fmt: skip
    example = example_of(builtin_sets, "chart")
    gw = gateway(cooldown_failures=2, cooldown_s=60)
    chosen, runner_up = first_choice(gw, image_messages(example))
    assert served_cli("models", "set", chosen, "--base-url", closed_port_url()).exit_code == 0
    time.sleep(0.5)  # the gateway reloads every 0.1 s
    response = httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto", "messages": image_messages(example)})
    assert response.status_code == 200 and response.json()["model"] == runner_up
    assert f"first_choice={chosen}" in response.headers["x-lrcal-route"]
    assert "attempts=2" in response.headers["x-lrcal-route"]
    attempts = attempts_of(served_home, response.headers["x-request-id"])
    wait_for(lambda: attempts or attempts.extend(attempts_of(served_home, response.headers["x-request-id"])))
    assert [(a["model"], a["reason"], a["error_kind"]) for a in attempts] == [
        (chosen, "first choice", "connection"), (runner_up, f"fallback after {chosen} failed (connection)", None)]
    assert "cannot connect" in attempts[0]["error_message"]
    # The second failure in a row cools the model down: the next request does not try it at all.
    httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto", "messages": image_messages(example)})
    third = httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto", "messages": image_messages(example)})
    assert third.json()["model"] == runner_up and "attempts=1" in third.headers["x-lrcal-route"]
    health = httpx.get(gw.url.removesuffix("/v1") + "/health").json()
    assert chosen in health["cooling"]
    rows = logged(served_home, 4)
    assert [(r["first_choice"], r["served_model"], r["attempts"]) for r in rows] == [
        (chosen, chosen, 1), (chosen, runner_up, 2), (chosen, runner_up, 2), (runner_up, runner_up, 1)]


def test_every_endpoint_down_gives_503_with_a_clear_message(gateway, served_home, builtin_sets):
    from lrcal.store import Store

    store = Store.open(served_home)
    dead = closed_port_url()
    for model in store.list_models(["enabled"]):
        store.change_model(model["name"], {"base_url": dead}, message="down (test)")
    store.close()
    gw = gateway(max_attempts=3)
    body = {"model": "lrcal/auto", "messages": image_messages(example_of(builtin_sets, "vqa"))}
    for stream in (False, True):
        response = httpx.post(gw.url + "/chat/completions", json={**body, "stream": stream})
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "all_models_failed" and error["message"].startswith("no model could answer: ")
        assert error["message"].count("connection (cannot connect") == 3 and "Traceback" not in response.text
    rows = logged(served_home, 2)
    assert all(r["status_code"] == 503 and r["served_model"] is None and r["attempts"] == 3 and
               r["error_kind"] == "connection" for r in rows)  # fmt: skip


def test_a_stream_that_breaks_after_it_started_ends_with_an_error_event_and_no_fallback(
        gateway, served_home, sim_server, builtin_sets, served_cli):  # fmt: skip
    import openai

    broken = sim_server(sets=builtin_sets, rates={"reset": 1.0})
    assert served_cli("models", "set", "sim-lite-s", "--base-url", broken.url).exit_code == 0
    gw = gateway()
    client = openai.OpenAI(base_url=gw.url, api_key="-", max_retries=0)
    stream = client.chat.completions.create(model="sim-lite-s", messages=image_messages(example_of(builtin_sets, "ocr")),
                                            stream=True)  # fmt: skip
    received = []
    with pytest.raises(openai.APIError, match="after the stream started"):
        for chunk in stream:
            received.append(chunk)
    assert received and received[0].model == "sim-lite-s"
    row = logged(served_home, 1)[0]
    assert row["served_model"] == "sim-lite-s" and row["attempts"] == 1 and row["error_kind"] == "connection"
    assert broken.request_counts == {"sim-lite-s": 1}


class HangingStream:
    """An OpenAI-style endpoint that sends one stream event and then waits, recording when the
    gateway closes the connection (the upstream request cancelled)."""

    def __init__(self) -> None:
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/v1"
        self.closed_at: float | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            event = (b'data: {"id":"x","object":"chat.completion.chunk","created":0,"model":"m","choices":'
                     b'[{"index":0,"delta":{"role":"assistant","content":"The"},"finish_reason":null}]}\n\n')
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + event)
            conn.settimeout(60)
            try:
                while conn.recv(4096):
                    pass
            except OSError:
                pass
            self.closed_at = time.monotonic()

    def stop(self) -> None:
        self.server.close()


def test_a_client_leaving_mid_stream_cancels_the_upstream_request(gateway, served_home, served_cli):
    upstream = HangingStream()
    try:
        assert served_cli("models", "set", "sim-lite-s", "--base-url", upstream.url).exit_code == 0
        gw = gateway()
        body = {"model": "sim-lite-s", "stream": True, "messages": [{"role": "user", "content": "Tell me a story."}]}
        with httpx.Client(timeout=30) as http:
            with http.stream("POST", gw.url + "/chat/completions", json=body) as response:
                assert response.status_code == 200
                lines = response.iter_lines()  # (kept: a dropped iterator closes the connection)
                assert '"model":"sim-lite-s"' in next(lines)  # the stream has started
                time.sleep(0.5)
                assert upstream.closed_at is None  # the model's request stays open while the client listens
                left = time.monotonic()
        _, took = wait_for(lambda: upstream.closed_at is not None, timeout_s=5)
        assert upstream.closed_at - left < 2  # the model's request is closed at once, not when it next writes
        row = logged(served_home, 1)[0]
        assert row["error_kind"] == "client_disconnected" and row["served_model"] == "sim-lite-s"
    finally:
        upstream.stop()


def test_workers_split_a_model_limit_without_exceeding_it():
    """Each worker took ceil(limit / workers) slots: 4 workers sent up to 8 requests at once to a
    model limited to 5, and 4 to a model limited to 1 without a word."""
    from lrcal.gateway.health import ModelHealth

    four = ModelHealth(failures=3, cooldown_s=30.0, workers=4)
    assert four.slots("m", 5)._value == 1 and four.slots("big", 16)._value == 4
    assert four.slots("one", 1)._value == 1  # cannot go below one: `lrcal serve` warns (below)
    assert ModelHealth(failures=3, cooldown_s=30.0, workers=1).slots("m", 5)._value == 5


def test_serve_names_a_limit_below_the_worker_count(served_home):
    from lrcal.gateway.config import GatewayConfig
    from lrcal.gateway.runner import check_config

    info = check_config(GatewayConfig(home=str(served_home), workers=64))
    assert info["limits_below_workers"] and all(limit < 64 for limit in info["limits_below_workers"].values())
    assert check_config(GatewayConfig(home=str(served_home), workers=1))["limits_below_workers"] == {}
