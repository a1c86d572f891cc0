"""The review service behind `lrcal tui` (no Textual), on a home filled by the simulated flow."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import pytest

from lrcal.services.review import TOKEN_FITTED, TOKEN_NONE, TOKEN_STALE, TOKEN_TRAINED, ReviewService
from lrcal.services.review.models import latest_validations
from lrcal.services.review.snapshot import prepare_routing_cache, snapshot
from lrcal.services.review.snapshot_cache import CACHE_DIR
from lrcal.store import Store
from tests.fixtures.tui import CANDIDATES, DEMO_INCUMBENTS, VALIDATION_LIMIT

SPECIALIST, DOMINATED = CANDIDATES
route, diff = ReviewService.route, ReviewService.diff
SQL = re.compile(r"[\"'](select|insert into|update \w+ set|delete from)\b", re.IGNORECASE)


@pytest.fixture
def demo_store(tui_demo_home):
    with contextlib.closing(Store.open(tui_demo_home)) as store:
        yield store


@pytest.fixture
def review(tui_demo_home):
    with ReviewService(tui_demo_home).connect() as session:
        yield session


@pytest.fixture
def snap(review):
    return review.snapshot()


def test_the_tui_and_the_review_service_hold_no_sql_and_the_tui_no_store():
    """The TUI talks to the review service it is handed; the service's SQL lives in the store."""
    import lrcal.services.review
    import lrcal.tui

    tui = sorted(Path(lrcal.tui.__file__).parent.glob("*.py"))
    service = sorted(Path(lrcal.services.review.__file__).parent.glob("*.py"))
    assert len(tui) >= 8 and len(service) >= 8
    for path in tui + service:
        text = path.read_text()
        assert not SQL.search(text), f"SQL in {path}"
        assert "store.query" not in text and "db.execute" not in text, path
    for path in tui:
        assert "lrcal.store" not in path.read_text(), f"{path} imports the store"
    assert SQL.search('"select 1"')  # the pattern does find SQL


# ---- models ----------------------------------------------------------------------------------


def test_models_table_reports_status_calibration_tokens_and_validation(demo_store, review):
    from lrcal.services.collection import summarize

    rows = {r.name: r for r in review.models_table()}
    assert list(rows) == [*DEMO_INCUMBENTS, *CANDIDATES]
    decisions = {
        r["name"]: r["decision"]
        for r in demo_store.query("select m.name, v.decision from validations v join models m on m.id = v.model_id "
                                  "order by v.id")  # fmt: skip
    }
    for name, row in rows.items():
        assert row.status == demo_store.get_model(name)["status"]
        assert row.validation_decision == decisions.get(name)
        assert row.token == (TOKEN_TRAINED if name in DEMO_INCUMBENTS else TOKEN_FITTED)
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


def test_calibration_accuracy_leaves_failed_requests_out():
    from lrcal.services.review.models import measured_accuracy

    rows = [{"correct": 1, "error_kind": None}, {"correct": 0, "error_kind": None},
            {"correct": None, "error_kind": "timeout"}, {"correct": None, "error_kind": "http_503"}]  # fmt: skip
    assert measured_accuracy(rows) == 0.5
    assert measured_accuracy(rows[2:]) is None and measured_accuracy([]) is None


def test_token_state_becomes_stale_when_the_router_is_retrained(tui_home_copy):
    store = Store.open(tui_home_copy)
    try:
        with store.write():
            store.db["router_versions"].insert(
                {"version": "r2-newer", "path": str(tui_home_copy / "routers" / "r2-newer"), "models": "[]",
                 "created_at": "2026-01-01T00:00:00"}  # fmt: skip
            )
        with ReviewService(tui_home_copy).connect() as review:
            rows = {r.name: r for r in review.models_table()}
        assert rows[SPECIALIST].token == TOKEN_STALE
        assert rows[DEMO_INCUMBENTS[0]].token == TOKEN_NONE  # not in the new router's training pool
    finally:
        store.close()


def test_home_state_of_an_empty_home_says_what_to_run(home):
    with ReviewService(home).connect() as review:
        state = review.home_state()
        assert state.empty and state.models == 0 and state.router_version is None
        assert "lrcal demo" in state.next_step() and "lrcal add-model" in state.next_step()
        assert review.models_table() == []
        with pytest.raises(Exception, match="router"):
            review.snapshot()


