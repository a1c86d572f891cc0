"""Headless queries behind `lrcal tui` (no Textual), on a home filled by the simulated flow."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from lrcal.store import Store
from lrcal.tui import data, fmt
from tests.fixtures.tui import CANDIDATES, DEMO_INCUMBENTS, VALIDATION_LIMIT

SPECIALIST, DOMINATED = CANDIDATES


@pytest.fixture
def demo_store(tui_demo_home):
    store = Store.open(tui_demo_home)
    yield store
    store.close()


@pytest.fixture
def snap(demo_store):
    return data.snapshot(demo_store)


# ---- models ----------------------------------------------------------------------------------


def test_models_table_reports_status_calibration_tokens_and_validation(demo_store):
    from lrcal.services.collection import summarize

    rows = {r.name: r for r in data.models_table(demo_store)}
    assert list(rows) == [*DEMO_INCUMBENTS, *CANDIDATES]
    decisions = {
        r["name"]: r["decision"]
        for r in demo_store.query("select m.name, v.decision from validations v join models m on m.id = v.model_id "
                                  "order by v.id")  # fmt: skip
    }
    for name, row in rows.items():
        assert row.status == demo_store.get_model(name)["status"]
        assert row.validation_decision == decisions.get(name)
        assert row.token == (data.TOKEN_TRAINED if name in DEMO_INCUMBENTS else data.TOKEN_FITTED)
    assert rows[DOMINATED].validation_set == "builtin-v1-holdout"
    # The numbers are those of the stored calibration outcomes.
    model = demo_store.get_model(SPECIALIST)
    expected = summarize(demo_store.model_outcomes(model["id"], kinds=["calibration"]))
    row = rows[SPECIALIST]
    assert row.calibration_n == expected["n"] == 128
    assert row.calibration_accuracy == pytest.approx(expected["accuracy"])
    assert row.latency_ms_p50 == pytest.approx(expected["latency_ms_p50"])
    assert row.latency_ms_p95 == pytest.approx(expected["latency_ms_p95"])
    assert row.price_in_per_mtok == model["price_in_per_mtok"]


def test_token_state_becomes_stale_when_the_router_is_retrained(tui_home_copy):
    store = Store.open(tui_home_copy)
    try:
        with store.write():
            store.db["router_versions"].insert(
                {"version": "r2-newer", "path": str(tui_home_copy / "routers" / "r2-newer"), "models": "[]",
                 "created_at": "2026-01-01T00:00:00"}  # fmt: skip
            )
        rows = {r.name: r for r in data.models_table(store)}
        assert rows[SPECIALIST].token == data.TOKEN_STALE
        assert rows[DEMO_INCUMBENTS[0]].token == data.TOKEN_NONE  # not in the new router's training pool
    finally:
        store.close()


def test_home_state_of_an_empty_home_says_what_to_run(store):
    state = data.home_state(store)
    assert state.empty and state.models == 0 and state.router_version is None
    assert "lrcal demo" in state.next_step() and "lrcal add-model" in state.next_step()
    assert data.models_table(store) == []
    with pytest.raises(Exception, match="router"):
        data.snapshot(store)


# ---- snapshot ----------------------------------------------------------------------------------


def test_snapshot_routes_the_last_validation_queries_with_every_tokened_model(demo_store, snap):
    assert snap.set_name == "builtin-v1-holdout" and snap.source == "validation"
    assert len(snap.examples) == VALIDATION_LIMIT  # the --limit subset the validation sent, not the whole set
    assert snap.models == [*DEMO_INCUMBENTS, *CANDIDATES]
    assert snap.predicted.shape == snap.measured.shape == (VALIDATION_LIMIT, len(snap.models))
    assert np.all((snap.predicted >= 0) & (snap.predicted <= 1))
    # Every model answered every validation query (incumbents, both candidates).
    assert np.isfinite(snap.measured).all()
    enabled = {m["name"] for m in demo_store.list_models(["enabled"])}
    assert snap.default_included == enabled >= set(DEMO_INCUMBENTS)  # the enabled pool
    assert set(snap.candidates) == set(CANDIDATES)  # onboarded models, in or out of the pool
    passed = demo_store.query_one(
        "select m.name from validations v join models m on m.id = v.model_id where v.decision = 'validated' "
        "order by v.id desc limit 1"
    )
    assert snap.default_candidate == (passed["name"] if passed else DOMINATED)  # last one that passed, else last
    assert (snap.expected_cost > 0).all() and (snap.expected_latency > 0).all()


def test_snapshot_predictions_are_the_routers(demo_store, snap):
    from lrcal.services.router_context import load_routing

    routing = load_routing(demo_store)
    prediction = routing.predict(demo_store, snap.examples, snap.models)
    np.testing.assert_allclose(snap.predicted, prediction.score, atol=1e-6)
    np.testing.assert_allclose(snap.expected_cost, routing.expected_costs(snap.models))


def test_snapshot_cache_is_reused_and_invalidated_by_new_outcomes(tui_home_copy):
    store = Store.open(tui_home_copy)
    try:
        first = data.snapshot(store)
        assert not first.from_cache
        again = data.snapshot(store)
        assert again.from_cache
        np.testing.assert_array_equal(again.predicted, first.predicted)
        np.testing.assert_array_equal(again.expected_latency, first.expected_latency)
        # A new calibration outcome changes expected cost/latency: the cache must not be used.
        model = store.get_model(SPECIALIST)
        example = store.set_examples(store.get_set("builtin-v1")["id"])[0]
        run_id = store.create_run(model["id"], example["set_id"], "calibration")
        store.record_outcome(run_id, example["id"], {"score": 1.0, "correct": 1, "latency_ms": 5000.0,
                                                      "input_tokens": 10, "output_tokens": 10, "cost_usd": 0.0})  # fmt: skip
        after = data.snapshot(store)
        assert not after.from_cache
        j = after.index(SPECIALIST)
        assert after.expected_latency[j] >= first.expected_latency[j]
        assert len(list((tui_home_copy / data.CACHE_DIR).glob("routing-*.npz"))) == 1
    finally:
        store.close()


def test_the_demo_leaves_the_routing_view_cached(tui_demo_home):
    """`lrcal demo` ends by caching the routing view, so the first `lrcal tui` skips torch."""
    import json

    steps = json.loads((tui_demo_home.parent / "demo-steps.json").read_text())
    assert steps[-1]["step"].startswith("Caching the routing view") and steps[-1]["ok"], steps[-1]
    assert len(list((tui_demo_home / data.CACHE_DIR).glob("routing-*.npz"))) == 1
    store = Store.open(tui_demo_home)
    try:
        assert data.snapshot(store).from_cache
    finally:
        store.close()


def test_prepare_routing_cache_warms_the_next_snapshot(tui_home_copy):
    import torch

    threads = torch.get_num_threads()
    store = Store.open(tui_home_copy)  # a copy holds the database only: no cache yet
    try:
        torch.set_num_threads(2)
        assert data.prepare_routing_cache(store) is True
        assert torch.get_num_threads() == 2  # the forward pass runs on one thread, then restores
        assert data.prepare_routing_cache(store) is False
        assert data.snapshot(store).from_cache
    finally:
        store.close()
        torch.set_num_threads(threads)


def test_snapshot_of_a_named_set_and_a_corrupt_cache(tui_home_copy):
    store = Store.open(tui_home_copy)
    try:
        cal = data.snapshot(store, "builtin-v1")
        assert cal.set_name == "builtin-v1" and cal.source == "calibration"
        assert len(cal.examples) == 128
        # Only the candidates were calibrated on builtin-v1: incumbents have no outcome there.
        assert np.isnan(cal.measured[:, cal.index(DEMO_INCUMBENTS[0])]).all()
        assert np.isfinite(cal.measured[:, cal.index(SPECIALIST)]).all()
        for path in (tui_home_copy / data.CACHE_DIR).glob("routing-*.npz"):
            path.write_bytes(b"not an npz")
        again = data.snapshot(store, "builtin-v1")
        assert not again.from_cache
        np.testing.assert_allclose(again.predicted, cal.predicted)
    finally:
        store.close()


# ---- routing ------------------------------------------------------------------------------------


def test_route_reproduces_the_validation_router_policy(demo_store, snap):
    """The TUI re-routes with the validation's own policy: same shares, same live quality."""
    validation = data.latest_validations(demo_store)[demo_store.get_model(SPECIALIST)["id"]]
    results = validation["results"]
    pool = [SPECIALIST, *results["incumbents"]]
    for policy, included in (("router_with", pool), ("router_without", results["incumbents"])):
        table = data.route(snap, 0.0, 0.0, included, pool=pool)
        stored = results["policies"][policy]
        for model, share in stored["share"].items():
            assert table.totals[model].share == pytest.approx(share), (policy, model)
        assert table.quality_measured == pytest.approx(stored["quality"])
    # And along the λ_cost frontier the validation swept.
    for point in results["frontier"]["cost"]["router_with"][::3]:
        table = data.route(snap, point["lambda"], 0.0, pool, pool=pool)
        assert table.quality_measured == pytest.approx(point["quality"]), point["lambda"]


