"""`lrcal tui` driven by Textual's Pilot on homes filled by the simulated flow."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest
from rich.text import Text

from lrcal.services.review import ReviewService
from lrcal.store import ModelEndpoint, Store
from tests.fixtures.tui import CANDIDATES, DEMO_INCUMBENTS, VALIDATION_LIMIT

SPECIALIST, DOMINATED = CANDIDATES


async def wait_for(pilot, predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
    await pilot.pause()


async def started(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.loaded, what="the first load")


def shown(widget) -> str:
    """The plain text a Static shows (rich renderables rendered at the widget's width)."""
    from rich.console import Console

    console = Console(width=max(widget.size.width, 40), color_system=None, record=True, file=__import__("io").StringIO())
    console.print(widget.content)
    return console.export_text()


def plain(cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def table_rows(table) -> list[list[str]]:
    return [[plain(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def status_in_db(home, name: str) -> str:
    with sqlite3.connect(home / "lrcal.db") as conn:
        return conn.execute("select status from models where name = ?", [name]).fetchone()[0]


@pytest.fixture(scope="module", autouse=True)
def demo_story(tui_demo_home):
    """These tests walk through the demo's story: the specialist validated and enabled, the
    dominated model rejected (issue 5's acceptance). Say so plainly if the flow changed."""
    with sqlite3.connect(tui_demo_home / "lrcal.db") as conn:
        statuses = dict(conn.execute("select name, status from models"))
        reasons = conn.execute(
            "select m.name, v.decision, v.reasons from validations v join models m on m.id = v.model_id order by v.id"
        ).fetchall()
    assert statuses.get(SPECIALIST) == "enabled" and statuses.get(DOMINATED) == "rejected", (
        f"the demo flow no longer ends with {SPECIALIST} enabled and {DOMINATED} rejected: {statuses}; "
        f"the gate said: {reasons}"
    )


def app_for(home, **kwargs):
    from lrcal.tui.app import LrcalApp

    return LrcalApp(ReviewService(home), **kwargs)


@contextlib.asynccontextmanager
async def running(home, size=(100, 30), notifications=False, **app_options):
    """The app on ``home`` under Textual's Pilot, after its first load: yields (app, pilot)."""
    app = app_for(home, **app_options)
    async with app.run_test(size=size, notifications=notifications) as pilot:
        await started(pilot)
        yield app, pilot


def expected_routing(home, lambda_cost=0.0, lambda_latency=0.0, included=None):
    with ReviewService(home).connect() as review:
        snap = review.snapshot()
    return snap, ReviewService.route(snap, lambda_cost, lambda_latency, included)


# ---- per-task routing ------------------------------------------------------------------------------


async def test_routing_table_shows_shares_quality_latency_and_winners(tui_demo_home):
    from lrcal.tui.routing_view import RoutingPane, TOTAL_ROW

    snap, expected = expected_routing(tui_demo_home)
    async with running(tui_demo_home) as (app, pilot):
        table = app.query_one("#routing-table")
        assert app.focused is table
        rows = table_rows(table)
        assert [r[0].split(" (")[0] for r in rows] == [*expected.tasks, "all"]
        assert len(rows[0]) == 1 + len(snap.models)
        pane = app.query_one(RoutingPane)
        assert pane.column_models[0] == pane.candidate and table.fixed_columns == 2  # task + candidate pinned
        winner_color = app.current_theme.success
        for i, task in enumerate(expected.tasks):
            for j, model in enumerate(pane.column_models, start=1):
                cell = expected.cell(task, model)
                text = table.get_row_at(i)[j]
                if model not in expected.included:
                    assert text.plain == "off"
                elif cell.n:
                    assert text.plain.startswith(f"{cell.share * 100:3.0f}%")
                    winner = expected.winners[task] == model
                    assert (winner_color.lower() in str(text.style).lower()) == winner, (task, model)
                else:
                    assert text.plain.strip() == "·"
        assert rows[-1][0].startswith(f"all ({VALIDATION_LIMIT})")
        assert table.get_row(TOTAL_ROW)  # the totals row is addressable
        pane = app.query_one(RoutingPane)
        assert pane.routed.included == expected.included


async def test_lambda_keys_and_inputs_reroute_instantly(tui_demo_home):
    from lrcal.tui.routing_view import RoutingPane, lambda_ladder

    snap, before = expected_routing(tui_demo_home)
    async with running(tui_demo_home) as (app, pilot):
        pane = app.query_one(RoutingPane)
        table = app.query_one("#routing-table")
        rows_before = table_rows(table)
        for _ in range(len(lambda_ladder())):
            await pilot.press("right_square_bracket")
        await pilot.pause()
        assert pane.lambda_cost == max(lambda_ladder())
        assert app.query_one("#lambda-cost").value == "10"
        _, thrifty = expected_routing(tui_demo_home, lambda_cost=10.0)
        assert pane.routed.totals == thrifty.totals
        rows_after = table_rows(table)
        assert rows_after != rows_before
        cheapest = min(thrifty.included, key=lambda m: snap.expected_cost[snap.index(m)])
        share = thrifty.totals[cheapest].share
        assert share > before.totals[cheapest].share  # λ_cost sends more traffic to the cheapest model
        assert rows_after[-1][1 + pane.column_models.index(cheapest)].startswith(f"{share * 100:3.0f}%")
        assert "$" in shown(app.query_one("#routing-summary"))
        await pilot.press("left_square_bracket")
        await pilot.pause()
        assert pane.lambda_cost == sorted(lambda_ladder())[-2]

        # Typed λ_latency: focus the input, replace its text, submit (focus returns to the table).
        await pilot.click("#lambda-latency")
        await pilot.press("backspace", "0", "full_stop", "5", "enter")
        await pilot.pause()
        assert pane.lambda_latency == 0.5
        assert app.focused is table
        _, both = expected_routing(tui_demo_home, lambda_cost=pane.lambda_cost, lambda_latency=0.5)
        assert pane.routed.totals == both.totals

        await pilot.click("#lambda-cost")
        await pilot.press("end", *["backspace"] * 4, "enter")  # empty: not a number
        await pilot.pause()
        assert app.query_one("#lambda-cost").has_class("-invalid")
        assert pane.lambda_cost == sorted(lambda_ladder())[-2]  # unchanged
        table.focus()
        await pilot.press("0")
        await pilot.pause()
        assert pane.lambda_cost == 0.0 and pane.lambda_latency == 0.0
        assert table_rows(table) == rows_before


async def test_toggling_the_candidate_shows_the_diff(tui_demo_home):
    from lrcal.tui.routing_view import RoutingPane

    snap, with_specialist = expected_routing(tui_demo_home)
    async with running(tui_demo_home) as (app, pilot):
        pane = app.query_one(RoutingPane)
        table = app.query_one("#routing-table")
        assert pane.candidate == SPECIALIST and pane.with_candidate
        diff_text = shown(app.query_one("#routing-diff"))
        moved = with_specialist.totals[SPECIALIST].n
        assert f"moves {moved} of {VALIDATION_LIMIT} queries" in diff_text
        expected = ReviewService.diff(snap, snap.default_included, snap.default_included - {SPECIALIST})
        for move in expected.moves:
            assert move.task in diff_text and move.from_model in diff_text
        column = 1 + pane.column_models.index(SPECIALIST)

        await pilot.press("t")
        await pilot.pause()
        assert not pane.with_candidate and SPECIALIST not in pane.routed.included
        assert all(row[column] == "off" for row in table_rows(table))
        assert pane.routed.totals == expected.before.totals
        assert "excluded now" in shown(app.query_one("#routing-diff"))

        await pilot.press("t")
        await pilot.pause()
        assert pane.routed.totals == expected.after.totals

        # The next candidate: the dominated (rejected) model, outside the pool. How much traffic
        # the router would give it depends on router training, so the expectation comes from
        # the headless diff; the view must show exactly that, either way.
        await pilot.press("n")
        await pilot.pause()
        assert pane.candidate == DOMINATED and not pane.with_candidate
        pool = snap.default_included
        dominated = ReviewService.diff(snap, pool | {DOMINATED}, pool)
        diff_text = shown(app.query_one("#routing-diff"))
        if dominated.moved:
            assert f"moves {dominated.moved} of {VALIDATION_LIMIT} queries" in diff_text
            for move in dominated.moves:
                assert move.task in diff_text and move.from_model in diff_text
        else:
            assert "changes no routing decision" in diff_text
        assert pane.routed.totals == dominated.before.totals
        await pilot.press("t")
        await pilot.pause()
        assert DOMINATED in pane.routed.included
        assert pane.routed.totals == dominated.after.totals


async def test_drill_into_the_examples_of_a_cell(tui_demo_home):
    from lrcal.tui.examples_view import ExamplesScreen

    snap, routed = expected_routing(tui_demo_home)
    task = next(t for t in routed.tasks if routed.winners[t] == SPECIALIST)
    async with running(tui_demo_home) as (app, pilot):
        table = app.query_one("#routing-table")
        assert table.cursor_coordinate == (0, 1)  # starts on the first model's cell
        columns = app.query_one("#routing-pane").column_models
        await pilot.press(*["down"] * routed.tasks.index(task), *["right"] * columns.index(SPECIALIST), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExamplesScreen), what="the examples screen")
        screen = app.screen
        listing = screen.query_one("#examples-list")
        await wait_for(pilot, lambda: listing.row_count > 0, what="examples")
        assert listing.row_count == routed.cell(task, SPECIALIST).n
        answers = screen.query_one("#example-answers")
        assert answers.row_count == len(snap.models)
        chosen = [plain(answers.get_row_at(i)[1]) for i in range(answers.row_count) if plain(answers.get_row_at(i)[0])]
        assert chosen == [SPECIALIST]
        image = screen.query_one("#example-image").render()
        assert "▀" in str(image)
        first_text = shown(screen.query_one("#example-text"))
        assert "Reference:" in first_text and screen.views[0].reference in first_text
        await pilot.press("down")
        await pilot.pause()
        assert screen.views[1].question[:20] in shown(screen.query_one("#example-text"))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ExamplesScreen)

        # The task label column opens every query of the group.
        await pilot.press("home", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExamplesScreen), what="the examples screen")
        await wait_for(pilot, lambda: app.screen.query_one("#examples-list").row_count > 0, what="examples")
        assert app.screen.query_one("#examples-list").row_count == routed.group_sizes[task]


async def test_model_detail_from_the_routing_view(tui_demo_home):
    from lrcal.tui.detail_view import ModelDetailScreen

    snap, _ = expected_routing(tui_demo_home)
    async with running(tui_demo_home) as (app, pilot):
        columns = app.query_one("#routing-pane").column_models
        await pilot.press(*["right"] * columns.index(SPECIALIST), "d")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelDetailScreen), what="the detail screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.detail is not None, what="the model detail")
        assert screen.model_name == SPECIALIST
        tasks = screen.query_one("#detail-tasks")
        assert tasks.row_count == 6
        assert all("[" in plain(tasks.get_row_at(i)[3]) for i in range(6))  # predicted intervals
        validation = shown(screen.query_one("#detail-validation"))
        assert "validated" in validation and "ENABLE" in validation
        assert screen.query_one("#detail-events").row_count >= 5
        assert "Latency" in shown(screen.query_one("#detail-latency"))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ModelDetailScreen)


