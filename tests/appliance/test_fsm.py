"""The state-machine base and the clock: tables enforced, timers on the clock, errors contained."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from appliance.clock import Clock
from appliance.fsm import FsmError, StateDef, StateMachine, TimerDef, TimerTable


class St(enum.Enum):
    IDLE = 1
    WAIT = 2
    DONE = 3


class Ev(enum.Enum):
    GO = 1
    REPLY = 2
    TIMEOUT = 3


TIMERS = [TimerDef("T1", 300, "wait for a reply")]


class Toy(StateMachine[St, Ev]):
    TIMEOUT = Ev.TIMEOUT
    TABLE = {
        St.IDLE: StateDef(frozenset({Ev.GO}), frozenset({St.WAIT}), "st_idle"),
        St.WAIT: StateDef(frozenset({Ev.REPLY, Ev.TIMEOUT}), frozenset({St.DONE, St.IDLE}), "st_wait", timer="T1"),
        St.DONE: StateDef(frozenset(), frozenset(), "st_done"),
    }

    def __init__(self, clock: Clock, overrides: dict[str, int] | None = None) -> None:
        super().__init__("toy(1)", St.IDLE, clock, TimerTable(TIMERS, overrides))
        self.seen: list[Any] = []

    def st_idle(self, ev: Ev, **data: Any) -> None:
        self.transition(St.WAIT)

    def st_wait(self, ev: Ev, **data: Any) -> None:
        self.seen.append((ev, data))
        self.transition(St.DONE if ev is Ev.REPLY else St.IDLE)

    def st_done(self, ev: Ev, **data: Any) -> None:  # pragma: no cover - accepts nothing
        pass


def test_timer_started_on_entry_fires_timeout_at_its_ms() -> None:
    clock = Clock()
    m = Toy(clock)
    m.dispatch(Ev.GO)
    clock.advance(299)
    states = [m.state]
    clock.advance(300)
    states.append(m.state)
    assert states == [St.WAIT, St.IDLE]
    assert m.transitions[-1] == (300, "WAIT", "->", "IDLE")


def test_site_override_changes_the_timer() -> None:
    clock = Clock()
    m = Toy(clock, {"T1": 50})
    m.dispatch(Ev.GO)
    clock.advance(50)
    assert m.state is St.IDLE
    with pytest.raises(KeyError, match="unknown timer 'T9'"):
        Toy(clock, {"T9": 1})


def test_leaving_a_state_cancels_its_timer() -> None:
    clock = Clock()
    m = Toy(clock)
    m.dispatch(Ev.GO)
    clock.advance(100)
    m.dispatch(Ev.REPLY, text="ok")
    clock.advance(1000)
    assert m.state is St.DONE
    assert m.seen == [(Ev.REPLY, {"text": "ok"})]


def test_an_event_a_state_does_not_accept_is_counted_and_ignored() -> None:
    m = Toy(Clock())
    m.dispatch(Ev.REPLY)
    assert m.state is St.IDLE and m.protocol_errors == 1
    assert m.transitions[-1][3] == "(ignored)"


def test_a_transition_outside_the_table_is_a_bug() -> None:
    m = Toy(Clock())
    with pytest.raises(FsmError, match="IDLE -> DONE is not in the table"):
        m.transition(St.DONE)


def test_clock_runs_timers_in_due_then_creation_order_and_never_goes_back() -> None:
    clock = Clock()
    order: list[str] = []
    clock.call_at(20, lambda: order.append("b"))
    clock.call_at(10, lambda: order.append("a"))
    clock.call_at(20, lambda: order.append("c"))
    t = clock.call_at(15, lambda: order.append("x"))
    t.cancel()
    assert clock.advance(25) == 3
    assert order == ["a", "b", "c"]
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(10)
