"""Q.931 call control: our user side against our network side over two Q.921 links back to back on
one virtual clock (EuroISDN E1 and NI-2 T1), and one side alone fed octets by hand.

The wire carries each frame DELAY ms (a clock timer, in order) unless a test drops it, and keeps
every frame with its time and sender; the Q.931 messages in its I frames are read back with
q931.decode and written as short words (``u:SETUP``, ``n:RELEASE COMPLETE 44``). Each side's owner
records every report and answers offered calls by a policy (answer, accept, alert, route by DNIS,
nothing). The expected messages, causes and states are written here from the issue's Definitions
and Q.931 §5, never read from the module.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e1t1.clock import Clock
from e1t1.errors import EncodeError, ProtocolError, TimerError
from e1t1.fsm import TermCause
from e1t1.isdn import q931
from e1t1.isdn.call import (
    NETWORK_STATES,
    Q931_TIMERS,
    USER_STATES,
    BChannelLeg,
    Call,
    CallControl,
    CallState,
    LegState,
    NetworkCall,
    UserCall,
)
from e1t1.isdn.events import (
    CallAnswered,
    CallDigits,
    CallOffered,
    CallRefused,
    CallReleased,
    DchanChanged,
    PriEvent,
    RestartDone,
    ServiceChanged,
)
from e1t1.isdn.q921 import DataLink, DlDataIndication, FrameKind, Side, decode_frame
from e1t1.isdn.q931 import (
    CallRef,
    ChannelId,
    Npi,
    Presentation,
    Screening,
    ServiceStatus,
    Ton,
    decode,
)
from e1t1.protocols import TIMER_TABLES, timer_tables

DELAY = 5           # ms from one end of the D-channel to the other
E1_B = (*range(1, 16), *range(17, 32))
T1_B = tuple(range(1, 24))
HOSTILE: list[dict[str, Any]] = json.loads((Path(__file__).parent / "vectors" / "q931_hostile.json").read_text())


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


def word(who: str, msg: q931.Message) -> str:
    """A message as a short word: its sender's initial, its name, and its cause if it has one."""
    cause = msg.get(q931.Cause)
    return f"{who[0]}:{msg.NAME}" + (f" {cause.value}" if cause is not None else "")


class Wire:
    """Both directions of a D-channel: frames reach the other end `delay` ms later unless
    `drop(sender, octets)` says they are lost."""

    def __init__(self, clock: Clock, delay: int) -> None:
        self.clock = clock
        self.delay = delay
        self.log: list[tuple[int, str, bytes]] = []
        self.drop: Callable[[str, bytes], bool] = lambda who, octets: False
        self.ends: dict[str, DataLink] = {}

    def sender(self, who: str) -> Callable[[bytes], None]:
        def send(octets: bytes) -> None:
            self.log.append((self.clock.now_ms, who, octets))
            if self.drop(who, octets):
                return
            peer = self.ends["network" if who == "user" else "user"]
            self.clock.call_later(self.delay, lambda: peer.receive(octets))
        return send

    def messages(self, since: int = 0) -> list[tuple[int, str, q931.Message]]:
        """The Q.931 messages sent, with time and sender, in order (each I frame once: its first sending)."""
        out, seen = [], set()
        for t, who, octets in self.log:
            f = decode_frame(octets)
            if f.kind is not FrameKind.I or t < since:
                continue
            key = (who, f.ns, octets[4:])
            if key in seen:
                continue
            seen.add(key)
            out.append((t, who, decode(f.info, who)))  # type: ignore[arg-type]
        return out


