"""The SQLite store: migrations, pragmas, lifecycle, audit log, outcomes, locks, images."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from lrcal.errors import LrcalError, NotFound
from lrcal.store import ModelEndpoint, Store


def test_migrations_create_schema_once(home):
    first = Store.open(home)
    tables = set(first.db.table_names())
    assert {"models", "calibration_sets", "examples", "images", "runs", "outcomes", "events"} <= tables
    applied = [r["name"] for r in first.query("select name from _sqlite_migrations order by id")]
    assert applied == sorted(applied) and applied[0] == "m001_initial"
    first.close()
    again = Store.open(home)  # re-opening applies nothing new
    assert [r["name"] for r in again.query("select name from _sqlite_migrations order by id")] == applied


def test_pragmas(store):
    assert store.db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("pragma foreign_keys").fetchone()[0] == 1
    assert store.db.execute("pragma busy_timeout").fetchone()[0] >= 5000


def test_model_lifecycle_is_checked_and_audited(store):
    store.add_model("m", ModelEndpoint("http://127.0.0.1:1/v1", api_key_env="MY_KEY"))
    with pytest.raises(LrcalError, match="already exists"):
        store.add_model("m", ModelEndpoint("http://127.0.0.1:1/v1"))
    with pytest.raises(LrcalError, match="live-validate"):
        store.set_status("m", "enabled")
    store.set_status("m", "calibrated")
    store.set_status("m", "validated")
    store.set_status("m", "enabled")
    store.set_status("m", "disabled")
    kinds = [e["kind"] for e in reversed(store.events("m"))]
    assert kinds == ["added", "calibrated", "validated", "enabled", "disabled"]


def test_forced_transition_is_recorded(store):
    store.add_model("m", ModelEndpoint("http://127.0.0.1:1/v1"))
    store.set_status("m", "enabled", force=True, reason="initial pool")
    event = store.events("m")[0]
    assert event["data"]["forced"] is True and "FORCED" in event["message"]


def test_unknown_model_names_known_ones(store):
    store.add_model("alpha", ModelEndpoint("http://127.0.0.1:1/v1"))
    with pytest.raises(NotFound, match="known: alpha"):
        store.get_model("beta")


def test_events_are_append_only(store):
    store.log_event("note", message="hello")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("update events set message = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        store.db.execute("delete from events")


def _one_example_set(store):
    with store.write():
        return store.insert_imported_set(
            "s", "v1", "-", ["ocr"],
            [{"example_id": "e1", "task_group": "ocr", "question": "q", "answer": "a", "answer_type": "exact"}],
        )


def test_outcomes_unique_per_run_and_example(store):
    model = store.add_model("m", ModelEndpoint("http://127.0.0.1:1/v1"))
    cset = _one_example_set(store)
    example_pk = store.set_examples(cset["id"])[0]["id"]
    run_id = store.create_run(model["id"], cset["id"], "calibration")
    assert store.record_outcome(run_id, example_pk, {"score": 1.0, "correct": 1}) is True
    assert store.record_outcome(run_id, example_pk, {"score": 0.0, "correct": 0}) is False
    rows = store.run_outcomes(run_id)
    assert len(rows) == 1 and rows[0]["score"] == 1.0


def test_images_are_content_addressed(store):
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (3, 2), "red").save(buf, format="PNG")
    sha1 = store.put_image(buf.getvalue())
    sha2 = store.put_image(buf.getvalue())
    assert sha1 == sha2
    row = store.image_row(sha1)
    assert (row["width"], row["height"], row["mime"]) == (3, 2, "image/png")
    assert store.image_bytes(sha1) == buf.getvalue()
    assert store.query_one("select count(*) as n from images")["n"] == 1


def test_lock_refuses_live_holder_and_clears_stale(store, home):
    # A live process holding the lock blocks us.
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with store.write():
            store.db["locks"].insert({"name": "calibrate:m", "pid": holder.pid, "host": os.uname().nodename,
                                      "acquired_at": "t", "purpose": "test"})
        with pytest.raises(LrcalError, match="already running"):
            with store.lock("calibrate:m"):
                pass
    finally:
        holder.kill()
        holder.wait()
    # Its pid is gone now: the lock is stale and is taken over, then released.
    with store.lock("calibrate:m"):
        assert store.query_one("select pid from locks where name = 'calibrate:m'")["pid"] == os.getpid()
    assert store.query_one("select * from locks where name = 'calibrate:m'") is None


def test_corrupt_database_gives_one_line_error(home):
    (home / "lrcal.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LrcalError, match="cannot open database"):
        Store.open(home)


def _token(store, model_id: int, version: str) -> None:
    store.add_model_token(model_id, version, token="{}", prior_strength=None, fit_loss=None, cv_score=0.5,
                          per_task={"ocr": {"predicted": 0.5}}, n_examples=16, set_version="v1", fit_seconds=0.1,
                          details={"method": "profile"})  # fmt: skip


def test_router_versions_pin_and_token_staleness(store):
    model = store.add_model("m", ModelEndpoint("http://127.0.0.1:1/v1"))
    assert store.current_router_version() is None and store.router_version_count() == 0
    store.register_router_version("r1-aaaa", path="/r1", models=["a", "b"], data_hash="aaaa", config={}, metrics={})
    _token(store, model["id"], "r1-aaaa")
    assert [t["name"] for t in store.fresh_tokens("r1-aaaa")] == ["m"]
    store.register_router_version("r2-bbbb", path="/r2", models=["a"], data_hash="bbbb", config={}, metrics={})
    # a retrain makes the older version's token stale
    assert store.fresh_tokens("r1-aaaa") == []
    assert store.latest_token_states()[model["id"]]["stale"] == 1
    assert store.current_router_version()["version"] == "r2-bbbb"
    assert [r["version"] for r in store.router_versions()] == ["r2-bbbb", "r1-aaaa"]
    assert store.find_router_version("r1")["path"] == "/r1" and store.find_router_version("r9") is None
    store.pin_router_version(store.find_router_version("r1")["id"])
    assert store.current_router_version()["version"] == "r1-aaaa"
    store.unpin_router_versions()
    assert store.current_router_version()["version"] == "r2-bbbb"


def test_outcome_aggregates(store):
    model = store.add_model("m", ModelEndpoint("http://127.0.0.1:1/v1"))
    cset = store.insert_imported_set(
        "s", "v1", "-", ["ocr", "count"],
        [{"example_id": f"e{i}", "task_group": "ocr" if i < 2 else "count", "question": "q", "answer": "a",
          "image_sha256": None} for i in range(3)],
    )  # fmt: skip
    pks = store.example_pks(cset["id"])
    assert sorted(pks) == ["e0", "e1", "e2"]
    assert store.task_group_counts(cset["id"]) == {"ocr": 2, "count": 1}
    assert store.set_kinds() == {cset["id"]: "imported"}
    assert store.shared_content(cset["id"], cset["id"]) == {"examples": 3, "images": 0}
    run_id = store.create_run(model["id"], cset["id"], "calibration")
    store.record_outcome(run_id, pks["e0"], {"score": 1.0, "correct": 1, "latency_ms": 100.0, "input_tokens": 10,
                                             "output_tokens": 4})  # fmt: skip
    store.record_outcome(run_id, pks["e1"], {"score": 0.0, "correct": 0, "latency_ms": 300.0, "input_tokens": 20,
                                             "output_tokens": 6})  # fmt: skip
    store.record_outcome(run_id, pks["e2"], {"score": 0.0, "correct": 0, "error_kind": "timeout"})
    assert store.outcome_example_counts(["calibration"]) == {model["id"]: 3}
    assert store.outcome_example_counts(["calibration"], measured_only=True) == {model["id"]: 2}
    assert store.outcome_example_counts(["import"]) == {}
    assert store.token_means(model["id"], "calibration") == {"input_tokens": 15.0, "output_tokens": 5.0, "n": 2}
    assert sorted(store.latencies(model["id"], "calibration")) == [100.0, 300.0]
    # the timeout is excluded, not counted as a wrong answer (issue 19/20)
    assert store.mean_correct(model["id"], ["calibration"]) == pytest.approx(1 / 2)
    assert store.mean_correct(model["id"], ["validation"]) is None
