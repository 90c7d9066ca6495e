"""The analog line machines on their own: a recording line port below, a list as the sink above.

Each machine's table is walked: from every state, every event the state declares reaches the
state the line's behaviour calls for (one of the table's next states, or the same state), and
every event it does not declare changes nothing (state, timer, transitions, commands, reports)
and is counted. The expected outcomes are written here from the lines' behaviour (the issue and
shared/reference/line-signals.md), not read from the machines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from e1t1.analog.callerid import CallerId, FskFrame, decode_fsk_message, encode_dtmf_clip
from e1t1.analog.events import (
    LineEvent,
    PhoneAnswered,
    PhoneDialled,
    PhoneOnHook,
    TrunkAbandoned,
    TrunkAnswered,
    TrunkCallerId,
    TrunkReleased,
)
from e1t1.analog.fxo import FxoTrunk, TrunkEvent, TrunkState
from e1t1.analog.fxs import FxsPhone, PhoneEvent, PhoneState
from e1t1.clock import Clock
from e1t1.protocols import timer_tables

T, P = TrunkEvent, PhoneEvent
TS, PS = TrunkState, PhoneState
RING_ON_MS = {"cn": 1000, "us": 2000, "de": 1000}       # first ring of each zone's cadence (line-signals.md)


class Port:
    """A line port that records every command."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.log.append((name, *args))


class Line:
    def __init__(self) -> None:
        self.clock = Clock()
        self.port = Port()
        self.events: list[LineEvent] = []


def trunk(line: Line, callerid: str = "dtmf", answer_on_ring: int = 2,
          overrides: dict[str, dict[str, int]] | None = None,
          cadence: tuple[int, int] | None = None) -> FxoTrunk:
    return FxoTrunk(line.port, line.events.append, 0, "trunk1", "075588880001", callerid, answer_on_ring,
                    ("battery", "polarity", "busy"), (350, 350, 3), line.clock, timer_tables(overrides)["fxo"],
                    ring_cadence=cadence)


def phone(line: Line, zone: str = "cn", overrides: dict[str, dict[str, int]] | None = None) -> FxsPhone:
    return FxsPhone(line.port, line.events.append, 2, "phone1", "8001", zone, line.clock,
                    timer_tables(overrides)["fxs"])


# -- walking the tables --------------------------------------------------------------

DATA: dict[Any, dict[str, Any]] = {
    T.RING_ON: {"value": 1}, T.RING_OFF: {"value": 0}, T.CID_BYTE: {"byte": 0x80}, T.DTMF: {"digit": "5"},
    T.BATTERY: {"value": 0}, T.POLARITY: {"value": 1}, T.BUSY: {"value": 3}, T.RELEASE: {}, T.TIMEOUT: {},
    T.FSK_CARRIER: {"value": 1},
    P.HOOK_OFF: {}, P.HOOK_ON: {}, P.FLASH: {}, P.DTMF: {"digit": "*"}, P.OFFER: {"cid": CallerId(number="5551234")},
    P.CANCEL: {}, P.REMOTE_GONE: {}, P.TIMEOUT: {}, P.ACCEPT: {}, P.REJECT: {},
}

#: how to reach each state from IDLE
TRUNK_PATHS: dict[TrunkState, list[TrunkEvent]] = {
    TS.IDLE: [], TS.RINGING: [T.RING_ON], TS.UP: [T.RING_ON, T.RING_OFF, T.RING_ON]}
