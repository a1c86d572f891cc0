"""Copy a validated set: exactly the files its manifest names, as regular files.

`lrcal sets import` used to copy the whole folder, following symlinks: files the manifest
never names came along (a link to /etc/passwd, the parent folder through ``up -> ..``, a FIFO
or /dev/zero that never ends). Here nothing is walked: the manifest, ``set.json`` and each
image the manifest names are read through the loader's checks (a regular file inside the set
folder, within the size limits) and written anew; an image that changed since it was
validated is refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath

from lrcal.calsets import images as _images
from lrcal.calsets.format import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    MAX_SET_INFO_BYTES,
    SET_INFO_NAME,
    CalibrationSet,
    SetError,
)


def set_files(cset: CalibrationSet) -> dict[str, tuple[Path, int]]:
    """relative path in the set -> (real path, size in bytes) of every file a copy holds."""
    files: dict[str, tuple[Path, int]] = {}
    for name, limit in ((MANIFEST_NAME, MAX_MANIFEST_BYTES), (SET_INFO_NAME, MAX_SET_INFO_BYTES)):
        path = cset.path / name
        size = _regular_file_size(path, name, limit, required=name == MANIFEST_NAME)
        if size is not None:
            files[name] = (path, size)
    for example in cset.examples:
        if example.image is None or example.image_path is None:
            continue
        relative = PurePosixPath(example.image).as_posix()
        if relative not in files:
            size = _regular_file_size(example.image_path, relative, None, required=True)
            files[relative] = (example.image_path, size or 0)
    return files


def copy_set_files(cset: CalibrationSet, destination: Path) -> int:
    """Write the set's files into the new directory ``destination``; returns the bytes written."""
    expected = {PurePosixPath(ex.image).as_posix(): ex.image_sha256 for ex in cset.examples if ex.image is not None}
    written = 0
    for relative, (source, _size) in set_files(cset).items():
        if relative in (MANIFEST_NAME, SET_INFO_NAME):
            data = _read_regular(source, relative, MAX_MANIFEST_BYTES if relative == MANIFEST_NAME else MAX_SET_INFO_BYTES)
        else:
            try:
                data = _images.read_checked_bytes(source, relative)
            except _images.ImageProblem as exc:
                raise SetError(exc.message) from None
            wanted = expected.get(relative)
            if wanted is not None and hashlib.sha256(data).hexdigest() != wanted:
                raise SetError(f"image {relative!r} changed while the set was being imported")
        target = destination.joinpath(*PurePosixPath(relative).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as handle:  # a new file: never through a symlink, never over one
            handle.write(data)
        written += len(data)
    return written


def _regular_file_size(path: Path, shown: str, limit: int | None, *, required: bool) -> int | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if required:
            raise SetError(f"{shown} does not exist") from None
        return None
    except OSError as exc:
        raise SetError(f"{shown} cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise SetError(f"{shown} is not a regular file")
    if limit is not None and st.st_size > limit:
        raise SetError(f"{shown} is larger than {limit >> 20} MiB")
    return st.st_size


def _read_regular(path: Path, shown: str, limit: int) -> bytes:
    _regular_file_size(path, shown, limit, required=True)
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SetError(f"{shown} grew beyond {limit >> 20} MiB while it was read")
    return data
