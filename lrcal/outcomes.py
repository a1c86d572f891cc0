"""`OutcomeTable`: the in-memory outcome matrix (samples x models) shared by the router,
the benchmarks and the importers, and the wide / long CSV readers that build it.

Wide format (MMR-Bench compatible), one row per sample:
``sample_id`` (aliases ``dataset_idx``, ``id``, ``pid``, ``idx``), optional ``question``,
``answer``, ``image`` / ``image_paths`` (a relative path or a JSON list), ``task`` (aliases
``dataset``, ``group``, ``subject``, ``category``; for MMR-Bench a ``dataset_idx`` such as
``OCRBench_12`` gives the task ``OCRBench``), and per model M: ``M_correct`` (required),
``M_cost``, ``M_token`` / ``M_tokens``, ``M_latency_ms``, ``M_prediction``, ``M_error``.
Other columns are kept as metadata. Empty cells mean "not available".

Every malformed input raises :class:`lrcal.errors.LrcalError` with one line naming the
file, the row and the column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from lrcal.errors import LrcalError

__all__ = [
    "OutcomeTable",
    "read_wide_csv",
    "read_long_csv",
    "SAMPLE_ID_ALIASES",
    "TASK_ALIASES",
    "MODEL_COLUMN_SUFFIXES",
]

SAMPLE_ID_ALIASES = ("sample_id", "dataset_idx", "id", "pid", "idx")
TASK_ALIASES = ("task", "dataset", "group", "subject", "category")
QUESTION_ALIASES = ("question",)
ANSWER_ALIASES = ("answer",)
IMAGE_ALIASES = ("image", "image_paths", "image_path", "images")

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

# Called with an image's resolved path; raises LrcalError (no location: the reader adds it).
ImageCheck = Callable[[Path], None]

_MMR_INDEX = re.compile(r"^(.+)_(\d+)$")
_MAX_CELL_IN_MESSAGE = 40
# One cell longer than this is hostile input, not data (the manifest's line limit is 1 MiB too):
# a real question, answer or prediction is a few KiB.
MAX_CELL_CHARS = 1 << 20
_TRUE = {"true", "yes"}
_FALSE = {"false", "no"}


@dataclass
class OutcomeTable:
    """Outcomes of K models on N samples. Realized cost/tokens/latency are outcomes:
    they may be summarized into a model's profile, never used as a per-query input."""

    name: str
    sample_ids: list[str]
    tasks: list[str | None]
    questions: list[str | None]
    answers: list[str | None]  # for scoring only, never a router input
    images: list[list[str]]
    metadata: list[dict[str, str]]
    models: list[str]
    scores: np.ndarray  # [N, K] in [0, 1], NaN = not available
    cost_usd: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    latency_ms: np.ndarray | None = None
    errors: np.ndarray | None = None
    predictions: dict[str, list[str | None]] = field(default_factory=dict)  # model -> answers (scoring only)

    # ---- shape ---------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return len(self.sample_ids)

    @property
    def n_models(self) -> int:
        return len(self.models)

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        n, k = len(self.sample_ids), len(self.models)
        if self.scores.shape != (n, k):
            raise LrcalError(f"{self.name}: scores have shape {self.scores.shape}, expected ({n}, {k})")
        for label, values in (("tasks", self.tasks), ("questions", self.questions), ("answers", self.answers),
                              ("images", self.images), ("metadata", self.metadata)):
            if len(values) != n:
                raise LrcalError(f"{self.name}: {label} has {len(values)} entries, expected {n}")
        for label in ("cost_usd", "output_tokens", "latency_ms", "errors"):
            arr = getattr(self, label)
            if arr is not None:
                arr = np.asarray(arr, dtype=bool if label == "errors" else np.float64)
                if arr.shape != (n, k):
                    raise LrcalError(f"{self.name}: {label} has shape {arr.shape}, expected ({n}, {k})")
                setattr(self, label, arr)

    # ---- selection -----------------------------------------------------------
    def select_rows(self, rows: Sequence[int] | np.ndarray) -> "OutcomeTable":
        idx = np.asarray(rows, dtype=np.int64)
        pick = lambda values: [values[i] for i in idx]  # noqa: E731
        return OutcomeTable(
            name=self.name,
            sample_ids=pick(self.sample_ids),
            tasks=pick(self.tasks),
            questions=pick(self.questions),
            answers=pick(self.answers),
            images=pick(self.images),
            metadata=pick(self.metadata),
            models=list(self.models),
            scores=self.scores[idx],
            cost_usd=None if self.cost_usd is None else self.cost_usd[idx],
            output_tokens=None if self.output_tokens is None else self.output_tokens[idx],
            latency_ms=None if self.latency_ms is None else self.latency_ms[idx],
            errors=None if self.errors is None else self.errors[idx],
            predictions={m: pick(v) for m, v in self.predictions.items()},
        )

    def select_models(self, models: Iterable[str]) -> "OutcomeTable":
        names = list(models)
        unknown = [m for m in names if m not in self.models]
        if unknown:
            raise LrcalError(f"{self.name}: unknown model(s) {', '.join(unknown)}")
        cols = np.array([self.models.index(m) for m in names], dtype=np.int64)
        take = lambda arr: None if arr is None else arr[:, cols]  # noqa: E731
        return OutcomeTable(
            name=self.name,
            sample_ids=list(self.sample_ids),
            tasks=list(self.tasks),
            questions=list(self.questions),
            answers=list(self.answers),
            images=[list(x) for x in self.images],
            metadata=[dict(x) for x in self.metadata],
            models=names,
            scores=self.scores[:, cols],
            cost_usd=take(self.cost_usd),
            output_tokens=take(self.output_tokens),
            latency_ms=take(self.latency_ms),
            errors=take(self.errors),
            predictions={m: list(self.predictions[m]) for m in names if m in self.predictions},
        )

    def content_hash(self) -> str:
        """sha256 over everything a router is trained on (ids, inputs, models, outcomes)."""
        digest = hashlib.sha256()

        def put(obj) -> None:
            digest.update(json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8", "surrogatepass"))

        put([self.sample_ids, self.tasks, self.questions, self.images, self.metadata, self.models])
        for arr in (self.scores, self.cost_usd, self.output_tokens, self.latency_ms, self.errors):
            digest.update(b"|" if arr is None else np.ascontiguousarray(arr, dtype=np.float64).tobytes())
        return digest.hexdigest()


# ---- CSV plumbing ------------------------------------------------------------


def _short(value: str) -> str:
    text = value if len(value) <= _MAX_CELL_IN_MESSAGE else value[: _MAX_CELL_IN_MESSAGE - 1] + "…"
    return repr(text)


class _Rows:
    """Reads a CSV file into (data_row_number, line_number, dict) with one-line errors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise LrcalError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise LrcalError(f"{self.path}: is a directory, expected a CSV file") from None
        except OSError as exc:
            raise LrcalError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise LrcalError(f"{self.path}: line {line}: not valid UTF-8 text (byte {exc.start})") from None
        if "\x00" in text:
            line = text[: text.index("\x00")].count("\n") + 1
            raise LrcalError(f"{self.path}: line {line}: contains a NUL byte (not a text CSV)")
        # Lift the csv module's 128 KiB default so that an over-long cell is reported below,
        # by row and column, rather than as a malformed line.
        csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1, MAX_CELL_CHARS + 1))
        self.reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(self.reader)
        except StopIteration:
            raise LrcalError(f"{self.path}: empty file (no header row)") from None
        except csv.Error as exc:
            raise LrcalError(f"{self.path}: line 1: malformed CSV header ({exc})") from None
        self.header = [h.strip() for h in header]
        if not any(self.header):
            raise LrcalError(f"{self.path}: empty header row")
        seen: dict[str, int] = {}
        for i, name in enumerate(self.header):
            if not name:
                raise LrcalError(f"{self.path}: header column {i + 1} has no name")
            if name in seen:
                raise LrcalError(f"{self.path}: header: column '{name}' appears twice (columns {seen[name] + 1} and {i + 1})")
            seen[name] = i

    def __iter__(self):
        row_number = 0
        while True:
            start_line = self.reader.line_num + 1
            try:
                cells = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise LrcalError(f"{self.path}: line {start_line}: malformed CSV ({exc})") from None
            if not cells or all(not c.strip() for c in cells):
                continue  # blank line
            row_number += 1
            if len(cells) != len(self.header):
                raise LrcalError(
                    f"{self.path}: row {row_number} (line {start_line}): has {len(cells)} fields, "
                    f"the header has {len(self.header)}"
                )
            if max(map(len, cells)) > MAX_CELL_CHARS:
                longest = max(range(len(cells)), key=lambda i: len(cells[i]))
                raise LrcalError(
                    f"{self.where(row_number, start_line, self.header[longest])}: cell of "
                    f"{len(cells[longest]):,} characters; the limit is {MAX_CELL_CHARS:,}"
                )
            yield row_number, start_line, dict(zip(self.header, cells))

    def where(self, row: int, line: int, column: str | None = None) -> str:
        spot = f"{self.path}: row {row} (line {line})"
        return f"{spot}, column '{column}'" if column else spot


def _first_present(header: Sequence[str], aliases: Sequence[str]) -> str | None:
    lowered = {h.lower(): h for h in header}
    for alias in aliases:
        if alias in lowered:
            return lowered[alias]
    return None


def _parse_score(rows: _Rows, row: int, line: int, column: str, cell: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    low = text.lower()
    if low in _TRUE:
        return 1.0
    if low in _FALSE:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise LrcalError(f"{rows.where(row, line, column)}: score {_short(text)} is not a number") from None
    if not math.isfinite(value):
        raise LrcalError(f"{rows.where(row, line, column)}: score {_short(text)} is not finite (leave the cell empty for 'not available')")
    if value < 0.0 or value > 1.0:
        raise LrcalError(f"{rows.where(row, line, column)}: score {_short(text)} outside [0, 1]")
    return value


def _parse_nonnegative(rows: _Rows, row: int, line: int, column: str, cell: str, what: str) -> float:
    text = cell.strip()
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise LrcalError(f"{rows.where(row, line, column)}: {what} {_short(text)} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise LrcalError(f"{rows.where(row, line, column)}: {what} {_short(text)} must be a finite number >= 0")
    return value


def _parse_error_flag(cell: str) -> bool:
    text = cell.strip().lower()
    return bool(text) and text not in {"0", "false", "no", "none", "null"}


def _split_model_columns(path: Path, header: Sequence[str]) -> tuple[list[str], dict[str, dict[str, str]], set[str]]:
    """Models (from ``M_correct``) and, per model, the column of each per-model field."""
    models = [h[: -len("_correct")] for h in header if h.endswith("_correct") and len(h) > len("_correct")]
    model_set = set(models)
    columns: dict[str, dict[str, str]] = {m: {} for m in models}
    consumed: set[str] = set()
    for h in header:
        for suffix in sorted(MODEL_COLUMN_SUFFIXES, key=len, reverse=True):
            if h.endswith(suffix) and h[: -len(suffix)] in model_set:
                fieldname = MODEL_COLUMN_SUFFIXES[suffix]
                model = h[: -len(suffix)]
                if fieldname in columns[model] and columns[model][fieldname] != h:
                    # both M_token and M_tokens: keep the plural, ignore nothing silently
                    raise LrcalError(f"{path}: header: model '{model}' has two {fieldname} columns ('{columns[model][fieldname]}' and '{h}')")
                columns[model][fieldname] = h
                consumed.add(h)
                break
    return models, columns, consumed


class _SampleColumns:
    """Recognizes the per-sample columns of a header and parses one row of them."""

    def __init__(
        self, rows: _Rows, images_dir: Path | None, exclude: set[str], image_check: ImageCheck | None = None
    ) -> None:
        self.rows = rows
        self.image_check = image_check
        header = [h for h in rows.header if h not in exclude]
        self.id_col = _first_present(header, SAMPLE_ID_ALIASES)
        self.task_col = _first_present(header, TASK_ALIASES)
        self.question_col = _first_present(header, QUESTION_ALIASES)
        self.answer_col = _first_present(header, ANSWER_ALIASES)
        self.image_col = _first_present(header, IMAGE_ALIASES)
        self.mmr_tasks = self.task_col is None and self.id_col is not None and self.id_col.lower() == "dataset_idx"
        used = {self.id_col, self.task_col, self.question_col, self.answer_col, self.image_col}
        self.meta_cols = [h for h in header if h not in used]
        base = Path(images_dir) if images_dir is not None else rows.path.parent
        try:
            self.images_base = base.resolve()
        except OSError as exc:  # pragma: no cover - unusual filesystems
            raise LrcalError(f"{base}: cannot resolve images directory ({exc})") from None
        if images_dir is not None and not self.images_base.is_dir():
            raise LrcalError(f"{images_dir}: images directory does not exist")

    def parse(self, row: int, line: int, cells: dict[str, str]) -> tuple[str, str | None, str | None, str | None, list[str], dict[str, str]]:
        if self.id_col is not None:
            sample_id = cells[self.id_col].strip()
            if not sample_id:
                raise LrcalError(f"{self.rows.where(row, line, self.id_col)}: empty sample id")
        else:
            sample_id = str(row)
        task = None
        if self.task_col is not None:
            task = cells[self.task_col].strip() or None
        elif self.mmr_tasks:
            match = _MMR_INDEX.match(sample_id)
            task = match.group(1) if match else None
        question = cells[self.question_col] if self.question_col else None
        question = question if question and question.strip() else None
        answer = cells[self.answer_col] if self.answer_col else None
        answer = answer if answer is not None and answer.strip() else None
        images = self._images(row, line, cells[self.image_col]) if self.image_col else []
        metadata = {c: cells[c] for c in self.meta_cols if cells[c].strip()}
        return sample_id, task, question, answer, images, metadata

    def _images(self, row: int, line: int, cell: str) -> list[str]:
        text = cell.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise LrcalError(f"{self.rows.where(row, line, self.image_col)}: image list is not valid JSON") from None
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise LrcalError(f"{self.rows.where(row, line, self.image_col)}: image list must be a JSON list of paths")
        else:
            items = [text]
        out = []
        for item in items:
            item = item.strip()
            if not item:
                continue
            where = self.rows.where(row, line, self.image_col)
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", item):
                raise LrcalError(f"{where}: image {_short(item)} is a URL; only local files are supported")
            candidate = Path(item)
            path = candidate if candidate.is_absolute() else self.images_base / candidate
            try:
                resolved = path.resolve()
            except (OSError, RuntimeError, ValueError):
                raise LrcalError(f"{where}: image path {_short(item)} cannot be resolved") from None
            if not resolved.is_relative_to(self.images_base):
                raise LrcalError(f"{where}: image path {_short(item)} escapes the images directory {self.images_base}")
            if not resolved.is_file():
                raise LrcalError(f"{where}: image file {_short(item)} not found under {self.images_base}")
            if self.image_check is not None:
                try:
                    self.image_check(resolved)
                except LrcalError as exc:
                    raise LrcalError(f"{where}: {exc}") from None
            out.append(str(resolved))
        return out


def _check_unique(rows: _Rows, seen: dict[str, int], sample_id: str, row: int, line: int, column: str | None) -> None:
    if sample_id in seen:
        raise LrcalError(f"{rows.where(row, line, column)}: duplicate sample id {_short(sample_id)} (first at row {seen[sample_id]})")
    seen[sample_id] = row


def read_wide_csv(
    path: str | Path,
    images_dir: str | Path | None = None,
    name: str | None = None,
    image_check: ImageCheck | None = None,
) -> OutcomeTable:
    """Read a wide outcome CSV (one row per sample, ``<M>_correct`` per model). ``image_check``
    is called with each image's path; the ``LrcalError`` it raises is reported at the cell."""
    rows = _Rows(Path(path))
    models, model_cols, consumed = _split_model_columns(rows.path, rows.header)
    if not models:
        raise LrcalError(f"{rows.path}: header has no '<model>_correct' column (one per model is required)")
    images_base = Path(images_dir) if images_dir is not None else None
    sample_cols = _SampleColumns(rows, images_base, consumed, image_check)

    has = lambda fieldname: any(fieldname in model_cols[m] for m in models)  # noqa: E731
    sample_ids: list[str] = []
    tasks: list[str | None] = []
    questions: list[str | None] = []
    answers: list[str | None] = []
    images: list[list[str]] = []
    metadata: list[dict[str, str]] = []
    scores: list[list[float]] = []
    costs: list[list[float]] = []
    tokens: list[list[float]] = []
    latencies: list[list[float]] = []
    errors: list[list[bool]] = []
    predictions: dict[str, list[str | None]] = {m: [] for m in models if "prediction" in model_cols[m]}
    seen: dict[str, int] = {}
    nan = math.nan
    for row, line, cells in rows:
        sample_id, task, question, answer, imgs, meta = sample_cols.parse(row, line, cells)
        _check_unique(rows, seen, sample_id, row, line, sample_cols.id_col)
        sample_ids.append(sample_id)
        tasks.append(task)
        questions.append(question)
        answers.append(answer)
        images.append(imgs)
        metadata.append(meta)
        scores.append([_parse_score(rows, row, line, model_cols[m]["score"], cells[model_cols[m]["score"]]) for m in models])
        if has("cost"):
            costs.append([_parse_nonnegative(rows, row, line, c, cells[c], "cost") if (c := model_cols[m].get("cost")) else nan for m in models])
        if has("tokens"):
            tokens.append([_parse_nonnegative(rows, row, line, c, cells[c], "token count") if (c := model_cols[m].get("tokens")) else nan for m in models])
        if has("latency"):
            latencies.append([_parse_nonnegative(rows, row, line, c, cells[c], "latency") if (c := model_cols[m].get("latency")) else nan for m in models])
        if has("error"):
            errors.append([_parse_error_flag(cells[c]) if (c := model_cols[m].get("error")) else False for m in models])
        for m in predictions:
            text = cells[model_cols[m]["prediction"]]
            predictions[m].append(text if text.strip() else None)
    if not sample_ids:
        raise LrcalError(f"{rows.path}: no data rows")
    k = len(models)
    as_array = lambda values: np.asarray(values, dtype=np.float64).reshape(len(sample_ids), k) if values else None  # noqa: E731
    return OutcomeTable(
        name=name or rows.path.stem,
        sample_ids=sample_ids,
        tasks=tasks,
        questions=questions,
        answers=answers,
        images=images,
        metadata=metadata,
        models=models,
        scores=as_array(scores),
        cost_usd=as_array(costs),
        output_tokens=as_array(tokens),
        latency_ms=as_array(latencies),
        errors=np.asarray(errors, dtype=bool).reshape(len(sample_ids), k) if errors else None,
        predictions=predictions,
    )


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
    samples = _Rows(Path(samples_path))
    _models, _cols, consumed = _split_model_columns(samples.path, samples.header)
    images_base = Path(images_dir) if images_dir is not None else None
    sample_cols = _SampleColumns(samples, images_base, consumed, image_check)
    if sample_cols.id_col is None:
        raise LrcalError(f"{samples.path}: header has no sample id column (one of {', '.join(SAMPLE_ID_ALIASES)})")
    sample_ids: list[str] = []
    tasks: list[str | None] = []
    questions: list[str | None] = []
    answers: list[str | None] = []
    images: list[list[str]] = []
    metadata: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for row, line, cells in samples:
        sample_id, task, question, answer, imgs, meta = sample_cols.parse(row, line, cells)
        _check_unique(samples, seen, sample_id, row, line, sample_cols.id_col)
        sample_ids.append(sample_id)
        tasks.append(task)
        questions.append(question)
        answers.append(answer)
        images.append(imgs)
        metadata.append(meta)
    if not sample_ids:
        raise LrcalError(f"{samples.path}: no data rows")
    position = {sid: i for i, sid in enumerate(sample_ids)}

    outcomes = _Rows(Path(outcomes_path))
    id_col = _first_present(outcomes.header, SAMPLE_ID_ALIASES)
    model_col = _first_present(outcomes.header, LONG_MODEL_ALIASES)
    score_col = _first_present(outcomes.header, LONG_SCORE_ALIASES)
    for label, col, aliases in (("sample id", id_col, SAMPLE_ID_ALIASES), ("model", model_col, LONG_MODEL_ALIASES),
                                ("score", score_col, LONG_SCORE_ALIASES)):
        if col is None:
            raise LrcalError(f"{outcomes.path}: header has no {label} column (one of {', '.join(aliases)})")
    cost_col = _first_present(outcomes.header, LONG_COST_ALIASES)
    tokens_col = _first_present(outcomes.header, LONG_TOKENS_ALIASES)
    latency_col = _first_present(outcomes.header, LONG_LATENCY_ALIASES)
    error_col = _first_present(outcomes.header, LONG_ERROR_ALIASES)

    models: list[str] = []
    model_index: dict[str, int] = {}
    entries: list[tuple[int, int, float, float, float, float, bool]] = []
    seen_pairs: dict[tuple[int, int], int] = {}
    nan = math.nan
    for row, line, cells in outcomes:
        sample_id = cells[id_col].strip()
        if sample_id not in position:
            raise LrcalError(f"{outcomes.where(row, line, id_col)}: sample id {_short(sample_id)} is not in {samples.path.name}")
        model = cells[model_col].strip()
        if not model:
            raise LrcalError(f"{outcomes.where(row, line, model_col)}: empty model name")
        if model not in model_index:
            model_index[model] = len(models)
            models.append(model)
        i, k = position[sample_id], model_index[model]
        if (i, k) in seen_pairs:
            raise LrcalError(
                f"{outcomes.where(row, line, model_col)}: duplicate outcome for sample {_short(sample_id)} and model "
                f"{_short(model)} (first at row {seen_pairs[(i, k)]})"
            )
        seen_pairs[(i, k)] = row
        entries.append((
            i,
            k,
            _parse_score(outcomes, row, line, score_col, cells[score_col]),
            _parse_nonnegative(outcomes, row, line, cost_col, cells[cost_col], "cost") if cost_col else nan,
            _parse_nonnegative(outcomes, row, line, tokens_col, cells[tokens_col], "token count") if tokens_col else nan,
            _parse_nonnegative(outcomes, row, line, latency_col, cells[latency_col], "latency") if latency_col else nan,
            _parse_error_flag(cells[error_col]) if error_col else False,
        ))
    if not models:
        raise LrcalError(f"{outcomes.path}: no outcome rows")
    n, k = len(sample_ids), len(models)
    grids = [np.full((n, k), nan) for _ in range(4)]
    err = np.zeros((n, k), dtype=bool)
    for i, j, score, cost, tok, lat, is_error in entries:
        grids[0][i, j], grids[1][i, j], grids[2][i, j], grids[3][i, j] = score, cost, tok, lat
        err[i, j] = is_error
    return OutcomeTable(
        name=name or outcomes.path.stem,
        sample_ids=sample_ids,
        tasks=tasks,
        questions=questions,
        answers=answers,
        images=images,
        metadata=metadata,
        models=models,
        scores=grids[0],
        cost_usd=grids[1] if cost_col else None,
        output_tokens=grids[2] if tokens_col else None,
        latency_ms=grids[3] if latency_col else None,
        errors=err if error_col else None,
    )
