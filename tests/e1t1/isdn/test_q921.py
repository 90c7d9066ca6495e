"""Q.921 LAPD: a user and a network data link back to back over an in-memory D-channel, on one
virtual clock.

The wire delivers each frame DELAY ms after it was sent (a clock timer, in order), unless the
test drops it; it records every frame with its time and sender. The octets expected are written
here by hand from Q.921 §3.3-§3.6 (address: SAPI << 2 | C/R << 1, TEI << 1 | 1; the network's
commands and the user's responses carry C/R = 1), never read from the module.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from e1t1.clock import Clock
from e1t1.errors import DecodeError, EncodeError, TimerError
from e1t1.isdn.q921 import (
    MAX_QUEUE,
    Q921_TIMERS,
    DataLink,
    DlDataIndication,
    DlEstablishConfirm,
    DlEstablishIndication,
    DlEvent,
    DlReleaseConfirm,
    DlReleaseIndication,
    Frame,
    FrameKind,
    LapdParams,
    LinkState,
    Side,
    decode_frame,
    encode_frame,
    frmr_info,
)
from e1t1.protocols import TIMER_TABLES, timer_tables

DELAY = 5           # ms from one end of the D-channel to the other
K = FrameKind


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


def label(who: str, octets: bytes) -> str:
    """A frame as a short word: u:SABME P, n:UA F, u:I3.1 (N(S) 3, N(R) 1), n:RR2 F, u:RR0 P (a
    command's P, a response's F, from who sent it), or u:? for what does not decode."""
    try:
        f = decode_frame(octets)
    except DecodeError:
        return f"{who[0]}:?"
    command = f.cr == (1 if who == "network" else 0)
    bit = (" P" if command else " F") if f.pf else ""
    if f.kind is K.I:
        return f"{who[0]}:I{f.ns}.{f.nr}{bit}"
    if f.kind in (K.RR, K.RNR, K.REJ):
        return f"{who[0]}:{f.kind.value}{f.nr}{bit}"
    return f"{who[0]}:{f.kind.value}{bit}"


class Wire:
    """Both directions of a D-channel: frames reach the other end `delay` ms later (at once, inside
    the sender's call, with 0), unless `drop(sender, octets)` says they are lost."""

    def __init__(self, clock: Clock, delay: int) -> None:
        self.clock = clock
        self.delay = delay
        self.log: list[tuple[int, str, bytes]] = []
        self.lost: list[tuple[int, str, bytes]] = []
        self.drop: Callable[[str, bytes], bool] = lambda who, octets: False
        self.ends: dict[str, DataLink] = {}
        self.outstanding: dict[str, list[int]] = {"user": [], "network": []}

    def sender(self, who: str) -> Callable[[bytes], None]:
        def send(octets: bytes) -> None:
            self.log.append((self.clock.now_ms, who, octets))
            self.outstanding[who].append(self.ends[who].outstanding)
            if self.drop(who, octets):
                self.lost.append((self.clock.now_ms, who, octets))
                return
            peer = self.ends["network" if who == "user" else "user"]
            if self.delay == 0:
                peer.receive(octets)
            else:
                self.clock.call_later(self.delay, lambda: peer.receive(octets))
        return send


class Pair:
    """A user and a network link on one wire and one clock; what each tells layer 3 in `heard`."""

    def __init__(self, delay: int = DELAY, params: LapdParams | None = None,
                 overrides: dict[str, dict[str, int]] | None = None,
                 user_overrides: dict[str, dict[str, int]] | None = None) -> None:
        self.clock = Clock()
        self.wire = Wire(self.clock, delay)
        self.heard: dict[str, list[DlEvent]] = {"user": [], "network": []}
        tables = timer_tables(overrides)
        self.user = DataLink(Side.USER, self.wire.sender("user"), self.heard["user"].append, self.clock,
                             timer_tables(user_overrides or overrides)["q921"], params, name="user")
        self.network = DataLink(Side.NETWORK, self.wire.sender("network"), self.heard["network"].append,
                                self.clock, tables["q921"], params, name="network")
        self.wire.ends.update(user=self.user, network=self.network)

    def run(self, ms: int) -> None:
        self.clock.advance(self.clock.now_ms + ms)

    def until(self, t: int) -> None:
        self.clock.advance(t)

    def up(self) -> None:
        """Established by the user, the frames and reports of it forgotten."""
        self.user.establish()
        self.run(3 * DELAY)
        assert self.user.dchan == self.network.dchan == "up"
        self.forget()

    def forget(self) -> None:
        self.wire.log.clear()
        self.heard["user"].clear()
        self.heard["network"].clear()

    def frames(self, since: int = 0) -> list[str]:
        return [label(who, o) for t, who, o in self.wire.log if t >= since]

    def timed(self, who: str) -> list[tuple[int, str]]:
        return [(t, label(w, o)) for t, w, o in self.wire.log if w == who]

    def octets(self) -> list[tuple[str, str]]:
        return [(who, o.hex(" ")) for _, who, o in self.wire.log]

    def data(self, who: str) -> list[bytes]:
        return [e.data for e in self.heard[who] if isinstance(e, DlDataIndication)]

    def reports(self, who: str) -> list[str]:
        return [type(e).__name__ for e in self.heard[who] if not isinstance(e, DlDataIndication)]


def msgs(n: int, tag: int = 0) -> list[bytes]:
    """n distinct Q.931-sized messages."""
    return [bytes((0x08, 0x02, tag, i >> 8, i & 0xFF)) + bytes(range(i % 40)) for i in range(n)]


# -- frames: the octets of each kind, by hand ------------------------------------------------

# (the frame, its octets): address SAPI 0 TEI 0 is 00 01 with C/R 0, 02 01 with C/R 1.
VECTORS = [
    # user's command (C/R 0) and the network's answer (response, C/R 0)
    (Frame(K.SABME, cr=0, pf=True), "00 01 7F"),        # 011P1111, P = 1
    (Frame(K.UA, cr=0, pf=True), "00 01 73"),           # 011F0011
    # network's command (C/R 1) and the user's answer (response, C/R 1)
    (Frame(K.SABME, cr=1, pf=True), "02 01 7F"),
    (Frame(K.UA, cr=1, pf=True), "02 01 73"),
    (Frame(K.DISC, cr=0, pf=True), "00 01 53"),         # 010P0011
    (Frame(K.DM, cr=0, pf=True), "00 01 1F"),           # 000F1111
    (Frame(K.DM, cr=1, pf=False), "02 01 0F"),
    (Frame(K.UI, cr=0, pf=False, info=hx("08 01 00 05")), "00 01 03 08 01 00 05"),
    (Frame(K.XID, cr=1, pf=False), "02 01 AF"),
    # FRMR from the network (response, C/R 0) rejecting the user's RR command with an info field:
    # its control 01 02, V(S) 3, V(R) 5, C/R 0 (a command), W and X.
    (Frame(K.FRMR, cr=0, pf=False, info=hx("01 02 06 0A 03")), "00 01 87 01 02 06 0A 03"),
    # I frames: N(S) << 1, N(R) << 1 | P
    (Frame(K.I, cr=0, ns=0, nr=0, info=hx("08 02 00 00 46 79 01 87")), "00 01 00 00 08 02 00 00 46 79 01 87"),
    (Frame(K.I, cr=1, pf=True, ns=5, nr=3, info=hx("08")), "02 01 0A 07 08"),
    (Frame(K.I, cr=1, ns=127, nr=126, info=hx("AA")), "02 01 FE FC AA"),
    # S frames: 0000SS01, N(R) << 1 | P/F
    (Frame(K.RR, cr=1, nr=1), "02 01 01 02"),           # the user's RR response
    (Frame(K.RR, cr=0, pf=True, nr=0), "00 01 01 01"),  # the user's poll (or the network's answer F = 1)
    (Frame(K.RNR, cr=0, nr=3), "00 01 05 06"),          # the network's RNR response
    (Frame(K.REJ, cr=1, pf=True, nr=2), "02 01 09 05"),  # the user's REJ response, F = 1
]


@pytest.mark.parametrize(("frame", "text"), VECTORS, ids=[f"{f.kind.value}-{t}" for f, t in VECTORS])
def test_each_frame_kind_has_its_octets_both_ways(frame: Frame, text: str) -> None:
    octets = hx(text)
    assert encode_frame(frame) == octets
    back = decode_frame(octets)
    assert (back.kind, back.cr, back.pf, back.ns, back.nr, back.info, back.sapi, back.tei) == \
        (frame.kind, frame.cr, frame.pf, frame.ns, frame.nr, frame.info, frame.sapi, frame.tei)
    assert encode_frame(back) == octets


def test_frmr_information_field() -> None:
    assert frmr_info(hx("01 02"), vs=3, vr=5, rejected_was_response=False, w=True, x=True) == hx("01 02 06 0A 03")
    # a U frame's one control octet, then 0; a response rejected (C/R 1); Y; Z
    assert frmr_info(hx("7F"), vs=0, vr=127, rejected_was_response=True, y=True) == hx("7F 00 00 FF 04")
    assert frmr_info(hx("00 0E"), vs=1, vr=2, rejected_was_response=False, z=True) == hx("00 0E 02 04 08")
    with pytest.raises(EncodeError):
        frmr_info(b"", 0, 0, False)


@pytest.mark.parametrize(("text", "why"), [
    ("", "0 octets"), ("00 01", "2 octets"),
    ("01 01 7F", "one-octet address"), ("00 00 7F", "more than two octets"),
    ("00 01 00", "I frame of 3 octets"), ("00 01 01", "supervisory frame of 3 octets"),
])
def test_invalid_frames_do_not_decode(text: str, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        decode_frame(hx(text))


def test_undefined_control_fields_decode_as_undefined() -> None:
    assert decode_frame(hx("00 01 FF")).kind is K.UNDEFINED          # no U frame 111P1111
    assert decode_frame(hx("00 01 2F")).kind is K.UNDEFINED          # SABM (modulo 8): not LAPD
    srej = decode_frame(hx("00 01 0D 00"))                            # S frame SS = 11
    assert srej.kind is K.UNDEFINED and srej.control == hx("0D 00")
    assert decode_frame(hx("00 01 11 00")).kind is K.UNDEFINED       # S with bits 8-5 not 0
    assert encode_frame(Frame(K.UNDEFINED, cr=0, control=hx("FF"))) == hx("00 01 FF")
    with pytest.raises(EncodeError):
        encode_frame(Frame(K.UNDEFINED, cr=0))
    with pytest.raises(EncodeError):
        encode_frame(Frame(K.I, cr=0, ns=128))


# -- establishment ----------------------------------------------------------------------------

def test_the_user_establishes() -> None:
    p = Pair()
    p.user.establish()
    assert p.user.dchan == "establishing" and p.network.dchan == "down"
    p.run(20)
    assert p.octets() == [("user", "00 01 7f"), ("network", "00 01 73")]
    assert p.heard["user"] == [DlEstablishConfirm(2 * DELAY)]
    assert p.heard["network"] == [DlEstablishIndication(DELAY)]
    assert p.user.state is p.network.state is LinkState.MULTIPLE_FRAME_ESTABLISHED
    assert p.user.dchan == p.network.dchan == "up"
    assert p.user.timer == ("T203", 2 * DELAY + 10000) and p.network.timer == ("T203", DELAY + 10000)


def test_the_network_establishes() -> None:
    p = Pair()
    p.network.establish()
    p.run(20)
    assert p.octets() == [("network", "02 01 7f"), ("user", "02 01 73")]
    assert p.reports("network") == ["DlEstablishConfirm"] and p.reports("user") == ["DlEstablishIndication"]


def test_both_establish_at_once_and_each_confirms() -> None:
    """§5.5.5: the same command both ways: each answers UA and is established by the other's UA."""
    p = Pair()
    p.user.establish()
    p.network.establish()
    p.run(20)
    assert p.frames() == ["u:SABME P", "n:SABME P", "n:UA F", "u:UA F"]
    assert p.reports("user") == p.reports("network") == ["DlEstablishConfirm"]
    assert p.user.dchan == p.network.dchan == "up"


def test_no_answer_to_sabme_n200_retransmissions_then_release_indication() -> None:
    p = Pair()
    p.wire.drop = lambda who, o: True
    p.user.establish()
    p.run(10000)
    assert p.timed("user") == [(0, "u:SABME P"), (1000, "u:SABME P"), (2000, "u:SABME P"), (3000, "u:SABME P")]
    assert p.heard["user"] == [DlReleaseIndication(4000, "no answer to SABME")]
    assert p.user.state is LinkState.TEI_ASSIGNED and p.user.timer is None
    assert p.user.counters.mdl_errors == {"G": 1}


def test_a_refusing_peer_dm_releases() -> None:
    p = Pair()
    p.user.establish()
    p.user.receive(hx("00 01 1F"))          # the network's DM F = 1
    assert p.heard["user"] == [DlReleaseIndication(0, "the peer refused (DM)")]
    assert p.user.state is LinkState.TEI_ASSIGNED


def test_messages_sent_before_the_link_is_up_go_once_it_is() -> None:
    p = Pair()
    p.user.send(b"\x08\x02\x00\x01\x05")      # while down: kept
    p.user.establish()
    p.user.send(b"\x08\x02\x00\x02\x05")      # while establishing: kept
    p.run(50)
    assert p.data("network") == [b"\x08\x02\x00\x01\x05", b"\x08\x02\x00\x02\x05"]
    assert p.frames()[:4] == ["u:SABME P", "n:UA F", "u:I0.0", "u:I1.0"]


# -- information transfer -------------------------------------------------------------------

def test_an_i_frame_and_its_acknowledgement_both_ways_octet_by_octet() -> None:
    p = Pair()
    p.up()
    restart = hx("08 02 00 00 46 79 01 87")
    p.user.send(restart)
    p.run(20)
    p.network.send(hx("08 02 80 00 4E 79 01 87"))
    p.run(20)
    assert p.octets() == [
        ("user", "00 01 00 00 08 02 00 00 46 79 01 87"),     # I command, N(S) 0, N(R) 0
        ("network", "00 01 01 02"),                           # RR response, N(R) 1
        ("network", "02 01 00 02 08 02 80 00 4e 79 01 87"),  # I command, N(S) 0, N(R) 1
        ("user", "02 01 01 02"),                              # RR response, N(R) 1
    ]
    assert p.data("network") == [restart] and p.data("user") == [hx("08 02 80 00 4E 79 01 87")]


def test_an_answer_from_inside_the_indication_carries_the_acknowledgement() -> None:
    """Layer 3 answering a message at once: one I frame with N(R), no RR on its own."""
    p = Pair()
    p.up()
    p.heard["network"] = []

    class Echo(list[DlEvent]):
        def append(self, ev: DlEvent) -> None:
            super().append(ev)
            if isinstance(ev, DlDataIndication):
                p.network.send(b"re:" + ev.data)

    echo = Echo()
    p.network.sink = echo.append
    p.user.send(b"hello")
    p.run(20)
    assert p.frames() == ["u:I0.0", "n:I0.1", "u:RR1"]
    assert p.data("user") == [b"re:hello"]


def test_the_window_holds_k_frames_and_the_rest_wait_both_ways() -> None:
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    up, down = msgs(30, 1), msgs(25, 2)
    for m in up:
        p.user.send(m)
    for m in down:
        p.network.send(m)
    assert p.user.outstanding == 7 and p.user.queued == 23
    assert p.network.outstanding == 7 and p.network.queued == 18
    assert [f for t, f in p.timed("user") if t == t0] == [f"u:I{i}.0" for i in range(7)]
    p.run(500)
    assert p.data("network") == up and p.data("user") == down
    assert max(p.wire.outstanding["user"]) == max(p.wire.outstanding["network"]) == 7
    for link in (p.user, p.network):
        assert link.outstanding == link.queued == 0
        assert link.counters.retransmitted == 0 and link.counters.t200_expiries == 0
    assert p.user.vs == 30 and p.network.vr == 30 and p.network.vs == 25 and p.user.vr == 25


def test_sequence_numbers_wrap_at_128() -> None:
    p = Pair()
    p.up()
    sent = msgs(300, 3)
    for i, m in enumerate(sent):
        p.user.send(m)
        if i % 5 == 0:
            p.run(3)
    p.run(2000)
    assert p.data("network") == sent and p.user.vs == 300 % 128 == p.network.vr


def test_a_lost_i_frame_is_recovered_by_rej() -> None:
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    lost: list[bytes] = []

    def drop(who: str, o: bytes) -> bool:
        if who == "user" and label(who, o) == "u:I2.0" and not lost:
            lost.append(o)
            return True
        return False

    p.wire.drop = drop
    sent = msgs(5)
    for m in sent:
        p.user.send(m)
    p.run(100)
    assert p.data("network") == sent
    # I3 out of sequence: REJ 2 (response, F = 0: 00 01 09 04), I4 dropped silently (the REJ stands)
    rej = [o.hex(" ") for _, who, o in p.wire.log if who == "network" and label(who, o).startswith("n:REJ")]
    assert rej == ["00 01 09 04"]
    assert [f for t, f in p.timed("user") if t == t0 + 2 * DELAY] == ["u:I2.0", "u:I3.0", "u:I4.0"]
    assert p.user.counters.retransmitted == 3 and p.network.counters.rej_tx == 1
    assert p.user.counters.t200_expiries == 0 and p.user.outstanding == 0


def test_a_lost_last_i_frame_is_recovered_by_t200() -> None:
    """Nothing follows it to show the gap: T200 runs out and it goes again with P = 1, answered F = 1."""
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    p.wire.drop = lambda who, o: who == "user" and label(who, o) == "u:I2.0" and p.clock.now_ms == t0
    sent = msgs(3)
    for m in sent:
        p.user.send(m)
    p.run(100)
    assert p.data("network") == sent[:2] and p.user.outstanding == 1
    p.run(1000)
    assert p.data("network") == sent
    # T200 restarted by the RR that acknowledged I1 (progress, §5.6.3), 2 DELAY after the send
    retx = [(t, o.hex(" ")) for t, who, o in p.wire.log if t >= t0 + 1000]
    assert retx[0] == (t0 + 2 * DELAY + 1000, "00 01 04 01 " + sent[2].hex(" "))   # I N(S) 2, N(R) 0, P = 1
    assert retx[1] == (t0 + 3 * DELAY + 1000, "00 01 01 07")                       # RR N(R) 3, F = 1
    assert p.user.state is LinkState.MULTIPLE_FRAME_ESTABLISHED and p.user.outstanding == 0
    assert p.user.counters.t200_expiries == 1 and p.user.timer is not None and p.user.timer[0] == "T203"


def test_a_lost_i_frame_and_its_rej_are_recovered_by_t200() -> None:
    p = Pair()
    p.up()
    gone: list[str] = []

    def drop(who: str, o: bytes) -> bool:
        what = label(who, o)
        if what in ("u:I1.0", "n:REJ1") and what not in gone:
            gone.append(what)
            return True
        return False

    p.wire.drop = drop
    sent = msgs(3)
    for m in sent:
        p.user.send(m)
    p.run(2000)
    assert gone == ["u:I1.0", "n:REJ1"]
    assert p.data("network") == sent
    # T200: I2 again with P = 1; out of sequence under the REJ: RR 1 F = 1; I1 and I2 again
    assert p.frames(since=1000) == ["u:I2.0 P", "n:RR1 F", "u:I1.0", "u:I2.0", "n:RR2", "n:RR3"]


# -- busy -------------------------------------------------------------------------------------

def test_rnr_holds_the_sender_which_polls_by_t200_until_rr() -> None:
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    p.network.set_busy(True)
    p.run(20)
    assert p.octets() == [("network", "00 01 05 00")]                 # RNR response, N(R) 0
    sent = msgs(3)
    for m in sent:
        p.user.send(m)
    p.run(10000)
    polls = [t - t0 for t, f in p.timed("user")]
    # each T200 after the RNR: a poll (RR P = 1), answered RNR F = 1; never an I frame, never SABME
    assert p.frames(since=t0 + 20) == ["u:RR0 P", "n:RNR0 F"] * len(polls)
    assert polls[:3] == [DELAY + 1000, 2 * DELAY + 2000 + DELAY, 4 * DELAY + 3000 + DELAY]
    assert p.data("network") == [] and p.user.queued == 3 and p.user.dchan == "up"
    p.network.set_busy(False)
    p.run(100)
    assert p.data("network") == sent
    assert p.user.counters.mdl_errors == {} and p.user.queued == p.user.outstanding == 0


def test_i_frames_refused_while_busy_come_again_after_it() -> None:
    p = Pair()
    p.up()
    p.network.set_busy(True)
    sent = msgs(3)
    for m in sent:
        p.user.send(m)                  # they cross the RNR and are discarded
    p.run(3500)
    assert p.data("network") == [] and p.network.counters.i_rx == 0
    p.network.set_busy(False)
    p.run(3000)
    assert p.data("network") == sent
    assert p.user.counters.retransmitted >= 3 and p.user.dchan == "up" and not p.user.counters.mdl_errors


def test_our_busy_answers_a_poll_with_rnr() -> None:
    p = Pair()
    p.up()
    p.user.set_busy(True)
    p.run(20)
    p.network.send(b"m")
    p.run(1500)
    # the user's RNR (response, C/R 1: 02 01 05 00); the I frame refused; the network's T200 poll
    # is answered RNR F = 1 (02 01 05 01)
    assert p.octets()[0] == ("user", "02 01 05 00")
    assert ("user", "02 01 05 01") in p.octets()
    assert p.data("user") == []
    p.user.set_busy(False)
    p.run(2000)
    assert p.data("user") == [b"m"]


# -- idle supervision ---------------------------------------------------------------------------

def test_t203_polls_an_idle_link() -> None:
    """The network's T203 runs out first (10 s against the user's 30 s): it polls, and each poll
    it sends restarts the user's T203, so the user never polls."""
    p = Pair(user_overrides={"q921": {"T203": 30000}})
    p.user.establish()
    p.until(60000)
    polls = [t for t, f in p.timed("network") if f == "n:RR0 P"]
    # the network's T203 starts when it sends UA (5 ms); each answer (F = 1) 10 ms after its poll
    assert polls == [10005, 20015, 30025, 40035, 50045]
    assert p.frames(since=10000) == ["n:RR0 P", "u:RR0 F"] * 5
    assert p.octets()[2:4] == [("network", "02 01 01 01"), ("user", "02 01 01 01")]
    assert p.network.counters.t203_expiries == 5 and p.user.counters.t203_expiries == 0
    assert p.user.dchan == p.network.dchan == "up" and p.reports("user") == ["DlEstablishConfirm"]


def test_an_unanswered_t203_poll_reestablishes() -> None:
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    p.wire.drop = lambda who, o: who == "user"        # the user hears but is not heard
    p.run(20000)
    net = p.timed("network")
    assert [f for _, f in net[:5]] == ["n:RR0 P"] * 4 + ["n:SABME P"]
    assert [t - net[0][0] for t, _ in net[:5]] == [0, 1000, 2000, 3000, 4000]
    assert net[0][0] == t0 - 2 * DELAY + 10000        # T203 from the UA the network sent
    assert p.network.counters.mdl_errors == {"I": 1, "G": 1}
    # nothing was outstanding: the re-establishment tells layer 3 nothing until it fails
    assert p.heard["network"] == [DlReleaseIndication(net[0][0] + 8000, "no answer to SABME")]


# -- re-establishment -----------------------------------------------------------------------------

def test_n200_exhausted_reestablishes_and_a_failed_one_releases() -> None:
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    p.wire.drop = lambda who, o: True                 # the D-channel is cut, the span stays up
    p.user.send(b"m0")
    p.run(9000)
    user = [(t - t0, f) for t, f in p.timed("user")]
    assert user == [(0, "u:I0.0"), (1000, "u:I0.0 P"), (2000, "u:I0.0 P"), (3000, "u:I0.0 P"),
                    (4000, "u:SABME P"), (5000, "u:SABME P"), (6000, "u:SABME P"), (7000, "u:SABME P")]
    assert p.heard["user"] == [DlReleaseIndication(t0 + 8000, "no answer to SABME")]
    assert p.user.counters.mdl_errors == {"I": 1, "G": 1} and p.user.counters.data_discarded == 1
    assert p.user.dchan == "down"


def test_n200_exhausted_reestablished_tells_layer_3_its_frames_were_lost() -> None:
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    p.wire.drop = lambda who, o: p.clock.now_ms < t0 + 5500
    p.user.send(b"m0")
    p.user.send(b"m1")
    p.run(9000)
    # the SABME of 6000 ms gets through: UA; m0, m1 were outstanding: DL-ESTABLISH-INDICATION
    assert p.heard["user"] == [DlEstablishIndication(t0 + 6000 + 2 * DELAY)]
    assert p.network.counters.mdl_errors == {"F": 1} and p.heard["network"] == []
    assert p.user.dchan == p.network.dchan == "up" and p.data("network") == []
    assert p.user.counters.data_discarded == 2
    p.user.send(b"m2")
    p.run(50)
    assert p.data("network") == [b"m2"]


def test_frmr_received_reestablishes() -> None:
    p = Pair()
    p.up()
    p.user.receive(hx("00 01 87 01 02 06 0A 03"))     # the network's FRMR
    p.run(20)
    assert p.octets() == [("user", "00 01 7f"), ("network", "00 01 73")]
    assert p.user.counters.mdl_errors == {"K": 1} and p.network.counters.mdl_errors == {"F": 1}
    assert p.heard == {"user": [], "network": []}     # nothing was outstanding: nothing lost
    assert p.user.dchan == "up"


def test_a_sabme_while_established_resets_and_loses_what_was_outstanding() -> None:
    p = Pair()
    p.up()
    for m in msgs(10):
        p.user.send(m)                              # 7 sent, 3 queued
    p.network.establish()                           # layer 3 re-establishes from the other side
    p.run(50)
    assert p.frames()[:9] == [f"u:I{i}.0" for i in range(7)] + ["n:SABME P", "u:UA F"]
    assert p.reports("user") == ["DlEstablishIndication"] and p.reports("network") == ["DlEstablishConfirm"]
    assert p.data("network") == []                  # I frames reached it while it awaited UA: ignored
    assert p.user.counters.data_discarded == 10 and p.user.queued == p.user.outstanding == 0
    assert (p.user.vs, p.user.va, p.user.vr) == (0, 0, 0)


def test_dm_f0_while_established_reestablishes() -> None:
    p = Pair()
    p.up()
    p.user.receive(hx("00 01 0F"))
    p.run(20)
    assert p.frames() == ["u:SABME P", "n:UA F"] and p.user.counters.mdl_errors == {"E": 1}


def test_an_invalid_nr_reestablishes() -> None:
    p = Pair()
    p.up()
    p.user.receive(hx("00 01 01 0A"))              # RR N(R) 5: nothing was sent
    p.run(20)
    assert p.frames() == ["u:SABME P", "n:UA F"] and p.user.counters.mdl_errors == {"J": 1}


# -- release ------------------------------------------------------------------------------------

def test_disc_releases_both_ends() -> None:
    p = Pair()
    p.up()
    p.user.release()
    assert p.user.dchan == "down" and p.user.state is LinkState.AWAITING_RELEASE
    p.run(20)
    assert p.octets() == [("user", "00 01 53"), ("network", "00 01 73")]
    assert p.reports("user") == ["DlReleaseConfirm"]
    assert p.heard["network"] == [DlReleaseIndication(DELAY, "the peer released (DISC)")] or \
        p.reports("network") == ["DlReleaseIndication"]
    assert p.user.state is p.network.state is LinkState.TEI_ASSIGNED
    assert p.user.timer is None and p.network.timer is None


def test_the_network_releases() -> None:
    p = Pair()
    p.up()
    p.network.release()
    p.run(20)
    assert p.octets() == [("network", "02 01 53"), ("user", "02 01 73")]
    assert p.reports("network") == ["DlReleaseConfirm"] and p.reports("user") == ["DlReleaseIndication"]


def test_release_discards_what_was_queued() -> None:
    p = Pair()
    p.up()
    sent = msgs(10)
    for m in sent:
        p.user.send(m)
    p.user.release()
    p.user.send(b"too late")                        # awaiting release: discarded
    p.run(100)
    assert p.frames()[:8] == [f"u:I{i}.0" for i in range(7)] + ["u:DISC P"]
    assert p.data("network") == sent[:7]            # those already on the wire arrive
    assert p.user.counters.data_discarded == 11
    p.user.establish()
    p.run(100)
    assert p.data("network") == sent[:7]            # nothing of the old queue after the new establishment


def test_release_to_a_silent_peer_confirms_after_n200() -> None:
    p = Pair()
    p.up()
    t0 = p.clock.now_ms
    p.wire.drop = lambda who, o: True
    p.user.release()
    p.run(5000)
    assert [(t - t0, f) for t, f in p.timed("user")] == [(0, "u:DISC P"), (1000, "u:DISC P"),
                                                          (2000, "u:DISC P"), (3000, "u:DISC P")]
    assert p.heard["user"] == [DlReleaseConfirm(t0 + 4000)] and p.user.counters.mdl_errors == {"H": 1}


def test_release_answered_by_dm() -> None:
    p = Pair()
    p.up()
    p.network.ph_down()
    p.network.ph_up()                               # the network's link restarted: TEI assigned
    p.forget()
    p.user.release()
    p.run(20)
    assert p.octets() == [("user", "00 01 53"), ("network", "00 01 1f")]   # DISC, DM F = 1
    assert p.reports("user") == ["DlReleaseConfirm"]


def test_release_while_down_confirms_at_once() -> None:
    p = Pair()
    p.user.release()
    assert p.reports("user") == ["DlReleaseConfirm"] and p.wire.log == []


# -- bad frames -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "", "00", "00 01",                 # too short (§2.9)
    "01 01 01 00",                     # one-octet address
    "00 00 01 00",                     # three-octet address
    "04 01 01 00",                     # SAPI 1
    "FC 01 01 00",                     # SAPI 63 (management)
    "00 03 01 00",                     # TEI 1
    "00 FF 01 00",                     # TEI 127 (broadcast)
    "00 01 01",                        # RR without its N(R) octet
    "00 01 00",                        # I without its N(R) octet
    "00 01 7F",                        # SABME as a response (from the network C/R 0 is a response)
    "02 01 73",                        # UA as a command
    "00 01 00 00 41",                  # I frame as a response
    "00 01 03 41",                     # UI: not used on the link
])
def test_invalid_frames_are_discarded_unseen(text: str) -> None:
    p = Pair()
    p.up()
    before = (p.user.state, p.user.vs, p.user.va, p.user.vr, p.user.timer)
    p.user.receive(hx(text))
    p.run(20)
    assert p.wire.log == [] and p.heard["user"] == []
    assert (p.user.state, p.user.vs, p.user.va, p.user.vr, p.user.timer) == before
    assert p.user.counters.invalid == 1 and p.user.counters.mdl_errors == {}