async def test_six_quick_lambda_presses_move_six_steps_and_reroutes_coalesce(tui_demo_home):
    """Each press steps from the λ the previous one set (not from a value the table has not caught
    up with), and presses queued together re-route the table once."""
    from lrcal.tui.routing_view import RoutingPane, lambda_ladder

    ladder = sorted(lambda_ladder())
    async with running(tui_demo_home) as (app, pilot):
        pane = app.query_one(RoutingPane)
        await pilot.press(*["right_square_bracket"] * 6)
        await pilot.pause()
        assert pane.lambda_cost == ladder[6]
        assert app.query_one("#lambda-cost").value == f"{ladder[6]:g}"
        await wait_for(pilot, lambda: pane.routed.lambda_cost == ladder[6], what="the re-route")
        _, expected = expected_routing(tui_demo_home, lambda_cost=ladder[6])
        assert pane.routed.totals == expected.totals

        # Six presses handled in one go (a fast typist, a busy machine): six steps, one re-route.
        before = pane.reroutes
        for _ in range(6):
            pane.action_lambda_cost(-1)
        assert pane.lambda_cost == 0.0
        await wait_for(pilot, lambda: pane.routed.lambda_cost == 0.0, what="the re-route")
        await pilot.pause()
        assert pane.reroutes == before + 1


