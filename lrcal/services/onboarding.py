"""Onboarding a calibrated model into the frozen shared router (token fit)."""

from __future__ import annotations

from typing import Callable

from lrcal.store import Store

NO_ROUTER_MESSAGE = (
    "no shared router has been trained yet: outcomes are stored; the capability token will be fitted "
    "by `lrcal router train` (it fits every calibrated model it did not train on)"
)


def latest_router_version(store: Store) -> dict | None:
    pinned = store.query_one("select * from router_versions where pinned = 1 order by id desc limit 1")
    return pinned or store.query_one("select * from router_versions order by id desc limit 1")


def fit_after_calibration(
    store: Store, model_name: str, report: dict, *, refit: bool = False, notify: Callable[[str], None] | None = None
) -> dict:
    """Fit the model's capability token after calibration, or explain why it was not fitted."""
    router = latest_router_version(store)
    if router is None:
        return {"fitted": False, "message": NO_ROUTER_MESSAGE}
    raise NotImplementedError("token fitting lands with the onboarding work (issue 4)")