@pytest.mark.parametrize(("text", "code"), [
    ("00 01 FF", "L"),                 # control field undefined
    ("00 01 2F", "L"),                 # SABM: modulo 8 is not LAPD's
    ("00 01 0D 00", "L"),              # S frame SS = 11 (SREJ is not Q.921's)
    ("00 01 01 02 AA", "N"),           # RR with an information field: wrong size
    ("00 01 73 AA", "M"),              # UA with an information field
    ("02 01 00 00 " + "55 " * 261, "O"),   # I frame over N201 = 260
])
def test_a_frame_rejection_condition_reestablishes_the_link(text: str, code: str) -> None:
    """Q.921 §5.8.5: no FRMR is sent; established, the link re-establishes (the peer is told by
    the SABME), with nothing lost here and so nothing said to layer 3."""
    p = Pair()
    p.up()
    p.user.receive(hx(text))
    p.run(20)
    assert p.frames() == ["u:SABME P", "n:UA F"]
    assert p.user.counters.mdl_errors == {code: 1} and p.user.counters.rejected == 1
    assert p.heard["user"] == [] and p.user.dchan == "up"


def test_an_i_frame_of_n201_octets_is_taken() -> None:
    p = Pair()
    p.up()
    p.user.receive(hx("02 01 00 00") + b"\x55" * 260)
    assert p.data("user") == [b"\x55" * 260]
    with pytest.raises(EncodeError, match="1-260"):
        p.user.send(b"\x55" * 261)
    with pytest.raises(EncodeError):
        p.user.send(b"")
    p.user.send(b"\x55" * 260)


