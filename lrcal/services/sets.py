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


def ensure_set(store: Store, name_or_path: str) -> RegisteredSet:
    """Load a calibration set from disk (built-in name, home set or path) and register it.

    A set already in the store under that name with the same content is reused.
    """
    from lrcal.calsets import load_set, resolve_set

    path = resolve_set(name_or_path, store.home)
    cset = load_set(path)
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


def import_set(store: Store, path, name: str | None = None) -> dict:
    """Validate a set directory, copy it to <home>/sets/<name>, register it."""
    import shutil
    from pathlib import Path

    from lrcal.calsets import builtin_set_names, load_set
    from lrcal.errors import LrcalError, UsageError

    source = Path(path)
    cset = load_set(source)  # refuses a broken set with a one-line error, before any write
    name = name or cset.name or source.name
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"invalid set name {name!r}")
    if name in builtin_set_names():
        raise LrcalError(f"'{name}' is a built-in set name; choose another with --name")
    target = store.home / "sets" / name
    if target.exists():
        existing = load_set(target)
        if existing.version != cset.version:
            raise LrcalError(
                f"a different set named '{name}' is already imported (version {existing.short_version}); "
                "choose another --name"
            )
    else:
        tmp = target.with_name(f".{name}.importing")
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(source, tmp, symlinks=False)
        tmp.rename(target)
    copied = load_set(target)
    if copied.version != cset.version:
        raise LrcalError(f"copy of {source} into {target} does not match the original")
    from dataclasses import replace

    return store.register_set(replace(copied, name=name))
