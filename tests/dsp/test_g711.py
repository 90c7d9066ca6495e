"""G.711: exhaustive comparison with spandsp, round trips, digital milliwatt."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from dsp._binding import load
from tests.peers._spandsp import lib as slib

ffi, lib = load()

ALAW, ULAW = lib.CB_LAW_ALAW, lib.CB_LAW_ULAW
# Level of a full-scale sine, dBm0 (line-signals.md, "G.711 and levels").
FULL_SCALE_DBM0 = {ALAW: 3.14, ULAW: 3.17}
MILLIWATT = {
    ALAW: [0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4],
    ULAW: [0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E],
}
LAWS = [ALAW, ULAW]
ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


def _encode(law: int, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    x = np.ascontiguousarray(x, dtype=np.int16)
    out = np.zeros(len(x), dtype=np.uint8)
    src, dst = ffi.from_buffer("int16_t[]", x), ffi.from_buffer("uint8_t[]", out)
    lib.cb_g711_encode(law, src, dst, len(x))
    return out


def _decode(law: int, codes: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    out = np.zeros(len(codes), dtype=np.int16)
    src, dst = ffi.from_buffer("uint8_t[]", codes), ffi.from_buffer("int16_t[]", out)
    lib.cb_g711_decode(law, src, dst, len(codes))
    return out


def _level_dbm0(law: int, x: np.ndarray[Any, Any]) -> float:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    return 20.0 * math.log10(rms * math.sqrt(2.0) / 32768.0) + FULL_SCALE_DBM0[law]


def _peer_encode(law: int, x: int) -> int:
    return int(slib.linear_to_alaw(x) if law == ALAW else slib.linear_to_ulaw(x))


def _peer_decode(law: int, c: int) -> int:
    return int(slib.alaw_to_linear(c) if law == ALAW else slib.ulaw_to_linear(c))


@pytest.mark.parametrize("law", LAWS)
def test_encode_every_linear_input_as_spandsp(law: int) -> None:
    ref = lib.cb_lin2alaw if law == ALAW else lib.cb_lin2ulaw
    peer = np.array([_peer_encode(law, int(x)) for x in ALL_LINEAR], dtype=np.uint8)
    ours = np.array([ref(int(x)) for x in ALL_LINEAR], dtype=np.uint8)
    fast = _encode(law, ALL_LINEAR)
    assert np.array_equal(ours, peer), np.flatnonzero(ours != peer)[:10]
    assert np.array_equal(fast, peer), np.flatnonzero(fast != peer)[:10]


@pytest.mark.parametrize("law", LAWS)
def test_decode_every_code_as_spandsp(law: int) -> None:
    ref = lib.cb_alaw2lin if law == ALAW else lib.cb_ulaw2lin
    peer = np.array([_peer_decode(law, c) for c in range(256)], dtype=np.int16)
    ours = np.array([ref(c) for c in range(256)], dtype=np.int16)
    assert np.array_equal(ours, peer)
    assert np.array_equal(_decode(law, ALL_CODES), peer)


def test_zero_codes() -> None:
    assert lib.cb_lin2alaw(0) == 0xD5
    assert lib.cb_lin2ulaw(0) == 0xFF


@pytest.mark.parametrize("law", LAWS)
def test_code_linear_code_is_identity(law: int) -> None:
    back = _encode(law, _decode(law, ALL_CODES))
    expected = ALL_CODES.copy()
    if law == ULAW:
        expected[0x7F] = 0xFF  # µ-law negative zero decodes to 0, which encodes as +0
    assert np.array_equal(back, expected), np.flatnonzero(back != expected)


@pytest.mark.parametrize("law", LAWS)
def test_linear_code_linear_is_idempotent(law: int) -> None:
    once = _decode(law, _encode(law, ALL_LINEAR))
    twice = _decode(law, _encode(law, once))
    assert np.array_equal(once, twice)
    # Quantisation error: at most half the largest step (1024), except in the
    # µ-law clipping range above 32635 (top code decodes to 32124).
    err = np.abs(once.astype(np.int32) - ALL_LINEAR.astype(np.int32))
    inside = np.abs(ALL_LINEAR.astype(np.int32)) <= 32635
    assert err[inside].max() <= 512
    assert err.max() <= (512 if law == ALAW else 32768 - 32124)


@pytest.mark.parametrize("law", LAWS)
def test_digital_milliwatt_decodes_to_0dbm0_1khz(law: int) -> None:
    x = _decode(law, np.array(MILLIWATT[law] * 100, dtype=np.uint8))
    assert abs(_level_dbm0(law, x)) <= 0.1
    spec = np.abs(np.fft.rfft(x.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(x), 1.0 / 8000.0)
    assert freqs[int(np.argmax(spec))] == pytest.approx(1000.0)


@pytest.mark.parametrize("law", LAWS)
def test_0dbm0_sine_encodes_as_digital_milliwatt(law: int) -> None:
    amp = 32768.0 * 10.0 ** (-FULL_SCALE_DBM0[law] / 20.0)
    k = np.arange(800)
    x = np.round(-amp * np.sin(2.0 * np.pi * k / 8.0 + np.pi / 8.0)).astype(np.int16)
    assert abs(_level_dbm0(law, x)) <= 0.01
    assert list(_encode(law, x)) == MILLIWATT[law] * 100
