"""DTMF: the receiver figures of line-signals.md (at the limits too), agreement with spandsp away
from the limits, spandsp's generator read by ours and ours by spandsp's receiver."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from dsp._binding import load
from tests import signals
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib

ffi, lib = load()
KEYS = "123A456B789C*0#D"
ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
#: The receiver's twist limits (line-signals.md, telephony-facts.md; Q.24 leaves them to each
#: Administration): the low group up to 8 dB louder than the high ("normal"), the high group up
#: to 4 dB louder than the low ("reverse"). A twist within them, the limits included, is detected.
NORMAL_TWIST_DB, REVERSE_TWIST_DB = 8.0, 4.0


def ours(x: Any) -> list[tuple[int, int, str, int]]:
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    x = np.concatenate([x, np.zeros((-len(x)) % 8, dtype=np.int16)])
    s = lib.cb_dtmf_rx_init(1)
    ring = lib.cb_ring_init(8192 * 32)
    lib.cb_dtmf_rx_feed(s, ffi.from_buffer("int16_t[]", x), len(x), ring, 0)
    ev = ffi.new("cb_event_t[8192]")
    n = lib.cb_ring_pop_events(ring, ev, 8192)
    lib.cb_dtmf_rx_free(s)
    lib.cb_ring_free(ring)
    return [(int(e.tick), int(e.type), chr(e.value), int(e.extra)) for e in ev[0:n]]


def our_digits(x: Any) -> str:
    return "".join(d for _, t, d, _ in ours(x) if t == lib.CB_EV_DTMF)


def spandsp_digits(x: Any) -> str:
    sig = np.ascontiguousarray(np.clip(np.round(x), -32768, 32767).astype(np.int16))
    buf = sffi.new("char[256]")
    slib.cbpeer_dtmf_rx_run(1, sffi.from_buffer("int16_t[]", sig), len(sig) - len(sig) % 8, 8, buf, 256)
    return str(sffi.string(buf).decode())


def key(k: str, ms: int, level: float = -10.0, offset: float = 0.0, twist_db: float = 0.0,
        pause_ms: int = 60) -> Any:
    """One key: both tones at `level` dBm0 (the high one `twist_db` above), both `offset` off nominal."""
    i = KEYS.index(k)
    t = np.arange(ms * 8) / 8000
    a = 32768 * 10 ** ((level - 3.14) / 20)
    y = a * np.sin(2 * np.pi * ROWS[i // 4] * (1 + offset) * t) + \
        a * 10 ** (twist_db / 20) * np.sin(2 * np.pi * COLS[i % 4] * (1 + offset) * t + 1.0)
    return np.concatenate([np.zeros(pause_ms * 8), y, np.zeros(pause_ms * 8)])


def keypad(**kw: Any) -> Any:
    return np.concatenate([key(k, **kw) for k in KEYS])


@pytest.mark.parametrize("offset", [-0.015, 0.0, 0.015])
@pytest.mark.parametrize("group", ["low", "high", "both"])
def test_accepts_within_1_5_percent(offset: float, group: str) -> None:
    def one(k: str) -> Any:
        i = KEYS.index(k)
        t = np.arange(50 * 8) / 8000
        a = 32768 * 10 ** ((-10 - 3.14) / 20)
        fr = ROWS[i // 4] * (1 + (offset if group in ("low", "both") else 0))
        fc = COLS[i % 4] * (1 + (offset if group in ("high", "both") else 0))
        y = a * np.sin(2 * np.pi * fr * t) + a * np.sin(2 * np.pi * fc * t)
        return np.concatenate([np.zeros(480), y, np.zeros(480)])
    assert our_digits(np.concatenate([one(k) for k in KEYS])) == KEYS


@pytest.mark.parametrize("offset", [-0.06, -0.036, 0.036, 0.06])
def test_rejects_beyond_3_5_percent(offset: float) -> None:
    assert our_digits(keypad(ms=50, offset=offset)) == ""


AT_THE_TWIST_LIMIT = pytest.mark.xfail(
    strict=True, reason="the receiver puts its twist threshold on the limit itself: at -8 dB it finds 6 keys of 16, "
                        "at +4 dB 3 of 16 (spandsp: 12 and 11); the figures say a twist up to the limit is detected")


@pytest.mark.parametrize("twist", [
    0.0, -7.0, 3.0,
    pytest.param(-NORMAL_TWIST_DB, marks=AT_THE_TWIST_LIMIT, id="-8.0-normal-limit"),
    pytest.param(REVERSE_TWIST_DB, marks=AT_THE_TWIST_LIMIT, id="4.0-reverse-limit"),
])
def test_a_twist_within_8_db_normal_and_4_db_reverse_is_detected(twist: float) -> None:
    """`twist`: the high group's level above the low group's, dB (negative: the low group louder)."""
    assert -NORMAL_TWIST_DB <= twist <= REVERSE_TWIST_DB
    assert our_digits(keypad(ms=50, twist_db=twist)) == KEYS


@pytest.mark.parametrize("twist", [-9.0, -12.0, 5.0, 8.0])
def test_a_twist_beyond_the_limits_is_not_detected(twist: float) -> None:
    assert twist < -NORMAL_TWIST_DB or twist > REVERSE_TWIST_DB
    assert our_digits(keypad(ms=50, twist_db=twist)) == ""


@pytest.mark.parametrize(("ms", "ok"), [(10, False), (15, False), (20, False), (40, True), (45, True), (60, True)])
def test_duration_40_ms_accepted_20_ms_rejected(ms: int, ok: bool) -> None:
    assert our_digits(keypad(ms=ms, pause_ms=45)) == (KEYS if ok else "")


@pytest.mark.parametrize("level", [-4.0, -10.0, -20.0, -30.0])
def test_levels_accepted(level: float) -> None:
    assert our_digits(keypad(ms=50, level=level)) == KEYS


def test_below_threshold_rejected() -> None:
    assert our_digits(keypad(ms=50, level=-45.0)) == ""


def test_15_db_snr_ten_digits_exact() -> None:
    rng = np.random.default_rng(1234)
    sig = np.concatenate([key(k, 50) for k in "0123456789"])
    tone_power = 2 * (32768 * 10 ** ((-10 - 3.14) / 20)) ** 2 / 2
    noise = rng.normal(0, np.sqrt(tone_power / 10 ** 1.5), len(sig))
    assert our_digits(sig + noise) == "0123456789"


def test_one_down_and_one_up_per_key_with_its_duration() -> None:
    evs = ours(key("5", 100) + 0)
    assert [(t, d) for _, t, d, _ in evs] == [(lib.CB_EV_DTMF_DOWN, "5"), (lib.CB_EV_DTMF, "5")]
    assert abs(evs[1][3] - 100) <= 24        # duration within two blocks
    assert evs[0][0] * 8 - 480 <= 2 * 96 + 8   # down within two blocks of the tone's start


def speech_like(seconds: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    n = seconds * 8000
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / 8000)
    x = np.fft.irfft(spec * (f / 500) / (1 + (f / 500) ** 2.5), n)
    env = np.clip(np.sin(2 * np.pi * 3.5 * np.arange(n) / 8000) + 0.4, 0, None)
    x = x * env
    x = x / np.sqrt(np.mean(x**2)) * 32768 * 10 ** ((-15 - 3.14) / 20)
    t = np.arange(n) / 8000
    glide = 3000 * np.sin(2 * np.pi * (300 * t + 400 * t**2 / 10))   # sweeping whistles
    return x + glide * (np.sin(2 * np.pi * 0.2 * t) > 0.8)


@pytest.mark.parametrize("seed", [1, 2])
def test_no_talk_off_on_speech_like_noise(seed: int) -> None:
    assert our_digits(speech_like(10, seed)) == ""


# -- against spandsp ---------------------------------------------------------------

INSIDE = [
    ("twist -7 dB", {"twist_db": -7.0}, True), ("twist -9 dB", {"twist_db": -9.0}, False),
    ("twist +3 dB", {"twist_db": 3.0}, True), ("twist +5 dB", {"twist_db": 5.0}, False),
    ("offset +1.0 %", {"offset": 0.010}, True), ("offset -1.0 %", {"offset": -0.010}, True),
    ("offset +4.0 %", {"offset": 0.040}, False), ("offset -4.0 %", {"offset": -0.040}, False),
    ("45 ms", {"ms": 45}, True), ("15 ms", {"ms": 15}, False),
]


@pytest.mark.parametrize(("case", "kw", "accept"), INSIDE, ids=[c[0] for c in INSIDE])
def test_agrees_with_spandsp_away_from_the_limits(case: str, kw: dict[str, Any], accept: bool) -> None:
    x = keypad(**{"ms": 50, **kw})
    mine, theirs = our_digits(x), spandsp_digits(x)
    assert mine == theirs
    assert mine == (KEYS if accept else "")


# At the acceptance limits themselves the figures say "detected" (accept within +-1.5 %, tones of
# 40 ms and more; the twist limits are above); spandsp misses some keys at +-1.5 %, ours may not.
AT_LIMITS: list[tuple[str, dict[str, Any]]] = [
    ("offset +1.5 %", {"offset": 0.015}), ("offset -1.5 %", {"offset": -0.015}), ("40 ms", {"ms": 40})]


@pytest.mark.parametrize(("case", "kw"), AT_LIMITS, ids=[c[0] for c in AT_LIMITS])
def test_at_the_acceptance_limits_every_key_is_detected(case: str, kw: dict[str, Any]) -> None:
    assert our_digits(keypad(**{"ms": 50, "pause_ms": 45, **kw})) == KEYS


def test_spandsp_generator_read_by_ours() -> None:
    for digits in ("123A456B789C*0#D", "0000", "9#*D"):
        buf = sffi.new("int16_t[]", 80000)
        n = slib.cbpeer_dtmf_tx(digits.encode(), buf, 80000)
        x = np.frombuffer(sffi.buffer(buf, 2 * n), dtype=np.int16).astype(float)
        assert our_digits(x) == digits


def our_tx(digits: str, on: int = 50, off: int = 55, hi: int = -1000, lo: int = -1000) -> Any:
    s = lib.cb_dtmf_tx_init(1)
    ring = lib.cb_ring_init(64 * 32)
    buf = ffi.new("char[]", digits.encode())
    assert lib.cb_dtmf_tx_start(s, 0, buf, on, off, hi, lo) == 0
    acc = ffi.new("int32_t[8]")
    out: list[int] = []
    t = 0
    while lib.cb_dtmf_tx_busy(s, 0):
        ffi.memmove(acc, b"\0" * 32, 32)
        lib.cb_dtmf_tx_tick(s, acc, ring, t)
        out += list(acc)
        t += 1
    ev = ffi.new("cb_event_t[4]")
    n = lib.cb_ring_pop_events(ring, ev, 4)
    done = [(int(e.tick), int(e.value)) for e in ev[0:n] if e.type == lib.CB_EV_DTMF_TX_DONE]
    lib.cb_dtmf_tx_free(s)
    lib.cb_ring_free(ring)
    assert done == [(t - 1, len(digits))]
    return np.array(out, dtype=float)


def test_our_generator_read_by_spandsp_and_exact() -> None:
    x = our_tx("123A456B789C*0#D")
    assert spandsp_digits(np.concatenate([x, np.zeros(800)])) == KEYS
    assert len(x) == 16 * (50 + 55) * 8
    y = our_tx("5", on=200, off=10, hi=-700, lo=-1000)
    tone_part, gap = y[: 200 * 8], y[200 * 8:]
    assert not gap.any()
    # Full level from the first 10 ms on (no ramp, no late start): the power sum of -7 and -10 dBm0.
    both = 10 * np.log10(10 ** (-7.0 / 10) + 10 ** (-10.0 / 10))
    assert abs(signals.level_dbm0(tone_part[:80]) - both) < 0.5
    assert np.count_nonzero(tone_part) > 0.95 * len(tone_part)
    for f, lvl in ((770, -10.0), (1336, -7.0)):
        assert abs(signals.component_db(tone_part, f, lvl)) < 0.2
        other = signals.frequency(tone_part - signals.sine_fit(tone_part, 770 if f == 1336 else 1336)[0])
        assert abs(other - f) / f < 0.002


def test_bank_channels_are_independent() -> None:
    n = 5
    s = lib.cb_dtmf_rx_init(n)
    ring = lib.cb_ring_init(1024 * 32)
    lib.cb_dtmf_rx_enable(s, 4, 0)
    sig = np.zeros((n, 8000))
    for c in range(n):
        k = np.concatenate([key("0123"[c % 4], 60), key("#", 60)])
        sig[c, : len(k)] = k
    x = np.ascontiguousarray(np.clip(sig, -32768, 32767).astype(np.int16).reshape(n, -1, 8).transpose(1, 2, 0))
    lib.cb_dtmf_rx_bench(s, ffi.from_buffer("int16_t[]", x), 1000, ring, 0)
    ev = ffi.new("cb_event_t[1024]")
    n = lib.cb_ring_pop_events(ring, ev, 1024)
    got = [(int(e.chan), chr(e.value)) for e in ev[0:n] if e.type == lib.CB_EV_DTMF]
    lib.cb_dtmf_rx_free(s)
    lib.cb_ring_free(ring)
    assert sorted(got) == sorted([(c, d) for c in range(4) for d in ("0123"[c], "#")])


def _bank_events(sig: Any, n: int, switches: dict[int, list[tuple[int, int]]]) -> dict[int, list[tuple[int, int, str]]]:
    """`sig` [ticks, 8, n] through one bank of `n` channels, every channel off but as `switches` says
    (tick -> [(channel, on)] before that tick); each channel's events (tick, type, key)."""
    s = lib.cb_dtmf_rx_init(n)
    ring = lib.cb_ring_init(8192 * 32)
    for c in range(n):
        lib.cb_dtmf_rx_enable(s, c, 0)
    flat = np.ascontiguousarray(sig.astype(np.int16))
    ticks = flat.shape[0]
    edges = sorted(set(switches) | {0, ticks})
    for a, b in itertools.pairwise(edges):
        for c, on in switches.get(a, []):
            assert lib.cb_dtmf_rx_enable(s, c, on) == lib.CB_OK
        lib.cb_dtmf_rx_bench(s, ffi.from_buffer("int16_t[]", flat[a:b]), b - a, ring, a)
    ev = ffi.new("cb_event_t[8192]")
    got = lib.cb_ring_pop_events(ring, ev, 8192)
    lib.cb_dtmf_rx_free(s)
    lib.cb_ring_free(ring)
    out: dict[int, list[tuple[int, int, str]]] = {}
    for e in ev[0:got]:
        out.setdefault(int(e.chan), []).append((int(e.tick), int(e.type), chr(e.value)))
    return out


