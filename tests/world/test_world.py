"""The world at work on an engine: the exchange hunts a trunk group, counts its callers' outcomes and
lets traffic callers go; its Python work in a quiet period does not grow with the site; a phone's
caller ID receiver runs only while it rings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.config.loader import parse_config
from appliance.engine import Engine
from appliance.world import Caller, PhoneScript, World
from appliance.world.traffic import traffic_world
from drivers.hal import EventType
from tests.e2e.harness import site_yaml

HOLD = 8000


def engine_for(tmp: Path, text: str, world: World) -> Engine:
    (tmp / "site.yaml").write_text(text)
    return Engine(tmp, parse_config(text, "site.yaml"), 1, clock="virtual", world=world)


def test_the_exchange_hunts_the_lowest_free_trunk_and_blocks_when_none_is(tmp_path: Path) -> None:
    # Three trunks, one agent: the first three callers take trunks 0, 1, 2 as they come, the fourth
    # finds none; long after all three are gone, the fifth takes trunk 0 again.
    callers = [Caller(trunk=None, at_ms=at, ani=f"1390000000{i}", press_after_ms=1000, hold_ms=HOLD,
                      patience_ms=15000, cid=None) for i, at in enumerate((5000, 5600, 6200, 6800, 70000))]
    phone = PhoneScript(port=3, agent="1001", login_at_ms=0, answer_after_ms=2500)
    world = World(callers, [phone], zone="cn", trunk_cid={0: "fsk_bell202", 1: "fsk_bell202", 2: "fsk_bell202"})
    engine = engine_for(tmp_path, site_yaml(agents=1, trunks=3), world)
    try:
        engine.run_for(90000)
    finally:
        engine.close()
    assert [c.trunk for c in callers] == [0, 1, 2, None, 0]
    assert [c.blocked for c in callers] == [False, False, False, True, False]
    assert [c.cid for c in callers] == ["fsk_bell202"] * 3 + [None, "fsk_bell202"]   # the trunk's standard
    assert world.callers == callers                               # a scenario keeps its callers
    assert all(c.answered_ms is not None for c in callers if not c.blocked)
    connected = [c for c in callers if c.connected_ms is not None]
    assert connected and all(c.hung_up_ms == (c.connected_ms or 0) + HOLD for c in connected)
    gave_up = [c for c in callers if not c.blocked and c.connected_ms is None]
    assert world.counts == {"offered": 5, "blocked": 1, "answered": 4, "connected": len(connected),
                            "abandoned": len(gave_up), "hung_up": len(connected), "released": 0}
    assert world.in_world == 0


def quiet_world(text: str, nphones: int) -> World:
    """Phones that log in at once; callers not due for an hour, one per trunk."""
    phones = [PhoneScript(port=nphones + i, agent=f"{1001 + i}", login_at_ms=25 * i) for i in range(nphones)]
    callers = [Caller(trunk=i, at_ms=3600000 + i) for i in range(nphones)]
    return World(callers, phones, zone="cn")


def python_work(world: World, now: int, period: int, periods: int) -> tuple[int, int]:
    """What the world does in `periods` quiet periods: Python lines run, and functions called (C ones too)."""
    lines = calls = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
        return trace

    def prof(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.settrace(trace)
    sys.setprofile(prof)
    try:
        for i in range(periods):
            world.before_period(now + i * period, period)
            world.after_period(now + (i + 1) * period)
    finally:
        sys.setprofile(None)
        sys.settrace(None)
    return lines, calls


def test_a_quiet_periods_python_work_does_not_grow_with_the_site(tmp_path: Path) -> None:
    counts: dict[int, tuple[int, int]] = {}
    for n in (12, 120):
        state = tmp_path / str(n)
        state.mkdir()
        world = quiet_world(site_yaml(agents=n, trunks=n), n)
        engine = engine_for(state, site_yaml(agents=n, trunks=n), world)
        try:
            engine.run_for(12000)          # every agent logged in, every phone on hook again
            now, period = engine.clock.now_ms, engine.period_ms
            counts[n] = python_work(world, now, period, 50)
        finally:
            engine.close()
    assert counts[12] == counts[120], counts
    lines, calls = counts[12]
    assert lines < 50 * 80 and calls < 50 * 30, counts     # a few dozen a period


def ringing_site(tmp_path: Path, answer_after_ms: int = 3500,
                 **world_args: Any) -> tuple[World, Caller, PhoneScript, list[tuple[str, int, int]]]:
    caller = Caller(trunk=0, at_ms=8000, ani="13911112222", press_after_ms=1000, hold_ms=HOLD)
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=answer_after_ms)
    world = World([caller], [phone], zone="cn", **world_args)
    engine = engine_for(tmp_path, site_yaml(agents=2, trunks=2), world)
    seen: list[tuple[str, int, int]] = []
    assert world.fm is not None
    fsk_rx = world.fm.fsk_rx

    def spy(chan: int, standard: str | None) -> None:
        seen.append(("on" if standard else "off", chan, engine.clock.now_ms))
        fsk_rx(chan, standard)

    world.fm.fsk_rx = spy  # type: ignore[method-assign]
    try:
        engine.run_for(40000)
    finally:
        engine.close()
    return world, caller, phone, seen


def first_ring_end(phone: PhoneScript) -> int:
    return next(tick for tick, typ in phone.rings if typ == EventType.RING_OFF)


def test_the_phones_caller_id_receiver_runs_only_from_ring_1s_end_until_the_caller_id_came(tmp_path: Path) -> None:
    # China: rings of 1 s every 5 s; the caller ID comes in the gap after ring 1, the phone answers
    # 3.5 s after the ringing started (in that gap, after the caller ID).
    _, caller, phone, seen = ringing_site(tmp_path)
    assert caller.connected_ms is not None
    assert phone.caller_ids == [caller.ani]                  # still heard in full
    assert [(what, chan) for what, chan, _ in seen] == [("on", 2), ("off", 2)]   # once; never the idle phone's
    (_, _, on), (_, _, off) = seen
    assert phone.rings and phone.answered
    assert first_ring_end(phone) <= on <= first_ring_end(phone) + 20   # not during ring 1
    assert off < phone.answered[0]                            # the caller ID came: no waiting for the answer


class CountingSignals:
    """spandsp's far side, counting its caller ID readers and what they were fed."""

    def __init__(self) -> None:
        from tests.peers.spandsp_far import SpandspSignals

        self.inner = SpandspSignals()
        self.readers = 0
        self.fed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def caller_id_reader(self, standard: str, law: str) -> Any:
        self.readers += 1
        reader = self.inner.caller_id_reader(standard, law)
        outer = self

        class Counted:
            def feed(self, octets: bytes) -> list[str | None]:
                outer.fed += 1
                return reader.feed(octets)

        return Counted()


