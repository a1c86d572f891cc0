"""Calibration sets in the store: load from disk, register, select examples."""

from __future__ import annotations

from dataclasses import dataclass

from lrcal.store import Store


@dataclass
class RegisteredSet:
    row: dict  # calibration_sets row
    examples: list[dict]  # examples rows (all of them, in set order)

    @property
    def id(self) -> int:
        return self.row["id"]

    @property
    def name(self) -> str:
        return self.row["name"]

    @property
    def version(self) -> str:
        return self.row["version"]


def ensure_set(store: Store, name_or_path: str, check=None) -> RegisteredSet:
    """Load a calibration set from disk (built-in name, home set or path) and register it.

    A set already in the store under that name with the same content is reused. ``check``: called
    with the loaded set before anything is stored (a usage error there stores nothing).
    """
    from pathlib import Path

    from lrcal.calsets import BUILTIN_SET_NAMES, load_set, resolve_set
    from lrcal.calsets.resolve import builtin_sets_dirs
    from lrcal.errors import LrcalError

    path = resolve_set(name_or_path, store.home)
    cset = load_set(path)
    # A set is found by its name: one that takes a built-in set's name, or an imported outcome
    # log's, would hide it (`outcomes --set`, the TUI, the gate's holdout check).
    if cset.name in BUILTIN_SET_NAMES and Path(path).resolve() not in {
            (root / cset.name).resolve() for root in builtin_sets_dirs()}:
        raise LrcalError(f"{path}: the set is named '{cset.name}', a built-in set's name; rename it "
                         "(`lrcal sets import PATH --name NEW`)")
    if any(row["name"] == cset.name and row["kind"] == "imported" for row in store.list_sets()):
        raise LrcalError(f"{path}: the set is named '{cset.name}', like an imported outcome log in this home; "
                         "rename it (`lrcal sets import PATH --name NEW`)")
    if check is not None:
        check(cset)
    row = store.register_set(cset)
    return RegisteredSet(row=row, examples=store.set_examples(row["id"]))


def stratified_subset(examples: list[dict], limit: int | None) -> list[dict]:
    """Up to ``limit`` stored examples, stratified like ``lrcal.calsets.stratified_subset``
    (so ``--limit 64`` on builtin-v1 selects the builtin-v1-quick examples)."""
    from types import SimpleNamespace

    from lrcal.calsets import stratified_subset as subset_of_examples

    if limit is None or limit >= len(examples):
        return list(examples)
    views = [
        SimpleNamespace(task_group=ex["task_group"], subtype=(ex.get("metadata") or {}).get("subtype"), row=ex)
        for ex in examples
    ]
    return [view.row for view in subset_of_examples(views, limit)]


def available_sets(store: Store) -> list[dict]:
    """Built-in sets, sets imported into the home, and sets registered in the store."""
    from lrcal.calsets import builtin_set_names, load_set, resolve_set
    from lrcal.calsets.resolve import home_set_names

    rows: dict[str, dict] = {}
    for source, names in (("builtin", builtin_set_names()), ("home", home_set_names(store.home))):
        for name in names:
            try:
                cset = load_set(resolve_set(name, store.home))
            except Exception as exc:  # a broken set is listed, not fatal
                rows[name] = {"name": name, "source": source, "examples": None, "version": None,
                              "task_groups": {}, "problem": str(exc)}  # fmt: skip
                continue
            rows[name] = {"name": name, "source": source, "examples": len(cset), "version": cset.version,
                          "task_groups": cset.group_counts()}  # fmt: skip
    for row in store.list_sets():
        if row["name"] in rows:
            continue
        counts = {group or "(none)": n for group, n in store.task_group_counts(row["id"]).items()}
        rows[row["name"]] = {"name": row["name"], "source": f"store ({row['kind']})", "examples": row["size"],
                             "version": row["version"], "task_groups": counts}  # fmt: skip
    return list(rows.values())