def test_route_cells_shares_and_winners(snap):
    table = data.route(snap)
    assert table.included == snap.default_included
    for task in table.tasks:
        shares = [table.cell(task, m).share for m in table.models]
        assert sum(shares) == pytest.approx(1.0)
        winner = table.winners[task]
        assert table.cell(task, winner).share == max(shares)
        assert table.cell(task, DOMINATED).n == 0  # not in the pool
    assert sum(c.n for c in table.totals.values()) == len(snap.examples)
    routed = [c for c in table.cells.values() if c.n]
    assert all(c.predicted is not None and 0 <= c.predicted <= 1 for c in routed)
    assert all(c.measured is not None and c.measured_n == c.n for c in routed)


def test_lambda_cost_and_latency_trade_quality_for_cheaper_and_faster_models(snap):
    free = data.route(snap, 0.0, 0.0)
    included = sorted(free.included, key=snap.index)
    cost = {m: snap.expected_cost[snap.index(m)] for m in included}
    latency = {m: snap.expected_latency[snap.index(m)] for m in included}
    previous = free
    for lam in (0.05, 0.2, 1.0, 5.0):  # per query the chosen cost can only fall as λ grows
        table = data.route(snap, lam, 0.0)
        assert table.expected_cost_mean <= previous.expected_cost_mean + 1e-12
        assert table.totals[min(included, key=cost.get)].share >= previous.totals[min(included, key=cost.get)].share
        assert table.quality_predicted <= free.quality_predicted + 1e-12
        previous = table
    assert data.route(snap, 1e6, 0.0).totals[min(included, key=cost.get)].share == 1.0
    fastest, second = sorted(included, key=latency.get)[:2]
    if latency[second] - latency[fastest] > 1e-3 * (max(latency.values()) - latency[fastest]):
        assert data.route(snap, 0.0, 1e6).totals[fastest].share == 1.0
    slow = data.route(snap, 0.0, 1.0)
    chosen = slow.choice[slow.choice >= 0]
    free_chosen = free.choice[free.choice >= 0]
    assert snap.expected_latency[chosen].mean() <= snap.expected_latency[free_chosen].mean() + 1e-9


