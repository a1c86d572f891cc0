"""`lrcal import-outcomes`: real outcome logs (wide or long CSV) into the store.

Everything is parsed and checked before the first write, and all rows go in one
transaction: a malformed file writes nothing. A set's version is the digest of what was
parsed (ids, inputs, image bytes, models, outcomes), not of the file's bytes: re-importing the
same log -- as it was, with other line endings or from another folder -- is a no-op, and the
same log under another name is refused (training would count every query twice). A changed
log under the same name is a new version: for each model it has outcomes for, it replaces what
the older versions held (`lrcal.services.calibration_basis.superseded_import_runs`), so a
sample it drops or a question it corrects leaves training. Importing an older version again
makes it the latest once more.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from lrcal import lifecycle
from lrcal.errors import LrcalError, UsageError
from lrcal.services.models import RESERVED_MODEL_NAMES, check_model_name
# the hashes of a sample's second and later images go in its metadata (the examples table has
# one image column); `lrcal.services.tables.query_for` gives the router all of them
from lrcal.services.tables import EXTRA_IMAGES
from lrcal.store import IMPORTED_ERROR, Store, utcnow

RUN_KIND = "import"
# an import run's parameter: it marks a stored version the latest again, with no outcome rows
# of its own (`lrcal.services.calibration_basis.superseded_import_runs` reads it)
RESTORES = "restores"


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def import_outcomes(
    store: Store,
    path: Path,
    *,
    images_dir: Path | None = None,
    name: str | None = None,
    samples_path: Path | None = None,
) -> dict:
    from lrcal.outcome_table import read_outcome_table

    path = Path(path)
    if path.is_dir():
        raise LrcalError(f"{path}: is a directory, expected an outcome CSV file")
    if not path.is_file():
        raise LrcalError(f"{path}: no such file")
    files = [path] if samples_path is None else [path, Path(samples_path)]
    # Every image is checked while the file is read, before anything is stored.
    table = read_outcome_table(*files, images_dir=images_dir, name=name, image_check=check_image_header)
    dataset = check_dataset_name(store, name or table.name or path.stem)
    # the store keeps a sample's later images under this metadata key and routing drops it from
    # the query's metadata: a column of that name was overwritten or never reached the router
    taken = sorted({key for meta in (table.metadata or []) for key in meta} & {EXTRA_IMAGES, "extra_images"})
    if taken:
        raise LrcalError(f"{files[-1]}: header: column '{taken[0]}' is a name lrcal keeps for a sample's later "
                         "images; rename the column")
    removed = []
    folded: dict[str, str] = {}
    for model_name in table.models:  # the rule `add-model` applies: an import cannot create what it refuses
        try:
            check_model_name(model_name)
        except LrcalError as exc:
            raise LrcalError(f"{path}: header: {exc}") from None
        if model_name in RESERVED_MODEL_NAMES:
            raise LrcalError(f"{path}: header: '{model_name}' is the routing alias of `lrcal serve`, not a model name")
        twin = folded.setdefault(model_name.casefold(), model_name)
        if twin != model_name:
            raise LrcalError(f"{path}: header: models '{twin}' and '{model_name}' differ only in case")
        model = store.find_model(model_name)
        alike = store.model_named_alike(model_name) if model is None else None
        if alike is not None:
            # a log's `gpt-4o_correct` for a registered GPT-4o made a second model beside it
            raise LrcalError(f"{path}: header: '{model_name}' differs only in case from the model '{alike}'; "
                             f"name the column after '{alike}' to add to its outcomes")
        if model is not None and model["status"] == lifecycle.REMOVED:
            removed.append(model_name)
    if removed:
        raise LrcalError(f"{path}: model(s) {', '.join(removed)} were removed; a removed model takes no new "
                         "outcomes (drop their columns, or import under another model name)")
    # Content-addressed images first (files only; rows go in with the transaction below).
    image_hashes: list[list[str]] = [[store.put_image(Path(image).read_bytes()) for image in images]
                                     for images in table.images]
    version = parsed_digest(table, image_hashes)
    stored_sets = store.list_sets()
    existing = store.find_set(dataset, version) or store.find_set(dataset, file_digest(*files))
    if existing is not None:
        empty = _models_without_outcomes(table)
        stale = _replaced_models(store, existing, [m for m in table.models if m not in empty])
        if not stale:
            return _summary(store, existing, table, already=True)
        # an older version imported again: it becomes the latest for the models a newer one replaced
        # (it used to say "nothing to do" while training kept the newer version)
        with store.write():
            _add_import_runs(store, table, existing, path, dataset, version, models=stale, restore=True)
        summary = _summary(store, existing, table, already=False)
        summary["restored_for"] = stale
        return _after_import(store, existing, table, summary)
    twin = next((row for row in stored_sets if row["version"] == version), None)
    if twin is not None:
        raise LrcalError(f"{path}: these outcomes are already imported as '{twin['name']}'; importing them again "
                         f"as '{dataset}' would count every query twice")

    with store.write():
        if store.find_set(dataset, version) is not None:  # raced with another import
            return _summary(store, store.find_set(dataset, version), table, already=True)
        examples = []
        for i, sample_id in enumerate(table.sample_ids):
            meta = dict(table.metadata[i]) if table.metadata else {}
            if len(image_hashes[i]) > 1:
                meta[EXTRA_IMAGES] = image_hashes[i][1:]
            examples.append(
                {
                    "example_id": sample_id,
                    "task_group": table.tasks[i],
                    "question": table.questions[i],
                    "answer": table.answers[i],
                    "answer_type": None,
                    "choices": None,
                    "tolerance": None,
                    "image_sha256": image_hashes[i][0] if image_hashes[i] else None,
                    "metadata": meta,
                }
            )
        tasks = sorted({t for t in table.tasks if t})
        set_row = store.insert_imported_set(dataset, version, str(path.resolve()), tasks, examples)
        _add_import_runs(store, table, set_row, path, dataset, version, models=list(table.models))
    return _after_import(store, set_row, table, _summary(store, set_row, table, already=False))


def _after_import(store: Store, set_row: dict, table, summary: dict) -> dict:
    summary.update(_replaced(store, set_row, table.models))
    shared = store.queries_stored_elsewhere(set_row["id"])
    summary["queries_also_in"] = {name: n for name, n in shared.items() if name != set_row["name"]}
    summary["not_trained"] = [m for m in table.models if store.get_model(m)["status"] == lifecycle.REGISTERED]
    return summary


MAX_DATASET_NAME_CHARS = 200


def check_dataset_name(store: Store, dataset: str) -> str:
    """The name an outcome log is stored under: printable, not blank, not a built-in set's name
    and not the name of a calibration set in the store (a set is found by its name)."""
    from lrcal.calsets import BUILTIN_SET_NAMES

    if not dataset.strip() or len(dataset) > MAX_DATASET_NAME_CHARS or not dataset.isprintable():
        raise UsageError(f"dataset name {dataset[:60]!r} must be 1-{MAX_DATASET_NAME_CHARS} printable characters "
                         "(choose one with --name)")
    if dataset in BUILTIN_SET_NAMES:
        raise UsageError(f"'{dataset}' is a built-in set's name; choose another with --name")
    if any(row["name"] == dataset and row["kind"] != "imported" for row in store.list_sets()):
        raise UsageError(f"'{dataset}' already names a calibration set in this home; choose another with --name")
    return dataset


def parsed_digest(table, image_hashes: list[list[str]]) -> str:
    """sha256 of what an import stores: sample ids, tasks, questions, answers, metadata, image
    bytes (by hash), models and every outcome cell -- not the file's bytes or paths."""
    import json

    import numpy as np

    digest = hashlib.sha256()
    digest.update(json.dumps([table.sample_ids, table.tasks, table.questions, table.answers, table.metadata,
                              image_hashes, table.models], ensure_ascii=False, sort_keys=True, default=str)
                  .encode("utf-8", "surrogatepass"))
    for grid in (table.scores, table.cost_usd, table.output_tokens, table.latency_ms, table.errors):
        digest.update(b"|" if grid is None else np.ascontiguousarray(grid, dtype=np.float64).tobytes())
    return digest.hexdigest()


