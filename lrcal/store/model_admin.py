"""Changing and removing a registered model (mixed into `Store`): `lrcal models set|remove`.

Each change is one transaction with its audit-log event. A removed model keeps its row (status
``removed``), runs, outcomes, tokens and validations for audit; a purge deletes those, and the
row stays only as the target of its append-only events, renamed so that the name is free again.
"""

from __future__ import annotations

from typing import Any

from lrcal import lifecycle
from lrcal.store.encoding import dumps, utcnow


class ModelAdmin:
    def change_model(self, name: str, changes: dict[str, Any], *, message: str) -> dict:
        """Update ``changes`` (column -> new value) and log a ``changed`` event with the old and new values."""
        with self.write():
            model = self.get_model(name)
            before = {key: model[key] for key in changes}
            now = utcnow()
            self.db["models"].update(model["id"], {**changes, "updated_at": now})
            self.db["events"].insert(
                {
                    "ts": now,
                    "model_id": model["id"],
                    "kind": "changed",
                    "message": message,
                    "data": dumps({"before": before, "after": changes}),
                }
            )
        return self.get_model(name)

    def model_footprint(self, model_id: int) -> dict[str, int]:
        """How many runs, outcomes, tokens and validations belong to the model."""
        return self.query_one(
            "select (select count(*) from runs where model_id = :m) as runs, "
            "(select count(*) from outcomes where run_id in (select id from runs where model_id = :m)) as outcomes, "
            "(select count(*) from model_tokens where model_id = :m) as tokens, "
            "(select count(*) from validations where model_id = :m) as validations",
            {"m": model_id},
        )

    def remove_model(self, name: str, *, purge: bool, reason: str = "") -> dict:
        """Take the model out for good: status ``removed`` (everything kept), or with ``purge``
        delete its runs, outcomes, tokens and validations. Returns what it held."""
        with self.write():
            model = self.get_model(name)
            footprint = self.model_footprint(model["id"])
            now = utcnow()
            fields: dict[str, Any] = {"status": lifecycle.REMOVED, "updated_at": now}
            if purge:
                mid = model["id"]
                self.db.execute("delete from outcomes where run_id in (select id from runs where model_id = ?)", [mid])
                self.db.execute("delete from validations where model_id = ?", [mid])
                self.db.execute("delete from runs where model_id = ?", [mid])
                self.db.execute("delete from model_tokens where model_id = ?", [mid])
                # The append-only events still point at this row: keep it, under a name nobody types.
                fields["name"] = f"{name} (purged #{mid})"
            self.db["models"].update(model["id"], fields)
            what = "purged: its runs, outcomes, tokens and validations deleted" if purge else (
                "removed; its outcomes are kept for audit")
            self.db["events"].insert(
                {
                    "ts": now,
                    "model_id": model["id"],
                    "kind": "purged" if purge else "removed",
                    "message": f"{name} {what}" + (f": {reason}" if reason else ""),
                    "data": dumps({"from": model["status"], "purged": purge, **footprint}),
                }
            )
        return {"name": name, "previous_status": model["status"], "purged": purge, **footprint}