def test_home_state_counts(review, demo_store):
    state = review.home_state()
    count = lambda table: demo_store.query_one(f"select count(*) as n from {table}")["n"]  # noqa: E731
    assert (state.models, state.outcomes, state.validations) == (count("models"), count("outcomes"), count("validations"))
    assert not state.empty and state.router_version and state.next_step() == ""


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
        first = snapshot(store)
        assert not first.from_cache
        again = snapshot(store)
        assert again.from_cache
        np.testing.assert_array_equal(again.predicted, first.predicted)
        np.testing.assert_array_equal(again.expected_latency, first.expected_latency)
        # A new calibration outcome changes expected cost/latency: the cache must not be used.
        model = store.get_model(SPECIALIST)
        example = store.set_examples(store.get_set("builtin-v1")["id"])[0]
        run_id = store.create_run(model["id"], example["set_id"], "calibration")
        store.record_outcome(run_id, example["id"], {"score": 1.0, "correct": 1, "latency_ms": 5000.0,
                                                      "input_tokens": 10, "output_tokens": 10, "cost_usd": 0.0})  # fmt: skip
        after = snapshot(store)
        assert not after.from_cache
        j = after.index(SPECIALIST)
        assert after.expected_latency[j] >= first.expected_latency[j]
        assert len(list((tui_home_copy / CACHE_DIR).glob("routing-*.npz"))) == 1
    finally:
        store.close()


def test_the_demo_leaves_the_routing_view_cached(tui_demo_home):
    """`lrcal demo` ends by caching the routing view, so the first `lrcal tui` skips torch."""
    import json

    steps = json.loads((tui_demo_home.parent / "demo-steps.json").read_text())
    assert steps[-1]["step"].startswith("Caching the routing view") and steps[-1]["ok"], steps[-1]
    assert len(list((tui_demo_home / CACHE_DIR).glob("routing-*.npz"))) == 1
    store = Store.open(tui_demo_home)
    try:
        assert snapshot(store).from_cache
    finally:
        store.close()


def test_a_warm_review_routes_without_torch(tui_demo_home):
    """On the cache the demo left, snapshot + route + diff never import torch (it costs a TUI
    launch about 1.4 s): the routing policy imports numpy only."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from lrcal.services.review import ReviewService\n"
        f"service = ReviewService({str(tui_demo_home)!r})\n"
        "with service.connect() as review:\n"
        "    snap = review.snapshot()\n"
        "assert snap.from_cache\n"
        "service.diff(snap, snap.models, snap.default_included, 0.5, 0.5)\n"
        "print(service.route(snap, 1.0, 1.0).totals[snap.models[0]].n, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False", done.stdout


def test_prepare_routing_cache_warms_the_next_snapshot(tui_home_copy):
    import torch

    threads = torch.get_num_threads()
    store = Store.open(tui_home_copy)  # a copy holds the database only: no cache yet
    try:
        torch.set_num_threads(2)
        assert prepare_routing_cache(store) is True
        assert torch.get_num_threads() == 2  # the forward pass runs on one thread, then restores
        assert prepare_routing_cache(store) is False
        assert snapshot(store).from_cache
    finally:
        store.close()
        torch.set_num_threads(threads)


def test_snapshot_of_a_named_set_and_a_corrupt_cache(tui_home_copy):
    store = Store.open(tui_home_copy)
    try:
        cal = snapshot(store, "builtin-v1")
        assert cal.set_name == "builtin-v1" and cal.source == "calibration"
        assert len(cal.examples) == 128
        # Only the candidates were calibrated on builtin-v1: incumbents have no outcome there.
        assert np.isnan(cal.measured[:, cal.index(DEMO_INCUMBENTS[0])]).all()
        assert np.isfinite(cal.measured[:, cal.index(SPECIALIST)]).all()
        for path in (tui_home_copy / CACHE_DIR).glob("routing-*.npz"):
            path.write_bytes(b"not an npz")
        again = snapshot(store, "builtin-v1")
        assert not again.from_cache
        np.testing.assert_allclose(again.predicted, cal.predicted)
    finally:
        store.close()


# ---- routing ------------------------------------------------------------------------------------


def test_route_reproduces_the_validation_router_policy(demo_store, snap):
    """The TUI re-routes with the validation's own policy: same shares, same live quality."""
    validation = latest_validations(demo_store)[demo_store.get_model(SPECIALIST)["id"]]
    results = validation["results"]
    pool = [SPECIALIST, *results["incumbents"]]
    for policy, included in (("router_with", pool), ("router_without", results["incumbents"])):
        table = route(snap, 0.0, 0.0, included, pool=pool)
        stored = results["policies"][policy]
        for model, share in stored["share"].items():
            assert table.totals[model].share == pytest.approx(share), (policy, model)
        assert table.quality_measured == pytest.approx(stored["quality"])
    # And along the λ_cost frontier the validation swept.
    for point in results["frontier"]["cost"]["router_with"][::3]:
        table = route(snap, point["lambda"], 0.0, pool, pool=pool)
        assert table.quality_measured == pytest.approx(point["quality"]), point["lambda"]


