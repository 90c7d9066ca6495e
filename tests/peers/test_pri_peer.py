"""Our Q.921 and Q.931 against libpri (tests/peers/pri_peer.c) over a sim card's PRI span, in virtual time.

Both sides (our user side against libpri's network side, and the reverse) and both switch types (E1
EuroISDN; T1 NI-2, ESF, B8ZS, µ-law): the link comes up at both ends; a SETUP encoded by
e1t1.isdn.q931 reaches libpri with ANI, DNIS, type of number, plan and presentation as sent; libpri's
SETUP decodes back with the script's numbers; calls clear from either side; a global RESTART is
acknowledged; the peer's tone is heard on the timeslot its channel identification named; NI-2 SERVICE
is acknowledged both ways; on an alarm the peer clears its calls itself (cause 38).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.base import SpanKind
from drivers.hal import EventType
from e1t1.isdn import q931
from e1t1.isdn.q921 import DlEstablishConfirm, DlEstablishIndication
from e1t1.isdn.q931 import (
    GLOBAL_CALL_REFERENCE,
    BearerCapability,
    CallingNumber,
    CallRef,
    Cause,
    ChangeStatus,
    ChannelId,
    Npi,
    Presentation,
    RestartClass,
    RestartIndicator,
    Screening,
    SendingComplete,
    ServiceStatus,
    Ton,
)
from tests.peers.pri_link import DCHAN_TS, PriLink
from tests.peers.pri_peer import BIN, PeerEvent
from tests.signals import frequency, level_dbm0

pytestmark = pytest.mark.skipif(not BIN.exists(), reason="tests/peers/bin/pri_peer is not built (make setup)")

# (kind, our signalling): our user side against libpri's network side and the reverse, E1 and T1
SPANS: list[tuple[SpanKind, str]] = [("e1", "pri_cpe"), ("e1", "pri_net"), ("t1", "pri_cpe"), ("t1", "pri_net")]
IDS = ["e1-user", "e1-network", "t1-user", "t1-network"]
ANI = "13800138000"


@pytest.fixture
def links(tmp_path: Path) -> Iterator[list[PriLink]]:
    made: list[PriLink] = []
    yield made
    for link in made:
        rc = link.close()
        assert rc == 0, f"pri_peer exited {rc}: {link.peer.stderr()[-2000:]}"


def open_link(links: list[PriLink], tmp_path: Path, kind: SpanKind, signalling: str, **kw: object) -> PriLink:
    link = PriLink(tmp_path, kind, signalling, **kw)  # type: ignore[arg-type]
    links.append(link)
    return link


def setup(link: PriLink, cr: int, channel: int, presentation: Presentation, dnis: str = "0755",
          exclusive: bool = True) -> q931.Setup:
    return q931.Setup(CallRef(cr), (
        SendingComplete(), BearerCapability.speech(link.law),
        ChannelId.b_channel(channel, exclusive=exclusive),
        CallingNumber(ANI, Ton.national, Npi.isdn, presentation, Screening.user_unscreened),
        q931.CalledNumber(dnis, Ton.national, Npi.isdn)))


@pytest.mark.parametrize(("kind", "signalling"), SPANS, ids=IDS)
def test_the_link_comes_up_at_both_ends_and_stays_up(tmp_path: Path, links: list[PriLink], kind: SpanKind,
                                                    signalling: str) -> None:
    link = open_link(links, tmp_path, kind, signalling)
    cfg = link.configs[0]
    assert cfg.ts16 == "dchan"
    if kind == "t1":
        assert (cfg.framing, cfg.coding, link.law) == ("esf", "b8zs", "ulaw")
    attached = link.peer.next_event("attached")
    assert attached is not None and attached["side"] == link.side.other.value
    assert attached["switch"] == link.switch and attached["kind"] == kind
    link.up(within_ms=3000)
    up_at = link.now
    link.run(25_000)                       # past two of libpri's T203 polls (10 s each) and ours
    assert link.link.dchan == "up"
    assert link.peer.named("dchan_down") == []
    st = link.link.status()["counters"]
    assert st["released"] == 0 and st["invalid"] == 0 and st["t203_expiries"] >= 2, st
    assert link.now - up_at >= 25_000


@pytest.mark.parametrize(("kind", "signalling"), SPANS, ids=IDS)
@pytest.mark.parametrize("presentation", [Presentation.allowed, Presentation.restricted])
def test_our_setup_rings_libpri_with_its_numbers_as_sent_and_clears_from_our_side(
        tmp_path: Path, links: list[PriLink], kind: SpanKind, signalling: str, presentation: Presentation) -> None:
    link = open_link(links, tmp_path, kind, signalling)
    link.up()
    link.send(setup(link, 0x21, 5, presentation, "075588881234"))
    ring = link.peer_event("ring")
    assert {k: ring[k] for k in ("call", "channel", "ani", "ani_ton", "ani_npi", "ani_pres", "ani_screen", "dnis",
                                 "complete", "exclusive")} == {
        "call": 1, "channel": 5, "ani": ANI, "ani_ton": "national", "ani_npi": "isdn",
        "ani_pres": presentation.name, "ani_screen": "user_unscreened", "dnis": "075588881234", "complete": True,
        "exclusive": True}
    # without --answer libpri proceeds on our channel and alerts
    proceeding = link.message(q931.CallProceeding)
    assert proceeding.cr == CallRef(0x21, True)
    cid = proceeding.get(ChannelId)
    assert cid is None or cid.channel == 5
    assert link.message(q931.Alerting).cr == CallRef(0x21, True)
    link.send(q931.Disconnect(CallRef(0x21), (Cause(16),)))
    hangup = link.peer_event("hangup")
    assert (hangup["call"], hangup["channel"], hangup["cause"]) == (1, 5, 16)
    release = link.message(q931.Release)
    assert release.cr == CallRef(0x21, True)
    link.send(q931.ReleaseComplete(CallRef(0x21)))
    link.run(500)
    assert link.received == [] and link.link.dchan == "up"


@pytest.mark.parametrize(("kind", "signalling"), SPANS, ids=IDS)
def test_libpris_setup_decodes_with_the_scripts_numbers_and_its_tone_is_heard_on_its_timeslot(
        tmp_path: Path, links: list[PriLink], kind: SpanKind, signalling: str) -> None:
    script = [{"at_ms": 2000, "do": "call", "ani": ANI, "ani_ton": "national", "ani_npi": "isdn",
               "ani_pres": "restricted", "ani_screen": "network", "dnis": "8001", "complete": True,
               "channel": 7, "exclusive": True}]
    link = open_link(links, tmp_path, kind, signalling, script=script)
    link.up()
    msg = link.message(q931.Setup, within_ms=3000)
    assert not [p for p in msg.problems], msg.problems
    calling, called, cid, bearer = (msg.get(CallingNumber), msg.get(q931.CalledNumber), msg.get(ChannelId),
                                    msg.get(BearerCapability))
    assert calling is not None and called is not None and cid is not None and bearer is not None
    assert (calling.digits, calling.ton, calling.npi, calling.presentation, calling.screening) == (
        ANI, Ton.national, Npi.isdn, Presentation.restricted, Screening.network)
    assert called.digits == "8001"
    assert (cid.channel, cid.exclusive) == (7, True)
    assert bearer == BearerCapability.speech(link.law)
    assert msg.get(SendingComplete) is not None
    cr = msg.cr.answer()
    link.send(q931.CallProceeding(cr, (ChannelId.b_channel(7, exclusive=True),)))
    link.send(q931.Alerting(cr))
    link.send(q931.Connect(cr))
    assert link.peer_event("proceeding")["channel"] == 7
    assert link.peer_event("ringing")["call"] == 1
    assert link.peer_event("answer")["call"] == 1
    link.message(q931.ConnectAck)
    link.peer.do({"do": "tone", "call": 1, "hz": 1020, "dbm0": -10})
    heard = link.heard_on(7, 1000)[200:]          # its first ms are the block the line was still idle
    assert abs(frequency(heard) - 1020) <= 2
    assert abs(level_dbm0(heard) - (-10)) <= 1
    quiet = link.heard_on(8, 200)                  # the neighbour stays idle
    assert max(abs(s) for s in quiet) <= 16
    link.peer.do({"do": "hangup", "call": 1, "cause": 16})
    disc = link.message(q931.Disconnect)
    cause = disc.get(Cause)
    assert disc.cr == cr.answer() and cause is not None and cause.value == 16
    link.send(q931.Release(cr, (Cause(16),)))
    link.message(q931.ReleaseComplete)
    hangup = link.peer_event("hangup")
    assert (hangup["call"], hangup["channel"]) == (1, 7)


def test_libpris_dtmf_is_detected_on_its_call_timeslot(tmp_path: Path, links: list[PriLink]) -> None:
    script = [{"at_ms": 2000, "do": "call", "ani": ANI, "dnis": "8001", "channel": 12, "exclusive": True}]
    link = open_link(links, tmp_path, "e1", "pri_cpe", script=script)
    link.up()
    cr = link.message(q931.Setup, within_ms=3000).cr.answer()
    link.send(q931.Connect(cr))
    link.peer_event("answer")
    for ts in (11, 12):
        link.lc.detect_dtmf(link.channel_of[ts])
    link.peer.do({"do": "dtmf", "call": 1, "digits": "1#"})
    link.run(1000)
    digits = [(e.chan, chr(e.value)) for e in link.media if e.type == EventType.DTMF]
    assert digits == [(link.channel_of[12], "1"), (link.channel_of[12], "#")]


def test_libpris_overlap_sending_reaches_us_a_digit_per_information(tmp_path: Path, links: list[PriLink]) -> None:
    script = [{"at_ms": 2000, "do": "call", "ani": ANI, "dnis": "0755", "complete": False, "channel": 5,
               "exclusive": True}]
    link = open_link(links, tmp_path, "e1", "pri_cpe", script=script)
    link.up()
    msg = link.message(q931.Setup, within_ms=3000)
    called = msg.get(q931.CalledNumber)
    assert called is not None and called.digits == "0755" and msg.get(SendingComplete) is None
    cr = msg.cr.answer()
    link.send(q931.SetupAck(cr, (ChannelId.b_channel(5, exclusive=True),)))
    assert link.peer_event("setup_ack")["channel"] == 5
    link.peer.do({"do": "info", "call": 1, "digits": "1234"})
    infos = [link.message(q931.Information) for _ in range(4)]
    got = [m.get(q931.CalledNumber) for m in infos]
    assert [c.digits if c else None for c in got] == ["1", "2", "3", "4"]
    assert {m.cr for m in infos} == {cr.answer()}
    link.send(q931.Disconnect(cr, (Cause(28),)))
    assert link.peer_event("hangup")["cause"] == 28
    link.message(q931.Release)
    link.send(q931.ReleaseComplete(cr))


@pytest.mark.parametrize(("kind", "signalling"), SPANS, ids=IDS)
def test_a_full_span_of_libpris_calls_each_on_its_own_channel_connects_and_clears(
        tmp_path: Path, links: list[PriLink], kind: SpanKind, signalling: str) -> None:
    n = 30 if kind == "e1" else 23
    script = [{"at_ms": 2000, "do": "call", "ani": ANI, "dnis": f"{8000 + i}"} for i in range(n)]
    link = open_link(links, tmp_path, kind, signalling, script=script)
    link.up()
    setups = [link.message(q931.Setup, within_ms=3000) for _ in range(n)]
    chans = []
    for m in setups:
        cid, called = m.get(ChannelId), m.get(q931.CalledNumber)
        assert cid is not None and cid.channel is not None and called is not None
        chans.append(cid.channel)
        link.send(q931.Connect(m.cr.answer(), (ChannelId.b_channel(cid.channel, exclusive=True),)))
    bearers = [t for t in range(1, 32 if kind == "e1" else 25) if t != DCHAN_TS[kind]]
    assert sorted(chans) == bearers
    # libpri's network side hunts from the lowest channel, its user side from the highest
    assert chans == (sorted(bearers) if signalling == "pri_cpe" else sorted(bearers, reverse=True))
    link.until(lambda: len(link.peer.named("answer")) == n, 5000, f"{n} answers")
    assert sorted(e["channel"] for e in link.peer.named("answer")) == bearers
    for call in range(1, n + 1):
        link.peer.do({"do": "hangup", "call": call, "cause": 16})
    for _ in range(n):
        disc = link.message(q931.Disconnect)
        link.send(q931.Release(disc.cr.answer(), (Cause(16),)))
    for _ in range(n):
        link.message(q931.ReleaseComplete)
    link.until(lambda: len(link.peer.named("hangup")) == n, 5000, f"{n} hangups")
    assert sorted(e["channel"] for e in link.peer.named("hangup")) == bearers
    assert link.link.status()["counters"]["data_discarded"] == 0


@pytest.mark.parametrize(("kind", "signalling"), [SPANS[0], SPANS[3]], ids=[IDS[0], IDS[3]])
def test_a_global_restart_from_us_is_acknowledged_and_clears_libpris_call(
        tmp_path: Path, links: list[PriLink], kind: SpanKind, signalling: str) -> None:
    script = [{"at_ms": 2000, "do": "call", "ani": ANI, "dnis": "8001", "channel": 3, "exclusive": True}]
    link = open_link(links, tmp_path, kind, signalling, script=script)
    link.up()
    cr = link.message(q931.Setup, within_ms=3000).cr.answer()
    link.send(q931.Connect(cr, (ChannelId.b_channel(3, exclusive=True),)))
    link.peer_event("answer")
    link.send(q931.Restart(GLOBAL_CALL_REFERENCE, (RestartIndicator(RestartClass.all_interfaces),)))
    ack = link.message(q931.RestartAck)
    ri = ack.get(RestartIndicator)
    assert ack.cr == CallRef(0, True) and ri is not None and ri.restart_class is RestartClass.all_interfaces
    restart = link.peer_event("restart")
    assert restart["channel"] is None
    # libpri holds no call now: its hangup of call 1 sends nothing
    link.peer.do({"do": "hangup", "call": 1, "cause": 16})
    link.run(1000)
    assert [m.NAME for m in link.received if not isinstance(m, q931.ConnectAck)] == []
    assert "no call 1 in progress" in link.peer.stderr()


def test_libpris_restart_of_one_channel_reaches_us_and_our_acknowledgement_reaches_it(
        tmp_path: Path, links: list[PriLink]) -> None:
    link = open_link(links, tmp_path, "e1", "pri_cpe", script=[{"at_ms": 2000, "do": "restart", "channel": 9}])
    link.up()
    msg = link.message(q931.Restart, within_ms=3000)
    ri, cid = msg.get(RestartIndicator), msg.get(ChannelId)
    assert msg.cr.is_global and ri is not None and cid is not None
    assert (ri.restart_class, cid.channel) == (RestartClass.indicated_channels, 9)
    link.send(q931.RestartAck(msg.cr.answer(), (cid, ri)))
    assert link.peer_event("restart_ack")["channel"] == 9


@pytest.mark.parametrize("signalling", ["pri_cpe", "pri_net"])
def test_ni2_service_is_acknowledged_both_ways(tmp_path: Path, links: list[PriLink], signalling: str) -> None:
    link = open_link(links, tmp_path, "t1", signalling,
                     script=[{"at_ms": 2000, "do": "service", "channel": 5, "status": "out_of_service"}])
    link.up()
    msg = link.message(q931.Service, within_ms=3000)
    change, cid = msg.get(ChangeStatus), msg.get(ChannelId)
    assert change is not None and cid is not None
    assert (change.status, cid.channel) == (ServiceStatus.out_of_service, 5)
    link.send(q931.ServiceAck(msg.cr.answer(), (change, cid)))
    ack = link.peer_event("service_ack")
    assert (ack["channel"], ack["status"]) == (5, "out_of_service")
    # and ours: back in service
    link.send(q931.Service(CallRef(0x11), (ChangeStatus(ServiceStatus.in_service),
                                          ChannelId.b_channel(5, exclusive=True))))
    assert (link.peer_event("service")["channel"], link.peer.named("service")[0]["status"]) == (5, "in_service")
    back = link.message(q931.ServiceAck)
    change = back.get(ChangeStatus)
    assert back.cr == CallRef(0x11, True) and change is not None and change.status is ServiceStatus.in_service


@pytest.mark.parametrize(("kind", "signalling"), [SPANS[1], SPANS[2]], ids=[IDS[1], IDS[2]])
def test_on_an_alarm_the_peer_clears_its_calls_itself_and_the_link_comes_back(
        tmp_path: Path, links: list[PriLink], kind: SpanKind, signalling: str) -> None:
    link = open_link(links, tmp_path, kind, signalling, answer=True)
    link.up()
    for i, ts in enumerate((1, 2, 3)):
        link.send(setup(link, 0x40 + i, ts, Presentation.allowed))
        connect = link.message(q931.Connect)
        link.send(q931.ConnectAck(connect.cr.answer()))
    link.run(5000)                                           # past libpri's T313: the calls stay up
    assert link.peer.named("hangup") == []
    assert [e["channel"] for e in link.peer.named("ring")] == [1, 2, 3]
    card = link.lc.card
    cut_at = link.now
    card.span_fault(0, "cut")                                # type: ignore[attr-defined]
    red = link.peer_event(lambda e: e["event"] == "alarm" and e["alarm"] == "red", within_ms=4000)
    assert 2500 <= red["t_ms"] - cut_at <= 2600, red
    cleared = [e for e in link.peer.named("hangup") if e.get("local")]
    assert sorted((e["call"], e["channel"], e["cause"]) for e in cleared) == [(1, 1, 38), (2, 2, 38), (3, 3, 38)]
    link.run(7000)                                           # a 10 s cut
    card.span_fault(0, "clear")                              # type: ignore[attr-defined]
    link.peer_event(lambda e: e["event"] == "alarm" and e["alarm"] == "none", within_ms=1000)
    link.until(lambda: link.link.dchan == "up", 20_000, "our D-channel up again")
    # the peer holds no call: a new one on TS1 rings it as call 4
    link.send(setup(link, 0x50, 1, Presentation.allowed))
    ring = link.peer_event("ring", within_ms=8000)
    assert (ring["call"], ring["channel"]) == (4, 1)


def test_a_bad_script_line_or_bad_arguments_stop_it_before_it_attaches(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"at_ms": 10, "do": "call"}\n{"at_ms": 20, "nothing": 1}\n')
    sock = str(tmp_path / "nowhere.sock")
    run = subprocess.run([str(BIN), "--socket", sock, "--span", "span1", "--side", "network", "--switch",
                          "euroisdn", "--script", str(bad)], check=False, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and 'not a script line' in run.stderr and '"nothing"' in run.stderr
    run = subprocess.run([str(BIN), "--socket", sock, "--span", "span1", "--side", "both", "--switch", "ni2"],
                         check=False, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and run.stderr.startswith("usage: pri_peer")
    run = subprocess.run([str(BIN), "--socket", sock, "--span", "span1", "--side", "user", "--switch", "ni2"],
                         check=False, capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "cannot connect" in run.stderr


def test_libpri_establishes_the_link_itself_and_each_event_is_read_after_the_step_that_made_it(
        tmp_path: Path, links: list[PriLink]) -> None:
    link = open_link(links, tmp_path, "e1", "pri_cpe", establish=False)
    before = link.now
    up: list[PeerEvent] = []
    while not up:
        assert link.now < 5000, link.peer.events
        link.step()
        new = link.peer.poll()
        assert all(before <= ev["t_ms"] < link.now for ev in new), (before, link.now, new)
        up = [ev for ev in new if ev["event"] == "dchan_up"]
        before = link.now
    link.until(lambda: link.link.dchan == "up", 100, "our D-channel up")
    assert any(isinstance(ev, DlEstablishIndication) for ev in link.heard)     # the peer's SABME, not ours
    assert not any(isinstance(ev, DlEstablishConfirm) for ev in link.heard)


def test_libpri_stays_in_its_own_test_program() -> None:
    """libpri (GPL-2) is linked by pri_peer alone: the product's extensions have no DT_NEEDED on it."""
    root = Path(__file__).resolve().parent.parent.parent

    def needed(path: Path) -> list[str]:
        dyn = subprocess.run(["readelf", "-d", str(path)], check=True, capture_output=True, text=True).stdout
        return [line for line in dyn.splitlines() if "(NEEDED)" in line]

    assert any("libpri" in line for line in needed(BIN))
    sos = sorted((root / "dsp").glob("_kernels*.so")) + sorted((root / "drivers").glob("_card*.so"))
    assert sos
    for so in sos:
        assert not [line for line in needed(so) if "libpri" in line], so
