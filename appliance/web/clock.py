"""The panel's one clock: session idle and absolute limits, audit times, failure windows.

Everything in the panel that needs "now" asks ``panel_clock(app).now()``; the app's
``PANEL_CLOCK`` config key holds the clock object (default :data:`SYSTEM_CLOCK`). The
engine's clock is a different thing: the panel never reads it except through snapshots.

Tests move the panel through time with time-machine, which moves this clock (and with it the
login throttle's windows, counted from the audit log's times); a test may also pass its own
object with a ``now()`` method.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from flask import Flask, current_app


class PanelClock(Protocol):
    """What the panel needs of a clock: the current time, timezone-aware UTC."""

    def now(self) -> datetime: ...


class SystemClock:
    """The host's clock in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)  # clock-source: the panel's one clock (sessions, audit, TLS dates)


SYSTEM_CLOCK = SystemClock()


def panel_clock(app: Flask | None = None) -> PanelClock:
    """The clock of `app` (default the current app): its PANEL_CLOCK, or the system clock."""
    clock = (app or current_app).config.get("PANEL_CLOCK")
    return clock if clock is not None else SYSTEM_CLOCK


def iso_ms(when: datetime) -> str:
    """`when` as UTC ISO 8601 with milliseconds, as the audit log writes it: 2026-03-01T09:30:00.123Z."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
