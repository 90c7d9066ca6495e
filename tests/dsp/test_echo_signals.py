"""The echo canceller's signals (bench/echo_signals.py): Rin's level and steadiness, the echo path's
flat delay, length and ERL, Sin's noise, and the ERLE measure (issue 13, item 6)."""

from __future__ import annotations

import numpy as np
import pytest

from bench import echo_signals as es
from bench.media_tier import speech_like
from tests.signals import level_dbm0, tone

FS = 8000


def test_the_level_convention_is_the_projects() -> None:
    # a sine at -16 dBm0 by the A-law convention of tests/signals.py measures -16 dBm0 here
    x = tone(1000, FS, -16.0)
    assert es.level_dbm0(x) == pytest.approx(-16.0, abs=0.01)
    assert es.level_dbm0(x) == pytest.approx(level_dbm0(x), abs=1e-9)
    assert es.dbm0_rms(-16.0) == pytest.approx(float(np.sqrt(np.mean(x**2))), rel=1e-3)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rin_is_at_minus_16_dbm0(seed: int) -> None:
    rin = es.rin_speech(seed, 2.0)
    assert rin.dtype == np.int16 and len(rin) == 2 * FS
    assert level_dbm0(rin) == pytest.approx(-16.0, abs=0.05)
    assert level_dbm0(es.rin_speech(seed, 1.0, dbm0=-30.0)) == pytest.approx(-30.0, abs=0.05)


def test_rin_has_no_pauses() -> None:
    # every 50 ms window within 2 dB of the whole signal's level; the media bench's speech-like noise
    # with its syllabic pauses (the same generator) fails this by far
    rin = es.rin_speech(7, 4.0)
    windows = [level_dbm0(rin[i:i + 400]) for i in range(0, len(rin) - 399, 400)]
    assert max(abs(w + 16.0) for w in windows) < 2.0
    paused = speech_like(np.random.default_rng(7), 1, 4 * FS, -16.0)[0]
    assert min(level_dbm0(paused[i:i + 400]) for i in range(0, len(paused) - 399, 400)) < -30.0


def test_rin_is_speech_shaped() -> None:
    # more energy around 500 Hz than above 2.5 kHz (the media bench's shape peaks near 500 Hz)
    rin = es.rin_speech(3, 4.0).astype(float)
    spec = np.abs(np.fft.rfft(rin)) ** 2
    f = np.fft.rfftfreq(len(rin), 1 / FS)
    low = spec[(f > 300) & (f < 800)].mean()
    high = spec[(f > 2500) & (f < 3500)].mean()
    assert 10 * np.log10(low / high) > 6


def test_seeds_reproduce_and_differ() -> None:
    assert np.array_equal(es.rin_speech(5, 0.5), es.rin_speech(5, 0.5))
    assert not np.array_equal(es.rin_speech(5, 0.5), es.rin_speech(6, 0.5))
    assert np.array_equal(es.echo_path(5), es.echo_path(5))
    assert not np.array_equal(es.echo_path(5), es.echo_path(6))


@pytest.mark.parametrize("delay_ms", [0, 4, 20, 60, 100])
def test_the_path_is_a_flat_delay_then_an_8_ms_tail(delay_ms: int) -> None:
    path = es.echo_path(11, delay_ms=delay_ms)
    d = delay_ms * 8
    assert len(path) == d + 64
    assert not path[:d].any()
    assert path[d] != 0
    tail = path[d:]
    # exponentially decaying: the first half holds far more energy than the second
    assert 10 * np.log10(np.sum(tail[:32] ** 2) / np.sum(tail[32:] ** 2)) > 10


@pytest.mark.parametrize("delay_ms", [4, 20])
def test_the_echo_returns_after_the_flat_delay(delay_ms: int) -> None:
    # probed with white noise, the cross-correlation of echo and probe is the response: nothing
    # before the delay, its peak within the 8 ms after it
    n = 4 * FS
    w = es.white(3, n, -16.0)
    path = es.echo_path(12, delay_ms=delay_ms)
    echo = es.apply_path(w, path)
    lags = np.arange(0, delay_ms * 8 + 128)
    xc = np.array([np.dot(echo[k:], w[: n - k]) for k in lags]) / np.dot(w, w)
    d = delay_ms * 8
    peak = float(np.abs(xc).max())
    assert np.abs(xc[:d]).max() < 0.1 * peak
    assert d <= int(np.argmax(np.abs(xc))) < d + 64
    assert np.allclose(xc[d:d + 64], path[d:d + 64], atol=0.05 * peak)


@pytest.mark.parametrize("erl", [6.0, 12.0])
def test_the_echo_is_erl_below_rin(erl: float) -> None:
    for seed in range(8):
        rin = es.rin_speech(100 + seed, 2.0)
        echo = es.apply_path(rin, es.echo_path(seed, erl_db=erl))
        assert es.erl_db(rin, echo) == pytest.approx(erl, abs=0.5)


def test_sin_noise_is_minus_60_dbm0_and_2a_has_none() -> None:
    silent = np.zeros(2 * FS, dtype=np.int16)
    path = es.echo_path(1)
    assert level_dbm0(es.sin_signal(1, silent, path)) == pytest.approx(-60.0, abs=0.3)
    assert not es.sin_signal(1, silent, path, noise_dbm0=None).any()
    rin, sin = es.scenario(4, 2.0)
    assert sin.dtype == np.int16 and len(sin) == len(rin)
    assert level_dbm0(sin) == pytest.approx(-22.0, abs=0.6)   # Rin at -16, ERL 6 dB


def test_bank_gives_each_channel_its_own_scenario() -> None:
    rin, sin = es.bank(30, 3, 0.5)
    assert rin.shape == sin.shape == (3, FS // 2) and rin.flags.c_contiguous
    for c in range(3):
        r, s = es.scenario(30 + c, 0.5)
        assert np.array_equal(rin[c], r) and np.array_equal(sin[c], s)


def test_erle() -> None:
    sin = es.rin_speech(2, 1.0).astype(float)
    assert es.erle_db(sin, sin / 10) == pytest.approx(20.0, abs=1e-6)
    assert es.erle_db(sin, np.zeros_like(sin)) > 150
    w = es.erle_windows(sin, np.concatenate([sin[:FS // 2], sin[FS // 2:] / 100]))
    assert len(w) == 2
    assert w[0] == pytest.approx(0.0, abs=1e-9) and w[1] == pytest.approx(40.0, abs=1e-6)
