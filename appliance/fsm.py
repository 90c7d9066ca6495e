"""State machines as declared tables, on the scheduler's clock.

Every machine of the control plane (lines, calls, agents, later Q.921/Q.931,
R2, IVR) is a subclass of :class:`StateMachine` with a table: per state, the
events it accepts, the states it may go to, the timer started on entry, and
the method that handles its events. All actions of one state are in one
method. An event a state does not accept is a logged protocol error with a
defined outcome (ignored), never an exception out of the control loop. Every
transition and timeout is logged with the instance's name and kept in a
bounded transition log that tests read.

Timers come from one table per protocol (:class:`TimerDef`): a T number or
name, a default, a unit and a description; a site may override values.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from appliance.clock import Clock, Timer

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)

log = logging.getLogger("cicbox.fsm")


@dataclass(frozen=True)
class TimerDef:
    """One protocol timer: its name, default in ms and what it is for."""

    name: str
    default_ms: int
    description: str


class TimerTable:
    """A protocol's timers with a site's overrides (ms)."""

    def __init__(self, defs: list[TimerDef], overrides: Mapping[str, int] | None = None) -> None:
        self.defs = {d.name: d for d in defs}
        self._values = {d.name: d.default_ms for d in defs}
        for name, value in (overrides or {}).items():
            if name not in self.defs:
                raise KeyError(f"unknown timer {name!r} (known: {', '.join(self.defs)})")
            self._values[name] = int(value)

    def __getitem__(self, name: str) -> int:
        return self._values[name]


@dataclass(frozen=True)
class StateDef(Generic[S, E]):
    """What a state accepts, where it may go, and the timer its entry starts."""

    events: frozenset[E]
    next_states: frozenset[S]
    handler: str                  # name of the method handling this state's events
    timer: str | None = None      # timer started on entry; on expiry the machine gets TIMEOUT
    on_enter: str | None = None   # method called on entry (after the timer starts)


class FsmError(Exception):
    """A machine tried a transition its table forbids: a bug, not bad input."""


class StateMachine(Generic[S, E]):
    """Base of every control-plane state machine."""

    TABLE: ClassVar[Mapping[Any, StateDef[Any, Any]]]
    #: the event delivered when a state's timer expires
    TIMEOUT: ClassVar[Any]
    LOG_SIZE = 256

    def __init__(self, name: str, initial: S, clock: Clock, timers: TimerTable) -> None:
        self.name = name
        self.state: S = initial
        self.clock = clock
        self.timers = timers
        self._timer: Timer | None = None
        self.transitions: deque[tuple[int, str, str, str]] = deque(maxlen=self.LOG_SIZE)
        self.protocol_errors = 0

    def dispatch(self, event: E, **data: Any) -> None:
        """Deliver one event to the current state's handler."""
        sdef = self.TABLE[self.state]
        if event not in sdef.events:
            self.protocol_errors += 1
            log.info("%s: event %s not accepted in state %s: ignored", self.name, event.name, self.state.name)
            self.transitions.append((self.clock.now_ms, self.state.name, event.name, "(ignored)"))
            return
        handler: Callable[..., None] = getattr(self, sdef.handler)
        handler(event, **data)

    def transition(self, new: S, timer_ms: int | None = None) -> None:
        """Go to `new`: stop the old state's timer, start the new one's, call its on_enter."""
        if new not in self.TABLE[self.state].next_states:
            raise FsmError(f"{self.name}: {self.state.name} -> {new.name} is not in the table")
        old = self.state
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state = new
        self.transitions.append((self.clock.now_ms, old.name, "->", new.name))
        log.debug("%s: %s -> %s", self.name, old.name, new.name)
        sdef = self.TABLE[new]
        if sdef.timer is not None or timer_ms is not None:
            delay = timer_ms if timer_ms is not None else self.timers[sdef.timer or ""]
            self._timer = self.clock.call_later(delay, self._expire)
        if sdef.on_enter is not None:
            getattr(self, sdef.on_enter)()

    def restart_timer(self, ms: int) -> None:
        """Restart the current state's timer with `ms`."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.clock.call_later(ms, self._expire)

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        log.debug("%s: timeout in %s", self.name, self.state.name)
        self.transitions.append((self.clock.now_ms, self.state.name, "TIMEOUT", ""))
        self.dispatch(self.TIMEOUT)