def test_a_frame_rejection_condition_while_down_is_discarded() -> None:
    p = Pair()
    p.user.receive(hx("00 01 FF"))
    assert p.wire.log == [] and p.user.state is LinkState.TEI_ASSIGNED
    assert p.user.counters.mdl_errors == {"L": 1}


def test_frames_of_an_established_link_while_establishing_are_ignored() -> None:
    p = Pair()
    p.wire.drop = lambda who, o: True
    p.user.establish()
    errors = p.user.protocol_errors
    for text in ("02 01 00 00 41", "00 01 01 00", "00 01 87 01 02 06 0A 03"):
        p.user.receive(hx(text))
    assert p.user.protocol_errors == errors + 3 and p.user.state is LinkState.AWAITING_ESTABLISHMENT
    assert p.heard["user"] == [] and len(p.wire.log) == 1


def test_a_link_down_answers_a_poll_with_dm() -> None:
    p = Pair()
    p.network.receive(hx("00 01 01 01"))            # the user's RR command P = 1
    p.network.receive(hx("00 01 00 00 41"))         # an I frame P = 0: nothing
    p.network.receive(hx("00 01 53"))               # DISC: DM F = 1
    assert p.octets() == [("network", "00 01 1f"), ("network", "00 01 1f")]
    assert p.network.state is LinkState.TEI_ASSIGNED and p.heard["network"] == []


