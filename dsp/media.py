"""The media tier from Python: queue commands, take events, step the clock.

:class:`Media` owns the C media tier (dsp/include/cb_media.h). Commands go
into a bounded ring and are applied at the start of the next block; a full
ring raises :class:`~dsp.errors.RingFullError` at once (nothing blocks).
Buffers a command points at (digits, FSK octets, prompt samples) are kept
alive here until the matching *_DONE event is taken, or the channel is
silenced.
"""

from __future__ import annotations

from array import array
from typing import Any, NamedTuple

from dsp._binding import load
from dsp.errors import DspCommandError, DspInitError, check

ffi, lib = load()

LAWS = {"alaw": lib.CB_LAW_ALAW, "ulaw": lib.CB_LAW_ULAW}
FSK_STANDARDS = {"bell202": lib.CB_FSK_BELL202, "v23": lib.CB_FSK_V23}
TONES = {
    "dial": lib.CB_TONE_DIAL,
    "ringback": lib.CB_TONE_RINGBACK,
    "busy": lib.CB_TONE_BUSY,
    "congestion": lib.CB_TONE_CONGESTION,
    "callwait": lib.CB_TONE_CALLWAIT,
    "stutter": lib.CB_TONE_STUTTER,
    "confirm": lib.CB_TONE_CONFIRM,
    "recall": lib.CB_TONE_RECALL,
    "record": lib.CB_TONE_RECORD,
    "info": lib.CB_TONE_INFO,
}


class Event(NamedTuple):
    """One event out of the media tier (card events and DSP events alike)."""

    tick: int
    chan: int
    type: int
    value: int
    extra: int


def zone_id(name: str) -> int:
    """The tone zone called `name` ("cn", "us", "de", ...)."""
    z = int(lib.cb_zone_lookup(name.encode()))
    if z < 0:
        known = ", ".join(zone_names())
        raise DspCommandError(f"unknown tone zone {name!r} (known: {known})")
    return z


def zone_names() -> list[str]:
    return [ffi.string(lib.cb_zone_name(z)).decode() for z in range(lib.cb_zone_count())]


def ring_cadence(zone: str) -> tuple[int, int, int, int]:
    """The zone's ring cadence in ms: on, off, on, off."""
    out = ffi.new("int32_t[4]")
    check(lib.cb_zone_ring_cadence(zone_id(zone), out), "ring cadence")
    return (int(out[0]), int(out[1]), int(out[2]), int(out[3]))


def dtmf_levels(zone: str) -> tuple[int, int]:
    """The zone's DTMF levels in centi-dB dBm0: (high group, low group)."""
    hi, lo = ffi.new("int32_t *"), ffi.new("int32_t *")
    check(lib.cb_zone_dtmf_levels(zone_id(zone), hi, lo), "dtmf levels")
    return int(hi[0]), int(lo[0])


