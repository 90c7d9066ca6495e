"""Signal measurements for tests: frequency, level in dBm0, SINAD, tone leakage, delay."""

from __future__ import annotations

from typing import Any

import numpy as np

FS = 8000


def tone(freq: float, n: int, dbm0: float, start: int = 0) -> Any:
    """A sine at `dbm0` (A-law convention: 0 dBm0 = 32768 * 10^(-3.14/20) peak)."""
    amp = 32768 * 10 ** ((dbm0 - 3.14) / 20)
    t = (np.arange(n) + start) / FS
    return amp * np.sin(2 * np.pi * freq * t)


def level_dbm0(x: Any) -> float:
    """RMS level in dBm0 (A-law convention)."""
    rms = float(np.sqrt(np.mean(np.asarray(x, dtype=float) ** 2)))
    return float(20 * np.log10(max(rms, 1e-9) * np.sqrt(2) / 32768) + 3.14)


def sine_fit(x: Any, freq: float) -> tuple[Any, float]:
    """Least-squares fit of a sine (and offset) at `freq`: (fitted, amplitude)."""
    x = np.asarray(x, dtype=float)
    t = np.arange(len(x)) / FS
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return basis @ coef, float(np.hypot(coef[0], coef[1]))


def frequency(x: Any) -> float:
    """Frequency of the dominant tone (FFT peak refined by least-squares search)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    win = np.hanning(n)
    spec = np.abs(np.fft.rfft(x * win, n * 8))
    f0 = float(np.argmax(spec[1:]) + 1) * FS / (n * 8)
    best, best_amp = f0, 0.0
    for f in np.arange(f0 - 2, f0 + 2, 0.05):
        _, amp = sine_fit(x, float(f))
        if amp > best_amp:
            best, best_amp = float(f), amp
    return best


def sinad_db(x: Any, freq: float) -> float:
    """Signal to noise-and-distortion: the fitted sine against everything else."""
    x = np.asarray(x, dtype=float)
    fitted, _ = sine_fit(x, freq)
    resid = x - fitted
    return float(10 * np.log10(np.sum(fitted**2) / max(np.sum(resid**2), 1e-9)))


def component_db(x: Any, freq: float, ref_dbm0: float) -> float:
    """Level of the component at `freq` relative to `ref_dbm0`, in dB."""
    _, amp = sine_fit(x, freq)
    level = 20 * np.log10(max(amp, 1e-9) / 32768) + 3.14
    return float(level - ref_dbm0)


def delay_of(sent: bytes, got: bytes, max_delay: int) -> int | None:
    """The shift d such that got[d:d+len] == sent[:len] over the overlap, or None."""
    for d in range(max_delay + 1):
        n = min(len(sent), len(got) - d)
        if n > 800 and got[d:d + n] == sent[:n]:
            return d
    return None


def peak_xcorr(heard: Any, ref: Any, max_lag: int) -> float:
    """Peak normalised cross-correlation of `ref` against `heard`, lags 0..max_lag samples."""
    best = 0.0
    n = len(ref)
    rn = np.linalg.norm(ref)
    for lag in range(0, max_lag + 1):
        seg = heard[lag:lag + n]
        if len(seg) < n:
            break
        denom = rn * np.linalg.norm(seg)
        if denom > 0:
            best = max(best, float(np.dot(seg, ref) / denom))
    return best
