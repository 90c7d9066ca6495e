"""The protocols of the line side and their timer tables, listed once.

A site's ``timers:`` section has one mapping per protocol named here, in integer
milliseconds (``timers: {fxs: {inter_digit: 5000}}``); the configuration is checked
against these tables (names, ranges) and the engine builds its machines' timer tables
with :func:`timer_tables`. A new protocol (r2...) adds its table here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from e1t1.analog.fxo import FXO_TIMERS
from e1t1.analog.fxs import FXS_TIMERS
from e1t1.errors import TimerError
from e1t1.isdn.call import Q931_TIMERS
from e1t1.isdn.q921 import Q921_TIMERS
from e1t1.timers import TimerDef, TimerTable

TIMER_TABLES: Mapping[str, Sequence[TimerDef]] = {
    "fxo": FXO_TIMERS,
    "fxs": FXS_TIMERS,
    "q921": Q921_TIMERS,
    "q931": Q931_TIMERS,
}


def timer_tables(overrides: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, TimerTable]:
    """Every protocol's timers in force: defaults with `overrides` (protocol -> timer -> ms).

    Raises TimerError for an unknown protocol or timer, or a value out of its range."""
    given = dict(overrides or {})
    unknown = sorted(set(given) - set(TIMER_TABLES))
    if unknown:
        raise TimerError(f"unknown protocol {unknown[0]!r} (known: {', '.join(TIMER_TABLES)})")
    return {proto: TimerTable(proto, defs, given.get(proto)) for proto, defs in TIMER_TABLES.items()}