class Owner:
    """The layer above one side: every report kept; an offered call answered by `policy`: ``answer``,
    ``accept`` (CALL PROCEEDING), ``alert``, ``none``; with `routes`, a DNIS not among them gets no_route()."""

    def __init__(self) -> None:
        self.events: list[PriEvent] = []
        self.policy = "answer"
        self.routes: set[str] | None = None

    def __call__(self, ev: PriEvent) -> None:
        self.events.append(ev)
        if not isinstance(ev, CallOffered):
            return
        if self.routes is not None and ev.dnis not in self.routes:
            ev.call.no_route()
        elif self.policy == "answer":
            ev.call.answer()
        elif self.policy == "accept":
            ev.call.accept()
        elif self.policy == "alert":
            ev.call.alert()

    def of(self, cls: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def released(self) -> list[CallReleased]:
        return self.of(CallReleased)


class Pri:
    """Our user side and our network side on one wire and one clock."""

    def __init__(self, switch: str = "euroisdn", delay: int = DELAY, user: dict[str, Any] | None = None,
                 network: dict[str, Any] | None = None, overrides: dict[str, dict[str, int]] | None = None) -> None:
        self.clock = Clock()
        self.wire = Wire(self.clock, delay)
        tables = timer_tables(overrides)
        self.ulink = DataLink(Side.USER, self.wire.sender("user"), lambda e: None, self.clock, tables["q921"],
                              name="user")
        self.nlink = DataLink(Side.NETWORK, self.wire.sender("network"), lambda e: None, self.clock, tables["q921"],
                              name="network")
        self.wire.ends.update(user=self.ulink, network=self.nlink)
        self.uo, self.no = Owner(), Owner()
        self.user = CallControl(self.ulink, self.uo, switch=switch, name="u", timers=tables["q931"], **(user or {}))
        self.net = CallControl(self.nlink, self.no, switch=switch, name="n", timers=tables["q931"], **(network or {}))
        self.b = E1_B if switch == "euroisdn" else T1_B
        self.t0 = 0

    def up(self) -> None:
        self.user.start()
        self.net.start()
        self.run(50)
        assert self.ulink.dchan == self.nlink.dchan == "up"
        self.forget()

    def run(self, ms: int) -> None:
        self.clock.advance(self.clock.now_ms + ms)

    def until(self, t: int) -> None:
        self.clock.advance(t)

    def forget(self) -> None:
        """Start over: the frames and reports so far forgotten, times from now (``t0``)."""
        self.t0 = self.clock.now_ms
        self.wire.log.clear()
        self.uo.events.clear()
        self.no.events.clear()

    def said(self, since: int = 0) -> list[str]:
        return [word(who, m) for _, who, m in self.wire.messages(since)]

    def timed(self, since: int = 0) -> list[tuple[int, str]]:
        """The messages with their time since ``t0``."""
        return [(t - self.t0, word(who, m)) for t, who, m in self.wire.messages(since)]

    def side(self, who: str) -> CallControl:
        return self.user if who == "user" else self.net

    def owner(self, who: str) -> Owner:
        return self.uo if who == "user" else self.no

    def idle(self) -> None:
        """Nothing leaked on either side: no call, no call reference, every B-channel idle, no leg."""
        for cc in (self.user, self.net):
            st = cc.status()
            assert (st["calls"], st["b_busy"], st["b_idle"]) == (0, 0, len(self.b)), st
            assert cc.calls == {}
            assert all(ch.leg is None and not ch.restarting for ch in cc.channels.values())


def call_of(owner: Owner, cls: type[Any] = CallOffered) -> Call:
    return owner.of(cls)[-1].call  # type: ignore[no-any-return]


def st(call: Call | BChannelLeg) -> Any:
    """A machine's state now (a function, so a test may read it again after the clock ran)."""
    return call.state


def states(cc: CallControl) -> list[int]:
    return sorted(c.state.value for c in cc.calls.values())


SWITCHES = [pytest.param("euroisdn", id="E1-euroisdn"), pytest.param("national", id="T1-ni2")]


# -- a call each way ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("clearer", ["user", "network"])
def test_a_call_from_the_user_is_answered_and_cleared(switch: str, clearer: str) -> None:
    p = Pri(switch)
    p.up()
    p.no.policy = "none"
    call = p.user.place(ani="13800138000", ani_ton="national", ani_pres="restricted", dnis="8001",
                        dnis_ton=Ton.subscriber)
    assert call.ours and call.chan == p.b[-1]           # the user hunts from the highest
    p.run(20)
    offered = p.no.of(CallOffered)
    assert len(offered) == 1
    o = offered[0]
    assert (o.ani, o.ani_ton, o.ani_npi, o.ani_presentation, o.ani_screening) == \
        ("13800138000", Ton.national, Npi.isdn, Presentation.restricted, Screening.user_unscreened)
    assert (o.dnis, o.dnis_ton, o.complete_by, o.chan, o.bearer) == \
        ("8001", Ton.subscriber, "sending_complete", p.b[-1], q931.ITC_SPEECH)
    theirs = o.call
    assert st(theirs) is CallState.CALL_INITIATED and st(call) is CallState.CALL_INITIATED   # N1, U1
    theirs.accept()
    p.run(20)
    assert st(call) is st(theirs) is CallState.OUTGOING_CALL_PROCEEDING
    theirs.alert()
    p.run(20)
    assert st(call) is st(theirs) is CallState.CALL_DELIVERED
    theirs.answer()
    p.run(20)
    assert st(call) is st(theirs) is CallState.ACTIVE
    assert call.leg is not None and call.leg.state is LegState.CONNECTED
    assert [type(e).__name__ for e in p.uo.events] == ["CallProceeding", "CallAlerting", "CallAnswered"]
    assert [type(e).__name__ for e in p.no.events] == ["CallOffered", "CallAnswered"]
    assert p.user.status()["b_busy"] == p.net.status()["b_busy"] == 1
    t = p.clock.now_ms
    (call if clearer == "user" else theirs).hangup()
    p.run(50)
    a, b = ("u", "n") if clearer == "user" else ("n", "u")
    assert p.said() == ["u:SETUP", "n:CALL PROCEEDING", "n:ALERTING", "n:CONNECT", "u:CONNECT ACKNOWLEDGE",
                        f"{a}:DISCONNECT 16", f"{b}:RELEASE", f"{a}:RELEASE COMPLETE"]
    setup = p.wire.messages()[0][2]
    assert setup.get(q931.SendingComplete) is not None
    bc = setup.get(q931.BearerCapability)
    assert bc is not None and bc.layer1 == (q931.L1_ALAW if switch == "euroisdn" else q931.L1_ULAW)
    ci = setup.get(ChannelId)
    assert ci is not None and ci.channel == p.b[-1] and not ci.exclusive
    for who, far in (("user", clearer != "user"), ("network", clearer != "network")):
        rel = p.owner(who).released()
        assert len(rel) == 1
        assert (rel[0].cause, rel[0].by_far_end, rel[0].answered, rel[0].disposition, rel[0].tone, rel[0].chan) == \
            (16, far, True, None, None, p.b[-1])
        assert rel[0].tick > t
    p.idle()


@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("clearer", ["user", "network"])
def test_a_call_from_the_network_is_answered_and_cleared(switch: str, clearer: str) -> None:
    p = Pri(switch)
    p.up()
    call = p.net.place(ani="13800138000", ani_ton=Ton.national, ani_pres=Presentation.allowed, dnis="100")
    assert call.chan == 1                               # the network hunts from the lowest
    p.run(50)
    o = p.uo.of(CallOffered)[0]
    assert (o.ani, o.ani_ton, o.ani_npi, o.ani_presentation, o.ani_screening, o.dnis, o.chan) == \
        ("13800138000", Ton.national, Npi.isdn, Presentation.allowed, Screening.network, "100", 1)
    assert call.state is o.call.state is CallState.ACTIVE
    assert p.said() == ["n:SETUP", "u:CONNECT", "n:CONNECT ACKNOWLEDGE"]
    assert [type(e).__name__ for e in p.no.events] == ["CallAnswered"]
    (o.call if clearer == "user" else call).hangup(q931.CAUSE_NORMAL_CLEARING)
    p.run(50)
    assert [r.cause for r in p.uo.released() + p.no.released()] == [16, 16]
    p.idle()


# -- the timers and the tables -----------------------------------------------------------------------------

def test_the_q931_timers_are_one_table_registered_as_q931() -> None:
    assert TIMER_TABLES["q931"] is Q931_TIMERS
    defaults = {t.name: t.default_ms for t in Q931_TIMERS}
    assert defaults == {"T302": 15000, "T303": 4000, "T304": 30000, "T305": 30000, "T308": 4000, "T309": 6000,
                        "T310": 30000, "T313": 4000, "T316": 120000, "T322": 4000}
    p = Pri()
    assert p.user.timers["T310"] == 30000 and p.net.timers["T310"] == 10000     # user 30 s, network 10 s
    both = Pri(overrides={"q931": {"T310": 20000, "T303": 2000}})
    assert both.user.timers["T310"] == both.net.timers["T310"] == 20000          # a span's override wins
    assert both.net.timers["T303"] == 2000
    with pytest.raises(TimerError, match="T399"):
        timer_tables({"q931": {"T399": 1}})
    with pytest.raises(TimerError, match="T303: must be 1000-30000 ms"):
        timer_tables({"q931": {"T303": 999}})
    with pytest.raises(TimerError, match="q921"):
        CallControl(p.ulink, Owner(), timers=timer_tables()["q921"])


def test_each_side_has_every_q931_state_and_reads_them_by_number() -> None:
    assert set(USER_STATES.values()) == set(NETWORK_STATES.values()) == set(CallState)
    assert {s.value for s in CallState} == {0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 19, 25}
    # the same moment of a call has one number on both sides: a SETUP from the user is U1 and N1
    assert USER_STATES["out_initiated"] is NETWORK_STATES["in_present"] is CallState.CALL_INITIATED
    assert NETWORK_STATES["out_initiated"] is CallState.CALL_PRESENT                  # N6: the network's SETUP sent
    assert USER_STATES["in_present"] is CallState.CALL_PRESENT
    assert set(UserCall.TABLE) == set(NetworkCall.TABLE) == set(CallState)
    assert UserCall.TABLE[CallState.CALL_INITIATED].timer == NetworkCall.TABLE[CallState.CALL_PRESENT].timer == "T303"
    assert UserCall.TABLE[CallState.CONNECT_REQUEST].timer == "T313"                 # the user's CONNECT sent
    assert NetworkCall.TABLE[CallState.CONNECT_REQUEST].timer is None
    assert UserCall.TABLE[CallState.DISCONNECT_REQUEST].timer == "T305"              # ours sent (U11)
    assert NetworkCall.TABLE[CallState.DISCONNECT_INDICATION].timer == "T305"        # ours sent (N12)


# -- every B-channel at once ----------------------------------------------------------------------------------

@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("placer", ["user", "network"])
def test_every_b_channel_carries_a_call_and_nothing_leaks(switch: str, placer: str) -> None:
    p = Pri(switch)
    p.up()
    cc, other = p.side(placer), p.side("network" if placer == "user" else "user")
    calls = [cc.place(ani=f"1380013{i:04d}", ani_ton="national", dnis=f"{8000 + i}") for i in range(len(p.b))]
    p.run(500)
    assert sorted(c.chan or 0 for c in calls) == list(p.b)        # hunting gave each call its own channel
    assert all(c.state is CallState.ACTIVE for c in calls)
    assert states(other) == [10] * len(p.b)
    offered = p.owner("network" if placer == "user" else "user").of(CallOffered)
    assert sorted(o.dnis for o in offered) == [f"{8000 + i}" for i in range(len(p.b))]
    assert cc.status()["b_idle"] == other.status()["b_idle"] == 0
    assert not cc.ready and not other.ready                     # no call can be placed on either side
    # one more: no free B-channel, 34, released at once
    extra = cc.place(ani="1", dnis="2")
    rel = p.owner(placer).released()
    assert extra.terminated and [(r.cause, r.disposition, r.tone) for r in rel] == [(34, "rejected", "congestion")]
    # cleared from either side, alternately
    theirs = {o.chan: o.call for o in offered}
    for i, c in enumerate(calls):
        (c if i % 2 else theirs[c.chan]).hangup()
    p.run(500)
    assert len(p.owner(placer).released()) == len(p.b) + 1
    assert all(r.cause == 16 for r in p.owner(placer).released()[1:])
    p.idle()
    assert all(c.terminated and c.leg is None for c in calls)
    assert cc.ready and other.ready


@pytest.mark.parametrize("switch", SWITCHES)
def test_a_span_is_ready_for_a_call_while_one_b_channel_is_free_restarted_and_in_service(switch: str) -> None:
    p = Pri(switch)
    p.up()
    cc = p.user
    assert cc.ready
    for ch in cc.channels.values():
        ch.restarting = True                                     # a RESTART of ours unacknowledged
    assert not cc.ready
    last = cc.channels[p.b[-1]]
    last.restarting = False
    assert cc.ready
    last.service = ServiceStatus.out_of_service
    assert not cc.ready
    last.service = ServiceStatus.in_service
    last.restarting = True
    last.restarting = True                                       # told twice: still one channel
    last.restarting = False
    assert cc.ready and cc.status()["b_idle"] == 1
    call = cc.place(ani="1380013", ani_ton="national", dnis="8000")
    assert call.chan == last.timeslot and not cc.ready          # the one free channel taken
    call.hangup()
    p.run(500)
    assert cc.ready


# -- overlap and en-bloc receiving -------------------------------------------------------------------------

def test_overlap_receiving_routes_on_the_exact_match() -> None:
    p = Pri(user={"is_complete": lambda dnis: dnis == "07551234"})
    p.up()
    p.uo.routes = {"07551234"}
    t0 = p.clock.now_ms
    call = p.net.place(ani="13800138000", dnis="0755", complete=False)
    p.run(100)
    assert p.said() == ["n:SETUP", "u:SETUP ACKNOWLEDGE"]
    setup = p.wire.messages()[0][2]
    assert setup.get(q931.SendingComplete) is None
    theirs = p.user.calls[(call.cr.value, False)]
    assert theirs.state is CallState.OVERLAP_RECEIVING and call.state is CallState.OVERLAP_RECEIVING  # U25, N25
    assert theirs.timer == ("T302", t0 + DELAY + 15000)
    for d in "1234":
        call.info(d)
        p.run(1000)
    digits = p.uo.of(CallDigits)
    assert [(e.digits, e.dnis) for e in digits] == [("1", "07551"), ("2", "075512"), ("3", "0755123"),
                                                    ("4", "07551234")]
    o = p.uo.of(CallOffered)
    assert len(o) == 1 and (o[0].dnis, o[0].complete_by) == ("07551234", "match")
    assert p.said() == ["n:SETUP", "u:SETUP ACKNOWLEDGE"] + ["n:INFORMATION"] * 4 + [
        "u:CONNECT", "n:CONNECT ACKNOWLEDGE"]
    assert st(call) is st(theirs) is CallState.ACTIVE


def test_overlap_with_no_match_clears_with_28_at_t302() -> None:
    p = Pri(user={"is_complete": lambda dnis: dnis == "07551234"})
    p.up()
    p.uo.routes = {"07551234"}
    call = p.net.place(ani="13800138000", dnis="0755", complete=False)
    p.run(100)
    call.info("9")
    last_digit = p.clock.now_ms + DELAY             # when the INFORMATION reaches the user
    p.run(20000)
    o = p.uo.of(CallOffered)
    assert len(o) == 1 and (o[0].dnis, o[0].complete_by, o[0].tick) == ("07559", "t302", last_digit + 15000)
    assert p.said()[-3:] == ["u:DISCONNECT 28", "n:RELEASE", "u:RELEASE COMPLETE"]
    ur, nr = p.uo.released(), p.no.released()
    assert (ur[0].cause, ur[0].disposition, ur[0].by_far_end) == (28, "rejected", False)
    assert (nr[0].cause, nr[0].by_far_end, nr[0].tone) == (28, True, "info")
    p.idle()


@pytest.mark.parametrize("switch", SWITCHES)
def test_en_bloc_to_no_route_gets_release_complete_1(switch: str) -> None:
    p = Pri(switch)
    p.up()
    p.uo.routes = {"8001"}
    p.net.place(ani="13800138000", dnis="9999")
    p.run(50)
    assert p.said() == ["n:SETUP", "u:RELEASE COMPLETE 1"]
    assert [(r.cause, r.disposition, r.reason) for r in p.uo.released()] == [(1, "rejected", "rejected")]
    assert [(r.cause, r.by_far_end, r.tone) for r in p.no.released()] == [(1, True, "info")]
    p.idle()


def test_without_overlap_a_setup_is_complete_as_it_comes() -> None:
    p = Pri(user={"overlap": False})
    p.up()
    p.net.place(ani="1", dnis="0755", complete=False)
    p.run(50)
    assert p.uo.of(CallOffered)[0].complete_by == "en_bloc"
    assert p.said() == ["n:SETUP", "u:CONNECT", "n:CONNECT ACKNOWLEDGE"]


def test_digits_given_before_setup_acknowledge_wait_for_it() -> None:
    p = Pri(user={"is_complete": lambda d: d == "07551"})
    p.up()
    call = p.net.place(ani="1", dnis="0755", complete=False)
    call.info("1")
    p.run(100)
    assert p.said() == ["n:SETUP", "u:SETUP ACKNOWLEDGE", "n:INFORMATION", "u:CONNECT", "n:CONNECT ACKNOWLEDGE"]


def test_sending_complete_in_information_completes_the_number() -> None:
    p = Pri()
    p.up()
    call = p.net.place(ani="1", dnis="07", complete=False)
    p.run(50)
    call.info("55", complete=True)
    p.run(50)
    assert [(o.dnis, o.complete_by) for o in p.uo.of(CallOffered)] == [("0755", "sending_complete")]


# -- glare -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("switch", SWITCHES)
@pytest.mark.parametrize("exclusive", [True, False], ids=["exclusive", "preferred"])
def test_glare_on_ts5_the_network_wins(switch: str, exclusive: bool) -> None:
    p = Pri(switch)
    p.up()
    p.uo.policy = p.no.policy = "accept"
    ours = p.user.place(ani="1", dnis="2", channel=5, exclusive=exclusive)
    theirs = p.net.place(ani="3", dnis="4", channel=5, exclusive=True)
    p.run(100)
    offered_to_user = p.uo.of(CallOffered)
    assert len(offered_to_user) == 1 and offered_to_user[0].chan == 5    # the network's call has TS5
    assert theirs.chan == 5 and theirs.state is CallState.INCOMING_CALL_PROCEEDING
    if exclusive:
        assert p.said() == ["u:SETUP", "n:SETUP", "n:RELEASE COMPLETE 44", "u:CALL PROCEEDING"]
        assert [(r.cause, r.by_far_end, r.tone) for r in p.uo.released()] == [(44, True, "congestion")]
        assert ours.terminated
    else:
        assert p.said() == ["u:SETUP", "n:SETUP", "n:CALL PROCEEDING", "u:CALL PROCEEDING"]
        answer = p.wire.messages()[2][2]
        ci = answer.get(ChannelId)
        assert ci is not None and ci.channel == 1 and ci.exclusive        # the network's lowest free
        assert ours.chan == 1 and ours.state is CallState.OUTGOING_CALL_PROCEEDING
        assert p.net.calls[(ours.cr.value, False)].chan == 1
        assert p.user.status()["b_busy"] == p.net.status()["b_busy"] == 2


# -- a peer that ignores SETUP -------------------------------------------------------------------------------

@pytest.mark.parametrize("placer", ["user", "network"])
def test_a_setup_ignored_is_sent_again_at_4_s_and_cleared_at_8_s_with_102(placer: str) -> None:
    p = Pri()
    p.up()
    deaf = p.side("network" if placer == "user" else "user")
    heard = deaf.link.sink
    deaf.link.sink = lambda ev: None if isinstance(ev, DlDataIndication) and ev.data[4] == 0x05 else heard(ev)
    call = p.side(placer).place(ani="1", dnis="2")
    p.run(10000)
    who = placer[0]
    assert p.timed() == [(0, f"{who}:SETUP"), (4000, f"{who}:SETUP"), (8000, f"{who}:RELEASE COMPLETE 102")]
    m = p.wire.messages()
    assert m[0][2].encode() == m[1][2].encode()         # the same SETUP again
    rel = p.owner(placer).released()
    assert [(r.cause, r.disposition, r.reason, r.tick - p.t0, r.tone) for r in rel] == \
        [(102, "failed", "T303", 8000, "congestion")]
    assert call.terminated
    p.idle()


def deafen(cc: CallControl, *mtypes: int) -> None:
    """`cc` never hears messages of these types (a far end that ignores them)."""
    heard = cc.link.sink

    def sink(ev: Any) -> None:
        if isinstance(ev, DlDataIndication) and len(ev.data) > 4 and ev.data[4] in mtypes:
            return
        heard(ev)
    cc.link.sink = sink


# -- one side alone: the far end's octets by hand -----------------------------------------------------------

class Lone:
    """Our call control on `side`, against a bare Q.921 link of the other side whose messages the test
    writes; what we answer is read back from that link."""

    def __init__(self, side: str = "user", switch: str = "euroisdn", **kw: Any) -> None:
        self.clock = Clock()
        self.wire = Wire(self.clock, 1)
        self.side, self.far_side = side, ("network" if side == "user" else "user")
        self.heard: list[bytes] = []
        self.link = DataLink(Side(side), self.wire.sender(side), lambda e: None, self.clock, name="us")
        self.far = DataLink(Side(self.far_side), self.wire.sender(self.far_side),
                            lambda e: self.heard.append(e.data) if isinstance(e, DlDataIndication) else None,
                            self.clock, name="far")
        self.wire.ends.update({side: self.link, self.far_side: self.far})
        self.owner = Owner()
        self.owner.policy = "accept"
        self.cc = CallControl(self.link, self.owner, switch=switch, name="us", **kw)
        self.cc.start()
        self.run(10)
        # our RESTART of every channel once the link is up (a start's), acknowledged as a peer would
        [restart] = self.answers()
        assert isinstance(restart, q931.Restart)
        self.msg(q931.RestartAck, q931.GLOBAL_CALL_REFERENCE, *restart.ies)
        self.heard.clear()

    def run(self, ms: int) -> None:
        self.clock.advance(self.clock.now_ms + ms)

    def send(self, octets: bytes) -> list[str]:
        """The far end sends `octets`: what we answer, as words."""
        self.heard.clear()
        if octets:
            self.far.send(octets)
        else:                   # an empty information field: no DL-DATA-REQUEST sends it, a peer's I frame may
            self.link.sink(DlDataIndication(self.clock.now_ms, octets))
        self.run(10)
        return [word(self.side, decode(d, self.side)) for d in self.heard]  # type: ignore[arg-type]

    def place(self, **kw: Any) -> Call:
        """Our call (ANI 1, DNIS 2 unless said), its SETUP delivered."""
        call = self.cc.place(**{"ani": "1", "dnis": "2", **kw})
        self.run(10)
        self.heard.clear()
        return call

    def answers(self) -> list[q931.Message]:
        return [decode(d, self.side) for d in self.heard]  # type: ignore[arg-type]

    def msg(self, cls: type[q931.Message], cr: CallRef, *ies: q931.InformationElement) -> list[str]:
        return self.send(cls(cr, tuple(ies)).encode())

    def state(self, cr: CallRef) -> int:
        """Our state of the call on `cr` (as the far end writes it), by STATUS ENQUIRY."""
        self.run(10)
        self.msg(q931.StatusEnquiry, cr)
        (status,) = self.answers()
        assert isinstance(status, q931.Status)
        cs, cause = status.get(q931.CallState), status.get(q931.Cause)
        assert cs is not None and cause is not None and cause.value == 30
        return cs.state.value

    def far_setup(self, cr: int = 1, channel: int = 9, complete: bool = True) -> list[str]:
        """The far end offers a call on call reference `cr` (flag 0), TS `channel` exclusive."""
        ies: list[q931.InformationElement] = [q931.SendingComplete()] if complete else []
        ies += [q931.BearerCapability.speech("alaw"), ChannelId.b_channel(channel, exclusive=True),
                q931.CallingNumber("13800138000", Ton.national, Npi.isdn, Presentation.allowed,
                                   Screening.network),
                q931.CalledNumber("100")]
        return self.msg(q931.Setup, CallRef(cr), *ies)


FAR_CALL = CallRef(1)           # the far end's call, call reference 1 (it chose the value: flag 0)
OUR_CALL = CallRef(1, True)     # our first call, as the far end writes its call reference (flag 1)


def _recipes() -> Iterator[Any]:
    """(our side, state, how to get a call there): every state that lasts, both sides."""
    def place(lone: Lone) -> None:
        lone.place()

    def then(*steps: Callable[[Lone], Any]) -> Callable[[Lone], None]:
        def run(lone: Lone) -> None:
            for s in steps:
                s(lone)
        return run

    def far(cls: type[q931.Message], *ies: q931.InformationElement) -> Callable[[Lone], Any]:
        return lambda lone: lone.msg(cls, OUR_CALL, *ies)

    def owner(policy: str) -> Callable[[Lone], None]:
        return lambda lone: setattr(lone.owner, "policy", policy)

    def hangup(lone: Lone) -> None:
        next(iter(lone.cc.calls.values())).hangup()

    def offer(complete: bool = True) -> Callable[[Lone], Any]:
        return lambda lone: lone.far_setup(complete=complete)

    ci = ChannelId.b_channel(9, exclusive=True)
    connect = far(q931.Connect, ci)
    disconnect = far(q931.Disconnect, q931.Cause())
    for side in ("user", "network"):
        yield side, 1 if side == "user" else 6, place
        yield side, 2 if side == "user" else 25, then(place, far(q931.SetupAck, ci))
        yield side, 3 if side == "user" else 9, then(place, far(q931.CallProceeding, ci))
        yield side, 4 if side == "user" else 7, then(place, far(q931.Alerting, ci))
        yield side, 10, then(place, connect)
        yield side, 11 if side == "user" else 12, then(place, connect, hangup)
        yield side, 19, then(place, connect, disconnect)
        yield side, 6 if side == "user" else 1, then(owner("none"), offer())
        yield side, 25 if side == "user" else 2, offer(complete=False)
        yield side, 9 if side == "user" else 3, then(owner("accept"), offer())
        yield side, 7 if side == "user" else 4, then(owner("alert"), offer())
    yield "user", 8, then(owner("answer"), offer())                # CONNECT sent, awaiting its acknowledgement


RECIPES = list(_recipes())


@pytest.mark.parametrize(("side", "state", "recipe"), RECIPES, ids=[f"{s}-{n}" for s, n, _ in RECIPES])
def test_status_enquiry_is_answered_in_every_state(side: str, state: int, recipe: Callable[[Lone], None]) -> None:
    lone = Lone(side)
    assert lone.state(FAR_CALL) == 0 and lone.state(OUR_CALL) == 0      # no call: null
    recipe(lone)
    lone.run(10)
    (call,) = lone.cc.calls.values()
    cr = OUR_CALL if call.ours else FAR_CALL
    assert lone.state(cr) == state and call.state.value == state
    assert lone.state(cr) == state                                      # asking changes nothing
    assert call.protocol_errors == 0


def test_the_states_passed_through_at_once_are_in_the_transition_log() -> None:
    """U12 (the far end's DISCONNECT: RELEASE goes at once), N11 likewise, N8 (the user's CONNECT:
    CONNECT ACKNOWLEDGE at once) never last, but the calls go through them."""
    lone = Lone("user")
    lone.far_setup()
    call = next(iter(lone.cc.calls.values()))
    lone.msg(q931.Disconnect, FAR_CALL, q931.Cause())
    assert ("DISCONNECT_INDICATION", "->", "RELEASE_REQUEST") in [t[1:] for t in call.transitions]
    net = Lone("network")
    c2 = net.place()
    assert net.msg(q931.Connect, OUR_CALL) == ["n:CONNECT ACKNOWLEDGE"]
    assert ("INCOMING_CALL_PROCEEDING", "->", "CONNECT_REQUEST") not in [t[1:] for t in c2.transitions]
    assert [t[3] for t in c2.transitions if t[2] == "->"] == ["CALL_PRESENT", "CONNECT_REQUEST", "ACTIVE"]
    net.msg(q931.Disconnect, OUR_CALL, q931.Cause())
    assert [t[3] for t in c2.transitions if t[2] == "->"][-2:] == ["DISCONNECT_REQUEST", "RELEASE_REQUEST"]


# -- the hostile vectors: each with its exact reply, the states after, never an exception ----------------------

# name -> (our replies, then our state of the far end's call 1 and of our call 1). Our side is the one the
# vector is sent to; a SETUP vector meets no call, others meet the far end's call 1 (accepted: U9 / N3)
# and our call 1 (our SETUP sent: U1 / N6); U and N mark which side answers.
UNCHANGED_U, UNCHANGED_N = (9, 1), (3, 6)
HOSTILE_REPLIES: dict[str, tuple[list[str], tuple[int, int]]] = {
    "empty": ([], UNCHANGED_U),
    "two octets": ([], UNCHANGED_U),
    "no message type": ([], UNCHANGED_U),
    "wrong discriminator": ([], UNCHANGED_U),
    "AT&T maintenance discriminator": ([], UNCHANGED_U),
    "call reference octet 2 not 0000": ([], UNCHANGED_U),
    "call reference of three octets": ([], UNCHANGED_U),
    "unknown message type": (["u:STATUS 97"], UNCHANGED_U),
    "unknown message type with IEs": (["n:STATUS 97"], UNCHANGED_N),
    "message type with bit 8 set": (["u:STATUS 97"], UNCHANGED_U),
    # a maintenance message we cannot act on is ignored: its call reference is no call's
    "SETUP's type under the maintenance discriminator": ([], UNCHANGED_U),
    "SETUP without bearer capability": (["n:RELEASE COMPLETE 96"], (0, 0)),
    "SETUP from the network without channel identification": (["u:RELEASE COMPLETE 96"], (0, 0)),
    "SETUP from the user without channel identification": (["n:CALL PROCEEDING"], (3, 0)),
    "DISCONNECT without cause": (["n:RELEASE 96"], (19, 6)),
    "DISCONNECT with an empty cause": (["n:RELEASE 96"], (19, 6)),
    "STATUS without call state": (["n:STATUS 96"], UNCHANGED_N),
    "RESTART without restart indicator": (["u:STATUS 96"], UNCHANGED_U),
    "RESTART of indicated channels naming none": (["u:STATUS 96"], UNCHANGED_U),
    "RESTART of all interfaces naming a channel": (["u:RESTART ACKNOWLEDGE", "u:STATUS 99"], (0, 0)),
    "PROGRESS without progress indicator": (["u:STATUS 96"], UNCHANGED_U),
    "SERVICE without change status": ([], UNCHANGED_U),
    "DISCONNECT with a cause cut after octet 3": (["n:RELEASE 100"], (19, 6)),
    "STATUS with a reserved call state": (["n:STATUS 100"], UNCHANGED_N),
    "SETUP whose bearer capability lacks octet 4": (["n:RELEASE COMPLETE 100"], (0, 0)),
    "SETUP from the network whose channel id lacks octet 3.3": (["u:RELEASE COMPLETE 100"], (0, 0)),
    "SETUP with a reserved type of number in the calling number": (["n:CALL PROCEEDING", "n:STATUS 100"], (3, 0)),
    "SETUP with a letter in the called number": (["n:CALL PROCEEDING", "n:STATUS 100"], (3, 0)),
    "RESTART with a reserved class": (["u:STATUS 100"], UNCHANGED_U),
    "restart indicator one octet too long": (["u:STATUS 100"], UNCHANGED_U),
    "SETUP whose last IE runs past the end": (["n:CALL PROCEEDING", "n:STATUS 100"], (3, 0)),
    "SETUP ending in an IE identifier": (["n:CALL PROCEEDING", "n:STATUS 100"], (3, 0)),
    "DISCONNECT whose cause runs past the end": (["n:RELEASE 100"], (19, 6)),
    "SETUP with two called numbers": (["n:CALL PROCEEDING"], (3, 0)),
    "CONNECT with two channel ids": (["n:CONNECT ACKNOWLEDGE"], (3, 10)),
    "ALERTING with three progress indicators": ([], (9, 4)),
    "SETUP with an unknown comprehension-required IE": (["n:RELEASE COMPLETE 96"], (0, 0)),
    "DISCONNECT with a segmented message IE": (["n:RELEASE 96"], (19, 6)),
    "SETUP with an unknown optional IE": (["n:CALL PROCEEDING", "n:STATUS 99"], (3, 0)),
    "CONNECT with an unknown single-octet IE": (["n:CONNECT ACKNOWLEDGE", "n:STATUS 99"], (3, 10)),
    "CONNECT with a codeset-6 IE": (["n:CONNECT ACKNOWLEDGE", "n:STATUS 99"], (3, 10)),
    "CONNECT with a codeset-6 IE of the 0000 xxxx form": (["n:CONNECT ACKNOWLEDGE", "n:STATUS 99"], (3, 10)),
    "ALERTING carrying a cause": (["u:STATUS 96"], UNCHANGED_U),
    "ALERTING carrying a calling number": (["u:STATUS 99"], (9, 4)),
    "SETUP with its IEs out of order": (["n:CALL PROCEEDING"], (3, 0)),
    "locking shift to a lower codeset": (["n:CONNECT ACKNOWLEDGE", "n:STATUS 100"], (3, 10)),
    "locking shift to the codeset in force": (["n:CONNECT ACKNOWLEDGE", "n:STATUS 100"], (3, 10)),
    "non-locking shift followed by a locking one": (["n:CONNECT ACKNOWLEDGE", "n:STATUS 99"], (3, 10)),
    "SETUP with an empty optional IE": (["n:CALL PROCEEDING"], (3, 0)),
    # its call reference flag is 1: a SETUP claiming a call reference we chose is ignored (§5.8.3.2 d);
    # the same SETUP with flag 0 gets 82 (test_the_call_layer_s_own_section_5_8_cases)
    "SETUP naming TS16": ([], (0, 0)),
}


def test_every_hostile_vector_has_its_reply() -> None:
    assert sorted(HOSTILE_REPLIES) == sorted(c["name"] for c in HOSTILE)


@pytest.mark.parametrize("case", HOSTILE, ids=[c["name"] for c in HOSTILE])
def test_hostile_octets_get_their_exact_reply_and_change_nothing_else(case: dict[str, Any]) -> None:
    octets = hx(case["octets"])
    side = "network" if case["sent_by"] == "user" else "user"
    maintenance = octets[:1] == b"\x43"
    lone = Lone(side, "national" if maintenance else "euroisdn", overlap=False)
    setup = "ignored" not in case and isinstance(decode(octets, case["sent_by"]), q931.Setup)
    if not setup:
        lone.far_setup(channel=9)
        lone.place()
    replies, (far_state, our_state) = HOSTILE_REPLIES[case["name"]]
    assert lone.send(octets) == replies
    if "diagnostic" in case and replies:
        cause = lone.answers()[-1].get(q931.Cause)          # the reply that carries the cause
        assert cause is not None and cause.diagnostic == bytes(int(x, 16) for x in case["diagnostic"])
    assert (lone.state(FAR_CALL), lone.state(OUR_CALL)) == (far_state, our_state)
    assert lone.link.dchan == "up"


def test_maintenance_messages_are_ignored_on_euroisdn() -> None:
    lone = Lone("user", "euroisdn")
    assert lone.send(hx("43 02 00 01 07 01 01 c2 18 03 a9 83 85")) == []
    assert lone.cc.channels[5].service is ServiceStatus.in_service
    with pytest.raises(ProtocolError, match="NI-2"):
        lone.cc.service(5, "out_of_service")


CC = q931.Cause
# (name, our side, prepare: "far" = the far end's call 1 accepted / "ours" = our call 1 placed / "both" / "",
#  the far end's message, our replies, our states after (far end's call 1, our call 1))
OWN_CASES: list[tuple[str, str, str, q931.Message | bytes, list[str], tuple[int, int]]] = [
    ("DISCONNECT on an unknown call reference", "user", "", q931.Disconnect(FAR_CALL, (CC(),)),
     ["u:RELEASE COMPLETE 81"], (0, 0)),
    ("RELEASE on an unknown call reference", "user", "", q931.Release(FAR_CALL), ["u:RELEASE COMPLETE 81"], (0, 0)),
    ("RELEASE COMPLETE on an unknown call reference", "user", "", q931.ReleaseComplete(FAR_CALL), [], (0, 0)),
    ("an unknown message on an unknown call reference", "user", "", hx("08 02 00 01 7f"),
     ["u:RELEASE COMPLETE 81"], (0, 0)),
    ("STATUS saying null on an unknown call reference", "network", "",
     q931.Status(FAR_CALL, (CC(30), q931.CallState())), [], (0, 0)),
    ("STATUS saying active on an unknown call reference", "network", "",
     q931.Status(FAR_CALL, (CC(30), q931.CallState(q931.CallStateValue.active))), ["n:RELEASE COMPLETE 81"], (0, 0)),
    ("CONNECT ACKNOWLEDGE to a call offered to us, not answered", "user", "far", q931.ConnectAck(FAR_CALL),
     ["u:STATUS 101"], (9, 0)),
    ("SETUP ACKNOWLEDGE to a call offered to us", "user", "both",
     q931.SetupAck(FAR_CALL, (ChannelId.b_channel(9, True),)), ["u:STATUS 101"], (9, 1)),
    ("RESTART on a call's call reference", "user", "far",
     q931.Restart(FAR_CALL, (q931.RestartIndicator(),)), ["u:STATUS 101"], (9, 0)),
    ("SETUP on a call reference in use", "user", "far", q931.Setup(FAR_CALL, (q931.BearerCapability.speech("alaw"),
                                                                            ChannelId.b_channel(3, True))),
     [], (9, 0)),
    ("STATUS ENQUIRY on the global call reference", "user", "", q931.StatusEnquiry(q931.GLOBAL_CALL_REFERENCE),
     ["u:STATUS 81"], (0, 0)),
    ("CONNECT on the global call reference", "network", "", q931.Connect(q931.GLOBAL_CALL_REFERENCE),
     ["n:STATUS 81"], (0, 0)),
    ("a message on the dummy call reference", "user", "", hx("08 00 05"), [], (0, 0)),
    ("RESTART ACKNOWLEDGE for no RESTART of ours", "user", "far",
     q931.RestartAck(q931.GLOBAL_CALL_REFERENCE, (q931.RestartIndicator(),)), [], (9, 0)),
    ("a SETUP for TS16, flag 0", "user", "", hx("08 02 00 01 05 04 03 80 90 a3 18 03 a9 83 90 70 02 81 31"),
     ["u:RELEASE COMPLETE 82"], (0, 0)),
    ("a SETUP for a channel of another interface", "user", "",
     q931.Setup(FAR_CALL, (q931.BearerCapability.speech("alaw"),
                           ChannelId(channels=(5,), exclusive=True, interface=b"\x81"))), ["u:RELEASE COMPLETE 82"],
     (0, 0)),
    ("a SETUP for unrestricted digital information", "network", "",
     q931.Setup(FAR_CALL, (q931.BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL),)), ["n:RELEASE COMPLETE 65"],
     (0, 0)),
    ("a SETUP for the far end's call's channel, exclusive", "user", "far",
     q931.Setup(CallRef(2), (q931.BearerCapability.speech("alaw"), ChannelId.b_channel(9, exclusive=True))),
     ["u:RELEASE COMPLETE 44"], (9, 0)),
    ("a RESTART of TS16", "user", "far",
     q931.Restart(q931.GLOBAL_CALL_REFERENCE, (ChannelId.b_channel(16, True),
                                               q931.RestartIndicator(q931.RestartClass.indicated_channels))),
     ["u:STATUS 82"], (9, 0)),
    ("a RESTART of the far end's call's channel", "user", "both",
     q931.Restart(q931.GLOBAL_CALL_REFERENCE, (ChannelId.b_channel(9, True),
                                               q931.RestartIndicator(q931.RestartClass.indicated_channels))),
     ["u:RESTART ACKNOWLEDGE"], (0, 1)),
    ("STATUS saying null clears the call", "user", "far", q931.Status(FAR_CALL, (CC(81), q931.CallState())),
     [], (0, 0)),
    ("an unsolicited STATUS of another state is noted", "user", "far",
     q931.Status(FAR_CALL, (CC(30), q931.CallState(q931.CallStateValue.active))), [], (9, 0)),
]