async def test_question_mark_lists_every_key(tui_demo_home):
    from lrcal.tui.help_view import HelpScreen

    async with running(tui_demo_home, size=(80, 24)) as (app, pilot):
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="the keys screen")
        text = shown(app.screen.query_one("#help-keys"))
        for _title, bindings in app.help_sections():
            for binding in bindings:
                if binding.description:
                    assert binding.description in text, binding
        for words in ("λcost+", "λlat−", "in/out", "filter", "image viewer", "frontier: cost/latency"):
            assert words in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


async def test_footer_labels_are_separate_words(tui_demo_home):
    async with running(tui_demo_home, size=(120, 36)) as (app, pilot):
        labels = [key.description for key in app.screen.query("FooterKey")]
        assert {"λcost−", "λcost+", "λlat−", "λlat+", "in/out", "keys", "quit"} <= set(labels)


async def test_example_filters_failures_disagreement_and_task_group(tui_demo_home, monkeypatch):
    from lrcal.services.review import DISAGREE, FAILURES
    from lrcal.tui import examples_view
    from lrcal.tui.examples_view import ExamplesScreen
    from lrcal.tui.routing_view import RoutingPane

    opened: list[str] = []
    monkeypatch.setattr(examples_view, "open_in_viewer", lambda path: opened.append(path))
    snap, routed = expected_routing(tui_demo_home)
    async with running(tui_demo_home) as (app, pilot):
        pane = app.query_one(RoutingPane)
        # The all row of the task column: every query of every group.
        await pilot.press(*["down"] * len(routed.tasks), "home", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExamplesScreen), what="the examples screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.loaded, what="examples")
        assert screen.task_group is None and len(screen.views) == len(snap.examples)

        await pilot.press("f")
        await wait_for(pilot, lambda: screen.loaded and screen.only == FAILURES, what="the failures")
        for view in screen.views:
            chosen = next(a for a in view.answers if a.chosen)
            assert chosen.error_kind or chosen.correct is False
        failures = {v.pk for v in screen.views}
        chosen_wrong = {ex["id"] for i, ex in enumerate(snap.examples)
                        if snap.measured[i, pane.routed.choice[i]] < 1.0}  # fmt: skip
        assert failures == chosen_wrong  # the demo's scores are 0 or 1

        await pilot.press("f")
        await wait_for(pilot, lambda: screen.loaded and screen.only == DISAGREE, what="the disagreements")
        assert screen.views
        for view in screen.views:
            assert len({a.correct for a in view.answers if a.correct is not None}) == 2

        await pilot.press("g")  # one task group
        await wait_for(pilot, lambda: screen.loaded and screen.task_group == routed.tasks[0], what="one group")
        assert all(v.task == routed.tasks[0] for v in screen.views)
        if screen.views:
            await pilot.press("v")
            await pilot.pause()
            assert opened and opened[-1].endswith(".png")


