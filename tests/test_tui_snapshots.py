"""SVG snapshots (pytest-textual-snapshot) of every TUI screen at 80×24 and 120×36, in colour.

The home is `tui_fixed_home`: the simulated zoo's deterministic behaviour recorded through the
real services, a fixed clock and router version name, so the pictures depend on nothing but
the code. Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and review the SVGs in tests/__snapshots__/test_tui_snapshots/.
"""

from __future__ import annotations

import pytest

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])


@pytest.fixture(autouse=True)
def _colour(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)  # Textual draws in monochrome when it is set


def app(home):
    from lrcal.services.review import ReviewService
    from lrcal.tui.app import LrcalApp

    return LrcalApp(ReviewService(home))


def after_load(*keys: str, screen: type | None = None, ready=None):
    """run_before: wait for the first load, press ``keys``, wait for ``screen`` / ``ready(app)``."""

    async def run_before(pilot) -> None:
        async def until(predicate) -> None:
            for _ in range(1500):
                if predicate():
                    break
                await pilot.pause(0.02)
            else:
                raise AssertionError("the app did not get ready for the snapshot")

        await until(lambda: pilot.app.loaded)
        for key in keys:
            await pilot.press(key)
        if screen is not None:
            await until(lambda: isinstance(pilot.app.screen, screen))
        if ready is not None:
            await until(lambda: ready(pilot.app))
        await pilot.pause()

    return run_before


@SIZES
def test_routing_view(snap_compare, tui_fixed_home, size):
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=after_load())


@SIZES
def test_routing_view_with_the_candidate_excluded_and_lambda_cost(snap_compare, tui_fixed_home, size):
    keys = ("t", "right_square_bracket", "right_square_bracket", "right_square_bracket")
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=after_load(*keys))


@SIZES
def test_models_view(snap_compare, tui_fixed_home, size):
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=after_load("2", "down", "down", "down"))


@SIZES
def test_charts_view(snap_compare, tui_fixed_home, size):
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=after_load("3"))


@SIZES
def test_model_detail(snap_compare, tui_fixed_home, size):
    from lrcal.tui.detail_view import ModelDetailScreen

    run_before = after_load("2", "down", "down", "down", "enter", screen=ModelDetailScreen,
                            ready=lambda a: a.screen.detail is not None)  # fmt: skip
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=run_before)


@SIZES
def test_examples_of_a_cell(snap_compare, tui_fixed_home, size):
    from lrcal.tui.examples_view import ExamplesScreen

    # document (2nd row) × the candidate's column (pinned first)
    run_before = after_load("down", "enter", screen=ExamplesScreen, ready=lambda a: bool(a.screen.views))
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=run_before)


@SIZES
def test_examples_filtered_to_failures(snap_compare, tui_fixed_home, size):
    from lrcal.tui.examples_view import ExamplesScreen

    def failures_loaded(a) -> bool:
        return isinstance(a.screen, ExamplesScreen) and a.screen.only == "failures" and a.screen.loaded

    # The all row of the task column: every query, then f: the routed answers that failed.
    run_before = after_load(*["down"] * 6, "home", "enter", "f", screen=ExamplesScreen, ready=failures_loaded)
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=run_before)


@SIZES
def test_keys_screen(snap_compare, tui_fixed_home, size):
    from lrcal.tui.help_view import HelpScreen

    assert snap_compare(app(tui_fixed_home), terminal_size=size,
                        run_before=after_load("question_mark", screen=HelpScreen))  # fmt: skip


@SIZES
def test_force_enable_asks_for_a_reason(snap_compare, tui_fixed_home, size):
    from lrcal.tui.widgets import ReasonScreen

    # The models view's 5th model was rejected by its validation: e can only force it, with a reason.
    run_before = after_load("2", "down", "down", "down", "down", "e", screen=ReasonScreen)
    assert snap_compare(app(tui_fixed_home), terminal_size=size, run_before=run_before)


@SIZES
def test_empty_home(snap_compare, tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)  # the empty state names the home: a relative one keeps the picture stable
    assert snap_compare(app("home"), terminal_size=size, run_before=after_load())
    assert (tmp_path / "home" / "lrcal.db").exists()
