"""The engine's alarms: one registry, one shape (docs/control-socket.md, "Alarms").

An alarm is ``{"kind", "since_ms", "detail"}``: what is wrong (a stable name
such as ``events_dropped``), since when (engine clock ms, set when it is first
raised and kept while it stays raised), and what is known now (updated each
time it is raised again). Anything in the control tier raises and clears
alarms by kind through :class:`AlarmRegistry`; the snapshot lists them.

Two kinds of source:

- a condition (the record store cannot commit, later a span in LOS...): the
  owner raises the alarm while the condition holds and clears it when it ends;
- a counter that only grows (events lost, commands refused, far-end answers
  late...): :class:`CounterAlarms` raises its alarm when the counter grows and
  clears it after :data:`QUIET_MS` of engine clock without growth.

Nothing here reads the wall clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("cicbox.alarms")

#: a counter alarm clears after this long (engine clock) without the counter growing
QUIET_MS = 60_000


@dataclass
class Alarm:
    """One raised alarm."""

    kind: str
    since_ms: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "since_ms": self.since_ms, "detail": self.detail}


class AlarmRegistry:
    """The raised alarms by kind, on the engine clock (`now` gives engine ms)."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._alarms: dict[str, Alarm] = {}

    def raise_alarm(self, kind: str, detail: str, *, logged: bool = True) -> Alarm:
        """Raise `kind` (since now, if it was not raised) or update its detail. `logged`: False when
        the alarm's source logs the change itself (one log line per change)."""
        alarm = self._alarms.get(kind)
        if alarm is None:
            alarm = self._alarms[kind] = Alarm(kind, self._now(), detail)
            if logged:
                log.warning("alarm %s raised: %s", kind, detail)
        else:
            alarm.detail = detail
        return alarm

    def clear_alarm(self, kind: str, *, logged: bool = True) -> bool:
        """Clear `kind`; False if it was not raised."""
        alarm = self._alarms.pop(kind, None)
        if alarm is None:
            return False
        if logged:
            log.warning("alarm %s cleared (raised at %d ms: %s)", kind, alarm.since_ms, alarm.detail)
        return True

    def get(self, kind: str) -> Alarm | None:
        return self._alarms.get(kind)

    def __contains__(self, kind: object) -> bool:
        return kind in self._alarms

    def active(self) -> list[Alarm]:
        """The raised alarms, oldest first."""
        return sorted(self._alarms.values(), key=lambda a: (a.since_ms, a.kind))

    def snapshot(self) -> list[dict[str, Any]]:
        return [a.as_dict() for a in self.active()]


@dataclass
class _Watch:
    value: int = 0          # the counter's last reading
    at_raise: int = 0       # its reading just before the alarm was raised
    grew_ms: int = 0        # engine ms it last grew


class CounterAlarms:
    """Counters that only grow, each with an alarm of the same name.

    :meth:`update` takes the counters' current values (cumulative, from zero
    when the engine started). A counter that grew raises its alarm, with
    `describe(name)` saying what one unit is ("media events lost: the event
    ring was full"); a raised alarm clears once the counter has not grown for
    `quiet_ms` of engine clock.
    """

    def __init__(self, registry: AlarmRegistry, now: Callable[[], int], describe: Callable[[str], str],
                 quiet_ms: int = QUIET_MS) -> None:
        self.registry = registry
        self._now = now
        self._describe = describe
        self.quiet_ms = quiet_ms
        self._watch: dict[str, _Watch] = {}
        #: the engine ms at which the first raised alarm may clear (None: none raised): until then,
        #: and while no counter changes, :meth:`update` has nothing to do
        self.clear_due_ms: int | None = None

    def update(self, counters: Mapping[str, int]) -> None:
        now = self._now()
        for name, value in counters.items():
            w = self._watch.setdefault(name, _Watch(0, 0, now))
            if value > w.value:
                if name not in self.registry:
                    w.at_raise = w.value
                w.value, w.grew_ms = value, now
                self.registry.raise_alarm(
                    name, f"{value - w.at_raise} {self._describe(name)} (last at {now} ms; {value} in total)")
            else:
                w.value = value     # a counter that went back (its source was reset) starts from there
                if name in self.registry and now - w.grew_ms >= self.quiet_ms:
                    self.registry.clear_alarm(name)
        self.clear_due_ms = min((w.grew_ms + self.quiet_ms for name, w in self._watch.items()
                                 if name in self.registry), default=None)

    @property
    def counters(self) -> dict[str, int]:
        """The last reading of every counter, by name."""
        return {name: w.value for name, w in self._watch.items()}