class Media:
    """The media tier over `nchan` channels."""

    def __init__(self, nchan: int, law: str = "alaw", cmd_capacity: int = 1024, ev_capacity: int = 8192) -> None:
        if law not in LAWS:
            raise DspInitError(f"law must be 'alaw' or 'ulaw', not {law!r}")
        m = lib.cb_media_init(nchan, LAWS[law], cmd_capacity, ev_capacity)
        if m == ffi.NULL:
            raise DspInitError(f"the media tier could not be made for {nchan} channels")
        self._m: Any = ffi.gc(m, lib.cb_media_free)
        self.nchan = nchan
        self._keep: dict[tuple[int, str], Any] = {}
        self._retired: list[tuple[int, Any]] = []
        self._evbuf = ffi.new("cb_event_t[]", ev_capacity)
        self._evcap = ev_capacity
        self._card_handle: int | None = None

    # -- wiring and clock ------------------------------------------------

    def attach_card(self, handle: int) -> None:
        """Attach a card by its HAL head address (drivers' ``Card.handle``)."""
        rc = lib.cb_media_attach_card(self._m, handle)
        if rc < 0:
            raise DspCommandError("the card does not fit this media tier (channel count or k)", rc)
        self._card_handle = handle

    def step(self, ticks: int) -> None:
        """Virtual clock: run `ticks` ticks now (a multiple of the card's k)."""
        check(lib.cb_media_step(self._m, ticks), f"step {ticks} ticks")

    def process(self, tick0: int, ticks: int, rx: bytes) -> bytes:
        """Run the chain on one block without a card; returns the tx block."""
        tx = ffi.new("uint8_t[]", len(rx))
        check(lib.cb_media_process(self._m, tick0, ticks, rx, tx), "process")
        return bytes(ffi.buffer(tx))

    def start(self, fifo_priority: int = 50, lock_memory: bool = True) -> int:
        """Start the realtime media thread; returns its cb_rt_flags."""
        return check(lib.cb_media_start(self._m, fifo_priority, int(lock_memory)), "start media thread")

    def stop(self) -> None:
        lib.cb_media_stop(self._m)

    @property
    def tick(self) -> int:
        return int(lib.cb_media_tick(self._m))

    def stats(self) -> dict[str, int]:
        st = ffi.new("cb_media_stats_t *")
        lib.cb_media_get_stats(self._m, st)
        names = ("ticks", "blocks", "events_dropped", "commands_failed", "card_errors", "late_max_us", "late_count")
        return {n: int(getattr(st, n)) for n in names}

    def lateness(self) -> list[int]:
        """Wake-up lateness histogram of the realtime thread, 1 us buckets."""
        h = ffi.new("uint32_t[]", lib.CB_MEDIA_LATE_BUCKETS)
        lib.cb_media_get_lateness(self._m, h)
        return list(h)

    def freeze_progress(self, on: bool) -> None:
        """Fault injection: stop (or resume) the progress counter the watchdog reads."""
        lib.cb_media_freeze_progress(self._m, int(on))

    # -- commands --------------------------------------------------------

    def send(self, op: int, chan: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0, ptr: Any = None) -> None:
        """Queue one command (card or media) for the next block."""
        if not 0 <= chan < self.nchan:
            raise DspCommandError(f"channel {chan} out of range 0-{self.nchan - 1}")
        cmd = ffi.new("cb_cmd_t *")
        cmd.op, cmd.chan, cmd.a, cmd.b, cmd.c, cmd.d = op, chan, a, b, c, d
        cmd.ptr = 0 if ptr is None else int(ffi.cast("uintptr_t", ptr))
        check(lib.cb_media_command(self._m, cmd), f"command {op:#x} on channel {chan}")

    def set_law(self, chan: int, law: str) -> None:
        self.send(lib.CB_CMD_LAW, chan, LAWS[law])

    def bridge(self, a: int, b: int) -> None:
        """Connect two channels both ways (two-party)."""
        if not 0 <= b < self.nchan or a == b:
            raise DspCommandError(f"cannot bridge channel {a} with {b}")
        self.send(lib.CB_CMD_BRIDGE, a, b)

    def unbridge(self, chan: int) -> None:
        self.send(lib.CB_CMD_UNBRIDGE, chan)

    def tone(self, chan: int, zone: str, tone: str) -> None:
        """Play one of the zone's tones (dial, ringback, busy, congestion, ...)."""
        if tone not in TONES:
            raise DspCommandError(f"unknown tone {tone!r} (known: {', '.join(TONES)})")
        self.send(lib.CB_CMD_TONE, chan, TONES[tone], zone_id(zone))

    def stop_tone(self, chan: int) -> None:
        self.send(lib.CB_CMD_TONE, chan, -1)

    def dtmf_tx(self, chan: int, digits: str, on_ms: int = 50, off_ms: int = 55,
                level_hi_cdb: int = -1000, level_lo_cdb: int = -1000) -> None:
        """Send DTMF digits; the digits buffer lives until DTMF_TX_DONE."""
        if not digits or any(ch not in "0123456789*#ABCD" for ch in digits):
            raise DspCommandError(f"DTMF digits must be 0-9, *, #, A-D: {digits!r}")
        buf = ffi.new("char[]", digits.encode())
        self._hold(chan, "dtmf", buf)
        self.send(lib.CB_CMD_DTMF_TX, chan, on_ms, off_ms, level_hi_cdb, level_lo_cdb, buf)

    def fsk_tx(self, chan: int, data: bytes, standard: str = "bell202", seizure_bits: int = 300,
               mark_bits: int = 180, level_cdb: int = -1350) -> None:
        """Send octets with an FSK modem (caller ID); the buffer lives until FSK_TX_DONE."""
        if standard not in FSK_STANDARDS:
            raise DspCommandError(f"unknown FSK standard {standard!r} (known: bell202, v23)")
        buf = ffi.new("uint8_t[]", data)
        self._hold(chan, "fsk", buf)
        self.send(lib.CB_CMD_FSK_TX, chan, len(data), FSK_STANDARDS[standard],
                  (seizure_bits & 0xFFFF) | (mark_bits & 0xFFFF) << 16, level_cdb, buf)

    def play(self, chan: int, samples: array[int] | bytes) -> None:
        """Play 16-bit linear samples (8 kHz) on `chan`; they live until PLAY_DONE."""
        raw = samples.tobytes() if isinstance(samples, array) else samples
        if len(raw) % 2:
            raise DspCommandError("prompt samples must be 16-bit: an even number of octets")
        buf = ffi.new("int16_t[]", max(1, len(raw) // 2))
        ffi.memmove(buf, raw, len(raw))
        self._hold(chan, "play", buf)
        self.send(lib.CB_CMD_PLAY, chan, len(raw) // 2, ptr=buf)

    def stop_play(self, chan: int) -> None:
        self.send(lib.CB_CMD_STOP_PLAY, chan)

    def detect_dtmf(self, chan: int, on: bool = True) -> None:
        self.send(lib.CB_CMD_DETECT, chan, lib.CB_DETECT_DTMF if on else 0)

    def fsk_rx(self, chan: int, standard: str | None) -> None:
        """Receive with an FSK modem (None: stop)."""
        self.send(lib.CB_CMD_FSK_RX, chan, -1 if standard is None else FSK_STANDARDS[standard])

    def busy_detect(self, chan: int, on_ms: int, off_ms: int, count: int = 3) -> None:
        """Report CB_EV_BUSY after `count` busy cadences (count 0: stop)."""
        self.send(lib.CB_CMD_BUSY_DETECT, chan, on_ms, off_ms, count)

    def silence(self, chan: int) -> None:
        """Stop every generator on `chan`."""
        self.send(lib.CB_CMD_SILENCE, chan)
        for kind in ("dtmf", "fsk", "play"):
            self._retire(chan, kind)

    # -- events ----------------------------------------------------------

    def events(self) -> list[Event]:
        """Take every waiting event, oldest first."""
        out: list[Event] = []
        while True:
            n = lib.cb_media_events(self._m, self._evbuf, self._evcap)
            for e in self._evbuf[0:n]:
                ev = Event(int(e.tick), int(e.chan), int(e.type), int(e.value), int(e.extra))
                kind = _DONE.get(ev.type)
                if kind is not None:
                    self._keep.pop((ev.chan, kind), None)
                out.append(ev)
            if n < self._evcap:
                break
        # Replaced or stopped buffers are freed once the media tier has surely moved past them.
        now = self.tick
        self._retired = [(t, b) for t, b in self._retired if now <= t + 2 * lib.CB_MAX_BLOCK_TICKS]
        return out

    def _hold(self, chan: int, kind: str, buf: Any) -> None:
        self._retire(chan, kind)
        self._keep[(chan, kind)] = buf

    def _retire(self, chan: int, kind: str) -> None:
        old = self._keep.pop((chan, kind), None)
        if old is not None:
            self._retired.append((self.tick, old))


_DONE = {
    int(lib.CB_EV_DTMF_TX_DONE): "dtmf",
    int(lib.CB_EV_FSK_TX_DONE): "fsk",
    int(lib.CB_EV_PLAY_DONE): "play",
}


def isa() -> str:
    """The instruction set the hot loops run with."""
    return str(ffi.string(lib.cb_media_isa()).decode())


def busy_cadence(zone: str) -> tuple[int, int]:
    """On and off ms of the zone's busy tone (for busy-tone disconnect detection)."""
    segs = ffi.new("cb_tone_seg_t[]", lib.CB_TONE_MAX_SEGS)
    rep = ffi.new("int32_t *")
    n = check(lib.cb_tone_describe(zone_id(zone), lib.CB_TONE_BUSY, segs, lib.CB_TONE_MAX_SEGS, rep), "busy tone")
    on = next(int(s.ms) for s in segs[0:n] if s.on)
    off = next(int(s.ms) for s in segs[0:n] if not s.on)
    return on, off
