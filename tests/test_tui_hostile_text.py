"""`lrcal tui` on text it does not control, on models changed by another process, and on typed λ.

* Set names, task groups, sample ids, questions, answers, event reasons, paths and error
  messages were handed to Textual/Rich as markup: `logs [/x]` or `c[/x]` crashed the app
  (MarkupError) and `[WIP] canary` lost its first word. They are shown literally.
* `e` / `x` built their dialog from the row the view loaded: a model removed or enabled by
  another process got a stale dialog ("is rejected: it has not passed live validation"), then
  nothing recorded. The key reads the store's row now and reports the change instead.
* The λ boxes took 0 ≤ λ < 1e6 where the CLI takes at most 1000.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lrcal import lifecycle
from lrcal.store import ModelEndpoint, Store
from tests.fixtures.tui import CANDIDATES
from tests.test_tui_app import running, table_rows, wait_for

SPECIALIST, DOMINATED = CANDIDATES  # in the demo home: enabled, rejected
HOSTILE_SET = "logs [/x]"
HOSTILE_TASKS = ("t[/x]", "[WIP] ocr", "plain")
LOSER, WINNER = "alpha", "beta"  # beta wins the t[/x] queries, alpha the others
ENABLE_REASON, DISABLE_REASON = "c[/x]", "[WIP] canary"
UNREACHABLE = "http://127.0.0.1:9/v1"


def painted(widget) -> str:
    """The text ``widget`` paints (its own render, as the screen shows it)."""
    from textual.geometry import Region

    width, height = widget.outer_size  # padding included: render_lines paints it
    lines = widget.render_lines(Region(0, 0, width, height))
    return "\n".join(strip.text for strip in lines)


def hostile_csv(path: Path) -> Path:
    """A wide outcome log whose task groups, sample ids, questions and answers hold markup."""
    rng = random.Random(0)
    lines = ["sample_id,task,question,answer,"
             f"{LOSER}_correct,{LOSER}_latency_ms,{LOSER}_cost,{WINNER}_correct,{WINNER}_latency_ms,{WINNER}_cost"]  # fmt: skip
    for i in range(90):
        task = HOSTILE_TASKS[i % 3]
        loser_right = int(task != "t[/x]")
        winner_right = 1 if task == "t[/x]" else int(rng.random() < 0.5)
        lines.append(f"s[/x]-{i},{task},What is [/x] in [WIP] case {i}?,ref[/x],"
                     f"{loser_right},{100 + i},0.001,{winner_right},{300 + i},0.0001")  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory, one_torch_thread) -> Path:
    """Two endpoint models calibrated from an imported log named `logs [/x]` (the real
    `import-outcomes` and `router train`); alpha force-enabled with reason `c[/x]`, beta
    force-disabled with reason `[WIP] canary`: beta is the routing view's candidate."""
    from lrcal.cli import app

    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    store = Store.open(home)
    for name in (LOSER, WINNER):
        store.add_model(name, ModelEndpoint(UNREACHABLE, price_in_per_mtok=1.0, price_out_per_mtok=2.0))
    store.close()
    runner = CliRunner()

    def cli(*args: str) -> None:
        result = runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    cli("import-outcomes", str(hostile_csv(root / "log.csv")), "--name", HOSTILE_SET)
    store = Store.open(home)
    for name in (LOSER, WINNER):  # what `lrcal calibrate` records, so that training uses the log
        store.set_status(name, lifecycle.CALIBRATED, reason=f"calibrated on {HOSTILE_SET}")
    store.close()
    cli("router", "train", "--ensemble", "1")
    store = Store.open(home)
    store.set_status(LOSER, lifecycle.ENABLED, force=True, reason=ENABLE_REASON)
    store.set_status(WINNER, lifecycle.DISABLED, force=True, reason=DISABLE_REASON)
    store.close()
    return home


# ---- bug 1: store, user and file text is shown literally ---------------------------------------