def test_diff_shows_which_incumbents_lose_which_traffic(snap):
    pool = set(DEMO_INCUMBENTS)
    # The candidate the router sends traffic to (the specialist in the demo's story).
    candidate = max(CANDIDATES, key=lambda c: data.route(snap, 0, 0, pool | {c}).totals[c].n)
    d = data.diff(snap, pool | {candidate}, pool)
    assert d.added == [candidate] and d.removed == []
    assert d.moved == d.after.totals[candidate].n > 0
    assert all(move.to_model == candidate and move.from_model in pool for move in d.moves)
    assert sum(d.lost.values()) == sum(d.gained.values()) == d.moved
    assert d.gained == {candidate: d.moved}
    for move in d.moves:
        assert move.share_of_group == pytest.approx(move.n / d.before.group_sizes[move.task])
        assert d.before.cell(move.task, move.from_model).n >= move.n
    # Removing a model moves its traffic back; a model nobody routes to changes nothing.
    back = data.diff(snap, pool, pool | {candidate})
    assert back.moved == d.moved and back.lost == {candidate: d.moved}
    idle = data.route(snap, 0, 0, pool | set(CANDIDATES))
    for other in CANDIDATES:
        if idle.totals[other].n == 0:
            assert data.diff(snap, pool | set(CANDIDATES), pool | set(CANDIDATES) - {other}).moved == 0


