"""The simulated zoo: profiles, determinism, answers the scorer reads, recognition, chaos."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
from collections import defaultdict

import pytest

from lrcal.calsets import build_prompt, read_image_bytes, score_answer
from lrcal.serve import ChatRequest
from lrcal.sim import (
    TASK_GROUPS,
    ChaosConfig,
    ChaosInjector,
    ExampleIndex,
    SimBackend,
    SimExample,
    ZooError,
    load_zoo,
    zoo_from_dict,
)
from lrcal.sim.answers import GENERIC_ANSWERS

SPECIALISTS = {
    "ocr": "sim-docreader-m",
    "document": "sim-docreader-m",
    "chart": "sim-chartqa-m",
    "spatial": "sim-spatial-m",
    "math": "sim-mathsolver-l",
}
GENERALIST, LITE, DOMINATED = "sim-generalist-xl", "sim-lite-s", "sim-legacy-xl"


# ---- a large synthetic set (no images needed: recognition is by hash) ----------------------

WORDS = ["harbor", "velvet", "cobalt", "meadow", "quartz", "lantern", "saffron", "glacier", "orchid", "tundra"]
CODES = ["XK7-4421", "QZ-90817", "Invoice 2024-03", "Lot 55/B", "ACME Corp.", "RT-0093-K"]


def synthetic_examples(n_per_group: int = 120, seed: int = 0) -> list[SimExample]:
    """Examples of every answer type in every group, with difficulties spread over [0, 1]."""
    r = random.Random(seed)
    out = []
    for group in TASK_GROUPS:
        for i in range(n_per_group):
            kind = ("multiple_choice", "number", "yes_no", "exact", "anls")[i % 5]
            choices, tolerance = None, None
            if kind == "multiple_choice":
                choices = tuple(r.sample(["left", "right", "above", "below", "red", "blue"], 4))
                answer = r.choice(["A", "B", "C", "D", choices[r.randrange(4)]])
            elif kind == "number":
                answer = r.choice(["42", "1,250", "3.5", "12.5 %", "$3.50", "7", "0", "250000"])
                tolerance = r.choice([None, 0.02, 0.05])
            elif kind == "yes_no":
                answer = r.choice(["yes", "no", "Yes", "No"])
            elif kind == "exact":
                answer = r.choice(WORDS + ["The Beatles", "42nd Street"])
            else:
                answer = r.choice(CODES)
            out.append(
                SimExample(
                    id=f"{group}-{i:04d}",
                    set_name="synthetic",
                    task_group=group,
                    question=f"Question {i} about {group}?",
                    answer=answer,
                    answer_type=kind,
                    choices=choices,
                    tolerance=tolerance,
                    difficulty=(i * 7919 % n_per_group) / max(1, n_per_group - 1),
                    subtype=None,
                    image_sha256=hashlib.sha256(f"{group}-{i}".encode()).hexdigest(),
                )
            )
    return out


@pytest.fixture(scope="module")
def examples() -> list[SimExample]:
    return synthetic_examples()


@pytest.fixture(scope="module")
def backend(examples) -> SimBackend:
    return SimBackend(load_zoo("default"), ExampleIndex(examples), seed=0)


def accuracy_by_group(backend: SimBackend, model: str, examples: list[SimExample]) -> dict[str, float]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for ex in examples:
        hits[ex.task_group].append(backend.is_correct(model, ex))
    return {g: sum(v) / len(v) for g, v in hits.items()}


# ---- the zoo -------------------------------------------------------------------------------


def test_default_zoo_has_every_required_role():
    zoo = load_zoo("default")
    assert len(zoo.models) >= 7
    assert all(m.name.startswith("sim-") for m in zoo.models)
    assert all(set(TASK_GROUPS) <= set(m.skills) for m in zoo.models)
    generalist, lite = zoo.model(GENERALIST), zoo.model(LITE)
    assert generalist.price_out_per_mtok == max(m.price_out_per_mtok for m in zoo.models if m.name != DOMINATED)
    assert lite.median_latency_ms == min(m.median_latency_ms for m in zoo.models)
    assert lite.price_out_per_mtok == min(m.price_out_per_mtok for m in zoo.models)
    # every specialist is clearly best on its groups (>= 10 points) and weaker than the generalist elsewhere
    for group, name in SPECIALISTS.items():
        best, second = sorted((m.skills[group] for m in zoo.models), reverse=True)[:2]
        assert zoo.model(name).skills[group] == best and best - second >= 0.10
        elsewhere = [g for g in TASK_GROUPS if SPECIALISTS.get(g) != name]
        assert all(zoo.model(name).skills[g] < generalist.skills[g] for g in elsewhere)
    assert 50 <= generalist.median_latency_ms <= 1000  # hundreds of ms at scale 1


def test_dominated_model_is_worse_slower_and_pricier_than_an_incumbent():
    zoo = load_zoo("default")
    dominated, incumbent = zoo.model(DOMINATED), zoo.model(GENERALIST)
    assert all(dominated.skills[g] < incumbent.skills[g] for g in TASK_GROUPS)
    assert dominated.median_latency_ms > incumbent.median_latency_ms
    assert dominated.ttft_ms > incumbent.ttft_ms
    assert dominated.price_in_per_mtok > incumbent.price_in_per_mtok
    assert dominated.price_out_per_mtok > incumbent.price_out_per_mtok
    assert dominated.output_tokens_median >= incumbent.output_tokens_median
    for key in set(dominated.subtype_skill) | set(incumbent.subtype_skill):  # also on every subtype
        group, _, subtype = key.partition("/")
        assert dominated.skill(group, subtype) < incumbent.skill(group, subtype)


def test_dominated_model_loses_on_every_single_request(backend, examples):
    """It shares the incumbent's draws: right only where the incumbent is right, and slower
    and pricier on every request -- so validation sees domination on any sample."""
    zoo = backend.zoo
    dominated, incumbent = zoo.model(DOMINATED), zoo.model(GENERALIST)
    assert any(backend.is_correct(GENERALIST, ex) and not backend.is_correct(DOMINATED, ex) for ex in examples)
    for ex in examples:
        if backend.is_correct(DOMINATED, ex):
            assert backend.is_correct(GENERALIST, ex)
        a = backend.answer(DOMINATED, ex.question, b"img")
        b = backend.answer(GENERALIST, ex.question, b"img")
        assert a.total_s > b.total_s and a.ttft_s > b.ttft_s
        cost = lambda m, r: r.input_tokens * m.price_in_per_mtok + r.output_tokens * m.price_out_per_mtok  # noqa: E731
        assert cost(dominated, a) > cost(incumbent, b)


def test_errors_are_correlated_across_models_but_not_nested(backend, examples):
    both = sum(backend.is_correct(LITE, e) and backend.is_correct("sim-balanced-m", e) for e in examples)
    p_lite = sum(backend.is_correct(LITE, e) for e in examples) / len(examples)
    p_bal = sum(backend.is_correct("sim-balanced-m", e) for e in examples) / len(examples)
    assert both / len(examples) > p_lite * p_bal + 0.02  # more overlap than independence
    assert any(backend.is_correct(LITE, e) and not backend.is_correct("sim-balanced-m", e) for e in examples)


def test_measured_accuracy_follows_the_profiles(backend, examples):
    acc = {m: accuracy_by_group(backend, m, examples) for m in backend.model_names()}
    for group, name in SPECIALISTS.items():
        assert acc[name][group] >= acc[GENERALIST][group] + 0.08, (group, acc[name][group], acc[GENERALIST][group])
    mean = {m: sum(a.values()) / len(a) for m, a in acc.items()}
    assert mean[GENERALIST] > mean["sim-balanced-m"] > mean[LITE]
    assert all(acc[DOMINATED][g] <= acc[GENERALIST][g] for g in TASK_GROUPS)
    # accuracy falls with difficulty
    easy = [e for e in examples if e.difficulty < 0.3]
    hard = [e for e in examples if e.difficulty > 0.7]
    for model in backend.model_names():
        assert backend.expected_accuracy(model, easy) > backend.expected_accuracy(model, hard) + 0.1


def test_correctness_is_deterministic_per_model_example_and_seed(examples):
    zoo = load_zoo("default")
    a = SimBackend(zoo, ExampleIndex(examples), seed=1)
    b = SimBackend(zoo, ExampleIndex(reversed(examples)), seed=1)  # order of loading does not matter
    c = SimBackend(zoo, ExampleIndex(examples), seed=2)
    verdicts = lambda backend: [backend.is_correct(m, e) for m in zoo.names for e in examples]  # noqa: E731
    assert verdicts(a) == verdicts(b)
    differing = sum(x != y for x, y in zip(verdicts(a), verdicts(c)))
    assert 0.1 * len(examples) < differing  # another seed is another draw
    texts = lambda backend: [backend.answer_text(m, e, e.question, e.image_sha256) for m in zoo.names[:3] for e in examples]  # noqa: E731
    assert texts(a) == texts(b)


def test_every_answer_is_scored_as_the_simulator_intended(backend, examples):
    """Right answers in varied phrasing are read as right by the project's scorer, and
    wrong ones (another option, a nearby number, a flipped yes/no, another word) as wrong."""
    phrasings, mismatches = set(), []
    for model in backend.model_names():
        for ex in examples:
            text = backend.answer_text(model, ex, ex.question, ex.image_sha256)
            phrasings.add(text.replace(ex.answer, "<a>"))
            scored = score_answer(ex, text)
            if scored.correct != backend.is_correct(model, ex):
                mismatches.append((model, ex.answer_type, ex.answer, text, scored))
            if ex.answer_type == "anls" and not backend.is_correct(model, ex):
                assert scored.score == 0.0, (ex.answer, text, scored)
    assert not mismatches, mismatches[:5]
    assert len(phrasings) > 30  # not one fixed template


def test_wrong_answers_keep_the_format(backend, examples):
    for ex in examples:
        model = LITE
        if backend.is_correct(model, ex):
            continue
        text = backend.answer_text(model, ex, ex.question, ex.image_sha256)
        if ex.answer_type == "yes_no":
            assert score_answer({"answer": "yes", "answer_type": "yes_no"}, text).parsed in ("yes", "no")
        elif ex.answer_type == "number":
            assert score_answer({"answer": "0", "answer_type": "number"}, text).parsed is not None
        elif ex.answer_type == "multiple_choice":
            other = score_answer({"answer": "A", "answer_type": "multiple_choice", "choices": ex.choices}, text)
            assert other.parsed is not None or any(c in text for c in ex.choices)


def test_unknown_queries_get_a_generic_answer(backend):
    answer = backend.answer(GENERALIST, "What is the capital of the image?", b"not a known image")
    assert answer.text in GENERIC_ANSWERS and answer.output_tokens >= 1 and answer.input_tokens > 1000
    assert backend.answer(LITE, "Say hi", None).input_tokens < 50  # no image tokens


def test_latency_scale_fixed_latency_and_token_growth(examples):
    zoo = load_zoo("default")
    index = ExampleIndex(examples)
    ex = examples[0]
    prompt, image = ex.question, None
    full = SimBackend(zoo, index, latency_scale=1.0)
    fast = SimBackend(zoo, index, latency_scale=0.01)
    fixed = SimBackend(zoo, index, fixed_latency_ms=100)
    a, b = full.answer(GENERALIST, prompt, image), fast.answer(GENERALIST, prompt, image)
    assert b.total_s == pytest.approx(a.total_s * 0.01) and a.ttft_s < a.total_s
    assert 0.05 < a.total_s < 1.5
    assert fixed.answer(LITE, prompt, image).total_s == pytest.approx(0.1)
    assert fixed.answer(GENERALIST, prompt, image).total_s == pytest.approx(0.1)
    model = zoo.model(GENERALIST)
    assert full.timing(model, "k", 400)[1] > full.timing(model, "k", 40)[1]  # more tokens, more time
    lite = [fast.answer(LITE, e.question, None).total_s for e in examples[:50]]
    gen = [fast.answer(GENERALIST, e.question, None).total_s for e in examples[:50]]
    assert sorted(lite)[25] < sorted(gen)[25]


def test_custom_zoo_files_and_their_errors(tmp_path):
    good = {
        "name": "mine",
        "models": [{"name": "sim-a", "skills": {"ocr": 0.9}, "price_in_per_mtok": 1, "price_out_per_mtok": 2}],
    }
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(good))
    zoo = load_zoo(path)
    assert zoo.names == ["sim-a"] and zoo.model("sim-a").skill("chart") == 0.5
    bad_cases = {
        "missing.json": (None, "no such file"),
        "syntax.json": ("{\n  nope", "invalid JSON at line 2"),
        "skill.json": (json.dumps({"models": [{"name": "x", "skills": {"ocr": 1.5}}]}), "skills.ocr must be between 0 and 1"),
        "dupe.json": (json.dumps({"models": [{"name": "x", "skills": {"ocr": 0.5}}] * 2}), "duplicate model name 'x'"),
        "name.json": (json.dumps({"models": [{"name": "a b", "skills": {"ocr": 0.5}}]}), "'name' must be"),
        "empty.json": (json.dumps({"models": []}), "non-empty list"),
    }
    for filename, (content, needle) in bad_cases.items():
        target = tmp_path / filename
        if content is not None:
            target.write_text(content)
        with pytest.raises(ZooError, match=needle) as info:
            load_zoo(target)
        assert "\n" not in str(info.value)
    with pytest.raises(ZooError, match="shares_draws_with"):
        zoo_from_dict({"models": [{"name": "x", "skills": {"ocr": 0.5}, "shares_draws_with": "y"}]})
    with pytest.raises(ZooError, match="max_concurrency"):
        zoo_from_dict({"models": [{"name": "x", "skills": {"ocr": 0.5}, "max_concurrency": 0}]})


def test_subtype_modifiers(examples):
    zoo = zoo_from_dict(
        {"models": [{"name": "m", "skills": {"ocr": 0.8}, "subtype_skill": {"ocr/code": -0.3, "word": 0.1}}]}
    )
    model = zoo.model("m")
    assert model.skill("ocr", "code") == pytest.approx(0.5)
    assert model.skill("ocr", "word") == pytest.approx(0.9)
    assert model.skill("ocr", "other") == pytest.approx(0.8)


# ---- recognition ---------------------------------------------------------------------------


def test_recognition_by_image_hash_and_question_even_inside_a_prompt(tiny_set):
    index = ExampleIndex.from_sets([tiny_set])
    assert len(index) == len(tiny_set.examples)
    for example in tiny_set.examples:
        image = read_image_bytes(example)
        sha = hashlib.sha256(image).hexdigest()
        assert index.lookup(example.question, sha).id == example.id
        assert index.lookup(build_prompt(example), sha).id == example.id  # question wrapped in instructions
        assert index.lookup("  " + example.question.upper() + "  ", sha).id == example.id
        assert index.lookup(example.question, hashlib.sha256(image + b"x").hexdigest()) is None
        assert index.lookup("Something else entirely?", sha) is None
    # the same content from a second set (e.g. a subset) is indexed once
    assert len(ExampleIndex.from_sets([tiny_set, tiny_set])) == len(tiny_set.examples)


# ---- chaos -----------------------------------------------------------------------------------


def _request(question: str = "q?", model: str = LITE) -> ChatRequest:
    return ChatRequest("openai", model, question, b"img", "image/png", True, True, None)


def test_chaos_decisions_are_per_attempt_and_reproducible():
    def decisions(seed: int) -> list[str | None]:
        injector = ChaosInjector(ChaosConfig(fail_rate=0.5), lambda q, s: None, seed=seed)
        out = []
        for i in range(40):
            for _attempt in range(3):
                fault = injector.decide(_request(f"q{i}"))
                out.append(fault.kind.value if fault else None)
        return out

    first, again, other = decisions(3), decisions(3), decisions(4)
    assert first == again and first != other
    faults = [d for d in first if d]
    assert 0.35 < len(faults) / len(first) < 0.65
    assert set(faults) == {"http_500", "http_502", "http_503", "http_429"}
    # per attempt: some request fails then succeeds on a later attempt
    triples = [first[i : i + 3] for i in range(0, len(first), 3)]
    assert any(t[0] and not t[1] for t in triples)


def test_chaos_groups_model_filter_and_permanent_faults(examples):
    text_only = [dataclasses.replace(e, image_sha256=None) for e in examples[:5]]
    index = ExampleIndex(text_only)
    target = text_only[0]
    config = ChaosConfig(permanent={target.id: "http_503"}, models=frozenset({LITE}), slow_rate=1.0)
    injector = ChaosInjector(config, index.lookup)
    request = ChatRequest("openai", LITE, target.question, None, None, True, True, None)
    known = lambda q: ChatRequest("openai", LITE, q, None, None, True, True, None)  # noqa: E731
    for _ in range(3):
        assert injector.decide(request).kind.value == "http_503"
    assert injector.decide(known("unknown question")).kind.value in ("stall", "no_done")
    assert injector.decide(ChatRequest("openai", GENERALIST, target.question, None, None, True, True, None)) is None
    with pytest.raises(Exception, match="probability"):
        ChaosConfig(fail_rate=1.5)
    with pytest.raises(Exception, match="more than 1"):
        ChaosConfig(fail_rate=0.6, malformed_rate=0.6)
    with pytest.raises(Exception, match="unknown fault kind 'boom'"):
        ChaosConfig(permanent={"x": "boom"})


# ---- over HTTP ---------------------------------------------------------------------------------


def test_sim_server_answers_through_the_endpoint_client_as_decided(sim_server, tiny_set):
    from lrcal.endpoints import EndpointClient, EndpointConfig

    sim = sim_server(sets=[tiny_set], seed=3)
    by_id = {ex.id: ex for ex in tiny_set.examples}

    async def go():
        results = {}
        for model in sim.model_names:
            async with EndpointClient(EndpointConfig(sim.url, model, timeout_s=5)) as client:
                for ex in tiny_set.examples:
                    results[(model, ex.id)] = await client.complete(build_prompt(ex), read_image_bytes(ex), "image/png")
        return results

    results = asyncio.run(go())
    assert all(r.ok and r.answer not in GENERIC_ANSWERS for r in results.values())
    for (model, example_id), result in results.items():
        example = by_id[example_id]
        intended = sim.backend.is_correct(model, sim.index.lookup(example.question, example.image_sha256))
        assert score_answer(example, result.answer).correct == intended
    counts = sim.request_counts
    assert counts == {m: len(tiny_set.examples) for m in sim.model_names}


def test_sim_stats_route_counts_requests(sim_server, tiny_set):
    import httpx

    sim = sim_server(sets=[tiny_set], fail_rate=1.0, retry_after_s=0.01)
    body = {"model": LITE, "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(3):
        assert httpx.post(sim.url + "/chat/completions", json=body).status_code in (429, 500, 502, 503)
    stats = httpx.get(sim.root_url + "/sim/stats").json()
    assert stats["requests"] == {LITE: 3} and sum(stats["faults"].values()) == 3
    sim.reset_stats()
    assert sim.request_counts == {}


def test_official_openai_client_against_the_simulator(sim_server, tiny_set):
    openai = pytest.importorskip("openai")
    from lrcal.calsets import image_data_url

    sim = sim_server(sets=[tiny_set])
    example = tiny_set.by_id()["spatial-rel"]
    client = openai.OpenAI(base_url=sim.url, api_key="not-needed", max_retries=0, timeout=10)
    assert set(sim.model_names) == {m.id for m in client.models.list()}
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": build_prompt(example)},
                {"type": "image_url", "image_url": {"url": image_data_url(example)}},
            ],
        }
    ]
    expected = sim.backend.answer(GENERALIST, build_prompt(example), read_image_bytes(example))
    completion = client.chat.completions.create(model=GENERALIST, messages=messages, max_tokens=256)
    assert completion.choices[0].message.content == expected.text
    assert completion.usage.prompt_tokens == expected.input_tokens
    stream = client.chat.completions.create(
        model=GENERALIST, messages=messages, stream=True, stream_options={"include_usage": True}, max_tokens=256
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected.text
    assert chunks[-1].usage.completion_tokens == expected.output_tokens


def test_builtin_set_through_http_is_scored_as_decided_and_shows_the_profiles(sim_server, home):
    """Every zoo model on the committed built-in set, over real sockets: the project's scorer
    reads each answer exactly as the simulator decided it, and the profiles show."""
    from lrcal.calsets import load_set, resolve_set
    from lrcal.endpoints import EndpointClient, EndpointConfig
    from lrcal.errors import NotFound

    try:
        builtin = load_set(resolve_set("builtin-v1", home))
    except NotFound:
        pytest.skip("calibration_sets/builtin-v1 is not generated in this checkout")
    sim = sim_server(sets=[builtin], latency_scale=0.01)
    prompts = [(ex, build_prompt(ex), read_image_bytes(ex)) for ex in builtin.examples]

    async def run_model(model: str):
        config = EndpointConfig(sim.url, model, timeout_s=10, max_concurrency=16)
        async with EndpointClient(config) as client:
            results = await asyncio.gather(*(client.complete(p, img, None) for _, p, img in prompts))
        return model, results

    async def go():
        return dict(await asyncio.gather(*(run_model(m) for m in sim.model_names)))

    outcomes = asyncio.run(go())
    accuracy: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for model, results in outcomes.items():
        for (example, _, _), result in zip(prompts, results):
            assert result.ok and result.answer not in GENERIC_ANSWERS
            correct = score_answer(example, result.answer).correct
            known = sim.index.lookup(example.question, example.image_sha256)
            assert correct == sim.backend.is_correct(model, known), (model, example.id, result.answer)
            accuracy[model][example.task_group].append(correct)
    overall = {m: sum(sum(v) for v in g.values()) / len(builtin.examples) for m, g in accuracy.items()}
    assert overall[GENERALIST] > overall[DOMINATED] and overall[GENERALIST] > overall[LITE] + 0.15
    gaps = [
        sum(accuracy[name][group]) / len(accuracy[name][group])
        - sum(accuracy[GENERALIST][group]) / len(accuracy[GENERALIST][group])
        for group, name in SPECIALISTS.items()
    ]
    assert sum(gaps) / len(gaps) > 0.05  # specialists lead on their groups (noisy per group at n~21)


def test_default_zoo_subtype_modifiers_name_generated_subtypes():
    """Modifiers keyed by a subtype the generator does not produce would silently do nothing."""
    from lrcal.calsets.generator import SUBTYPES

    for model in load_zoo("default").models:
        for key in model.subtype_skill:
            group, _, subtype = key.partition("/")
            assert group in SUBTYPES and subtype in SUBTYPES[group], (model.name, key)
