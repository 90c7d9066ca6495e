"""FSK modems (Bell 202, V.23) against spandsp's caller ID transmitter and receiver, and themselves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dsp._binding import load
from e1t1.analog.callerid import CallerId, decode_fsk_message, encode_mdmf, encode_sdmf
from tests import signals
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib

ffi, lib = load()
STD = {"bell202": lib.CB_FSK_BELL202, "v23": lib.CB_FSK_V23}
SPANDSP = {"bell202": slib.ADSI_STANDARD_CLASS, "v23": slib.ADSI_STANDARD_CLIP}
MARK_SPACE = {"bell202": (1200, 2200), "v23": (1300, 2100)}


def our_tx(data: bytes, std: str, seizure: int = 300, marks: int = 180, level_cdb: int = -1350,
           tail_ms: int = 50) -> tuple[Any, list[tuple[int, int, int]]]:
    tx = lib.cb_fsk_tx_init(1)
    ring = lib.cb_ring_init(64 * 32)
    buf = ffi.new("uint8_t[]", data)
    assert lib.cb_fsk_tx_start(tx, 0, STD[std], buf, len(data), seizure, marks, level_cdb) == 0
    acc = ffi.new("int32_t[8]")
    out = []
    events = []
    ev = ffi.new("cb_event_t[64]")
    t = 0
    while lib.cb_fsk_tx_busy(tx, 0) or tail_ms > 0:
        if not lib.cb_fsk_tx_busy(tx, 0):
            tail_ms -= 1
        ffi.memmove(acc, b"\0" * 32, 32)
        lib.cb_fsk_tx_tick(tx, acc, ring, t)
        out += list(acc)
        n = lib.cb_ring_pop_events(ring, ev, 64)
        events += [(int(e.tick), int(e.type), int(e.value)) for e in ev[0:n]]
        t += 1
    lib.cb_fsk_tx_free(tx)
    lib.cb_ring_free(ring)
    return np.array(out, dtype=float), events


def our_rx(samples: Any, std: str) -> bytes:
    x = np.clip(np.round(samples), -32768, 32767).astype(np.int16)
    x = np.concatenate([x, np.zeros((-len(x)) % 8, dtype=np.int16)])
    rx = lib.cb_fsk_rx_init(1)
    ring = lib.cb_ring_init((1 << 14) * 32)
    assert lib.cb_fsk_rx_start(rx, 0, STD[std]) == 0
    assert lib.cb_fsk_rx_feed(rx, ffi.from_buffer("int16_t[]", x), len(x), ring, 0) == len(x) // 8
    ev = ffi.new("cb_event_t[]", 1 << 14)
    n = lib.cb_ring_pop_events(ring, ev, 1 << 14)
    lib.cb_fsk_rx_free(rx)
    lib.cb_ring_free(ring)
    return bytes(int(e.value) for e in ev[0:n] if e.type == lib.CB_EV_FSK_BYTE)


def spandsp_tx(std: int, datetime: str, number: str, name: str) -> Any:
    out = sffi.new("int16_t[]", 80000)
    n = slib.cbpeer_adsi_tx(std, datetime.encode(), number.encode(), name.encode(), out, 80000)
    assert n > 0
    return np.frombuffer(sffi.buffer(out, 2 * n), dtype=np.int16).astype(float)


def spandsp_rx(samples: Any, std: int) -> bytes:
    x = np.ascontiguousarray(np.clip(np.round(samples), -32768, 32767).astype(np.int16))
    msg = sffi.new("uint8_t[256]")
    n = slib.cbpeer_adsi_rx(std, sffi.from_buffer("int16_t[]", x), len(x), msg, 256)
    return bytes(sffi.buffer(msg, max(n, 0)))


@pytest.mark.parametrize("std", ["bell202", "v23"])
def test_spandsp_caller_id_is_read_by_ours(std: str) -> None:
    x = spandsp_tx(SPANDSP[std], "03010930", "13800138000", "GRAND HOTEL")
    got = our_rx(x, std)
    cid = decode_fsk_message(got[got.index(0x80):])
    assert isinstance(cid, CallerId)
    assert (cid.number, cid.name, cid.month, cid.day, cid.hour, cid.minute) == (
        "13800138000", "GRAND HOTEL", 3, 1, 9, 30)


@pytest.mark.parametrize("std", ["bell202", "v23"])
@pytest.mark.parametrize("kind", ["mdmf", "sdmf"])
def test_ours_is_read_by_spandsp(std: str, kind: str) -> None:
    cid = CallerId(number="13800138000" if kind == "mdmf" else "5551234", name="LI NA" if kind == "mdmf" else None,
                   month=11, day=25, hour=14, minute=5)
    data = encode_mdmf(cid) if kind == "mdmf" else encode_sdmf(cid)
    x, _ = our_tx(data, std)
    msg = spandsp_rx(np.concatenate([np.zeros(800), x]), SPANDSP[std])
    assert msg == data[:-1]                 # spandsp checked the checksum and hands over the rest
    out = sffi.new("char[64]")
    if kind == "mdmf":
        assert slib.cbpeer_adsi_field(SPANDSP[std], msg, len(msg), 0x02, out, 64) == 1
        assert sffi.string(out).decode() == "13800138000"


@pytest.mark.parametrize("std", ["bell202", "v23"])
@pytest.mark.parametrize("level_cdb", [-500, -1350, -3500])
def test_round_trip_every_octet_with_noise(std: str, level_cdb: int) -> None:
    data = bytes(range(256))
    x, _ = our_tx(data, std, seizure=300, marks=180, level_cdb=level_cdb)
    rng = np.random.default_rng(1234)
    sig_rms = np.sqrt(np.mean(x[len(x) // 4:] ** 2))
    noisy = x + rng.normal(0, sig_rms / 10, len(x))        # 20 dB S/N
    assert our_rx(x, std) == data                           # clean: exactly the octets, nothing after
    assert our_rx(noisy, std)[:256] == data                 # noisy: every octet right (noise after may read as more)


@pytest.mark.parametrize("std", ["bell202", "v23"])
def test_transmitter_frequencies_phase_and_done_event(std: str) -> None:
    mark, space = MARK_SPACE[std]
    x, events = our_tx(b"\x00" * 4, std, seizure=0, marks=600, tail_ms=0)
    seg = x[80:4000]                                        # marks only
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 1 << 17))
    f = np.argmax(spec) * 8000 / (1 << 17)
    assert abs(f - mark) / mark < 0.01
    x2, _ = our_tx(b"\x00" * 60, std, seizure=0, marks=0, tail_ms=0)
    # each 0x00 octet is 9 space bits (60 samples) then a stop bit: fit the space runs
    fs = [signals.frequency(x2[int(i * 200 / 3) + 6:int(i * 200 / 3) + 54]) for i in range(5, 50, 5)]
    assert all(abs(f2 - space) / space < 0.01 for f2 in fs), fs
    # phase continuous: no jump larger than one sample's worth of the higher tone
    amp = np.max(np.abs(x2))
    assert np.max(np.abs(np.diff(x2))) <= amp * 2 * np.sin(np.pi * space / 8000) * 1.01
    done = [e for e in events if e[1] == lib.CB_EV_FSK_TX_DONE]
    assert done == [(done[0][0], lib.CB_EV_FSK_TX_DONE, 4)]
    bits = 600 + 40 + 4
    assert done[0][0] == (bits * 20 // 3) // 8


def test_a_channel_not_started_is_silent_and_emits_nothing() -> None:
    rx = lib.cb_fsk_rx_init(3)
    tx = lib.cb_fsk_tx_init(3)
    ring = lib.cb_ring_init(64 * 32)
    x, _ = our_tx(encode_mdmf(CallerId(number="123", month=1, day=1, hour=0, minute=0)), "bell202")
    amp = ffi.new("int16_t[24]")
    acc = ffi.new("int32_t[24]")
    for t in range(len(x) // 8):
        for s in range(8):
            amp[s * 3 + 1] = int(x[t * 8 + s])             # signal only on channel 1, receivers all off
        lib.cb_fsk_rx_tick(rx, amp, ring, t)
        lib.cb_fsk_tx_tick(tx, acc, ring, t)
    assert lib.cb_ring_count(ring) == 0 and not any(acc)
    assert lib.cb_fsk_rx_start(rx, 3, lib.CB_FSK_BELL202) == lib.CB_ERR_INVALID
    assert lib.cb_fsk_tx_start(tx, 0, 7, ffi.new("uint8_t[1]"), 1, 0, 0, -1350) == lib.CB_ERR_INVALID
    lib.cb_fsk_rx_free(rx)
    lib.cb_fsk_tx_free(tx)
    lib.cb_ring_free(ring)


def test_spandsp_dtmf_clip_read_by_our_dtmf_detector() -> None:
    """spandsp's DTMF caller ID (CLIP_DTMF, as Chinese exchanges send it) through our DTMF receiver."""
    from e1t1.analog.callerid import decode_dtmf_clip

    out = sffi.new("int16_t[]", 80000)
    n = slib.cbpeer_adsi_tx(slib.ADSI_STANDARD_CLIP_DTMF, b"", b"13800138000", b"", out, 80000)
    assert n > 0
    x = np.frombuffer(sffi.buffer(out, 2 * n), dtype=np.int16)
    x = np.concatenate([x, np.zeros((-len(x)) % 8 + 800, dtype=np.int16)])
    rx = lib.cb_dtmf_rx_init(1)
    ring = lib.cb_ring_init(256 * 32)
    lib.cb_dtmf_rx_feed(rx, ffi.from_buffer("int16_t[]", x), len(x), ring, 0)
    ev = ffi.new("cb_event_t[256]")
    got = "".join(chr(e.value) for e in ev[0:lib.cb_ring_pop_events(ring, ev, 256)] if e.type == lib.CB_EV_DTMF)
    lib.cb_dtmf_rx_free(rx)
    lib.cb_ring_free(ring)
    assert decode_dtmf_clip(got) == CallerId(number="13800138000")
