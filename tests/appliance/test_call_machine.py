"""The call machine's table, walked: every event from every state, against outcomes written here."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.calls.call import CallEvent, CallMachine, CallState, agent_leg, caller_leg
from appliance.calls.legs import Leg, LegKind
from appliance.storage import CdrRecord
from e1t1.clock import Clock
from tests.e2e.harness import check_config, site_yaml

CFG = check_config(site_yaml(agents=1))          # menu: '1' -> front_desk; timeout 5000 ms, 2 repeats
S, E = CallState, CallEvent
DATA: dict[CallEvent, dict[str, Any]] = {
    E.DIGIT: {"digit": "1", "tick": 0}, E.PROMPT_DONE: {}, E.TIMEOUT: {},
    E.OFFERED: {"leg": agent_leg(2, "phone1"), "agent": "1001"}, E.REQUEUED: {},
    E.AGENT_ANSWERED: {"tick": 0, "agent": "1001", "chan": 2}, E.CALLER_GONE: {"tick": 0, "reason": "battery lost"},
    E.AGENT_GONE: {"tick": 0}, E.RELEASE: {"tick": 0, "disposition": "failed"},
    E.ROUTED: {"kind": "hangup", "name": "busy", "outcome": "full"},
    E.ANNOUNCE: {"language": "en", "prompts": ["position_intro", "n3"]}, E.RING_STOPPED: {"chan": 2},
}
_W = (E.DIGIT, E.PROMPT_DONE, E.ANNOUNCE, E.RING_STOPPED)    # waiting: the state stays
# state -> event -> the state it leads to; an event not named is not accepted there.
OUTCOME: dict[CallState, dict[CallEvent, CallState]] = {
    S.IVR: {E.DIGIT: S.QUEUED, E.PROMPT_DONE: S.IVR, E.TIMEOUT: S.IVR, E.CALLER_GONE: S.ENDED,
            E.RELEASE: S.ENDED},
    S.QUEUED: {E.OFFERED: S.OFFERED, E.REQUEUED: S.QUEUED, **{e: S.QUEUED for e in _W}, E.ROUTED: S.LEAVING,
               E.CALLER_GONE: S.ENDED, E.RELEASE: S.ENDED},
    S.OFFERED: {E.AGENT_ANSWERED: S.CONNECTED, E.REQUEUED: S.QUEUED, E.OFFERED: S.OFFERED,
                **{e: S.OFFERED for e in _W}, E.ROUTED: S.LEAVING, E.CALLER_GONE: S.ENDED, E.RELEASE: S.ENDED},
    S.CONNECTED: {E.AGENT_GONE: S.ENDED, E.DIGIT: S.CONNECTED, E.PROMPT_DONE: S.CONNECTED, E.CALLER_GONE: S.ENDED,
                  E.RELEASE: S.ENDED},
    S.LEAVING: {E.PROMPT_DONE: S.ENDED, E.DIGIT: S.LEAVING, E.CALLER_GONE: S.ENDED, E.RELEASE: S.ENDED},
    S.ENDED: {},
}
# how the record of a call ended from each state by each event reads (RELEASE: the reason given)
DISPOSITION = {(S.IVR, E.CALLER_GONE): "ivr_hangup", (S.IVR, E.RELEASE): "failed",
               (S.QUEUED, E.CALLER_GONE): "abandoned", (S.QUEUED, E.RELEASE): "failed",
               (S.OFFERED, E.CALLER_GONE): "abandoned", (S.OFFERED, E.RELEASE): "failed",
               (S.CONNECTED, E.CALLER_GONE): "answered", (S.CONNECTED, E.AGENT_GONE): "answered",
               (S.CONNECTED, E.RELEASE): "failed",
               # routed to a prompt and hang-up because the queue was full: "busy", whoever ends it
               (S.LEAVING, E.PROMPT_DONE): "busy", (S.LEAVING, E.CALLER_GONE): "busy", (S.LEAVING, E.RELEASE): "failed"}


class Host:
    """Records what the call asks of the world."""

    def __init__(self) -> None:
        self.done: list[tuple[str, Any]] = []
        self.records: list[CdrRecord] = []
        self.events: list[tuple[str, str | None]] = []
        self.causes: list[int | None] = []
        self.details: list[tuple[str, dict[str, Any]]] = []

    @property
    def media(self) -> Any:
        host = self

        class Media:
            def __getattr__(self, name: str) -> Any:
                return lambda *a: host.done.append((name, a))
        return Media()

    def prompt(self, language: str, name: str) -> Any:
        return (language, name)

    def release_trunk(self, chan: int, tick: int, cause: int | None = None) -> None:
        self.done.append(("release_trunk", chan))
        self.causes.append(cause)

    def far_end_gone(self, leg: Leg) -> None:
        self.done.append(("far_end_gone", leg.chan))

    def enqueue(self, call: CallMachine) -> None:
        self.done.append(("enqueue", call.queues))

    def leave_queue(self, call: CallMachine, outcome: str) -> None:
        self.done.append(("leave_queue", outcome))

    def queue_digit(self, call: CallMachine, digit: str) -> None:
        self.done.append(("queue_digit", digit))

    def agent_free(self, agent: str, call: CallMachine, tick: int) -> None:
        self.done.append(("agent_free", agent))

    def emit(self, kind: str, *, call_id: str | None = None, queue: str | None = None, agent: str | None = None,
             detail: dict[str, Any] | None = None, tick: int | None = None) -> None:
        self.events.append((kind, (detail or {}).get("disposition")))
        self.details.append((kind, dict(detail or {})))

    def record(self, rec: CdrRecord) -> None:
        self.records.append(rec)


    def ended(self, call: CallMachine) -> None:
        self.done.append(("ended", call.id))


PATH = {S.IVR: [], S.QUEUED: [E.DIGIT], S.OFFERED: [E.DIGIT, E.OFFERED],
        S.CONNECTED: [E.DIGIT, E.OFFERED, E.AGENT_ANSWERED], S.LEAVING: [E.DIGIT, E.ROUTED],
        S.ENDED: [E.CALLER_GONE]}


def call_in(state: CallState) -> tuple[CallMachine, Host]:
    host = Host()
    call = CallMachine(host, "1-000001", caller_leg(0, "trunk1"), "13800138000", "075588880001", CFG, 1, "main",
                       Clock(0), "2026-03-01T09:30:00")
    for ev in PATH[state]:
        call.dispatch(ev, **DATA[ev])
    assert call.state is state
    return call, host


@pytest.mark.parametrize("state", list(S))
@pytest.mark.parametrize("event", list(E))
def test_every_event_from_every_state(state: CallState, event: CallEvent) -> None:
    call, host = call_in(state)
    before = (call.state, call.timer, list(call.transitions), len(host.records), call.protocol_errors)
    call.dispatch(event, **DATA[event])
    expected = OUTCOME[state].get(event)
    if expected is None:
        assert call.state is state and call.timer == before[1]
        assert call.protocol_errors == before[4] + 1
        assert len(host.records) == before[3]
        return
    assert call.state is expected
    assert call.protocol_errors == before[4]
    cdrs = [r for r in host.records if isinstance(r, CdrRecord)]
    if expected is S.ENDED:
        assert call.terminated and ("ended", call.id) in host.done
        (cdr,) = cdrs
        assert cdr.disposition == DISPOSITION[(state, event)]
        # our side puts the trunk on hook, unless the caller's hang-up already did
        assert (("release_trunk", 0) in host.done) == (event is not E.CALLER_GONE)
        # a connected agent hears the call go unless it was the agent who hung up
        assert (("far_end_gone", 2) in host.done) == (state is S.CONNECTED and event is not E.AGENT_GONE)
        # only a caller who hangs up while waiting abandoned the queue
        abandoned = state in (S.QUEUED, S.OFFERED) and event is E.CALLER_GONE
        assert (("leave_queue", "abandoned") in host.done) == abandoned
        assert host.events[-1] == ("call_end", cdr.disposition)      # the log's end says what the CDR says
    else:
        assert not cdrs and not call.terminated


def test_the_table_names_every_state_and_the_walk_covers_it() -> None:
    assert set(CallMachine.TABLE) == set(S)
    for st, sdef in CallMachine.TABLE.items():
        assert set(OUTCOME[st]) == set(sdef.events), st
        assert set(OUTCOME[st].values()) - {st} <= set(sdef.next_states), st


def test_silence_after_the_greeting_repeats_it_then_releases() -> None:
    call, host = call_in(S.IVR)

    def plays() -> int:
        return sum(1 for name, _ in host.done if name == "play")

    assert plays() == 1
    for repeat in range(2):                       # max_repeats 2
        call.dispatch(E.PROMPT_DONE)
        assert call.timer is not None and call.timer[1] == 5000 * (repeat + 1)
        call.clock.advance(call.timer[1])
        assert call.state is S.IVR and plays() == repeat + 2
    call.dispatch(E.PROMPT_DONE)
    call.clock.advance(call.clock.now_ms + 5000)
    assert call.state is S.ENDED and host.records[-1].disposition == "ivr_hangup"


def test_a_withdrawn_offer_keeps_the_queue_place() -> None:
    call, host = call_in(S.OFFERED)
    call.dispatch(E.REQUEUED)
    assert call.state is S.QUEUED and call.agent_leg is None
    assert [d for d in host.done if d[0] == "enqueue"] == [("enqueue", ("front_desk",))]   # entered once


# -- a PRI call: its caller's leg a B-channel ---------------------------------------------------------

LINE = {"line": "pri", "timeslot": 5, "ani_ton": "national", "ani_npi": "isdn", "ani_presentation": "restricted",
        "ani_screening": "network", "dnis_ton": "unknown", "dnis_npi": "isdn"}


def pri_call_in(state: CallState) -> tuple[CallMachine, Host]:
    host = Host()
    call = CallMachine(host, "1-000001", caller_leg(40, "span1", LegKind.PRI), "13800138000", "075588880000", CFG, 1,
                       "main", Clock(0), "2026-03-01T09:30:00", line=LINE)
    for ev in PATH[state]:
        data = dict(DATA[ev])
        call.dispatch(ev, **data)
    assert call.state is state
    return call, host


@pytest.mark.parametrize("state", [S.IVR, S.QUEUED, S.OFFERED, S.CONNECTED, S.LEAVING])
def test_a_pri_call_s_record_has_its_line_and_the_line_s_disposition_and_cause(state: CallState) -> None:
    call, host = pri_call_in(state)
    assert host.details[0] == ("call_start", {"trunk": "span1", "ani": "13800138000", "dnis": "075588880000",
                                              "config_version": 1, "calendar_start": "2026-03-01T09:30:00", **LINE})
    assert call.ani_presentation == "restricted"
    call.dispatch(E.CALLER_GONE, tick=0, reason="alarm", cause=38, disposition="line_fault")
    (cdr,) = host.records
    assert (cdr.disposition, cdr.cause, cdr.timeslot, cdr.ani_ton, cdr.ani_npi, cdr.ani_presentation,
            cdr.ani_screening) == ("line_fault", 38, 5, "national", "isdn", "restricted", "network")
    assert host.details[-1] == ("call_end", {"disposition": "line_fault", "cause": 38})
    assert ("release_trunk", 40) not in host.done              # the line is gone already
    # a waiting caller the line took away did not abandon
    assert ("leave_queue", "abandoned") not in host.done
    assert (("leave_queue", "released") in host.done) == (state in (S.QUEUED, S.OFFERED))


@pytest.mark.parametrize(("event", "data", "disposition", "cause"), [
    (E.CALLER_GONE, {"tick": 0, "reason": "cleared", "cause": 31}, "ivr_hangup", 31),     # the far end's cause
    (E.RELEASE, {"tick": 0, "disposition": "shutdown"}, "shutdown", 16),                  # ours: 16
])
def test_a_pri_call_s_cause_is_the_far_end_s_or_ours(event: CallEvent, data: dict[str, Any], disposition: str,
                                                     cause: int) -> None:
    call, host = pri_call_in(S.IVR)
    call.dispatch(event, **data)
    (cdr,) = host.records
    assert (cdr.disposition, cdr.cause) == (disposition, cause)
    assert host.causes == ([] if event is E.CALLER_GONE else [16])


def test_a_pri_call_refused_keeps_the_cause_its_host_set() -> None:
    call, host = pri_call_in(S.IVR)
    call.cause = 28
    call.dispatch(E.RELEASE, tick=0, disposition="rejected")
    (cdr,) = host.records
    assert (cdr.disposition, cdr.cause) == ("rejected", 28) and host.causes == [28]


def test_an_fxo_call_has_no_pri_fields() -> None:
    call, host = call_in(S.IVR)
    call.dispatch(E.RELEASE, tick=0, disposition="failed")
    (cdr,) = host.records
    assert (cdr.timeslot, cdr.ani_ton, cdr.cause) == (None, None, None) and host.causes == [None]
    assert "cause" not in host.details[-1][1] and "timeslot" not in host.details[0][1]
