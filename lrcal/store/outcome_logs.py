"""Writes of an imported outcome log (mixed into `Store`): its set, models, runs and outcomes.

The importer checks the whole file first and then calls these inside one ``store.write()``,
so a malformed file writes nothing; each method also works on its own (transactions nest).
"""

from __future__ import annotations

from typing import Iterable

from lrcal import lifecycle
from lrcal.store.encoding import dumps, utcnow


class OutcomeLogWrites:
    def insert_imported_set(
        self, name: str, version: str, path: str, task_groups: list[str], examples: list[dict]
    ) -> dict:
        """Create the set row + examples of an imported outcome log (``examples``: examples rows without
        ``set_id``, ``metadata`` a dict)."""
        with self.write():
            set_id = (
                self.db["calibration_sets"]
                .insert(
                    {
                        "name": name,
                        "version": version,
                        "path": self.stored_path(path),
                        "task_groups": dumps(task_groups),
                        "size": len(examples),
                        "kind": "imported",
                        "created_at": utcnow(),
                    }
                )
                .last_pk
            )
            self.db["examples"].insert_all(
                ({"set_id": set_id, **ex, "metadata": dumps(ex.get("metadata") or {})} for ex in examples),
                batch_size=1000,
            )
        return self.get_set_by_id(set_id)

    def add_imported_model(self, name: str, *, dataset: str, at: str) -> int:
        """A model known only from an outcome log (no endpoint); returns its id."""
        return self._insert_row("models", name=name, status=lifecycle.IMPORTED, source="imported", created_at=at,
                                updated_at=at, metadata=dumps({"imported_from": dataset}), price_in_per_mtok=0.0,
                                price_out_per_mtok=0.0)  # fmt: skip

    def add_completed_run(self, model_id: int, set_id: int, kind: str, *, parameters: dict, at: str) -> int:
        """A run that is over when it is recorded (an imported log's column); returns its id."""
        return self._insert_row("runs", model_id=model_id, set_id=set_id, kind=kind, status="completed",
                                started_at=at, finished_at=at, parameters=dumps(parameters))  # fmt: skip

    def insert_outcomes(self, rows: Iterable[dict]) -> None:
        """Many outcome rows at once (``run_id``, ``example_id`` = examples row id, the measured fields)."""
        with self.write():
            self.db["outcomes"].insert_all(rows, batch_size=2000)
