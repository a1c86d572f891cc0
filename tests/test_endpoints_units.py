"""Pure parts of the endpoint client: URL validation, retry rules, parsers, cost."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from lrcal.endpoints import (
    IMAGE_INPUT_TOKENS_ESTIMATE,
    EndpointConfig,
    InvalidBaseURL,
    estimate_cost,
    estimate_input_tokens,
    estimate_text_tokens,
    validate_base_url,
)
from lrcal.endpoints.retry import backoff_delay, is_retryable_status, parse_retry_after
from lrcal.endpoints.wire import (
    MalformedResponse,
    OllamaStreamParser,
    OpenAIStreamParser,
    StreamErrorEvent,
    openai_body,
    parse_openai_json,
)
from lrcal.errors import UsageError


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("  HTTPS://API.Example.COM/v1  ", "https://api.example.com/v1"),
        ("http://localhost:11434", "http://localhost:11434"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("https://host.internal/openai/deployments/x/", "https://host.internal/openai/deployments/x"),
    ],
)
def test_validate_base_url_normalizes(raw, expected):
    assert validate_base_url(raw) == expected


@pytest.mark.parametrize(
    "raw, needle",
    [
        ("", "empty"),
        ("ftp://host/v1", "http:// or https://"),
        ("localhost:8000/v1", "http:// or https://"),
        ("http:///v1", "no host"),
        ("http://host:99999/v1", "invalid port"),
        ("http://host/v1?key=abc", "query string"),
        ("http://host/v1#x", "query string or fragment"),
        ("http://ho st/v1", "whitespace"),
        ("http://bad_host!/v1", "invalid host"),
    ],
)
def test_validate_base_url_rejects(raw, needle):
    with pytest.raises(InvalidBaseURL, match=needle):
        validate_base_url(raw)


def test_credentials_in_url_are_refused_without_echoing_them():
    with pytest.raises(InvalidBaseURL) as info:
        validate_base_url("https://alice:s3cr3t-pw@api.example.com/v1")
    message = str(info.value)
    assert "--api-key-env" in message and "s3cr3t-pw" not in message and "alice" not in message
    assert isinstance(info.value, UsageError) and "\n" not in message


def test_config_validates_and_never_holds_a_key_value():
    config = EndpointConfig("http://127.0.0.1:1/v1/", "m", api_key_env="MY_KEY")
    assert config.base_url == "http://127.0.0.1:1/v1"
    with pytest.raises(UsageError) as info:
        EndpointConfig("http://h/v1", "m", api_key_env="sk-live-abcdef0123456789")
    assert "NAME of an environment variable" in str(info.value) and "sk-live" not in str(info.value)
    with pytest.raises(UsageError, match="api style"):
        EndpointConfig("http://h/v1", "m", api_style="grpc")
    with pytest.raises(UsageError, match="max concurrency"):
        EndpointConfig("http://h/v1", "m", max_concurrency=0)


def test_retryable_statuses():
    assert all(is_retryable_status(s) for s in (408, 409, 429, 500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 413, 422))


def test_retry_after_seconds_dates_garbage_and_cap():
    assert parse_retry_after("3", cap_s=20) == 3.0
    assert parse_retry_after("0.25", cap_s=20) == 0.25
    assert parse_retry_after("120", cap_s=20) == 20.0
    assert parse_retry_after("-5", cap_s=20) == 0.0
    assert parse_retry_after("soon", cap_s=20) is None
    assert parse_retry_after(None, cap_s=20) is None
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, cap_s=20, now=now) == pytest.approx(7.0)
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past, cap_s=20, now=now) == 0.0


def test_backoff_is_full_jitter_under_an_exponential_cap():
    rng = random.Random(3)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (10, 20.0)]:
        delays = [backoff_delay(attempt, 0.5, 20.0, None, rng) for _ in range(300)]
        assert 0.0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > 0.8 * ceiling  # the whole range is used
    assert backoff_delay(1, 0.5, 20.0, retry_after_s=4.0) == 4.0
    assert backoff_delay(1, 0.5, 2.0, retry_after_s=4.0) == 2.0


def test_token_estimates_and_cost():
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("abcd" * 10) == 10
    assert estimate_input_tokens("abcd", has_image=True) == 1 + IMAGE_INPUT_TOKENS_ESTIMATE
    assert estimate_cost(1_000_000, 500_000, 2.0, 6.0) == pytest.approx(5.0)
    assert estimate_cost(None, None, 2.0, 6.0) == 0.0
    with pytest.raises(ValueError):
        estimate_cost(-1, 0, 1.0, 1.0)


def test_openai_body_puts_text_then_image_data_url():
    body = openai_body("m", "Q?", b"\x89PNG\r\n\x1a\n....", None, stream=True, max_tokens=64)
    content = body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Q?"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 64
    assert "stream_options" not in openai_body("m", "Q", None, None, stream=False, max_tokens=8)


def test_sse_parser_content_usage_done_and_first_token():
    parser = OpenAIStreamParser()
    lines = [
        ": keep-alive",
        'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}',
        "",
        'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}',
        "",
        'data:{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}',
        "",
        'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3}}',
        "",
        "data: [DONE]",
        "",
    ]
    firsts = [parser.feed_line(line) for line in lines]
    assert firsts.count(True) == 1 and firsts.index(True) == 4  # "Hel" is the first non-empty content
    assert parser.result.done and parser.result.text == "Hello"
    assert (parser.result.input_tokens, parser.result.output_tokens) == (12, 3)


def test_sse_parser_failures():
    parser = OpenAIStreamParser()
    parser.feed_line('data: {"choices":[{"index":0,"delta":{"content":"x"}}]}')
    parser.feed_line("")
    with pytest.raises(MalformedResponse, match="before \\[DONE\\]"):
        parser.finish()
    parser = OpenAIStreamParser()
    parser.feed_line("data: {broken")
    with pytest.raises(MalformedResponse, match="not valid JSON"):
        parser.feed_line("")
    parser = OpenAIStreamParser()
    parser.feed_line('data: {"error": {"message": "overloaded", "code": 503}}')
    with pytest.raises(StreamErrorEvent) as info:
        parser.feed_line("")
    assert info.value.status == 503


def test_json_and_ollama_parsers():
    parsed = parse_openai_json('{"choices":[{"message":{"content":"B"},"finish_reason":"stop"}]}')
    assert parsed.text == "B" and parsed.input_tokens is None
    with pytest.raises(MalformedResponse) as info:
        parse_openai_json('{"object":"list"}')
    assert not info.value.transient
    parser = OllamaStreamParser()
    assert parser.feed_line('{"message":{"content":"4"},"done":false}') is True
    parser.feed_line('{"message":{"content":"2"},"done":true,"prompt_eval_count":30,"eval_count":2}')
    parser.finish()
    assert parser.result.text == "42" and parser.result.input_tokens == 30 and parser.result.output_tokens == 2
    unfinished = OllamaStreamParser()
    unfinished.feed_line('{"message":{"content":"4"},"done":false}')
    with pytest.raises(MalformedResponse):
        unfinished.finish()