async def test_incumbents_show_their_live_numbers(tui_demo_home):
    from lrcal.tui.detail_view import ModelDetailScreen

    async with running(tui_demo_home, size=(120, 36)) as (app, pilot):
        await pilot.press("2", "enter")  # the first model: an incumbent, never a candidate
        await wait_for(pilot, lambda: isinstance(app.screen, ModelDetailScreen), what="the detail screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.detail is not None, what="the model detail")
        assert screen.model_name == DEMO_INCUMBENTS[0] and screen.detail.validation is None
        assert sum(t.live_n for t in screen.detail.tasks) == VALIDATION_LIMIT
        tasks = screen.query_one("#detail-tasks")
        assert all(plain(tasks.get_row_at(i)[5]) != "–" for i in range(tasks.row_count))


# ---- models: enable / disable ------------------------------------------------------------------------


async def test_disable_and_enable_are_confirmed_and_persisted(tui_home_copy):
    from lrcal.tui.models_view import ModelsPane
    from lrcal.tui.routing_view import RoutingPane
    from lrcal.tui.widgets import ConfirmScreen, ReasonScreen

    home = tui_home_copy
    async with running(home) as (app, pilot):
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one("#models-table")
        assert app.focused is table
        assert [r[0] for r in table_rows(table)] == [*DEMO_INCUMBENTS, *CANDIDATES]
        row = [*DEMO_INCUMBENTS, *CANDIDATES].index(SPECIALIST)
        await pilot.press(*["down"] * row)
        assert app.query_one(ModelsPane).current_name() == SPECIALIST

        await pilot.press("x")  # disable → confirmation; "n" cancels
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("n")
        await pilot.pause()
        assert status_in_db(home, SPECIALIST) == "enabled"

        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: status_in_db(home, SPECIALIST) == "disabled", what="the status change")
        await wait_for(pilot, lambda: plain(table.get_row_at(row)[1]) == "disabled", what="the table refresh")
        store = Store.open(home)
        try:
            event = store.events(SPECIALIST, limit=1)[0]
        finally:
            store.close()
        assert event["kind"] == "disabled" and event["message"] == "disabled in lrcal tui"
        pane = app.query_one(RoutingPane)
        await wait_for(pilot, lambda: app.snapshot is not None and SPECIALIST not in app.snapshot.default_included,
                       what="the routing refresh")  # fmt: skip
        assert SPECIALIST not in pane.routed.included

        await pilot.press("e")  # disabled → enabled is an allowed transition
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.click("#confirm-yes")  # the mouse works too
        await wait_for(pilot, lambda: status_in_db(home, SPECIALIST) == "enabled", what="re-enabling")

        # A rejected model can only be enabled by force, which says so, asks why and records it.
        await pilot.press("down")
        assert app.query_one(ModelsPane).current_name() == DOMINATED
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ReasonScreen), what="the reason dialog")
        assert "has not passed live validation" in app.screen.message
        await pilot.press("enter")  # an empty reason is refused: the dialog stays
        await pilot.pause()
        assert isinstance(app.screen, ReasonScreen) and status_in_db(home, DOMINATED) == "rejected"
        await pilot.press(*[("space" if c == " " else c) for c in "canary for invoices"], "enter")
        await wait_for(pilot, lambda: status_in_db(home, DOMINATED) == "enabled", what="the forced enable")
        store = Store.open(home)
        try:
            event = store.events(DOMINATED, limit=1)[0]
        finally:
            store.close()
        assert event["message"] == "FORCED rejected → enabled: canary for invoices"
        assert event["data"]["forced"] is True

        await pilot.press("x")  # and the detail screen offers the same keys
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        await pilot.press("escape")
        await pilot.pause()
        assert status_in_db(home, DOMINATED) == "enabled"


