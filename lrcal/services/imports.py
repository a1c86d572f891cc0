"""`lrcal import-outcomes`: real outcome logs (wide or long CSV) into the store.

Everything is parsed and checked before the first write, and all rows go in one
transaction: a malformed file writes nothing; re-importing the same file is a no-op.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from lrcal.errors import LrcalError
from lrcal.services.models import check_model_name
from lrcal.store import IMPORTED_ERROR, Store, utcnow

RUN_KIND = "import"


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
    for model_name in table.models:  # the rule `add-model` applies: an import cannot create what it refuses
        try:
            check_model_name(model_name)
        except LrcalError as exc:
            raise LrcalError(f"{path}: header: {exc}") from None
    version = file_digest(*files)
    dataset = name or table.name or path.stem
    # Content-addressed images first (files only; rows go in with the transaction below).
    image_hashes: list[str | None] = []
    for images in table.images:
        image_hashes.append(store.put_image(Path(images[0]).read_bytes()) if images else None)

    existing = store.find_set(dataset, version)
    if existing is not None:
        return _summary(store, existing, table, already=True)

    with store.write():
        if store.find_set(dataset, version) is not None:  # raced with another import
            return _summary(store, store.find_set(dataset, version), table, already=True)
        examples = []
        for i, sample_id in enumerate(table.sample_ids):
            meta = dict(table.metadata[i]) if table.metadata else {}
            if len(table.images[i]) > 1:
                meta["extra_images"] = list(table.images[i][1:])
            examples.append(
                {
                    "example_id": sample_id,
                    "task_group": table.tasks[i],
                    "question": table.questions[i],
                    "answer": table.answers[i],
                    "answer_type": None,
                    "choices": None,
                    "tolerance": None,
                    "image_sha256": image_hashes[i],
                    "metadata": meta,
                }
            )
        tasks = sorted({t for t in table.tasks if t})
        set_row = store.insert_imported_set(dataset, version, str(path.resolve()), tasks, examples)
        example_pks = store.example_pks(set_row["id"])
        now = utcnow()
        for k, model_name in enumerate(table.models):
            model = store.find_model(model_name)
            if model is None:
                model_id = store.add_imported_model(model_name, dataset=dataset, at=now)
            else:
                model_id = model["id"]
            run_id = store.add_completed_run(
                model_id, set_row["id"], RUN_KIND, parameters={"file": str(path), "column": model_name}, at=now
            )
            store.insert_outcomes(_outcome_rows(table, k, run_id, example_pks, now))
            store.log_event(
                "imported",
                model_id=model_id,
                message=f"outcomes imported from {path.name} ({dataset})",
                data={"set": dataset, "version": version},
            )
    return _summary(store, store.get_set(dataset, version), table, already=False)


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
    }


def _isnan(array):
    import numpy as np

    return np.isnan(array)