def _add_import_runs(store: Store, table, set_row: dict, path: Path, dataset: str, version: str, *,
                     models: list[str], restore: bool = False) -> None:
    """One completed import run per model of ``models`` (columns of ``table``) on ``set_row``, with its
    outcomes; a model not stored yet is created (known from outcome logs only). ``restore``: the
    version's outcomes are stored already; each run only marks it the latest again
    (`RESTORES`, no outcome rows: copies would be newer than calibration outcomes stored since, and
    win over them as the latest outcome of their queries)."""
    example_pks = store.example_pks(set_row["id"])
    now = utcnow()
    for k, model_name in enumerate(table.models):
        if model_name not in models:
            continue
        model = store.find_model(model_name)
        model_id = store.add_imported_model(model_name, dataset=dataset, at=now) if model is None else model["id"]
        parameters = {"file": str(path), "column": model_name, **({RESTORES: version} if restore else {})}
        run_id = store.add_completed_run(model_id, set_row["id"], RUN_KIND, parameters=parameters, at=now)
        if not restore:
            store.insert_outcomes(_outcome_rows(table, k, run_id, example_pks, now))
        store.log_event(
            "imported",
            model_id=model_id,
            message=f"outcomes {'of an earlier import made current again' if restore else 'imported'} from "
                    f"{path.name} ({dataset})",
            data={"set": dataset, "version": version, **({"restored": True} if restore else {})},
        )


