"""SQLite store (sqlite-utils): connection, migrations, typed queries."""

from lrcal.store.encoding import dumps, loads, utcnow
from lrcal.store.store import Store

__all__ = ["Store", "dumps", "loads", "utcnow"]
