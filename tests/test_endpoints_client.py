"""The endpoint client against real servers on 127.0.0.1 (the simulator and small stdlib
servers for protocol corners). No HTTP mocks."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lrcal.calsets import build_prompt, read_image_bytes
from lrcal.endpoints import CallResult, EndpointClient, EndpointConfig
from lrcal.errors import LrcalError
from tests.fixtures.faults import FAULT_OUTCOMES

MODEL = "sim-generalist-xl"


def config_for(url: str, model: str = MODEL, **options) -> EndpointConfig:
    options.setdefault("timeout_s", 5.0)
    options.setdefault("backoff_base_s", 0.01)
    options.setdefault("backoff_max_s", 0.5)
    return EndpointConfig(url, model, **options)


async def ask(config: EndpointConfig, example, client: EndpointClient | None = None) -> CallResult:
    prompt, image = build_prompt(example), read_image_bytes(example)
    if client is not None:
        return await client.complete(prompt, image, "image/png")
    async with EndpointClient(config) as fresh:
        return await fresh.complete(prompt, image, "image/png")


def run(coro):
    return asyncio.run(coro)


# ---- happy paths ------------------------------------------------------------------------


def test_streaming_call_measures_ttft_and_latency(sim_server, tiny_set):
    sim = sim_server(sets=[tiny_set], latency_scale=0.5)
    example = tiny_set.by_id()["chart-bar"]
    result = run(ask(config_for(sim.url), example))
    target = sim.backend.answer(MODEL, build_prompt(example), read_image_bytes(example))
    assert result.ok and result.streamed and result.attempts == 1 and result.http_status == 200
    assert result.answer == target.text
    assert result.ttft_ms is not None and target.ttft_s * 1000 - 1 <= result.ttft_ms < result.latency_ms
    assert result.latency_ms >= target.total_s * 1000 - 1
    assert result.total_ms >= result.latency_ms
    assert (result.input_tokens, result.output_tokens) == (target.input_tokens, target.output_tokens)
    assert not result.tokens_estimated and result.retried_errors == []


def test_refused_stream_falls_back_once_and_remembers(sim_server, tiny_set):
    sim = sim_server(sets=[tiny_set], refuse_stream=True)
    examples = list(tiny_set.examples[:3])

    async def go():
        async with EndpointClient(config_for(sim.url)) as client:
            first = await ask(client.config, examples[0], client)
            after_first = sim.request_counts[MODEL]
            rest = [await ask(client.config, ex, client) for ex in examples[1:]]
            return client, first, after_first, rest

    client, first, after_first, rest = run(go())
    assert first.ok and not first.streamed and first.attempts == 1
    assert first.ttft_ms == pytest.approx(first.latency_ms)
    assert after_first == 2  # the refused streaming request, then the plain one
    assert all(r.ok and not r.streamed for r in rest)
    assert sim.request_counts[MODEL] == 2 + len(rest)  # never asks to stream again
    assert client.streaming is False


def test_ollama_style(sim_server, tiny_set):
    sim = sim_server(sets=[tiny_set], latency_scale=0.2)
    example = tiny_set.by_id()["vqa-tri"]
    config = config_for(sim.root_url, "sim-lite-s", api_style="ollama")
    result = run(ask(config, example))
    target = sim.backend.answer("sim-lite-s", build_prompt(example), read_image_bytes(example))
    assert result.ok and result.streamed and result.answer == target.text
    assert (result.input_tokens, result.output_tokens) == (target.input_tokens, target.output_tokens)
    assert result.ttft_ms is not None and result.ttft_ms <= result.latency_ms

    async def models():
        async with EndpointClient(config) as client:
            return await client.list_models()

    assert "sim-lite-s" in run(models())
    # an OpenAI-style base URL given for an Ollama model still reaches /api/chat
    assert run(ask(config_for(sim.url, "sim-lite-s", api_style="ollama"), example)).ok


def test_probe_lists_models_and_sends_a_tiny_request(sim_server):
    sim = sim_server()

    async def probe(config):
        async with EndpointClient(config) as client:
            return await client.probe()

    assert run(probe(config_for(sim.url))) == []
    assert sim.request_counts == {MODEL: 1}
    with pytest.raises(LrcalError, match="does not serve model 'gpt-9'.*sim-generalist-xl"):
        run(probe(config_for(sim.url, "gpt-9")))
    notes = run(probe(config_for(sim_server(refuse_stream=True).url)))
    assert any("does not stream" in n for n in notes)


def test_probe_of_an_unreachable_endpoint_is_one_line(unused_port):
    async def probe():
        async with EndpointClient(config_for(f"http://127.0.0.1:{unused_port}/v1")) as client:
            return await client.probe()

    with pytest.raises(LrcalError) as info:
        run(probe())
    assert "cannot reach endpoint" in str(info.value) and "\n" not in str(info.value)


# ---- faults -------------------------------------------------------------------------------


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retried_then_recorded(unused_port):
    config = config_for(f"http://127.0.0.1:{unused_port}/v1", max_retries=2)
    start = time.monotonic()

    async def go():
        async with EndpointClient(config) as client:
            return await client.complete("hello", None, None)

    result = run(go())
    assert result.error_kind == "connection" and result.attempts == 3
    assert result.retried_errors == ["connection", "connection"] and result.answer is None
    assert time.monotonic() - start < 3


@pytest.mark.parametrize("mode", ["stream", "json", "ollama"])
@pytest.mark.parametrize("fault", sorted(FAULT_OUTCOMES))
def test_every_fault_ends_with_its_error_kind_in_bounded_time(sim_server, tiny_set, fault, mode):
    example = tiny_set.by_id()["ocr-word"]
    sim = sim_server(
        sets=[tiny_set],
        permanent={example.id: fault},
        refuse_stream=mode == "json",
        stall_s=5.0,
        retry_after_s=0.05,
    )
    url, style = (sim.root_url, "ollama") if mode == "ollama" else (sim.url, "openai")
    config = config_for(url, api_style=style, timeout_s=0.4, max_retries=1)
    start = time.monotonic()
    result = run(ask(config, example))
    elapsed = time.monotonic() - start
    kind, retried = FAULT_OUTCOMES[fault]
    assert result.error_kind == kind, result.error_message
    assert elapsed < 2.5  # 2 attempts x 0.4 s timeout + backoff, never the 5 s stall
    if kind is None:
        assert result.answer and result.attempts == 1
        if fault == "non_utf8":
            assert "\ufffd" in result.answer  # decoded with replacement, never a crash
        else:
            assert result.tokens_estimated and result.output_tokens >= 1 and result.input_tokens > 700
    else:
        assert result.answer is None and result.error_message
        assert result.attempts == (2 if retried else 1)
        assert result.retried_errors == ([kind] if retried else [])
    if fault.startswith("http_"):
        assert result.http_status == int(fault[5:])


def test_transient_faults_are_retried_to_success(sim_server, tiny_set):
    sim = sim_server(sets=[tiny_set], fail_rate=0.5, seed=11, retry_after_s=0.02)
    config = config_for(sim.url, max_retries=8, max_concurrency=4)

    async def go():
        async with EndpointClient(config) as client:
            return await asyncio.gather(*(ask(config, ex, client) for ex in tiny_set.examples))

    results = run(go())
    assert all(r.ok and r.error_kind is None for r in results)
    retried = [r for r in results if r.attempts > 1]
    assert retried, "with fail-rate 0.5 some calls must have needed a retry"
    for r in retried:
        assert len(r.retried_errors) == r.attempts - 1
        assert set(r.retried_errors) <= {"http_5xx", "http_4xx"}
    assert sum(sim.stats()["faults"].values()) == sum(r.attempts - 1 for r in results)


def test_retry_after_is_honoured_and_capped(sim_server, tiny_set):
    example = tiny_set.by_id()["vqa-tri"]
    sim = sim_server(sets=[tiny_set], permanent={example.id: "http_429"}, retry_after_s=0.3)
    result = run(ask(config_for(sim.url, max_retries=2, backoff_base_s=0.001), example))
    assert result.error_kind == "http_4xx" and result.attempts == 3
    assert result.total_ms >= 2 * 300  # waited what the server asked, twice
    capped = run(ask(config_for(sim.url, max_retries=2, backoff_base_s=0.001, backoff_max_s=0.05), example))
    assert capped.attempts == 3 and capped.total_ms < 500


def test_real_401_and_404_are_not_retried(sim_server, tiny_set, monkeypatch):
    example = tiny_set.by_id()["math-expr"]
    sim = sim_server(sets=[tiny_set], api_key="sk-right")
    monkeypatch.setenv("SIM_KEY", "sk-wrong")
    unauthorized = run(ask(config_for(sim.url, api_key_env="SIM_KEY"), example))
    assert (unauthorized.error_kind, unauthorized.http_status, unauthorized.attempts) == ("http_4xx", 401, 1)
    monkeypatch.setenv("SIM_KEY", "sk-right")
    unknown_model = run(ask(config_for(sim.url, "no-such-model", api_key_env="SIM_KEY"), example))
    assert (unknown_model.error_kind, unknown_model.http_status, unknown_model.attempts) == ("http_4xx", 404, 1)
    assert "not found" in unknown_model.error_message


def test_max_concurrency_bounds_requests_in_flight(sim_server, tiny_set):
    sim = sim_server(sets=[tiny_set], fixed_latency_ms=60)
    config = config_for(sim.url, max_concurrency=3)

    async def go():
        async with EndpointClient(config) as client:
            return await asyncio.gather(*(ask(config, ex, client) for ex in list(tiny_set.examples) * 2))

    results = run(go())
    assert all(r.ok for r in results)
    assert sim.stats()["max_in_flight"][MODEL] == 3
    # waiting for a slot is not endpoint time: the last of 16 calls queued ~5 x 60 ms
    assert max(r.total_ms for r in results) < 250


def test_api_key_is_sent_but_never_leaks(sim_server, tiny_set, monkeypatch):
    sentinel = "sk-SENTINEL-7f3a9c1e5b"
    monkeypatch.setenv("LRCAL_TEST_KEY", sentinel)
    sim = sim_server(sets=[tiny_set], api_key=sentinel)
    config = config_for(sim.url, api_key_env="LRCAL_TEST_KEY")
    example = tiny_set.by_id()["ocr-word"]

    async def go():
        async with EndpointClient(config) as client:
            return client, await ask(config, example, client)

    client, result = run(go())
    assert result.ok  # the server only answers with the right bearer key
    for text in (repr(client), repr(config), repr(result), json.dumps(result.to_dict())):
        assert sentinel not in text
    assert "LRCAL_TEST_KEY" in repr(config)


class _EchoAuthHandler(BaseHTTPRequestHandler):
    """A careless server: echoes the Authorization header in its error body."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": {"message": f"bad request, you sent {self.headers.get('Authorization')}"}}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _JsonOnlyHandler(BaseHTTPRequestHandler):
    """A server that ignores stream=true and answers plain JSON (no usage)."""

    protocol_version = "HTTP/1.1"
    requests: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        type(self).requests.append(payload)
        body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "The answer is 7."}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stdlib_server():
    servers = []

    def start(handler) -> str:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def test_key_echoed_by_a_server_is_scrubbed_from_errors(stdlib_server, monkeypatch):
    sentinel = "sk-SENTINEL-echo-42x"
    monkeypatch.setenv("LRCAL_TEST_KEY", sentinel)
    url = stdlib_server(_EchoAuthHandler)
    config = config_for(url, api_key_env="LRCAL_TEST_KEY", max_retries=0)

    async def go():
        async with EndpointClient(config) as client:
            return await client.complete("q", None, None)

    result = run(go())
    assert result.error_kind == "http_4xx" and result.attempts == 1
    assert "bad request, you sent Bearer [redacted]" in result.error_message
    assert sentinel not in json.dumps(result.to_dict())


