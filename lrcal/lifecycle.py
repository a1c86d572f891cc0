"""Model status lifecycle: which transitions are allowed.

    registered ─▶ calibrated ─▶ validated ─▶ enabled ◀─▶ disabled
                      │              │
                      └────────────▶ rejected
    imported: outcome logs only (no endpoint); never routed to live traffic.
    removed: `lrcal models remove` (any status ─▶ removed): never listed, routed or trained on;
             its outcomes stay for audit. Nothing leaves it.

Anything else needs ``force`` (recorded in the audit log by the caller).
"""

from __future__ import annotations

REGISTERED = "registered"
CALIBRATED = "calibrated"
VALIDATED = "validated"
ENABLED = "enabled"
REJECTED = "rejected"
DISABLED = "disabled"
IMPORTED = "imported"
REMOVED = "removed"

STATUSES = (REGISTERED, CALIBRATED, VALIDATED, ENABLED, REJECTED, DISABLED, IMPORTED, REMOVED)

_ALLOWED: dict[str, set[str]] = {
    REGISTERED: {CALIBRATED},
    # Re-calibrating is always allowed; it sends the model back through the gate.
    CALIBRATED: {CALIBRATED, VALIDATED, REJECTED},
    VALIDATED: {CALIBRATED, VALIDATED, REJECTED, ENABLED},
    REJECTED: {CALIBRATED, VALIDATED, REJECTED},
    ENABLED: {DISABLED, CALIBRATED, VALIDATED, REJECTED},
    # A disabled model that passed validation before may come back.
    DISABLED: {ENABLED, CALIBRATED, VALIDATED, REJECTED},
    IMPORTED: set(),
    REMOVED: set(),
}


def can_transition(current: str, new: str) -> bool:
    return new in _ALLOWED.get(current, set())


def explain_refusal(name: str, current: str, new: str) -> str:
    if new == ENABLED and current in (REGISTERED, CALIBRATED, REJECTED):
        return (
            f"model '{name}' is {current}; it must pass `lrcal live-validate {name}` before it can be "
            f"enabled (or use --force, which is recorded)"
        )
    if current == REMOVED:
        return f"model '{name}' was removed (`lrcal models remove`); its outcomes are kept for audit only"
    if current == IMPORTED:
        return f"model '{name}' was imported from outcome logs and has no endpoint; its status cannot change"
    if new == CALIBRATED and current == REGISTERED:
        return f"model '{name}' has not been calibrated"
    return f"model '{name}' cannot go from {current} to {new}"
