"""The wide outcome CSV (MMR-Bench compatible): one row per sample, per-model columns.

``sample_id`` (aliases ``dataset_idx``, ``id``, ``pid``, ``idx``), optional ``question``,
``answer``, ``image`` / ``image_paths`` (a relative path or a JSON list), ``task`` (aliases
``dataset``, ``group``, ``subject``, ``category``; for MMR-Bench a ``dataset_idx`` such as
``OCRBench_12`` gives the task ``OCRBench``), and per model M: ``M_correct`` (required),
``M_cost``, ``M_token`` / ``M_tokens``, ``M_latency_ms``, ``M_prediction``, ``M_error`` (suffixes
in any case). Other columns named ``M_...`` are left out (`OutcomeTable.ignored_columns`); the
rest are kept as metadata. Empty cells mean "not available".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from lrcal.errors import LrcalError
from lrcal.outcome_table.csv_rows import CsvRows, parse_error_flag, parse_nonnegative, parse_score
from lrcal.outcome_table.samples import ImageCheck, SampleReader
from lrcal.outcome_table.table import OutcomeTable

# Per-model columns: suffix -> field. Order matters: the longest suffix wins.
MODEL_COLUMN_SUFFIXES = {
    "_correct": "score",
    "_cost": "cost",
    "_tokens": "tokens",
    "_token": "tokens",
    "_latency_ms": "latency",
    "_prediction": "prediction",
    "_error": "error",
}
# Optional per-model numeric columns: field -> (OutcomeTable attribute, what error messages call it).
_NUMERIC_FIELDS = {"cost": ("cost_usd", "cost"), "tokens": ("output_tokens", "token count"),
                   "latency": ("latency_ms", "latency")}  # fmt: skip


def split_model_columns(path: Path, header: Sequence[str]) -> tuple[list[str], dict[str, dict[str, str]], set[str], list[str]]:
    """Models (from ``M_correct``), per model the column of each per-model field, every column
    those take, and the other columns named after a model (``M_latency_s``, ``M_acc``): those
    are the model's outcomes in a form this reader does not know, and a metadata column would
    show them to the router as a query input, so they are left out (and named). Suffixes match
    in any case (``M_Correct``)."""
    correct = "_correct"
    models = [h[: -len(correct)] for h in header if h.lower().endswith(correct) and len(h) > len(correct)]
    model_set = set(models)
    columns: dict[str, dict[str, str]] = {m: {} for m in models}
    consumed: set[str] = set()
    for h in header:
        for suffix in sorted(MODEL_COLUMN_SUFFIXES, key=len, reverse=True):
            if h.lower().endswith(suffix) and h[: -len(suffix)] in model_set:
                fieldname = MODEL_COLUMN_SUFFIXES[suffix]
                model = h[: -len(suffix)]
                if fieldname in columns[model] and columns[model][fieldname] != h:
                    # both M_token and M_tokens: keep the plural, ignore nothing silently
                    raise LrcalError(f"{path}: header: model '{model}' has two {fieldname} columns ('{columns[model][fieldname]}' and '{h}')")
                columns[model][fieldname] = h
                consumed.add(h)
                break
    prefixes = tuple(f"{m}_".lower() for m in models)
    ignored = [h for h in header if h not in consumed and h.lower().startswith(prefixes)]
    return models, columns, consumed | set(ignored), ignored


def read_wide_csv(
    path: str | Path,
    images_dir: str | Path | None = None,
    name: str | None = None,
    image_check: ImageCheck | None = None,
) -> OutcomeTable:
    """Read a wide outcome CSV (one row per sample, ``<M>_correct`` per model). ``image_check``
    is called with each image's path; the ``LrcalError`` it raises is reported at the cell."""
    rows = CsvRows(Path(path))
    models, model_cols, consumed, ignored = split_model_columns(rows.path, rows.header)
    if not models:
        raise LrcalError(f"{rows.path}: header has no '<model>_correct' column (one per model is required)")
    samples = SampleReader(rows, Path(images_dir) if images_dir is not None else None, consumed, image_check)
    numeric = [f for f in _NUMERIC_FIELDS if any(f in model_cols[m] for m in models)]
    with_errors = any("error" in model_cols[m] for m in models)
    scores: list[list[float]] = []
    values: dict[str, list[list[float]]] = {f: [] for f in numeric}
    errors: list[list[bool]] = []
    predictions: dict[str, list[str | None]] = {m: [] for m in models if "prediction" in model_cols[m]}
    for row, line, cells in rows:
        samples.add(row, line, cells)
        scores.append([parse_score(rows, row, line, model_cols[m]["score"], cells[model_cols[m]["score"]]) for m in models])
        for f in numeric:
            what = _NUMERIC_FIELDS[f][1]
            values[f].append([parse_nonnegative(rows, row, line, c, cells[c], what) if (c := model_cols[m].get(f)) else math.nan
                              for m in models])  # fmt: skip
        if with_errors:
            errors.append([parse_error_flag(cells[c]) if (c := model_cols[m].get("error")) else False for m in models])
        for m in predictions:
            text = cells[model_cols[m]["prediction"]]
            predictions[m].append(text if text.strip() else None)
    samples.require_some()
    shape = (len(samples.sample_ids), len(models))
    return OutcomeTable(
        name=name or rows.path.stem,
        **samples.table_fields(),
        models=models,
        scores=np.asarray(scores, dtype=np.float64).reshape(shape),
        **{_NUMERIC_FIELDS[f][0]: np.asarray(values[f], dtype=np.float64).reshape(shape) for f in numeric},
        errors=np.asarray(errors, dtype=bool).reshape(shape) if with_errors else None,
        predictions=predictions,
        ignored_columns=ignored,
    )