def test_spandsps_reader_of_the_phones_caller_id_is_fed_only_from_ring_1s_end_until_it_came(tmp_path: Path) -> None:
    signals = CountingSignals()
    _, caller, phone, _ = ringing_site(tmp_path, signals=signals)
    assert phone.caller_ids == [caller.ani]
    assert signals.readers == 1
    gap = phone.answered[0] - first_ring_end(phone)                   # ring 1's end to the answer
    assert 0 < signals.fed * 10 < gap, (signals.fed, gap)


def test_a_phone_answered_during_ring_1_never_starts_its_caller_id_receiver(tmp_path: Path) -> None:
    # Picked up 200 ms into the first ring: the card stops ringing after the answer, and that ring's
    # end must not start an on-hook receiver listening to the call.
    signals = CountingSignals()
    _, caller, phone, _ = ringing_site(tmp_path, answer_after_ms=200, signals=signals)
    assert caller.connected_ms is not None and phone.answered
    assert signals.readers == 0 and signals.fed == 0


def burst(n: int, gap_ms: int) -> Iterator[Caller]:
    for i in range(n):
        yield Caller(trunk=None, at_ms=2000 + i * gap_ms, ani=f"1390000{i:04d}", press_after_ms=1000,
                     hold_ms=5000, patience_ms=10000, cid=None)


def test_traffic_callers_are_let_go_once_finished_and_counted(tmp_path: Path) -> None:
    text = site_yaml(agents=2, trunks=2)
    phones = [PhoneScript(port=2 + i, agent=f"{1001 + i}", login_at_ms=0) for i in range(2)]
    world = World(burst(40, 1500), phones, zone="cn", trunk_cid={0: "fsk_bell202", 1: "fsk_bell202"})
    engine = engine_for(tmp_path, text, world)
    try:
        engine.run_for(2000 + 40 * 1500 + 60000)
    finally:
        engine.close()
    c = world.counts
    assert world.callers == [] and world.in_world == 0
    assert c["offered"] == 40
    assert c["blocked"] > 0 and c["connected"] > 0
    assert c["blocked"] + c["abandoned"] + c["hung_up"] + c["released"] == 40
    assert c["answered"] == 40 - c["blocked"]
    for p in phones:                            # a phone keeps only its newest observations
        assert 0 < len(p.rings) <= 64


def test_a_traffic_world_runs_the_bench_sites_analog_variant_with_the_group_offered(tmp_path: Path) -> None:
    from bench.virtual_hour import analog_variant

    cfg = analog_variant()
    world = traffic_world(cfg, 60000, 1, offered_erlang=150.0)
    engine = Engine(tmp_path, cfg, 1, clock="virtual", world=world)
    try:
        engine.run_for(70000)          # a minute's callers, and time for the last to be answered
    finally:
        engine.close()
    c = world.counts
    assert c["offered"] > 20 and c["blocked"] == 0       # 120 trunks: the first minute's callers all fit
    assert c["answered"] == c["offered"]
    assert world.in_world == c["offered"] - (c["abandoned"] + c["hung_up"] + c["released"])
