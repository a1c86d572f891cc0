"""The store's queries behind the review service (`lrcal.services.review`, what `lrcal tui`
shows): counts, calibration outcomes per model, token and validation history, the queries a
run sent and the latest stored outcome per model × query.

A mixin of `Store` (it uses ``self.query`` / ``self.query_one``); rows are plain dicts, JSON
columns come back decoded.
"""

from __future__ import annotations

from typing import Any, Collection, Sequence

from lrcal.store.aggregates import runs_not_in

IN_LIST_CHUNK = 500  # values per `in (...)` list, well under SQLite's variable limit


def _decoded(value: str | None, default: Any) -> Any:
    from lrcal.store.store import loads  # store.py imports this module: no import at the top

    return loads(value, default)


def sql_marks(values: Sequence[Any]) -> str:
    """The ``?`` placeholders of an ``in (...)`` list of ``values``."""
    return ",".join("?" * len(values))


class ReviewQueries:
    """Mixed into `Store`, whose ``query`` / ``query_one`` these methods use."""

    # ---- counts -------------------------------------------------------------------------

    def home_counts(self) -> dict[str, int]:
        """Rows in ``models``, ``outcomes`` and ``validations``."""
        row = self.query_one(
            "select (select count(*) from models) as models, (select count(*) from outcomes) as outcomes, "
            "(select count(*) from validations) as validations"
        )
        return {key: int(row[key]) for key in ("models", "outcomes", "validations")}

    # ---- outcomes -----------------------------------------------------------------------

    def latest_outcomes_by_model(self, kinds: Sequence[str], left_out_runs: Collection[int] = ()) -> dict[int, list[dict]]:
        """{model_id: the latest outcome per example} over runs of ``kinds`` (model_id, example_id,
        correct, score, latency_ms, error_kind, cost_usd); models and examples in order of their
        first outcome. ``left_out_runs``: run ids that do not count (`lrcal.services.calibration_basis`)."""
        left_out, left_out_params = runs_not_in(left_out_runs)
        rows = self.query(
            "select r.model_id, o.example_id, o.correct, o.score, o.latency_ms, o.error_kind, o.cost_usd "
            f"from outcomes o join runs r on r.id = o.run_id where r.kind in ({sql_marks(kinds)}){left_out} order by o.id",
            [*kinds, *left_out_params],
        )
        latest: dict[int, dict[int, dict]] = {}
        for row in rows:
            latest.setdefault(row["model_id"], {})[row["example_id"]] = row  # later rows win
        return {mid: list(rows.values()) for mid, rows in latest.items()}

    def outcome_watermark(self, kinds: Sequence[str]) -> dict:
        """{last: the newest outcome id, n: outcomes} over runs of ``kinds``: changes with any new outcome."""
        return self.query_one(
            "select max(o.id) as last, count(*) as n from outcomes o join runs r on r.id = o.run_id "
            f"where r.kind in ({sql_marks(kinds)})",
            list(kinds),
        )

    def example_ids_with_outcomes(self, set_id: int, kinds: Sequence[str]) -> set[int]:
        """The examples of the set that runs of ``kinds`` sent (a --limit run sends a subset)."""
        rows = self.query(
            "select distinct o.example_id from outcomes o join runs r on r.id = o.run_id "
            f"where r.set_id = ? and r.kind in ({sql_marks(kinds)})",
            [set_id, *kinds],
        )
        return {r["example_id"] for r in rows}

    def latest_outcomes_for(self, models: Sequence[str], example_ids: Sequence[int]) -> dict[tuple[str, int], dict]:
        """{(model name, example id): its latest outcome row (any run kind)} for these examples."""
        if not models or not example_ids:
            return {}
        out: dict[tuple[str, int], dict] = {}
        ids = list(example_ids)
        for start in range(0, len(ids), IN_LIST_CHUNK):
            chunk = ids[start : start + IN_LIST_CHUNK]
            rows = self.query(
                "select m.name as model, o.* from outcomes o join runs r on r.id = o.run_id "
                f"join models m on m.id = r.model_id where o.example_id in ({sql_marks(chunk)}) "
                f"and m.name in ({sql_marks(models)}) order by o.id",
                [*chunk, *models],
            )
            for row in rows:
                out[(row["model"], row["example_id"])] = row
        return out

    def latest_outcome_set_id(self, kinds: Sequence[str]) -> int | None:
        """The set of the newest run of ``kinds``."""
        row = self.query_one(
            f"select set_id from runs where kind in ({sql_marks(kinds)}) order by id desc limit 1", list(kinds)
        )
        return row["set_id"] if row else None

    # ---- models and tokens ---------------------------------------------------------------

    def model_prices(self) -> list[dict]:
        """id, name, price_in_per_mtok, price_out_per_mtok of every model, in order."""
        return self.query("select id, name, price_in_per_mtok, price_out_per_mtok from models order by id")

    def token_history(self) -> list[dict]:
        """Every capability-token row (id, model_id, router_version, stale), oldest first."""
        return self.query("select id, model_id, router_version, stale from model_tokens order by id")

    def onboarded_model_names(self, router_version: str) -> set[str]:
        """Models with a current (not stale) capability token for ``router_version``."""
        rows = self.query(
            "select distinct m.name from model_tokens t join models m on m.id = t.model_id "
            "where t.router_version = ? and t.stale = 0",
            [router_version],
        )
        return {r["name"] for r in rows}

    def latest_token_per_task(self, model_id: int) -> dict:
        """The per-task predictions of the model's latest current token ({} when none)."""
        row = self.query_one(
            "select per_task from model_tokens where model_id = ? and stale = 0 order by id desc limit 1", [model_id]
        )
        return _decoded(row["per_task"], {}) if row else {}

    # ---- validations ----------------------------------------------------------------------

    def latest_validations(self) -> list[dict]:
        """Each model's latest validations row, oldest first, with ``model`` (its name) and
        ``set_name``; reasons, results and parameters decoded."""
        rows = self.query(
            "select v.*, m.name as model, s.name as set_name from validations v join models m on m.id = v.model_id "
            "left join calibration_sets s on s.id = v.set_id "
            "where v.id in (select max(id) from validations group by model_id) order by v.id"
        )
        for row in rows:
            row["reasons"] = _decoded(row["reasons"], [])
            row["results"] = _decoded(row["results"], {})
            row["parameters"] = _decoded(row["parameters"], {})
        return rows

    def validated_models_first(self) -> list[str]:
        """Model names of every validation, those that passed first, newest first within each."""
        rows = self.query(
            "select m.name from validations v join models m on m.id = v.model_id "
            "order by (v.decision = 'validated') desc, v.id desc"
        )
        return [r["name"] for r in rows]

    def latest_validation_set_id(self) -> int | None:
        row = self.query_one("select set_id from validations order by id desc limit 1")
        return row["set_id"] if row else None

    def set_was_validated(self, set_name: str) -> bool:
        """Whether a validation ran on (the newest version of) the named set."""
        row = self.query_one(
            "select 1 from validations where set_id = (select id from calibration_sets where name = ? "
            "order by id desc limit 1)",
            [set_name],
        )
        return row is not None