#: (state, event, data instead of DATA's, the state it leads to); a trunk on DTMF caller ID answering on ring 2
TRUNK_SPEC: list[tuple[TrunkState, TrunkEvent, dict[str, Any] | None, TrunkState]] = [
    (TS.IDLE, T.RING_ON, None, TS.RINGING),
    (TS.IDLE, T.RING_OFF, None, TS.IDLE),              # its RING_ON was lost
    (TS.IDLE, T.DTMF, None, TS.IDLE),                  # caller ID digits, or a stray key
    (TS.IDLE, T.DTMF, {"digit": "A"}, TS.IDLE),
    (TS.IDLE, T.BATTERY, None, TS.IDLE),
    (TS.IDLE, T.POLARITY, None, TS.IDLE),
    (TS.IDLE, T.CID_BYTE, None, TS.IDLE),
    (TS.IDLE, T.FSK_CARRIER, None, TS.IDLE),
    (TS.IDLE, T.RELEASE, None, TS.IDLE),               # the call is already over
    (TS.RINGING, T.RING_ON, None, TS.UP),              # ring 2: answered
    (TS.RINGING, T.RING_OFF, None, TS.RINGING),
    (TS.RINGING, T.CID_BYTE, None, TS.RINGING),
    (TS.RINGING, T.FSK_CARRIER, None, TS.RINGING),
    (TS.RINGING, T.DTMF, None, TS.RINGING),
    (TS.RINGING, T.DTMF, {"digit": "A"}, TS.IDLE),     # a new caller's caller ID: the one rung for gave up
    (TS.RINGING, T.TIMEOUT, None, TS.IDLE),            # no ring for ring_gap: the caller gave up
    (TS.RINGING, T.BATTERY, None, TS.RINGING),
    (TS.RINGING, T.POLARITY, None, TS.RINGING),
    (TS.UP, T.DTMF, None, TS.UP),
    (TS.UP, T.BATTERY, None, TS.IDLE),                 # battery lost: the caller hung up
    (TS.UP, T.BATTERY, {"value": 1}, TS.UP),
    (TS.UP, T.POLARITY, None, TS.UP),                  # inside the polarity guard right after answer
    (TS.UP, T.BUSY, None, TS.IDLE),
    (TS.UP, T.RELEASE, None, TS.IDLE),
    (TS.UP, T.TIMEOUT, None, TS.UP),                   # the guard is over
    (TS.UP, T.RING_ON, None, TS.UP),
    (TS.UP, T.RING_OFF, None, TS.UP),
    (TS.UP, T.CID_BYTE, None, TS.UP),
    (TS.UP, T.FSK_CARRIER, None, TS.UP),
]

PHONE_PATHS: dict[PhoneState, list[PhoneEvent]] = {
    PS.IDLE: [], PS.DIALTONE: [P.HOOK_OFF], PS.DIALLING: [P.HOOK_OFF, P.DTMF],
    PS.ANNOUNCE: [P.HOOK_OFF, P.DTMF, P.REJECT], PS.RINGING: [P.OFFER], PS.CONNECTED: [P.OFFER, P.HOOK_OFF],
    PS.OPEN_LOOP: [P.OFFER, P.HOOK_OFF, P.REMOTE_GONE],
    PS.CONGESTION: [P.OFFER, P.HOOK_OFF, P.REMOTE_GONE, P.TIMEOUT]}
_DIAL = [(P.HOOK_ON, PS.IDLE), (P.FLASH, PS.DIALTONE), (P.DTMF, PS.DIALLING), (P.TIMEOUT, PS.ANNOUNCE),
         (P.CANCEL, None), (P.REMOTE_GONE, None), (P.ACCEPT, PS.ANNOUNCE), (P.REJECT, PS.ANNOUNCE)]