@pytest.mark.parametrize(("name", "side", "prepare", "message", "replies", "after"), OWN_CASES,
                         ids=[c[0] for c in OWN_CASES])
def test_the_call_layer_s_own_section_5_8_cases(name: str, side: str, prepare: str, message: q931.Message | bytes,
                                               replies: list[str], after: tuple[int, int]) -> None:
    lone = Lone(side)
    if prepare in ("far", "both"):
        lone.far_setup(channel=9)
    if prepare in ("ours", "both"):
        lone.place()
    octets = message if isinstance(message, bytes) else message.encode()
    assert lone.send(octets) == replies
    assert (lone.state(FAR_CALL), lone.state(OUR_CALL)) == after
    # a readable SETUP refused for its channel or bearer is reported (a caller tried); a malformed one is not
    refused = [w for w in replies if w.split(":")[1] in ("RELEASE COMPLETE 44", "RELEASE COMPLETE 65",
                                                         "RELEASE COMPLETE 82")]
    assert [f"{side[0]}:RELEASE COMPLETE {r.cause}" for r in lone.owner.of(CallRefused)] == refused


def test_a_preferred_channel_busy_is_hunted_and_none_free_is_34() -> None:
    lone = Lone("user", overlap=False)
    lone.far_setup(cr=1, channel=9)
    assert lone.msg(q931.Setup, CallRef(2), q931.BearerCapability.speech("alaw"), ChannelId.b_channel(9)) == \
        ["u:CALL PROCEEDING"]
    ci = lone.answers()[0].get(ChannelId)
    assert ci is not None and ci.channel == 31 and ci.exclusive            # the user's highest free
    for ts in E1_B:
        lone.cc.channels[ts].restarting = ts not in (9, 31)                # every other channel unavailable
    assert lone.msg(q931.Setup, CallRef(3), q931.BearerCapability.speech("alaw"), ChannelId.b_channel(9),
                    q931.CallingNumber("13800138000", Ton.national, Npi.isdn, Presentation.restricted,
                                       Screening.network),
                    q931.CalledNumber("075588880000")) == ["u:RELEASE COMPLETE 34"]
    [r] = lone.owner.of(CallRefused)
    assert (r.cr, r.cause, r.timeslot, r.ani, r.ani_ton, r.ani_presentation, r.dnis) == (
        3, 34, 9, "13800138000", Ton.national, Presentation.restricted, "075588880000")


