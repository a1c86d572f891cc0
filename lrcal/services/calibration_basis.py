"""Which of a model's calibration runs its numbers rest on: the token fit, router training, the
counts and the TUI's measured accuracy all read the same runs.

A calibration run is left out when
* a later run was asked with ``--fresh`` (the user said the stored outcomes no longer describe
  the model, e.g. after `lrcal models set --api-model`): only that run and later ones count;
* it ran on a version of a set that the model was calibrated on again after an edit (the latest
  trusted run with outcomes on a set name fixes its version): examples removed from the set
  leave with their outcomes;
* its outcomes cannot be trusted (`RunHealth.problem`: half the requests failed, or half the
  replies had no readable answer). Such a run never made the model calibrated, and its rows
  must not reach a later fit either (a refused run's non-answers, scored 0, were fitted into an
  enabled model's token by the next `--refit`).

Import runs (outcome logs) are not calibration runs, and need no health check. One is left out
when a later import under the same log name has a column for the same model: a corrected log
replaces what the older version held for that model (its dropped samples and its questions as
they were, which are other queries once corrected); models it has no outcomes for keep theirs.
Importing an older version again makes it the latest (`lrcal.services.imports`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lrcal.services.run_health import run_health
from lrcal.store import Store

CALIBRATION_RUN_KIND = "calibration"
IMPORT_RUN_KIND = "import"


@dataclass(frozen=True)
class CalibrationBasis:
    runs: list[int]  # the calibration runs that count, oldest first
    left_out: dict[int, str] = field(default_factory=dict)  # calibration run id -> why it does not count
    superseded_imports: dict[int, str] = field(default_factory=dict)  # import run id -> the version replacing it

    @property
    def not_counted(self) -> dict[int, str]:
        """Every run of the model whose outcomes do not count, calibration and import."""
        return {**self.left_out, **self.superseded_imports}

    def describe_left_out(self) -> list[str]:
        return [f"run {run_id}: {why}" for run_id, why in sorted(self.left_out.items())]


def calibration_basis(store: Store, model_id: int) -> CalibrationBasis:
    runs, left_out = _calibration_runs_left_out(store, model_id)
    return CalibrationBasis(runs=[r["id"] for r in runs if r["id"] not in left_out], left_out=left_out,
                            superseded_imports=superseded_import_runs(store, model_id))


def _calibration_runs_left_out(store: Store, model_id: int) -> tuple[list[dict], dict[int, str]]:
    """(the model's calibration runs, run id -> why it does not count)."""
    runs = store.runs(model_id, kind=CALIBRATION_RUN_KIND)
    if not runs:
        return [], {}
    fresh_from = max((r["id"] for r in runs if (r["parameters"] or {}).get("fresh")), default=None)
    set_rows = {set_id: store.get_set_by_id(set_id) for set_id in {r["set_id"] for r in runs}}
    health = {r["id"]: run_health(store.run_outcomes(r["id"])) for r in runs}
    # a set name's version is that of the latest trusted run with outcomes on it: a refused or
    # killed run on an edited version must not drop the good runs on the previous one
    current_set_of_name: dict[str, int] = {}
    for run in runs:  # ascending ids: the last wins
        if health[run["id"]].trusted and (fresh_from is None or run["id"] >= fresh_from):
            current_set_of_name[set_rows[run["set_id"]]["name"]] = run["set_id"]
    left_out: dict[int, str] = {}
    for run in runs:
        set_row = set_rows[run["set_id"]]
        current = current_set_of_name.get(set_row["name"], run["set_id"])
        if fresh_from is not None and run["id"] < fresh_from:
            left_out[run["id"]] = f"asked before the --fresh run {fresh_from}"
        elif health[run["id"]].n and not health[run["id"]].trusted:
            left_out[run["id"]] = f"not trusted: {health[run['id']].problem}"
        elif current != run["set_id"]:
            newer = set_rows[current]
            left_out[run["id"]] = (f"on {set_row['name']} version {set_row['version'][:12]}, since calibrated on "
                                   f"version {newer['version'][:12]}")
    return runs, left_out


def _import_versions(store: Store, model_id: int | None):
    """(import runs, the ids of those with outcomes, set id -> set row, (model id, log name) ->
    the set id of the version that counts): the latest import of that name with outcomes for the
    model, or the latest that made a stored version current again."""
    runs = store.runs(model_id, kind=IMPORT_RUN_KIND)
    if not runs:
        return [], set(), {}, {}
    with_outcomes = store.runs_with_outcomes(IMPORT_RUN_KIND)
    set_rows = {set_id: store.get_set_by_id(set_id) for set_id in {r["set_id"] for r in runs}}
    current: dict[tuple[int, str], int] = {}
    for run in runs:  # ascending ids: the latest wins
        if run["id"] in with_outcomes or (run["parameters"] or {}).get("restores"):
            current[(run["model_id"], set_rows[run["set_id"]]["name"])] = run["set_id"]
    return runs, with_outcomes, set_rows, current


def current_import_sets(store: Store, model_id: int | None = None) -> dict[tuple[int, str], int]:
    """(model id, log name) -> the set id of the log version that counts (`_import_versions`)."""
    return _import_versions(store, model_id)[3]


def superseded_import_runs(store: Store, model_id: int | None = None) -> dict[int, str]:
    """import run id -> why it does not count, for the model's (None: every model's) import runs
    with outcomes on a version of their log that is not the current one."""
    runs, with_outcomes, set_rows, current = _import_versions(store, model_id)
    superseded: dict[int, str] = {}
    for run in runs:
        if run["id"] not in with_outcomes:  # holds nothing to replace (an all-empty column, a marker)
            continue
        set_row = set_rows[run["set_id"]]
        newer = current.get((run["model_id"], set_row["name"]), run["set_id"])
        if newer != run["set_id"]:
            superseded[run["id"]] = (f"imported from {set_row['name']} version {set_row['version'][:12]}, replaced by "
                                     f"version {set_rows[newer]['version'][:12]}")
    return superseded


def left_out_calibration_runs(store: Store) -> set[int]:
    """Every model's runs that do not count: calibration runs left out and import runs replaced
    by a later version of their log (run ids are unique across models)."""
    model_ids = {run["model_id"] for run in store.runs(kind=CALIBRATION_RUN_KIND)}
    left_out = {run_id for model_id in model_ids for run_id in _calibration_runs_left_out(store, model_id)[1]}
    return left_out | set(superseded_import_runs(store))