def test_route_with_an_empty_pool(snap):
    table = data.route(snap, 0, 0, included=[])
    assert (table.choice == -1).all()
    assert table.quality_predicted is None and all(c.n == 0 for c in table.totals.values())


# ---- detail, examples, images -------------------------------------------------------------------------


def test_model_detail_of_an_onboarded_candidate(demo_store):
    detail = data.model_detail(demo_store, SPECIALIST)
    tasks = {t.task: t for t in detail.tasks}
    assert set(tasks) == {"chart", "document", "math", "ocr", "spatial", "vqa"}
    token = demo_store.query_one("select per_task from model_tokens where model_id = ? order by id desc",
                                 [detail.model["id"]])  # fmt: skip
    per_task = __import__("json").loads(token["per_task"])
    for task, row in tasks.items():
        assert row.predicted == pytest.approx(per_task[task]["predicted"])
        assert row.low <= row.predicted <= row.high
        assert row.live is not None and row.live_n == VALIDATION_LIMIT // 6
        assert row.inside == (row.measured >= row.low - 1e-9)
    assert sum(count for _, _, count in detail.latency_bins) == detail.calibration["n"] - detail.calibration["errors"]
    assert detail.validation["decision"] in ("validated", "rejected") and detail.validation["reasons"]
    kinds = [e["kind"] for e in detail.events]
    assert "token_fitted" in kinds and kinds[-1] == "added"
    assert kinds[0] in (detail.model["status"], detail.validation["decision"])  # the last step: the gate's
    assert [e["id"] for e in detail.events] == sorted((e["id"] for e in detail.events), reverse=True)


def test_model_detail_of_a_trained_incumbent_has_no_interval(demo_store):
    detail = data.model_detail(demo_store, DEMO_INCUMBENTS[0])
    assert detail.row.token == data.TOKEN_TRAINED
    assert all(t.predicted is None and t.inside is None and t.n > 0 for t in detail.tasks)
    assert detail.validation is None


def test_examples_for_a_cell(demo_store, snap):
    table = data.route(snap)
    task, model = next((t, table.winners[t]) for t in table.tasks)
    views = data.examples_for(demo_store, snap, task, model, routed=table)
    assert len(views) == table.cell(task, model).n > 0
    for view in views:
        example = demo_store.example(view.pk)
        assert view.task == task and view.reference == example["answer"] and view.question == example["question"]
        assert [a.model for a in view.answers if a.chosen] == [model]
        assert {a.model for a in view.answers} == set(snap.models)
        assert [a.predicted for a in view.answers] == sorted((a.predicted for a in view.answers), reverse=True)
        assert all(a.answer is not None and a.score is not None and a.latency_ms for a in view.answers)
    everything = data.examples_for(demo_store, snap, task, None, routed=table)
    assert len(everything) == table.group_sizes[task]


