"""The REAL local OCR model behind a real server on 127.0.0.1: built-in examples answered
from the pixels, refusals, the wire protocol (streaming, usage), the official ``openai``
client against both ``lrcal local serve`` and ``lrcal sim serve``, concurrency, the CLI.

One server per module (the engine loads and warms up once, ~3 s).
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip(
    "rapidocr_onnxruntime", reason="the 'ocr' extra (rapidocr-onnxruntime) is not installed: pip install 'lrcal[ocr]'"
)

import httpx  # noqa: E402

from lrcal.calsets import build_prompt, load_set, read_image_bytes, resolve_set, score_answer  # noqa: E402
from lrcal.endpoints import EndpointClient, EndpointConfig, estimate_text_tokens  # noqa: E402
from lrcal.endpoints.tokens import IMAGE_INPUT_TOKENS_ESTIMATE  # noqa: E402
from lrcal.local import RAPIDOCR_MODEL, LocalServer  # noqa: E402
from lrcal.local.answerer import DECLINE, NO_IMAGE  # noqa: E402
from lrcal.local.ocr import UNREADABLE_IMAGE  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

# Clear examples of several subtypes (a code, a sign, a number, a receipt total, a table
# cell): the real model gets these right with this engine (all 272 built-in examples are
# measured by scripts/measure_local_ocr.py, docs/benchmarks.md).
TEXT_EXAMPLES = [
    "builtin-v1-ocr-0030",  # code
    "builtin-v1-ocr-0036",  # sign
    "builtin-v1-ocr-0108",  # number
    "builtin-v1-document-0038",  # receipt total
    "builtin-v1-document-0098",  # table lookup
]
NON_TEXT_EXAMPLES = ["builtin-v1-spatial-0003", "builtin-v1-vqa-0004", "builtin-v1-spatial-0009", "builtin-v1-vqa-0010"]


@pytest.fixture(scope="module")
def builtin():
    return load_set(resolve_set("builtin-v1"))


@pytest.fixture(scope="module")
def local():
    with LocalServer(port=0) as server:
        yield server


def _png(text: str, size=(220, 200), font_size=30) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, (250, 250, 245))
    font = ImageFont.load_default(size=font_size)
    ImageDraw.Draw(image).text((size[0] / 2, size[1] / 2), text, fill=(20, 20, 30), font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _complete_all(url: str, items: list[tuple[str, bytes | None]], concurrency: int = 2):
    async def run():
        config = EndpointConfig(url, RAPIDOCR_MODEL, max_concurrency=concurrency, timeout_s=60, max_retries=0)
        async with EndpointClient(config) as client:
            return await asyncio.gather(*(client.complete(q, img, None) for q, img in items))

    return asyncio.run(run())


# ---- answers from the pixels ---------------------------------------------------------------


def test_answers_builtin_ocr_and_document_examples(local, builtin):
    examples = [builtin.by_id()[i] for i in TEXT_EXAMPLES]
    results = _complete_all(local.url, [(build_prompt(e), read_image_bytes(e)) for e in examples])
    for example, result in zip(examples, results):
        assert result.error_kind is None, result.error_message
        assert score_answer(example, result.answer).correct, (example.id, example.question, result.answer)
        assert result.latency_ms > 50  # real compute, not a lookup


def test_declines_spatial_and_vqa_questions(local, builtin):
    examples = [builtin.by_id()[i] for i in NON_TEXT_EXAMPLES]
    assert {e.task_group for e in examples} == {"spatial", "vqa"}
    results = _complete_all(local.url, [(build_prompt(e), read_image_bytes(e)) for e in examples])
    for example, result in zip(examples, results):
        assert result.answer == DECLINE, (example.id, result.answer)
        assert not score_answer(example, result.answer).correct


def test_answers_come_from_the_pixels_and_no_file_is_opened(local, monkeypatch):
    """A word rendered here exists in no calibration set; reading it needs the pixels. While
    the server answers, every file open in this process is recorded: none may happen."""
    opened: list[tuple[str, str]] = []
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

    def spy(real):
        def wrapper(file, *args, **kwargs):
            opened.append((threading.current_thread().name, str(file)))
            return real(file, *args, **kwargs)

        return wrapper

    word = "QUOKKA"
    png = _png(word)
    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(os, "open", spy(real_os_open))
    try:
        with httpx.Client(timeout=60) as http:
            payload = {"model": RAPIDOCR_MODEL, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What word is written in the image?"},
                {"type": "image_url", "image_url": {"url": _data_url(png)}}]}]}  # fmt: skip
            response = http.post(local.url + "/chat/completions", json=payload)
    finally:
        monkeypatch.undo()
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"].strip(" .").upper() == word
    main = threading.main_thread().name
    assert not [path for thread, path in opened if thread != main]  # the server opened no file at all


def test_same_question_on_other_pixels_gets_another_answer(local):
    question = "What word is written in the image?"
    results = _complete_all(local.url, [(question, _png("LANTERN")), (question, _png("MEADOW"))])
    assert [r.answer.strip(" .").upper() for r in results] == ["LANTERN", "MEADOW"]


def test_no_image_and_undecodable_image_are_answered_plainly(local):
    results = _complete_all(
        local.url, [("What word is written in the image?", None), ("What word is written in the image?", b"\x89PNG\r\n\x1a\nbroken")]
    )
    assert [r.answer for r in results] == [NO_IMAGE, UNREADABLE_IMAGE]
    assert all(r.error_kind is None for r in results)


# ---- the wire protocol -------------------------------------------------------------------


def test_streaming_and_non_streaming_carry_the_same_answer_and_usage(local):
    png = _png("ORBIT 42")
    prompt = "What text is written in the image?"
    content = [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": _data_url(png)}}]
    body = {"model": RAPIDOCR_MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 64}
    with httpx.Client(timeout=60) as http:
        plain = http.post(local.url + "/chat/completions", json=body).json()
        answer = plain["choices"][0]["message"]["content"]
        assert answer.replace(" ", "").upper() == "ORBIT42"
        assert plain["choices"][0]["finish_reason"] == "stop"
        expected_in = estimate_text_tokens(prompt) + IMAGE_INPUT_TOKENS_ESTIMATE
        assert plain["usage"] == {"prompt_tokens": expected_in, "completion_tokens": estimate_text_tokens(answer),
                                  "total_tokens": expected_in + estimate_text_tokens(answer)}  # fmt: skip

        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with http.stream("POST", local.url + "/chat/completions", json=streamed) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == answer
    assert chunks[-1]["usage"] == plain["usage"] and chunks[-1]["choices"] == []

    models = httpx.get(local.url + "/models").json()
    assert [m["id"] for m in models["data"]] == [RAPIDOCR_MODEL]
    assert models["data"][0]["owned_by"] == "lrcal-local"


def test_official_openai_client_against_local_and_sim_servers(local, builtin, sim_server):
    """Acceptance 3: a client no one here wrote speaks to both servers, with an image."""
    openai = pytest.importorskip("openai")
    example = builtin.by_id()["builtin-v1-ocr-0108"]
    image_url = _data_url(read_image_bytes(example))
    content = [{"type": "text", "text": build_prompt(example)}, {"type": "image_url", "image_url": {"url": image_url}}]
    sim = sim_server(sets=[builtin], latency_scale=0.01)
    for base_url, model in [(local.url, RAPIDOCR_MODEL), (sim.url, "sim-docreader-m")]:
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60)
        assert model in [m.id for m in client.models.list().data]
        completion = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}], max_tokens=64, temperature=0
        )
        assert completion.object == "chat.completion" and completion.model == model
        choice = completion.choices[0]
        assert choice.message.role == "assistant" and choice.message.content and choice.finish_reason in ("stop", "length")
        assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

        stream = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}], max_tokens=64, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        pieces, usage = [], None
        for chunk in stream:
            assert chunk.object == "chat.completion.chunk"
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            if chunk.usage is not None:
                usage = chunk.usage
        assert "".join(pieces) == choice.message.content  # both servers answer deterministically
        assert usage is not None and usage.total_tokens == completion.usage.total_tokens
    local_answer = openai.OpenAI(base_url=local.url, api_key="x").chat.completions.create(
        model=RAPIDOCR_MODEL, messages=[{"role": "user", "content": content}]
    )
    assert score_answer(example, local_answer.choices[0].message.content).correct


# ---- concurrency ---------------------------------------------------------------------------


def test_concurrent_requests_queue_for_the_engine(local):
    words = ["ALPHA", "BRAVO", "CEDAR", "FJORD"]
    before = local.stats()["max_engines_busy"]
    results = _complete_all(local.url, [("What word is written in the image?", _png(w)) for w in words], concurrency=4)
    assert [r.answer.strip(" .").upper() for r in results] == words
    stats = local.stats()
    assert stats["engines"] == 1 and max(before, stats["max_engines_busy"]) == 1  # never two inferences at once
    assert stats["max_total_in_flight"] >= 2  # the requests really were concurrent


# ---- the CLI -------------------------------------------------------------------------------


def _read_lines(stream, sink: queue.Queue) -> None:
    for line in stream:
        sink.put(line.rstrip("\n"))
    sink.put(None)


def test_cli_serve_prints_the_real_model_and_serves_until_ctrl_c(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrcal", "--home", str(tmp_path), "local", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        seen, url = [], None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                break
            seen.append(line)
            if line.startswith("base_url: "):
                url = line.split(": ", 1)[1]
            if line.startswith("serving"):
                break
        assert url and url.startswith("http://127.0.0.1:") and url.endswith("/v1"), seen
        assert seen[0].startswith("REAL local model server") and "CPU" in seen[0]
        assert any(line.startswith(f"REAL model: {RAPIDOCR_MODEL}") for line in seen)
        assert [m["id"] for m in httpx.get(url + "/models").json()["data"]] == [RAPIDOCR_MODEL]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, proc.stderr.read()


def test_cli_serve_rejects_bad_options(cli):
    for args, needle in [(["--port", "70000"], "'--port': Input should be less than or equal to 65535"),
                         (["--workers", "0"], "'--workers': Input should be greater than or equal to 1"),
                         (["--model", "gpt-4o"], "unknown local model 'gpt-4o'")]:  # fmt: skip
        result = cli("local", "serve", *args)
        lines = [line for line in result.output.splitlines() if line.strip() and not line.startswith("loading")]
        assert result.exit_code in (1, 2) and len(lines) == 1 and needle in lines[0], result.output
