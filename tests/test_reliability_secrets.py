"""Secrets: an API key lives only in the environment variable whose *name* the store keeps.

A sentinel key goes through add-model (with its probe), calibrate, live-validate with a report,
route, the listings and the TUI's data layer; afterwards no file under the home or the report
directory and no captured output contains it — while the simulated server, which answers 401 to
anything but ``Authorization: Bearer <sentinel>``, proves that every model received it.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.fixtures.flows import point_models_at

HOLDOUT = 144  # builtin-v1-holdout

SENTINEL = "sk-SENTINEL-rel7-9d2c4b1a"
KEY_ENV = "LRCAL_SENTINEL_KEY"
NEWCOMER = "newcomer-spatial"  # not in the flow home: registered here with --api-key-env
NEWCOMER_API_MODEL = "sim-spatial-m"  # the simulated model it is served by (an incumbent too)
REJECTED = "sim-legacy-xl"  # calibrated and validated in the flow home


def _runner(home, captured: list[str]):
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)
        captured.extend([result.stdout, result.stderr])
        # live-validate exits 3 on a rejection, 4 when undecided: still a clean run
        assert result.exit_code in ((0, 3, 4) if args[0] == "live-validate" else (0,)), (args, result.output)
        return result

    return invoke


def _use_key_env(home, name: str) -> None:
    """The flow home's models were registered without a key: name the variable for them too
    (only the name is stored, as `lrcal add-model --api-key-env` does)."""
    with sqlite3.connect(home / "lrcal.db") as conn:
        conn.execute("update models set api_key_env = ? where source = 'endpoint'", [name])


def _tui_data_layer(home) -> list[str]:
    """Everything the review service shows `lrcal tui`, rendered to text."""
    from lrcal.services.review import ReviewService

    service = ReviewService(home)
    with service.connect() as review:
        shown = [repr(review.home_state()), repr(review.models_table())]
        snap = review.snapshot()  # writes the prediction cache into the home
        table = service.route(snap, 0.5, 0.1)
        shown += [repr(snap), repr(table), repr(service.diff(snap, snap.models, snap.default_included))]
        for task in snap.task_groups:
            shown += [repr(view) for view in review.examples_for(snap, task, routed=table)]
        for name in snap.models:
            shown.append(repr(review.model_detail(name)))
        shown += [repr(review.quality_latency_points(snap)), repr(review.validation_frontiers())]
    return shown


@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["quick", "full"])
def test_sentinel_key_never_leaves_the_environment(flow_home, sim_server, builtin_sets, tmp_path, monkeypatch, full):
    """quick: the newcomer is calibrated without the token fit, a flow candidate is validated on
    the held-out queries its sequential run did not need; full (slow): the newcomer is calibrated, fitted and validated."""
    home, _ = flow_home
    monkeypatch.setenv(KEY_ENV, SENTINEL)
    server = sim_server(sets=builtin_sets, latency_scale=0.01, api_key=SENTINEL)
    point_models_at(home, server.url)
    _use_key_env(home, KEY_ENV)
    captured: list[str] = []
    cli = _runner(home, captured)
    report_dir = tmp_path / "report"

    cli("add-model", NEWCOMER, "--base-url", server.url, "--api-key-env", KEY_ENV, "--api-model", NEWCOMER_API_MODEL,
        "--price-in", "0.3", "--price-out", "1.2", "--max-concurrency", "16")  # probe on: it sends the key  # fmt: skip
    calibrate = ["calibrate", NEWCOMER, "--json"] + ([] if full else ["--limit", "24", "--no-fit"])
    calibration = json.loads(cli(*calibrate).stdout)
    assert calibration["errors"] == 0, calibration
    validated = NEWCOMER if full else REJECTED
    # the whole held-out set at one look: the queries the flow's sequential run did not need go live
    validation = cli("live-validate", validated, "--no-sequential", "--report", str(report_dir), "--json")
    validation = json.loads(validation.stdout)
    assert validation["n"] == HOLDOUT and validation["requests"] > 0
    cli("route", "--question", "What is the total on this receipt?", "--task", "document", "--json")
    cli("route", "--question", "Which bar is tallest?", "--models", f"{validated},sim-lite-s")
    for listing in (["models", "--json"], ["models"], ["events", "--json"], ["events", validated],
                    ["router", "list"], ["home"]):  # fmt: skip
        cli(*listing)
    captured += _tui_data_layer(home)

    # Not vacuous: the key was sent, as a bearer token, by every model that was asked.
    with sqlite3.connect(home / "lrcal.db") as conn:
        enabled = [name for (name,) in conn.execute("select name from models where status = 'enabled'")]
    asked = server.request_counts
    served_by = {NEWCOMER: NEWCOMER_API_MODEL}
    assert all(asked.get(served_by.get(name, name), 0) > 0 for name in [NEWCOMER, validated, *enabled]), asked
    with sqlite3.connect(home / "lrcal.db") as conn:  # a missing or wrong key would be a 401
        assert conn.execute("select count(*) from outcomes where error_kind is not null").fetchone()[0] == 0
    assert {"report.json", "report.md"} <= {p.name for p in report_dir.iterdir()}
    assert (home / "cache").is_dir()  # the TUI's cache was written and is searched below

    files = [p for root in (home, report_dir) for p in root.rglob("*") if p.is_file()]
    # The search does see what is stored: the variable's name is there, its value nowhere.
    assert any(KEY_ENV.encode() in p.read_bytes() for p in files)
    leaks = [str(p) for p in files if SENTINEL.encode() in p.read_bytes()]
    leaks += [f"output {i}" for i, text in enumerate(captured) if SENTINEL in text]
    assert not leaks, f"the key leaked into {leaks}"
    print(f"\nsentinel ({'full' if full else 'quick'}): {sum(asked.values())} requests carried the key "
          f"({len(asked)} models); searched {len(files)} files, "
          f"{sum(p.stat().st_size for p in files):,} bytes, {len(captured)} outputs: no leak (pytest -s)")


@pytest.mark.parametrize(
    "url",
    [
        f"https://user:{SENTINEL}@api.example.com/v1",
        f"http://{SENTINEL}@127.0.0.1:8000/v1",
        f"https://api.example.com/v1?api_key={SENTINEL}",
    ],
)
def test_credentials_in_the_base_url_are_refused_without_echoing_them(cli, home, url):
    result = cli("add-model", "m", "--base-url", url, "--no-probe")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert SENTINEL not in result.output
    if "@" in url:
        assert "--api-key-env" in lines[0]
    assert json.loads(cli("models", "--json").stdout) == []
    assert not [p for p in home.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]


def test_a_key_given_as_the_env_var_name_is_refused_without_echoing_it(cli, home):
    result = cli("add-model", "m", "--base-url", "http://127.0.0.1:8000/v1", "--api-key-env", SENTINEL, "--no-probe")
    assert result.exit_code == 2 and "NAME" in result.stderr and SENTINEL not in result.output
    assert json.loads(cli("models", "--json").stdout) == []


# ---- issue 20: a key echoed back in other forms; keys and URLs lrcal cannot use -------------------

ODD_KEY = "sk-Echo/Key+42=tail-7Qx"  # '/', '+' and '=' change under URL and base64 encoding


def _key_forms(key: str) -> list[bytes]:
    """Every form a careless server may echo: as sent, other cases, URL-encoded, base64 (any alignment)."""
    import base64
    from urllib.parse import quote, quote_plus

    from lrcal.endpoints.redact import _base64_cores

    texts = {key, key.upper(), key.lower(), quote(key, safe=""), quote(key, safe="").lower(), quote_plus(key)}
    return [t.encode() for t in texts] + [c.encode() for c in _base64_cores(key.encode())] + [
        base64.b64encode(key.encode())
    ]


def _echoing_server(stub_endpoint):
    """Echoes the bearer key: upper-cased in a 401 to the probe, URL-encoded in a 500, base64 in a
    Basic-auth line and word for word inside 200 answers."""
    import base64
    from urllib.parse import quote

    from tests.fixtures.stub_endpoint import answer

    calls = {"n": 0}

    def respond(body, headers):
        key = headers.get("Authorization", "").removeprefix("Bearer ")
        calls["n"] += 1
        text = body["messages"][0]["content"][0]["text"] if isinstance(body["messages"][0]["content"], list) else ""
        if "Reply with the single word" in text:  # add-model's probe
            return 401, {"error": {"message": f"invalid key {key.upper()} for this account"}}
        if calls["n"] % 3 == 0:
            # the key across the 200 characters an error message is cut to: a cut key is still a leak
            return 500, {"error": {"message": f"{'x' * 165} upstream rejected ?key={quote(key, safe='')}"}}
        basic = base64.b64encode(f"user:{key}".encode()).decode()
        return 200, answer(f"The answer is {key}. (Authorization: Basic {basic}) {key.lower()}")

    return stub_endpoint(respond, models=["echo-model"])


def test_a_key_echoed_in_any_form_is_never_stored_or_shown(stub_endpoint, tmp_path, monkeypatch):
    """The scrubber caught only the exact key: an upper-cased or URL-encoded key in an error was
    shown by add-model and stored; a key echoed in a 200 answer was stored word for word."""
    from typer.testing import CliRunner

    from lrcal.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv(KEY_ENV, ODD_KEY)
    server = _echoing_server(stub_endpoint)
    runner = CliRunner()
    outputs = []

    def run(*args):
        result = runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)
        outputs.append(result.output.encode())
        assert "Traceback" not in result.output
        return result

    probed = run("add-model", "echo-model", "--base-url", server.url, "--api-key-env", KEY_ENV)
    assert probed.exit_code == 1 and "HTTP 401" in probed.stderr and "[redacted]" in probed.stderr
    assert run("add-model", "echo-model", "--base-url", server.url, "--api-key-env", KEY_ENV, "--no-probe",
               "--max-retries", "0", "--max-concurrency", "1").exit_code == 0  # fmt: skip
    run("calibrate", "echo-model", "--limit", "12", "--no-fit")
    run("models", "--json")
    run("events", "--json")
    files = [p for p in home.rglob("*") if p.is_file()]
    with sqlite3.connect(home / "lrcal.db") as conn:
        stored = conn.execute("select count(*), sum(error_kind is not null), sum(raw_answer like '%[redacted]%') "
                              "from outcomes").fetchone()  # fmt: skip
    assert stored[0] == 12 and stored[1] >= 3 and stored[2] >= 6, stored  # errors and answers were both echoed
    from urllib.parse import quote

    prefixes = [ODD_KEY[:10].encode(), quote(ODD_KEY, safe="")[:10].encode()]
    leaks = [(form, where) for form in [*_key_forms(ODD_KEY), *prefixes]
             for where, data in [*((str(p), p.read_bytes()) for p in files), *(("output", o) for o in outputs)]
             if form in data]  # fmt: skip
    assert not leaks, leaks[:3]


def test_a_non_ascii_key_is_refused_with_one_line_without_echoing_it(cli, home, zoo_server, monkeypatch):
    """A non-ASCII key gave UnicodeEncodeError deep inside httpx, on every request."""
    key = "sk-tÿpogräphic–dash-key"
    monkeypatch.setenv(KEY_ENV, key)
    for extra in ([], ["--no-probe"]):
        result = cli("add-model", "sim-lite-s", "--base-url", zoo_server.url, "--api-key-env", KEY_ENV, *extra)
        if extra:
            assert result.exit_code == 0
            result = cli("calibrate", "sim-lite-s", "--limit", "4", "--no-fit")
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and "non-ASCII" in lines[0], result.output
        assert key not in result.output and "Traceback" not in result.output
    assert zoo_server.request_counts.get("sim-lite-s", 0) == 0


@pytest.mark.parametrize(
    "url, needle",
    [
        ("http://[::1/v1", "cannot be parsed"),
        ("http://" + "h" * 100_000 + "/v1", "the limit is 2,048"),
        ("http://" + "a" * 64 + ".example.com/v1", "invalid host"),
        ("http://bücher.example/v1", "printable ASCII"),
        ("http://[::zz]/v1", "cannot be parsed"),
    ],
    ids=["unclosed IPv6 bracket", "100,000-character host", "64-character label", "non-ASCII host", "bad IPv6"],
)
def test_unusable_base_urls_are_one_line_usage_errors(cli, home, url, needle):
    for extra in ([], ["--no-probe"]):
        result = cli("add-model", "m", "--base-url", url, *extra)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and needle in lines[0], result.output
        assert len(lines[0]) < 300 and "Traceback" not in result.output


def test_a_stored_url_httpx_cannot_use_fails_calibrate_with_one_line(cli, home):
    """A home written before URLs were checked may hold one: calibrate after --no-probe gave InvalidURL."""
    assert cli("add-model", "m", "--base-url", "http://127.0.0.1:9/v1", "--no-probe").exit_code == 0
    with sqlite3.connect(home / "lrcal.db") as conn:
        conn.execute("update models set base_url = ?", ["http://" + "h" * 100_000 + "/v1"])
    result = cli("calibrate", "m", "--limit", "2", "--no-fit")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "the limit is 2,048" in lines[0], result.output