async def test_enable_refusals_are_notifications_not_crashes(tui_home_copy):
    from lrcal.tui.models_view import ModelsPane
    from lrcal.tui.widgets import ConfirmScreen

    async with running(tui_home_copy, notifications=True) as (app, pilot):
        await pilot.press("2", "e")  # first row: an enabled incumbent
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("already enabled" in n.message for n in app._notifications)
        await pilot.press("down", "down", "down", "down", "x")  # the rejected model is not enabled
        await pilot.pause()
        assert app.query_one(ModelsPane).current_name() == DOMINATED
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("not enabled" in n.message for n in app._notifications)


# ---- empty home, small terminal, mouse --------------------------------------------------------------


async def test_empty_home_shows_what_to_run_first(home):
    async with running(home, size=(80, 24)) as (app, pilot):
        empty = app.query_one("#empty-state")
        assert empty.display and not app.query_one("#tabs").display
        text = str(empty.render())
        assert "lrcal demo" in text and "lrcal add-model" in text and str(home) in text
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_a_damaged_database_is_a_message_not_a_traceback(home):
    (home / "lrcal.db").write_bytes(b"this is not a database" * 100)
    async with running(home, size=(80, 24)) as (app, pilot):
        message = shown(app.query_one("#routing-message"))
        assert "cannot open database" in message
        await pilot.press("q")
    assert app.return_code == 0
    assert (home / "lrcal.db").read_bytes().startswith(b"this is not a database")  # nothing overwritten


async def test_home_without_a_router_explains_it(home):
    store = Store.open(home)
    store.add_model("only-model", ModelEndpoint("http://127.0.0.1:9/v1"))
    store.close()
    async with running(home, size=(80, 24)) as (app, pilot):
        message = shown(app.query_one("#routing-message"))
        assert "lrcal router train" in message or "lrcal calibrate" in message
        await pilot.press("2")
        await pilot.pause()
        assert table_rows(app.query_one("#models-table"))[0][0] == "only-model"