def test_route_cells_shares_and_winners(snap):
    table = route(snap)
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
    free = route(snap, 0.0, 0.0)
    included = sorted(free.included, key=snap.index)
    cost = {m: snap.expected_cost[snap.index(m)] for m in included}
    latency = {m: snap.expected_latency[snap.index(m)] for m in included}
    previous = free
    for lam in (0.05, 0.2, 1.0, 5.0):  # per query the chosen cost can only fall as λ grows
        table = route(snap, lam, 0.0)
        assert table.expected_cost_mean <= previous.expected_cost_mean + 1e-12
        assert table.totals[min(included, key=cost.get)].share >= previous.totals[min(included, key=cost.get)].share
        assert table.quality_predicted <= free.quality_predicted + 1e-12
        previous = table
    assert route(snap, 1e6, 0.0).totals[min(included, key=cost.get)].share == 1.0
    fastest, second = sorted(included, key=latency.get)[:2]
    if latency[second] - latency[fastest] > 1e-3 * (max(latency.values()) - latency[fastest]):
        assert route(snap, 0.0, 1e6).totals[fastest].share == 1.0
    slow = route(snap, 0.0, 1.0)
    chosen = slow.choice[slow.choice >= 0]
    free_chosen = free.choice[free.choice >= 0]
    assert snap.expected_latency[chosen].mean() <= snap.expected_latency[free_chosen].mean() + 1e-9


def test_diff_shows_which_incumbents_lose_which_traffic(snap):
    pool = set(DEMO_INCUMBENTS)
    # The candidate the router sends traffic to (the specialist in the demo's story).
    candidate = max(CANDIDATES, key=lambda c: route(snap, 0, 0, pool | {c}).totals[c].n)
    d = diff(snap, pool | {candidate}, pool)
    assert d.added == [candidate] and d.removed == []
    assert d.moved == d.after.totals[candidate].n > 0
    assert all(move.to_model == candidate and move.from_model in pool for move in d.moves)
    assert sum(d.lost.values()) == sum(d.gained.values()) == d.moved
    assert d.gained == {candidate: d.moved}
    for move in d.moves:
        assert move.share_of_group == pytest.approx(move.n / d.before.group_sizes[move.task])
        assert d.before.cell(move.task, move.from_model).n >= move.n
    # Removing a model moves its traffic back; a model nobody routes to changes nothing.
    back = diff(snap, pool, pool | {candidate})
    assert back.moved == d.moved and back.lost == {candidate: d.moved}
    idle = route(snap, 0, 0, pool | set(CANDIDATES))
    for other in CANDIDATES:
        if idle.totals[other].n == 0:
            assert diff(snap, pool | set(CANDIDATES), pool | set(CANDIDATES) - {other}).moved == 0


def test_route_with_an_empty_pool(snap):
    table = route(snap, 0, 0, included=[])
    assert (table.choice == -1).all()
    assert table.quality_predicted is None and all(c.n == 0 for c in table.totals.values())


# ---- detail, examples, images -------------------------------------------------------------------------


def test_model_detail_of_an_onboarded_candidate(demo_store, review):
    detail = review.model_detail(SPECIALIST)
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


def test_model_detail_of_a_trained_incumbent_has_no_interval(review):
    detail = review.model_detail(DEMO_INCUMBENTS[0])
    assert detail.row.token == TOKEN_TRAINED
    assert all(t.predicted is None and t.inside is None and t.n > 0 for t in detail.tasks)
    assert detail.validation is None


