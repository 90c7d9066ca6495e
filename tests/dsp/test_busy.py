"""Busy-cadence detector: busy tones from our generator and from spandsp, with and
without noise, against tones and sounds it must not take for busy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from dsp._binding import load
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib

ffi, lib = load()

RATE = 8000
ZONES = {"cn": lib.CB_ZONE_CN, "us": lib.CB_ZONE_US, "de": lib.CB_ZONE_DE}
# Busy cadences of line-signals.md (on ms, off ms) and the busy frequencies.
BUSY = {"cn": (350, 350), "us": (500, 500), "de": (480, 480)}
BUSY_FREQS = {"cn": (450, 0), "us": (480, 620), "de": (425, 0)}

Event = tuple[int, int, int, int, int]


def detect(signals: list[np.ndarray[Any, Any]], cadences: Sequence[tuple[int, int, int] | None]) -> list[Event]:
    """Run one bank, channel c fed signals[c] with cadence (on, off, count) (None: not started); return the
    events."""
    n = len(signals)
    ticks = max(len(x) for x in signals) // 8
    amp = np.zeros((ticks, 8, n), dtype=np.int16)
    for c, x in enumerate(signals):
        amp[: len(x) // 8, :, c] = x[: (len(x) // 8) * 8].reshape(-1, 8)
    det = lib.cb_busy_det_init(n)
    ring = lib.cb_ring_init(256 * 32)
    for c, cadence in enumerate(cadences):
        if cadence is not None:
            assert lib.cb_busy_det_start(det, c, *cadence) == lib.CB_OK
    p = ffi.cast("int16_t *", ffi.from_buffer("int16_t[]", amp))
    for t in range(ticks):
        lib.cb_busy_det_tick(det, p + t * 8 * n, ring, t)
    buf = ffi.new("cb_event_t[]", 256)
    k = lib.cb_ring_pop_events(ring, buf, 256)
    lib.cb_ring_free(ring)
    lib.cb_busy_det_free(det)
    return [(e.tick, e.chan, e.type, e.value, e.extra) for e in buf[0:k]]


def our_tone(zone: str, tone: int, ms: int, lead_ms: int = 0) -> np.ndarray[Any, Any]:
    """A zone tone from our generator, after lead_ms of silence."""
    gen = lib.cb_tone_gen_init(1)
    acc = np.zeros(ms * 8, dtype=np.int32)
    p = ffi.cast("int32_t *", ffi.from_buffer("int32_t[]", acc))
    for t in range(ms):
        if t == lead_ms:
            assert lib.cb_tone_gen_start(gen, 0, ZONES[zone], tone) == lib.CB_OK
        lib.cb_tone_gen_tick(gen, p + t * 8, ffi.NULL, t)
    lib.cb_tone_gen_free(gen)
    return np.clip(acc, -32768, 32767).astype(np.int16)


def peer_tone(f1: int, f2: int, on: int, off: int, ms: int, *, level: int = -10, lead_ms: int = 0) -> Any:
    """A cadenced tone from spandsp's tone_gen, after lead_ms of silence."""
    p = slib.tonepeer_new(f1, level, f2, level if f2 else 0, on, off, 0, 0, 1)
    assert p != sffi.NULL
    out = np.zeros(ms * 8, dtype=np.int16)
    body = out[lead_ms * 8 :]
    assert slib.tonepeer_gen(p, sffi.from_buffer("int16_t[]", body), len(body)) == len(body)
    slib.tonepeer_free(p)
    return out


def with_noise(x: np.ndarray[Any, Any], below_db: float, seed: int) -> np.ndarray[Any, Any]:
    """Add white noise `below_db` under the power of the tone while it sounds."""
    xf = x.astype(np.float64)
    sounding = np.abs(xf.reshape(-1, 8)).max(axis=1) > 0
    p_tone = np.mean(xf.reshape(-1, 8)[sounding] ** 2)
    rms = np.sqrt(p_tone) * 10 ** (-below_db / 20)
    noise = np.random.default_rng(seed).normal(0.0, rms, len(x))
    return np.clip(np.round(xf + noise), -32768, 32767).astype(np.int16)


