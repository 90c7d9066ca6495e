"""spandsp as the simulated world's far side (appliance.world.FarSignals): the DTMF a phone or
a caller sends, the exchange's caller ID and busy tone, and the caller ID receiver of a phone,
so that in the end-to-end tests neither end of a measured signal is the product's own kernel.

Figures the exchange uses are the reference's (/work/shared/reference/line-signals.md), never
the product's zone table: busy tones per zone, each component at -10 dBm0 (libtonezone).
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

from e1t1.analog.callerid import CallerId
from tests.peers._spandsp import ffi, lib

#: zone -> (f1, f2, on ms, off ms) of the busy tone [dahdi-tools zonedata, line-signals.md]
BUSY = {"cn": (450, 0, 350, 350), "us": (480, 620, 500, 500), "de": (425, 0, 480, 480)}
TONE_DBM0 = -10
ADSI = {"fsk_bell202": lib.ADSI_STANDARD_CLASS, "bell202": lib.ADSI_STANDARD_CLASS,
        "v23": lib.ADSI_STANDARD_CLIP, "dtmf": lib.ADSI_STANDARD_CLIP_DTMF}


def _samples(buf: Any, n: int) -> array[int]:
    return array("h", bytes(ffi.buffer(buf, 2 * n)))


def dtmf(digits: str) -> array[int]:
    """`digits` as spandsp's DTMF generator sends them (its default level and timing)."""
    room = 8000 + 1000 * len(digits)
    buf = ffi.new("int16_t[]", room)
    n = lib.cbpeer_dtmf_tx(digits.encode(), buf, room)
    if n <= 0:
        raise ValueError(f"spandsp made no DTMF of {digits!r}")
    return _samples(buf, n)


def caller_id(standard: str, number: str, when: str = "") -> array[int]:
    """`number`'s caller ID as spandsp's ADSI transmitter sends it: Bell 202 (fsk_bell202) or V.23
    (v23) MDMF with date-time `when` (MMDDHHMM) if given, or DTMF ('A' number 'C')."""
    room = 80000
    buf = ffi.new("int16_t[]", room)
    n = lib.cbpeer_adsi_tx(ADSI[standard], b"" if standard == "dtmf" else when.encode(), number.encode(), b"",
                           buf, room)
    if n <= 0:
        raise ValueError(f"spandsp made no {standard} caller ID of {number!r}")
    return _samples(buf, n)


def busy_tone(zone: str, ms: int) -> array[int]:
    """`ms` of the zone's busy tone from spandsp's tone generator, from the start of a burst."""
    f1, f2, on, off = BUSY[zone]
    gen = lib.tonepeer_new(f1, TONE_DBM0, f2, TONE_DBM0 if f2 else 0, on, off, 0, 0, 1)
    if gen == ffi.NULL:
        raise MemoryError("spandsp tone generator")
    try:
        buf = ffi.new("int16_t[]", ms * 8)
        if lib.tonepeer_gen(gen, buf, ms * 8) != ms * 8:
            raise ValueError(f"spandsp made less than {ms} ms of {zone} busy tone")
        return _samples(buf, ms * 8)
    finally:
        lib.tonepeer_free(gen)


class CallerIdReader:
    """spandsp's FSK caller ID receiver on one phone's line, fed G.711 octets period by period."""

    def __init__(self, standard: str, law: str) -> None:
        rx = lib.cidpeer_new(ADSI[standard])
        if rx == ffi.NULL:
            raise MemoryError("spandsp caller ID receiver")
        self._rx = ffi.gc(rx, lib.cidpeer_free)
        decode = lib.alaw_to_linear if law == "alaw" else lib.ulaw_to_linear     # spandsp's G.711
        self._table = np.array([decode(o) for o in range(256)], dtype=np.int16)
        self._number = ffi.new("char[]", 32)

    def feed(self, octets: bytes) -> list[str | None]:
        if not octets:
            return []
        amp = np.ascontiguousarray(self._table[np.frombuffer(octets, dtype=np.uint8)])
        lib.cidpeer_feed(self._rx, ffi.from_buffer("int16_t[]", amp), len(amp))
        out: list[str | None] = []
        while lib.cidpeer_take(self._rx, self._number, 32):
            out.append(ffi.string(self._number).decode() or None)
        return out


class SpandspSignals:
    """The world's far-side signals made and read by spandsp."""

    def dtmf(self, digits: str) -> array[int]:
        return dtmf(digits)

    def caller_id(self, standard: str, cid: CallerId) -> array[int]:
        when = ""
        if None not in (cid.month, cid.day, cid.hour, cid.minute):
            when = f"{cid.month:02d}{cid.day:02d}{cid.hour:02d}{cid.minute:02d}"
        return caller_id(standard, cid.number or "", when)

    def busy_tone(self, zone: str, ms: int) -> array[int]:
        return busy_tone(zone, ms)

    def caller_id_reader(self, standard: str, law: str) -> CallerIdReader:
        return CallerIdReader(standard, law)
