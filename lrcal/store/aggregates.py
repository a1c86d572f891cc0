"""Aggregates over stored outcomes and examples (mixed into `Store`): counts, means, overlaps."""

from __future__ import annotations

from typing import Collection, Sequence

# The error kind of an outcome-log row flagged as an error by its log (its score is the log's).
IMPORTED_ERROR = "imported_error"
# An outcome that measured something: no error, or an outcome log's own error flag. Endpoint
# errors are excluded, never counted as wrong (lrcal.services.run_health).
MEASURED = f"(o.error_kind is null or o.error_kind = '{IMPORTED_ERROR}')"
# One query, wherever it is stored: the same example in two sets (a quick subset of a built-in
# set, an outcome log imported twice, or again in a corrected version) counts once in training,
# token fits and counts, its latest outcome winning. Its id, task, question and image; an
# example with neither question nor image (a log of ids and tasks only) is told apart by its
# set's name as well, since its id alone may repeat in an unrelated log. SQL over ``examples e``
# joined with ``calibration_sets s``.
QUERY_KEY = (
    "(e.example_id || char(31) || coalesce(e.task_group, '') || char(31) || coalesce(e.question, '') || char(31) "
    "|| coalesce(e.image_sha256, '') || char(31) "
    "|| case when coalesce(e.question, '') = '' and e.image_sha256 is null then s.name else '' end)"
)


def runs_not_in(run_ids: Collection[int]) -> tuple[str, list[int]]:
    """(" and r.id not in (?, ...)", its parameters) leaving out ``run_ids`` (empty: no clause),
    for the queries that count only a model's runs that count (`lrcal.services.calibration_basis`)."""
    if not run_ids:
        return "", []
    return f" and r.id not in ({','.join('?' * len(run_ids))})", [int(run_id) for run_id in run_ids]


class OutcomeAggregates:
    # ---- outcomes per model --------------------------------------------------------------

    def outcome_example_counts(self, kinds: Sequence[str], *, measured_only: bool = False,
                               left_out_runs: Collection[int] = ()) -> dict[int, int]:
        """model id -> distinct queries (`QUERY_KEY`) with an outcome in the model's runs of these
        kinds (``measured_only``: endpoint errors left out; ``left_out_runs``: run ids that do not
        count, `lrcal.services.calibration_basis`)."""
        placeholders = ",".join("?" * len(kinds))
        left_out, left_out_params = runs_not_in(left_out_runs)
        return {
            r["model_id"]: r["n"]
            for r in self.query(
                f"select r.model_id, count(distinct {QUERY_KEY}) as n from outcomes o join runs r on r.id = o.run_id "
                "join examples e on e.id = o.example_id join calibration_sets s on s.id = e.set_id "
                f"where r.kind in ({placeholders}) {'and ' + MEASURED if measured_only else ''}{left_out} "
                "group by r.model_id",
                [*kinds, *left_out_params],
            )
        }

    def token_means(self, model_id: int, kind: str, *, left_out_runs: Collection[int] = ()) -> dict:
        """{input_tokens, output_tokens, n}: mean tokens per error-free outcome of the model's runs of ``kind``
        (means None when there is none; ``left_out_runs``: runs that do not count)."""
        left_out, left_out_params = runs_not_in(left_out_runs)
        row = self.query_one(
            "select avg(o.input_tokens) as input_tokens, avg(o.output_tokens) as output_tokens, count(*) as n "
            "from outcomes o join runs r on r.id = o.run_id where r.model_id = ? and r.kind = ? "
            f"and o.error_kind is null{left_out}",
            [model_id, kind, *left_out_params],
        )
        return dict(row)

    def latencies(self, model_id: int, kind: str, *, left_out_runs: Collection[int] = ()) -> list[float]:
        """Latency of every error-free outcome (with one) of the model's runs of ``kind`` (``left_out_runs``:
        runs that do not count)."""
        left_out, left_out_params = runs_not_in(left_out_runs)
        return [
            r["latency_ms"]
            for r in self.query(
                "select o.latency_ms from outcomes o join runs r on r.id = o.run_id where r.model_id = ? "
                f"and r.kind = ? and o.error_kind is null and o.latency_ms is not null{left_out}",
                [model_id, kind, *left_out_params],
            )
        ]

    def mean_correct(self, model_id: int, kinds: Sequence[str], *, left_out_runs: Collection[int] = ()) -> float | None:
        """Share of correct answers over the model's latest outcome per query (`QUERY_KEY`) in its
        runs of these kinds, endpoint errors and ``left_out_runs`` left out (None: no answer). Every
        stored row would count a query asked twice twice, and an old log version beside the new."""
        correct = [o["correct"] for o in self.model_outcomes(model_id, kinds=kinds, left_out_runs=left_out_runs)
                   if (o["error_kind"] is None or o["error_kind"] == IMPORTED_ERROR) and o["correct"] is not None]
        return sum(correct) / len(correct) if correct else None

    # ---- examples of stored sets ---------------------------------------------------------

    def set_kinds(self) -> dict[int, str]:
        """set id -> kind (calibration | imported) of every stored set."""
        return {r["id"]: r["kind"] for r in self.query("select id, kind from calibration_sets")}

    def queries_stored_elsewhere(self, set_id: int) -> dict[str, int]:
        """set name -> how many of this set's examples are queries (`QUERY_KEY`) that set holds too."""
        base = f"select {QUERY_KEY} as q, s.name as name from examples e join calibration_sets s on s.id = e.set_id "
        mine = {r["q"] for r in self.query(base + "where e.set_id = ?", [set_id])}
        out: dict[str, int] = {}
        for r in self.query(base + "where e.set_id != ?", [set_id]):
            if r["q"] in mine:
                out[r["name"]] = out.get(r["name"], 0) + 1
        return out

    def example_pks(self, set_id: int) -> dict[str, int]:
        """example id (as named in the set) -> examples row id."""
        rows = self.query("select id, example_id from examples where set_id = ?", [set_id])
        return {r["example_id"]: r["id"] for r in rows}

    def task_group_counts(self, set_id: int) -> dict[str | None, int]:
        """task group (None: none) -> examples of the set."""
        rows = self.query("select task_group, count(*) as n from examples where set_id = ? group by task_group", [set_id])
        return {r["task_group"]: r["n"] for r in rows}

    def shared_content(self, set_a: int, set_b: int) -> dict[str, int]:
        """How many examples two stored sets share, by example id and by image hash."""
        same_ids = self.query_one(
            "select count(*) as n from examples a join examples b on a.example_id = b.example_id "
            "where a.set_id = ? and b.set_id = ?",
            [set_a, set_b],
        )["n"]
        same_images = self.query_one(
            "select count(distinct a.image_sha256) as n from examples a join examples b "
            "on a.image_sha256 = b.image_sha256 where a.set_id = ? and b.set_id = ? and a.image_sha256 is not null",
            [set_a, set_b],
        )["n"]
        return {"examples": same_ids, "images": same_images}