@pytest.mark.parametrize("channel", [0, 16, 40, 127])
def test_a_setup_for_a_timeslot_the_span_has_not_is_refused_82_and_reported_without_one(channel: int) -> None:
    lone = Lone("user")
    assert lone.msg(q931.Setup, CallRef(4), q931.BearerCapability.speech("alaw"),
                    ChannelId(channels=(channel,), exclusive=True), q931.CalledNumber("8001")) == \
        ["u:RELEASE COMPLETE 82"]
    [r] = lone.owner.of(CallRefused)
    assert (r.cr, r.cause, r.timeslot, r.dnis) == (4, 82, None, "8001")


def test_a_setup_for_another_interface_s_channel_is_reported_without_a_timeslot() -> None:
    lone = Lone("user")
    assert lone.msg(q931.Setup, CallRef(4), q931.BearerCapability.speech("alaw"),
                    ChannelId(channels=(5,), exclusive=True, interface=b"\x81"), q931.CalledNumber("8001")) == \
        ["u:RELEASE COMPLETE 82"]
    [r] = lone.owner.of(CallRefused)
    assert (r.cause, r.timeslot) == (82, None)


def _number_ie(ie_id: int, octet3: int, digits: str) -> str:
    body = bytes([octet3]) + digits.encode()
    return f"{ie_id:02x} {len(body):02x} " + body.hex(" ")


