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


def shared_content(store: Store, set_a: int, set_b: int) -> dict[str, int]:
    """How many examples two stored sets share, by example id and by image hash."""
    same_ids = store.query_one(
        "select count(*) as n from examples a join examples b on a.example_id = b.example_id "
        "where a.set_id = ? and b.set_id = ?",
        [set_a, set_b],
    )["n"]
    same_images = store.query_one(
        "select count(distinct a.image_sha256) as n from examples a join examples b "
        "on a.image_sha256 = b.image_sha256 where a.set_id = ? and b.set_id = ? and a.image_sha256 is not null",
        [set_a, set_b],
    )["n"]
    return {"examples": same_ids, "images": same_images}