def test_examples_for_a_cell(demo_store, review, snap):
    table = route(snap)
    task, model = next((t, table.winners[t]) for t in table.tasks)
    views = review.examples_for(snap, task, model, routed=table)
    assert len(views) == table.cell(task, model).n > 0
    for view in views:
        example = demo_store.example(view.pk)
        assert view.task == task and view.reference == example["answer"] and view.question == example["question"]
        assert [a.model for a in view.answers if a.chosen] == [model]
        assert {a.model for a in view.answers} == set(snap.models)
        assert [a.predicted for a in view.answers] == sorted((a.predicted for a in view.answers), reverse=True)
        assert all(a.answer is not None and a.score is not None and a.latency_ms for a in view.answers)
    everything = review.examples_for(snap, task, None, routed=table)
    assert len(everything) == table.group_sizes[task]
    assert all(review.image_bytes(v.image_sha256) == demo_store.image_bytes(v.image_sha256) for v in views)


# ---- charts ---------------------------------------------------------------------------------------


def test_chart_data(review, snap):
    label, points = review.quality_latency_points(snap)
    assert "builtin-v1-holdout" in label
    assert [p.model for p in points] == snap.models
    for p in points:
        j = snap.index(p.model)
        assert p.quality == pytest.approx(float(np.mean(snap.measured[:, j])))
        assert p.latency_ms > 0
    frontiers = review.validation_frontiers()
    assert list(frontiers) == [DOMINATED, SPECIALIST]  # most recent first
    assert frontiers[DOMINATED]["decision"] == "rejected" and frontiers[DOMINATED]["set"] == "builtin-v1-holdout"
    assert len(frontiers[SPECIALIST]["latency"]["router_with"]) > 3
    _, calibration_points = review.quality_latency_points(None)
    assert {p.model for p in calibration_points} == set(snap.models)


@pytest.mark.parametrize("damage", ["profile", "linear", "json", "nan_profile", "inf_residual"])
def test_a_damaged_stored_token_is_refused_with_its_model_named(tui_home_copy, damage):
    """A stored capability token that does not fit the router failed as a numpy error inside
    a prediction (or not at all); loading the routing now names the model and the fix. A
    non-finite profile or residual made every score of that model NaN: routed silently wrong."""
    import json

    from lrcal.errors import LrcalError
    from lrcal.services.router_context import load_routing
    from lrcal.store import Store

    store = Store.open(tui_home_copy)
    try:
        row = store.query_one("select t.id, t.token from model_tokens t join models m on m.id = t.model_id "
                              "where m.name = ? and t.stale = 0 order by t.id desc", [SPECIALIST])  # fmt: skip
        router = load_routing(store).router  # the undamaged home loads
        token = json.loads(row["token"])
        if damage == "profile":
            token["profile"] = token["profile"][:-1]
        elif damage == "linear":
            token["linear"] = [0.0, 1.0]
        elif damage == "nan_profile":
            token["profile"][0] = float("nan")
        elif damage == "inf_residual":
            token["residuals"] = [[float("inf")] * router.hidden for _ in router.members]
        text = "{not json" if damage == "json" else json.dumps(token)
        with store.write():
            store.db.execute("update model_tokens set token = ? where id = ?", [text, row["id"]])
        with pytest.raises(LrcalError, match=SPECIALIST):
            load_routing(store)
    finally:
        store.close()


def test_with_no_model_enabled_the_view_says_its_routing_is_hypothetical(tui_home_copy):
    """A review: with every model disabled (an incident), `lrcal route` refused, while the
    routing view showed shares over disabled and rejected models as if traffic flowed."""
    store = Store.open(tui_home_copy)
    try:
        assert snapshot(store).pool_note is None
        for model in store.list_models(["enabled"]):
            store.set_status(model["name"], "disabled", reason="incident")
        note = snapshot(store).pool_note
        assert note is not None and "no model is enabled" in note and "not live traffic" in note
    finally:
        store.close()


