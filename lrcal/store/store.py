"""Typed queries over the lrcal SQLite database.

Every write is a short transaction (``write_transaction``) so that several lrcal
processes can share one home. Outcomes are written one per example as they finish;
``UNIQUE(run_id, example_id)`` makes a resumed run idempotent.

No SQL lives outside ``lrcal/store`` (tests/test_architecture.py checks it): the queries of
router versions and tokens, of outcome aggregates, of imported logs, of the routing policy and of the
gateway's traffic log are mixins beside this module (``routers``, ``aggregates``, ``outcome_logs``,
``policies``, ``traffic``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator, Sequence

from sqlite_utils import Database

from lrcal import lifecycle
from lrcal.errors import LrcalError, NotFound
from lrcal.home import db_path
from lrcal.store.browse_queries import OutcomeBrowsing
from lrcal.store.aggregates import IMPORTED_ERROR, QUERY_KEY, OutcomeAggregates, runs_not_in
from lrcal.store.db import (
    StoreWriteError,
    connect,
    describe_failure,
    integrity_problem,
    is_storage_failure,
    store_error,
    write_transaction,
)
from lrcal.store.encoding import dumps, loads, utcnow
from lrcal.store.model_admin import ModelAdmin
from lrcal.store.model_endpoint import ModelEndpoint
from lrcal.store.outcome_logs import OutcomeLogWrites
from lrcal.store.paths import from_stored, to_stored
from lrcal.store.policies import PolicyQueries
from lrcal.store.reserve import ensure_reserve, release_reserve
from lrcal.store.review_queries import IN_LIST_CHUNK, ReviewQueries, sql_marks
from lrcal.store.routers import RouterQueries
from lrcal.store.traffic import TrafficQueries

MIME_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}

# The JSON columns of the tables read whole (``select *``), and what an empty one reads as.
JSON_COLUMNS: dict[str, dict[str, Any]] = {
    "models": {"metadata": {}},
    "calibration_sets": {"task_groups": []},
    "examples": {"choices": None, "metadata": {}},
    "runs": {"parameters": {}},
}


def decoded(table: str, row: dict) -> dict:
    """``row`` of ``table`` with its JSON columns decoded, in place (an empty one: a fresh default)."""
    for column, default in JSON_COLUMNS[table].items():
        row[column] = loads(row[column], copy.copy(default))
    return row


class Store(ReviewQueries, RouterQueries, OutcomeAggregates, OutcomeLogWrites, OutcomeBrowsing, ModelAdmin, PolicyQueries,
            TrafficQueries):
    """The lrcal database of one home directory."""

    def __init__(self, db: Database, home: Path | None = None):
        self.db = db
        self.home = home

    # ---- opening -------------------------------------------------------------

    @classmethod
    def open(cls, home: Path) -> "Store":
        home = Path(home)
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LrcalError(f"cannot create home directory {home}: {exc.strerror}") from None
        try:
            db = connect(db_path(home))
        except LrcalError:
            raise
        except Exception as exc:  # sqlite3.DatabaseError on a corrupt file, permissions, a full disk...
            raise LrcalError(describe_failure(f"cannot open database {db_path(home)}", exc)) from None
        ensure_reserve(home)
        return cls(db, home)

    @classmethod
    def empty(cls) -> "Store":
        """An empty in-memory store without a home (read-only views when no home exists yet)."""
        return cls(connect(":memory:"), None)

    def integrity_problem(self) -> str | None:
        """SQLite's quick check: None when the file is sound, else what it found."""
        return integrity_problem(self.db)

    def close(self) -> None:
        self.db.conn.close()

    # ---- paths (stored relative to the home: a home can be moved) ------------------------

    def stored_path(self, path: str | os.PathLike[str] | None) -> str | None:
        """The text a ``path`` column holds for ``path``: relative when inside the home."""
        return to_stored(self.home, path)

    def absolute_path(self, stored: str | None) -> str | None:
        """The absolute path a ``path`` column names."""
        return from_stored(self.home, stored)

    def _with_path(self, row: dict | None) -> dict | None:
        if row is not None and "path" in row:
            row["path"] = self.absolute_path(row["path"])
        return row

    def write(self):
        return write_transaction(self.db)

    def must_write(self, write: Callable[[], Any]) -> Any:
        """A small bookkeeping write that must happen even on a full disk (a run marked
        interrupted, a lock released): if it fails, the home's reserve is freed and it is
        tried once more."""
        try:
            return write()
        except StoreWriteError:
            if not release_reserve(self.home):
                raise
            return write()

    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[dict]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.Error as exc:
            if is_storage_failure(exc):
                raise store_error(self.db.conn, exc, "read") from None
            raise

    def query_one(self, sql: str, params: Sequence[Any] | dict = ()) -> dict | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    # ---- events (append-only audit log) -------------------------------------------

    def log_event(self, kind: str, *, model_id: int | None = None, message: str = "", data: Any = None) -> None:
        with self.write():
            self.db["events"].insert(
                {"ts": utcnow(), "model_id": model_id, "kind": kind, "message": message, "data": dumps(data)}
            )

    def events(self, model: str | None = None, limit: int | None = None) -> list[dict]:
        sql = (
            "select e.id, e.ts, m.name as model, e.kind, e.message, e.data from events e "
            "left join models m on m.id = e.model_id"
        )
        params: list[Any] = []
        if model is not None:
            sql += " where m.name = ?"
            params.append(model)
        sql += " order by e.id desc"
        if limit:
            sql += f" limit {int(limit)}"
        rows = self.query(sql, params)
        for row in rows:
            row["data"] = loads(row["data"], {})
        return rows

    # ---- models ---------------------------------------------------------------------

    def add_model(
        self,
        name: str,
        endpoint: ModelEndpoint,
        *,
        metadata: dict | None = None,
        source: str = "endpoint",
        status: str = lifecycle.REGISTERED,
    ) -> dict:
        now = utcnow()
        with self.write():
            self.refuse_taken_name(name)
            model_id = (
                self.db["models"]
                .insert(
                    {
                        "name": name,
                        **endpoint.columns(name),
                        "status": status,
                        "source": source,
                        "created_at": now,
                        "updated_at": now,
                        "metadata": dumps(metadata or {}),
                    }
                )
                .last_pk
            )
            self.db["events"].insert(
                {
                    "ts": now,
                    "model_id": model_id,
                    "kind": "added" if source == "endpoint" else "imported",
                    "message": f"{name} added ({endpoint.base_url or source})",
                    "data": dumps({"api_style": endpoint.api_style, "api_key_env": endpoint.api_key_env}),
                }
            )
        return self.get_model(name)

    def _row_by_id(self, table: str, row_id: int, what: str) -> dict:
        """The row of ``table`` with this id, decoded; `NotFound` ("unknown {what} {id}") when none."""
        row = self.query_one(f"select * from {table} where id = ?", [row_id])
        if row is None:
            raise NotFound(f"unknown {what} {row_id}")
        return decoded(table, row)

    def find_model(self, name: str) -> dict | None:
        row = self.query_one("select * from models where name = ?", [name])
        return decoded("models", row) if row is not None else None

    def refuse_taken_name(self, name: str) -> None:
        """`LrcalError` when a model is stored under ``name``, or under it but for case (clients,
        the gateway's `model` field and outcome logs would confuse the two)."""
        if self.find_model(name) is not None:
            raise LrcalError(f"a model named '{name}' already exists (see `lrcal models`)")
        twin = self.model_named_alike(name)
        if twin is not None:
            raise LrcalError(f"a model named '{twin}' already exists; names differing only in case are refused "
                             f"(see `lrcal models`)")

    def model_named_alike(self, name: str) -> str | None:
        """The stored model whose name equals ``name`` but for case (None: none)."""
        folded = name.casefold()
        for row in self.query("select name from models order by id"):
            if row["name"].casefold() == folded and row["name"] != name:
                return row["name"]
        return None

    def get_model(self, name: str) -> dict:
        row = self.find_model(name)
        if row is None:
            alike = self.model_named_alike(name)
            if alike is not None:
                raise NotFound(f"unknown model '{name}' (did you mean '{alike}'?)")
            known = [r["name"] for r in self.query("select name from models order by id")]
            hint = f" (known: {', '.join(known[:12])}{'…' if len(known) > 12 else ''})" if known else ""
            raise NotFound(f"unknown model '{name}'{hint}")
        return row

    def get_model_by_id(self, model_id: int) -> dict:
        return self._row_by_id("models", model_id, "model id")

    def list_models(self, statuses: Iterable[str] | None = None, *, include_removed: bool = False) -> list[dict]:
        """Models in order of registration; removed ones (kept for audit) only when asked for."""
        sql = "select * from models where 1=1"
        params: list[Any] = []
        if statuses is not None:
            statuses = list(statuses)
            sql += f" and status in ({','.join('?' * len(statuses))})"
            params = statuses
        if not include_removed:
            sql += " and status != ?"
            params.append(lifecycle.REMOVED)
        return [decoded("models", row) for row in self.query(sql + " order by id", params)]

    def update_model(self, name: str, **fields: Any) -> dict:
        model = self.get_model(name)
        if "metadata" in fields:
            fields["metadata"] = dumps(fields["metadata"])
        fields["updated_at"] = utcnow()
        with self.write():
            self.db["models"].update(model["id"], fields)
        return self.get_model(name)

    def set_status(
        self,
        name: str,
        new_status: str,
        *,
        force: bool = False,
        reason: str = "",
        event_kind: str | None = None,
        data: Any = None,
        bypassed: str | None = None,
    ) -> dict:
        """Move a model along its lifecycle; refused transitions need ``force`` (recorded).
        ``bypassed``: a rule above the lifecycle that ``force`` set aside (enable without a passed
        live validation): the change is recorded as forced, with that rule, like a refused one."""
        with self.write():
            model = self.get_model(name)
            current = model["status"]
            allowed = lifecycle.can_transition(current, new_status)
            if not allowed and not force:
                raise LrcalError(lifecycle.explain_refusal(name, current, new_status))
            if current in (lifecycle.IMPORTED, lifecycle.REMOVED):
                raise LrcalError(lifecycle.explain_refusal(name, current, new_status))
            now = utcnow()
            self.db["models"].update(model["id"], {"status": new_status, "updated_at": now})
            forced = bool(force and (not allowed or bypassed))
            payload = {"from": current, "to": new_status, "forced": forced}
            if forced and bypassed:
                payload["bypassed"] = bypassed
            if data:
                payload.update(data)
            message = reason or f"{current} → {new_status}"
            if forced:
                message = f"FORCED {current} → {new_status}" + (f": {reason}" if reason else "")
            self.db["events"].insert(
                {
                    "ts": now,
                    "model_id": model["id"],
                    "kind": event_kind or new_status,
                    "message": message,
                    "data": dumps(payload),
                }
            )
        return self.get_model(name)

    # ---- images (content-addressed) -------------------------------------------------

    def images_dir(self) -> Path:
        if self.home is None:
            raise LrcalError("this store has no home directory for images")
        return self.home / "images"

    def put_image(self, data: bytes, mime: str | None = None, width: int | None = None, height: int | None = None) -> str:
        """Store image bytes once, keyed by sha256; returns the hash."""
        row = self._image_file(data, mime, width, height)
        if row is not None:
            with self.write():
                self.db["images"].upsert(row, pk="sha256")
        return hashlib.sha256(data).hexdigest()

    def _image_file(
        self, data: bytes, mime: str | None = None, width: int | None = None, height: int | None = None
    ) -> dict | None:
        """Write the content-addressed file; returns the images row to upsert (None if already stored)."""
        sha = hashlib.sha256(data).hexdigest()
        existing = self.image_row(sha)
        if existing is not None and existing["path"] and Path(existing["path"]).exists():
            return None
        mime = mime or sniff_mime(data)
        path = self.images_dir() / sha[:2] / (sha + MIME_EXTENSIONS.get(mime, ".bin"))
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        if width is None or height is None:
            width, height = image_size(data)
        return {"sha256": sha, "path": self.stored_path(path), "mime": mime, "width": width, "height": height, "bytes": len(data)}

    def image_bytes(self, sha: str) -> bytes | None:
        """The image's bytes; None when its file is missing or no longer holds that image (a
        damaged or replaced file must never be sent as the example's image)."""
        row = self.image_row(sha)
        if row is None or not row["path"]:
            return None
        try:
            data = Path(row["path"]).read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == sha else None

    def image_sizes(self, shas: Sequence[str]) -> dict[str, tuple[int | None, int | None]]:
        """sha -> (width, height) as read from the file's header when stored, for the known ``shas``."""
        out: dict[str, tuple[int | None, int | None]] = {}
        shas = list(dict.fromkeys(shas))
        for start in range(0, len(shas), IN_LIST_CHUNK):
            chunk = shas[start:start + IN_LIST_CHUNK]
            for row in self.query(f"select sha256, width, height from images where sha256 in ({sql_marks(chunk)})", chunk):
                out[row["sha256"]] = (row["width"], row["height"])
        return out

    def image_row(self, sha: str) -> dict | None:
        """The images row of ``sha`` (``path`` absolute), None if unknown."""
        return self._with_path(self.query_one("select * from images where sha256 = ?", [sha]))

    # ---- calibration sets and examples ----------------------------------------------

    def register_set(self, cset: Any, kind: str = "calibration") -> dict:
        """Record a loaded ``CalibrationSet`` (idempotent on name + version)."""
        existing = self.query_one(
            "select * from calibration_sets where name = ? and version = ?", [cset.name, cset.version]
        )
        if existing is not None:
            return self._set_row(existing)
        image_rows: dict[str, dict] = {}
        for ex in cset.examples:
            if ex.image_path is None or ex.image_sha256 in image_rows:
                continue
            data = Path(ex.image_path).read_bytes()
            if ex.image_sha256 and hashlib.sha256(data).hexdigest() != ex.image_sha256:
                raise LrcalError(f"{ex.image_path}: image changed while the set was being registered")
            row = self._image_file(data)
            if row is not None:
                image_rows[row["sha256"]] = row
        with self.write():
            if image_rows:
                self.db["images"].upsert_all(image_rows.values(), pk="sha256")
            again = self.query_one(
                "select * from calibration_sets where name = ? and version = ?", [cset.name, cset.version]
            )
            if again is not None:  # another process registered it meanwhile
                return self._set_row(again)
            set_id = (
                self.db["calibration_sets"]
                .insert(
                    {
                        "name": cset.name,
                        "version": cset.version,
                        "path": self.stored_path(cset.path),
                        "task_groups": dumps(list(cset.task_groups)),
                        "size": len(cset.examples),
                        "kind": kind,
                        "created_at": utcnow(),
                    }
                )
                .last_pk
            )
            self.db["examples"].insert_all(
                (
                    {
                        "set_id": set_id,
                        "example_id": ex.id,
                        "task_group": ex.task_group,
                        "question": ex.question,
                        "answer": ex.answer,
                        "answer_type": ex.answer_type,
                        "choices": dumps(list(ex.choices) if ex.choices else None),
                        "tolerance": ex.tolerance,
                        "image_sha256": ex.image_sha256,
                        "metadata": dumps(dict(ex.meta or {})),
                    }
                    for ex in cset.examples
                ),
                batch_size=500,
            )
        return self.get_set(cset.name, cset.version)

    def _set_row(self, row: dict) -> dict:
        return self._with_path(decoded("calibration_sets", row))

    def find_set(self, name: str, version: str | None = None) -> dict | None:
        if version:
            row = self.query_one(
                "select * from calibration_sets where name = ? and (version = ? or version like ?) order by id desc",
                [name, version, version + "%"],
            )
        else:
            row = self.query_one("select * from calibration_sets where name = ? order by id desc", [name])
        return self._set_row(row) if row else None

    def get_set(self, name: str, version: str | None = None) -> dict:
        row = self.find_set(name, version)
        if row is None:
            raise NotFound(f"unknown calibration set '{name}'" + (f" version {version}" if version else ""))
        return row

    def get_set_by_id(self, set_id: int) -> dict:
        return self._with_path(self._row_by_id("calibration_sets", set_id, "calibration set id"))

    def list_sets(self) -> list[dict]:
        return [self._set_row(r) for r in self.query("select * from calibration_sets order by id")]

    def set_examples(self, set_id: int) -> list[dict]:
        rows = self.query("select * from examples where set_id = ? order by id", [set_id])
        return [decoded("examples", row) for row in rows]

    def example(self, example_pk: int) -> dict:
        return self._row_by_id("examples", example_pk, "example")

    # ---- runs and outcomes --------------------------------------------------------

    def create_run(self, model_id: int, set_id: int, kind: str, parameters: dict | None = None) -> int:
        """A run this process starts now (status ``running``); returns its id."""
        return self._insert_row("runs", model_id=model_id, set_id=set_id, kind=kind, status="running",
                                started_at=utcnow(), parameters=dumps(parameters or {}), pid=os.getpid())  # fmt: skip

    def latest_run(self, model_id: int, set_id: int, kind: str) -> dict | None:
        row = self.query_one(
            "select * from runs where model_id = ? and set_id = ? and kind = ? order by id desc limit 1",
            [model_id, set_id, kind],
        )
        return decoded("runs", row) if row else None

    def get_run(self, run_id: int) -> dict:
        return self._row_by_id("runs", run_id, "run")

    def runs(self, model_id: int | None = None, kind: str | None = None) -> list[dict]:
        sql, params = "select * from runs where 1=1", []
        if model_id is not None:
            sql += " and model_id = ?"
            params.append(model_id)
        if kind is not None:
            sql += " and kind = ?"
            params.append(kind)
        return [decoded("runs", row) for row in self.query(sql + " order by id", params)]

    def update_run(self, run_id: int, **fields: Any) -> None:
        if "parameters" in fields:
            fields["parameters"] = dumps(fields["parameters"])
        with self.write():
            self.db["runs"].update(run_id, fields)

    def finish_run(self, run_id: int, status: str = "completed") -> None:
        self.update_run(run_id, status=status, finished_at=utcnow())

    def mark_interrupted(self, run_id: int) -> None:
        """Record that a run stopped before its end (even on a full disk: `must_write`)."""
        self.must_write(lambda: self.update_run(run_id, status="interrupted"))

    def record_outcome(self, run_id: int, example_pk: int, fields: dict, *, replace_error: bool = False) -> bool:
        """Insert one outcome; returns False if this run already has one for the example.

        ``replace_error``: an outcome of this run that records an endpoint error is replaced
        (answers are never replaced)."""
        row = {
            "run_id": run_id,
            "example_id": example_pk,
            "created_at": utcnow(),
            **fields,
        }
        if isinstance(row.get("retried_errors"), (list, tuple)):
            row["retried_errors"] = dumps(list(row["retried_errors"]))
        with self.write():
            if replace_error:
                self.db.execute(
                    "delete from outcomes where run_id = ? and example_id = ? and error_kind is not null "
                    "and error_kind != ?",
                    [run_id, example_pk, IMPORTED_ERROR],
                )
            cursor = self.db.execute(
                f"insert or ignore into outcomes ({', '.join(row)}) values ({', '.join('?' * len(row))})",
                list(row.values()),
            )
            return cursor.rowcount == 1

    def error_example_pks(self, run_id: int) -> set[int]:
        """Examples whose outcome in this run is an endpoint error (what `--retry-errors` asks again)."""
        return {
            r["example_id"]
            for r in self.query(
                "select example_id from outcomes where run_id = ? and error_kind is not null "
                "and error_kind != ?",
                [run_id, IMPORTED_ERROR],
            )
        }

    def runs_with_outcomes(self, kind: str) -> set[int]:
        """The runs of ``kind`` that have at least one outcome."""
        return {r["run_id"] for r in self.query(
            "select distinct run_id from outcomes where run_id in (select id from runs where kind = ?)", [kind])}

    def done_example_pks(self, run_id: int) -> set[int]:
        return {r["example_id"] for r in self.query("select example_id from outcomes where run_id = ?", [run_id])}

    def run_outcomes(self, run_id: int) -> list[dict]:
        rows = self.query(
            "select o.*, e.example_id as example_name, e.task_group, e.question, e.answer, e.answer_type, "
            "e.image_sha256 from outcomes o join examples e on e.id = o.example_id "
            "where o.run_id = ? order by e.id",
            [run_id],
        )
        for row in rows:
            row["retried_errors"] = loads(row["retried_errors"], [])
        return rows

    def model_outcomes(
        self, model_id: int, *, set_id: int | None = None, kinds: Sequence[str] | None = None,
        left_out_runs: Collection[int] = (),
    ) -> list[dict]:
        """The latest outcome per query (``query_key``, `QUERY_KEY`: the same example stored in two
        sets is one query) for a model, across runs, optionally limited to a set / run kinds;
        ``left_out_runs``: run ids whose outcomes do not count (`lrcal.services.calibration_basis`)."""
        sql = (
            "select o.*, r.kind as run_kind, r.set_id, e.example_id as example_name, e.task_group, e.question, "
            f"e.answer, e.answer_type, e.image_sha256, e.metadata as example_metadata, {QUERY_KEY} as query_key "
            "from outcomes o join runs r on r.id = o.run_id join examples e on e.id = o.example_id "
            "join calibration_sets s on s.id = e.set_id where r.model_id = ?"
        )
        params: list[Any] = [model_id]
        if set_id is not None:
            sql += " and r.set_id = ?"
            params.append(set_id)
        if kinds:
            sql += f" and r.kind in ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        left_out, left_out_params = runs_not_in(left_out_runs)
        sql += left_out
        params.extend(left_out_params)
        sql += " order by o.id"
        latest: dict[str, dict] = {}
        for row in self.query(sql, params):
            row["retried_errors"] = loads(row["retried_errors"], [])
            row["example_metadata"] = loads(row["example_metadata"], {})
            latest[row["query_key"]] = row  # later rows win
        return list(latest.values())

    # ---- validations ------------------------------------------------------------------

    def add_validation(
        self,
        model_id: int,
        set_id: int,
        *,
        router_version: str,
        decision: str,
        reasons: list[str],
        parameters: dict,
        results: dict,
    ) -> None:
        """Record a live validation: the gate's decision, its reasons, parameters and every number behind it."""
        self._insert_row("validations", model_id=model_id, set_id=set_id, router_version=router_version,
                         decision=decision, reasons=dumps(reasons), parameters=dumps(parameters),
                         results=dumps(results), created_at=utcnow())  # fmt: skip

    def _insert_row(self, table: str, **columns: Any) -> int:
        """One row in its own transaction (or the caller's); returns its id."""
        with self.write():
            return self.db[table].insert(columns).last_pk

    # ---- locks (one calibration/validation per model at a time) ------------------------

    @contextlib.contextmanager
    def lock(self, name: str, purpose: str = "") -> Iterator[None]:
        """A lock recorded in the store: released on exit, stale once its pid is gone."""
        host = socket.gethostname()
        with self.write():
            row = self.query_one("select * from locks where name = ?", [name])
            if row is not None:
                alive = row["host"] == host and _pid_alive(row["pid"]) and row["pid"] != os.getpid()
                if alive:
                    raise LrcalError(
                        f"{name} is already running in process {row['pid']} (started {row['acquired_at']}); "
                        "wait for it to finish or stop it"
                    )
                self.db["locks"].delete(name)
            self.db["locks"].insert(
                {"name": name, "pid": os.getpid(), "host": host, "acquired_at": utcnow(), "purpose": purpose}
            )
        def release() -> None:
            with self.write():
                self.db.execute("delete from locks where name = ? and pid = ?", [name, os.getpid()])

        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            try:
                self.must_write(release)
            except StoreWriteError:
                if not failed:
                    raise
                # The run is failing already (its one-line error is on its way); the lock row stays
                # behind but is stale: its pid is gone, and the next run takes it over.


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped) holds no lock.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except OSError:
        return True


def sniff_mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "application/octet-stream"


def image_size(data: bytes) -> tuple[int | None, int | None]:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:
        return None, None