PHONE_SPEC: list[tuple[PhoneState, PhoneEvent, dict[str, Any] | None, PhoneState]] = [
    (PS.IDLE, P.HOOK_OFF, None, PS.DIALTONE),
    (PS.IDLE, P.OFFER, None, PS.RINGING),
    (PS.IDLE, P.DTMF, None, PS.IDLE),
    (PS.IDLE, P.CANCEL, None, PS.IDLE),
    (PS.IDLE, P.REMOTE_GONE, None, PS.IDLE),
    *[(PS.DIALTONE, ev, None, to or PS.DIALTONE) for ev, to in _DIAL],
    *[(PS.DIALLING, ev, None, to or PS.DIALLING) for ev, to in _DIAL],
    (PS.ANNOUNCE, P.HOOK_ON, None, PS.IDLE),
    (PS.ANNOUNCE, P.FLASH, None, PS.DIALTONE),
    (PS.ANNOUNCE, P.DTMF, None, PS.ANNOUNCE),
    (PS.ANNOUNCE, P.TIMEOUT, None, PS.ANNOUNCE),       # congestion tone, still waiting for on hook
    (PS.ANNOUNCE, P.CANCEL, None, PS.ANNOUNCE),
    (PS.ANNOUNCE, P.REMOTE_GONE, None, PS.ANNOUNCE),
    (PS.RINGING, P.HOOK_OFF, None, PS.CONNECTED),
    (PS.RINGING, P.CANCEL, None, PS.IDLE),
    (PS.RINGING, P.REMOTE_GONE, None, PS.IDLE),
    (PS.RINGING, P.DTMF, None, PS.RINGING),
    (PS.RINGING, P.TIMEOUT, None, PS.RINGING),         # caller ID goes out, the phone keeps ringing
    (PS.CONNECTED, P.HOOK_ON, None, PS.IDLE),
    (PS.CONNECTED, P.REMOTE_GONE, None, PS.OPEN_LOOP),
    (PS.CONNECTED, P.DTMF, None, PS.CONNECTED),
    (PS.CONNECTED, P.FLASH, None, PS.CONNECTED),
    (PS.OPEN_LOOP, P.TIMEOUT, None, PS.CONGESTION),
    (PS.OPEN_LOOP, P.HOOK_ON, None, PS.IDLE),
    (PS.OPEN_LOOP, P.DTMF, None, PS.OPEN_LOOP),
    (PS.OPEN_LOOP, P.FLASH, None, PS.OPEN_LOOP),
    (PS.CONGESTION, P.HOOK_ON, None, PS.IDLE),
    (PS.CONGESTION, P.DTMF, None, PS.CONGESTION),
    (PS.CONGESTION, P.FLASH, None, PS.CONGESTION),
]


def reach(m: Any, path: list[Any]) -> None:
    for ev in path:
        m.dispatch(ev, tick=m.clock.now_ms, **DATA[ev])


MACHINES: dict[str, tuple[Callable[[Line], Any], dict[Any, list[Any]], list[tuple[Any, Any, Any, Any]]]] = {
    "fxo": (trunk, dict(TRUNK_PATHS), TRUNK_SPEC),
    "fxs": (phone, dict(PHONE_PATHS), PHONE_SPEC),
}


@pytest.mark.parametrize("kind", MACHINES)
def test_the_table_is_the_lines_behaviour(kind: str) -> None:
    make, paths, spec = MACHINES[kind]
    cls = type(make(Line()))
    assert set(paths) == set(cls.STATES)
    for st in cls.STATES:
        assert {ev for s, ev, _, _ in spec if s is st} == set(cls.TABLE[st].events), st


@pytest.mark.parametrize("kind", MACHINES)
def test_every_declared_event_from_every_state_reaches_its_next_state(kind: str) -> None:
    make, paths, spec = MACHINES[kind]
    for st, ev, data, want in spec:
        line = Line()
        m = make(line)
        reach(m, paths[st])
        assert m.state is st
        m.dispatch(ev, tick=line.clock.now_ms, **(data if data is not None else DATA[ev]))
        assert m.state is want, (st.name, ev.name, data)
        assert want is st or want in m.TABLE[st].next_states
        assert m.protocol_errors == 0


@pytest.mark.parametrize("kind", MACHINES)
def test_an_undeclared_event_changes_nothing_and_is_counted(kind: str) -> None:
    make, paths, _ = MACHINES[kind]
    cls = type(make(Line()))
    walked = 0
    for st in cls.STATES:
        for ev in cls.EVENTS:
            if ev in cls.TABLE[st].events:
                continue
            line = Line()
            m = make(line)
            reach(m, paths[st])
            line.clock.advance(line.clock.now_ms + 10)
            before = (m.state, m.timer, [t for t in m.transitions if t[2] == "->"], list(line.port.log),
                      list(line.events))
            m.dispatch(ev, tick=line.clock.now_ms, **DATA[ev])
            after = (m.state, m.timer, [t for t in m.transitions if t[2] == "->"], list(line.port.log),
                     list(line.events))
            assert after == before, (st.name, ev.name)
            assert m.protocol_errors == 1 and m.transitions[-1] == (line.clock.now_ms, st.name, ev.name, "(ignored)")
            walked += 1
    assert walked > 0


# -- the FXO trunk -----------------------------------------------------------------------

