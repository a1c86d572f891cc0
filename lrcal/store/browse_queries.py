"""Browsing stored outcomes, newest first (`lrcal outcomes`), mixed into `Store`.

Each row joins the outcome with its model, run, set and example, so that one line says what
was asked, what the reference is, what the model answered and how it scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BROWSE_COLUMNS = (
    "o.id, o.created_at, m.name as model, r.id as run_id, r.kind as run_kind, s.name as set_name, "
    "e.example_id, e.task_group, e.question, e.answer as reference, o.parsed_answer, o.raw_answer, o.score, "
    "o.correct, o.latency_ms, o.input_tokens, o.output_tokens, o.cost_usd, o.error_kind, o.error_message, "
    "o.attempts"
)


@dataclass(frozen=True)
class OutcomeFilter:
    """Which outcomes to browse: every condition given must hold. ``errors``: only failed calls;
    ``wrong``: only answers scored wrong (no error, not correct); ``limit``: the newest N (None: all)."""

    model_id: int | None = None
    set_id: int | None = None
    task: str | None = None
    errors: bool = False
    wrong: bool = False
    limit: int | None = 20


class OutcomeBrowsing:
    def browse_outcomes(self, where: OutcomeFilter) -> list[dict]:
        """The newest outcomes that pass ``where``, newest first."""
        sql = (
            f"select {BROWSE_COLUMNS} from outcomes o join runs r on r.id = o.run_id "
            "join models m on m.id = r.model_id join examples e on e.id = o.example_id "
            "left join calibration_sets s on s.id = r.set_id where 1=1"
        )
        params: list[Any] = []
        for clause, value in (("m.id = ?", where.model_id), ("r.set_id = ?", where.set_id),
                              ("e.task_group = ?", where.task)):  # fmt: skip
            if value is not None:
                sql += f" and {clause}"
                params.append(value)
        if where.errors:
            sql += " and o.error_kind is not null"
        if where.wrong:
            sql += " and o.error_kind is null and coalesce(o.correct, 0) = 0"
        sql += " order by o.id desc"
        if where.limit:
            sql += f" limit {int(where.limit)}"
        return self.query(sql, params)

    def task_groups_with_outcomes(self) -> list[str]:
        """Every task group some outcome was stored for (to name the choices of a bad --task)."""
        rows = self.query(
            "select distinct e.task_group from outcomes o join examples e on e.id = o.example_id "
            "where e.task_group is not null order by e.task_group"
        )
        return [r["task_group"] for r in rows]