# -- the physical layer ---------------------------------------------------------------------------

def test_ph_down_stops_the_link_and_ph_up_lets_it_establish() -> None:
    p = Pair()
    p.up()
    p.user.send(b"m0")
    p.user.ph_down()
    p.network.ph_down()
    assert p.heard["user"] == [DlReleaseIndication(p.clock.now_ms, "physical layer down")]
    assert p.reports("network") == ["DlReleaseIndication"]
    assert p.user.dchan == p.network.dchan == "down" and p.user.timer is None
    p.run(100)
    assert p.frames() == ["u:I0.0"] and p.data("network") == []     # in flight, then ignored
    p.user.establish()                              # asked while down: waits for PH up
    p.user.send(b"m1")
    p.run(100)
    assert p.frames() == ["u:I0.0"] and p.user.dchan == "down"
    p.network.ph_up()
    p.user.ph_up()
    p.run(50)
    assert p.frames()[1:] == ["u:SABME P", "n:UA F", "u:I0.0", "n:RR1"]
    assert p.data("network") == [b"m1"] and p.reports("user")[-1] == "DlEstablishConfirm"


def test_ph_down_while_releasing_confirms_and_while_down_changes_nothing() -> None:
    p = Pair()
    p.up()
    p.user.release()
    p.user.ph_down()
    assert p.reports("user") == ["DlReleaseConfirm"]
    p.user.ph_down()
    p.user.ph_up()
    p.user.ph_up()
    assert p.reports("user") == ["DlReleaseConfirm"] and p.user.state is LinkState.TEI_ASSIGNED