def test_plain_json_answer_to_a_stream_request_is_accepted_and_remembered(stdlib_server):
    _JsonOnlyHandler.requests = []
    url = stdlib_server(_JsonOnlyHandler)
    config = config_for(url)

    async def go():
        async with EndpointClient(config) as client:
            return [await client.complete("What is 3+4?", b"\x89PNG\r\n\x1a\nfake", None) for _ in range(2)]

    first, second = run(go())
    assert first.ok and first.answer == "The answer is 7." and not first.streamed
    assert first.tokens_estimated and first.output_tokens == 4 and first.input_tokens == 3 + 765
    assert [r["stream"] for r in _JsonOnlyHandler.requests] == [True, False]
    assert second.ok


def test_never_raises_for_endpoint_faults_even_with_many_concurrent_calls(sim_server, tiny_set):
    sim = sim_server(
        sets=[tiny_set], fail_rate=0.2, malformed_rate=0.2, reset_rate=0.1, slow_rate=0.05, stall_s=3, retry_after_s=0.01, seed=5
    )
    config = config_for(sim.url, "sim-lite-s", timeout_s=0.5, max_retries=2, max_concurrency=8)

    async def go():
        async with EndpointClient(config) as client:
            return await asyncio.gather(*(ask(config, ex, client) for ex in list(tiny_set.examples) * 4))

    start = time.monotonic()
    results = run(go())
    assert len(results) == 32 and all(isinstance(r, CallResult) for r in results)
    assert all((r.error_kind is None) == (r.answer is not None) for r in results)
    assert time.monotonic() - start < 10