def test_a_calling_number_longer_than_any_number_is_dropped_with_status_100_and_the_call_goes_on() -> None:
    lone = Lone("user")
    setup = hx("08 02 00 05 05 a1 04 03 80 90 a3 18 03 a9 83 89 " + _number_ie(0x6C, 0xA1, "1" * 33) + " "
               + _number_ie(0x70, 0xA1, "8001"))
    assert lone.send(setup) == ["u:CALL PROCEEDING", "u:STATUS 100"]
    [o] = lone.owner.of(CallOffered)
    assert (o.ani, o.dnis, o.chan) == (None, "8001", 9)
    # 32 digits are a number
    assert lone.send(hx("08 02 00 06 05 a1 04 03 80 90 a3 18 03 a9 83 8a " + _number_ie(0x6C, 0xA1, "2" * 32)
                        + " " + _number_ie(0x70, 0xA1, "8001"))) == ["u:CALL PROCEEDING"]
    assert lone.owner.of(CallOffered)[-1].ani == "2" * 32


def test_a_called_number_growing_past_32_digits_by_information_is_cleared_28_and_reported_refused() -> None:
    lone = Lone("user", is_complete=lambda dnis: False)
    setup_at = lone.clock.now_ms
    assert lone.far_setup(cr=7, channel=12, complete=False) == ["u:SETUP ACKNOWLEDGE"]
    for _ in range(7):                                   # 100 + 28 digits: 31
        assert lone.send(hx("08 02 00 07 7b " + _number_ie(0x70, 0x81, "4567"))) == []
    assert lone.send(hx("08 02 00 07 7b " + _number_ie(0x70, 0x81, "8"))) == []      # 32: still a number
    assert lone.send(hx("08 02 00 07 7b " + _number_ie(0x70, 0x81, "9"))) == ["u:DISCONNECT 28"]
    assert lone.send(q931.Release(CallRef(7), ()).encode()) == ["u:RELEASE COMPLETE"]
    assert lone.owner.of(CallOffered) == []
    [r] = lone.owner.of(CallRefused)                     # reported as it ends, its channel free
    assert (r.cr, r.cause, r.timeslot, r.ani, r.dnis, r.disposition) == (
        7, 28, 12, "13800138000", "100" + "4567" * 7 + "8", "rejected")
    assert setup_at < r.setup_ms <= setup_at + 2 < r.tick
    assert lone.cc.calls == {} and lone.cc.channels[12].leg is None