# -- status, timers -----------------------------------------------------------------------------

def test_status_for_span_status() -> None:
    p = Pair()
    assert p.user.status()["dchan"] == "down"
    p.user.establish()
    assert p.user.status()["dchan"] == "establishing"
    p.run(20)
    p.user.send(b"x")
    st = p.user.status()
    assert st["dchan"] == "up" and st["side"] == "user" and st["state"] == "multiple_frame_established"
    assert (st["vs"], st["va"], st["vr"], st["outstanding"], st["queued"]) == (1, 0, 0, 1, 0)
    assert st["counters"]["i_tx"] == 1 and st["counters"]["established"] == 1
    p.wire.drop = lambda who, o: True
    p.run(1000)
    assert p.user.state is LinkState.TIMER_RECOVERY and p.user.dchan == "up"


def test_q921_timers_are_registered_and_overridable() -> None:
    assert TIMER_TABLES["q921"] is Q921_TIMERS
    assert {t.name: t.default_ms for t in Q921_TIMERS} == {"T200": 1000, "T203": 10000}
    p = Pair(overrides={"q921": {"T200": 500}})
    p.wire.drop = lambda who, o: True
    p.user.establish()
    p.run(3000)
    assert [t for t, _ in p.timed("user")] == [0, 500, 1000, 1500]
    with pytest.raises(TimerError, match="T203"):
        DataLink(Side.USER, lambda o: None, lambda e: None, Clock(),
                 timer_tables({"q921": {"T200": 10000, "T203": 10000}})["q921"])


