"""The card and the media tier together, in virtual time: what a caller or a phone would notice."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.linecard import LineCard
from drivers.base import CardDescription
from drivers.hal import EventType
from drivers.sim import SimCard
from dsp.errors import DspCommandError, RingFullError
from dsp.scheduler import Scheduler, kind_slot, lib
from tests import signals

ENC = {
    "alaw": np.array([lib.cb_lin2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8),
    "ulaw": np.array([lib.cb_lin2ulaw(v) for v in range(-32768, 32768)], dtype=np.uint8),
}
DEC = {
    "alaw": np.array([lib.cb_alaw2lin(a) for a in range(256)], dtype=np.int16),
    "ulaw": np.array([lib.cb_ulaw2lin(a) for a in range(256)], dtype=np.int16),
}


def encode(x: np.ndarray, law: str) -> bytes:
    lin = np.clip(np.round(x), -32768, 32767).astype(np.int32)
    return bytes(ENC[law][lin + 32768])


def decode(octets: bytes, law: str) -> np.ndarray:
    return DEC[law][np.frombuffer(octets, dtype=np.uint8)].astype(float)


@pytest.fixture
def tier() -> Iterator[LineCard]:
    t = LineCard("sim", CardDescription(ports=("fxo", "fxs", "fxs", "fxs"), k=4), zone="cn")
    yield t
    t.close()


def far(t: LineCard) -> SimCard:
    assert isinstance(t.card, SimCard)
    return t.card


#: Ring cadences, ms on and off [line-signals.md, from dahdi-tools zonedata]: the product's own table is
#: what is tested here, so the figures are written out.
RING_CADENCE = {"cn": (1000, 4000), "us": (2000, 4000), "de": (1000, 4000)}


@pytest.mark.parametrize("zone", sorted(RING_CADENCE))
def test_ring_cadence_of_each_zone(zone: str) -> None:
    on, off = RING_CADENCE[zone]
    t = LineCard("sim", CardDescription(ports=("fxs",), k=4), zone=zone)
    try:
        t.step(8)
        t.ring(0)
        start = t.tick
        t.step(2 * (on + off) + 8)
        got = [(e.tick - start, e.type) for e in far(t).far.poll()]
        # two whole cycles and the third ring's start, each change on its tick (to one tick)
        want = [(0, EventType.RING_ON), (on, EventType.RING_OFF), (on + off, EventType.RING_ON),
                (2 * on + off, EventType.RING_OFF), (2 * (on + off), EventType.RING_ON)]
        assert [typ for _, typ in got] == [typ for _, typ in want], (zone, got)
        for (gt, _), (wt, _) in zip(got, want, strict=True):
            assert abs(gt - wt) <= 1, (zone, got, want)
    finally:
        t.close()


def test_line_events_reach_the_event_ring_with_their_ticks(tier: LineCard) -> None:
    f = far(tier).far
    f.hook(1, True, at_tick=17)
    f.hook(1, False, at_tick=300)
    f.hook(1, True, at_tick=700)        # 400 ms flash
    f.ring(0, True, at_tick=41)
    f.signal(0, EventType.BATTERY, 0, at_tick=900)
    f.signal(0, EventType.POLARITY, 1, at_tick=950)
    evs = tier.step(1000)
    got = [(e.tick, e.chan, e.type) for e in evs]
    assert got == [(17, 1, EventType.HOOK_OFF), (41, 0, EventType.RING_ON), (700, 1, EventType.FLASH),
                   (900, 0, EventType.BATTERY), (950, 0, EventType.POLARITY)]


def _bridge_run(tier: LineCard, law_a: str, law_b: str) -> tuple[bytes, bytes, bytes, bytes]:
    """Phone A (port 1) sends 1020 Hz, phone B (port 2) 587 Hz, bridged in the media tier."""
    f = far(tier).far
    tier.sched.set_law(1, law_a)
    tier.sched.set_law(2, law_b)
    tier.sched.bridge(1, 2)
    f.listen(1)
    f.listen(2)
    n = 8000
    sent_a = encode(signals.tone(1020, n, -10.0), law_a)
    sent_b = encode(signals.tone(587, n, -10.0), law_b)
    got_a, got_b = b"", b""
    for i in range(0, n, 320):
        f.write(1, sent_a[i:i + 320])
        f.write(2, sent_b[i:i + 320])
        tier.step(40)
        got_a += f.read(1)
        got_b += f.read(2)
    return sent_a, sent_b, got_a, got_b


def _check_received(got: bytes, law: str, freq: float, other: float) -> None:
    x = decode(got, law)[400:7600]   # past the start-up delay
    assert abs(signals.frequency(x) - freq) <= 2
    assert abs(signals.level_dbm0(x) - -10.0) <= 1
    assert signals.sinad_db(x, freq) >= 30
    assert signals.component_db(x, other, -10.0) < -50


def test_bridged_phones_hear_each_other_bit_exact_on_one_law(tier: LineCard) -> None:
    sent_a, sent_b, got_a, got_b = _bridge_run(tier, "alaw", "alaw")
    _check_received(got_a, "alaw", 587, 1020)
    _check_received(got_b, "alaw", 1020, 587)
    d_ab = signals.delay_of(sent_a, got_b, 200)
    d_ba = signals.delay_of(sent_b, got_a, 200)
    assert d_ab is not None and d_ab == d_ba
    assert d_ab == 4 * 8  # one block of k = 4 ticks


def test_bridged_phones_on_different_laws_are_transcoded(tier: LineCard) -> None:
    _, _, got_a, got_b = _bridge_run(tier, "alaw", "ulaw")
    _check_received(got_a, "alaw", 587, 1020)
    _check_received(got_b, "ulaw", 1020, 587)


def test_prompt_plays_bit_exact_and_reports_its_end(tier: LineCard) -> None:
    rng = np.random.default_rng(7)
    prompt = np.clip(rng.normal(0, 3000, 4000), -32768, 32767).astype(np.int16)
    f = far(tier).far
    f.listen(3)
    tier.step(4)
    tier.sched.play(3, prompt.tobytes())
    start = tier.tick
    evs = tier.step(600)
    done = [e for e in evs if e.type == EventType.PLAY_DONE]
    assert [(e.chan, e.value) for e in done] == [(3, 4000)]
    assert done[0].tick == start + 4000 // 8 - 1
    heard = f.read(3)
    want = encode(prompt.astype(float), "alaw")
    assert signals.delay_of(want, heard, 100) is not None


def test_full_command_ring_fails_at_once_and_recovers() -> None:
    m = Scheduler(4, "alaw")
    queued = 0
    with pytest.raises(RingFullError, match="command ring full"):
        while True:
            m.detect_dtmf(queued % 4)
            queued += 1
    # A command record takes 40 octets of the ring: head 32, frame 8.
    assert queued == lib.CB_SCHED_CMD_RING // 40
    m.process(0, 1, bytes([0xD5]) * 32)   # the scheduler takes the queued commands
    m.detect_dtmf(1)                      # room again


def test_full_event_ring_counts_drops_per_kind() -> None:
    card = SimCard(CardDescription(ports=("fxs",) * 12, k=1))
    m = Scheduler(12, "alaw", ev_octets=1024)   # the smallest ring: 32 records of 32 octets
    m.attach_card(card.handle)
    try:
        for c in range(12):   # per phone: off hook, a 400 ms flash, a hang-up: 36 events
            card.far.hook(c, True, at_tick=1 + c)
            card.far.hook(c, False, at_tick=200 + c)
            card.far.hook(c, True, at_tick=600 + c)
            card.far.hook(c, False, at_tick=1000 + c)
        m.step(3000)
        evs = m.events()
        assert [e.type for e in evs] == [EventType.HOOK_OFF] * 12 + [EventType.FLASH] * 12 + [EventType.HOOK_ON] * 8
        assert m.stats()["events_dropped"] == 4
        assert m.dropped_by_kind() == {kind_slot(EventType.HOOK_ON): 4}
    finally:
        card.close()


# The block's card event buffer, as cb_sched.h documents it: 4 events per channel and tick of a
# 20-tick block, at least 256.
def card_event_room(nchan: int) -> int:
    assert (lib.CB_SCHED_CARD_EV_PER_CHAN_TICK, lib.CB_SCHED_CARD_EV_MIN) == (4, 256)
    return max(nchan * 20 * 4, 256)


@pytest.mark.parametrize("changes", [card_event_room(2), card_event_room(2) + 44])
def test_card_events_beyond_the_blocks_buffer_are_counted_exactly_and_by_kind(changes: int) -> None:
    """The exchange reverses a trunk's polarity so often in one block that the card raises as many
    events as the block's buffer holds, or more: an exact fit loses nothing; past it, each event
    that did not fit is counted, in total and by kind."""
    t = LineCard("sim", CardDescription(ports=("fxo", "fxs"), k=4))
    try:
        room = card_event_room(2)
        t.step(4)
        t0 = t.tick
        for i in range(changes):
            far(t).far.signal(0, EventType.POLARITY, 1 - i % 2, at_tick=t0 + i * 4 // changes)
        evs = t.step(4)
        assert [e.value for e in evs] == [1 - i % 2 for i in range(min(changes, room))]
        lost = max(0, changes - room)
        assert t.counters()["card_events_dropped"] == lost
        assert t.dropped_by_kind() == ({"card_events_dropped.POLARITY": lost} if lost else {})
        assert far(t).stats()["card_ev_dropped"] == lost
    finally:
        t.close()


def test_bad_commands_are_refused_clearly(tier: LineCard) -> None:
    with pytest.raises(DspCommandError, match="channel 9 out of range 0-3"):
        tier.sched.detect_dtmf(9)
    with pytest.raises(DspCommandError, match="unknown tone 'howler'"):
        tier.sched.tone(1, "cn", "howler")
    with pytest.raises(DspCommandError, match="unknown tone zone 'xx'"):
        tier.sched.tone(1, "xx", "dial")
    with pytest.raises(DspCommandError, match="DTMF digits must be"):
        tier.sched.dtmf_tx(1, "12x")
    tier.ring(0)   # an FXO port cannot ring: the tier reports it as an event, it does not raise
    evs = tier.step(4)
    assert [(e.type, e.chan, e.value) for e in evs] == [(EventType.MEDIA_ERROR, 0, 1)]


def test_commands_and_events_log_nothing_alarming(tier: LineCard, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    tier.sched.tone(1, "cn", "dial")
    tier.step(100)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_loss_mark_stays_while_no_loss_counter_grows_and_changes_when_one_does(tmp_path: Path) -> None:
    """loss_mark() is what lets the engine skip reading every counter in a quiet period: it must change
    whenever counters() does (the card's, the media tier's, the far-end handshakes'), and stay put
    while lines ring, go off hook and carry audio without a loss."""
    t = LineCard("sim", CardDescription(ports=("fxo", "fxs"), k=4), far_socket=tmp_path / "sim.sock",
                 period_ticks=8)
    try:
        t.step(8)
        mark, counters = t.loss_mark(), t.counters()
        assert mark is not None
        t.hook(0, True)
        far(t).far.hook(1, True, at_tick=t.tick + 2)
        far(t).far.signal(0, EventType.POLARITY, 1, at_tick=t.tick + 3)
        for _ in range(20):
            t.step(8)
        assert t.counters() == counters and t.loss_mark() == mark     # events, levels, audio: no loss
        t0 = t.tick
        room = card_event_room(2)
        for i in range(room + 5):                                     # card events beyond the block's buffer
            far(t).far.signal(0, EventType.POLARITY, i % 2, at_tick=t0 + 1 + i * 3 // (room + 5))
        t.step(8)
        assert t.counters()["card_events_dropped"] == counters["card_events_dropped"] + 5
        assert t.loss_mark() != mark
        mark, counters = t.loss_mark(), t.counters()
        assert t.far_server is not None
        t.far_server.refused["not_json"] = 1                          # a HELLO refused
        assert t.counters()["far_refused"] == counters["far_refused"] + 1 and t.loss_mark() != mark
    finally:
        t.close()
    assert t.loss_mark() is None                                      # a closed card has no cheap reading


def test_the_loss_mark_changes_when_the_event_ring_loses_events() -> None:
    t = LineCard("sim", CardDescription(ports=("fxo", "fxs"), k=4), period_ticks=8, ev_octets=1024)
    try:
        t.step(8)
        mark = t.loss_mark()
        t0 = t.tick
        for i in range(40):                     # 40 events before the ring is read; it holds 32
            far(t).far.signal(0, EventType.POLARITY, 1 - i % 2, at_tick=t0 + i)
        t.step(40)
        assert t.counters()["events_dropped"] == 8 and t.loss_mark() != mark
    finally:
        t.close()
