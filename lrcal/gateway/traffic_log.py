"""The traffic log's writer: request handlers put rows on a queue (never blocking the event
loop on SQLite); one thread per worker writes them in batches, one transaction each.

A batch that fails to commit (the database busy for longer than its 30 s timeout, a full disk)
is kept and tried again; rows are only dropped when the gateway stops while the database still
refuses them, and the count of those is logged.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lrcal.store.db import StoreWriteError

log = logging.getLogger("lrcal.gateway")

BATCH_ROWS = 500
FLUSH_S = 0.05  # a row waits at most this long for its batch
RETRY_S = 0.5
STOP_TRIES = 10  # when stopping: how many more times a refused batch is tried


@dataclass
class Entry:
    request: dict | None = None
    attempts: list[dict] = field(default_factory=list)
    shadow: dict | None = None


_STOP = object()


class TrafficLog:
    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.dropped = 0
        self.failures = 0

    def start(self) -> "TrafficLog":
        self._thread = threading.Thread(target=self._run, name="lrcal-traffic-log", daemon=True)
        self._thread.start()
        return self

    def put(self, entry: Entry) -> None:
        """Queue one request's rows (returns at once)."""
        self._queue.put(entry)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self) -> None:
        from lrcal.store import Store

        store = Store.open(self.home)
        pending: list[Entry] = []
        stopping, tries_left = False, STOP_TRIES
        try:
            while True:
                stopping = self._collect(pending, stopping) or stopping
                if not pending:
                    if stopping:
                        return
                    continue
                if self._write(store, pending) or not stopping:
                    continue
                tries_left -= 1
                if tries_left <= 0:
                    self.dropped += sum(1 for e in pending if e.request is not None)
                    log.error("traffic log: %d request rows could not be written to %s", self.dropped, self.home)
                    return
        finally:
            store.close()

    def _collect(self, pending: list[Entry], stopping: bool) -> bool:
        """Add queued entries to ``pending`` (waiting up to FLUSH_S for the first unless
        stopping); True when the stop sign was read."""
        deadline = time.monotonic() + FLUSH_S
        while len(pending) < BATCH_ROWS:
            timeout = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 and not stopping else self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            pending.append(item)
        return False

    def _write(self, store, pending: list[Entry]) -> bool:
        try:
            _record(store, pending)
        except _STORAGE_FAILURES as exc:  # busy, locked, disk full: keep the rows, try again
            return self._retry_later(pending, exc)
        except Exception as exc:  # noqa: BLE001 - a row the database refuses: never retried forever
            # one entry at a time, so that one bad row cannot hold back the others for good
            log.warning("traffic log: a batch of %d rows was refused (%s); writing them one by one", len(pending), exc)
            while pending:
                entry = pending[0]
                try:
                    _record(store, [entry])
                except _STORAGE_FAILURES as again:  # the database itself: this entry and the rest wait
                    return self._retry_later(pending, again)
                except Exception as one:  # noqa: BLE001
                    self.dropped += 1 if entry.request is not None else 0
                    log.error("traffic log: dropped the rows of request %s (%s)",
                              (entry.request or {}).get("request_id"), one)
                else:
                    self.written += 1 if entry.request is not None else 0
                pending.pop(0)
            return True
        self.written += sum(1 for e in pending if e.request is not None)
        pending.clear()
        return True

    def _retry_later(self, pending: list[Entry], exc: BaseException) -> bool:
        self.failures += 1
        log.warning("traffic log: cannot write %d rows yet (%s); retrying", len(pending), exc)
        time.sleep(RETRY_S)
        return False


# the database file refusing (busy past its timeout, full disk, I/O): transient, retried; the
# store's write transaction reports these as StoreWriteError
_STORAGE_FAILURES = (StoreWriteError, sqlite3.OperationalError)


def _record(store, entries: list[Entry]) -> None:
    store.record_traffic(
        [e.request for e in entries if e.request is not None],
        [row for e in entries for row in e.attempts],
        [e.shadow for e in entries if e.shadow is not None],
    )
