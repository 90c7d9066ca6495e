"""The state-machine base's census: how many of an owner's machines are away from their rest state,
kept as they change state, and the watch that hears each change; the analog lines' census against
their states, and the line levels the machines expect against their own reconciling rule."""

from __future__ import annotations

import enum
import itertools
import re
import types
from typing import Any

import pytest

from drivers.base import LineLevel
from e1t1.analog.fxo import FxoTrunk, TrunkEvent, TrunkState
from e1t1.analog.fxs import FxsPhone, PhoneEvent, PhoneState
from e1t1.analog.levels import ExpectedLevels
from e1t1.clock import Clock
from e1t1.errors import FsmTableError
from e1t1.fsm import Census, StateDef, StateMachine, TermCause
from e1t1.protocols import timer_tables
from tests.e1t1.test_analog_lines import Port


class St(enum.Enum):
    IDLE = 1
    BUSY = 2
    AWAY = 3


class Ev(enum.Enum):
    GO = 1
    BACK = 2


class Line(StateMachine[St, Ev]):
    REST = St.IDLE
    TABLE = {
        St.IDLE: StateDef(frozenset({Ev.GO}), frozenset({St.BUSY}), "st"),
        St.BUSY: StateDef(frozenset({Ev.GO, Ev.BACK}), frozenset({St.AWAY, St.IDLE, St.BUSY}), "st"),
        St.AWAY: StateDef(frozenset({Ev.BACK}), frozenset({St.IDLE}), "st"),
    }

    def __init__(self, name: str, census: Census | None, initial: St = St.IDLE) -> None:
        super().__init__(name, initial, Clock(), census=census)

    def st(self, ev: Ev, **data: Any) -> None:
        if ev is Ev.BACK:
            self.transition(St.IDLE)
        else:
            self.transition(St.AWAY if self.state is St.BUSY else St.BUSY)


def test_the_census_counts_the_machines_away_from_rest_as_they_move() -> None:
    seen: list[tuple[str, str, str]] = []
    census = Census(lambda m, old, new: seen.append((m.name, old.name, new.name)))
    a, b = Line("a", census), Line("b", census)
    c = Line("c", census, initial=St.BUSY)          # made busy: counted from the start
    assert census.busy == 1
    a.dispatch(Ev.GO)                               # IDLE -> BUSY
    b.dispatch(Ev.GO)
    assert census.busy == 3
    a.dispatch(Ev.GO)                               # BUSY -> AWAY: still busy, counted once
    assert census.busy == 3
    a.dispatch(Ev.BACK)
    b.dispatch(Ev.BACK)
    assert census.busy == 1
    c.dispatch(Ev.GO)
    c.terminate(TermCause.REQUEST)                  # a terminated machine is no longer counted
    assert census.busy == 0
    assert seen == [("a", "IDLE", "BUSY"), ("b", "IDLE", "BUSY"), ("a", "BUSY", "AWAY"), ("a", "AWAY", "IDLE"),
                    ("b", "BUSY", "IDLE"), ("c", "BUSY", "AWAY")]
    own = Line("d", None)                           # a machine without a census moves as before
    own.dispatch(Ev.GO)
    assert own.state is St.BUSY and census.busy == 0


def test_a_rest_state_of_another_enum_is_a_bad_table() -> None:
    body = {"REST": Ev.GO, "TABLE": Line.TABLE, "st": Line.st}
    with pytest.raises(FsmTableError, match=re.escape("REST: <Ev.GO: 1> is not a St")):
        types.new_class("Bad", (StateMachine[St, Ev],), exec_body=lambda ns: ns.update(body))


# -- the analog lines ----------------------------------------------------------------

def trunk(port: Port, clock: Clock, census: Census, chan: int, disconnect: tuple[str, ...]) -> FxoTrunk:
    return FxoTrunk(port, lambda ev: None, chan, f"trunk{chan}", "075588880001", "fsk_bell202", 1, disconnect,
                    (350, 350, 3), clock, timer_tables()["fxo"], census=census)


def phone(port: Port, clock: Clock, census: Census, chan: int) -> FxsPhone:
    return FxsPhone(port, lambda ev: None, chan, f"phone{chan}", "8001", "cn", clock, timer_tables()["fxs"],
                    census=census)


