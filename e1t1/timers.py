"""Protocol timers: one declared table per protocol, with a site's overrides.

Each protocol (fxo, fxs; later q921, q931, r2...) declares its timers once, as a
sequence of :class:`TimerDef`: the T number or name the standard gives it (``T303``,
``inter_digit``), its default, the unit the standard states it in, what it is for,
and the range a site may set it to. A :class:`TimerTable` is one protocol's
timers in force: the defaults, with a site's overrides (integer milliseconds,
whatever the declared unit) checked against the declared range. Machines read
their timers from it in milliseconds.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from e1t1.errors import TimerError


class TimerUnit(enum.Enum):
    """The unit a timer's default and range are declared in."""

    MS = 1
    S = 1000
    MIN = 60000

    @property
    def ms(self) -> int:
        """Milliseconds in one of this unit."""
        return self.value


@dataclass(frozen=True)
class TimerDef:
    """One protocol timer: T number or name, default, unit, description, the range a site may set.

    ``default``, ``min`` and ``max`` are in ``unit``; a site's override is in milliseconds.
    """

    name: str
    default: int
    unit: TimerUnit
    description: str
    min: int
    max: int

    def __post_init__(self) -> None:
        if not self.min <= self.default <= self.max:
            raise TimerError(f"timer {self.name}: default {self.default} is outside its range "
                             f"{self.min}-{self.max} {self.unit.name.lower()}")

    @property
    def default_ms(self) -> int:
        return self.default * self.unit.ms

    @property
    def min_ms(self) -> int:
        return self.min * self.unit.ms

    @property
    def max_ms(self) -> int:
        return self.max * self.unit.ms


class TimerTable:
    """One protocol's timers in force: defaults with a site's overrides, in ms."""

    def __init__(self, protocol: str, defs: Sequence[TimerDef], overrides: Mapping[str, int] | None = None) -> None:
        self.protocol = protocol
        self.defs: dict[str, TimerDef] = {}
        for t in defs:
            if t.name in self.defs:
                raise TimerError(f"{protocol}: timer {t.name} is declared twice")
            self.defs[t.name] = t
        self._values = {t.name: t.default_ms for t in defs}
        self.overridden: dict[str, int] = {}
        for name, value in (overrides or {}).items():
            d = self.defs.get(name)
            if d is None:
                raise TimerError(f"{protocol}: unknown timer {name!r} (known: {', '.join(self.defs)})")
            if isinstance(value, bool) or not isinstance(value, int):
                raise TimerError(f"{protocol}.{name}: must be an integer number of ms, got {value!r}")
            if not d.min_ms <= value <= d.max_ms:
                raise TimerError(f"{protocol}.{name}: must be {d.min_ms}-{d.max_ms} ms, got {value}")
            self._values[name] = value
            self.overridden[name] = value

    def __getitem__(self, name: str) -> int:
        """The timer's value in force, in ms."""
        try:
            return self._values[name]
        except KeyError:
            raise TimerError(f"{self.protocol}: unknown timer {name!r} (known: {', '.join(self.defs)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __repr__(self) -> str:
        return f"TimerTable({self.protocol!r}, {self._values!r})"
