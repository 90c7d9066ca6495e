"""PRI calls through the engine against libpri (pri_peer), in virtual time: on both sides of the span (our
pri_cpe against libpri's network side, our pri_net against its user side) and both switch types (E1
EuroISDN, T1 NI-2 with mu-law), offered calls reach the IVR and are cleared from either side, their CDRs
carrying the span, the timeslot, the ANI's attributes and the cause; overlap receiving routes on the
exact match of a route's DNIS, a number with no match clears with 28 at T302 and an en-bloc one without a
route at once with 1 (both recorded rejected); 30 calls at once on an E1 (23 on a T1) all reach the IVR
and are cleared with nothing left; NI-2 SERVICE shows in span status.

The engine places no PRI call of its own yet (no outbound path: dial-out from agents' phones is the
outbound issue's), so "both ways" here is both sides of the span, each receiving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.world import PhoneScript
from tests.e2e.harness import site_yaml
from tests.e2e.pri_site import ANI, HOTEL_DNIS, PriSite, call, pri_site_yaml
from tests.peers.pri_peer import BIN
from tests.signals import level_dbm0

pytestmark = pytest.mark.skipif(not BIN.exists(), reason="tests/peers/bin/pri_peer is not built (make setup)")

# (kind, our signalling), and the B-channel the far end's hunting gives the first call: libpri's network side
# the lowest, its user side the highest
SIDES = [("e1", "pri_cpe", 1), ("e1", "pri_net", 31), ("t1", "pri_cpe", 1), ("t1", "pri_net", 23)]
IDS = ["e1-user", "e1-network", "t1-user", "t1-network"]
PHONE = 2           # site_yaml: two trunks, then the phones


def site(tmp_path: Path, kind: str, signalling: str, script: list[dict[str, Any]],
         phones: tuple[PhoneScript, ...] = (), extra: str = "", agents: int = 1, **kw: Any) -> PriSite:
    text = pri_site_yaml(site_yaml(agents=agents), kind, signalling, extra)
    return PriSite(tmp_path, text, list(phones), kind=kind, signalling=signalling, script=script, **kw)


def cdr_fields(cdr: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(cdr[n] for n in names)


@pytest.mark.parametrize(("kind", "signalling", "ts"), SIDES, ids=IDS)
def test_a_call_reaches_the_ivr_and_the_caller_clears_it(tmp_path: Path, kind: str, signalling: str,
                                                          ts: int) -> None:
    ps = site(tmp_path, kind, signalling, [call(1500, pres="restricted"), {"at_ms": 6000, "do": "hangup", "call": 1,
                                                                        "cause": 16}])
    try:
        ps.up()
        answer = ps.peer_event("answer", 2000)
        assert answer["channel"] == ts
        assert [c.state.name for c in ps.engine.calls.values()] == ["IVR"]
        st = ps.pri_status()
        assert {k: st[k] for k in ("side", "switch", "dchan", "calls", "b_busy")} == {
            "side": "user" if signalling == "pri_cpe" else "network",
            "switch": "euroisdn" if kind == "e1" else "national", "dchan": "up", "calls": 1, "b_busy": 1}
        ps.until(lambda: not ps.engine.calls, 6000, "the caller's clearing")
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    [cdr] = ps.cdrs()
    assert cdr_fields(cdr, "trunk", "timeslot", "ani", "ani_ton", "ani_npi", "ani_presentation", "dnis", "disposition",
                      "cause") == ("span1", ts, ANI, "national", "isdn", "restricted", HOTEL_DNIS, "ivr_hangup", 16)


@pytest.mark.parametrize(("kind", "signalling", "ts"), [SIDES[0], SIDES[3]], ids=[IDS[0], IDS[3]])
def test_the_agent_hangs_up_and_we_clear_the_call_with_16(tmp_path: Path, kind: str, signalling: str,
                                                          ts: int) -> None:
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0, answer_after_ms=2000, hang_up_after_ms=3000)
    ps = site(tmp_path, kind, signalling, [call(1500), {"at_ms": 3500, "do": "dtmf", "call": 1, "digits": "1"}],
              (phone,))
    try:
        ps.up()
        hangup = ps.peer_event("hangup", 15000)            # our DISCONNECT, when the agent hung up
        assert (hangup["channel"], hangup["cause"]) == (ts, 16)
        assert phone.answered and hangup["t_ms"] - phone.answered[0] >= 3000
        ps.run(500)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    [cdr] = ps.cdrs()
    assert cdr_fields(cdr, "trunk", "timeslot", "queue", "agent", "disposition", "cause") == \
        ("span1", ts, "front_desk", "1001", "answered", 16)


def test_overlap_receiving_routes_on_the_exact_dnis(tmp_path: Path) -> None:
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500, "0755", complete=False),
                                          {"at_ms": 2000, "do": "info", "call": 1, "digits": "88880000"}])
    try:
        ps.up()
        ps.peer_event("setup_ack", 1000)                   # overlap receiving: SETUP ACKNOWLEDGE
        answer = ps.peer_event("answer", 2000)
        assert answer["t_ms"] < 2000 + 8 * 30 + 100          # at the digit that made the match, not T302
        [c] = ps.engine.calls.values()
        assert (c.dnis, c.state.name) == (HOTEL_DNIS, "IVR")
        ps.do({"do": "hangup", "call": 1, "cause": 16})
        ps.until(lambda: not ps.engine.calls, 1000, "the call over")
    finally:
        assert ps.close() == 0
    assert [cdr_fields(c, "dnis", "disposition", "cause") for c in ps.cdrs()] == [(HOTEL_DNIS, "ivr_hangup", 16)]


def test_an_overlap_number_without_a_route_clears_with_28_at_t302(tmp_path: Path) -> None:
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500, "0755", complete=False),
                                          {"at_ms": 2000, "do": "info", "call": 1, "digits": "1234"}])
    try:
        ps.up()
        ps.peer_event("setup_ack", 1000)
        hangup = ps.peer_event("hangup", 20000)
        last_digit = 2000 + 3 * 30                            # the peer's INFORMATION go out a few ms apart
        assert hangup["cause"] == 28
        assert 15000 <= hangup["t_ms"] - 2000 <= 15000 + last_digit - 2000 + 100
        assert ps.peer.named("answer") == []
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    [cdr] = ps.cdrs()
    assert cdr_fields(cdr, "trunk", "dnis", "disposition", "cause", "answer_ms", "queue") == \
        ("span1", "07551234", "rejected", 28, None, None)
    assert 1500 <= cdr["start_ms"] <= 1600 and cdr["end_ms"] - cdr["start_ms"] > 15000   # from its SETUP on


def test_a_caller_who_hangs_up_while_dialling_is_recorded_abandoned(tmp_path: Path) -> None:
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500, "0755", complete=False),
                                          {"at_ms": 2000, "do": "info", "call": 1, "digits": "88"},
                                          {"at_ms": 4000, "do": "hangup", "call": 1, "cause": 16}])
    try:
        ps.up()
        ps.peer_event("setup_ack", 1000)
        ps.peer_event("hangup", 4000)
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    [cdr] = ps.cdrs()
    assert cdr_fields(cdr, "trunk", "ani", "dnis", "disposition", "cause", "answer_ms", "queue", "timeslot") == \
        ("span1", ANI, "075588", "abandoned", 16, None, None, 1)
    assert 1500 <= cdr["start_ms"] <= 1600 and 4000 <= cdr["end_ms"] <= 4200


def test_an_overlap_number_growing_past_32_digits_is_cleared_with_28_and_recorded(tmp_path: Path) -> None:
    """A far end that never stops sending digits (74 of them, in INFORMATION after INFORMATION): the call
    is cleared with 28 at the 33rd, recorded rejected with the number as far as it was one; the engine
    goes on and takes the next call."""
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500, "0755", complete=False)]
              + [{"at_ms": 2000 + 40 * i, "do": "info", "call": 1, "digits": "1234567890"} for i in range(7)]
              + [call(4000)])
    try:
        ps.up()
        hangup = ps.peer_event("hangup", 3000)
        assert (hangup["call"], hangup["cause"]) == (1, 28)
        assert ps.peer_event("answer", 3000)["call"] == 2
        ps.do({"do": "hangup", "call": 2, "cause": 16})
        ps.until(lambda: not ps.engine.calls, 1000, "the second call over")
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    rows = sorted(ps.cdrs(), key=lambda r: r["start_ms"])
    assert [cdr_fields(r, "ani", "dnis", "disposition", "cause") for r in rows] == [
        (ANI, "0755" + "1234567890" * 2 + "12345678", "rejected", 28), (ANI, HOTEL_DNIS, "ivr_hangup", 16)]


def test_an_en_bloc_number_without_a_route_is_refused_with_1(tmp_path: Path) -> None:
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500, "0755999")])
    try:
        ps.up()
        hangup = ps.peer_event("hangup", 1000)
        assert hangup["cause"] == 1 and hangup["t_ms"] - 1500 < 100
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    [cdr] = ps.cdrs()
    assert cdr_fields(cdr, "dnis", "disposition", "cause", "timeslot", "ani") == ("0755999", "rejected", 1, 1, ANI)


@pytest.mark.parametrize(("kind", "n"), [("e1", 30), ("t1", 23)])
def test_every_b_channel_at_once_reaches_the_ivr_and_is_cleared_with_nothing_left(tmp_path: Path, kind: str,
                                                                                  n: int) -> None:
    script = [call(1500 + 20 * i, ani=f"1380013{8000 + i:04d}") for i in range(n)]
    ps = site(tmp_path, kind, "pri_cpe", script)
    try:
        ps.up()
        ps.until(lambda: len(ps.peer.named("answer")) == n, 3000, f"{n} answers")
        channels = sorted(e["channel"] for e in ps.peer.named("answer"))
        assert channels == sorted(ps.span.chan_of)              # every B-channel: E1 1-15, 17-31; T1 1-23
        ps.run(500)
        calls = list(ps.engine.calls.values())
        assert len(calls) == n and {c.state.name for c in calls} == {"IVR"}
        st = ps.pri_status()
        assert (st["calls"], st["b_busy"], st["b_idle"]) == (n, n, 0)
        # each B-channel carries its greeting
        taps = {ts: ps.tap(ts, 600) for ts in ps.span.chan_of}
        ps.run(500)
        for ts, tap in taps.items():
            _, tx = tap.read(8 * 600)
            assert level_dbm0(np.array(tx[-2000:], dtype=float)) > -40, ts
            ps.engine.tier_.sched.tap_stop(ps.chan(ts))
        for i in range(n):
            ps.do({"do": "hangup", "call": i + 1, "cause": 16})
        ps.until(lambda: not ps.engine.calls, 2000, "every call cleared")
        ps.run(500)
        ps.nothing_leaked()
        # the B-channels are silent: nothing of ours goes out on them
        taps = {ts: ps.tap(ts, 300) for ts in ps.span.chan_of}
        ps.run(300)
        for ts, tap in taps.items():
            _, tx = tap.read(8 * 300)
            assert len(tx) >= 2000 and max(abs(x) for x in tx[-2000:]) <= 8, ts
    finally:
        assert ps.close() == 0
    rows = ps.cdrs()
    assert len(rows) == n and {(r["disposition"], r["cause"]) for r in rows} == {("ivr_hangup", 16)}
    assert sorted(r["timeslot"] for r in rows) == sorted(ps.span.chan_of)


def test_ni2_service_takes_a_b_channel_out_and_span_status_shows_it(tmp_path: Path) -> None:
    ps = site(tmp_path, "t1", "pri_cpe", [{"at_ms": 1500, "do": "service", "channel": 5, "status": "out_of_service"},
                                          {"at_ms": 3000, "do": "service", "channel": 5, "status": "in_service"}])
    try:
        ps.up()
        ack = ps.peer_event("service_ack", 1000)
        assert ack["channel"] == 5
        st = ps.pri_status()
        assert (st["b_out_of_service"], st["b_idle"]) == (1, 22)
        ps.peer_event(lambda e: e["event"] == "service_ack" and e["status"] == "in_service", 2000)
        st = ps.pri_status()
        assert (st["b_out_of_service"], st["b_idle"]) == (0, 23)
    finally:
        assert ps.close() == 0


def test_a_stop_clears_the_pri_calls_with_16_and_records_them(tmp_path: Path) -> None:
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500), call(1550, ani="13900139000")])
    try:
        ps.up()
        ps.until(lambda: len(ps.peer.named("answer")) == 2, 1000, "2 answers")
        ps.run(1000)
        assert ps.engine.shutdown(10.0)
        hangups = ps.peer.named("hangup")
        assert sorted((e["call"], e["cause"]) for e in hangups) == [(1, 16), (2, 16)]
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    assert sorted((r["ani"], r["disposition"], r["cause"]) for r in ps.cdrs()) == [
        (ANI, "shutdown", 16), ("13900139000", "shutdown", 16)]


def test_a_call_the_engine_must_refuse_is_cleared_with_congestion_and_not_recorded(tmp_path: Path) -> None:
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500)])
    try:
        # the records' backpressure (the engine's hook: its writer holds too many records) refuses new calls
        ps.engine.call_layer.refuse_new = lambda: "records are held in memory and not safe (records_backpressure)"
        ps.up()
        hangup = ps.peer_event("hangup", 1000)
        assert hangup["cause"] == 42 and ps.peer.named("answer") == []
        assert ps.site.request("status")["counters"]["calls_refused"] == 1
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    assert ps.cdrs() == []


def test_a_setup_refused_for_its_busy_exclusive_channel_is_recorded_rejected_with_44(tmp_path: Path) -> None:
    """The far end asks for B5, exclusively, while a call holds it: RELEASE COMPLETE 44, and the caller who
    tried is in the CDRs (rejected, 44, the timeslot asked for, the numbers as sent); the call on B5 goes on."""
    ps = site(tmp_path, "e1", "pri_cpe", [call(1500, channel=5, exclusive=True),
                                          call(2500, ani="13900139000", pres="restricted", channel=5, exclusive=True),
                                          {"at_ms": 4000, "do": "hangup", "call": 1, "cause": 16}])
    try:
        ps.up()
        assert ps.peer_event("answer", 2000)["channel"] == 5
        refused = ps.peer_event("hangup", 2000)
        assert (refused["call"], refused["cause"]) == (2, 44)
        assert [c.state.name for c in ps.engine.calls.values()] == ["IVR"]     # the first call is untouched
        ps.until(lambda: not ps.engine.calls, 3000, "the first call's clearing")
        ps.run(200)
        ps.nothing_leaked()
    finally:
        assert ps.close() == 0
    rows = sorted(ps.cdrs(), key=lambda r: r["start_ms"])
    assert [cdr_fields(r, "ani", "ani_presentation", "dnis", "timeslot", "disposition", "cause") for r in rows] == [
        (ANI, "allowed", HOTEL_DNIS, 5, "ivr_hangup", 16),
        ("13900139000", "restricted", HOTEL_DNIS, 5, "rejected", 44)]