async def test_every_view_works_at_80x24_with_mouse_and_keys(tui_demo_home):
    from lrcal.tui.charts_view import ChartsPane
    from lrcal.tui.detail_view import ModelDetailScreen
    from lrcal.tui.examples_view import ExamplesScreen

    async with running(tui_demo_home, size=(80, 24)) as (app, pilot):
        table = app.query_one("#routing-table")
        assert table.size.height >= 5 and table.size.width > 0
        await pilot.click("#--content-tab-charts")  # mouse on the tab
        await pilot.pause()
        assert app.query_one("#tabs").active == "charts"
        charts = app.query_one(ChartsPane)
        assert charts.frontier is not None and charts.frontier["model"] == SPECIALIST  # follows the candidate
        assert charts.query_one("#scatter").size.height >= 10
        await pilot.press("a")
        assert charts.axis == "cost"
        await pilot.press("2", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelDetailScreen), what="the detail screen")
        await wait_for(pilot, lambda: app.screen.detail is not None, what="the detail")
        await pilot.press("escape", "1", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExamplesScreen), what="the examples screen")
        await pilot.press("escape", "q")
        await pilot.pause()
    assert app.return_code == 0


async def test_theme_change_recolours_and_q_quits_from_an_input(tui_demo_home):
    from lrcal.tui.routing_view import RoutingPane

    async with running(tui_demo_home) as (app, pilot):
        pane = app.query_one(RoutingPane)
        task = pane.routed.tasks[0]
        winner = pane.routed.winners[task]
        table = app.query_one("#routing-table")
        cell = table.get_row_at(0)[1 + pane.column_models.index(winner)]
        assert app.current_theme.success.lower() in str(cell.style).lower()
        app.theme = "gruvbox"
        await pilot.pause()
        cell = table.get_row_at(0)[1 + pane.column_models.index(winner)]
        assert app.current_theme.success.lower() in str(cell.style).lower()
        await pilot.click("#lambda-cost")
        assert app.focused.id == "lambda-cost"
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_initial_lambdas_and_set_from_the_command_line(tui_demo_home):
    from lrcal.tui.routing_view import RoutingPane

    async with running(tui_demo_home, set_ref="builtin-v1", lambda_cost=0.5) as (app, pilot):
        pane = app.query_one(RoutingPane)
        assert pane.snap.set_name == "builtin-v1" and pane.lambda_cost == 0.5
        assert app.query_one("#lambda-cost").value == "0.5"
        assert "calibration" in shown(app.query_one("#routing-info"))


async def test_loading_does_not_block_the_ui(tui_demo_home, monkeypatch):
    """The snapshot (router forward pass on a cold cache) is built in a worker: while it runs, the
    app shows a loading message and answers keys. A gate holds the real snapshot until released."""
    import threading

    from lrcal.services.review import ReviewSession
    from lrcal.tui.charts_view import ChartsPane

    gate = threading.Event()
    real_snapshot = ReviewSession.snapshot

    def slow_snapshot(*args, **kwargs):
        assert gate.wait(30)
        return real_snapshot(*args, **kwargs)

    monkeypatch.setattr(ReviewSession, "snapshot", slow_snapshot)
    app = app_for(tui_demo_home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: any(w.group == "load" and w.is_running for w in app.workers),
                       what="the loading worker")  # fmt: skip
        await pilot.pause(0.2)
        assert not app.loaded and app.snapshot is None
        assert "Loading" in shown(app.query_one("#routing-message"))
        await pilot.press("2")  # handled while the worker waits
        assert app.query_one("#tabs").active == "models"
        await pilot.press("3")  # the charts pane is built on demand, before its data
        await pilot.pause()
        assert len(app.query(ChartsPane)) == 1
        await pilot.press("1")
        gate.set()
        await started(pilot)
        assert app.query_one("#routing-table").row_count > 0
        assert not app.query_one("#routing-message").display
        charts = app.query_one(ChartsPane)  # still the one pane, now with the data
        assert charts.points and charts.frontier is not None
        assert len(app.query(ChartsPane)) == 1


async def test_with_no_model_enabled_the_routing_view_says_it_is_hypothetical(tui_home_copy):
    """With every model disabled (an incident) the view showed shares as if traffic flowed."""
    store = Store.open(tui_home_copy)
    try:
        for model in store.list_models(["enabled"]):
            store.set_status(model["name"], "disabled", reason="incident")
    finally:
        store.close()
    async with running(tui_home_copy) as (app, _pilot):
        info = str(app.query_one("#routing-info").render())
        assert "no model is enabled" in info and "not live traffic" in info
