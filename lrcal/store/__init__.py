"""SQLite store (sqlite-utils): connection, migrations, typed queries."""

from lrcal.store.encoding import dumps, loads, utcnow
from lrcal.store.model_endpoint import ModelEndpoint
from lrcal.store.store import IMPORTED_ERROR, Store

__all__ = ["IMPORTED_ERROR", "ModelEndpoint", "Store", "dumps", "loads", "utcnow"]