def dtmf(m: FxoTrunk, line: Line, digits: str, at: int, step: int = 140) -> int:
    for i, d in enumerate(digits):
        line.clock.advance(at + i * step)
        m.dispatch(T.DTMF, digit=d, tick=at + i * step)
    return at + len(digits) * step


def ring(m: FxoTrunk, line: Line, at: int, on: int = 1000) -> None:
    line.clock.advance(at)
    m.dispatch(T.RING_ON, value=1, tick=at)
    line.clock.advance(at + on)
    m.dispatch(T.RING_OFF, value=0, tick=at + on)


def answered(line: Line) -> list[TrunkAnswered]:
    return [e for e in line.events if isinstance(e, TrunkAnswered)]


def test_a_trunk_answers_on_its_ring_with_the_dtmf_caller_id() -> None:
    line = Line()
    m = trunk(line, answer_on_ring=2)
    end = dtmf(m, line, encode_dtmf_clip(CallerId(number="13800138000")), 1000)
    ring(m, line, end + 500)
    states = [m.state]
    assert ("hook", 0, True) not in line.port.log
    ring(m, line, end + 5500)
    states.append(m.state)
    assert answered(line) == [TrunkAnswered(0, end + 5500, "13800138000")]
    assert ("hook", 0, True) in line.port.log and states == [TS.RINGING, TS.UP]


def test_a_new_callers_dtmf_caller_id_while_still_ringing_starts_its_own_cycle() -> None:
    line = Line()
    m = trunk(line, answer_on_ring=2)
    end = dtmf(m, line, "A13900000001C", 1000)
    line.clock.advance(end + 500)
    m.dispatch(T.RING_ON, value=1, tick=end + 500)
    line.clock.advance(end + 900)
    m.dispatch(T.RING_OFF, value=0, tick=end + 900)          # A gives up during ring 1
    b = dtmf(m, line, "A13911112222C", end + 3000)           # B, well inside the 8 s ring gap
    assert m.state is TS.IDLE
    assert [e for e in line.events if isinstance(e, TrunkAbandoned)] == [TrunkAbandoned(0, end + 3000, 1)]
    ring(m, line, b + 500)
    assert answered(line) == []                               # B's first ring is ring 1
    ring(m, line, b + 5500)
    assert answered(line) == [TrunkAnswered(0, b + 5500, "13911112222")]


@pytest.mark.parametrize("stray", ["6", "C", "#", "*", "66"])
def test_stray_digits_on_an_idle_trunk_are_no_caller_id(stray: str) -> None:
    line = Line()
    m = trunk(line, answer_on_ring=1)
    end = dtmf(m, line, stray, 1000)
    end = dtmf(m, line, "A13800130002C", end + 3000)
    ring(m, line, end + 500)
    assert answered(line)[0].ani == "13800130002"
    assert m.dtmf_cid.discarded == len(stray)


def test_a_stray_digit_alone_gives_no_number_and_the_next_call_its_own() -> None:
    line = Line()
    m = trunk(line, answer_on_ring=1)
    dtmf(m, line, "6", 1000)
    ring(m, line, 3000)
    assert answered(line)[0].ani is None
    m.dispatch(T.RELEASE, tick=5000)
    assert m.state is TS.IDLE and ("hook", 0, False) in line.port.log
    end = dtmf(m, line, "A13800130002C", 8000)
    ring(m, line, end + 500)
    assert [a.ani for a in answered(line)] == [None, "13800130002"]


def test_a_late_digit_does_not_continue_a_caller_id() -> None:
    line = Line()
    m = trunk(line, answer_on_ring=1)
    dtmf(m, line, "1380013", 1000)                 # a bare number cut short ...
    end = dtmf(m, line, "13800130002#", 4000)      # ... a new one 3 s later (cid_digit_gap 1 s)
    ring(m, line, end + 500)
    assert answered(line)[0].ani == "13800130002"


def fsk_message(m: FxoTrunk, line: Line, number: str, at: int) -> None:
    from e1t1.analog.callerid import encode_mdmf
    line.clock.advance(at)
    m.dispatch(T.FSK_CARRIER, value=1, tick=at)
    for i, b in enumerate(b"\x55\x55" + encode_mdmf(CallerId(number=number, month=3, day=1, hour=9, minute=30))):
        m.dispatch(T.CID_BYTE, byte=b, tick=at + 10 + i)


