"""The chain's work follows what the channels do, and sends what the whole chain would.

A play can go round a buffer; a buffer given with its G.711 octets is sent as they are by a
channel that sends nothing else and hears nothing. A channel that sends nothing and hears
nothing sends the idle octet, and so does one whose only generator is a tone in a pause that
lasts the whole block. With no channel detecting DTMF the filter bank rests, and its
blocks keep their phase: 12 ms blocks counted from the first tick.
"""

from __future__ import annotations

from array import array

import numpy as np
import pytest

from dsp.errors import DspCommandError
from dsp.scheduler import PlayBuffer, Scheduler, lib

ALAW_IDLE, ULAW_IDLE = 0xD5, 0xFF


def tone(freq: float, n: int, amp: float = 9000.0, start: int = 0) -> array[int]:
    x = np.round(amp * np.sin(2 * np.pi * freq * (start + np.arange(n)) / 8000)).astype(np.int16)
    return array("h", x.tobytes())


Ev = tuple[int, int, int, int]


def run(s: Scheduler, ticks: int, k: int, nchan: int, rx: bytes | None = None) -> tuple[bytes, list[Ev]]:
    """`ticks` ticks in blocks of k with idle (or given, channel-major per block) input: what was sent
    and the events (tick, channel, type, value)."""
    out, evs = bytearray(), list[Ev]()
    idle = bytes([ALAW_IDLE]) * (nchan * k * 8)
    for b in range(ticks // k):
        out += s.process(b * k, k, idle if rx is None else rx[b * len(idle):(b + 1) * len(idle)])
        evs += [(e.tick, e.chan, e.type, e.value) for e in s.events()]
    return bytes(out), evs


def channel(out: bytes, chan: int, nchan: int, k: int) -> bytes:
    """One channel's octets out of blocks of k ticks, channel-major each."""
    per = k * 8
    return b"".join(out[b + chan * per:b + (chan + 1) * per] for b in range(0, len(out), nchan * per))


@pytest.mark.parametrize("k", [1, 5, 10])
def test_a_play_round_a_buffer_sends_what_the_whole_array_sends(k: int) -> None:
    loop = tone(1020, 1000)                       # 125 ms, a whole number of periods
    count = 3 * 1000 + 517                        # three and a half rounds, and a little
    whole = array("h", (np.tile(np.frombuffer(loop.tobytes(), np.int16), 4)[:count]).tobytes())
    a, b = Scheduler(3, "alaw"), Scheduler(3, "alaw")
    a.play(1, whole)
    b.play(1, PlayBuffer(loop), count)
    out_a, ev_a = run(a, 600, k, 3)
    out_b, ev_b = run(b, 600, k, 3)
    assert out_b == out_a
    assert ev_b == ev_a == [(count // 8, 1, lib.CB_EV_PLAY_DONE, count)]   # the tick of its last sample


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_a_buffer_with_its_octets_sends_what_encoding_would_alone_and_mixed(law: str, k: int) -> None:
    loop = tone(1020, 8000, amp=20000)
    count = 8000 * 3 + 44
    coded, linear = Scheduler(6, law), Scheduler(6, law)
    for s, buf in ((coded, PlayBuffer(loop, law)), (linear, PlayBuffer(loop))):
        for c in range(5):
            s.play(c, buf, count)
        s.dtmf_tx(1, "159", 70, 80)              # a generator over the play
        s.listen(2, 5)                           # the graph adds into it
        s.set_law(3, "ulaw" if law == "alaw" else "alaw")   # octets of the other law
        s.tap(4)                                 # a tap reads what it sends
    for s in (coded, linear):
        s.dtmf_tx(0, "2", 50, 50)                # later on, a generator over the plain play too
    out_c, ev_c = run(coded, 3600, k, 6)
    out_l, ev_l = run(linear, 3600, k, 6)
    assert out_c == out_l
    assert ev_c == ev_l
    enc = lib.cb_lin2alaw if law == "alaw" else lib.cb_lin2ulaw
    sent = channel(out_c, 0, 6, k)
    assert sent[8000:16000] == bytes(enc(v) for v in loop)       # the second round, nothing over it


@pytest.mark.parametrize("law,idle", [("alaw", ALAW_IDLE), ("ulaw", ULAW_IDLE)])
def test_quiet_channels_send_the_idle_octet_and_a_finished_tone_leaves_them_idle(law: str, idle: int) -> None:
    s = Scheduler(4, law)
    s.tone(2, "cn", "confirm")                    # a tone played once, then nothing
    out, evs = run(s, 3000, 5, 4)
    done = [e for e in evs if e[2] == lib.CB_EV_TONE_DONE]
    assert len(done) == 1
    for c in (0, 1, 3):
        assert channel(out, c, 4, 5) == bytes([idle]) * 24000
    after = channel(out, 2, 4, 5)[(done[0][0] + 1) * 8:]
    assert after and after == bytes([idle]) * len(after)
    assert channel(out, 2, 4, 5)[:800] != bytes([idle]) * 800


def test_play_arguments_are_checked() -> None:
    s = Scheduler(2, "alaw")
    with pytest.raises(DspCommandError, match="cannot play 5 samples of a buffer of 0"):
        s.play(0, b"", 5)
    with pytest.raises(DspCommandError, match="cannot play -1 samples"):
        s.play(0, PlayBuffer(bytes(16)), -1)
    with pytest.raises(DspCommandError, match="law must be"):
        PlayBuffer(bytes(16), "slin")
    with pytest.raises(DspCommandError, match="16-bit"):
        PlayBuffer(bytes(3))
    buf = PlayBuffer(bytes(16))
    s.send(lib.CB_CMD_PLAY, 0, 8, -1, 0, ptr=buf.ptr)                 # a buffer of -1 samples
    s.send(lib.CB_CMD_PLAY, 1, 8, 8, 3, ptr=buf.ptr)                  # no such coding
    _, evs = run(s, 1, 1, 2)
    assert [(c, t, v) for _, c, t, v in evs] == [(0, lib.CB_EV_MEDIA_ERROR, lib.CB_CMD_PLAY),
                                                 (1, lib.CB_EV_MEDIA_ERROR, lib.CB_CMD_PLAY)]


def dtmf_5(ms: int, law: str = "alaw") -> bytes:
    """Key 5 (770 + 1336 Hz) for `ms` ms as G.711 octets, -7 dBm0 per tone."""
    amp = 32768 * 10 ** ((-7 - 3.14) / 20)
    t = np.arange(ms * 8) / 8000
    x = np.round(amp * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))).astype(int)
    enc = lib.cb_lin2alaw if law == "alaw" else lib.cb_lin2ulaw
    return bytes(enc(int(v)) for v in x)


@pytest.mark.parametrize("enable_at", [1003, 2000, 2011])
def test_dtmf_detection_after_a_rest_keeps_the_blocks_phase(enable_at: int) -> None:
    """The bank decides once every 12 ms block counted from the first tick, whether or not any channel
    detected before: a key is found at a block's last tick, the same tick as a bank that never rested."""
    k = 1
    key_from, key_ms = enable_at + 40, 120
    rx = bytearray(bytes([ALAW_IDLE]) * (3000 * 2 * 8))
    key = dtmf_5(key_ms)
    for i in range(key_ms):                       # channel 0, block per tick, two channels
        at = (key_from + i) * 2 * 8
        rx[at:at + 8] = key[i * 8:(i + 1) * 8]
    rested, busy = Scheduler(2, "alaw"), Scheduler(2, "alaw")
    busy.detect_dtmf(1)                           # the bank runs all along in this one
    found = {}
    for name, s in (("rested", rested), ("busy", busy)):
        _, evs = run(s, enable_at, k, 2, bytes(rx[:enable_at * 16]))
        s.detect_dtmf(0)
        evs = []
        for t in range(enable_at, 3000):
            s.process(t, 1, bytes(rx[t * 16:(t + 1) * 16]))
            evs += [(e.tick, e.chan, e.type, e.value) for e in s.events()]
        found[name] = [e for e in evs if e[2] == lib.CB_EV_DTMF_DOWN]
    assert found["rested"] == found["busy"]
    ((tick, chan, _, digit),) = found["rested"]
    assert (chan, chr(digit)) == (0, "5")
    assert (tick + 1) % 12 == 0                   # the last tick of a block counted from tick 0
    assert key_from <= tick < key_from + 3 * 12


@pytest.mark.parametrize("k", [1, 3, 5, 10])
@pytest.mark.parametrize("zone", ["cn", "us", "de"])
def test_a_tone_in_its_pause_sends_what_the_whole_chain_sends(zone: str, k: int) -> None:
    """A channel whose one generator is a tone sends the idle octet through its cadence's pauses
    without being stepped; it sends exactly what a channel stepped all along (a tap on it) sends,
    sounding again on the tick its pause ends, whatever the block size."""
    tones = ("ringback", "busy", "congestion", "confirm")
    n = 2 * len(tones)
    s = Scheduler(n, "alaw")
    for i, name in enumerate(tones):
        s.tone(2 * i, zone, name)
        s.tone(2 * i + 1, zone, name)
        s.tap(2 * i + 1)                          # read by a tap: stepped every tick
    out, evs = run(s, 9990 // k * k, k, n)
    for i, name in enumerate(tones):
        alone, stepped = channel(out, 2 * i, n, k), channel(out, 2 * i + 1, n, k)
        assert alone == stepped, (name, next(j for j in range(len(alone)) if alone[j] != stepped[j]))
        ms = [alone[t * 8:(t + 1) * 8] for t in range(len(alone) // 8)]
        quiet = [m == bytes([ALAW_IDLE]) * 8 for m in ms]
        assert any(quiet) and not all(quiet), name          # it sounds and it pauses
    done = [(e[0], e[1]) for e in evs if e[2] == lib.CB_EV_TONE_DONE]
    confirm = 2 * tones.index("confirm")
    assert [c for _, c in done] == [confirm, confirm + 1] and done[0][0] == done[1][0]


@pytest.mark.parametrize("k", [3, 5])
def test_a_tone_stopped_or_started_again_in_its_pause_follows_the_command(k: int) -> None:
    idle = bytes([ALAW_IDLE]) * (2 * k * 8)
    sent = []
    for tapped in (False, True):
        s, out, tick = Scheduler(2, "alaw"), bytearray(), 0
        if tapped:
            s.tap(0)                               # the reference: stepped every tick
        s.tone(0, "cn", "ringback")
        for ms, then in ((1500, "busy"), (1200, "stop"), (300, "")):   # busy: a new tone from the 4 s pause
            for _ in range(ms // k):
                out += s.process(tick, k, idle)
                tick += k
            if then == "busy":
                s.tone(0, "cn", "busy")
            elif then == "stop":
                s.stop_tone(0)
        sent.append(channel(bytes(out), 0, 2, k))
    assert sent[0] == sent[1]
    assert sent[0][-2400:] == bytes([ALAW_IDLE]) * 2400
    assert sent[0][1510 * 8:1520 * 8] != bytes([ALAW_IDLE]) * 80     # the busy tone sounds at once


@pytest.mark.parametrize("k", [1, 5])
def test_a_lone_tone_keeps_its_cadence_through_pauses_with_nothing_else_stepped(k: int) -> None:
    alone, ref = Scheduler(1, "alaw"), Scheduler(1, "alaw")
    ref.tap(0)
    for sch in (alone, ref):
        sch.tone(0, "de", "busy")               # 480 ms on, 480 ms off
    out, _ = run(alone, 3000, k, 1)
    ref_out, _ = run(ref, 3000, k, 1)
    assert out == ref_out
    assert out[1930 * 8:1931 * 8] != bytes([ALAW_IDLE]) * 8     # sounding again after two pauses