def _replaced_models(store: Store, set_row: dict, models) -> list[str]:
    """The models of ``models`` for which another version of ``set_row``'s log is the current one."""
    from lrcal.services.calibration_basis import current_import_sets

    current = current_import_sets(store)
    out = []
    for name in models:  # (models with outcomes in this version: an empty column restores nothing)
        model = store.find_model(name)
        if model is None:
            continue
        if current.get((model["id"], set_row["name"]), set_row["id"]) != set_row["id"]:
            out.append(name)
    return out


def _replaced(store: Store, set_row: dict, models) -> dict:
    """What this version of a log replaced: the older versions (under the same name) whose outcomes
    of these models no longer count, how many samples they held, and how many of those this
    version does not have (they leave training)."""
    from lrcal.services.calibration_basis import superseded_import_runs

    superseded = superseded_import_runs(store)
    model_ids = {m["id"] for m in (store.find_model(name) for name in models) if m is not None}
    older_sets = {r["set_id"] for r in store.runs(kind=RUN_KIND)
                  if r["id"] in superseded and r["model_id"] in model_ids and r["set_id"] != set_row["id"]}
    older = [store.get_set_by_id(set_id) for set_id in sorted(older_sets)]
    older = [row for row in older if row["name"] == set_row["name"]]
    before: set[str] = set()
    for row in older:
        before |= set(store.example_pks(row["id"]))
    now = set(store.example_pks(set_row["id"]))
    return {"replaced_versions": [row["version"] for row in older], "replaced_samples": len(before),
            "dropped_samples": len(before - now)}


def check_image_header(image: Path) -> None:
    """A regular file of bounded size, a PNG/JPEG/WebP/GIF header within the pixel limit.

    Only the header is read: a decompression bomb costs nothing, and importing thousands of
    logged images stays fast. (A truncated image body is caught later: the featurizer flags
    images it cannot decode.)"""
    from lrcal.calsets.images import ImageProblem, inspect_image_header, read_checked_bytes

    shown = image.name
    try:
        inspect_image_header(read_checked_bytes(image, shown), f"image {shown!r}")
    except ImageProblem as exc:
        raise LrcalError(exc.message) from None


def _cell(array, i: int, k: int) -> float | None:
    if array is None:
        return None
    value = float(array[i, k])
    return None if math.isnan(value) else value


def _outcome_rows(table, k: int, run_id: int, example_pks: dict[str, int], now: str):
    for i, sample_id in enumerate(table.sample_ids):
        score = _cell(table.scores, i, k)
        if score is None:  # empty cell: not available for this model
            continue
        error = bool(table.errors[i, k]) if table.errors is not None else False
        tokens = _cell(table.output_tokens, i, k)
        yield {
            "run_id": run_id,
            "example_id": example_pks[sample_id],
            "score": score,
            "correct": int(score >= 0.5),
            "cost_usd": _cell(table.cost_usd, i, k),
            "output_tokens": None if tokens is None else int(round(tokens)),
            "latency_ms": _cell(table.latency_ms, i, k),
            "error_kind": IMPORTED_ERROR if error else None,
            "attempts": 1,
            "created_at": now,
        }


def _summary(store: Store, set_row: dict, table, *, already: bool) -> dict:
    return {
        "dataset": set_row["name"],
        "version": set_row["version"],
        "samples": len(table.sample_ids),
        "models": list(table.models),
        "tasks": sorted({t for t in table.tasks if t}),
        "outcomes": int((~_isnan(table.scores)).sum()),
        "already_imported": already,
        "ignored_columns": list(table.ignored_columns),
        "models_without_outcomes": _models_without_outcomes(table),
        "replaced_versions": [],
        "replaced_samples": 0,
        "dropped_samples": 0,
        "restored_for": [],
    }


def _models_without_outcomes(table) -> list[str]:
    return [m for k, m in enumerate(table.models) if not (~_isnan(table.scores[:, k])).any()]


def _isnan(array):
    import numpy as np

    return np.isnan(array)
