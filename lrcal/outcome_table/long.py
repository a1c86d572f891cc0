"""The long outcome format: an outcomes CSV with one row per (sample, model) plus a
samples CSV that holds the per-sample columns of the wide format."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from lrcal.errors import LrcalError
from lrcal.outcome_table.csv_rows import CsvRows, first_present, parse_error_flag, parse_nonnegative, parse_score, shown
from lrcal.outcome_table.samples import SAMPLE_ID_ALIASES, ImageCheck, SampleReader
from lrcal.outcome_table.table import OutcomeTable
from lrcal.outcome_table.wide import split_model_columns

LONG_MODEL_ALIASES = ("model_id", "model")
LONG_SCORE_ALIASES = ("score", "correct")
LONG_COST_ALIASES = ("cost", "cost_usd")
LONG_TOKENS_ALIASES = ("tokens", "output_tokens", "token")
LONG_LATENCY_ALIASES = ("latency_ms",)
LONG_ERROR_ALIASES = ("error", "error_kind")


def read_long_csv(
    outcomes_path: str | Path,
    samples_path: str | Path,
    images_dir: str | Path | None = None,
    name: str | None = None,
    image_check: ImageCheck | None = None,
) -> OutcomeTable:
    """Read the long format: an outcomes CSV (``sample_id, model_id, score[, cost, tokens,
    latency_ms, error]``) plus a samples CSV (``sample_id``, task, question, answer, image,
    metadata), the latter with the same columns as the wide format minus the model columns."""
    samples, samples_unused = _read_samples(Path(samples_path), images_dir, image_check)
    position = {sid: i for i, sid in enumerate(samples.sample_ids)}

    outcomes = CsvRows(Path(outcomes_path))
    id_col = first_present(outcomes.header, SAMPLE_ID_ALIASES)
    model_col = first_present(outcomes.header, LONG_MODEL_ALIASES)
    score_col = first_present(outcomes.header, LONG_SCORE_ALIASES)
    for label, col, aliases in (("sample id", id_col, SAMPLE_ID_ALIASES), ("model", model_col, LONG_MODEL_ALIASES),
                                ("score", score_col, LONG_SCORE_ALIASES)):
        if col is None:
            raise LrcalError(f"{outcomes.path}: header has no {label} column (one of {', '.join(aliases)})")
    cost_col = first_present(outcomes.header, LONG_COST_ALIASES)
    tokens_col = first_present(outcomes.header, LONG_TOKENS_ALIASES)
    latency_col = first_present(outcomes.header, LONG_LATENCY_ALIASES)
    error_col = first_present(outcomes.header, LONG_ERROR_ALIASES)
    used = {id_col, model_col, score_col, cost_col, tokens_col, latency_col, error_col}
    # named, never dropped without a word: a 'latency' or 'cost_cents' column is not an alias
    # this reader knows, and a samples CSV's M_correct columns are outcomes in the wrong file
    unused = samples_unused + [f"{h} ({outcomes.path.name})" for h in outcomes.header if h not in used]

    models: list[str] = []
    model_index: dict[str, int] = {}
    entries: list[tuple[int, int, float, float, float, float, bool]] = []
    seen_pairs: dict[tuple[int, int], int] = {}
    nan = math.nan
    for row, line, cells in outcomes:
        sample_id = cells[id_col].strip()
        if sample_id not in position:
            raise LrcalError(f"{outcomes.where(row, line, id_col)}: sample id {shown(sample_id)} is not in {samples.rows.path.name}")
        model = cells[model_col].strip()
        if not model:
            raise LrcalError(f"{outcomes.where(row, line, model_col)}: empty model name")
        if model not in model_index:
            model_index[model] = len(models)
            models.append(model)
        i, k = position[sample_id], model_index[model]
        if (i, k) in seen_pairs:
            raise LrcalError(
                f"{outcomes.where(row, line, model_col)}: duplicate outcome for sample {shown(sample_id)} and model "
                f"{shown(model)} (first at row {seen_pairs[(i, k)]})"
            )
        seen_pairs[(i, k)] = row
        entries.append((
            i,
            k,
            parse_score(outcomes, row, line, score_col, cells[score_col]),
            parse_nonnegative(outcomes, row, line, cost_col, cells[cost_col], "cost") if cost_col else nan,
            parse_nonnegative(outcomes, row, line, tokens_col, cells[tokens_col], "token count") if tokens_col else nan,
            parse_nonnegative(outcomes, row, line, latency_col, cells[latency_col], "latency") if latency_col else nan,
            parse_error_flag(cells[error_col]) if error_col else False,
        ))
    if not models:
        raise LrcalError(f"{outcomes.path}: no outcome rows")
    n, k = len(samples.sample_ids), len(models)
    grids = [np.full((n, k), nan) for _ in range(4)]
    err = np.zeros((n, k), dtype=bool)
    for i, j, score, cost, tok, lat, is_error in entries:
        grids[0][i, j], grids[1][i, j], grids[2][i, j], grids[3][i, j] = score, cost, tok, lat
        err[i, j] = is_error
    return OutcomeTable(
        name=name or outcomes.path.stem,
        **samples.table_fields(),
        models=models,
        scores=grids[0],
        cost_usd=grids[1] if cost_col else None,
        output_tokens=grids[2] if tokens_col else None,
        latency_ms=grids[3] if latency_col else None,
        errors=err if error_col else None,
        ignored_columns=unused,
    )


def _read_samples(path: Path, images_dir: str | Path | None,
                  image_check: ImageCheck | None) -> tuple[SampleReader, list[str]]:
    """The samples CSV, read whole, and its columns left out: model columns (as in the wide
    format) are not metadata, and this format reads outcomes from the outcomes CSV only."""
    rows = CsvRows(path)
    _models, _columns, model_columns, _ignored = split_model_columns(rows.path, rows.header)
    samples = SampleReader(rows, Path(images_dir) if images_dir is not None else None, model_columns, image_check)
    if samples.id_col is None:
        raise LrcalError(f"{rows.path}: header has no sample id column (one of {', '.join(SAMPLE_ID_ALIASES)})")
    for row, line, cells in rows:
        samples.add(row, line, cells)
    samples.require_some()
    return samples, [f"{h} ({rows.path.name})" for h in rows.header if h in model_columns]
