"""Query featurizer: text + pixels + optional metadata -> one fixed-size float32 vector.

Pure functions of the query (question, images, task label, metadata columns). Never the
reference answer, never any model's answer or outcome.

    spec = fit_feature_spec(table.tasks, table.metadata)      # at training time
    X = featurize_table(spec, table)                          # [N, spec.dim]
    x = featurize(spec, [Query(question="...", images=["a.png"])])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from lrcal.features.image import IMAGE_STAT_NAMES, batch_image_features
from lrcal.features.metadata import metadata_features, task_features
from lrcal.features.spec import FEATURE_FORMAT_VERSION, FeatureSpec, choice_texts, fit_feature_spec
from lrcal.features.text import CUE_NAMES, hashed_ngrams, normalize_text, text_cues

__all__ = [
    "Query",
    "FeatureSpec",
    "FEATURE_FORMAT_VERSION",
    "fit_feature_spec",
    "featurize",
    "featurize_table",
    "CUE_NAMES",
    "IMAGE_STAT_NAMES",
]


@dataclass
class Query:
    question: str | None = None
    images: list[str] = field(default_factory=list)
    task: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def featurize(spec: FeatureSpec, queries: Sequence[Query], *, workers: int | None = None) -> np.ndarray:
    n = len(queries)
    X = np.zeros((n, spec.dim), dtype=np.float32)
    task_index = {t: i for i, t in enumerate(spec.task_vocab)}
    word, char, cues, task, meta = (spec.block(b) for b in ("word", "char", "cues", "task", "meta"))
    image_args = dict(
        thumb_size=spec.thumb_size,
        proj_dim=spec.image_proj_dim,
        seed=spec.seed,
        max_images=spec.max_images,
        workers=workers,
        decode=spec.image_decode,
    )
    image_lists = [q.images or [] for q in queries]
    background = None
    if (workers is None or workers > 1) and sum(len(x) for x in image_lists) >= 64:
        # decode images (pillow releases the GIL) while this thread hashes the text
        from concurrent.futures import ThreadPoolExecutor

        background = ThreadPoolExecutor(max_workers=1)
        images_future = background.submit(batch_image_features, image_lists, **image_args)
    for i, query in enumerate(queries):
        metadata = query.metadata or {}
        choices = choice_texts(metadata)
        raw = query.question if isinstance(query.question, str) else None
        text = raw or ""
        if choices:
            text = text + "\n" + "\n".join(choices)
        norm = normalize_text(text, spec.max_text_chars) if text.strip() else ""
        X[i, word] = hashed_ngrams(norm, spec.word_dim, spec.word_ngrams, "word")
        X[i, char] = hashed_ngrams(norm, spec.char_dim, spec.char_ngrams, "char")
        X[i, cues] = text_cues(raw[: spec.max_text_chars] if raw and raw.strip() else None, len(choices))
        X[i, task] = task_features(spec, query.task, task_index)
        X[i, meta] = metadata_features(spec, metadata)
    if background is not None:
        try:
            X[:, spec.block("image")] = images_future.result()
        finally:
            background.shutdown()
    else:
        X[:, spec.block("image")] = batch_image_features(image_lists, **image_args)
    return X


def queries_from_table(table, rows: Sequence[int] | np.ndarray | None = None) -> list[Query]:
    idx = range(table.n_samples) if rows is None else [int(i) for i in rows]
    return [
        Query(question=table.questions[i], images=list(table.images[i]), task=table.tasks[i], metadata=dict(table.metadata[i]))
        for i in idx
    ]


def featurize_table(spec: FeatureSpec, table, rows: Sequence[int] | np.ndarray | None = None, *, workers: int | None = None) -> np.ndarray:
    """Features of an `OutcomeTable`'s queries (its answers and outcomes are not read)."""
    return featurize(spec, queries_from_table(table, rows), workers=workers)