def test_an_fsk_channel_seizure_begins_a_new_identity_after_ring_1() -> None:
    # A gives up during ring 1, before its caller ID; B's first ring is counted as ring 2. B's
    # channel seizure (after its ring 1) puts the count back to 1: B is answered on its own ring 3.
    line = Line()
    m = trunk(line, callerid="fsk_bell202", answer_on_ring=3)
    ring(m, line, 1000, on=400)
    ring(m, line, 3000)                            # B's ring 1 (ring 2 for the trunk)
    assert line.port.log.count(("fsk_rx", 0, "bell202")) == 1
    fsk_message(m, line, "13911112222", 4500)
    assert [e.number for e in line.events if isinstance(e, TrunkCallerId)] == ["13911112222"]
    ring(m, line, 8000)                            # B's ring 2
    assert answered(line) == []
    ring(m, line, 13000)                           # B's ring 3
    assert answered(line) == [TrunkAnswered(0, 13000, "13911112222")]


def test_the_ring_gap_ends_a_ringing_cycle_and_the_next_ring_is_ring_1() -> None:
    line = Line()
    m = trunk(line, callerid="none", answer_on_ring=2, overrides={"fxo": {"ring_gap": 6000}})
    ring(m, line, 1000)
    line.clock.advance(2000 + 5999)
    states = [m.state]
    line.clock.advance(2000 + 6000)
    states.append(m.state)
    assert states == [TS.RINGING, TS.IDLE]
    assert [e for e in line.events if isinstance(e, TrunkAbandoned)] == [TrunkAbandoned(0, 8000, 1)]
    ring(m, line, 9000)
    assert m.state is TS.RINGING and m.rings == 1


CN_CADENCE = (1000, 4000)       # cn: 1 s on, 4 s off (line-signals.md)


def test_a_ring_cut_short_of_the_cadence_ends_the_cycle() -> None:
    # The exchange stops ringing when the caller hangs up: a 400 ms ring is no cn ring.
    line = Line()
    m = trunk(line, callerid="none", answer_on_ring=2, cadence=CN_CADENCE)
    ring(m, line, 1000, on=400)
    after_short_ring = m.state
    assert [e for e in line.events if isinstance(e, TrunkAbandoned)] == [TrunkAbandoned(0, 1400, 1)]
    ring(m, line, 6000)                              # the next caller: ring 1, not ring 2
    assert after_short_ring is TS.IDLE
    assert m.state is TS.RINGING and m.rings == 1 and not answered(line)
    ring(m, line, 11000)
    assert [a.tick for a in answered(line)] == [11000]


def test_a_ring_sooner_than_the_cadence_pause_is_a_new_call() -> None:
    line = Line()
    m = trunk(line, callerid="none", answer_on_ring=2, cadence=CN_CADENCE)
    ring(m, line, 1000)                              # a whole ring 1 (to 2000), then the caller gave up
    ring(m, line, 5500)                              # 3.5 s later: sooner than the 4 s pause
    assert m.state is TS.RINGING and m.rings == 1 and not answered(line)
    assert [e for e in line.events if isinstance(e, TrunkAbandoned)] == [TrunkAbandoned(0, 5500, 1)]
    ring(m, line, 10500)                             # the cadence's pause: ring 2
    assert [a.tick for a in answered(line)] == [10500]


def test_rings_within_the_cadence_tolerance_are_one_call() -> None:
    line = Line()
    m = trunk(line, callerid="none", answer_on_ring=3, cadence=CN_CADENCE)
    ring(m, line, 1000, on=920)                      # 8 % short
    ring(m, line, 1920 + 3700)                       # a pause 7.5 % short
    ring(m, line, 5620 + 1000 + 4100)
    assert [a.tick for a in answered(line)] == [10720] and not [
        e for e in line.events if isinstance(e, TrunkAbandoned)]


@pytest.mark.parametrize(("event", "value", "reason"), [
    (T.BATTERY, 0, "battery lost"), (T.POLARITY, 1, "polarity reversal"), (T.BUSY, 3, "busy tone")])