def test_n200_and_k_from_the_parameters() -> None:
    p = Pair(params=LapdParams(n200=1, k=2))
    p.up()
    for m in msgs(5):
        p.user.send(m)
    assert p.user.outstanding == 2 and p.user.queued == 3
    p.wire.drop = lambda who, o: True
    t0 = p.clock.now_ms
    p.run(5000)
    assert [(t - t0, f) for t, f in p.timed("user")][2:] == [(1000, "u:I1.0 P"), (2000, "u:SABME P"),
                                                              (3000, "u:SABME P")]
    with pytest.raises(ValueError, match="k must be"):
        LapdParams(k=128)


# -- a back-to-back link with delivery inside the sender's call ----------------------------------

def test_a_wire_without_delay_works_the_same() -> None:
    """Frames handed on inside the sending call: the machines' queued events keep each action whole."""
    p = Pair(delay=0)
    p.user.establish()
    assert p.user.dchan == p.network.dchan == "up"
    up, down = msgs(20, 1), msgs(20, 2)
    for a, b in zip(up, down, strict=True):
        p.user.send(a)
        p.network.send(b)
    p.run(10)
    assert p.data("network") == up and p.data("user") == down
    p.user.release()
    assert p.reports("user") == ["DlEstablishConfirm", "DlReleaseConfirm"]