async def test_markup_in_names_reasons_and_questions_is_shown_literally(hostile_home):
    from lrcal.tui.charts_view import ChartsPane
    from lrcal.tui.detail_view import ModelDetailScreen
    from lrcal.tui.examples_view import ExamplesScreen
    from lrcal.tui.routing_view import RoutingPane

    async with running(hostile_home, size=(120, 40)) as (app, pilot):
        pane = app.query_one(RoutingPane)
        assert pane.candidate == WINNER and HOSTILE_SET in painted(app.query_one("#routing-info"))
        table = app.query_one("#routing-table")
        assert "t[/x] (30)" in painted(table) and "[WIP] ocr" in painted(table)
        diff = painted(app.query_one("#routing-diff"))
        assert "t[/x]" in diff and f"→ {WINNER}" in diff  # the Δ table's task column

        # The charts: their info line names the set.
        await pilot.press("3")
        await wait_for(pilot, lambda: bool(app.query(ChartsPane)) and app.query_one(ChartsPane).points,
                       what="the charts")  # fmt: skip
        await pilot.pause()
        assert HOSTILE_SET in painted(app.query_one("#charts-info"))

        # The model detail: per-task table and the events' reasons.
        for row, reason in ((0, ENABLE_REASON), (1, DISABLE_REASON)):
            await pilot.press("2", *["down"] * row, "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelDetailScreen) and app.screen.detail is not None,
                           what="the model detail")  # fmt: skip
            screen = app.screen
            assert screen.model_name == (LOSER, WINNER)[row]
            tasks = painted(screen.query_one("#detail-tasks"))
            assert "t[/x]" in tasks and "[WIP] ocr" in tasks
            events = painted(screen.query_one("#detail-events"))
            assert f"→ {('enabled', 'disabled')[row]}: {reason}" in events
            await pilot.press("escape")
            await pilot.pause()

        # The examples of the candidate's cell of t[/x]: it is not routed, so none ("No … queries").
        await pilot.press("1")
        await pilot.pause()
        tasks = pane.routed.tasks
        await pilot.press(*["down"] * tasks.index("t[/x]"), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExamplesScreen) and app.screen.loaded, what="examples")
        assert app.screen.model == WINNER and not app.screen.views
        assert "No t[/x] queries the router sends to beta" in painted(app.screen.query_one("#examples-message"))
        await pilot.press("escape", "home", "enter")  # every t[/x] query
        await wait_for(pilot, lambda: isinstance(app.screen, ExamplesScreen) and app.screen.loaded, what="examples")
        screen = app.screen
        assert len(screen.views) == 30
        assert "s[/x]-" in painted(screen.query_one("#examples-list"))
        text = painted(screen.query_one("#example-text"))
        assert "What is [/x] in [WIP] case" in text and "Reference: ref[/x]" in text
        await pilot.press("escape")
        await pilot.pause()
    assert app.return_code in (None, 0)


async def test_dialogs_show_their_message_literally(hostile_home):
    from lrcal.tui.widgets import ConfirmScreen, ReasonScreen

    async with running(hostile_home) as (app, pilot):
        long_question = f"Disable c[/x]? {DISABLE_REASON}: the router stops sending it traffic (two lines)."
        for dialog, label in ((ConfirmScreen(long_question, "Disable"), "#confirm-message"),
                              (ReasonScreen(f"{HOSTILE_SET} is [WIP]", "Force enable"), "#reason-message")):  # fmt: skip
            app.push_screen(dialog)
            await wait_for(pilot, lambda: app.screen is dialog and bool(dialog.query(label))
                           and dialog.query_one(label).outer_size.height > 0, what="the dialog")  # fmt: skip
            assert dialog.message in " ".join(painted(dialog.query_one(label)).split())  # all of it, wrapped
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is not dialog, what="the dialog to close")


