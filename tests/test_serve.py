"""The OpenAI/Ollama-compatible server base (``lrcal.serve``), over real sockets on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from lrcal.serve import Answer, ChatRequest, Fault, FaultKind, ModelServer

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class EchoBackend:
    """A real backend: answers with the model name, the image's hash and the question."""

    owned_by = "tests"

    def __init__(self, ttft_s: float = 0.0, total_s: float = 0.0) -> None:
        self.ttft_s = ttft_s
        self.total_s = total_s
        self.calls = 0

    def model_names(self) -> list[str]:
        return ["echo-1", "echo-2"]

    def answer(self, model: str, question: str, image_bytes: bytes | None) -> Answer:
        self.calls += 1
        digest = hashlib.sha256(image_bytes).hexdigest()[:12] if image_bytes is not None else "no-image"
        text = f"{model} saw {digest} and was asked: {question}"
        return Answer(text, input_tokens=100 + len(question), output_tokens=9, ttft_s=self.ttft_s, total_s=self.total_s)


def expected_text(model: str, question: str, image: bytes | None = PNG) -> str:
    digest = hashlib.sha256(image).hexdigest()[:12] if image is not None else "no-image"
    return f"{model} saw {digest} and was asked: {question}"


def chat_body(question: str = "What is shown?", *, model: str = "echo-1", stream: bool = False, usage: bool = True) -> dict:
    body = {
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": question},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
                ],
            },
        ],
        "stream": stream,
    }
    if stream and usage:
        body["stream_options"] = {"include_usage": True}
    return body


@pytest.fixture
def server():
    started: list[ModelServer] = []

    def start(backend=None, **options) -> ModelServer:
        srv = ModelServer(backend or EchoBackend(), "127.0.0.1", 0, **options).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


def test_models_tags_stats_and_health(server):
    srv = server(stats_path="/sim/stats")
    assert srv.url == f"http://127.0.0.1:{srv.port}/v1"
    models = httpx.get(srv.url + "/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["echo-1", "echo-2"]
    assert [m["name"] for m in httpx.get(srv.root_url + "/api/tags").json()["models"]] == ["echo-1", "echo-2"]
    assert httpx.get(srv.root_url + "/health").json() == {"status": "ok"}
    stats = httpx.get(srv.root_url + "/sim/stats").json()
    assert stats["requests"] == {} and stats["total_requests"] == 0
    assert httpx.get(srv.root_url + "/nope").status_code == 404


def test_non_streaming_completion_decodes_the_image(server):
    srv = server()
    response = httpx.post(srv.url + "/chat/completions", json=chat_body("How many cats?"))
    assert response.status_code == 200
    obj = response.json()
    assert obj["object"] == "chat.completion"
    assert obj["choices"][0]["message"] == {"role": "assistant", "content": expected_text("echo-1", "How many cats?")}
    assert obj["choices"][0]["finish_reason"] == "stop"
    assert obj["usage"] == {"prompt_tokens": 114, "completion_tokens": 9, "total_tokens": 123}
    assert srv.request_counts == {"echo-1": 1}


def test_streaming_sends_sse_chunks_usage_then_done(server):
    srv = server()
    with httpx.stream("POST", srv.url + "/chat/completions", json=chat_body("Colour?", stream=True)) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == expected_text("echo-1", "Colour?")
    finals = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    assert [f["choices"][0]["finish_reason"] for f in finals] == ["stop"]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 9


def test_streaming_without_include_usage_has_no_usage_chunk(server):
    srv = server()
    with httpx.stream("POST", srv.url + "/chat/completions", json=chat_body(stream=True, usage=False)) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line and line != "data: [DONE]"]
    assert not any("usage" in e for e in events)


def test_pacing_follows_the_answers_timing_targets(server):
    srv = server(EchoBackend(ttft_s=0.15, total_s=0.3))
    start = time.monotonic()
    first = None
    with httpx.stream("POST", srv.url + "/chat/completions", json=chat_body(stream=True)) as response:
        for line in response.iter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.monotonic() - start
    total = time.monotonic() - start
    assert first is not None and 0.145 <= first < total
    assert total >= 0.295


