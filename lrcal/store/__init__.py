"""SQLite store (sqlite-utils): connection, migrations, typed queries."""

from lrcal.store.store import Store, loads, utcnow

__all__ = ["Store", "loads", "utcnow"]