def through_law(x: np.ndarray[Any, Any], law: int) -> np.ndarray[Any, Any]:
    """x after a G.711 encode and decode, as the media chain sees a line."""
    codes = np.zeros(len(x), dtype=np.uint8)
    out = np.zeros(len(x), dtype=np.int16)
    lib.cb_g711_encode(law, ffi.from_buffer("int16_t[]", x), ffi.from_buffer("uint8_t[]", codes), len(x))
    lib.cb_g711_decode(law, ffi.from_buffer("uint8_t[]", codes), ffi.from_buffer("int16_t[]", out), len(x))
    return out


def speech_like(seconds: float, seed: int) -> np.ndarray[Any, Any]:
    """AR-shaped noise in syllables and talk spurts with random pauses, about -20 dBm0."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    # Spectrum shaped by an all-pole filter: resonances near 500 Hz and 1500 Hz.
    w = np.fft.rfftfreq(n, 1.0 / RATE) * 2 * np.pi / RATE
    z = np.exp(-1j * w)
    shape = np.ones_like(z)
    for f, r in ((500.0, 0.95), (1500.0, 0.9)):
        th = 2 * np.pi * f / RATE
        shape /= 1 - 2 * r * np.cos(th) * z + r * r * z * z
    noise = np.fft.irfft(np.fft.rfft(rng.normal(size=n)) * shape, n)
    noise /= np.std(noise)
    env = np.zeros(n)
    t = int(rng.integers(0, 4000))
    while t < n:
        spurt_end = t + int(rng.uniform(0.3, 3.0) * RATE)
        while t < min(spurt_end, n):
            syl = int(rng.uniform(0.08, 0.35) * RATE)
            seg = np.hanning(syl) * 10 ** (rng.uniform(-8, 4) / 20)
            m = min(syl, n - t)
            env[t : t + m] = seg[:m]
            t += syl + int(rng.uniform(0.0, 0.06) * RATE)
        t += int(rng.uniform(0.1, 1.5) * RATE)  # pause
    a_rms = 32768 * 10 ** ((-20 - 3.14) / 20) / math.sqrt(2)
    return np.clip(np.round(noise * env * a_rms * 1.6), -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("zone", list(BUSY))
def test_detects_busy_from_both_generators_with_and_without_noise(zone: str) -> None:
    on, off = BUSY[zone]
    period = on + off
    lead = 123
    ms = lead + 6 * period
    f1, f2 = BUSY_FREQS[zone]
    ours = our_tone(zone, lib.CB_TONE_BUSY, ms, lead_ms=lead)
    peer = peer_tone(f1, f2, on, off, ms, lead_ms=lead)
    quiet_peer = peer_tone(f1, f2, on, off, ms, level=-25, lead_ms=lead)
    signals = [
        ours,
        peer,
        with_noise(ours, 15, 1234),
        with_noise(peer, 15, 4321),
        quiet_peer,
        through_law(with_noise(ours, 15, 99), lib.CB_LAW_ALAW),
        through_law(with_noise(peer, 15, 98), lib.CB_LAW_ULAW),
    ]
    events = detect(signals, [(on, off, 3)] * len(signals))
    assert sorted(e[1] for e in events) == list(range(len(signals)))
    for tick, _chan, typ, value, extra in events:
        assert (typ, value, extra) == (lib.CB_EV_BUSY, 3, 0)
        # Counted when the 4th burst starts.
        assert lead + 3 * period <= tick <= lead + 3 * period + 15


@pytest.mark.parametrize("count", [1, 2, 5])
def test_count_sets_the_number_of_cycles(count: int) -> None:
    on, off = BUSY["us"]
    x = our_tone("us", lib.CB_TONE_BUSY, 7 * (on + off), lead_ms=50)
    events = detect([x], [(on, off, count)])
    assert len(events) == 1
    assert events[0][3] == count
    assert 50 + count * (on + off) <= events[0][0] <= 50 + count * (on + off) + 15


def test_joining_mid_burst_costs_at_most_one_cycle() -> None:
    on, off = BUSY["cn"]
    x = our_tone("cn", lib.CB_TONE_BUSY, 8 * (on + off))[200 * 8 :]  # starts 200 ms into a burst
    events = detect([x], [(on, off, 3)])
    assert len(events) == 1
    assert events[0][0] <= 4 * (on + off)


def test_reports_once_then_quiet_until_restarted() -> None:
    on, off = BUSY["de"]
    x = our_tone("de", lib.CB_TONE_BUSY, 20 * (on + off))
    events = detect([x], [(on, off, 3)])
    assert len(events) == 1
    # A restart counts from scratch (and reports again).
    det = lib.cb_busy_det_init(1)
    ring = lib.cb_ring_init(lib.CB_RING_MIN_OCTETS)
    assert lib.cb_busy_det_start(det, 0, on, off, 3) == lib.CB_OK
    p = ffi.cast("int16_t *", ffi.from_buffer("int16_t[]", x))
    ticks = len(x) // 8
    for t in range(ticks // 2):
        lib.cb_busy_det_tick(det, p + t * 8, ring, t)
    assert lib.cb_ring_count(ring) == 1
    assert lib.cb_busy_det_start(det, 0, on, off, 3) == lib.CB_OK
    for t in range(ticks // 2, ticks):
        lib.cb_busy_det_tick(det, p + t * 8, ring, t)
    assert lib.cb_ring_count(ring) == 2
    # Stopped: nothing at all.
    assert lib.cb_busy_det_stop(det, 0) == lib.CB_OK
    for t in range(ticks):
        lib.cb_busy_det_tick(det, p + t * 8, ring, ticks + t)
    assert lib.cb_ring_count(ring) == 2
    lib.cb_ring_free(ring)
    lib.cb_busy_det_free(det)


def test_channels_are_independent() -> None:
    on, off = BUSY["us"]
    ms = 6 * (on + off)
    busy = our_tone("us", lib.CB_TONE_BUSY, ms)
    silence = np.zeros(ms * 8, dtype=np.int16)
    signals = [silence, busy, silence, silence, busy]
    events = detect(signals, [(on, off, 3)] * 5)
    assert sorted(e[1] for e in events) == [1, 4]


def test_a_channel_far_along_a_big_bank_detects_as_a_bank_of_its_own() -> None:
    """Banks skip groups of channels none of which counts: channels 3 and 70 of 100 (alone in their
    groups, or with a channel that fired, or with one started late) report on the tick a bank of one does."""
    on, off = BUSY["cn"]
    ms = 6 * (on + off)
    busy = our_tone("cn", lib.CB_TONE_BUSY, ms)
    (alone,) = detect([busy], [(on, off, 3)])
    silence = np.zeros(ms * 8, dtype=np.int16)
    signals = [silence] * 100
    signals[3] = signals[70] = signals[99] = busy
    cadences: list[tuple[int, int, int] | None] = [None] * 100
    cadences[3] = cadences[70] = (on, off, 3)
    cadences[99] = (on, off, 1)            # the only one of its group: fires after one cycle
    events = detect(signals, cadences)
    assert [(e[1], e[0]) for e in events if e[1] in (3, 70)] == [(3, alone[0]), (70, alone[0])]
    assert [e[1] for e in events].count(99) == 1


def test_detection_is_right_after_runs_longer_than_any_cadence() -> None:
    """The run timer saturates (at 40 s: longer than any cadence plus its tolerance) instead of
    growing without bound. A full-scale tone reads as sound for over 40 s before the floor tracker
    catches up with it, then a silence of 45 s follows: both runs pass the saturation. Busy tone
    after that is counted from its first cycle and reported on time; and a silence as long in the
    middle of a busy sequence breaks it, so the count starts again after it."""
    on, off = BUSY["cn"]
    period = on + off
    run_max = 4 * 10000                         # BUSY_RUN_MAX: 4 x CB_BUSY_MAX_MS
    assert lib.CB_BUSY_MAX_MS == 10000
    t = np.arange(50000 * 8) / RATE
    loud = np.round(32767 * np.sin(2 * np.pi * 450 * t)).astype(np.int16)  # 50 s at full scale
    silence = np.zeros((run_max + 5000) * 8, dtype=np.int16)
    busy = our_tone("cn", lib.CB_TONE_BUSY, 6 * period)
    two_cycles = our_tone("cn", lib.CB_TONE_BUSY, 2 * period + on)          # 2 whole cycles, a 3rd burst
    lead = np.zeros(100 * 8, dtype=np.int16)
    x = np.concatenate([lead, loud, silence, busy])
    y = np.concatenate([lead, two_cycles, silence, busy])
    at_x = (len(x) - len(busy)) // 8
    at_y = (len(y) - len(busy)) // 8
    events = detect([x, y], [(on, off, 3)] * 2)
    assert sorted((e[1], e[2], e[3]) for e in events) == [(0, lib.CB_EV_BUSY, 3), (1, lib.CB_EV_BUSY, 3)]
    for tick, chan, *_ in events:
        start = at_x if chan == 0 else at_y
        assert start + 3 * period <= tick <= start + 3 * period + 15, (chan, tick - start)


# --------------------------------------------------------------------------- rejection


def test_no_report_on_us_congestion_when_told_us_busy() -> None:
    on, off = BUSY["us"]
    x = our_tone("us", lib.CB_TONE_CONGESTION, 10000)
    y = peer_tone(480, 620, 250, 250, 10000)
    assert detect([x, y], [(on, off, 3)] * 2) == []


@pytest.mark.parametrize("zone", list(BUSY))
def test_no_report_on_dial_ringback_congestion_or_silence(zone: str) -> None:
    on, off = BUSY[zone]
    dial = our_tone(zone, lib.CB_TONE_DIAL, 10000)
    ringback = our_tone(zone, lib.CB_TONE_RINGBACK, 20000)
    congestion = our_tone(zone, lib.CB_TONE_CONGESTION, 10000)
    silence = np.zeros(10000 * 8, dtype=np.int16)
    quiet_noise = with_noise(dial, 40, 99) - dial  # noise alone at -47 dBm0
    signals = [dial, ringback, with_noise(ringback, 15, 7), congestion, silence, quiet_noise]
    assert detect(signals, [(on, off, 3)] * len(signals)) == []


@pytest.mark.parametrize("seed", [1234, 5678])
def test_no_report_on_speech_like_noise(seed: int) -> None:
    x = speech_like(20.0, seed)
    level = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) * 2 / 32768**2) + 3.14
    assert -30 < level < -15  # it is loud enough to be seen
    cadences = [(*BUSY[z], 3) for z in BUSY] + [(*BUSY[z], 2) for z in BUSY]
    assert detect([x] * len(cadences), cadences) == []


def test_bad_arguments() -> None:
    assert lib.cb_busy_det_init(0) == ffi.NULL
    det = lib.cb_busy_det_init(2)
    assert lib.cb_busy_det_start(det, 2, 500, 500, 3) == lib.CB_ERR_INVALID
    assert lib.cb_busy_det_start(det, 0, 10, 500, 3) == lib.CB_ERR_INVALID
    assert lib.cb_busy_det_start(det, 0, 500, 20000, 3) == lib.CB_ERR_INVALID
    assert lib.cb_busy_det_start(det, 0, 500, 500, 0) == lib.CB_ERR_INVALID
    assert lib.cb_busy_det_stop(det, -1) == lib.CB_ERR_INVALID
    lib.cb_busy_det_free(det)
    lib.cb_busy_det_free(ffi.NULL)
