"""Tone zones and the cadenced tone generator, measured on the generated samples."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from dsp import scheduler as dsp_sched
from dsp._binding import load
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib

ffi, lib = load()

RATE = 8000
ZONES = {"cn": lib.CB_ZONE_CN, "us": lib.CB_ZONE_US, "de": lib.CB_ZONE_DE}
TONES = dsp_sched.TONES
PAIRS = [(z, t) for z in ZONES for t in TONES]
LEVEL_DBM0 = -10.0  # each component (line-signals.md: supervisory tones at -10 dBm0)
FULL_SCALE_DBM0 = 3.14  # peak 32768 sine, A-law


@dataclass(frozen=True)
class Seg:
    f1: int
    f2: int
    ms: int
    on: bool


def describe(zone: int, tone: int) -> tuple[list[Seg], int]:
    n = lib.cb_tone_describe(zone, tone, ffi.NULL, 0, ffi.NULL)
    assert n > 0
    out = ffi.new("cb_tone_seg_t[]", n)
    rep = ffi.new("int32_t *")
    assert lib.cb_tone_describe(zone, tone, out, n, rep) == n
    return [Seg(s.f1_hz, s.f2_hz, s.ms, bool(s.on)) for s in out], int(rep[0])


def timeline(segs: list[Seg], rep: int, total_ms: int) -> Iterator[tuple[int, Seg]]:
    """(start ms, segment) of a cadence played from 0, up to total_ms."""
    t, i = 0, 0
    while t < total_ms:
        yield t, segs[i]
        t += segs[i].ms
        i += 1
        if i == len(segs):
            if rep < 0:
                return
            i = rep


class Ring:
    def __init__(self) -> None:
        self.r = lib.cb_ring_init(1024 * 32)
        assert self.r != ffi.NULL

    def pop(self) -> list[tuple[int, int, int, int, int]]:
        buf = ffi.new("cb_event_t[]", 1024)
        k = lib.cb_ring_pop_events(self.r, buf, 1024)
        return [(e.tick, e.chan, e.type, e.value, e.extra) for e in buf[0:k]]

    def close(self) -> None:
        lib.cb_ring_free(self.r)


def run(bank: Any, n: int, ticks: int, ring: Any, tick0: int = 0) -> np.ndarray[Any, Any]:
    """Tick the bank; return the samples as [channel, sample] (int32)."""
    acc = np.zeros((ticks, 8, n), dtype=np.int32)
    p = ffi.cast("int32_t *", ffi.from_buffer("int32_t[]", acc))
    for t in range(ticks):
        lib.cb_tone_gen_tick(bank, p + t * 8 * n, ring, tick0 + t)
    return acc.transpose(2, 0, 1).reshape(n, ticks * 8)


def level_dbm0(peak: float) -> float:
    return 20.0 * math.log10(peak / 32768.0) + FULL_SCALE_DBM0


def peak_freq(x: np.ndarray[Any, Any], f: float) -> float:
    """Frequency of the spectral peak within ±3 % of f (Hann, zero-padded, parabolic)."""
    nfft = 1 << math.ceil(math.log2(len(x) * 8))
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), nfft))
    df = RATE / nfft
    lo, hi = int((f * 0.97) / df), math.ceil((f * 1.03) / df)
    k = lo + int(np.argmax(spec[lo:hi]))
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-9)
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * df)


def fit(x: np.ndarray[Any, Any], freqs: list[float]) -> tuple[list[float], float]:
    """Least-squares amplitudes of sinusoids at freqs, and the residual/signal energy ratio."""
    t = np.arange(len(x)) / RATE
    cols = []
    for f in freqs:
        cols += [np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)]
    m = np.stack(cols, axis=1)
    coef, *_ = np.linalg.lstsq(m, x, rcond=None)
    amps = [float(math.hypot(coef[2 * i], coef[2 * i + 1])) for i in range(len(freqs))]
    resid = x - m @ coef
    return amps, float(np.sum(resid**2) / max(np.sum(x**2), 1e-9))


def expected_ms(segs: list[Seg], rep: int) -> int:
    """Long enough for the prefix and two full cycles (or the whole play-once tone)."""
    total = sum(s.ms for s in segs)
    if rep < 0:
        return total
    return total + sum(s.ms for s in segs[rep:])


# --------------------------------------------------------------------------- zone tables


def test_zone_names_and_lookup() -> None:
    assert lib.cb_zone_count() == 3
    for name, z in ZONES.items():
        assert ffi.string(lib.cb_zone_name(z)).decode() == name
        assert lib.cb_zone_lookup(name.encode()) == z
        assert lib.cb_zone_lookup(name.upper().encode()) == z
    assert lib.cb_zone_name(3) == ffi.NULL
    assert lib.cb_zone_name(-1) == ffi.NULL
    assert lib.cb_zone_lookup(b"xx") == lib.CB_ERR_INVALID
    assert lib.cb_zone_lookup(ffi.NULL) == lib.CB_ERR_INVALID


@pytest.mark.parametrize(
    ("zone", "ring", "dtmf"),
    [
        ("cn", [1000, 4000, 0, 0], (-1100, -900)),
        ("us", [2000, 4000, 0, 0], (-1000, -1000)),
        ("de", [1000, 4000, 0, 0], (-900, -1100)),
    ],
)
def test_zone_ring_cadence_and_dtmf_levels(zone: str, ring: list[int], dtmf: tuple[int, int]) -> None:
    out = ffi.new("int32_t[4]")
    assert lib.cb_zone_ring_cadence(ZONES[zone], out) == lib.CB_OK
    assert list(out) == ring
    hi, lo = ffi.new("int32_t *"), ffi.new("int32_t *")
    assert lib.cb_zone_dtmf_levels(ZONES[zone], hi, lo) == lib.CB_OK
    assert (hi[0], lo[0]) == dtmf
    assert lib.cb_zone_ring_cadence(7, out) == lib.CB_ERR_INVALID
    assert lib.cb_zone_dtmf_levels(-1, hi, lo) == lib.CB_ERR_INVALID


def _on(f1: int, f2: int, ms: int) -> Seg:
    return Seg(f1, f2, ms, True)


def _off(ms: int) -> Seg:
    return Seg(0, 0, ms, False)


# Figures of line-signals.md ("Tone zones"), written out independently of tone.c.
REFERENCE = {
    ("cn", "dial"): ([_on(450, 0, 1000)], 0),
    ("cn", "busy"): ([_on(450, 0, 350), _off(350)], 0),
    ("cn", "ringback"): ([_on(450, 0, 1000), _off(4000)], 0),
    ("cn", "congestion"): ([_on(450, 0, 700), _off(700)], 0),
    ("cn", "callwait"): ([_on(450, 0, 400), _off(4000)], 0),
    ("cn", "stutter"): ([_on(450, 425, 1000)], 0),
    ("cn", "recall"): ([_on(450, 0, 1000)], 0),
    ("cn", "record"): ([_on(950, 0, 400), _off(10000)], 0),
    ("us", "dial"): ([_on(350, 440, 1000)], 0),
    ("us", "busy"): ([_on(480, 620, 500), _off(500)], 0),
    ("us", "ringback"): ([_on(440, 480, 2000), _off(4000)], 0),
    ("us", "congestion"): ([_on(480, 620, 250), _off(250)], 0),
    ("us", "callwait"): ([_on(440, 0, 300), _off(10000)], 0),
    ("us", "stutter"): ([_on(350, 440, 100), _off(100)] * 6 + [_on(350, 440, 1000)], 12),
    ("us", "record"): ([_on(1400, 0, 500), _off(15000)], 0),
    ("us", "info"): ([_on(950, 0, 330), _on(1400, 0, 330), _on(1800, 0, 330)], -1),
    ("de", "dial"): ([_on(425, 0, 1000)], 0),
    ("de", "busy"): ([_on(425, 0, 480), _off(480)], 0),
    ("de", "ringback"): ([_on(425, 0, 1000), _off(4000)], 0),
    ("de", "congestion"): ([_on(425, 0, 240), _off(240)], 0),
    ("de", "callwait"): ([_on(425, 0, 200), _off(200), _on(425, 0, 200), _off(5000)], 0),
    ("de", "stutter"): ([_on(425, 400, 1000)], 0),
    ("de", "recall"): ([_on(425, 0, 100), _off(100)] * 3 + [_on(425, 0, 1000)], 6),
}


@pytest.mark.parametrize(("zone", "tone"), sorted(REFERENCE))
def test_describe_matches_reference_figures(zone: str, tone: str) -> None:
    assert describe(ZONES[zone], TONES[tone]) == REFERENCE[(zone, tone)]


@pytest.mark.parametrize("zone", ZONES)
def test_confirm_is_three_bursts_of_dial_frequencies_played_once(zone: str) -> None:
    dial, _ = describe(ZONES[zone], lib.CB_TONE_DIAL)
    f1, f2 = dial[0].f1, dial[0].f2
    segs, rep = describe(ZONES[zone], lib.CB_TONE_CONFIRM)
    assert rep == -1
    assert segs == [_on(f1, f2, 100), _off(100), _on(f1, f2, 100), _off(100), _on(f1, f2, 100)]


def test_describe_rejects_bad_arguments_and_truncates() -> None:
    assert lib.cb_tone_describe(3, 0, ffi.NULL, 0, ffi.NULL) == lib.CB_ERR_INVALID
    assert lib.cb_tone_describe(0, lib.CB_TONE_COUNT, ffi.NULL, 0, ffi.NULL) == lib.CB_ERR_INVALID
    assert lib.cb_tone_describe(0, 0, ffi.NULL, 1, ffi.NULL) == lib.CB_ERR_INVALID
    out = ffi.new("cb_tone_seg_t[2]")
    assert lib.cb_tone_describe(ZONES["us"], lib.CB_TONE_STUTTER, out, 2, ffi.NULL) == 13
    assert (out[1].ms, out[1].on) == (100, 0)
    for z, t in PAIRS:
        assert 0 < lib.cb_tone_describe(ZONES[z], TONES[t], ffi.NULL, 0, ffi.NULL) <= lib.CB_TONE_MAX_SEGS


# --------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def all_tones() -> Iterator[tuple[np.ndarray[Any, Any], list[tuple[int, int, int, int, int]]]]:
    """Every tone of every zone, one per channel, started together at tick 0."""
    n = len(PAIRS)
    ticks = max(expected_ms(*describe(ZONES[z], TONES[t])) for z, t in PAIRS) + 20
    bank = lib.cb_tone_gen_init(n)
    ring = Ring()
    for c, (z, t) in enumerate(PAIRS):
        assert lib.cb_tone_gen_start(bank, c, ZONES[z], TONES[t]) == lib.CB_OK
    sig = run(bank, n, ticks, ring.r)
    events = ring.pop()
    lib.cb_tone_gen_free(bank)
    ring.close()
    yield sig, events


@pytest.mark.parametrize(("zone", "tone"), PAIRS)
def test_cadence_frequency_and_level(
    all_tones: tuple[np.ndarray[Any, Any], list[Any]], zone: str, tone: str
) -> None:
    sig_all, _ = all_tones
    x = sig_all[PAIRS.index((zone, tone))].astype(np.float64)
    segs, rep = describe(ZONES[zone], TONES[tone])
    total = expected_ms(segs, rep)
    checked = 0
    for start, seg in timeline(segs, rep, total):
        b0, b1 = start * 8, (start + seg.ms) * 8
        part = x[b0:b1]
        if not seg.on:
            # Silence exactly where the cadence says, to the sample.
            assert not np.any(part), (start, seg)
            continue
        # Sound in every millisecond of the segment (boundaries within 1 ms).
        tick_rms = np.sqrt(np.mean(part.reshape(-1, 8) ** 2, axis=1))
        assert tick_rms.min() > 0.02 * 7219, (start, seg)
        if checked >= 8:
            continue
        checked += 1
        inner = part[8:-8]
        comps = [f for f in (seg.f1, seg.f2) if f]
        measured = [peak_freq(inner, f) for f in comps]
        for f, m in zip(comps, measured, strict=True):
            assert abs(m - f) <= 0.005 * f, (start, f, m)
        amps, resid = fit(inner, [float(f) for f in comps])
        for a in amps:
            assert abs(level_dbm0(a) - LEVEL_DBM0) <= 0.5, (start, level_dbm0(a))
        assert resid < 1e-3, (start, resid)  # nothing else in the segment
        # The first and last 5 ms of the interior hold the same tone (the
        # boundaries are not off by more than 1 ms).
        for edge in (inner[:40], inner[-40:]):
            _, r = fit(edge, [float(f) for f in comps])
            assert r < 1e-2
    assert checked > 0


@pytest.mark.parametrize(("zone", "tone"), [p for p in PAIRS if describe(ZONES[p[0]], TONES[p[1]])[1] >= 0])
def test_repeating_tones_never_stop(
    all_tones: tuple[np.ndarray[Any, Any], list[Any]], zone: str, tone: str
) -> None:
    sig_all, events = all_tones
    c = PAIRS.index((zone, tone))
    segs, rep = describe(ZONES[zone], TONES[tone])
    total = expected_ms(segs, rep)
    last_on = max(s for s, g in timeline(segs, rep, total + 20) if g.on)
    assert np.any(sig_all[c, last_on * 8 : last_on * 8 + 8])
    assert not [e for e in events if e[1] == c]


def test_steady_tone_is_phase_continuous_across_segments(
    all_tones: tuple[np.ndarray[Any, Any], list[Any]],
) -> None:
    sig_all, _ = all_tones
    cases = [
        ("us", "dial", [350.0, 440.0]),
        ("us", "stutter", [350.0, 440.0]),
        ("de", "dial", [425.0]),
        ("de", "stutter", [425.0, 400.0]),
        ("cn", "stutter", [450.0, 425.0]),
    ]
    for z, tone, f in cases:
        c = PAIRS.index((z, tone))
        # 2 s across segment boundaries (at whole seconds; us stutter at 1.2 s + k s).
        x = sig_all[c, 4000 * 8 : 6000 * 8].astype(np.float64)
        _, resid = fit(x, f)
        assert resid < 1e-3, (z, tone, resid)
        # No step larger than the steepest slope of the tone.
        slope = sum(2 * math.pi * fr / RATE * 7219 for fr in f)
        assert np.max(np.abs(np.diff(x))) <= slope * 1.05


@pytest.mark.parametrize(("zone", "tone"), [p for p in PAIRS if describe(ZONES[p[0]], TONES[p[1]])[1] < 0])
def test_play_once_reports_done_once_and_falls_silent(zone: str, tone: str) -> None:
    segs, _ = describe(ZONES[zone], TONES[tone])
    duration = sum(s.ms for s in segs)
    bank = lib.cb_tone_gen_init(4)
    ring = Ring()
    t0 = 1000  # started between ticks 999 and 1000
    run(bank, 4, 10, ring.r, tick0=t0 - 10)
    assert lib.cb_tone_gen_start(bank, 2, ZONES[zone], TONES[tone]) == lib.CB_OK
    assert lib.cb_tone_gen_active(bank, 2) == 1
    x = run(bank, 4, duration + 500, ring.r, tick0=t0)
    events = ring.pop()
    assert events == [(t0 + duration - 1, 2, lib.CB_EV_TONE_DONE, TONES[tone], ZONES[zone])]
    assert np.any(x[2, (duration - 1) * 8 : duration * 8])  # the last tick still sounds
    assert not np.any(x[2, duration * 8 :])
    assert not np.any(x[[0, 1, 3]])
    assert lib.cb_tone_gen_active(bank, 2) == 0
    lib.cb_tone_gen_free(bank)
    ring.close()


def test_stop_silences_at_next_tick_and_restart() -> None:
    bank = lib.cb_tone_gen_init(3)
    ring = Ring()
    assert lib.cb_tone_gen_start(bank, 1, ZONES["us"], lib.CB_TONE_DIAL) == lib.CB_OK
    x = run(bank, 3, 100, ring.r)
    assert np.all(np.sqrt(np.mean(x[1].reshape(-1, 8).astype(np.float64) ** 2, axis=1)) > 100)
    assert lib.cb_tone_gen_stop(bank, 1) == lib.CB_OK
    assert lib.cb_tone_gen_active(bank, 1) == 0
    assert not np.any(run(bank, 3, 50, ring.r, tick0=100))
    assert lib.cb_tone_gen_stop(bank, 1) == lib.CB_OK  # stopping a silent channel is fine
    # A restart plays from the first segment; a start over a playing tone replaces it.
    assert lib.cb_tone_gen_start(bank, 1, ZONES["de"], lib.CB_TONE_BUSY) == lib.CB_OK
    run(bank, 3, 100, ring.r, tick0=150)
    assert lib.cb_tone_gen_start(bank, 1, ZONES["de"], lib.CB_TONE_BUSY) == lib.CB_OK
    y = run(bank, 3, 960, ring.r, tick0=250)[1]
    assert np.all(y[8 : 480 * 8 - 8].reshape(-1, 8).any(axis=1))
    assert not np.any(y[480 * 8 :])
    assert ring.pop() == []
    lib.cb_tone_gen_free(bank)
    ring.close()


def test_bad_arguments() -> None:
    assert lib.cb_tone_gen_init(0) == ffi.NULL
    bank = lib.cb_tone_gen_init(2)
    assert lib.cb_tone_gen_start(bank, 2, 0, 0) == lib.CB_ERR_INVALID
    assert lib.cb_tone_gen_start(bank, -1, 0, 0) == lib.CB_ERR_INVALID
    assert lib.cb_tone_gen_start(bank, 0, 3, 0) == lib.CB_ERR_INVALID
    assert lib.cb_tone_gen_start(bank, 0, 0, lib.CB_TONE_COUNT) == lib.CB_ERR_INVALID
    assert lib.cb_tone_gen_stop(bank, 5) == lib.CB_ERR_INVALID
    assert lib.cb_tone_gen_active(bank, 5) == lib.CB_ERR_INVALID
    lib.cb_tone_gen_free(bank)
    lib.cb_tone_gen_free(ffi.NULL)


def test_bank_channels_are_independent() -> None:
    """Many channels, different tones, starts and stops: each equals a solo run."""
    rng = np.random.default_rng(1234)
    n, ticks = 40, 2500
    plan = []
    for _ in range(n):
        z, t = PAIRS[int(rng.integers(len(PAIRS)))]
        start = int(rng.integers(0, 300))
        stop = int(rng.integers(1200, 3000))  # beyond `ticks`: never stopped
        plan.append((ZONES[z], TONES[t], start, stop))

    def play(width: int, chans: list[int], ring: Any) -> np.ndarray[Any, Any]:
        """Channel chans[i] of the plan on channel i of a bank of `width`."""
        bank = lib.cb_tone_gen_init(width)
        acc = np.zeros((ticks, 8, width), dtype=np.int32)
        p = ffi.cast("int32_t *", ffi.from_buffer("int32_t[]", acc))
        for t in range(ticks):
            for ch, c in enumerate(chans):
                zone, tone, start, stop = plan[c]
                if t == start:
                    assert lib.cb_tone_gen_start(bank, ch, zone, tone) == lib.CB_OK
                if t == stop:
                    assert lib.cb_tone_gen_stop(bank, ch) == lib.CB_OK
            lib.cb_tone_gen_tick(bank, p + t * 8 * width, ring, t)
        lib.cb_tone_gen_free(bank)
        return acc.transpose(2, 0, 1).reshape(width, ticks * 8)

    ring = Ring()
    together = play(n, list(range(n)), ring.r)
    ev_together = sorted(ring.pop())
    ev_solo = []
    for c in range(n):
        solo = play(1, [c], ring.r)
        ev_solo += [(e[0], c, *e[2:]) for e in ring.pop()]
        assert np.array_equal(together[c], solo[0]), c
        assert np.any(solo[0])
    assert ev_together == sorted(ev_solo)
    ring.close()


# --------------------------------------------------------------------------- spandsp peer


def spandsp_tone(f1: int, f2: int, cadence: tuple[int, int, int, int], samples: int) -> np.ndarray[Any, Any]:
    p = slib.tonepeer_new(f1, int(LEVEL_DBM0), f2, int(LEVEL_DBM0) if f2 else 0, *cadence, 1)
    assert p != sffi.NULL
    out = np.zeros(samples, dtype=np.int16)
    assert slib.tonepeer_gen(p, sffi.from_buffer("int16_t[]", out), samples) == samples
    slib.tonepeer_free(p)
    return out


@pytest.mark.parametrize(
    ("zone", "tone"),
    [(z, t) for z in ZONES for t in ("busy", "congestion", "ringback")] + [("de", "callwait")],
)
def test_matches_spandsp_tone_gen(
    all_tones: tuple[np.ndarray[Any, Any], list[Any]], zone: str, tone: str
) -> None:
    sig_all, _ = all_tones
    segs, _ = describe(ZONES[zone], TONES[tone])
    ms = [s.ms for s in segs] + [0, 0]
    total = sum(s.ms for s in segs) * 2
    ours = sig_all[PAIRS.index((zone, tone)), : total * 8].astype(np.float64)
    peer = spandsp_tone(segs[0].f1, segs[0].f2, (ms[0], ms[1], ms[2], ms[3]), total * 8).astype(np.float64)
    # Same on/off pattern, tick by tick.
    on_ours = np.abs(ours.reshape(-1, 8)).max(axis=1) > 0
    on_peer = np.abs(peer.reshape(-1, 8)).max(axis=1) > 0
    assert np.array_equal(on_ours, on_peer)
    # Same components at the same levels in every burst; the same waveform in
    # the first (both start at phase 0; spandsp then runs the phase on through
    # the silences, we restart each burst at phase 0).
    comps = [float(f) for f in (segs[0].f1, segs[0].f2) if f]
    for start, seg in timeline(segs, 0, total):
        if not seg.on:
            continue
        a, b = (start + 1) * 8, (start + seg.ms - 1) * 8
        amps_o, _ = fit(ours[a:b], comps)
        amps_p, _ = fit(peer[a:b], comps)
        for ao, ap in zip(amps_o, amps_p, strict=True):
            assert abs(20 * math.log10(ao / ap)) < 0.1
        if start == 0:
            o, q = ours[a:b], peer[a:b]
            assert np.dot(o, q) / math.sqrt(np.dot(o, o) * np.dot(q, q)) > 0.999