def test_the_far_end_hanging_up_releases_the_trunk(event: TrunkEvent, value: int, reason: str) -> None:
    line = Line()
    m = trunk(line, callerid="none", answer_on_ring=1)
    ring(m, line, 1000)
    line.clock.advance(1000 + 1000 + 600)           # past the 600 ms polarity guard
    line.port.log.clear()
    m.dispatch(event, value=value, tick=2600)
    assert m.state is TS.IDLE
    assert line.events[-1] == TrunkReleased(0, 2600, reason, True)
    assert ("hook", 0, False) in line.port.log and ("busy_detect", 0, 0, 0, 0) in line.port.log


def test_a_polarity_reversal_inside_the_guard_is_not_a_hang_up() -> None:
    line = Line()
    m = trunk(line, callerid="none", answer_on_ring=1)
    ring(m, line, 1000, on=100)
    line.clock.advance(1000 + 599)
    m.dispatch(T.POLARITY, value=1, tick=1599)
    assert m.state is TS.UP


# -- the FXS phone -----------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "standard"), [("cn", "bell202"), ("us", "bell202"), ("de", "v23")])
def test_a_ringing_phone_gets_caller_id_after_its_first_ring(zone: str, standard: str) -> None:
    line = Line()
    m = phone(line, zone)
    line.clock.advance(1000)
    m.dispatch(P.OFFER, cid=CallerId(number="13800138000", month=3, day=1, hour=9, minute=30))
    assert line.port.log == [("ring", 2)]
    due = 1000 + RING_ON_MS[zone] + 500              # cid_delay: 500 ms after the end of ring 1
    line.clock.advance(due - 1)
    assert len(line.port.log) == 1
    line.clock.advance(due)
    name, chan, frame = line.port.log[-1]
    assert (name, chan) == ("fsk_tx", 2) and isinstance(frame, FskFrame)
    assert (frame.standard, frame.seizure_bits, frame.mark_bits) == (standard, 300, 180)
    assert decode_fsk_message(frame.message) == CallerId(number="13800138000", month=3, day=1, hour=9, minute=30)


def test_answering_before_the_caller_id_stops_it() -> None:
    line = Line()
    m = phone(line)
    m.dispatch(P.OFFER, cid=CallerId(number="5551234"))
    line.clock.advance(800)
    m.dispatch(P.HOOK_OFF, tick=800)
    line.clock.advance(5000)
    assert [c[0] for c in line.port.log] == ["ring", "ring_stop", "silence"]
    assert line.events == [PhoneAnswered(2, 800)] and m.state is PS.CONNECTED


def test_a_dialled_string_is_reported_and_answered_by_the_layer_above() -> None:
    line = Line()
    m = phone(line)

    def above(ev: LineEvent) -> None:
        line.events.append(ev)
        if isinstance(ev, PhoneDialled) and ev.digits == "*23#":
            m.dispatch(P.ACCEPT)                     # sent from inside the report: runs after it

    m.sink = above
    m.dispatch(P.HOOK_OFF, tick=0)
    for i, d in enumerate("*23#"):
        m.dispatch(P.DTMF, digit=d, tick=1000 + 150 * i)
    assert [e.digits for e in line.events if isinstance(e, PhoneDialled)] == ["*", "*2", "*23", "*23#"]
    assert ("tone", 2, "cn", "confirm") in line.port.log and m.state is PS.ANNOUNCE
    m.dispatch(P.HOOK_ON, tick=3000)
    assert line.events[-1] == PhoneOnHook(2, 3000)


@pytest.mark.parametrize(("overrides", "wait"), [(None, 8000), ({"fxs": {"inter_digit": 5000}}, 5000)])
def test_the_inter_digit_timer_is_the_sites(overrides: dict[str, dict[str, int]] | None, wait: int) -> None:
    line = Line()
    m = phone(line, overrides=overrides)
    m.dispatch(P.HOOK_OFF, tick=0)
    line.clock.advance(1000)
    m.dispatch(P.DTMF, digit="*", tick=1000)
    line.clock.advance(1000 + wait - 1)
    assert ("tone", 2, "cn", "congestion") not in line.port.log
    line.clock.advance(1000 + wait)
    assert ("tone", 2, "cn", "congestion") in line.port.log
