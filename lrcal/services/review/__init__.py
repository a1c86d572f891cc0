"""The review service: everything `lrcal tui` shows and changes in one home.

`lrcal tui` builds a `ReviewService` and hands it to the app (`LrcalApp(service, ...)`), so
the TUI never opens the store or runs SQL. The app's workers each open a `ReviewSession`
(one SQLite connection, which is not shared between threads) and close it when done::

    service = ReviewService(home)
    with service.connect() as review:
        snap = review.snapshot()
    table = service.route(snap, lambda_cost=0.3)   # no database: instant, so λ re-routes live

Concerns, one module each: `home_state` (counts, what to run next), `models` (the Models
screen), `snapshot` + `snapshot_cache` (the router's output for the routed queries, cached in
the home), `routing` (route and diff with `lrcal.router.policy.policy_choice`), `detail`,
`examples`, `charts`. Their SQL lives in the store (`lrcal.store.review_queries`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, TypeVar

from lrcal import lifecycle
from lrcal.services.review.charts import ScatterPoint, quality_latency_points, validation_frontiers
from lrcal.services.review.detail import ModelDetail, TaskRow, model_detail
from lrcal.services.review.examples import (
    ALL_EXAMPLES,
    DISAGREE,
    EXAMPLE_FILTERS,
    FAILURES,
    ExampleView,
    ModelAnswer,
    examples_for,
)
from lrcal.services.review.home_state import HomeState
from lrcal.services.review.home_state import home_state as _home_state
from lrcal.services.review.models import (
    TOKEN_FITTED,
    TOKEN_NONE,
    TOKEN_STALE,
    TOKEN_TRAINED,
    ModelRow,
    models_table,
)
from lrcal.services.review.routing import Cell, Move, RoutingDiff, RoutingTable, diff, route
from lrcal.services.review.snapshot import RoutingSnapshot
from lrcal.services.review.snapshot import snapshot as _snapshot
from lrcal.store import Store

T = TypeVar("T")


def _on_session_store(query: Callable[..., T]) -> Callable[..., T]:
    """``query(store, ...)`` as a `ReviewSession` method that passes the session's store."""

    @functools.wraps(query)
    def method(self: "ReviewSession", *args: Any, **kwargs: Any) -> T:
        return query(self._store, *args, **kwargs)

    return method


class ReviewSession:
    """The review queries on one open connection; a context manager that closes it."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> "ReviewSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._store.close()

    # The review queries, each run on this session's connection (same arguments, less the store).
    home_state = _on_session_store(_home_state)
    models_table = _on_session_store(models_table)
    snapshot = _on_session_store(_snapshot)
    model_detail = _on_session_store(model_detail)
    examples_for = _on_session_store(examples_for)
    quality_latency_points = _on_session_store(quality_latency_points)
    validation_frontiers = _on_session_store(validation_frontiers)

    def image_bytes(self, sha256: str) -> bytes | None:
        return self._store.image_bytes(sha256)

    def image_path(self, sha256: str) -> str | None:
        """Where the stored image file is (to open it in the system's image viewer)."""
        row = self._store.image_row(sha256)
        return row["path"] if row and row["path"] else None

    def model_state(self, name: str) -> tuple[str, str] | None:
        """(status, source) of ``name`` as the store has it now; None: removed (or unknown)."""
        row = self._store.find_model(name)
        return None if row is None or row["status"] == lifecycle.REMOVED else (row["status"], row["source"])

    def enable(self, name: str, *, force: bool = False, reason: str) -> dict:
        """Enable through the lifecycle (its checks and audit log, where ``reason`` is stored);
        the model's row after."""
        from lrcal.services.models import enable

        return enable(self._store, name, force=force, reason=reason)

    def enable_problem(self, name: str) -> str | None:
        """Why enabling ``name`` needs --force (None: it does not); `lrcal.services.models.enable_problem`."""
        from lrcal.services.models import enable_problem

        return enable_problem(self._store, name)

    def disable(self, name: str, *, reason: str) -> dict:
        from lrcal.services.models import disable

        return disable(self._store, name, reason=reason)


class ReviewService:
    """The review of one home, handed to the TUI. ``connect()`` opens a session (raises
    `LrcalError` when the database cannot be opened); ``route`` / ``diff`` need none."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)

    def connect(self) -> ReviewSession:
        return ReviewSession(Store.open(self.home))

    route = staticmethod(route)
    diff = staticmethod(diff)


__all__ = [
    "ALL_EXAMPLES",
    "DISAGREE",
    "EXAMPLE_FILTERS",
    "FAILURES",
    "TOKEN_FITTED",
    "TOKEN_NONE",
    "TOKEN_STALE",
    "TOKEN_TRAINED",
    "Cell",
    "ExampleView",
    "HomeState",
    "ModelAnswer",
    "ModelDetail",
    "ModelRow",
    "Move",
    "ReviewService",
    "ReviewSession",
    "RoutingDiff",
    "RoutingSnapshot",
    "RoutingTable",
    "ScatterPoint",
    "TaskRow",
]
