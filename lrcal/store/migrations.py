"""Numbered, additive schema migrations (sqlite-utils ``Migrations``).

Never edit a migration that has shipped: add a new one. A migration's name is its function's
name (``m0NN_...``), so never rename one either: tests/test_migrations.py checks the shipped
names and the schema each one leaves.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("lrcal")


def _create_keyed_table(db: Database, name: str, columns: dict, *, foreign_keys: list, not_null: set,
                        unique: list[str], index: list[str]) -> None:  # fmt: skip
    """A table with an integer ``id`` key, its foreign keys, one unique and one plain index."""
    db[name].create({"id": int, **columns}, pk="id", foreign_keys=foreign_keys, not_null=not_null)
    db[name].create_index(unique, unique=True)
    db[name].create_index(index)


@migrations()
def m001_initial(db: Database) -> None:
    db["models"].create(
        {
            "id": int,
            "name": str,
            "base_url": str,
            "api_model": str,
            "api_style": str,
            "api_key_env": str,  # the NAME of the env var, never its value
            "price_in_per_mtok": float,
            "price_out_per_mtok": float,
            "max_concurrency": int,
            "timeout_s": float,
            "status": str,
            "source": str,  # endpoint | imported
            "created_at": str,
            "updated_at": str,
            "metadata": str,  # JSON
        },
        pk="id",
        not_null={"name", "status", "created_at"},
    )
    db["models"].create_index(["name"], unique=True)

    db["calibration_sets"].create(
        {
            "id": int,
            "name": str,
            "version": str,
            "path": str,
            "task_groups": str,  # JSON list
            "size": int,
            "kind": str,  # calibration | imported
            "created_at": str,
        },
        pk="id",
        not_null={"name", "version"},
    )
    db["calibration_sets"].create_index(["name", "version"], unique=True)

    db["images"].create(
        {
            "sha256": str,
            "path": str,  # content-addressed copy under <home>/images
            "mime": str,
            "width": int,
            "height": int,
            "bytes": int,
        },
        pk="sha256",
    )

    columns = {
        "set_id": int,
        "example_id": str,
        "task_group": str,
        "question": str,
        "answer": str,
        "answer_type": str,
        "choices": str,  # JSON list or null
        "tolerance": float,
        "image_sha256": str,
        "metadata": str,  # JSON
    }
    foreign_keys = [("set_id", "calibration_sets", "id"), ("image_sha256", "images", "sha256")]
    _create_keyed_table(db, "examples", columns, foreign_keys=foreign_keys, not_null={"set_id", "example_id"},
                        unique=["set_id", "example_id"], index=["image_sha256"])  # fmt: skip

    db["runs"].create(
        {
            "id": int,
            "model_id": int,
            "set_id": int,
            "kind": str,  # calibration | validation | import
            "status": str,  # running | completed | interrupted
            "started_at": str,
            "finished_at": str,
            "parameters": str,  # JSON
            "pid": int,
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id"), ("set_id", "calibration_sets", "id")],
    )
    db["runs"].create_index(["model_id", "set_id", "kind"])

    columns = {
        "run_id": int,
        "example_id": int,  # examples.id
        "raw_answer": str,
        "parsed_answer": str,
        "score": float,
        "correct": int,
        "latency_ms": float,
        "ttft_ms": float,
        "total_ms": float,
        "input_tokens": int,
        "output_tokens": int,
        "tokens_estimated": int,
        "cost_usd": float,
        "error_kind": str,
        "error_message": str,
        "attempts": int,
        "retried_errors": str,  # JSON list of error kinds of failed attempts
        "created_at": str,
    }
    # One outcome per run × example (the unique index): a resumed run can only fill gaps.
    _create_keyed_table(db, "outcomes", columns, foreign_keys=[("run_id", "runs", "id"), ("example_id", "examples", "id")],
                        not_null={"run_id", "example_id"}, unique=["run_id", "example_id"], index=["example_id"])  # fmt: skip

    db["events"].create(
        {
            "id": int,
            "ts": str,
            "model_id": int,
            "kind": str,
            "message": str,
            "data": str,  # JSON
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id")],
    )
    db["events"].create_index(["model_id", "id"])
    # Append-only: the audit log cannot be edited or pruned through SQL.
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events is append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events is append-only'); END"
    )

    db["locks"].create(
        {"name": str, "pid": int, "host": str, "acquired_at": str, "purpose": str},
        pk="name",
    )


@migrations()
def m002_router(db: Database) -> None:
    db["router_versions"].create(
        {
            "id": int,
            "version": str,
            "path": str,
            "created_at": str,
            "models": str,  # JSON list of model names trained on
            "data_hash": str,
            "config": str,  # JSON
            "metrics": str,  # JSON
            "pinned": int,
        },
        pk="id",
        not_null={"version", "path"},
    )
    db["router_versions"].create_index(["version"], unique=True)

    db["model_tokens"].create(
        {
            "id": int,
            "model_id": int,
            "router_version": str,
            "token": str,  # JSON list of floats (H values)
            "prior_strength": float,
            "fit_loss": float,
            "cv_score": float,
            "per_task": str,  # JSON {group: {predicted, low, high, measured, n}}
            "n_examples": int,
            "set_version": str,
            "fit_seconds": float,
            "stale": int,
            "details": str,  # JSON
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id")],
    )
    db["model_tokens"].create_index(["model_id", "router_version"])


@migrations()
def m003_validations(db: Database) -> None:
    db["validations"].create(
        {
            "id": int,
            "model_id": int,
            "set_id": int,
            "run_id": int,
            "router_version": str,
            "decision": str,  # validated | rejected
            "reasons": str,  # JSON list of sentences
            "parameters": str,  # JSON: lambdas, thresholds
            "results": str,  # JSON: every number behind the decision
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("model_id", "models", "id"), ("set_id", "calibration_sets", "id")],
    )
    db["validations"].create_index(["model_id", "id"])


@migrations()
def m004_i20_relative_paths(db: Database) -> None:
    """Absolute paths inside the home become relative to it (a moved home keeps working).

    The home a row was written in is found from the layout lrcal writes (``<home>/images/ab/<sha>.png``,
    ``<home>/routers/<version>``), so a home that was moved before this migration is converted too.
    """
    import os

    from lrcal.store.paths import relative_from_layout

    homes: set[str] = set()
    main = next((row for row in db.execute("PRAGMA database_list").fetchall() if row[1] == "main"), None)
    if main is not None and main[2]:
        homes.add(os.path.dirname(os.path.abspath(main[2])))
    for sha, path in db.execute("select sha256, path from images").fetchall():
        relative = relative_from_layout(path or "", f"images/{sha[:2]}/{sha}") if os.path.isabs(path or "") else None
        if relative is not None and "/" not in relative[len(f"images/{sha[:2]}/") :]:
            homes.add(path[: len(path) - len(relative) - 1])
            db.execute("update images set path = ? where sha256 = ?", [relative, sha])
    for row_id, version, path in db.execute("select id, version, path from router_versions").fetchall():
        relative = relative_from_layout(path or "", f"routers/{version}") if os.path.isabs(path or "") else None
        if relative == f"routers/{version}":
            homes.add(path[: len(path) - len(relative) - 1])
            db.execute("update router_versions set path = ? where id = ?", [relative, row_id])
    for row_id, path in db.execute("select id, path from calibration_sets").fetchall():
        for home in sorted(homes, key=len, reverse=True):
            if path and path.startswith(home.rstrip("/") + "/sets/"):
                db.execute("update calibration_sets set path = ? where id = ?", [path[len(home.rstrip("/")) + 1 :], row_id])
                break


@migrations()
def m005_i19_routing_policy(db: Database) -> None:
    # Append-only history: the newest row is the routing policy `route`, `live-validate` and
    # the TUI start from; older rows say who changed it when.
    db["routing_policies"].create(
        {
            "id": int,
            "lambda_cost": float,
            "lambda_latency": float,
            "source": str,  # "policy set" | "live-validate <model>"
            "reason": str,
            "created_at": str,
        },
        pk="id",
        not_null={"lambda_cost", "lambda_latency", "created_at"},
    )


@migrations()
def m006_i24_gateway_traffic(db: Database) -> None:
    # A model registered with --no-images (or refused an image by the probe) is never sent one.
    db["models"].add_column("accepts_images", int, not_null_default=1)
    # One row per request `lrcal serve` answered (or refused after routing), written by the
    # gateway's log queue; request_id is unique, so a row is never written twice.
    db["traffic"].create(
        {
            "id": int,
            "request_id": str,
            "created_at": str,
            "worker_pid": int,
            "requested_model": str,  # the alias (lrcal/auto) or the concrete name the client sent
            "routed": int,  # 1: the router chose; 0: a concrete model was named
            "router_version": str,
            "features_hash": str,  # sha256 of the query's feature vector (same query, same hash)
            "task": str,  # X-Lrcal-Task, when the client sent one
            "lambda_cost": float,
            "lambda_latency": float,
            "first_choice": str,  # the router's choice (or the model named)
            "utility": float,  # the first choice's utility
            "runner_up": str,
            "runner_up_utility": float,
            "served_model": str,  # the model whose answer the client got; null when none did
            "stream": int,
            "n_images": int,
            "status_code": int,
            "error_kind": str,
            "error_message": str,
            "attempts": int,
            "routing_ms": float,
            "latency_ms": float,
            "ttft_ms": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
        },
        pk="id",
        not_null={"request_id", "created_at"},
    )
    db["traffic"].create_index(["request_id"], unique=True)
    db["traffic"].create_index(["served_model", "created_at"])
    # Every upstream attempt of a request: the first choice and each fallback, with why it was tried.
    db["traffic_attempts"].create(
        {
            "id": int,
            "request_id": str,
            "attempt": int,
            "model": str,
            "reason": str,
            "utility": float,
            "status_code": int,
            "error_kind": str,
            "error_message": str,
            "latency_ms": float,
            "ttft_ms": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "created_at": str,
        },
        pk="id",
        not_null={"request_id", "attempt", "model"},
    )
    db["traffic_attempts"].create_index(["request_id", "attempt"], unique=True)
    # Shadow calls: a copy of a request sent to a candidate; never returned, spend kept apart.
    db["traffic_shadow"].create(
        {
            "id": int,
            "request_id": str,
            "model": str,
            "served_model": str,
            "predicted_mu": float,
            "served_predicted_mu": float,
            "latency_ms": float,
            "ttft_ms": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "error_kind": str,
            "error_message": str,
            "agrees": int,  # 1: same normalized answer as the served one; null when either failed
            "created_at": str,
        },
        pk="id",
        not_null={"request_id", "model"},
    )
    db["traffic_shadow"].create_index(["request_id", "model"], unique=True)
