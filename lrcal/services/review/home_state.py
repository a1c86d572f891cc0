"""What a home holds, in counts, and what to run next when it is empty (the TUI's empty states)."""

from __future__ import annotations

from dataclasses import dataclass

from lrcal.store import Store


@dataclass(frozen=True)
class HomeState:
    models: int
    outcomes: int
    router_version: str | None
    validations: int

    @property
    def empty(self) -> bool:
        return self.models == 0

    def next_step(self) -> str:
        """What to run next, in words."""
        if self.models == 0:
            return (
                "No models in this home yet.\n\n"
                "• `lrcal demo` runs the whole onboarding story on simulated endpoints "
                "(incumbents, router, two candidates, live validation) and leaves it here.\n"
                "• Or register your own: `lrcal add-model NAME --base-url URL`, then "
                "`lrcal calibrate NAME`, `lrcal router train`, `lrcal live-validate NAME`."
            )
        if self.outcomes == 0:
            return "No outcomes yet: run `lrcal calibrate NAME` for your models (or `lrcal import-outcomes FILE.csv`)."
        if self.router_version is None:
            return "No shared router yet: run `lrcal router train` once your current models are calibrated."
        return ""


def home_state(store: Store) -> HomeState:
    from lrcal.services.router_context import router_version_row

    row = router_version_row(store)
    counts = store.home_counts()
    return HomeState(
        models=counts["models"],
        outcomes=counts["outcomes"],
        router_version=row["version"] if row else None,
        validations=counts["validations"],
    )
