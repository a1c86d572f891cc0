"""`OutcomeTable`: the in-memory outcome matrix (samples x models) shared by the router,
the benchmarks and the importers, and the readers of outcome CSV files that build it.

``read_outcome_table`` reads either format: the wide CSV (``wide``: one row per sample,
``<M>_correct`` per model, MMR-Bench compatible) or the long one (``long``: one row per
(sample, model) plus a samples CSV). Every malformed input raises
:class:`lrcal.errors.LrcalError` with one line naming the file, the row and the column.
"""

from lrcal.outcome_table.csv_rows import MAX_CELL_CHARS
from lrcal.outcome_table.long import read_long_csv
from lrcal.outcome_table.read import read_outcome_table
from lrcal.outcome_table.samples import SAMPLE_ID_ALIASES, TASK_ALIASES, ImageCheck
from lrcal.outcome_table.table import OutcomeTable
from lrcal.outcome_table.wide import MODEL_COLUMN_SUFFIXES, read_wide_csv

__all__ = [
    "MAX_CELL_CHARS",
    "MODEL_COLUMN_SUFFIXES",
    "SAMPLE_ID_ALIASES",
    "TASK_ALIASES",
    "ImageCheck",
    "OutcomeTable",
    "read_long_csv",
    "read_outcome_table",
    "read_wide_csv",
]
