"""The per-sample columns of an outcome CSV (id, task, question, answer, images, other
metadata): recognised in the header by their aliases, parsed and checked row by row."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any, Callable

from lrcal.errors import LrcalError
from lrcal.input_files import has_hidden_characters
from lrcal.outcome_table.csv_rows import CsvRows, first_present, shown
from lrcal.outcome_table.table import SAMPLE_FIELDS

SAMPLE_ID_ALIASES = ("sample_id", "dataset_idx", "id", "pid", "idx")
TASK_ALIASES = ("task", "dataset", "group", "subject", "category")
QUESTION_ALIASES = ("question",)
ANSWER_ALIASES = ("answer",)
IMAGE_ALIASES = ("image", "image_paths", "image_path", "images")

# Called with an image's resolved path; raises LrcalError (no location: the reader adds it).
ImageCheck = Callable[[Path], None]

_MMR_INDEX = re.compile(r"^(.+)_(\d+)$")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


class SampleReader:
    """Recognizes the per-sample columns of ``rows``'s header (minus ``exclude``), then
    parses one row at a time with :meth:`add` and keeps the samples in file order."""

    def __init__(
        self, rows: CsvRows, images_dir: Path | None, exclude: set[str], image_check: ImageCheck | None = None
    ) -> None:
        self.rows = rows
        self.image_check = image_check
        header = [h for h in rows.header if h not in exclude]
        self.id_col = first_present(header, SAMPLE_ID_ALIASES)
        self.task_col = first_present(header, TASK_ALIASES)
        self.question_col = first_present(header, QUESTION_ALIASES)
        self.answer_col = first_present(header, ANSWER_ALIASES)
        self.image_col = first_present(header, IMAGE_ALIASES)
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
        self.sample_ids: list[str] = []
        self.tasks: list[str | None] = []
        self.questions: list[str | None] = []
        self.answers: list[str | None] = []
        self.images: list[list[str]] = []
        self.metadata: list[dict[str, str]] = []
        self._first_row: dict[str, int] = {}

    def add(self, row: int, line: int, cells: dict[str, str]) -> None:
        """Parse one row's sample columns and keep them; its id must be new."""
        sample_id = self._sample_id(row, line, cells)
        task = self._task(sample_id, cells)
        question = cells[self.question_col] if self.question_col else None
        answer = cells[self.answer_col] if self.answer_col else None
        images = self._images(row, line, cells[self.image_col]) if self.image_col else []
        metadata = {c: cells[c] for c in self.meta_cols if cells[c].strip()}
        key = unicodedata.normalize("NFC", sample_id)  # ids that only Unicode normalisation tells apart are one
        if key in self._first_row:
            raise LrcalError(
                f"{self.rows.where(row, line, self.id_col)}: duplicate sample id {shown(sample_id)} "
                f"(first at row {self._first_row[key]})"
            )
        self._first_row[key] = row
        self.sample_ids.append(sample_id)
        self.tasks.append(task)
        self.questions.append(question if question and question.strip() else None)
        self.answers.append(answer if answer is not None and answer.strip() else None)
        self.images.append(images)
        self.metadata.append(metadata)

    def require_some(self) -> None:
        if not self.sample_ids:
            raise LrcalError(f"{self.rows.path}: no data rows")

    def table_fields(self) -> dict[str, Any]:
        """The samples as :class:`OutcomeTable` keyword arguments."""
        return {label: getattr(self, label) for label in SAMPLE_FIELDS}

    def _sample_id(self, row: int, line: int, cells: dict[str, str]) -> str:
        if self.id_col is None:
            return str(row)
        sample_id = cells[self.id_col].strip()
        if not sample_id:
            raise LrcalError(f"{self.rows.where(row, line, self.id_col)}: empty sample id")
        # as calibration-set ids: "s1" and "s1" + a zero-width space were two samples that every
        # listing shows alike, with their own outcomes for what reads as one query
        if has_hidden_characters(sample_id):
            raise LrcalError(f"{self.rows.where(row, line, self.id_col)}: sample id {shown(sample_id)} "
                             "contains control or invisible format characters")
        return sample_id

    def _task(self, sample_id: str, cells: dict[str, str]) -> str | None:
        if self.task_col is not None:
            return cells[self.task_col].strip() or None
        if self.mmr_tasks:  # MMR-Bench: dataset_idx "OCRBench_12" is sample 12 of task OCRBench
            match = _MMR_INDEX.match(sample_id)
            return match.group(1) if match else None
        return None

    def _images(self, row: int, line: int, cell: str) -> list[str]:
        text = cell.strip()
        if not text:
            return []
        where = self.rows.where(row, line, self.image_col)
        if text.startswith("["):
            try:
                items = json.loads(text)
            except (json.JSONDecodeError, RecursionError):  # a list nested thousands deep
                raise LrcalError(f"{where}: image list is not valid JSON") from None
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise LrcalError(f"{where}: image list must be a JSON list of paths")
        else:
            items = [text]
        return [self._image(where, item.strip()) for item in items if item.strip()]

    def _image(self, where: str, item: str) -> str:
        """The resolved path of one image cell entry, checked to lie under the images directory."""
        if _URL.match(item):
            raise LrcalError(f"{where}: image {shown(item)} is a URL; only local files are supported")
        candidate = Path(item)
        path = candidate if candidate.is_absolute() else self.images_base / candidate
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError, ValueError):
            raise LrcalError(f"{where}: image path {shown(item)} cannot be resolved") from None
        if not resolved.is_relative_to(self.images_base):
            raise LrcalError(f"{where}: image path {shown(item)} escapes the images directory {self.images_base}")
        if not resolved.is_file():
            raise LrcalError(f"{where}: image file {shown(item)} not found under {self.images_base}")
        if self.image_check is not None:
            try:
                self.image_check(resolved)
            except LrcalError as exc:
                raise LrcalError(f"{where}: {exc}") from None
        return str(resolved)
