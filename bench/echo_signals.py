"""The echo canceller's signals (issue 13), shared by tests/ and bench/echo.py.

Rin (what we send to the line) is the media bench's speech-shaped noise (bench/media_tier.py's
speech_like) without its syllabic pauses, at -16 dBm0 by default. The echo path is a seeded,
exponentially decaying response (8 ms by default) behind a flat delay (4 ms), scaled so that the
echo of speech-shaped noise is `erl_db` (6 dB) below it. Sin (what the line delivers) is that echo
plus white noise at -60 dBm0 (G.168 test 2B; 2A has none). ERLE = 10 log10(P(Sin) / P(Sout)),
taken by the tests over 500 ms with no near-end speech.

Levels follow the project's A-law convention (tests/signals.py, bench/media_tier.py): a sine of peak
32768 * 10^((L - 3.14) / 20) is at L dBm0, so a signal of RMS r is at 20 log10(r sqrt(2) / 32768) +
3.14 dBm0.

Seeds: rin_speech, echo_path and white draw from separate streams of one seed (numpy's
default_rng([seed, stream])), so the same seed may be given to all three. Samples are int16 where
they go into a canceller (rin_speech, sin_signal) and float64 otherwise.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.media_tier import speech_like

FS = 8000
TAPS_PER_MS = FS // 1000
RIN_DBM0 = -16.0
SIN_NOISE_DBM0 = -60.0
ERLE_WINDOW = FS // 2          # 500 ms
_RIN, _PATH, _WHITE = 1, 2, 3  # the seed's streams
_TAIL_DECAYS = 4.0             # the response falls by e^-4 (about 35 dB) over its length


def dbm0_rms(dbm0: float) -> float:
    """The RMS value (int16 units) of a signal at `dbm0`."""
    return float(32768 * 10 ** ((dbm0 - 3.14) / 20) / np.sqrt(2))


def level_dbm0(x: Any) -> float:
    """The RMS level of `x` in dBm0 (-200 for silence)."""
    p = float(np.mean(np.asarray(x, dtype=np.float64) ** 2))
    if p <= 0:
        return -200.0
    return float(10 * np.log10(p) + 20 * np.log10(np.sqrt(2) / 32768) + 3.14)


def to_int16(x: Any) -> Any:
    """Rounded and clipped to int16."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64)), -32768, 32767).astype(np.int16)


def _samples(seconds: float) -> int:
    return round(seconds * FS)


def _speech(rng: np.random.Generator, n: int, dbm0: float) -> Any:
    return speech_like(rng, 1, n, dbm0, pauses=False)[0]


def rin_speech(seed: int, seconds: float, dbm0: float = RIN_DBM0) -> Any:
    """Speech-shaped noise without pauses at `dbm0`: int16, `seconds` * 8000 samples."""
    return to_int16(_speech(np.random.default_rng([seed, _RIN]), _samples(seconds), dbm0))


@functools.lru_cache(maxsize=1)
def _reference_speech() -> Any:
    """4 s of the speech-shaped noise (its own fixed seed) that echo paths are scaled against."""
    return _speech(np.random.default_rng([0, 0]), 4 * FS, RIN_DBM0)


def echo_path(seed: int, delay_ms: float = 4.0, erl_db: float = 6.0, tail_ms: float = 8.0) -> Any:
    """The echo path's impulse response (float64): round(delay_ms * 8) zeros (the flat delay), then
    tail_ms * 8 taps of seeded Gaussian noise under an exponentially decaying envelope, scaled so
    that speech-shaped noise comes back `erl_db` below its own level."""
    if delay_ms < 0 or tail_ms <= 0:
        raise ValueError("delay_ms must be >= 0 and tail_ms > 0")
    rng = np.random.default_rng([seed, _PATH])
    length = max(1, round(tail_ms * TAPS_PER_MS))
    tail = rng.standard_normal(length) * np.exp(-_TAIL_DECAYS * np.arange(length) / length)
    ref = _reference_speech()
    gain = np.mean(np.convolve(ref, tail)[: len(ref)] ** 2) / np.mean(ref**2)
    tail *= np.sqrt(10 ** (-erl_db / 10) / gain)
    return np.concatenate([np.zeros(round(delay_ms * TAPS_PER_MS)), tail])


def apply_path(rin: Any, path: Any) -> Any:
    """The echo of `rin` through `path` (float64, len(rin) samples; zero history before rin)."""
    x = np.asarray(rin, dtype=np.float64)
    return np.convolve(x, np.asarray(path, dtype=np.float64))[: len(x)]


def white(seed: int, n: int, dbm0: float) -> Any:
    """n samples of Gaussian white noise at `dbm0` (float64)."""
    return np.random.default_rng([seed, _WHITE]).standard_normal(n) * dbm0_rms(dbm0)


def sin_signal(seed: int, rin: Any, path: Any, noise_dbm0: float | None = SIN_NOISE_DBM0) -> Any:
    """Sin: the echo of `rin` through `path` plus white noise at `noise_dbm0` (None: no noise, as
    test 2A), int16."""
    echo = apply_path(rin, path)
    if noise_dbm0 is not None:
        echo = echo + white(seed, len(echo), noise_dbm0)
    return to_int16(echo)


def scenario(seed: int, seconds: float, delay_ms: float = 4.0, erl_db: float = 6.0,
             noise_dbm0: float | None = SIN_NOISE_DBM0, tail_ms: float = 8.0) -> tuple[Any, Any]:
    """(rin, sin) of one channel, both int16: test 2B by default, 2A with noise_dbm0=None."""
    rin = rin_speech(seed, seconds)
    return rin, sin_signal(seed, rin, echo_path(seed, delay_ms, erl_db, tail_ms), noise_dbm0)


def bank(seed: int, nchan: int, seconds: float, delay_ms: float = 4.0, erl_db: float = 6.0,
         noise_dbm0: float | None = SIN_NOISE_DBM0) -> tuple[Any, Any]:
    """(rin, sin) of `nchan` channels, each [nchan][n] int16 C-contiguous: channel c is
    scenario(seed + c, ...), so every channel has its own speech and its own echo path."""
    n = _samples(seconds)
    rin = np.empty((nchan, n), dtype=np.int16)
    sin = np.empty((nchan, n), dtype=np.int16)
    for c in range(nchan):
        rin[c], sin[c] = scenario(seed + c, seconds, delay_ms, erl_db, noise_dbm0)
    return rin, sin


def erl_db(rin: Any, echo: Any) -> float:
    """Echo return loss: 10 log10(P(rin) / P(echo))."""
    return level_dbm0(rin) - level_dbm0(echo)


def erle_db(sin: Any, sout: Any) -> float:
    """Echo return loss enhancement: 10 log10(P(sin) / P(sout)) over the samples given (the tests
    give 500 ms with no near-end speech). Sout of digital silence counts as 200 dB below Sin."""
    return level_dbm0(sin) - level_dbm0(sout)


def erle_windows(sin: Any, sout: Any, window: int = ERLE_WINDOW) -> Any:
    """ERLE (dB) of each whole window of `window` samples (500 ms by default), as an array."""
    nwin = min(len(sin), len(sout)) // window
    return np.array([erle_db(sin[i * window:(i + 1) * window], sout[i * window:(i + 1) * window])
                     for i in range(nwin)])