def test_a_channel_that_starts_detecting_mid_block_hears_what_a_bank_of_its_own_would_hear() -> None:
    """A bank of 100 channels skips the groups of 32 none of which detects; a channel whose group
    wakes mid-block (before the block's half, after it, and right after the group's only detecting
    channel stopped, in the bank's short last group) hears from then on exactly what a one-channel
    bank hears that was fed silence until then: the same keys at the same ticks. Every channel
    carries keys all along, detecting or not."""
    n, ticks = 100, 700
    rng = np.random.default_rng(7)
    sig = np.zeros((ticks, 8, n))
    for c in range(n):
        keys = "".join(rng.choice(list(KEYS), 6))
        x = np.concatenate([key(k, 50, pause_ms=10) for k in keys])
        x = x[: min(len(x), ticks * 8) // 8 * 8]
        sig[: len(x) // 8, :, c] = x.reshape(-1, 8)
    # a block is 12 ticks, its half at 6: tick 17 is before the half of [12, 24), 31 after that of [24, 36)
    switches = {0: [(5, 1), (97, 1)], 17: [(40, 1)], 20: [(97, 0)], 22: [(98, 1)], 31: [(70, 1)]}
    got = _bank_events(sig, n, switches)
    assert set(got) == {5, 40, 70, 98}
    for chan, start in ((5, 0), (40, 17), (70, 31), (98, 22)):
        alone = sig[:, :, chan].copy()
        alone[:start] = 0
        want = _bank_events(alone[:, :, None], 1, {0: [(0, 1)]})[0]
        assert got[chan] == want, chan
        assert len([w for w in want if w[1] == lib.CB_EV_DTMF]) >= 5
