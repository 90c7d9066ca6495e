"""The line echo canceller bank from Python (dsp/include/cb_echo.h), for tests and benchmarks.

In the appliance the cancellers run inside the channel scheduler's chain, switched by
:meth:`dsp.scheduler.Scheduler.echo`; :class:`EchoBank` runs a bank of its own over whole
signals: ``process(rin, sin) -> sout``, Rin of each tick taken before its Sin is cancelled.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from dsp._binding import load
from dsp.errors import DspCommandError, DspInitError, check

ffi, lib = load()

TAPS_MIN = int(lib.CB_ECHO_TAPS_MIN)
TAPS_MAX = int(lib.CB_ECHO_TAPS_MAX)
TAPS_STEP = int(lib.CB_ECHO_TAPS_STEP)
TAPS_DEFAULT = int(lib.CB_ECHO_TAPS_DEFAULT)
TAPS_RULE = "echo_taps must be 0 (off) or a multiple of 8 from 32 to 512 (8 per ms)"
STATES = {int(lib.CB_ECHO_OFF): "off", int(lib.CB_ECHO_ON): "on", int(lib.CB_ECHO_TONE_DISABLED): "tone-disabled"}
REASONS = {int(lib.CB_ECHO_BY_COMMAND): "command", int(lib.CB_ECHO_BY_TONE): "2100 Hz with phase reversals",
           int(lib.CB_ECHO_BY_TONE_END): "the tone ended"}
_RING_OCTETS = 1 << 16


def taps_valid(taps: int) -> bool:
    """Is `taps` 0 (off) or a multiple of 8 from 32 to 512?"""
    return isinstance(taps, int) and not isinstance(taps, bool) and (
        taps == 0 or (TAPS_MIN <= taps <= TAPS_MAX and taps % TAPS_STEP == 0))


def check_taps(taps: int) -> None:
    if not taps_valid(taps):
        raise DspCommandError(f"{TAPS_RULE}, not {taps!r}")


def echo_flags(nlp: bool = True, cng: bool = True, disabler: bool = True) -> int:
    """The cb_echo_flags of a canceller."""
    return ((int(lib.CB_ECHO_NLP) if nlp else 0) | (int(lib.CB_ECHO_CNG) if cng else 0)
            | (int(lib.CB_ECHO_DISABLER) if disabler else 0))


class EchoEvent(NamedTuple):
    tick: int
    chan: int
    type: int       # lib.CB_EV_ECHO or lib.CB_EV_ANS
    value: int
    extra: int


class EchoBank:
    """`n` echo cancellers, each on with `taps` and `flags` (cb_echo_flags; default NLP, CNG and
    the tone disabler). Channels keep their state from one process() call to the next."""

    def __init__(self, n: int, taps: int = TAPS_DEFAULT, flags: int | None = None) -> None:
        check_taps(taps)
        self.n = n
        self._e = lib.cb_echo_new(n)
        if self._e == ffi.NULL:
            raise DspInitError(f"cannot make an echo canceller bank of {n} channels (1-65535)")
        self._e = ffi.gc(self._e, lib.cb_echo_free)
        self._ring = ffi.gc(lib.cb_ring_init(_RING_OCTETS), lib.cb_ring_free)
        self._ticks = [0] * n
        self._events: list[EchoEvent] = []
        for c in range(n):
            self.set(c, taps, echo_flags() if flags is None else flags)

    def set(self, chan: int, taps: int, flags: int | None = None) -> None:
        """Turn a channel on (reset) with `taps`, or off with 0."""
        check_taps(taps)
        self._chan(chan)
        check(lib.cb_echo_set(self._e, chan, taps, echo_flags() if flags is None else flags),
              f"echo canceller {chan}: {taps} taps, flags {flags}")

    def process(self, rin: Any, sin: Any) -> Any:
        """Cancel: `rin` and `sin` are int16 arrays of one channel ([samples], channel 0) or of
        every channel ([n][samples]), a multiple of 8 samples; returns Sout of the same shape."""
        for name, x in (("rin", rin), ("sin", sin)):
            if np.asarray(x).dtype != np.int16:
                raise ValueError(f"{name} must be int16 samples, not {np.asarray(x).dtype} (nothing is converted)")
        r = np.ascontiguousarray(rin, dtype=np.int16)
        s = np.ascontiguousarray(sin, dtype=np.int16)
        if r.shape != s.shape:
            raise ValueError(f"rin {r.shape} and sin {s.shape} differ")
        one = r.ndim == 1
        r2, s2 = (r[None, :], s[None, :]) if one else (r, s)
        if r2.ndim != 2 or r2.shape[0] > self.n:
            raise ValueError(f"expected [samples] or [channels <= {self.n}][samples], not {r.shape}")
        if r2.shape[1] % 8:
            raise ValueError(f"a signal is a whole number of 1 ms ticks (8 samples), not {r2.shape[1]} samples")
        out = np.empty_like(s2)
        n = r2.shape[1]
        for c in range(r2.shape[0]):
            pr = ffi.cast("const int16_t *", ffi.from_buffer(r2[c]))
            ps = ffi.cast("const int16_t *", ffi.from_buffer(s2[c]))
            po = ffi.cast("int16_t *", ffi.from_buffer(out[c], require_writable=True))
            check(lib.cb_echo_process(self._e, c, pr, ps, po, n, self._ring, self._ticks[c]),
                  f"echo canceller {c}")
            self._ticks[c] += n // 8
            self._drain()
        return out[0] if one else out

    def _drain(self) -> None:
        buf = ffi.new("uint8_t[]", 512)
        while True:
            size = lib.cb_ring_get(self._ring, buf, 512)
            if size <= 0:
                break
            ev = ffi.cast("cb_event_t *", buf)
            self._events.append(EchoEvent(int(ev.tick), int(ev.chan), int(ev.type), int(ev.value), int(ev.extra)))

    def events(self) -> list[EchoEvent]:
        """CB_EV_ECHO and CB_EV_ANS raised so far (taken)."""
        out, self._events = self._events, []
        return out

    def state(self, chan: int) -> str:
        """'off', 'on' or 'tone-disabled'."""
        self._chan(chan)
        return STATES[int(lib.cb_echo_state(self._e, chan))]

    def taps(self, chan: int) -> int:
        self._chan(chan)
        return int(lib.cb_echo_taps(self._e, chan))

    def bulk_delay_ms(self, chan: int) -> float | None:
        """The echo path's flat delay as found, ms; None while not found."""
        self._chan(chan)
        d = float(lib.cb_echo_bulk_delay_ms(self._e, chan))
        return None if d < 0 else d

    def _chan(self, chan: int) -> None:
        if not 0 <= chan < self.n:
            raise DspCommandError(f"channel {chan} out of range 0-{self.n - 1}")
