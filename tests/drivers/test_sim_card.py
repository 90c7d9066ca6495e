"""The sim card alone (no media tier): line states, events with their ticks, far-side audio."""

from __future__ import annotations

from typing import Any

import pytest

import drivers
from drivers.base import CardDescription
from drivers.errors import DriverInitError, DriverNotFoundError, DriverOperationError, NoDeviceError
from drivers.hal import CmdOp, EventType, LineEvent
from drivers.sim import SimCard, ffi, lib

IDLE_ALAW = 0xD5


class Bench:
    """Steps a sim card block by block with idle transmit audio, collecting card events."""

    def __init__(self, desc: CardDescription) -> None:
        card = drivers.open_card("sim", desc)
        assert isinstance(card, SimCard)
        self.card = card
        self.n = len(card.channels)
        self.k = desc.k
        self.tx = ffi.new("uint8_t[]", self.n * self.k * 8)
        ffi.memmove(self.tx, bytes([IDLE_ALAW]) * (self.n * self.k * 8), self.n * self.k * 8)
        self.rx = ffi.new("uint8_t[]", self.n * self.k * 8)
        self.ev = ffi.new("cb_event_t[]", 256)
        self.events: list[LineEvent] = []

    def step(self, ticks: int) -> None:
        for _ in range(ticks // self.k):
            n = lib.cb_sim_exchange(self.card.sim, self.card.tick, self.k, self.tx, self.rx, self.ev, 256)
            assert n >= 0
            self.events += [LineEvent(int(e.tick), int(e.chan), int(e.type), int(e.value), int(e.extra))
                            for e in self.ev[0:min(n, 256)]]   # n: raised; at most 256 handed over

    def command(self, op: int, chan: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0) -> int:
        cmd: Any = ffi.new("cb_cmd_t *")
        cmd.op, cmd.chan, cmd.a, cmd.b, cmd.c, cmd.d = op, chan, a, b, c, d
        return int(lib.cb_sim_command(self.card.sim, cmd))

    def take(self) -> list[tuple[int, int, int]]:
        out = [(e.tick, e.chan, e.type) for e in self.events]
        self.events = []
        return out


@pytest.fixture(params=[1, 4, 10], ids=lambda k: f"k{k}")
def bench(request: pytest.FixtureRequest) -> Any:
    b = Bench(CardDescription(ports=("fxo", "fxs", "fxs"), spans=("e1", "t1"), k=request.param))
    yield b
    b.card.close()


def test_channels_are_ports_then_timeslots(bench: Bench) -> None:
    kinds = [c.kind for c in bench.card.channels]
    assert kinds[:3] == ["fxo", "fxs", "fxs"]
    assert kinds[3:] == ["ts"] * (31 + 24)
    assert bench.card.channels[3].timeslot == 1 and bench.card.channels[3 + 31].span == 1
    assert [lib.cb_sim_chan_kind(bench.card.sim, i) for i in (0, 1, 3)] == [
        lib.CB_CHAN_FXO, lib.CB_CHAN_FXS, lib.CB_CHAN_TS]


def test_phone_hook_flash_bounce_and_hangup_carry_their_ticks(bench: Bench) -> None:
    far = bench.card.far
    far.hook(1, True, at_tick=13)            # off hook
    far.hook(1, False, at_tick=500)          # 50 ms on hook: bounce, ignored
    far.hook(1, True, at_tick=550)
    far.hook(1, False, at_tick=1000)         # 400 ms on hook: a flash
    far.hook(1, True, at_tick=1400)
    far.hook(1, False, at_tick=2000)         # on hook for good: hang-up after 1250 ms
    bench.step(3400)
    ev = bench.events
    assert [(e.tick, e.type) for e in ev] == [
        (13, EventType.HOOK_OFF), (1400, EventType.FLASH), (2000, EventType.HOOK_ON)]
    assert ev[1].extra == 400
    assert all(e.chan == 1 for e in ev)


def test_flash_window_edges(bench: Bench) -> None:
    far = bench.card.far
    far.hook(2, True, at_tick=10)
    far.hook(2, False, at_tick=100)
    far.hook(2, True, at_tick=199)           # 99 ms: bounce
    far.hook(2, False, at_tick=300)
    far.hook(2, True, at_tick=400)           # 100 ms: flash
    far.hook(2, False, at_tick=500)
    far.hook(2, True, at_tick=1750)          # 1250 ms: a hang-up, then a new off hook
    bench.step(1800)
    assert [(t, typ) for t, _, typ in bench.take()] == [
        (10, EventType.HOOK_OFF), (400, EventType.FLASH), (500, EventType.HOOK_ON), (1750, EventType.HOOK_OFF)]


def test_exchange_side_ring_battery_polarity_on_fxo(bench: Bench) -> None:
    far = bench.card.far
    far.ring(0, True, at_tick=20)
    far.ring(0, False, at_tick=1020)
    far.signal(0, EventType.POLARITY, 1, at_tick=1500)
    far.signal(0, EventType.BATTERY, 0, at_tick=1600)
    far.signal(0, EventType.BATTERY, 1, at_tick=1700)
    bench.step(2000)
    assert bench.take() == [
        (20, 0, EventType.RING_ON), (1020, 0, EventType.RING_OFF), (1500, 0, EventType.POLARITY),
        (1600, 0, EventType.BATTERY), (1700, 0, EventType.BATTERY)]


def test_our_answer_trips_the_exchanges_ringing_so_the_next_call_rings(bench: Bench) -> None:
    far = bench.card.far
    on, off = EventType.RING_ON, EventType.RING_OFF
    far.ring(0, True, at_tick=20)
    bench.step(500)
    answer = bench.card.tick
    assert bench.command(CmdOp.HOOK, 0, 1) == 0      # answered during the burst; the exchange says nothing more
    bench.step(500)
    late = bench.card.tick + 40
    far.ring(0, True, at_tick=late)                   # a ring on a line off hook is tripped at once
    bench.step(500)
    assert bench.command(CmdOp.HOOK, 0, 0) == 0
    bench.step(500)
    again = bench.card.tick + 100
    far.ring(0, True, at_tick=again)                  # the next call's first ring
    bench.step(500)
    assert bench.take() == [(20, 0, on), (answer, 0, off), (late, 0, on), (late, 0, off), (again, 0, on)]


def test_ring_cadence_exact_and_ring_trip(bench: Bench) -> None:
    bench.step(bench.k * 3)
    start = bench.card.tick
    assert bench.command(CmdOp.RING, 1, 400, 200, 400, 2000) == 0
    bench.step(6000)
    seen = [(e.tick - start, e.type) for e in bench.card.far.poll()]
    on, off = EventType.RING_ON, EventType.RING_OFF
    assert seen[:8] == [(0, on), (400, off), (600, on), (1000, off), (3000, on), (3400, off), (3600, on),
                        (4000, off)]
    # The phone answers 100 ms into a ring burst: ringing stops at that very tick (ring trip).
    answer = start + 6100
    bench.card.far.hook(1, True, at_tick=answer)
    bench.step(3000)
    seen = [(e.tick - start, e.type) for e in bench.card.far.poll()]
    assert seen == [(6000, on), (6100, off)]
    assert bench.take()[-1] == (answer, 1, EventType.HOOK_OFF)


def test_commands_to_the_wrong_kind_of_port_are_refused(bench: Bench) -> None:
    assert bench.command(CmdOp.RING, 0, 1000, 4000) == lib.CB_ERR_INVALID       # FXO cannot ring
    assert bench.command(CmdOp.HOOK, 1, 1) == lib.CB_ERR_INVALID                 # FXS has no hook of ours
    assert bench.command(CmdOp.FLASH, 0, 750) == lib.CB_ERR_STATE                # on hook: nothing to flash
    assert bench.command(CmdOp.RING, 99, 1000, 4000) == lib.CB_ERR_INVALID       # a timeslot
    with pytest.raises(DriverOperationError, match=r"far-side RING_ON on channel 1"):
        bench.card.far.ring(1, True)                                             # the exchange rings FXO only


def test_our_hook_and_flash_on_a_trunk_seen_by_the_exchange(bench: Bench) -> None:
    assert bench.command(CmdOp.HOOK, 0, 1) == 0
    bench.step(100)
    assert bench.command(CmdOp.FLASH, 0, 750) == 0
    t_flash = bench.card.tick
    bench.step(1000)
    seen = [(e.tick, e.type) for e in bench.card.far.poll()]
    assert seen == [(0, EventType.HOOK_OFF), (t_flash, EventType.HOOK_ON), (t_flash + 750, EventType.HOOK_OFF)]


def test_far_side_audio_both_ways_and_idle(bench: Bench) -> None:
    k = bench.k
    for _ in range(20 // k + 1):
        bench.step(k)                                # channels 5 and 6 are E1 timeslots: framed first
    pattern = bytes(range(256)) * 2
    assert bench.card.far.write(5, pattern) == len(pattern)
    bench.card.far.listen(6)
    ffi.memmove(bench.tx + 6 * k * 8, bytes([0x11]) * (k * 8), k * 8)
    got = b""
    blocks = len(pattern) // (k * 8) + 4
    for _ in range(blocks):
        bench.step(k)
        got += bytes(ffi.buffer(bench.rx + 5 * k * 8, k * 8))
    at = got.index(pattern)          # whole, after the line's latency: a tick and the elastic store's frame
    assert at <= 9 and set(got[:at]) <= {IDLE_ALAW}
    assert set(got[at + len(pattern):]) == {IDLE_ALAW}   # nothing queued: idle octets
    heard = bench.card.far.read(6)
    assert set(heard[16:]) == {0x11} and len(heard) == blocks * k * 8
    assert bench.card.far.read(7) == b""            # not listening: nothing kept


@pytest.mark.parametrize(
    ("desc", "message"),
    [
        (dict(ports=("fxo", "fxx")), "port 1: kind must be 'fxo' or 'fxs', not 'fxx'"),
        (dict(spans=("e3",)), "span 0: kind must be 'e1' or 't1', not 'e3'"),
        (dict(ports=("fxo",), k=11), "k (ticks per block) must be 1-10, not 11"),
        (dict(ports=("fxo",), law="slinear"), "law must be 'alaw' or 'ulaw', not 'slinear'"),
        (dict(), "a card needs at least one port or span"),
    ],
)
def test_bad_descriptions_say_what_is_wrong(desc: dict[str, Any], message: str) -> None:
    with pytest.raises(DriverInitError) as exc:
        CardDescription(**desc)
    assert str(exc.value) == message


def test_registry_selects_by_name() -> None:
    with pytest.raises(DriverNotFoundError, match="unknown card backend 'isdn4'"):
        drivers.open_card("isdn4", CardDescription(ports=("fxs",)))
    with pytest.raises(NoDeviceError, match=r"^no DAHDI devices found$"):
        drivers.open_card("dahdi", CardDescription(ports=("fxs",)))
