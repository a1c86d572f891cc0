"""Compact number formatting for terminal cells (pure functions, no Textual)."""

from __future__ import annotations

import math

DASH = "–"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def quality(value: float | None) -> str:
    """0.8125 → '.81'; 1.0 → '1.0' (fits three characters)."""
    if _missing(value):
        return " " + DASH + " "
    if value >= 0.995:
        return "1.0"
    return f"{value:.2f}"[1:] if value >= 0 else f"{value:.1f}"


def plus_minus(low: float | None, high: float | None) -> str:
    """An interval as '±.09' (its half-width, four characters); '' when unknown."""
    if _missing(low) or _missing(high):
        return ""
    half = (high - low) / 2
    return "±1.0" if half >= 0.995 else "±" + f"{half:.2f}".lstrip("0")


def accuracy(value: float | None) -> str:
    return DASH if _missing(value) else f"{value:.3f}"


def share(value: float | None) -> str:
    return DASH if _missing(value) else f"{value * 100:.0f}%"


def ms(value: float | None) -> str:
    """Latency: '61ms', '1.2s', '14s'."""
    if _missing(value):
        return DASH
    if value < 9.95:
        return f"{value:.1f}ms"
    if value < 1000:
        return f"{value:.0f}ms"
    if value < 10_000:
        return f"{value / 1000:.1f}s"
    return f"{value / 1000:.0f}s"


def ms_cell(value: float | None) -> str:
    """Latency in at most five characters (table cells): '9ms', '61ms', '1.2s'."""
    if _missing(value):
        return DASH
    return f"{value:.0f}ms" if value < 999.5 else ms(value)


def usd(value: float | None) -> str:
    """Per-query cost with enough digits to tell cheap models apart."""
    if _missing(value):
        return DASH
    if value == 0:
        return "$0"
    if value >= 0.1:
        return f"${value:.2f}"
    return f"${value:.6f}" if value < 0.0001 else f"${value:.4f}"


def price(per_mtok: float | None) -> str:
    if _missing(per_mtok):
        return DASH
    return f"{per_mtok:g}"


def lam(value: float) -> str:
    return f"{value:g}"


def timestamp(ts: str | None) -> str:
    """ISO timestamp → 'YYYY-MM-DD HH:MM:SS' (UTC as stored)."""
    if not ts:
        return DASH
    return ts.replace("T", " ")[:19]
