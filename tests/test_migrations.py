"""Shipped migrations never change: each one leaves the schema it left when it shipped.

``tests/fixtures/shipped_schema.json`` holds, for every shipped migration in order, the
``sqlite_master`` rows (type, name, table, SQL) of a fresh database migrated up to and including
it, as the code of the day wrote them. A refactor of ``lrcal/store/migrations.py`` must keep every
one of them; a new migration appends its entry once it ships:

    python -c "from tests.test_migrations import schema_after; import json; print(json.dumps(schema_after('m0NN_...')))"
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlite_utils import Database

from lrcal.store.migrations import migrations

SHIPPED = json.loads((Path(__file__).parent / "fixtures" / "shipped_schema.json").read_text(encoding="utf-8"))
NAMES = [m.name for m in migrations._migrations]


def schema_after(name: str) -> list[list[str | None]]:
    """The schema of a fresh in-memory database migrated up to and including ``name``."""
    db = Database(memory=True)
    migrations.apply(db, stop_before=NAMES[NAMES.index(name) + 1 :])
    rows = db.execute("select type, name, tbl_name, sql from sqlite_master order by rowid").fetchall()
    return [list(row) for row in rows]


def test_the_shipped_migrations_come_first_in_their_order():
    assert NAMES[: len(SHIPPED)] == [entry["migration"] for entry in SHIPPED]


@pytest.mark.parametrize("entry", SHIPPED, ids=[entry["migration"] for entry in SHIPPED])
def test_each_shipped_migration_leaves_its_shipped_schema(entry):
    assert schema_after(entry["migration"]) == entry["schema"]