def test_a_failed_request_is_no_measured_answer_in_the_routing_view(tui_home_copy):
    """`_measured` turned an endpoint error (score None) into 0.0: the cells and charts counted
    failed requests as wrong answers, which the Models tab and training leave out."""
    store = Store.open(tui_home_copy)
    try:
        first = snapshot(store)
        i, name = 0, SPECIALIST
        example = first.examples[i]
        run_id = store.create_run(store.get_model(name)["id"], example["set_id"], "validation")
        store.record_outcome(run_id, example["id"], {"score": None, "correct": None, "error_kind": "timeout",
                                                      "latency_ms": 30000.0})  # fmt: skip
        after = snapshot(store)
        assert np.isnan(after.measured[i, after.index(name)])
        assert np.isnan(after.latency[i, after.index(name)])
    finally:
        store.close()


def test_the_detail_of_a_model_removed_meanwhile_says_so(tui_home_copy):
    from lrcal.errors import LrcalError

    store = Store.open(tui_home_copy)
    try:
        store.set_status(DOMINATED, "removed", force=True, reason="gone")
    finally:
        store.close()
    with ReviewService(tui_home_copy).connect() as review:
        with pytest.raises(LrcalError, match=f"model '{DOMINATED}' was removed"):
            review.model_detail(DOMINATED)


def test_a_what_if_pool_without_any_measured_model_keeps_the_estimates_order(snap):
    """The routing view scores every model with a token once; a what-if pool that leaves out
    every model measured on a query's task must route as the gateway would with exactly that
    pool enabled (estimates kept, `scale_unmeasured`), not on scores scaled to tie-breakers
    because a model outside the pool was measured (the cheapest model then won at any λ_cost)."""
    import dataclasses

    from lrcal.router.policy import Policy, policy_choice, scale_unmeasured

    n, m = snap.predicted.shape
    assert m >= 3
    unscaled = np.full((n, m), 0.3)
    unscaled[:, 0], unscaled[:, 1], unscaled[:, 2] = 0.5, 0.9, 0.6
    share = np.zeros((n, m))
    share[:, 0] = 1.0  # only the first model was run on these tasks
    cost = np.linspace(2e-3, 1e-3, m)
    cost[2] = 1e-4  # the third model is the cheapest
    what_if = dataclasses.replace(snap, unscaled=unscaled, measured_share=share, expected_cost=cost)
    pool = [name for name in snap.models if name != snap.models[0]]
    table = route(what_if, lambda_cost=0.01, included=pool)
    # the gateway with this pool enabled scores only these models: nobody measured, order kept
    columns = [snap.index(name) for name in pool]
    alone = policy_choice(scale_unmeasured(unscaled[:, columns], share[:, columns]), np.ones(len(columns), dtype=bool),
                          Policy(lambda_cost=0.01), expected_cost=cost[columns])
    assert [pool[j] for j in alone.choice] == [snap.models[1]] * n
    assert [snap.models[j] for j in table.choice] == [snap.models[1]] * n
    assert table.quality_predicted == pytest.approx(0.9)
    # with the measured model in the pool the others stay tie-breakers: it takes every query
    assert [snap.models[j] for j in route(what_if, lambda_cost=0.01, included=snap.models).choice] == [snap.models[0]] * n


def test_a_text_only_model_never_wins_a_query_with_an_image(tui_home_copy):
    """The TUI routed image queries to a text-only model (a task group's winner that the gateway
    and `lrcal route` would never send one of them)."""
    from typer.testing import CliRunner

    from lrcal.cli import app

    with ReviewService(tui_home_copy).connect() as session:
        before = session.snapshot()
        table = route(before)
        with_image = np.array([bool(ex.get("image_sha256")) for ex in before.examples])
        assert with_image.any()
        counts = np.bincount(table.choice[with_image & (table.choice >= 0)], minlength=len(before.models))
        busiest = before.models[int(counts.argmax())]  # the model that takes most image queries
    set_text_only = CliRunner().invoke(app, ["--home", str(tui_home_copy), "models", "set", busiest, "--no-images"])
    assert set_text_only.exit_code == 0, set_text_only.output
    with ReviewService(tui_home_copy).connect() as session:
        snap = session.snapshot()
        j = snap.models.index(busiest)
        assert snap.capable is not None and not snap.capable[with_image, j].any()
        assert not (route(snap).choice[with_image] == j).any()
        assert (route(snap).choice[~with_image] >= 0).all()
