"""One entry point for outcome files: the wide CSV, or the long CSV with its samples CSV."""

from __future__ import annotations

from pathlib import Path

from lrcal.outcome_table.long import read_long_csv
from lrcal.outcome_table.samples import ImageCheck
from lrcal.outcome_table.table import OutcomeTable
from lrcal.outcome_table.wide import read_wide_csv


def read_outcome_table(
    path: str | Path,
    samples: str | Path | None = None,
    *,
    images_dir: str | Path | None = None,
    name: str | None = None,
    image_check: ImageCheck | None = None,
) -> OutcomeTable:
    """The outcome table of ``path``: a wide CSV, or with ``samples`` a long-format outcomes
    CSV and its samples CSV. Image paths resolve against ``images_dir`` (default: the CSV's
    folder); ``image_check`` is called with each image's path."""
    if samples is not None:
        return read_long_csv(path, samples, images_dir=images_dir, name=name, image_check=image_check)
    return read_wide_csv(path, images_dir=images_dir, name=name, image_check=image_check)
