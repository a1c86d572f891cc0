"""`lrcal serve`: the official openai client against a real uvicorn server over the simulated zoo."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.fixtures.gateway import example_of, image_messages, logged, wait_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPECIALIST = "sim-docreader-m"


def route_choice(home, example, **lambdas) -> str:
    """What `lrcal route` decides for the same query (the gateway must agree)."""
    from lrcal.services.route_query import explain_route
    from lrcal.store import Store

    store = Store.open(home)
    try:
        return explain_route(store, question=example.question, image=example.image_path, **lambdas)["choice"]
    finally:
        store.close()


def specialist_example(home, builtin_sets):
    """A built-in query the router sends to the specialist while it is enabled."""
    for task in ("document", "ocr"):
        for index in range(12):
            example = example_of(builtin_sets, task, index)
            if route_choice(home, example) == SPECIALIST:
                return example
    raise AssertionError(f"no document or OCR query goes to {SPECIALIST}")


def client_for(gw, key: str = "unused"):
    import openai

    return openai.OpenAI(base_url=gw.url, api_key=key, max_retries=0, timeout=30)


def test_openai_client_gets_routed_answers_streaming_and_not(gateway, served_home, builtin_sets):
    gw = gateway()
    client = client_for(gw)
    example = example_of(builtin_sets, "document")
    expected = route_choice(served_home, example)
    raw = client.chat.completions.with_raw_response.create(model="lrcal/auto", messages=image_messages(example))
    completion = raw.parse()
    assert completion.model == expected
    route = dict(part.split("=", 1) for part in raw.headers["x-lrcal-route"].split("; "))
    assert route["model"] == expected and route["attempts"] == "1" and route["runner_up"] != expected
    assert float(route["utility"]) >= float(route["runner_up_utility"])
    answer = completion.choices[0].message.content
    assert answer and completion.usage.completion_tokens > 0

    chunks = list(client.chat.completions.create(model="lrcal/auto", messages=image_messages(example), stream=True))
    assert {c.model for c in chunks} == {expected}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer  # the sim is deterministic
    assert not any(c.usage for c in chunks)  # the usage chunk only when asked for

    rows = logged(served_home, 2)
    assert [(r["served_model"], r["first_choice"], r["stream"], r["status_code"]) for r in rows] == [
        (expected, expected, 0, 200), (expected, expected, 1, 200)]
    assert rows[0]["features_hash"] == rows[1]["features_hash"] and rows[0]["n_images"] == 1
    assert all(r["input_tokens"] and r["output_tokens"] and r["cost_usd"] > 0 and r["ttft_ms"] > 0 for r in rows)
    assert [m.id for m in client.models.list()][0] == "lrcal/auto"


def test_a_concrete_model_passes_through_and_usage_streams_when_asked(gateway, served_home, builtin_sets):
    gw = gateway()
    client = client_for(gw)
    example = example_of(builtin_sets, "chart")
    chunks = list(client.chat.completions.create(model="sim-lite-s", messages=image_messages(example), stream=True,
                                                 stream_options={"include_usage": True}))  # fmt: skip
    assert {c.model for c in chunks} == {"sim-lite-s"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    row = logged(served_home, 1)[0]
    assert row["routed"] == 0 and row["served_model"] == "sim-lite-s" and row["router_version"]


def test_enable_disable_and_a_new_router_version_are_picked_up_without_restart(gateway, served_home, builtin_sets, served_cli):
    gw = gateway(reload_s=0.2)
    client = client_for(gw)
    example = specialist_example(served_home, builtin_sets)
    assert client.chat.completions.create(model="lrcal/auto", messages=image_messages(example)).model == SPECIALIST

    assert served_cli("disable", SPECIALIST, "--yes", "--reason", "gateway test").exit_code == 0
    health = lambda: httpx.get(gw.url.removesuffix("/v1") + "/health").json()  # noqa: E731
    _, took = wait_for(lambda: SPECIALIST not in health()["routed"], timeout_s=5)
    without = client.chat.completions.create(model="lrcal/auto", messages=image_messages(example)).model
    assert without != SPECIALIST and without == route_choice(served_home, example)
    with pytest.raises(Exception, match="not served here"):
        client.chat.completions.create(model=SPECIALIST, messages=image_messages(example))

    assert served_cli("enable", SPECIALIST).exit_code == 0
    wait_for(lambda: SPECIALIST in health()["routed"], timeout_s=5)
    assert client.chat.completions.create(model="lrcal/auto", messages=image_messages(example)).model == SPECIALIST
    assert took < 5

    # A new router version (the same artifacts registered under a new name) is routed with within seconds.
    from lrcal.store import Store

    store = Store.open(served_home)
    current = store.current_router_version()
    store.register_router_version("r9-gateway-test", path=current["path"], models=json.loads(current["models"]),
                                  data_hash=current["data_hash"], config={}, metrics={})  # fmt: skip
    store.close()
    wait_for(lambda: health()["router_version"] == "r9-gateway-test", timeout_s=5)
    raw = client.chat.completions.with_raw_response.create(model="lrcal/auto", messages=image_messages(example))
    assert raw.headers["x-lrcal-router-version"] == "r9-gateway-test"


def test_lambda_headers_override_the_saved_policy(gateway, served_home, builtin_sets):
    gw = gateway()
    client = client_for(gw)
    example = example_of(builtin_sets, "document")
    cheap = route_choice(served_home, example, lambda_cost=5.0, lambda_latency=0.0)
    assert cheap != route_choice(served_home, example)
    answer = client.chat.completions.create(model="lrcal/auto", messages=image_messages(example),
                                            extra_headers={"X-Lrcal-Lambda-Cost": "5"})  # fmt: skip
    assert answer.model == cheap
    row = logged(served_home, 1)[0]
    assert row["lambda_cost"] == 5.0 and row["served_model"] == cheap
    response = httpx.post(gw.url + "/chat/completions", headers={"X-Lrcal-Lambda-Cost": "-1"},
                          json={"model": "lrcal/auto", "messages": image_messages(example)})  # fmt: skip
    assert response.status_code == 400 and "x-lrcal-lambda-cost" in response.json()["error"]["message"]


def test_an_image_never_goes_to_a_text_only_model(gateway, served_home, builtin_sets, served_cli):
    example = specialist_example(served_home, builtin_sets)
    assert served_cli("models", "set", SPECIALIST, "--no-images").exit_code == 0
    gw = gateway()
    client = client_for(gw)
    raw = client.chat.completions.with_raw_response.create(model="lrcal/auto", messages=image_messages(example))
    assert raw.parse().model != SPECIALIST and SPECIALIST not in raw.headers["x-lrcal-route"]
    text_only = client.chat.completions.create(model=SPECIALIST, messages=[{"role": "user", "content": "hi"}])
    assert text_only.model == SPECIALIST
    named = httpx.post(gw.url + "/chat/completions", json={"model": SPECIALIST, "messages": image_messages(example)})
    assert named.status_code == 400 and "image input" in named.json()["error"]["message"]

    from lrcal.store import Store

    store = Store.open(served_home)
    for model in store.list_models(["enabled"]):
        store.change_model(model["name"], {"accepts_images": 0}, message="text-only (test)")
    store.close()
    wait_for(lambda: httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto",
             "messages": image_messages(example)}).status_code == 400, timeout_s=5)  # fmt: skip
    refused = httpx.post(gw.url + "/chat/completions", json={"model": "lrcal/auto", "messages": image_messages(example)})
    error = refused.json()["error"]
    assert error["code"] == "missing_capability_image_input" and "no enabled model accepts image input" in error["message"]
    assert "Traceback" not in refused.text
    assert client.chat.completions.create(model="lrcal/auto", messages=[{"role": "user", "content": "2+2?"}]).model


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (json.dumps({"model": "lrcal/auto"}).encode(), 400, "'messages'"),
        (json.dumps({"model": "lrcal/auto", "messages": [{"role": "user", "content": 3}]}).encode(), 400, "content"),
        (json.dumps({"model": "lrcal/auto", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}).encode(),
         400, "input_audio"),
        (json.dumps({"model": "lrcal/auto", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]}).encode(), 400, "base64"),
        (json.dumps({"model": "lrcal/auto", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}).encode(),
         400, "'stream'"),
        (json.dumps({"model": "gpt-nope", "messages": [{"role": "user", "content": "x"}]}).encode(), 404, "not served"),
        (json.dumps({"model": "lrcal/auto", "messages": [{"role": "user", "content": "x" * 5000}]}).encode(), 413,
         "larger than"),
    ],
)  # fmt: skip
def test_bad_requests_get_openai_style_errors(gateway, body, status, fragment):
    gw = gateway(max_body_bytes=4096)
    response = httpx.post(gw.url + "/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] and "\n" not in error["message"]
    assert "Traceback" not in response.text


def test_the_gateway_key_is_checked_and_never_logged(gateway, served_home, monkeypatch, capfd):
    key = "sk-gateway-secret-7f3a9c"
    monkeypatch.setenv("LRCAL_TEST_GATEWAY_KEY", key)
    gw = gateway(api_key_env="LRCAL_TEST_GATEWAY_KEY")
    body = {"model": "lrcal/auto", "messages": [{"role": "user", "content": "What is 2+2?"}]}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {key}"}):
        response = httpx.post(gw.url + "/chat/completions", json=body, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(gw.url + "/models").status_code == 401
    assert client_for(gw, key).chat.completions.create(**body).model
    gw.stop()
    out = capfd.readouterr()
    assert key not in out.out + out.err
    from lrcal.store import Store

    store = Store.open(served_home)
    dump = "\n".join(store.db.iterdump())
    store.close()
    assert key not in dump


def test_pool_scorer_gives_router_predict_numbers(served_home, builtin_sets):
    import numpy as np

    from lrcal.features import Query
    from lrcal.gateway.config import GatewayConfig
    from lrcal.gateway.routing import PoolScorer, load_table
    from lrcal.store import Store

    store = Store.open(served_home)
    table = load_table(store, GatewayConfig(home=str(served_home)))
    # a reload that changes nothing the networks compute keeps the traced members; a smaller pool retraces
    assert load_table(store, GatewayConfig(home=str(served_home)), table).scorer.single_row is table.scorer.single_row
    smaller = PoolScorer(table.router, table.routed[:-1], table.version, table.scorer)
    assert smaller.single_row is not table.scorer.single_row
    store.close()
    examples = [example_of(builtin_sets, task) for task in ("document", "chart", "math", "vqa")]
    X = table.router.featurize([Query(question=e.question, images=[str(e.image_path)]) for e in examples])
    fast, slow = table.scorer.predict(X), table.router.predict(X, table.routed)
    for key in ("mu", "sigma", "delta", "score", "prior", "network_score"):
        np.testing.assert_allclose(fast[key], getattr(slow, key), atol=1e-6)
    # one row (a request) goes through the traced members: the same numbers but float rounding
    assert all(traced is not None for traced in table.scorer.single_row)
    rows = [table.scorer.predict(X[i : i + 1]) for i in range(len(X))]
    for key in ("mu", "sigma", "delta", "score", "prior", "network_score"):
        np.testing.assert_allclose(np.concatenate([row[key] for row in rows]), getattr(slow, key), atol=1e-5)
    assert [int(row["score"].argmax()) for row in rows] == list(slow.score.argmax(axis=1))


def test_lrcal_cli_does_not_import_the_gateway_stack():
    code = ("import sys, lrcal.cli; heavy = [m for m in ('starlette', 'uvicorn', 'openai', 'lrcal.gateway') "
            "if m in sys.modules]; print(heavy)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
