"""What `lrcal route` and `lrcal serve` let a query carry must be what the router was trained
on: metadata columns of outcome logs (`--meta`, `X-Lrcal-Metadata`), a task label as a person
types it, an image only to models that take images, and an image that really decodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def meta_home(tmp_path_factory):
    """A router trained on a log whose `category` column decides the winner: a wins 'geo'
    questions, b wins 'alg' ones, and the questions do not tell them apart."""
    from typer.testing import CliRunner

    from lrcal.cli import app

    home = tmp_path_factory.mktemp("meta") / "home"
    rng = np.random.default_rng(0)
    rows = ["sample_id,task,question,category,a_correct,b_correct"]
    for i in range(600):
        category = ("geo", "alg")[i % 2]
        p_a, p_b = (0.9, 0.2) if category == "geo" else (0.2, 0.9)
        rows.append(f"s{i},Jigsaw,solve problem {i % 5},{category},{int(rng.random() < p_a)},{int(rng.random() < p_b)}")
    runner = CliRunner()

    def cli(*args):
        return runner.invoke(app, ["--home", str(home), *args], catch_exceptions=False)

    log = _write(home.parent / "log.csv", "\n".join(rows) + "\n")
    assert cli("import-outcomes", str(log)).exit_code == 0
    trained = cli("router", "train", "--ensemble", "1", "--seed", "0")
    assert trained.exit_code == 0, trained.output
    return home, cli


def _route(cli, *args) -> dict:
    result = cli("route", "-q", "solve problem 3", "--models", "a,b", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_metadata_the_router_was_trained_with_can_be_given_and_decides(meta_home):
    """The router learned from the log's `category` column, which `route` and the gateway never
    passed: on MathVista dropping the metadata columns changed 19.6 % of decisions."""
    _home, cli = meta_home
    geo = _route(cli, "--meta", "category=geo")
    alg = _route(cli, "--meta", "category=alg")
    assert (geo["choice"], alg["choice"]) == ("a", "b")
    assert geo["notes"] == [] and geo["metadata"] == {"category": "geo"}
    bare = _route(cli)
    assert any("trained with the metadata column(s) category" in note for note in bare["notes"])
    odd = _route(cli, "--meta", "colour=red", "--meta", "category=geo")
    assert any("uses no metadata column 'colour'" in note for note in odd["notes"])
    bad = cli("route", "-q", "x", "--models", "a,b", "--meta", "category")
    assert bad.exit_code == 2 and "expected COLUMN=VALUE" in bad.output


def test_a_task_label_matches_whatever_its_case_and_spacing(meta_home):
    _home, cli = meta_home
    exact = _route(cli, "--task", "Jigsaw", "--meta", "category=geo")
    for typed in ("jigsaw", " Jigsaw ", "JIGSAW"):
        other = _route(cli, "--task", typed, "--meta", "category=geo")
        assert [m["score"] for m in other["models"]] == [m["score"] for m in exact["models"]], typed
        assert other["notes"] == []
    unknown = _route(cli, "--task", "counting", "--meta", "category=geo")
    assert any("task 'counting' is not one the router was trained on (Jigsaw)" in n for n in unknown["notes"])


def test_the_gateway_reads_the_metadata_header(meta_home):
    from lrcal.gateway.errors import ApiError
    from lrcal.gateway.request import routing_metadata

    assert routing_metadata({"x-lrcal-metadata": '{"category": "geo"}'}) == {"category": "geo"}
    assert routing_metadata({}) == {}
    for bad in ('["geo"]', '{"category": 3}', "{", '{"": "x"}', json.dumps({f"k{i}": "v" for i in range(33)}),
                "[" * 5000):
        with pytest.raises(ApiError) as caught:
            routing_metadata({"x-lrcal-metadata": bad})
        assert caught.value.status == 400
    from lrcal.gateway.request import ChatCall
    from lrcal.gateway.routing import featurize, table_of_home

    home, _cli = meta_home
    table = table_of_home(home)
    calls = [ChatCall(body={}, model="lrcal/auto", stream=False, include_usage=False, question="solve problem 3",
                      route_metadata={"category": c}) for c in ("geo", "alg")]  # fmt: skip
    geo, alg = (featurize(table, call, None) for call in calls)
    assert not np.array_equal(geo, alg)


def test_an_image_query_goes_to_models_that_take_images(meta_home, tmp_path):
    """`route --image` chose a text-only model the gateway never sends an image to."""
    from PIL import Image

    import sqlite3

    home, cli = meta_home
    image = tmp_path / "page.png"
    Image.new("RGB", (40, 30), "white").save(image)
    assert cli("models", "set", "a", "--no-images").exit_code == 0
    # as if both were endpoints that passed live validation (an imported model's status is fixed)
    with sqlite3.connect(home / "lrcal.db") as conn:
        conn.execute("update models set status = 'enabled' where name in ('a', 'b')")
    try:
        routed = cli("route", "-q", "solve problem 3", "--image", str(image), "--meta", "category=geo", "--json")
        assert routed.exit_code == 0, routed.output
        decision = json.loads(routed.stdout)
        assert [m["model"] for m in decision["models"]] == ["b"]
        assert any("text-only, not sent a query with an image: a" in note for note in decision["notes"])

        named = cli("route", "-q", "solve problem 3", "--image", str(image), "--models", "a,b")
        assert named.exit_code == 1 and "a: text-only" in named.output
    finally:
        assert cli("models", "set", "a", "--images").exit_code == 0


def test_a_cut_jpeg_is_refused_like_a_cut_png(meta_home, tmp_path):
    from PIL import Image

    _home, cli = meta_home
    rng = np.random.default_rng(1)
    whole = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(whole, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    result = cli("route", "-q", "what is this?", "--image", str(cut), "--models", "a,b")
    assert result.exit_code == 1 and "not a readable image" in result.output
    assert cli("route", "-q", "what is this?", "--image", str(whole), "--models", "a,b").exit_code == 0