# -- a lossy D-channel ------------------------------------------------------------------------------

@pytest.mark.parametrize(("seed", "loss"), [(1, 0.03), (2, 0.05), (3, 0.25), (4, 0.25)])
def test_a_lossy_link_never_reorders_or_duplicates_and_loses_only_what_it_reports(seed: int, loss: float) -> None:
    """Frames lost at random both ways for a minute, messages sent from both ends, layer 3
    re-establishing when told of a release; then a clean minute. Each end receives the other's
    messages in order, never twice, and all of them unless the sender was told of a loss
    (DL-ESTABLISH-INDICATION after I frames outstanding, or DL-RELEASE-INDICATION)."""
    rng = random.Random(seed)
    p = Pair()
    lossy = [True]
    p.wire.drop = lambda who, o: lossy[0] and rng.random() < loss
    for who, link in (("user", p.user), ("network", p.network)):
        heard = p.heard[who]

        def sink(ev: DlEvent, heard: list[DlEvent] = heard, link: DataLink = link) -> None:
            heard.append(ev)
            if isinstance(ev, DlReleaseIndication):
                link.establish()

        link.sink = sink
    p.user.establish()
    sent: dict[str, list[bytes]] = {"user": [], "network": []}
    for step in range(600):
        for who, link in (("user", p.user), ("network", p.network)):
            if rng.random() < 0.3:
                m = f"{who}:{step}".encode()
                sent[who].append(m)
                link.send(m)
        p.run(100)
        if step == 400:
            lossy[0] = False
    assert p.user.dchan == p.network.dchan == "up"
    for who, peer in (("user", "network"), ("network", "user")):
        got = p.data(peer)
        assert len(set(got)) == len(got)
        positions = [sent[who].index(m) for m in got]
        assert positions == sorted(positions)
        # what the sender was told after the first establishment
        told = [r for r in p.reports(who)[1:] if r in ("DlEstablishIndication", "DlReleaseIndication")]
        if not told:
            assert got == sent[who]
        elif loss < 0.1:
            pytest.fail(f"{who}: {told} at {loss:.0%} loss")
        # after the loss ended, everything sent got through
        late = [m for m in sent[who] if int(m.split(b":")[1]) > 420]
        assert late and got[-len(late):] == late
    assert p.user.counters.retransmitted > 0 and p.network.counters.retransmitted > 0


def test_a_full_queue_discards_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    p = Pair()
    for i in range(MAX_QUEUE + 50):
        p.user.send(i.to_bytes(2, "big"))
    assert p.user.queued == MAX_QUEUE and p.user.counters.data_discarded == 50
    assert sum("more are discarded" in r.getMessage() for r in caplog.records) == 1
    p.user.establish()
    p.run(5000)
    assert p.data("network") == [i.to_bytes(2, "big") for i in range(MAX_QUEUE)]


def test_establish_while_releasing_follows_the_release() -> None:
    p = Pair()
    p.up()
    p.user.release()
    p.user.establish()
    p.run(50)
    assert p.frames() == ["u:DISC P", "n:UA F", "u:SABME P", "n:UA F"]
    assert p.reports("user") == ["DlReleaseConfirm", "DlEstablishConfirm"]
    assert p.reports("network") == ["DlReleaseIndication", "DlEstablishIndication"]