def test_the_lines_census_follows_ringing_calls_and_hook() -> None:
    port, clock = Port(), Clock()
    levels = ExpectedLevels()
    trunks, phones = Census(levels.trunk_moved), Census(levels.phone_moved)
    t = trunk(port, clock, trunks, 0, ("battery",))
    p = phone(port, clock, phones, 1)
    assert (trunks.busy, phones.busy) == (0, 0)
    t.dispatch(TrunkEvent.RING_ON, tick=0)          # answers on ring 1: RINGING, then UP
    p.dispatch(PhoneEvent.OFFER)
    assert (t.state, p.state) == (TrunkState.UP, PhoneState.RINGING)
    assert (trunks.busy, phones.busy) == (1, 1)
    p.dispatch(PhoneEvent.HOOK_OFF)
    p.dispatch(PhoneEvent.REMOTE_GONE)              # OPEN_LOOP: still off hook, still busy
    assert phones.busy == 1
    t.dispatch(TrunkEvent.RELEASE, tick=10)
    p.dispatch(PhoneEvent.HOOK_ON)
    assert (t.state, p.state) == (TrunkState.IDLE, PhoneState.IDLE)
    assert (trunks.busy, phones.busy) == (0, 0)


TRUNK_STATES = list(TrunkState)
PHONE_STATES = list(PhoneState)
ALL_LEVELS = [LineLevel(v) for v in range(16)]


@pytest.mark.parametrize("disconnect", [("battery",), ("polarity", "busy"), ("battery", "polarity", "busy")])
def test_expected_levels_name_exactly_the_lines_whose_machine_disagrees(disconnect: tuple[str, ...]) -> None:
    """For every state of a trunk and a phone and every level of each port, the ports named are
    those whose machine's own rule (level_event) finds an event missed."""
    port, clock = Port(), Clock()
    levels = ExpectedLevels()
    trunks, phones = Census(levels.trunk_moved), Census(levels.phone_moved)
    # Ports 0-2 and 5: trunks; 3, 4 and 7: phones; port 6 is no analog line (a span's timeslot, say).
    ts = [trunk(port, clock, trunks, chan, disconnect) for chan in (0, 1, 2, 5)]
    ps = [phone(port, clock, phones, chan) for chan in (3, 4, 7)]
    for t in ts:
        levels.add_trunk(t)
    for p in ps:
        levels.add_phone(p)
    for tstate, pstate in itertools.product(TRUNK_STATES, PHONE_STATES):
        for t in ts:
            t_was, t.state = t.state, tstate        # as if it had gone there (its census hears it)
            trunks.moved(t, t_was, tstate)
        for p in ps:
            p_was, p.state = p.state, pstate
            phones.moved(p, p_was, pstate)
        for lv in ALL_LEVELS:
            want = sorted([t.chan for t in ts if t.level_event(lv) is not None] +
                          [p.chan for p in ps if p.level_event(lv) is not None])
            assert levels.differing(bytes([lv] * 8)) == want, (tstate, pstate, lv)
        # One port's level among levels that agree everywhere else names that port only, if any.
        agreeing = bytearray([LineLevel.BATTERY] * 8)
        for p in ps:
            agreeing[p.chan] = LineLevel.BATTERY | (LineLevel.HOOK_OFF if p.off_hook else 0)
        assert levels.differing(bytes(agreeing)) == []
        lines: list[FxoTrunk | FxsPhone] = [*ts, *ps]
        for lv in ALL_LEVELS:
            for line in lines:
                card = bytearray(agreeing)
                card[line.chan] = lv
                named = levels.differing(bytes(card))
                assert named == ([line.chan] if line.level_event(lv) is not None else []), (line.name, lv)
    # Fewer levels than ports (the trunks are up now): only the ports read are named.
    assert levels.differing(bytes(3)) == [t.chan for t in ts[:3] if t.level_event(LineLevel(0)) is not None]
    assert levels.differing(bytes([LineLevel.BATTERY] * 3)) == []


def test_a_machine_reached_by_its_events_updates_the_expected_levels() -> None:
    port, clock = Port(), Clock()
    levels = ExpectedLevels()
    phones = Census(levels.phone_moved)
    p = phone(port, clock, phones, 2)
    levels.add_phone(p)
    on, off = LineLevel.BATTERY, LineLevel.BATTERY | LineLevel.HOOK_OFF
    assert levels.differing(bytes([0, 0, on])) == []
    assert levels.differing(bytes([0, 0, off])) == [2]       # the card says off hook, the phone is idle
    p.dispatch(PhoneEvent.HOOK_OFF)
    assert levels.differing(bytes([0, 0, off])) == []
    assert levels.differing(bytes([0, 0, on])) == [2]
    assert levels.differing(bytes([0, 0, LineLevel(0)])) == []   # no battery: the hook cannot be seen
