"""Records with payloads cross both rings whole; a full ring refuses at once and counts per kind."""

from __future__ import annotations

import pytest

from dsp.errors import DspCommandError, DspInitError
from dsp.scheduler import MAX_PAYLOAD, Scheduler, kind_slot, lib

IDLE_BLOCK = bytes([0xD5]) * (4 * 8)   # one tick of 4 A-law channels


def frame(n: int, seed: int) -> bytes:
    """A Q.921-sized frame with a pattern no two frames share."""
    return bytes((seed * 31 + i * 7) & 0xFF for i in range(n))


def test_a_264_octet_record_goes_through_both_rings_whole() -> None:
    s = Scheduler(4, "alaw")
    assert MAX_PAYLOAD == 264
    sent = [frame(264, 1), frame(1, 2), b"", frame(263, 3), frame(264, 4)]
    for i, p in enumerate(sent):
        s.loopback(i % 4, p, value=i)
    s.process(0, 1, IDLE_BLOCK)
    evs = [e for e in s.events() if e.type == lib.CB_EV_LOOPBACK]
    assert [(e.chan, e.value, e.payload) for e in evs] == [(i % 4, i, p) for i, p in enumerate(sent)]


def test_many_records_wrap_the_rings_without_losing_one() -> None:
    s = Scheduler(4, "alaw")
    got: list[bytes] = []
    want: list[bytes] = []
    for block in range(400):   # about 4 MiB through each ring: every wrap point is crossed
        for j in range(40):
            p = frame(200 + (block + j) % 65, block * 40 + j)
            want.append(p)
            s.loopback(j % 4, p)
        s.process(block, 1, IDLE_BLOCK)
        got += [e.payload for e in s.events() if e.type == lib.CB_EV_LOOPBACK]
    assert got == want
    assert s.stats()["events_dropped"] == 0


def test_a_full_event_ring_counts_the_overflow_of_its_kind() -> None:
    # 1 KiB ring: a 264-octet record takes 8 + 24 + 264 = 296 octets, so 3 fit.
    s = Scheduler(4, "alaw", ev_octets=1024)
    for i in range(10):
        s.loopback(0, frame(264, i), value=i)
    s.process(0, 1, IDLE_BLOCK)
    evs = s.events()
    assert [e.value for e in evs] == [0, 1, 2]
    assert s.stats()["events_dropped"] == 7
    assert s.dropped_by_kind() == {kind_slot(lib.CB_EV_LOOPBACK): 7}
    # Drained, it takes records again.
    s.loopback(1, b"again")
    s.process(1, 1, IDLE_BLOCK)
    assert [e.payload for e in s.events()] == [b"again"]


RING_MIN = 1024   # the documented smallest ring (cb_ring.h): twice the largest record, 8 + 64 + 264 octets


@pytest.mark.parametrize("octets", [64, 512, RING_MIN - 1])
def test_an_event_ring_too_small_for_the_largest_record_is_refused(octets: int) -> None:
    assert lib.CB_RING_MIN_OCTETS == RING_MIN
    with pytest.raises(DspInitError, match=rf"an event ring of {octets} octets: it must hold {RING_MIN}-"):
        Scheduler(4, "alaw", ev_octets=octets)


def fillers(octets: int) -> list[int]:
    """Event records of 32-296 ring octets (frame 8, head 24, payload 0-264) that add up to `octets`."""
    out = []
    while octets:
        size = min(296, octets)
        if 0 < octets - size < 32:
            size = octets - 32
        out.append(size)
        octets -= size
    return out


def test_the_smallest_ring_takes_the_largest_record_wherever_its_head_stands() -> None:
    # A record never wraps: on an empty ring whose head stands near the end, the rest is skipped
    # and the record starts again at offset 0. Whatever the head's place (records start on 8-octet
    # boundaries, the smallest takes 32), a 264-octet record alone on the empty ring comes through.
    for place in [0, *range(32, RING_MIN, 8)]:
        s = Scheduler(4, "alaw", ev_octets=RING_MIN)
        tick = 0
        for size in fillers(place):
            s.loopback(0, bytes(size - 32), value=-1)
            s.process(tick, 1, IDLE_BLOCK)
            tick += 1
            assert [e.value for e in s.events()] == [-1]
        s.loopback(1, frame(264, place), value=place)
        s.process(tick, 1, IDLE_BLOCK)
        assert [(e.value, e.payload) for e in s.events()] == [(place, frame(264, place))], place
        assert s.stats()["events_dropped"] == 0


def test_a_payload_too_long_is_refused_before_the_ring() -> None:
    s = Scheduler(4, "alaw")
    with pytest.raises(DspCommandError, match="a command payload holds at most 264 octets, not 265"):
        s.loopback(0, bytes(265))


def test_the_event_ring_holds_every_channels_worst_block() -> None:
    # 240 channels, a 20-tick period, every channel raising its most events per tick, twice over.
    octets = lib.cb_sched_event_ring_octets(240, 20)
    per_record = 8 + 24
    assert octets >= 2 * 240 * 20 * lib.CB_EVENTS_PER_CHAN_TICK * per_record


def test_a_prompt_sent_while_the_last_ones_end_is_in_flight_plays_whole() -> None:
    # The first prompt ends (its PLAY_DONE waits in the ring) before the second is sent:
    # taking that event must not free the second one while the tick plays it.
    s = Scheduler(4, "alaw")
    s.play(0, bytes(16))
    s.process(0, 1, IDLE_BLOCK)
    second = bytes(range(256)) * 40
    s.play(0, second)
    s.process(1, 1, IDLE_BLOCK)
    s.events()
    import gc

    gc.collect()
    for t in range(2, 40):
        s.process(t, 1, IDLE_BLOCK)
    assert [e.value for e in s.events() if e.type == lib.CB_EV_PLAY_DONE] == []   # still playing


def test_a_refused_play_leaves_the_playing_prompt_alone() -> None:
    from dsp.errors import RingFullError

    s = Scheduler(4, "alaw")
    s.play(0, bytes(2) * 8000)
    s.process(0, 1, IDLE_BLOCK)
    with pytest.raises(RingFullError):
        while True:
            s.set_law(1, "alaw")
    with pytest.raises(RingFullError):
        s.play(0, bytes(16))
    s.process(1, 1, IDLE_BLOCK)
    s.set_law(1, "alaw")
    s.process(2, 1, IDLE_BLOCK)
    s.events()
    import gc

    gc.collect()
    for t in range(3, 30):
        s.process(t, 1, IDLE_BLOCK)
    assert s._keep.get((0, "play")) is not None   # the first prompt, still playing, is still held
