"""Router versions and the capability tokens fitted for them (mixed into `Store`).

Rows come back as stored, except ``path`` (absolute; stored relative to the home): the JSON columns (``models``, ``config``, ``metrics``, ``token``,
``per_task``, ``details``) stay text for the caller to decode with `lrcal.store.loads`.
"""

from __future__ import annotations

from typing import Any

from lrcal.store.encoding import dumps, utcnow


class RouterQueries:
    # ---- router versions ------------------------------------------------------------

    def find_router_version(self, version: str) -> dict | None:
        """The version named ``version`` or starting with it (the newest such)."""
        return self._with_path(self.query_one(
            "select * from router_versions where version = ? or version like ? order by id desc",
            [version, version + "%"],
        ))

    def current_router_version(self) -> dict | None:
        """The pinned version, else the newest; None before the first training."""
        pinned = self.query_one("select * from router_versions where pinned = 1 order by id desc limit 1")
        return self._with_path(pinned or self.query_one("select * from router_versions order by id desc limit 1"))

    def router_versions(self) -> list[dict]:
        """Every version, newest first."""
        return [self._with_path(row) for row in self.query("select * from router_versions order by id desc")]

    def router_version_count(self) -> int:
        return self.query_one("select count(*) as n from router_versions")["n"]

    def register_router_version(
        self, version: str, *, path: str, models: list[str], data_hash: str, config: dict, metrics: dict
    ) -> None:
        """Record a newly trained version. Tokens belong to a router version: every token
        fitted for another version becomes stale in the same transaction."""
        with self.write():
            self._insert_row("router_versions", version=version, path=self.stored_path(path), created_at=utcnow(), models=dumps(models),
                             data_hash=data_hash, config=dumps(config), metrics=dumps(metrics), pinned=0)  # fmt: skip
            self.db.execute("update model_tokens set stale = 1 where router_version != ?", [version])

    def pin_router_version(self, version_id: int) -> None:
        """Use this version from now on instead of the newest."""
        with self.write():
            self.db.execute("update router_versions set pinned = 0")
            self.db.execute("update router_versions set pinned = 1 where id = ?", [version_id])

    def unpin_router_versions(self) -> str | None:
        """Use the newest version again; the audit event names the version that was pinned
        (None, and no event, when none was)."""
        with self.write():
            row = self.query_one("select version from router_versions where pinned = 1")
            self.db.execute("update router_versions set pinned = 0")
            if row is not None:
                self.log_event("router_unpinned", message=f"router {row['version']} unpinned: the newest version is used")
        return row["version"] if row else None

    # ---- capability tokens ------------------------------------------------------------

    def add_model_token(
        self,
        model_id: int,
        router_version: str,
        *,
        token: str,
        prior_strength: float | None,
        fit_loss: float | None,
        cv_score: float | None,
        per_task: dict,
        n_examples: int,
        set_version: str,
        fit_seconds: float,
        details: dict[str, Any],
    ) -> None:
        """Store a fitted token (``token``: the card's JSON text) for ``router_version``."""
        self._insert_row("model_tokens", model_id=model_id, router_version=router_version, token=token,
                         prior_strength=prior_strength, fit_loss=fit_loss, cv_score=cv_score, per_task=dumps(per_task),
                         n_examples=n_examples, set_version=set_version, fit_seconds=fit_seconds, stale=0,
                         details=dumps(details), created_at=utcnow())  # fmt: skip

    def fresh_tokens(self, router_version: str) -> list[dict]:
        """The tokens of ``router_version`` that are not stale, oldest first, each with its model's ``name``."""
        return self.query(
            "select t.*, m.name from model_tokens t join models m on m.id = t.model_id "
            "where t.router_version = ? and t.stale = 0 order by t.id",
            [router_version],
        )

    def latest_token_states(self) -> dict[int, dict]:
        """model id -> {model_id, router_version, stale} of that model's most recent token."""
        return {
            r["model_id"]: r
            for r in self.query(
                "select model_id, router_version, stale from model_tokens where id in "
                "(select max(id) from model_tokens group by model_id)"
            )
        }