def test_ollama_chat_streams_ndjson_with_counts_in_ns(server):
    srv = server(EchoBackend(ttft_s=0.01, total_s=0.02))
    body = {
        "model": "echo-2",
        "messages": [{"role": "user", "content": "Read it", "images": [base64.b64encode(PNG).decode()]}],
    }
    with httpx.stream("POST", srv.root_url + "/api/chat", json=body) as response:
        assert "ndjson" in response.headers["content-type"]
        objs = [json.loads(line) for line in response.iter_lines() if line]
    assert all(not o["done"] for o in objs[:-1]) and objs[-1]["done"] is True
    assert "".join(o["message"]["content"] for o in objs) == expected_text("echo-2", "Read it")
    assert objs[-1]["eval_count"] == 9 and objs[-1]["prompt_eval_count"] == 107
    assert objs[-1]["total_duration"] == 20_000_000
    single = httpx.post(srv.root_url + "/api/chat", json={**body, "stream": False}).json()
    assert single["done"] is True and single["message"]["content"] == expected_text("echo-2", "Read it")


@pytest.mark.parametrize(
    "payload, status, needle",
    [
        (b"{not json", 400, "not valid JSON"),
        ({"messages": [{"role": "user", "content": "hi"}]}, 400, "'model' is required"),
        ({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}, 404, "not found"),
        ({"model": "echo-1", "messages": []}, 400, "non-empty list"),
        (
            {"model": "echo-1", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
            400,
            "remote image URLs",
        ),
        (
            {"model": "echo-1", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]},
            400,
            "base64",
        ),
        ({"model": "echo-1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -3}, 400, "max_tokens"),
    ],
)
def test_bad_requests_get_openai_style_errors(server, payload, status, needle):
    srv = server()
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = httpx.post(srv.url + "/chat/completions", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert needle in response.json()["error"]["message"]
    # the connection stays usable
    assert httpx.get(srv.url + "/models").status_code == 200


def test_max_tokens_caps_usage_with_finish_reason_length(server):
    srv = server()
    body = {**chat_body(), "max_tokens": 4}
    obj = httpx.post(srv.url + "/chat/completions", json=body).json()
    assert obj["usage"]["completion_tokens"] == 4
    assert obj["choices"][0]["finish_reason"] == "length"


def test_ollama_num_predict_caps_the_answer_with_done_reason_length(server):
    """Ollama says why it stopped in ``done_reason``: "length" where ``options.num_predict`` cut
    the answer (it was "stop" whatever happened), whole and streamed."""
    srv = server(EchoBackend(ttft_s=0.0, total_s=0.0))
    body = {"model": "echo-2", "messages": [{"role": "user", "content": "Read it"}]}
    whole = httpx.post(srv.root_url + "/api/chat", json={**body, "stream": False}).json()
    assert whole["done_reason"] == "stop" and whole["eval_count"] > 2
    cut = httpx.post(srv.root_url + "/api/chat", json={**body, "stream": False, "options": {"num_predict": 2}}).json()
    assert cut["done_reason"] == "length" and cut["eval_count"] == 2
    with httpx.stream("POST", srv.root_url + "/api/chat", json={**body, "options": {"num_predict": 2}}) as response:
        objs = [json.loads(line) for line in response.iter_lines() if line]
    assert objs[-1]["done"] is True and objs[-1]["done_reason"] == "length" and objs[-1]["eval_count"] == 2


def test_serves_at_least_32_concurrent_requests(server):
    srv = server(EchoBackend(ttft_s=0.1, total_s=0.4))

    client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=64))  # thread-safe

    def call(i: int) -> str:
        r = client.post(srv.url + "/chat/completions", json=chat_body(f"q{i}", stream=i % 2 == 0))
        r.raise_for_status()
        return r.text

    start = time.monotonic()
    with client, ThreadPoolExecutor(max_workers=40) as pool:
        texts = list(pool.map(call, range(40)))
    wall = time.monotonic() - start
    for i, text in enumerate(texts):  # streamed answers arrive word by word
        assert (f'"content":" q{i}"' if i % 2 == 0 else f"asked: q{i}") in text
    stats = srv.stats()
    assert stats["max_total_in_flight"] >= 32
    assert stats["requests"]["echo-1"] == 40
    assert wall < 0.4 * 40 / 4  # far from serial (16 s); in practice ~0.5 s


class OneFault:
    def __init__(self, kind: FaultKind, **options) -> None:
        self.fault = Fault(kind, **options)

    def decide(self, request: ChatRequest) -> Fault | None:
        return self.fault


def test_stop_wakes_stalled_handlers_promptly(server):
    srv = server(fault_injector=OneFault(FaultKind.STALL, stall_s=60))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(srv.url + "/chat/completions", json=chat_body(), timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    assert srv.stats()["in_flight"] == {"echo-1": 1}
    start = time.monotonic()
    srv.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert time.monotonic() - start < 3
    assert errors  # the client saw the stalled response end early


def test_http_fault_sends_retry_after(server):
    srv = server(fault_injector=OneFault(FaultKind.HTTP_429, retry_after="7"))
    response = httpx.post(srv.url + "/chat/completions", json=chat_body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
    assert srv.stats()["faults"] == {"http_429": 1}


def test_api_key_is_required_when_configured(server):
    srv = server(api_key="sk-test-123")
    assert httpx.get(srv.url + "/models").status_code == 401
    assert httpx.post(srv.url + "/chat/completions", json=chat_body()).status_code == 401
    headers = {"Authorization": "Bearer sk-test-123"}
    assert httpx.post(srv.url + "/chat/completions", json=chat_body(), headers=headers).status_code == 200
    assert "sk-test-123" not in repr(srv)


def test_port_in_use_is_a_one_line_error(server):
    from lrcal.errors import LrcalError

    srv = server()
    with pytest.raises(LrcalError, match="cannot listen on 127.0.0.1"):
        ModelServer(EchoBackend(), "127.0.0.1", srv.port)


def test_official_openai_client_gets_well_formed_completions(server):
    openai = pytest.importorskip("openai")
    srv = server(EchoBackend(ttft_s=0.01, total_s=0.03))
    client = openai.OpenAI(base_url=srv.url, api_key="unused", max_retries=0, timeout=10)
    image_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    messages = [{"role": "user", "content": [{"type": "text", "text": "Which?"}, {"type": "image_url", "image_url": {"url": image_url}}]}]
    assert [m.id for m in client.models.list()] == ["echo-1", "echo-2"]
    completion = client.chat.completions.create(model="echo-2", messages=messages)
    assert completion.choices[0].message.content == expected_text("echo-2", "Which?")
    assert completion.usage.completion_tokens == 9
    stream = client.chat.completions.create(
        model="echo-2", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    parts, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(parts) == expected_text("echo-2", "Which?")
    assert usage is not None and usage.prompt_tokens == 106


SERVE_SCRIPT = textwrap.dedent(
    """
    from lrcal.serve import Answer, ModelServer

    class Backend:
        owned_by = "tests"

        def model_names(self):
            return ["echo-1"]

        def answer(self, model, question, image_bytes):
            return Answer("ok", 1, 1)

    server = ModelServer(Backend())
    print(server.url, flush=True)
    server.serve_until_interrupted()
    print("stopped", flush=True)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_until_interrupted_stops_cleanly_even_with_sigint_inherited_as_ignored(signum):
    # A background job of a non-interactive shell starts with SIGINT ignored (SIG_IGN survives exec).
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr.read()
        assert httpx.get(url + "/models", timeout=5).json()["data"][0]["id"] == "echo-1"
        process.send_signal(signum)
        code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 0
    assert process.stdout.read().strip() == "stopped"
    assert "Traceback" not in process.stderr.read()
    with pytest.raises(httpx.ConnectError):  # the socket is closed
        httpx.get(url + "/models", timeout=2)
