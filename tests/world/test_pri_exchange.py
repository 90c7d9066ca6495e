"""The world's far exchange on PRI spans (appliance/world/exchange.py): our own stack, other side,
over the sim card's framed spans, against our own stack on the near side (tests/world/pri_near.py)
in virtual time. Its callers' calls arrive with their ANI (type, plan, presentation) and DNIS, their
digits and talk on the B-channel the far side hunted, and are cleared from either end; a full span
fills every B-channel and the next caller is blocked; a group is hunted span after span; calls the
appliance places are taken and answered; the traffic generator places callers on a site's PRI spans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.config.loader import parse_config
from appliance.world import Caller, World
from appliance.world.exchange import DEFAULT_DNIS, PriSpan, pri_spans
from appliance.world.traffic import traffic
from e1t1.isdn.events import CallAlerting, CallAnswered, CallOffered, CallReleased, DchanChanged
from e1t1.isdn.q931 import Npi, Presentation, Ton
from tests.e2e.harness import decode, site_yaml
from tests.signals import frequency, level_dbm0
from tests.world.pri_near import Near

E1_NET = PriSpan(0, "span1", "e1", "network", "euroisdn")
E1_B = (*range(1, 16), *range(17, 32))


def pri_caller(at: int, ani: str = "13800138000", span: str | None = "span1", **kw: object) -> Caller:
    args: dict[str, object] = {"dnis": "075588880001", "digits": "1", "press_after_ms": 1000, "hold_ms": 5000,
                               "patience_ms": 8000, **kw}
    return Caller(trunk=None, span=span, at_ms=at, ani=ani, **args)  # type: ignore[arg-type]


def idle(status: dict[str, object], channels: int = 30) -> bool:
    return status["calls"] == 0 and status["b_idle"] == channels and status["b_busy"] == 0


def test_a_caller_reaches_our_user_side_with_its_numbers_then_its_digits_and_talk_on_its_b_channel() -> None:
    caller = pri_caller(1500)
    world = World([caller], [], zone="cn", keep_audio=True, pri_spans=[E1_NET])
    near = Near(world)
    try:
        near.until(lambda: bool(near.of("span1", CallOffered)), 3000, "the SETUP")
        assert near.of("span1", DchanChanged)[-1].dchan == "up"
        assert world.exchange is not None and world.exchange.status()["span1"]["dchan"] == "up"
        offer = near.of("span1", CallOffered)[0]
        assert (offer.ani, offer.ani_ton, offer.ani_npi, offer.ani_presentation) == \
               ("13800138000", Ton.national, Npi.isdn, Presentation.allowed)
        assert offer.dnis == "075588880001" and offer.complete_by == "sending_complete"
        assert offer.chan == 1                                  # the network side hunts from the lowest
        chan = near.channel(0, 1)
        near.until(lambda: caller.answered_ms is not None, 500, "the CONNECT")
        assert caller.timeslot == 1 and world.answered_by_kind == {"fxo": 0, "pri": 1}
        tap = near.lc.sched.tap(chan, frames=8 * 3000)
        near.run(2500)                                          # its "1", then its talk
        rx, _ = tap.read(8 * 3000)
        near.lc.sched.tap_stop(chan)
        assert near.digits == {chan: "1"}
        talk = np.asarray(rx[-8 * 500:], dtype=float)
        assert abs(frequency(talk) - 1020) <= 2 and abs(level_dbm0(talk) + 10) <= 1
        heard = decode(caller.heard)                            # the near side's ringback, on the same channel
        assert abs(frequency(heard[8 * 200:8 * 1200]) - 450) <= 2
        near.until(lambda: caller.hung_up_ms is not None, 8000, "the caller's patience")
        near.run(500)
        end = near.of("span1", CallReleased)
        assert [(e.cause, e.by_far_end, e.answered) for e in end] == [(16, True, True)]
        assert caller.cause == 16 and caller.connected_ms is None
        assert world.counts == {"offered": 1, "blocked": 0, "answered": 1, "connected": 0, "abandoned": 1,
                                "hung_up": 0, "released": 0}
        assert idle(world.exchange.status()["span1"]) and idle(near.controls[0].status())
        assert world.in_world == 0
    finally:
        near.close()


def test_the_appliance_clearing_or_refusing_a_call_releases_its_caller_with_the_cause() -> None:
    cleared, refused = pri_caller(1500), pri_caller(6000, ani="13800138001")
    world = World([cleared, refused], [], zone="cn", pri_spans=[E1_NET])
    near = Near(world)
    try:
        near.until(lambda: cleared.answered_ms is not None, 3000, "the first call answered")
        near.run(1000)
        near.of("span1", CallOffered)[0].call.hangup()         # the appliance clears it
        near.run(500)
        assert cleared.hung_up_ms is not None and cleared.cause == 16
        assert world.counts["released"] == 1
        near.reject = 1                                         # no route for the next one
        near.until(lambda: refused.hung_up_ms is not None, 6000, "the second call refused")
        assert refused.answered_ms is None and refused.cause == 1 and not refused.blocked
        assert world.counts["released"] == 2 and world.answered_by_kind["pri"] == 1
        near.run(200)
        assert world.exchange is not None and idle(world.exchange.status()["span1"])
        assert idle(near.controls[0].status())
    finally:
        near.close()


def test_a_full_span_fills_every_b_channel_from_the_lowest_and_the_next_caller_is_blocked() -> None:
    callers = [pri_caller(1500 + 20 * i, ani=f"1380013{i:04d}", patience_ms=6000, digits="") for i in range(31)]
    world = World(callers, [], zone="cn", pri_spans=[E1_NET])
    near = Near(world)
    try:
        near.run(4000)
        assert sorted(c.timeslot for c in callers[:30] if c.timeslot is not None) == list(E1_B)
        assert all(c.answered_ms is not None for c in callers[:30])
        assert callers[30].blocked and callers[30].timeslot is None
        assert world.exchange is not None and world.exchange.status()["span1"]["b_busy"] == 30
        near.run(8000)
        assert world.counts == {"offered": 31, "blocked": 1, "answered": 30, "connected": 0, "abandoned": 30,
                                "hung_up": 0, "released": 0}
        assert len(near.of("span1", CallReleased)) == 30
        assert idle(world.exchange.status()["span1"]) and idle(near.controls[0].status())
        assert world.in_world == 0
    finally:
        near.close()


def test_a_t1_far_exchange_on_the_user_side_places_its_callers_from_the_highest_b_channel() -> None:
    # The appliance is pri_net: the far exchange is a user side (NI-2 on T1, mu-law).
    caller = pri_caller(1500, ani="8613800138000", ani_ton="international", ani_pres="restricted")
    world = World([caller], [], zone="us", pri_spans=[PriSpan(0, "span1", "t1", "user", "national")])
    near = Near(world, ("t1",), side="network")
    try:
        near.until(lambda: caller.answered_ms is not None, 3000, "the call answered")
        offer = near.of("span1", CallOffered)[0]
        assert (offer.ani, offer.ani_ton, offer.ani_presentation) == \
               ("8613800138000", Ton.international, Presentation.restricted)
        assert offer.chan == 23 and caller.timeslot == 23
        near.run(2000)
        assert near.digits == {near.channel(0, 23): "1"}
        near.until(lambda: caller.hung_up_ms is not None, 9000, "the caller's patience")
        near.run(300)
        assert world.exchange is not None and idle(world.exchange.status()["span1"], 23)
        assert idle(near.controls[0].status(), 23)
    finally:
        near.close()


def test_a_group_is_hunted_span_after_span() -> None:
    callers = [pri_caller(1500 + 20 * i, ani=f"1380013{i:04d}", span=None, patience_ms=4000, digits="")
               for i in range(32)]
    spans = [E1_NET, PriSpan(1, "span2", "e1", "network", "euroisdn")]
    world = World(callers, [], zone="cn", pri_spans=spans)
    near = Near(world, ("e1", "e1"))
    try:
        near.run(3000)
        assert [c.span for c in callers] == ["span1"] * 30 + ["span2"] * 2
        assert [c.timeslot for c in callers[30:]] == [1, 2]
        assert all(c.answered_ms is not None for c in callers) and world.counts["blocked"] == 0
    finally:
        near.close()


@pytest.mark.parametrize("answer_ms", [1500, None], ids=["answered", "never-answered"])
def test_a_call_the_appliance_places_is_taken_alerted_and_answered_by_the_far_exchange(
        answer_ms: int | None) -> None:
    world = World([], [], zone="cn", pri_spans=[E1_NET], pri_answer_ms=answer_ms)
    near = Near(world)
    try:
        near.until(lambda: near.controls[0].ready, 2000, "the D-channel up")
        call = near.controls[0].place(ani="075588880001", dnis="13900000000", ani_ton="national")
        near.run(500)
        assert near.of("span1", CallAlerting)
        assert [(o.dnis, o.ani, o.timeslot) for o in world.outbound] == [("13900000000", "075588880001", 31)]
        near.run(2000)
        answered = near.of("span1", CallAnswered)
        out = world.outbound[0]
        if answer_ms is None:
            assert not answered and out.answered_ms is None
        else:
            assert answered and out.answered_ms == out.offered_ms + answer_ms
        call.hangup()
        near.run(300)
        assert out.released_ms is not None and out.cause == 16
        assert world.exchange is not None and idle(world.exchange.status()["span1"])
    finally:
        near.close()


def pri_site(tmp: Path, routes: str = "") -> object:
    text = site_yaml(agents=2, trunks=2).replace(
        "spans: []\n", "spans:\n  - {kind: e1, name: span1, signalling: pri_cpe}\n  - {kind: e1, name: span2}\n")
    text = text.replace("routes:\n", "routes:\n" + routes)
    (tmp / "site.yaml").write_text(text)
    return parse_config(text, str(tmp / "site.yaml"))


def test_a_sites_pri_spans_are_the_far_exchanges_with_the_dnis_its_routes_reach(tmp_path: Path) -> None:
    assert pri_spans(pri_site(tmp_path)) == [PriSpan(0, "span1", "e1", "network", "euroisdn", DEFAULT_DNIS)]
    routed = pri_site(tmp_path, "  - {dnis: '075588889999', ivr: main}\n")
    assert pri_spans(routed)[0].dnis == "075588889999"


def test_the_traffic_places_callers_on_the_sites_pri_span_after_its_trunks_draws(tmp_path: Path) -> None:
    cfg = pri_site(tmp_path, "  - {dnis: '075588889999', ivr: main}\n")
    plain = parse_config(site_yaml(agents=2, trunks=2), "site.yaml")
    with_span = [c for c, _ in zip(traffic(cfg, 3600000, 7).callers, range(400), strict=False)]
    without = [c for c, _ in zip(traffic(plain, 3600000, 7).callers, range(400), strict=False)]
    on_span = [c for c in with_span if c.span is not None]
    assert on_span and on_span[0].at_ms == 1500                 # the first at once, as the first trunks'
    assert all(c.span == "span1" and c.dnis == "075588889999" and c.trunk is None for c in on_span)
    trunk_callers = [(c.trunk, c.at_ms, c.ani) for c in with_span if c.span is None]
    assert trunk_callers == [(c.trunk, c.at_ms, c.ani) for c in without][:len(trunk_callers)]
    assert traffic(cfg, 60000, 7).pri_spans == pri_spans(cfg)


def test_the_bench_sites_traffic_fills_its_spans_in_order_against_our_user_side() -> None:
    # The benchmark site (8 E1 pri_cpe spans, 120 phones): the group offered at 300 Erlang, every SETUP
    # answered by our user side at once; nobody is there to take the callers, who give up at their
    # patience. Within the first minute the B-channels fill span after span, each from its lowest.
    from appliance.config.loader import load_config
    from appliance.world.traffic import traffic_world

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "bench-240.yaml")
    world = traffic_world(cfg, 60000, 3, offered_erlang=300.0, mean_patience_s=600.0)
    near = Near(world, ("e1",) * 8, ports=("fxs",) * 120, k=5)
    try:
        near.run(60000)
        c = world.counts
        assert c["offered"] > 60 and c["blocked"] == 0 and c["answered"] == c["offered"]
        busy = {name: s["b_busy"] for name, s in world.exchange.status().items()} if world.exchange else {}
        full = [name for name, n in busy.items() if n == 30]
        assert full and list(busy)[:len(full)] == full                       # the first spans full
        assert sum(busy.values()) == world.pri_calls == c["offered"] - c["abandoned"]
        assert world.answered_by_kind == {"fxo": 0, "pri": c["answered"]}
        for i, cc in enumerate(near.controls):                               # both ends agree
            assert cc.status()["b_busy"] == busy[f"span{i + 1}"]
    finally:
        near.close()


def test_the_far_exchange_survives_a_cut_cable_and_takes_calls_again_once_it_is_mended() -> None:
    # Three calls up, then the cable is cut for 30 s (the near end, which has no alarm handling
    # here, sees it as its link does): neither end hears the other, both data links give up (T203,
    # then N200 polls), the calls clear after T309 (27) at both ends, callers meanwhile are blocked;
    # once mended the links come back by themselves and the next caller's call connects.
    callers = [pri_caller(1500 + 100 * i, ani=f"1380013{i:04d}", patience_ms=90000, digits="") for i in range(3)]
    during = pri_caller(25000, ani="13800138098", digits="")
    late = pri_caller(40000, ani="13800138099", patience_ms=5000, digits="")
    world = World([*callers, during, late], [], zone="cn", pri_spans=[E1_NET])
    near = Near(world)
    try:
        near.until(lambda: all(c.answered_ms is not None for c in callers), 3000, "three calls up")
        near.run(1000)                                          # every CONNECT ACKNOWLEDGE across
        cut_at = near.now
        near.fault(0, "cut")
        near.run(30000)
        assert [c.cause for c in callers] == [27, 27, 27]
        assert all(cut_at + 10000 < (c.hung_up_ms or 0) < cut_at + 30000 for c in callers)
        assert [e.cause for e in near.of("span1", CallReleased)] == [27, 27, 27]
        assert during.blocked                                   # no D-channel: the exchange cannot place it
        near.fault(0, "clear")
        near.until(lambda: late.answered_ms is not None, 10000, "a call after the cut")
        assert world.counts["released"] == 3 and world.counts["blocked"] == 1
        assert late.timeslot == 1 and not late.blocked
    finally:
        near.close()
