"""SQLite connection: WAL, busy timeout, foreign keys, migrations."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator

from sqlite_utils import Database

BUSY_TIMEOUT_S = 30.0


def connect(path: Path | str) -> Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations."""
    from lrcal.store.migrations import migrations

    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    db = Database(conn, execute_plugins=False)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    db.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        db.enable_wal()
        # WAL + NORMAL is durable against process crashes (SIGKILL), which is what we need.
        db.execute("PRAGMA synchronous = NORMAL")
    if migrations.pending(db):
        # Under the write lock, so two processes opening a new home do not both migrate;
        # apply() re-reads what is pending and nests each migration in a savepoint.
        with write_transaction(db):
            migrations.apply(db)
    return db


@contextlib.contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """A short write transaction that takes the write lock up front.

    ``BEGIN IMMEDIATE`` waits on the busy timeout instead of failing with
    ``database is locked`` when another process commits between our read and write.
    """
    conn = db.conn
    if conn.in_transaction:  # nested: join the outer transaction through a savepoint
        with db.atomic():
            yield db
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
