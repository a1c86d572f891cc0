"""A little disk space held in reserve, so that a run stopped by a full disk can still record
that it stopped (the run marked interrupted, its lock released) instead of leaving a run
'running' and a lock row behind.

The reserve is a 1 MiB file in the home, made when the store is opened and space allows. When
a bookkeeping write fails, the reserve is deleted and the write tried once more; the next open
makes it again.
"""

from __future__ import annotations

import os
from pathlib import Path

RESERVE_NAME = ".lrcal-reserve"
RESERVE_BYTES = 1 << 20


def ensure_reserve(home: Path) -> None:
    """Best effort: a read-only or full disk simply has no reserve."""
    path = Path(home) / RESERVE_NAME
    try:
        if path.is_file() and path.stat().st_size >= RESERVE_BYTES:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    try:
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)  # real blocks, not a sparse file
        except (AttributeError, OSError):
            os.ftruncate(fd, 0)
            os.write(fd, b"\0" * RESERVE_BYTES)
    except OSError:
        os.close(fd)
        release_reserve(home)
        return
    os.close(fd)


def release_reserve(home: Path | None) -> bool:
    """Delete the reserve; True if there was one to free."""
    if home is None:
        return False
    try:
        os.unlink(Path(home) / RESERVE_NAME)
    except OSError:
        return False
    return True
