"""The channel scheduler from Python: queue commands, take events, step the clock.

:class:`Scheduler` owns the C channel scheduler (dsp/sched/include/cb_sched.h),
the media tier's per-tick chain over every channel of a card. Commands go into
a bounded ring and are applied at the start of the next block; a full ring
raises :class:`~dsp.errors.RingFullError` at once (nothing blocks). Records
both ways may carry a payload of up to ``MAX_PAYLOAD`` octets.

Buffers a command points at (digits, FSK octets, prompt samples, taps) are kept
alive here until the scheduler has applied the command that replaced or stopped
them (``cb_sched_applied``, read atomically): only then can no tick be using
them. A buffer is held only once its command was queued, so a refused command
leaves the buffer in use alone.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
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


MAX_PAYLOAD = int(lib.CB_MAX_PAYLOAD)
_EV_HEAD = int(ffi.sizeof("cb_event_t"))
_ALIGN = int(lib.CB_REC_ALIGN)


class Event(NamedTuple):
    """One event out of the scheduler (card events and DSP events alike)."""

    tick: int
    chan: int
    type: int
    value: int
    extra: int
    payload: bytes = b""


def kind_slot(event_type: int) -> int:
    """The per-kind counter slot of an event kind (cb_kind_slot)."""
    return int(lib.cb_kind_slot(event_type))


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


GAIN_MIN_DB = lib.CB_MIX_GAIN_MIN / 100
GAIN_MAX_DB = lib.CB_MIX_GAIN_MAX / 100
_GRAPH_OPS = frozenset({lib.CB_CMD_BRIDGE, lib.CB_CMD_UNBRIDGE, lib.CB_CMD_LISTEN, lib.CB_CMD_UNLISTEN,
                        lib.CB_CMD_MIX_JOIN, lib.CB_CMD_MIX_LEAVE})


def gain_cdb(gain_db: float) -> int:
    """A gain in dB as the media graph takes it (centi-dB), or DspCommandError when it is not a number
    of dB within CB_MIX_GAIN_MIN..CB_MIX_GAIN_MAX (-60..+18 dB)."""
    if isinstance(gain_db, bool) or not isinstance(gain_db, (int, float)) or not math.isfinite(gain_db):
        raise DspCommandError(f"gain {gain_db!r} is not a number of dB")
    cdb = round(gain_db * 100)
    if not lib.CB_MIX_GAIN_MIN <= cdb <= lib.CB_MIX_GAIN_MAX:
        raise DspCommandError(f"gain {gain_db} dB out of range {GAIN_MIN_DB}..{GAIN_MAX_DB} dB")
    return cdb


class MediaGraph:
    """The media graph as the commands queued so far leave it. The scheduler applies graph commands
    in the order they were queued, so checking each against this copy before it is sent refuses, at
    once and with the reason, what the C graph would refuse a block later (a CB_EV_MEDIA_ERROR):
    an unlisten of a source not heard, a fifth edge into a channel, a ninth leg of a conference, a
    65th member of a paging group, a group joined as the other kind, a gain out of range."""

    def __init__(self, nchan: int) -> None:
        self.nchan = nchan
        self.edges: dict[int, dict[int, int]] = {}          # listener -> {source: gain cdB}
        self.group_of: dict[int, int] = {}                  # channel -> its group
        self.members: dict[int, set[int]] = {}              # group -> members (non-empty groups only)
        self.paging: dict[int, bool] = {}                   # group -> a paging group

    def check(self, op: int, chan: int, a: int, b: int, c: int) -> Callable[[], None]:
        """Raise DspCommandError if the C graph would refuse the command; else return what to apply
        to this copy once the command is queued."""
        n = self.nchan
        if op == lib.CB_CMD_BRIDGE:
            if not 0 <= a < n or a == chan:
                raise DspCommandError(f"cannot bridge channel {chan} with {a}")
            return lambda: self._bridge(chan, a)
        if op == lib.CB_CMD_UNBRIDGE:
            return lambda: self._unbridge(chan)
        if op == lib.CB_CMD_LISTEN:
            if not 0 <= a < n or a == chan:
                raise DspCommandError(f"channel {chan} cannot listen to {a}")
            if not lib.CB_MIX_GAIN_MIN <= b <= lib.CB_MIX_GAIN_MAX:
                raise DspCommandError(f"gain {b / 100} dB out of range {GAIN_MIN_DB}..{GAIN_MAX_DB} dB")
            heard = self.edges.get(chan, {})
            if a not in heard and len(heard) >= lib.CB_MIX_MAX_EDGES:
                raise DspCommandError(f"channel {chan} already hears {len(heard)} sources "
                                      f"(at most {lib.CB_MIX_MAX_EDGES}): {sorted(heard)}")
            return lambda: self._listen(chan, a, b)
        if op == lib.CB_CMD_UNLISTEN:
            if a == -1:
                return lambda: self._unlisten_all(chan)
            if not 0 <= a < n:
                raise DspCommandError(f"channel {a} out of range 0-{n - 1}")
            if a not in self.edges.get(chan, {}):
                raise DspCommandError(f"channel {chan} does not listen to {a}")
            return lambda: self._drop_edge(chan, a)
        if op == lib.CB_CMD_MIX_JOIN:
            if not 0 <= a < n:
                raise DspCommandError(f"mix group {a} out of range 0-{n - 1}")
            if not lib.CB_MIX_GAIN_MIN <= b <= lib.CB_MIX_GAIN_MAX:
                raise DspCommandError(f"gain {b / 100} dB out of range {GAIN_MIN_DB}..{GAIN_MAX_DB} dB")
            if c & ~(lib.CB_MIX_TALK | lib.CB_MIX_HEAR | lib.CB_MIX_PAGING):
                raise DspCommandError(f"mix flags {c:#x} unknown")
            paging = bool(c & lib.CB_MIX_PAGING)
            members = self.members.get(a, set())
            others = members - {chan}
            if others and self.paging[a] != paging:
                kind = "a paging group" if self.paging[a] else "a conference"
                raise DspCommandError(f"mix group {a} is {kind}: channel {chan} cannot join it as "
                                      f"{'a paging group' if paging else 'a conference'}")
            limit = lib.CB_MIX_GROUP_MAX if paging else lib.CB_MIX_CONF_MAX
            if chan not in members and len(members) >= limit:
                kind = "a paging group holds" if paging else "a conference holds"
                raise DspCommandError(f"mix group {a} is full: {kind} at most {limit} members")
            return lambda: self._join(chan, a, paging)
        if op == lib.CB_CMD_MIX_LEAVE:
            return lambda: self._leave(chan)
        raise DspCommandError(f"command {op:#x} is not a media graph command")

    def _listen(self, listener: int, source: int, cdb: int) -> None:
        self.edges.setdefault(listener, {})[source] = cdb

    def _unlisten_all(self, listener: int) -> None:
        self.edges.pop(listener, None)

    def _drop_edge(self, listener: int, source: int) -> None:
        heard = self.edges.get(listener, {})
        heard.pop(source, None)
        if not heard:
            self.edges.pop(listener, None)

    def _unbridge(self, chan: int) -> None:
        for source in self.edges.pop(chan, {}):
            self._drop_edge(source, chan)

    def _bridge(self, chan: int, other: int) -> None:
        self._unbridge(chan)
        self._unbridge(other)
        self.edges[chan] = {other: 0}
        self.edges[other] = {chan: 0}

    def _leave(self, chan: int) -> None:
        group = self.group_of.pop(chan, None)
        if group is None:
            return
        self.members[group].discard(chan)
        if not self.members[group]:
            del self.members[group], self.paging[group]

    def _join(self, chan: int, group: int, paging: bool) -> None:
        if self.group_of.get(chan) != group:
            self._leave(chan)
            self.group_of[chan] = group
            self.members.setdefault(group, set()).add(chan)
        self.paging[group] = paging


class Scheduler:
    """The channel scheduler over `nchan` channels.

    `period_ticks` is the control period the event ring is sized for (every
    channel's worst case, twice over); `ev_octets` overrides that size (tests
    of overflow).
    """

    def __init__(self, nchan: int, law: str = "alaw", period_ticks: int = 20, ev_octets: int = 0) -> None:
        if law not in LAWS:
            raise DspInitError(f"law must be 'alaw' or 'ulaw', not {law!r}")
        if ev_octets:
            rc = lib.cb_ring_check_octets(ev_octets) if 0 < ev_octets < 1 << 32 else lib.CB_ERR_INVALID
            check(rc,
                  f"an event ring of {ev_octets} octets: it must hold {lib.CB_RING_MIN_OCTETS}"
                  f"-{lib.CB_RING_MAX_OCTETS} octets (the largest record must fit the empty ring)", DspInitError)
        m = lib.cb_sched_init(nchan, LAWS[law], period_ticks, ev_octets)
        if m == ffi.NULL:
            raise DspInitError(f"the channel scheduler could not be made for {nchan} channels")
        self._m: Any = ffi.gc(m, lib.cb_sched_free)
        self._loss_st: Any = ffi.new("cb_sched_stats_t *")
        self.nchan = nchan
        # The buffer the last command of each (chan, kind) pointed at. It is kept until a later
        # command replaces or stops it, even once its *_DONE came: a DONE still in the ring
        # cannot tell which of two buffers it ended.
        self._keep: dict[tuple[int, str], Any] = {}
        self._retired: list[tuple[int, Any]] = []
        self._sent = 0
        self._evcap = 1 << 16
        self._evbuf = ffi.new("uint8_t[]", self._evcap)
        self._cmd = ffi.new("cb_cmd_t *")
        self._card_handle: int | None = None
        self.graph = MediaGraph(nchan)

    # -- wiring and clock ------------------------------------------------

    def attach_card(self, handle: int) -> None:
        """Attach a card by its HAL head address (drivers' ``Card.handle``)."""
        rc = lib.cb_sched_attach_card(self._m, handle)
        if rc < 0:
            raise DspCommandError("the card does not fit this scheduler (channel count or k)", rc)
        self._card_handle = handle

    def step(self, ticks: int) -> None:
        """Virtual clock: run `ticks` ticks now (a multiple of the card's k)."""
        check(lib.cb_sched_step(self._m, ticks), f"step {ticks} ticks")

    def process(self, tick0: int, ticks: int, rx: bytes) -> bytes:
        """Run the chain on one block without a card; returns the tx block."""
        tx = ffi.new("uint8_t[]", len(rx))
        check(lib.cb_sched_process(self._m, tick0, ticks, rx, tx), "process")
        return bytes(ffi.buffer(tx))

    def process_into(self, tick0: int, ticks: int, rx: Any, tx: Any) -> None:
        """:meth:`process` into buffers of the caller's (cffi ``uint8_t[]`` of nchan x ticks x 8
        octets each, channel-major), made once: nothing is allocated per block."""
        check(lib.cb_sched_process(self._m, tick0, ticks, rx, tx), "process")

    def start(self, fifo_priority: int = 50, lock_memory: bool = True) -> int:
        """Start the realtime media thread; returns its cb_rt_flags."""
        return check(lib.cb_sched_start(self._m, fifo_priority, int(lock_memory)), "start media thread")

    def stop(self) -> None:
        lib.cb_sched_stop(self._m)

    @property
    def tick(self) -> int:
        """The next tick to process (read atomically)."""
        return int(lib.cb_sched_tick(self._m))

    def set_tick(self, tick: int) -> None:
        """Start the clock at `tick` (before the first block; tests of long uptimes)."""
        check(lib.cb_sched_set_tick(self._m, tick), "set tick")

    @property
    def applied(self) -> int:
        """Commands sent whose block has finished (read atomically)."""
        return int(lib.cb_sched_applied(self._m))

    def loss_counts(self) -> tuple[int, int, int, int]:
        """(events_dropped, card_events_dropped, commands_failed, card_errors), read into a struct kept
        for it: the cheap reading the engine takes each period."""
        st = self._loss_st
        lib.cb_sched_get_stats(self._m, st)
        return (st.events_dropped, st.card_events_dropped, st.commands_failed, st.card_errors)

    def stats(self) -> dict[str, int]:
        st = ffi.new("cb_sched_stats_t *")
        lib.cb_sched_get_stats(self._m, st)
        names = ("ticks", "blocks", "events_dropped", "card_events_dropped", "commands_failed",
                 "commands_applied", "card_errors", "late_max_us", "late_count")
        return {n: int(getattr(st, n)) for n in names}

    def dropped_by_kind(self) -> dict[int, int]:
        """Events lost to a full event ring, per counter slot (kind_slot), the non-zero ones."""
        out = {}
        for slot in range(lib.CB_KIND_SLOTS):
            n = int(lib.cb_sched_dropped_kind(self._m, slot))
            if n:
                out[slot] = n
        return out

    def lateness(self) -> list[int]:
        """Wake-up lateness histogram of the realtime thread, 1 us buckets."""
        h = ffi.new("uint32_t[]", lib.CB_SCHED_LATE_BUCKETS)
        lib.cb_sched_get_lateness(self._m, h)
        return list(h)

    def freeze_progress(self, on: bool) -> None:
        """Fault injection: stop (or resume) the progress counter the watchdog reads."""
        lib.cb_sched_freeze_progress(self._m, int(on))

    # -- commands --------------------------------------------------------

    def send(self, op: int, chan: int, a: int = 0, b: int = 0, c: int = 0, d: int = 0, ptr: Any = None,
             payload: bytes = b"") -> None:
        """Queue one command (card or media), with an optional payload, for the next block.

        A media graph command is checked against the graph the queued commands leave (:class:`MediaGraph`)
        and refused here, with its reason, if the graph would refuse it."""
        if not 0 <= chan < self.nchan:
            raise DspCommandError(f"channel {chan} out of range 0-{self.nchan - 1}")
        if len(payload) > MAX_PAYLOAD:
            raise DspCommandError(f"a command payload holds at most {MAX_PAYLOAD} octets, not {len(payload)}")
        applied = self.graph.check(op, chan, a, b, c) if op in _GRAPH_OPS else None
        cmd = self._cmd
        cmd.op, cmd.chan, cmd.a, cmd.b, cmd.c, cmd.d = op, chan, a, b, c, d
        cmd.len, cmd.flags = len(payload), 0
        cmd.ptr = 0 if ptr is None else int(ffi.cast("uintptr_t", ptr))
        check(lib.cb_sched_command(self._m, cmd, payload if payload else ffi.NULL),
              f"command {op:#x} on channel {chan}")
        self._sent += 1
        if applied is not None:
            applied()

    def set_law(self, chan: int, law: str) -> None:
        self.send(lib.CB_CMD_LAW, chan, LAWS[law])

    def bridge(self, a: int, b: int) -> None:
        """Connect two channels both ways at 0 dB (two-party); earlier edges of both go."""
        self.send(lib.CB_CMD_BRIDGE, a, b)

    def unbridge(self, chan: int) -> None:
        """Remove every edge into `chan` and from it into the channels it heard."""
        self.send(lib.CB_CMD_UNBRIDGE, chan)

    def listen(self, listener: int, source: int, gain_db: float = 0.0) -> None:
        """`listener` hears what `source` receives, at `gain_db` (one-way edge, -60..+18 dB; at most
        CB_MIX_MAX_EDGES into one listener)."""
        self.send(lib.CB_CMD_LISTEN, listener, source, gain_cdb(gain_db))

    def unlisten(self, listener: int, source: int | None = None) -> None:
        """`listener` stops hearing `source` (None: every source); a source it does not hear is refused."""
        self.send(lib.CB_CMD_UNLISTEN, listener, -1 if source is None else source)

    def mix_join(self, chan: int, group: int, talk: bool = True, hear: bool = True, gain_db: float = 0.0,
                 paging: bool = False) -> None:
        """`chan` joins mix group `group`: it hears the others that talk, never itself. A group is a
        conference of up to CB_MIX_CONF_MAX legs, or with `paging` (said by every member) a paging
        group of up to CB_MIX_GROUP_MAX; one more is refused."""
        flags = ((lib.CB_MIX_TALK if talk else 0) | (lib.CB_MIX_HEAR if hear else 0)
                 | (lib.CB_MIX_PAGING if paging else 0))
        self.send(lib.CB_CMD_MIX_JOIN, chan, group, gain_cdb(gain_db), flags)

    def mix_leave(self, chan: int) -> None:
        self.send(lib.CB_CMD_MIX_LEAVE, chan)

    def tap(self, chan: int, frames: int = 1 << 15) -> Tap:
        """Copy what `chan` receives and transmits into a sample ring (recording, fax)."""
        t = Tap(frames)
        self.send(lib.CB_CMD_TAP, chan, ptr=t.handle)
        self._hold(chan, "tap", t)
        return t

    def tap_stop(self, chan: int) -> None:
        """Stop the tap on `chan`; its ring is freed once the scheduler is past it."""
        self.send(lib.CB_CMD_TAP_STOP, chan)
        self._retire(chan, "tap")

    def loopback(self, chan: int, payload: bytes, value: int = 0) -> None:
        """Send a record that comes back as a CB_EV_LOOPBACK event with the same payload (ring tests)."""
        self.send(lib.CB_CMD_LOOPBACK, chan, value, payload=payload)

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
        self.send(lib.CB_CMD_DTMF_TX, chan, on_ms, off_ms, level_hi_cdb, level_lo_cdb, buf)
        self._hold(chan, "dtmf", buf)

    def fsk_tx(self, chan: int, data: bytes, standard: str = "bell202", seizure_bits: int = 300,
               mark_bits: int = 180, level_cdb: int = -1350) -> None:
        """Send octets with an FSK modem (caller ID); the buffer lives until FSK_TX_DONE."""
        if standard not in FSK_STANDARDS:
            raise DspCommandError(f"unknown FSK standard {standard!r} (known: bell202, v23)")
        buf = ffi.new("uint8_t[]", data)
        self.send(lib.CB_CMD_FSK_TX, chan, len(data), FSK_STANDARDS[standard],
                  (seizure_bits & 0xFFFF) | (mark_bits & 0xFFFF) << 16, level_cdb, buf)
        self._hold(chan, "fsk", buf)

    def play(self, chan: int, samples: array[int] | bytes | PlayBuffer, count: int | None = None) -> None:
        """Play 16-bit linear samples (8 kHz) on `chan`: `count` of them (default: all), going round
        the buffer when `count` is more. Samples given as an array or bytes are copied and live
        until PLAY_DONE; a :class:`PlayBuffer` is played where it is (many plays share it)."""
        if isinstance(samples, PlayBuffer):
            buf: Any = samples
            ptr, n, coded = samples.ptr, samples.samples, samples.coded
        else:
            raw = samples.tobytes() if isinstance(samples, array) else samples
            if len(raw) % 2:
                raise DspCommandError("prompt samples must be 16-bit: an even number of octets")
            n = len(raw) // 2
            buf = ptr = ffi.new("int16_t[]", max(1, n))
            ffi.memmove(buf, raw, len(raw))
            coded = lib.CB_PLAY_LINEAR
        total = n if count is None else count
        if total < 0 or (total > 0 and n == 0):
            raise DspCommandError(f"cannot play {total} samples of a buffer of {n}")
        if total > 0x7FFFFFFF:
            raise DspCommandError(f"a play holds at most {0x7FFFFFFF} samples, not {total}")
        self.send(lib.CB_CMD_PLAY, chan, total, 0 if total == n else n, coded, ptr=ptr)
        self._hold(chan, "play", buf)

    def stop_play(self, chan: int) -> None:
        self.send(lib.CB_CMD_STOP_PLAY, chan)
        self._retire(chan, "play")

    def echo(self, chan: int, taps: int, nlp: bool = True, cng: bool = True, disabler: bool = True) -> None:
        """Turn `chan`'s echo canceller on with `taps` (reset: filters zero, delay unknown), or off
        with 0. Refused here, before queueing, unless taps is 0 or a multiple of 8 from 32 to 512."""
        from dsp.echo import check_taps, echo_flags

        check_taps(taps)
        self.send(lib.CB_CMD_ECHO, chan, taps, echo_flags(nlp, cng, disabler))

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
        buf = self._evbuf
        while True:
            n = lib.cb_sched_events(self._m, buf, self._evcap)
            off = 0
            for _ in range(n):
                e = ffi.cast("cb_event_t *", buf + off)
                plen = int(e.len)
                payload = bytes(ffi.buffer(buf + off + _EV_HEAD, plen)) if plen else b""
                ev = Event(int(e.tick), int(e.chan), int(e.type), int(e.value), int(e.extra), payload)
                out.append(ev)
                off += (_EV_HEAD + plen + _ALIGN - 1) & ~(_ALIGN - 1)
            if n == 0:
                break
        # Replaced or stopped buffers go once the command that replaced them has been applied.
        if self._retired:
            done = self.applied
            self._retired = [(seq, b) for seq, b in self._retired if done < seq]
        return out

    def _hold(self, chan: int, kind: str, buf: Any) -> None:
        """`buf` is what the command just queued on (chan, kind) points at; the one before it
        goes once that command has been applied. Called only after the command was queued, so
        a refused command leaves the buffer in use alone."""
        self._retire(chan, kind)
        self._keep[(chan, kind)] = buf

    def _retire(self, chan: int, kind: str) -> None:
        """The buffer of (chan, kind) is free once the command just queued (which replaced or
        stopped it) has been applied."""
        old = self._keep.pop((chan, kind), None)
        if old is not None:
            self._retired.append((self._sent, old))


class PlayBuffer:
    """Samples loaded once for many plays (:meth:`Scheduler.play`): 16-bit linear at 8 kHz, and,
    given a `law`, the same samples as G.711 octets of that law beside them, which a channel of
    that law that sends nothing else and hears nothing sends as they are (a copy, no encoding).
    It must outlive every play of it; the scheduler keeps it while one may still run."""

    def __init__(self, samples: array[int] | bytes, law: str | None = None) -> None:
        raw = samples.tobytes() if isinstance(samples, array) else bytes(samples)
        if len(raw) % 2:
            raise DspCommandError("play samples must be 16-bit: an even number of octets")
        if law is not None and law not in LAWS:
            raise DspCommandError(f"law must be 'alaw' or 'ulaw', not {law!r}")
        n = len(raw) // 2
        self.samples = n
        self.law = law
        self._mem: Any = ffi.new("uint8_t[]", max(1, 2 * n + (n if law else 0)))
        ffi.memmove(self._mem, raw, len(raw))
        lin = ffi.cast("int16_t *", self._mem)
        if law is not None:
            lib.cb_g711_encode(LAWS[law], lin, self._mem + 2 * n, n)
        self.coded = {None: lib.CB_PLAY_LINEAR, "alaw": lib.CB_PLAY_ALAW, "ulaw": lib.CB_PLAY_ULAW}[law]
        self.ptr: Any = lin


class Tap:
    """A sample ring the scheduler fills with one channel's received and transmitted samples."""

    def __init__(self, frames: int) -> None:
        t = lib.cb_tap_init(frames)
        if t == ffi.NULL:
            raise DspInitError(f"a tap of {frames} frames could not be made")
        self.handle: Any = ffi.gc(t, lib.cb_tap_free)

    def read(self, max_frames: int = 1 << 15) -> tuple[list[int], list[int]]:
        """Take up to `max_frames` frames: (received samples, transmitted samples)."""
        rx = ffi.new("int16_t[]", max_frames)
        tx = ffi.new("int16_t[]", max_frames)
        n = lib.cb_tap_read(self.handle, rx, tx, max_frames)
        return list(rx[0:n]), list(tx[0:n])

    @property
    def overruns(self) -> int:
        return int(lib.cb_tap_overruns(self.handle))




def isa() -> str:
    """The instruction set the hot loops run with."""
    return str(ffi.string(lib.cb_sched_isa()).decode())


def busy_cadence(zone: str) -> tuple[int, int]:
    """On and off ms of the zone's busy tone (for busy-tone disconnect detection)."""
    segs = ffi.new("cb_tone_seg_t[]", lib.CB_TONE_MAX_SEGS)
    rep = ffi.new("int32_t *")
    n = check(lib.cb_tone_describe(zone_id(zone), lib.CB_TONE_BUSY, segs, lib.CB_TONE_MAX_SEGS, rep), "busy tone")
    on = next(int(s.ms) for s in segs[0:n] if s.on)
    off = next(int(s.ms) for s in segs[0:n] if not s.on)
    return on, off