@pytest.mark.parametrize("how", ["DISCONNECT", "RELEASE COMPLETE"])
def test_a_caller_who_hangs_up_while_dialling_is_reported_abandoned_from_the_setup_s_time(how: str) -> None:
    lone = Lone("user", is_complete=lambda dnis: False)
    setup_at = lone.clock.now_ms
    assert lone.far_setup(cr=8, channel=3, complete=False) == ["u:SETUP ACKNOWLEDGE"]
    lone.run(3000)
    assert lone.send(hx("08 02 00 08 7b " + _number_ie(0x70, 0x81, "55"))) == []
    lone.run(2000)
    cause = [q931.Cause(16, q931.LOC_USER)]
    if how == "DISCONNECT":
        assert lone.msg(q931.Disconnect, CallRef(8), *cause) == ["u:RELEASE"]
        assert lone.msg(q931.ReleaseComplete, CallRef(8)) == []
    else:
        assert lone.msg(q931.ReleaseComplete, CallRef(8), *cause) == []
    [r] = lone.owner.of(CallRefused)
    assert (r.cause, r.timeslot, r.dnis, r.disposition) == (16, 3, "10055", "abandoned")
    assert r.setup_ms is not None and r.setup_ms - setup_at <= 2 and r.tick - r.setup_ms > 5000
    assert lone.owner.of(CallOffered) == [] and lone.cc.calls == {}


def calls_up(p: Pri, n: int, placer: str = "network") -> tuple[list[Call], list[Call]]:
    """`n` calls placed by `placer` and answered: (the placer's, the other side's), by channel."""
    cc = p.side(placer)
    other = p.owner("user" if placer == "network" else "network")
    mine = [cc.place(ani=f"{i}", dnis="100") for i in range(n)]
    p.run(200)
    assert all(st(c) is CallState.ACTIVE for c in mine)
    by_chan = {o.chan: o.call for o in other.of(CallOffered)}
    theirs = [by_chan[c.chan] for c in mine]
    p.forget()
    return mine, theirs


# -- RESTART -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("restarter", ["user", "network"])
def test_a_global_restart_clears_every_call_and_is_acknowledged(restarter: str) -> None:
    p = Pri()
    p.up()
    calls_up(p, 3)
    other = "network" if restarter == "user" else "user"
    p.side(restarter).restart()
    late = p.side(restarter).place(ani="1", dnis="2")        # no call before the acknowledgement: 34
    p.run(100)
    r, o = restarter[0], other[0]
    assert p.said() == [f"{r}:RESTART", f"{o}:RESTART ACKNOWLEDGE"]
    restart = p.wire.messages()[0][2]
    ri = restart.get(q931.RestartIndicator)
    assert restart.cr == q931.GLOBAL_CALL_REFERENCE and ri is not None and ri.restart_class == 7
    assert restart.get(ChannelId) is None
    assert late.terminated
    for who, far in ((restarter, False), (other, True)):
        rel = p.owner(who).released()
        assert [(x.cause, x.reason, x.by_far_end) for x in rel[:3]] == [(16, "restart", far)] * 3
        done = p.owner(who).of(RestartDone)
        assert [(d.channels, d.by_far_end) for d in done] == [(E1_B, far)]
    assert [(x.cause, x.disposition) for x in p.owner(restarter).released()[3:]] == [(34, "rejected")]
    p.idle()
    p.side(restarter).place(ani="1", dnis="2")                # after the acknowledgement: calls again
    p.run(100)
    assert p.user.status()["b_busy"] == 1


@pytest.mark.parametrize("restarter", ["user", "network"])
def test_a_restart_of_one_channel_clears_exactly_its_call(restarter: str) -> None:
    p = Pri()
    p.up()
    mine, theirs = calls_up(p, 3)
    victim = mine[1].chan
    assert victim == 2
    p.side(restarter).restart(victim)
    p.run(100)
    r, o = restarter[0], ("network" if restarter == "user" else "user")[0]
    assert p.said() == [f"{r}:RESTART", f"{o}:RESTART ACKNOWLEDGE"]
    for _, _, m in p.wire.messages():
        ci, ri = m.get(ChannelId), m.get(q931.RestartIndicator)
        assert ci is not None and ci.channel == 2 and ci.exclusive and ri is not None and ri.restart_class == 0
    assert [st(c) for c in mine] == [CallState.ACTIVE, CallState.NULL, CallState.ACTIVE]
    assert [st(c) for c in theirs] == [CallState.ACTIVE, CallState.NULL, CallState.ACTIVE]
    assert [(x.chan, x.reason) for x in p.uo.released() + p.no.released()] == [(2, "restart")] * 2
    mine[0].enquire()
    theirs[2].enquire()
    p.run(50)
    assert (mine[0].peer_state, theirs[2].peer_state) == (10, 10)        # the others, untouched
    assert p.user.status()["b_busy"] == p.net.status()["b_busy"] == 2


def test_an_unanswered_restart_is_sent_again_at_t316_and_its_channels_wait() -> None:
    p = Pri()
    p.up()
    deafen(p.net, 0x46)                     # the network never hears RESTART
    p.user.restart(7)
    p.net.place(ani="1", dnis="2", channel=7, exclusive=True)       # the channel is being restarted: 44
    p.run(250000)
    assert p.timed() == [(0, "u:RESTART"), (0, "n:SETUP"), (5, "u:RELEASE COMPLETE 44"), (120000, "u:RESTART"),
                         (240000, "u:RESTART")]
    assert p.user.status()["b_busy"] == 1 and p.user.status()["restarting"] == 1
    assert p.user.global_call.state.value == 61                      # REST 1: restart request