def describe_set(store: Store, name_or_path: str, n_examples: int = 5) -> dict:
    from lrcal.calsets import load_set, resolve_set

    cset = load_set(resolve_set(name_or_path, store.home))
    groups: dict[str, dict] = {}
    for ex in cset.examples:
        g = groups.setdefault(ex.task_group, {"n": 0, "subtypes": [], "answer_types": []})
        g["n"] += 1
        if ex.subtype and ex.subtype not in g["subtypes"]:
            g["subtypes"].append(ex.subtype)
        if ex.answer_type not in g["answer_types"]:
            g["answer_types"].append(ex.answer_type)
    return {
        "name": cset.name,
        "path": str(cset.path),
        "version": cset.version,
        "description": getattr(cset, "description", None),
        "examples": len(cset),
        "task_groups": groups,
        "sample": [
            {"id": ex.id, "task_group": ex.task_group, "question": ex.question, "answer": ex.answer,
             "answer_type": ex.answer_type, "image": ex.image}  # fmt: skip
            for ex in cset.examples[:n_examples]
        ],
    }


MAX_IMPORT_BYTES = 4 << 30  # one imported set (manifest + images), copied into the home
FREE_SPACE_MARGIN = 64 << 20  # left free on the disk after an import (the database needs room too)


def import_set(store: Store, path, name: str | None = None) -> dict:
    """Validate a set directory, copy the files its manifest names to <home>/sets/<name>, register it.

    Only the manifest, set.json and the images the manifest names are copied, as regular files
    (`lrcal.calsets.copying`); a partial copy is removed whatever stops it."""
    from dataclasses import replace
    from pathlib import Path

    from lrcal.calsets import builtin_set_names, load_set
    from lrcal.calsets.format import set_name_problem
    from lrcal.errors import LrcalError, UsageError

    source = Path(path)
    cset = load_set(source)  # refuses a broken set with a one-line error, before any write
    name = name or cset.name or source.name
    problem = set_name_problem(name)
    if problem:
        raise UsageError(f"{problem} (choose another with --name)")
    if name in builtin_set_names():
        raise LrcalError(f"'{name}' is a built-in set name; choose another with --name")
    # as ensure_set and import-outcomes refuse it: a set is found by its name, so a calibration
    # set under an outcome log's name hid the log's outcomes and barred its next version
    if any(row["name"] == name and row["kind"] == "imported" for row in store.list_sets()):
        raise LrcalError(f"'{name}' already names an imported outcome log in this home; choose another with --name")
    target = store.home / "sets" / name
    # One import of a name at a time: two would share the staging folder.
    with store.lock(f"sets import:{name}", purpose="sets import"):
        if target.exists() or target.is_symlink():
            existing = load_set(target)
            if existing.version != cset.version:
                raise LrcalError(
                    f"a different set named '{name}' is already imported (version {existing.short_version}); "
                    "choose another --name"
                )
        else:
            _copy_into_home(cset, source, target)
    copied = load_set(target)
    if copied.version != cset.version:
        raise LrcalError(f"copy of {source} into {target} does not match the original")
    return store.register_set(replace(copied, name=name))


def _copy_into_home(cset, source, target) -> None:
    """Copy the set's own files to ``target`` through a staging folder (removed whatever stops the
    copy), after checking the size limit and the free space."""
    import shutil

    from lrcal.calsets.copying import copy_set_files, set_files
    from lrcal.errors import LrcalError

    total = sum(size for _path, size in set_files(cset).values())
    if total > MAX_IMPORT_BYTES:
        raise LrcalError(f"{source}: the set's files take {total / 2**30:.1f} GiB; the limit is {MAX_IMPORT_BYTES >> 30} GiB")
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if total + FREE_SPACE_MARGIN > free:
        raise LrcalError(
            f"not enough disk space to import {source}: it needs {total / 2**20:,.1f} MiB and "
            f"{FREE_SPACE_MARGIN >> 20} MiB to spare; {free / 2**20:,.1f} MiB are free under {target.parent}"
        )
    tmp = target.with_name(f".{target.name}.importing")
    shutil.rmtree(tmp, ignore_errors=True)  # what a killed import left
    try:
        tmp.mkdir()
        copy_set_files(cset, tmp)
        tmp.rename(target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise LrcalError(f"cannot copy {source} into {target}: {exc.strerror or exc}") from None
        raise