@pytest.mark.parametrize("set_ref", ["nope[/x]", "nope[bold]"])
async def test_an_unknown_set_from_the_command_line_is_named_literally(hostile_home, set_ref):
    async with running(hostile_home, set_ref=set_ref) as (app, pilot):
        message = app.query_one("#routing-message")
        assert message.display and f"'{set_ref}'" in painted(message)


async def test_a_home_path_with_markup_is_shown_literally(tmp_path):
    home = tmp_path / "home [" / "x]"  # its path reads `…/home [/x]`
    home.mkdir(parents=True)
    async with running(home, size=(120, 30)) as (app, pilot):
        assert str(home) in painted(app.query_one("#empty-state"))
    (home / "lrcal.db").write_bytes(b"this is not a database" * 100)  # the load fails: _load_failed
    async with running(home, size=(120, 30)) as (app, pilot):
        message = painted(app.query_one("#routing-message"))
        assert "cannot open database" in message and "[/x]" in message


def test_every_notification_in_the_tui_is_literal_text():
    """Notifications carry model names, paths and error messages: each passes markup=False,
    whether called directly or handed to `call_from_thread` from a worker."""
    package = Path(__file__).resolve().parents[1] / "lrcal" / "tui"

    def is_notify(node) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "notify"

    offenders = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            through_worker = isinstance(node.func, ast.Attribute) and node.func.attr == "call_from_thread" and \
                bool(node.args) and is_notify(node.args[0])
            if not (is_notify(node.func) or through_worker):
                continue
            if not any(k.arg == "markup" and isinstance(k.value, ast.Constant) and k.value.value is False
                       for k in node.keywords):  # fmt: skip
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, "notify(...) without markup=False: " + ", ".join(offenders)


# ---- bug 3: the dialog follows the store, not the view's stale row ------------------------------


def change_elsewhere(home: Path, change) -> None:
    """``change(store)`` through a second connection, as another `lrcal` process would."""
    store = Store.open(home)
    try:
        change(store)
    finally:
        store.close()


def event_count(home: Path, model: str) -> int:
    store = Store.open(home)
    try:
        return len(store.events(model))
    finally:
        store.close()


def remove(name: str):
    def change(store) -> None:
        from lrcal.services.models import remove_model

        remove_model(store, name, reason="removed elsewhere")

    return change


async def open_models_at(pilot, name: str) -> None:
    from lrcal.tui.models_view import ModelsPane

    await pilot.press("2")
    await pilot.pause()
    pane = pilot.app.query_one(ModelsPane)
    await pilot.press(*["down"] * [r.name for r in pane.rows].index(name))
    assert pane.current_name() == name


def notified(app, words: str) -> bool:
    return any(words in n.message for n in app._notifications)


def statuses_shown(app) -> dict[str, str]:
    return {row[0]: row[1] for row in table_rows(app.query_one("#models-table"))}


@pytest.mark.parametrize(
    ("model", "key", "change", "now"),
    [
        (DOMINATED, "e", remove(DOMINATED), "was removed"),
        (DOMINATED, "e", lambda s: s.set_status(DOMINATED, lifecycle.ENABLED, force=True, reason="canary"),
         "is enabled now"),
        (SPECIALIST, "x", lambda s: s.set_status(SPECIALIST, lifecycle.DISABLED, reason="elsewhere"), "is disabled now"),
    ],
    ids=["removed", "enabled-elsewhere", "disabled-elsewhere"],
)
async def test_a_model_changed_elsewhere_gets_no_stale_dialog(tui_home_copy, model, key, change, now):
    from lrcal.tui.widgets import ConfirmScreen, ReasonScreen

    home = tui_home_copy
    async with running(home, notifications=True) as (app, pilot):
        await open_models_at(pilot, model)
        before = statuses_shown(app)
        change_elsewhere(home, change)
        events = event_count(home, model)
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, (ConfirmScreen, ReasonScreen))
        assert notified(app, f"{model} {now} (changed since the view was loaded)")
        await wait_for(pilot, lambda: statuses_shown(app) != before, what="the reload")  # the view follows the store
        shown_now = statuses_shown(app)
        assert model not in shown_now if now == "was removed" else shown_now[model] == now.split()[1]
    assert event_count(home, model) == events  # the app recorded nothing