# -- a span alarm ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("switch", SWITCHES)
def test_los_clears_every_call_then_restart_and_calls_again(switch: str) -> None:
    """LOS 10 s with 5 calls up: each side's framer declares red 2.5 s into it (the owner's ph_down);
    RECOVER ends 5 s after the line is back (ph_up)."""
    p = Pri(switch)
    p.up()
    calls_up(p, 5)
    cut = p.clock.now_ms
    p.wire.drop = lambda who, o: True
    p.until(cut + 2500)
    p.user.ph_down()
    p.net.ph_down()
    for who in ("user", "network"):
        rel = p.owner(who).released()
        assert [(r.cause, r.disposition, r.reason, r.tick - cut) for r in rel] == \
            [(38, "line_fault", "alarm", 2500)] * 5
        assert p.side(who).status() | {} == {"side": who, "switch": switch, "dchan": "down", "calls": 0,
                                             "b_idle": len(p.b), "b_busy": 0, "b_out_of_service": 0,
                                             "restarting": 0, "alarm": True}
    refused = p.user.place(ani="1", dnis="2")
    assert refused.terminated and p.uo.released()[-1].cause == 38
    p.net.restart()                         # in alarm: the restart after recovery covers it
    p.until(cut + 10000)
    p.wire.drop = lambda who, o: False
    assert p.said() == []                   # nothing said in alarm
    p.until(cut + 15000)                    # RECOVER over
    p.user.ph_up()
    p.net.ph_up()
    early = p.user.place(ani="1", dnis="2")       # before the RESTART ACKNOWLEDGE: none
    assert early.terminated and p.uo.released()[-1].cause == 34
    p.run(100)
    assert sorted(p.said()) == sorted(["u:RESTART", "n:RESTART", "u:RESTART ACKNOWLEDGE", "n:RESTART ACKNOWLEDGE"])
    assert [d.by_far_end for d in p.uo.of(RestartDone)] == [True, False] or \
        [d.by_far_end for d in p.uo.of(RestartDone)] == [False, True]
    assert [e.dchan for e in p.uo.of(DchanChanged)] == ["down", "up"]
    p.idle()
    t = p.clock.now_ms
    call = p.user.place(ani="13800138000", dnis="100")
    p.run(100)
    assert st(call) is CallState.ACTIVE and p.uo.of(CallAnswered)[-1].tick - cut < 10000 + 8000
    assert p.uo.of(CallAnswered)[-1].tick > t


def test_a_restart_lost_when_the_far_end_re_establishes_the_link_is_sent_again_at_once() -> None:
    """After an alarm our link comes up and our RESTART goes; the far end, up from its own alarm, sends
    SABME before it saw it (the links cross): the re-establishment discards the RESTART's I frame, so it
    goes again at once (not at T316, 2 minutes in which every channel is restarting and calls get 34)."""
    lone = Lone("user", overlap=False)
    lone.cc.ph_down()
    lone.link.ph_up()
    lone.run(100)
    restarts: list[int] = []

    def lose_first_restart(who: str, octets: bytes) -> bool:
        f = decode_frame(octets)
        if who == "user" and f.kind is FrameKind.I and isinstance(decode(f.info, "user"), q931.Restart):
            restarts.append(lone.clock.now_ms)
            return len(restarts) == 1
        return False

    lone.wire.drop = lose_first_restart
    lone.cc.ph_up()
    lone.run(5)
    assert len(restarts) == 1 and all(ch.restarting for ch in lone.cc.channels.values())
    lone.heard.clear()
    t = lone.clock.now_ms
    lone.far.establish()                         # the far end's SABME: the link is reset
    lone.run(50)
    assert [type(m) for m in lone.answers()] == [q931.Restart] and restarts[1] - t < 50
    assert lone.msg(q931.RestartAck, q931.GLOBAL_CALL_REFERENCE, q931.RestartIndicator()) == []
    assert not any(ch.restarting for ch in lone.cc.channels.values())
    assert lone.far_setup(cr=3, channel=9) == ["u:CALL PROCEEDING"]


def test_a_restarted_engine_restarts_every_channel_so_the_far_end_s_stale_calls_go() -> None:
    """Our user side killed with 3 calls up and started afresh (a new call control on a new link): once
    its link is up it sends RESTART class 7; the far end clears the 3 calls it still held and
    acknowledges; then a call goes through."""
    p = Pri()
    p.up()
    calls_up(p, 3, placer="network")
    assert p.net.status()["calls"] == 3
    tables = timer_tables(None)
    fresh = DataLink(Side.USER, p.wire.sender("user"), lambda e: None, p.clock, tables["q921"], name="user2")
    p.wire.ends["user"] = fresh
    owner = Owner()
    cc = CallControl(fresh, owner, switch="euroisdn", name="u2", timers=tables["q931"])
    cc.start()
    p.run(100)
    assert p.said() == ["u:RESTART", "n:RESTART ACKNOWLEDGE"]
    assert [(r.cause, r.by_far_end, r.reason) for r in p.no.released()] == [(16, True, "restart")] * 3
    assert p.net.status()["calls"] == 0 and cc.status()["restarting"] == 0
    call = cc.place(ani="13800138000", dnis="100")
    p.run(100)
    assert st(call) is CallState.ACTIVE


# -- the link lost without alarm -------------------------------------------------------------------------

def _lose_the_link(p: Pri) -> tuple[Call, Call, int]:
    """An active call and one in proceeding when every frame starts being lost; returns them and the
    time the user's link reported itself down."""
    (active,), _ = calls_up(p, 1, placer="user")
    p.no.policy = "accept"
    proceeding = p.user.place(ani="2", dnis="3")
    p.run(100)
    assert st(proceeding) is CallState.OUTGOING_CALL_PROCEEDING
    p.forget()
    p.wire.drop = lambda who, o: True
    while not any(e.dchan == "down" for e in p.uo.of(DchanChanged)):
        p.run(100)
    down = next(e.tick for e in p.uo.of(DchanChanged) if e.dchan == "down")
    return active, proceeding, down


def test_link_lost_active_calls_wait_t309_and_survive_its_return() -> None:
    p = Pri()
    p.up()
    active, proceeding, down = _lose_the_link(p)
    assert [(r.cause, r.disposition, r.reason) for r in p.uo.released()] == [(27, "line_fault", "link")]
    assert proceeding.terminated and st(active) is CallState.ACTIVE
    assert active.timer == ("T309", down + 6000)
    p.until(down + 3000)
    p.wire.drop = lambda who, o: False      # the line heals within T309
    p.run(2900)
    assert st(active) is CallState.ACTIVE and active.timer is None and active.peer_state == 10
    assert "u:STATUS ENQUIRY" in p.said() and "n:STATUS 30" in p.said()
    assert p.ulink.dchan == p.nlink.dchan == "up"
    assert len(p.uo.released()) == 1
    active.hangup()
    p.run(100)
    p.idle()


def test_link_lost_past_t309_clears_active_calls_with_27() -> None:
    p = Pri()
    p.up()
    active, _, down = _lose_the_link(p)
    p.until(down + 6000)
    rel = p.uo.released()
    assert [(r.cause, r.disposition, r.reason, r.tick - down) for r in rel[1:]] == [(27, "line_fault", "link", 6000)]
    assert active.terminated
    assert p.ulink.dchan != "up"            # still trying
    p.wire.drop = lambda who, o: False
    p.run(20000)
    assert p.ulink.dchan == p.nlink.dchan == "up"
    assert [e.dchan for e in p.uo.of(DchanChanged)] == ["down", "up"]     # down once through its retries
    p.idle()


# -- NI-2 SERVICE ------------------------------------------------------------------------------------------

def test_ni2_service_out_of_service_is_acknowledged_skipped_by_hunting_then_used_again() -> None:
    p = Pri("national")
    p.up()
    p.net.service(5, "out_of_service")
    p.run(50)
    assert p.said() == ["n:SERVICE", "u:SERVICE ACKNOWLEDGE"]
    service, ack = (m for _, _, m in p.wire.messages())
    assert service.pd == ack.pd == 0x43
    cs = ack.get(q931.ChangeStatus)
    ci = ack.get(ChannelId)
    assert cs is not None and cs.status is ServiceStatus.out_of_service and ci is not None and ci.channel == 5
    assert [(e.chan, e.status, e.by_far_end) for e in p.uo.of(ServiceChanged)] == \
        [(5, ServiceStatus.out_of_service, True)]
    assert [(e.chan, e.acknowledged) for e in p.no.of(ServiceChanged)] == [(5, True)]
    for cc in (p.user, p.net):
        assert (cc.status()["b_out_of_service"], cc.status()["b_idle"]) == (1, 22)
    calls = [p.net.place(ani="1", dnis="2") for _ in range(5)]
    p.run(200)
    assert [c.chan for c in calls] == [1, 2, 3, 4, 6]                # hunting skips TS5
    refused = p.user.place(ani="1", dnis="2", channel=5, exclusive=True)
    assert refused.terminated and p.uo.released()[-1].cause == 44
    p.forget()
    p.user.service(5, ServiceStatus.in_service)                     # either side may
    p.run(50)
    assert p.said() == ["u:SERVICE", "n:SERVICE ACKNOWLEDGE"]
    assert p.net.status()["b_out_of_service"] == p.user.status()["b_out_of_service"] == 0
    again = p.net.place(ani="1", dnis="2")
    p.run(100)
    assert again.chan == 5 and st(again) is CallState.ACTIVE


def test_a_channel_taken_out_of_service_keeps_its_call() -> None:
    p = Pri("national")
    p.up()
    (mine,), (theirs,) = calls_up(p, 1)
    p.net.service(mine.chan or 0, "maintenance")
    p.run(50)
    assert st(mine) is st(theirs) is CallState.ACTIVE
    assert p.net.status()["b_busy"] == 1
    mine.hangup()
    p.run(50)
    assert p.net.status()["b_out_of_service"] == 1 and p.net.status()["b_idle"] == 22


# -- the other timers -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("placer", "t310"), [("user", 30000), ("network", 10000)])
def test_no_answer_after_call_proceeding_clears_at_t310_with_102(placer: str, t310: int) -> None:
    p = Pri()
    p.up()
    p.owner("network" if placer == "user" else "user").policy = "accept"
    call = p.side(placer).place(ani="1", dnis="2")
    p.run(t310 + 100)
    who = placer[0]
    timed = p.timed()
    assert timed[2] == (t310 + 2 * DELAY, f"{who}:DISCONNECT 102")      # T310 from the CALL PROCEEDING
    assert [(r.cause, r.disposition, r.reason) for r in p.owner(placer).released()] == [(102, "failed", "T310")]
    assert call.terminated
    p.idle()


