"""The sim.sock peers' framer (tests/peers/peer_framer.c, built by `make setup`) as a Python object."""

from __future__ import annotations

from typing import Any

from tests.peers._peer_framer import ffi, lib  # type: ignore[import-not-found]

FRAMINGS = {("e1", False): lib.PF_E1_BASIC, ("e1", True): lib.PF_E1_CRC4,
            ("t1", "d4"): lib.PF_T1_D4, ("t1", "esf"): lib.PF_T1_ESF}


class PeerFramer:
    """One direction pair of a span's framer: `tx` frames a tick, `rx` deframes what arrives."""

    def __init__(self, kind: str, crc4: bool = True, framing: str = "esf") -> None:
        code = FRAMINGS[(kind, crc4)] if kind == "e1" else FRAMINGS[(kind, framing)]
        self.nts = 31 if kind == "e1" else 24
        self.octets = 256 if kind == "e1" else 193
        self._p: Any = ffi.gc(lib.pf_new(code), lib.pf_free)
        self._line = ffi.new("uint8_t[]", self.octets)
        self._ts = ffi.new("uint8_t[]", 8 * self.nts)
        self._out = ffi.new("uint8_t[]", 64 * self.nts)
        self._st = ffi.new("pf_status_t *")

    def tx(self, frames: list[bytes]) -> bytes:
        """8 frames of timeslot octets (TS1 first, nts each) -> one tick of line octets."""
        ffi.memmove(self._ts, b"".join(frames), 8 * self.nts)
        lib.pf_tx(self._p, self._ts, self._line)
        return bytes(ffi.buffer(self._line, self.octets))

    def rx(self, line: bytes, nbits: int | None = None) -> list[bytes]:
        """Line octets in (`nbits` of them, all by default) -> the frames recovered while aligned."""
        n = len(line) * 8 if nbits is None else nbits
        out: list[bytes] = []
        for at in range(0, n, 8 * self.octets):      # a tick at a time: at most 8 frames out, or 16
            chunk = line[at // 8:(at + min(n - at, 8 * self.octets) + 7) // 8]
            buf = ffi.new("uint8_t[]", chunk)
            got = lib.pf_rx(self._p, buf, min(n - at, 8 * self.octets), self._out, 64)
            raw = bytes(ffi.buffer(self._out, got * self.nts))
            out += [raw[i * self.nts:(i + 1) * self.nts] for i in range(got)]
        return out

    def set_rai(self, on: bool) -> None:
        lib.pf_set_rai(self._p, int(on))

    def status(self) -> dict[str, int]:
        lib.pf_status(self._p, self._st)
        return {name: int(getattr(self._st, name)) for name, _ in ffi.typeof("pf_status_t").fields}