async def test_a_change_elsewhere_while_the_dialog_is_open_is_reported_not_applied(tui_home_copy):
    from lrcal.tui.widgets import ConfirmScreen

    home = tui_home_copy
    async with running(home, notifications=True) as (app, pilot):
        await open_models_at(pilot, SPECIALIST)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        change_elsewhere(home, lambda s: s.set_status(SPECIALIST, lifecycle.DISABLED, reason="elsewhere"))
        events = event_count(home, SPECIALIST)
        await pilot.press("y")
        await wait_for(pilot, lambda: notified(app, f"{SPECIALIST} is disabled now"), what="the report")
    assert event_count(home, SPECIALIST) == events


# ---- bug 4: λ has the CLI's bounds --------------------------------------------------------------


def test_lambda_input_takes_the_cli_range_and_says_why_not():
    from lrcal.tui.routing_view import LAMBDA_MAX, lambda_problem, parse_lambda

    assert parse_lambda("0") == 0.0 and parse_lambda("1000") == 1000.0 and parse_lambda(" 2.5 ") == 2.5
    for text in ("1000.5", "5000", "999999", "-0.1", "nan", "inf", "-inf", "1e999", "", "abc"):
        assert parse_lambda(text) is None, text
    assert LAMBDA_MAX == 1000.0
    assert "from 0 to 1000" in lambda_problem("5000") and "5000" in lambda_problem("5000")
    assert "finite" in lambda_problem("1e999") and "finite" in lambda_problem("nan")
    assert lambda_problem("0.3") is None


def test_the_tui_lambda_limit_is_the_cli_limit():
    """The CLI's λ options (`lrcal tui`, `policy set`, `route`) and the λ boxes take one range."""
    import click
    import typer

    from lrcal.cli import app
    from lrcal.tui.routing_view import LAMBDA_MAX

    root = typer.main.get_command(app)
    ctx = click.Context(root)
    for path in (("tui",), ("policy", "set"), ("route",)):
        command = root
        for name in path:
            command = command.get_command(ctx, name)
        lambdas = [p for p in command.params if p.name in ("lambda_cost", "lambda_latency")]
        assert len(lambdas) == 2, path
        for param in lambdas:  # typer keeps an option's min/max on it (click: on its FloatRange type)
            bounds = (param.min, param.max) if hasattr(param, "max") else (param.type.min, param.type.max)
            assert bounds == (0.0, LAMBDA_MAX), (path, param.name)


async def test_a_typed_lambda_out_of_range_is_refused_with_a_reason(tui_demo_home):
    from lrcal.tui.routing_view import RoutingPane

    async with running(tui_demo_home) as (app, pilot):
        pane = app.query_one(RoutingPane)
        problem = app.query_one("#lambda-problem")
        assert not problem.display
        await pilot.click("#lambda-cost")
        await pilot.press("end", "backspace", "5", "0", "0", "0")  # 5, 50, 500 are taken on the way
        await pilot.pause()
        box = app.query_one("#lambda-cost")
        assert box.value == "5000" and box.has_class("-invalid") and pane.lambda_cost == 500.0
        assert problem.display and "λ cost must be from 0 to 1000" in painted(problem)
        assert "routing keeps λ cost = 500" in " ".join(painted(problem).split())
        await pilot.press(*["backspace"] * 4, "1", "e", "9", "9", "9")  # inf
        await pilot.pause()
        assert pane.lambda_cost == 1.0 and "finite" in painted(problem)  # 1e9 was refused, 1 taken
        await pilot.press(*["backspace"] * 5, "1", "0", "0", "0", "enter")  # the limit itself
        await wait_for(pilot, lambda: pane.routed.lambda_cost == 1000.0, what="the re-route")
        assert not box.has_class("-invalid") and not problem.display