def test_no_connect_acknowledge_clears_at_t313() -> None:
    p = Pri()
    p.up()
    deafen(p.net, 0x07)                     # the network never hears CONNECT
    p.net.place(ani="1", dnis="2")
    p.run(5000)
    # (the network, deaf to it, sends its SETUP again at T303: the user ignores it, its call reference in use)
    assert p.timed()[:4] == [(0, "n:SETUP"), (5, "u:CONNECT"), (4000, "n:SETUP"), (4005, "u:DISCONNECT 102")]
    assert [(r.cause, r.reason) for r in p.uo.released()] == [(102, "T313")]


def test_no_release_after_disconnect_t305_then_release() -> None:
    p = Pri()
    p.up()
    (mine,), _ = calls_up(p, 1, placer="user")
    deafen(p.net, 0x45)                     # the network never hears DISCONNECT
    mine.hangup(17)
    p.run(31000)
    assert p.timed() == [(0, "u:DISCONNECT 17"), (30000, "u:RELEASE 17"), (30005, "n:RELEASE COMPLETE")]
    assert [(r.cause, r.by_far_end) for r in p.uo.released()] == [(17, False)]
    p.idle()


def test_no_release_complete_t308_twice_then_the_channel_is_restarted() -> None:
    p = Pri()
    p.up()
    (mine,), _ = calls_up(p, 1, placer="user")
    deafen(p.net, 0x45, 0x4D)               # the network hears neither DISCONNECT nor RELEASE
    chan = mine.chan
    mine.hangup()
    p.run(40000)
    assert p.timed() == [(0, "u:DISCONNECT 16"), (30000, "u:RELEASE 16"), (34000, "u:RELEASE 16"),
                         (38000, "u:RESTART"), (38005, "n:RESTART ACKNOWLEDGE")]
    assert [(r.cause, r.reason) for r in p.uo.released()] == [(16, "cleared")]       # what began the clearing
    assert [(r.reason, r.chan) for r in p.no.released()] == [("restart", chan)]     # its call too
    p.idle()


def test_an_unanswered_status_enquiry_is_sent_again_then_the_call_clears() -> None:
    p = Pri()
    p.up()
    (mine,), _ = calls_up(p, 1, placer="user")
    deafen(p.net, 0x75)                     # the network never hears STATUS ENQUIRY
    mine.enquire()
    p.run(9000)
    assert p.timed() == [(0, "u:STATUS ENQUIRY"), (4000, "u:STATUS ENQUIRY"), (8000, "u:RELEASE 41"),
                         (8005, "n:RELEASE COMPLETE")]
    assert [(r.cause, r.reason, r.disposition) for r in p.uo.released()] == [(41, "T322", "failed")]


def test_causes_received_on_a_call_we_placed_give_its_caller_a_tone() -> None:
    p = Pri()
    p.up()
    tones = {}
    for cause in (17, 1, 3, 22, 28, 16, 21, 41, 34):
        p.no.policy = "none"
        p.user.place(ani="1", dnis="2")
        p.run(20)
        call_of(p.no).reject(cause)
        p.run(50)
        r = p.uo.released()[-1]
        tones[cause] = (r.tone, r.by_far_end, r.disposition)
    assert tones == {17: ("busy", True, None), 1: ("info", True, None), 3: ("info", True, None),
                     22: ("info", True, None), 28: ("info", True, None), 16: ("congestion", True, None),
                     21: ("congestion", True, None), 41: ("congestion", True, None),
                     34: ("congestion", True, None)}


def test_place_refuses_numbers_it_cannot_send_and_channels_the_span_has_not() -> None:
    p = Pri()
    p.up()
    with pytest.raises(EncodeError, match="not allowed"):
        p.user.place(ani="13800A", dnis="2")
    with pytest.raises(EncodeError, match="Ton"):
        p.user.place(ani="1", ani_ton="galactic", dnis="2")
    with pytest.raises(ValueError, match="no B-channel 16"):
        p.user.place(ani="1", dnis="2", channel=16)
    assert p.user.calls == {} and p.said() == []


def test_the_call_leg_follows_the_call_and_frees_its_channel() -> None:
    p = Pri()
    p.up()
    p.no.policy = "alert"
    call = p.user.place(ani="1", dnis="2", channel=7)
    leg = call.leg
    assert leg is not None and st(leg) is LegState.RESERVED and leg.parent is call
    p.run(20)
    assert st(leg) is LegState.CONFIRMED
    call_of(p.no).answer()
    p.run(20)
    assert st(leg) is LegState.CONNECTED and p.user.channels[7].leg is leg
    call.hangup()
    p.run(50)
    assert leg.terminated and leg.term_cause is TermCause.PARENT and p.user.channels[7].leg is None


# -- never an exception: seeded random traffic over a lossy D-channel, random octets ---------------------

class RandomOwner(Owner):
    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __call__(self, ev: PriEvent) -> None:
        self.events.append(ev)
        if isinstance(ev, CallOffered):
            choice = self.rng.choice(["answer", "accept", "alert", "none", "reject", "no_route"])
            if choice == "reject":
                ev.call.reject(self.rng.choice([17, 21, 34]))
            elif choice != "none":
                getattr(ev.call, choice)()


def _consistent(cc: CallControl) -> None:
    for ch in cc.channels.values():
        if ch.leg is not None:
            assert not ch.leg.terminated and ch.leg.channel is ch
            assert cc.calls.get((ch.leg.call.cr.value, ch.leg.call.ours)) is ch.leg.call
    for (value, ours), call in cc.calls.items():
        assert not call.terminated and call.cr.value == value and call.ours == ours
        assert call.leg is None or call.leg.channel.leg is call.leg
    s = cc.status()
    assert s["b_idle"] + s["b_busy"] + s["b_out_of_service"] == len(cc.channels)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_traffic_over_a_lossy_link_never_raises_and_ends_with_nothing_held(seed: int) -> None:
    rng = random.Random(seed)
    p = Pri(user={"is_complete": lambda d: len(d) >= 4})
    p.uo, p.no = RandomOwner(rng), RandomOwner(rng)
    p.user.sink, p.net.sink = p.uo, p.no
    p.up()
    p.wire.drop = lambda who, o: rng.random() < 0.03
    for _ in range(600):
        p.run(rng.randrange(1, 200))
        side = rng.choice([p.user, p.net])
        action = rng.random()
        if action < 0.3:
            side.place(ani=str(rng.randrange(10**10)), dnis=str(rng.randrange(100, 99999)),
                       channel=rng.choice([None, None, rng.choice(E1_B)]), exclusive=rng.random() < 0.5,
                       complete=rng.random() < 0.8)
        elif action < 0.55 and side.calls:
            rng.choice(list(side.calls.values())).hangup(rng.choice([16, 17, 31]))
        elif action < 0.6 and side.calls:
            c = rng.choice(list(side.calls.values()))
            how = rng.choice(["answer", "accept", "alert", "enquire", "info"])
            c.info("5") if how == "info" else getattr(c, how)()
        elif action < 0.62:
            side.restart(rng.choice([None, rng.choice(E1_B)]))
        _consistent(p.user)
        _consistent(p.net)
    p.wire.drop = lambda who, o: False
    p.run(60000)
    for cc in (p.user, p.net):
        for c in list(cc.calls.values()):
            c.hangup()
    p.run(200000)
    _consistent(p.user)
    _consistent(p.net)
    p.idle()
    assert p.ulink.dchan == p.nlink.dchan == "up"


@pytest.mark.parametrize("seed", range(4))
def test_random_and_damaged_octets_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    valid = [hx(c["octets"]) for c in HOSTILE if c["octets"]] + [hx(v.octets) for m in q931.MESSAGES
                                                                for v in m.VECTORS]
    for side in ("user", "network"):
        lone = Lone(side, rng.choice(["euroisdn", "national"]))
        lone.far_setup(channel=9)
        lone.place()
        for _ in range(300):
            octets = bytearray(rng.choice(valid))
            for _ in range(rng.randrange(0, 4)):
                if octets and rng.random() < 0.7:
                    octets[rng.randrange(len(octets))] = rng.randrange(256)
                else:
                    octets.insert(rng.randrange(len(octets) + 1), rng.randrange(256))
            if len(octets) > 260 or not octets:
                continue
            lone.send(bytes(octets))
            _consistent(lone.cc)
        assert lone.link.dchan == "up"


def test_an_unanswered_d_channel_is_logged_once_counted_every_round_and_its_return_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    """A span whose far end never answers (a cable on the wrong port) re-establishes every 4 s for as
    long as it stays so; the log says it once, not 30 times a minute, and says when it answers."""
    caplog.set_level(logging.INFO, logger="cicbox.isdn")
    p = Pri()
    p.wire.drop = lambda who, octets: True
    p.user.start()
    p.run(60_000)
    assert p.ulink.counters.mdl_errors["G"] == 15                     # every 4 s: SABME, 3 retries, give up
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2, warnings                               # the link's MDL-ERROR G, the call layer's
    caplog.clear()
    p.wire.drop = lambda who, octets: False
    p.net.start()
    p.run(5000)
    assert p.ulink.dchan == "up"
    assert any("up again after" in r.getMessage() for r in caplog.records)
    # down again later: said again, once
    caplog.clear()
    p.wire.drop = lambda who, octets: True
    p.run(60_000)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum(w.startswith("u: the data link is down") for w in warnings) == 1, warnings
