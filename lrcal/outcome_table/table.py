"""`OutcomeTable`: the in-memory outcome matrix (samples x models) shared by the router,
the benchmarks and the importers."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from lrcal.errors import LrcalError

# The per-sample lists and the [N, K] grids of an OutcomeTable, in field order.
SAMPLE_FIELDS = ("sample_ids", "tasks", "questions", "answers", "images", "metadata")
GRID_FIELDS = ("scores", "cost_usd", "output_tokens", "latency_ms", "errors")


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
    # columns of the file left out as a model's outcomes in a form the reader does not know
    ignored_columns: list[str] = field(default_factory=list)

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
        for label in SAMPLE_FIELDS[1:]:
            values = getattr(self, label)
            if len(values) != n:
                raise LrcalError(f"{self.name}: {label} has {len(values)} entries, expected {n}")
        for label in GRID_FIELDS[1:]:
            arr = getattr(self, label)
            if arr is not None:
                arr = np.asarray(arr, dtype=bool if label == "errors" else np.float64)
                if arr.shape != (n, k):
                    raise LrcalError(f"{self.name}: {label} has shape {arr.shape}, expected ({n}, {k})")
                setattr(self, label, arr)

    # ---- selection -----------------------------------------------------------
    def select_rows(self, rows: Sequence[int] | np.ndarray) -> "OutcomeTable":
        idx = np.asarray(rows, dtype=np.int64)
        return self._rebuilt(
            lambda values: [values[i] for i in idx],
            lambda grid: grid[idx],
            list(self.models),
            list(self.predictions),
        )

    def select_models(self, models: Iterable[str]) -> "OutcomeTable":
        names = list(models)
        unknown = [m for m in names if m not in self.models]
        if unknown:
            raise LrcalError(f"{self.name}: unknown model(s) {', '.join(unknown)}")
        cols = np.array([self.models.index(m) for m in names], dtype=np.int64)
        return self._rebuilt(
            lambda values: [copy.copy(v) for v in values],  # every sample, own image lists and metadata
            lambda grid: grid[:, cols],
            names,
            [m for m in names if m in self.predictions],
        )

    def _rebuilt(
        self,
        pick_samples: Callable[[list], list],
        pick_grid: Callable[[np.ndarray], np.ndarray],
        models: list[str],
        predicted: list[str],
    ) -> "OutcomeTable":
        """A new table of the picked samples (a list per sample field) and grid cells, with
        ``models`` as its columns and the predictions of the ``predicted`` models."""
        return OutcomeTable(
            name=self.name,
            **{label: pick_samples(getattr(self, label)) for label in SAMPLE_FIELDS},
            models=models,
            **{label: None if (grid := getattr(self, label)) is None else pick_grid(grid) for label in GRID_FIELDS},
            predictions={m: pick_samples(self.predictions[m]) for m in predicted},
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
