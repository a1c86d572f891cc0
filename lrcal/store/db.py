"""SQLite connection: WAL, busy timeout, foreign keys, migrations."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from pathlib import Path
from typing import Iterator

from sqlite_utils import Database

from lrcal.errors import LrcalError

BUSY_TIMEOUT_S = 30.0


def connect(path: Path | str) -> Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations.

    A database migrated by a newer lrcal (a migration this one does not know) is refused
    before anything is written: its tables may have changed in ways this code cannot see."""
    from lrcal.store.migrations import migrations

    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    db = Database(conn, execute_plugins=False)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    db.execute("PRAGMA foreign_keys = ON")
    check_schema_version(db, str(path))
    if str(path) != ":memory:":
        db.enable_wal()
        # WAL + NORMAL is durable against process crashes (SIGKILL), which is what we need.
        db.execute("PRAGMA synchronous = NORMAL")
    if migrations.pending(db):
        # Under the write lock, so two processes opening a new home do not both migrate;
        # apply() re-reads what is pending and nests each migration in a savepoint.
        with write_transaction(db):
            check_schema_version(db, str(path))
            migrations.apply(db)
    return db


class NewerSchema(LrcalError):
    """The database was migrated by a newer lrcal."""


def schema_version(names: list[str]) -> str:
    """How a schema is named to the user: its number of migrations and the last one."""
    return f"{len(names)} ({names[-1]})" if names else "0 (empty)"


def check_schema_version(db: Database, shown: str) -> None:
    from lrcal.store.migrations import migrations

    known = [m.name for m in migrations._migrations]
    applied = [m.name for m in migrations.applied(db)]
    if not applied:
        foreign = [name for name in db.table_names() if name != migrations.migrations_table]
        if foreign:
            raise NewerSchema(
                f"{shown} is not an lrcal database (it holds tables {', '.join(foreign[:5])}"
                f"{', …' if len(foreign) > 5 else ''} but no lrcal schema); lrcal will not change it: "
                "use another --home"
            )
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise NewerSchema(
            f"{shown} has schema version {schema_version(applied)}, written by a newer lrcal; this lrcal "
            f"knows schema version {schema_version(known)} and will not change the file: upgrade lrcal "
            f"(unknown migration{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)})"
        )


def integrity_problem(db: Database) -> str | None:
    """None when SQLite's quick check passes, else its first finding (one line)."""
    try:
        rows = db.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.DatabaseError as exc:
        return " ".join(str(exc).split())
    findings = [str(row[0]) for row in rows]
    if findings == ["ok"]:
        return None
    return "; ".join(" ".join(f.split()) for f in findings)[:300]


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """A short write transaction that takes the write lock up front.

    ``BEGIN IMMEDIATE`` waits on the busy timeout instead of failing with
    ``database is locked`` when another process commits between our read and write.
    A database that cannot be written (a full disk, an I/O error, a corrupt file) raises
    `StoreWriteError`, one line naming the file, after the transaction is rolled back.
    """
    conn = db.conn
    if conn.in_transaction:  # nested: join the outer transaction through a savepoint
        with db.atomic():
            yield db
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise store_error(conn, exc, "write to") from None
    try:
        yield db
    except BaseException as exc:
        _rollback(conn)
        if is_storage_failure(exc):
            raise store_error(conn, exc, "write to") from None
        raise
    else:
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            raise store_error(conn, exc, "write to") from None


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:  # the disk may refuse even that: SQLite rolls back on the next open
            pass


def is_storage_failure(exc: BaseException) -> bool:
    """A failure of the database file itself (full disk, I/O, corruption, lock timeout), not of our SQL."""
    return type(exc) in (sqlite3.OperationalError, sqlite3.DatabaseError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)
    )


class StoreWriteError(LrcalError):
    """The database file could not be read or written; the message is one line naming it."""


_ADVICE = {
    "full": "free some disk space, then run the same command again (it resumes where it stopped)",
    "disk i/o": "check the disk (full? removed? read-only?), then run the same command again (it resumes)",
    "locked": "another lrcal process held the database for 30 s; try again when it is done",
    "readonly": "the home is read-only; use a writable --home",
    "malformed": "the file is damaged; restore a backup or recover it with `sqlite3 lrcal.db .recover`",
    "not a database": "the file is damaged; restore a backup or recover it with `sqlite3 lrcal.db .recover`",
}


def store_error(conn: sqlite3.Connection, exc: BaseException, verb: str) -> StoreWriteError:
    return StoreWriteError(describe_failure(f"cannot {verb} {database_file(conn)}", exc))


def describe_failure(what: str, exc: BaseException) -> str:
    """``what: <the error>; <what to do>`` on one line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    advice = next((hint for key, hint in _ADVICE.items() if key in text.lower()), None)
    return f"{what}: {text}" + (f"; {advice}" if advice else "")


def database_file(conn: sqlite3.Connection) -> str:
    try:
        for _seq, name, path in conn.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return path or ":memory:"
    except sqlite3.Error:
        pass
    return "the lrcal database"