def _pixels_of(text) -> np.ndarray:
    """Back from half blocks to an RGB array (top = foreground, bottom = background)."""
    lines = text.split("\n")
    height, width = 2 * len(lines), max(len(line) for line in lines)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    for y, line in enumerate(lines):
        assert set(line.plain) == {"▀"}
        for span in line.spans:
            for x in range(span.start, span.end):
                out[2 * y, x] = span.style.color.get_truecolor()[:3]
                out[2 * y + 1, x] = span.style.bgcolor.get_truecolor()[:3]
    return out


def test_image_halfblocks_keeps_colours_and_aspect():
    from PIL import Image

    image = Image.new("RGB", (120, 60), (250, 250, 250))
    for x in range(60):
        for y in range(30):
            image.putpixel((x, y), (200, 20, 20))  # red top-left quarter
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    text = data.image_halfblocks(buffer.getvalue(), 40, 30)
    pixels = _pixels_of(text)
    assert pixels.shape[:2] == (20, 40)  # 2:1 kept, width-bound
    expected = np.asarray(image.resize((40, 20), Image.Resampling.BOX))
    np.testing.assert_array_equal(pixels, expected)
    assert tuple(pixels[0, 0]) == (200, 20, 20) and tuple(pixels[-1, -1]) == (250, 250, 250)
    tall = _pixels_of(data.image_halfblocks(buffer.getvalue(), 40, 5))
    assert tall.shape[:2] == (10, 20)  # height-bound


def test_image_halfblocks_of_bad_or_missing_bytes():
    assert "cannot be decoded" in data.image_halfblocks(b"\x89PNG not really", 10, 5).plain
    assert data.image_halfblocks(None, 10, 5).plain == "(no image)"


def test_image_halfblocks_of_a_stored_example(demo_store, snap):
    sha = snap.examples[0]["image_sha256"]
    text = data.image_halfblocks(demo_store.image_bytes(sha), 30, 12)
    lines = text.split("\n")
    assert 1 <= len(lines) <= 12 and max(len(line) for line in lines) <= 30


# ---- charts ---------------------------------------------------------------------------------------


def test_chart_data(demo_store, snap):
    label, points = data.quality_latency_points(demo_store, snap)
    assert "builtin-v1-holdout" in label
    assert [p.model for p in points] == snap.models
    for p in points:
        j = snap.index(p.model)
        assert p.quality == pytest.approx(float(np.mean(snap.measured[:, j])))
        assert p.latency_ms > 0
    frontiers = data.validation_frontiers(demo_store)
    assert list(frontiers) == [DOMINATED, SPECIALIST]  # most recent first
    assert data.last_frontier(demo_store)["model"] == DOMINATED
    assert len(frontiers[SPECIALIST]["latency"]["router_with"]) > 3
    _, calibration_points = data.quality_latency_points(demo_store, None)
    assert {p.model for p in calibration_points} == set(snap.models)


# ---- formatting -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.8125, ".81"), (1.0, "1.0"), (0.996, "1.0"), (0.0, ".00"), (None, " – "), (math.nan, " – ")],
)
def test_quality_format(value, text):
    assert fmt.quality(value) == text


def test_other_formats():
    assert fmt.ms(6.54) == "6.5ms" and fmt.ms(61.4) == "61ms" and fmt.ms(1234) == "1.2s" and fmt.ms(15000) == "15s" and fmt.ms(None) == "–"
    assert fmt.usd(0.0075) == "$0.0075" and fmt.usd(3.6e-05) == "$0.000036" and fmt.usd(0.25) == "$0.25"
    assert fmt.share(0.333) == "33%" and fmt.lam(0.5) == "0.5" and fmt.lam(0.0) == "0"
    assert fmt.timestamp("2026-01-05T09:00:01.000+00:00") == "2026-01-05 09:00:01"
