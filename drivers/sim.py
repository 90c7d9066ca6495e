"""The sim card: a software card that is a real backend (see drivers/include/cb_sim.h).

Its far side is reachable in process through :class:`FarSide` (the simulated
world uses it, one control period at a time) or by a peer process over the
far-end socket (:mod:`drivers.farend`, framing in docs/sim-far-end.md).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from drivers._binding import load
from drivers.base import (
    Card,
    CardDescription,
    DchanStats,
    LineLevel,
    SpanConfig,
    SpanCounters,
    SpanFault,
    SpanStatus,
)
from drivers.errors import DriverInitError, DriverOperationError, check
from drivers.hal import EventType, FarError, LineEvent

ffi, lib = load()

_PORT = {"fxo": lib.CB_CHAN_FXO, "fxs": lib.CB_CHAN_FXS}
_SPAN = {"e1": lib.CB_SPAN_E1, "t1": lib.CB_SPAN_T1}
_LAW = {"alaw": lib.CB_LAW_ALAW, "ulaw": lib.CB_LAW_ULAW}
_CLOCK = {"virtual": lib.CB_CLOCK_VIRTUAL, "realtime": lib.CB_CLOCK_REALTIME}
_CODING = {"hdb3": lib.CB_CODING_HDB3, "ami": lib.CB_CODING_AMI, "b8zs": lib.CB_CODING_B8ZS}
_TS16 = {"clear": lib.CB_TS16_CLEAR, "dchan": lib.CB_TS16_DCHAN, "cas": lib.CB_TS16_CAS}
_FAULT = {"clear": lib.CB_FAULT_CLEAR, "cut": lib.CB_FAULT_CUT, "los": lib.CB_FAULT_LOS, "ais": lib.CB_FAULT_AIS,
          "rai": lib.CB_FAULT_RAI}
_COUNTERS = tuple(name for name, _ in ffi.typeof("cb_span_counters_t").fields)
_DCHAN = tuple(f.name for f in fields(DchanStats))


def _framing(c: SpanConfig) -> int:
    if c.kind == "t1":
        return int(lib.CB_FRAMING_T1_D4 if c.framing == "d4" else lib.CB_FRAMING_T1_ESF)
    return int(lib.CB_FRAMING_E1_CRC4 if c.crc4 else lib.CB_FRAMING_E1_G704)


def _config(c: SpanConfig) -> Any:
    """A span's configuration as the card takes it (cb_span_config_t)."""
    return ffi.new("cb_span_config_t *", {"framing": _framing(c), "coding": _CODING[c.coding],
                                          "sync_priority": c.timing, "ts16": _TS16[c.ts16]})


def _status(st: Any) -> SpanStatus:
    return SpanStatus(
        alarm_bits=int(st.alarms),
        sending_rai=bool(st.sending_rai),
        sync=bool(st.sync),
        counters=SpanCounters(**{n: int(getattr(st.counters, n)) for n in _COUNTERS}),
        dchan=DchanStats(**{n: int(getattr(st.dchan, n)) for n in _DCHAN}) if st.has_dchan else None,
    )
# The card's level bits are the neutral ones (tests/drivers/test_sim_card.py checks).
_LEVELS = {LineLevel.HOOK_OFF: lib.CB_LEVEL_OFF_HOOK, LineLevel.RINGING: lib.CB_LEVEL_RINGING,
           LineLevel.BATTERY: lib.CB_LEVEL_BATTERY, LineLevel.POLARITY: lib.CB_LEVEL_REVERSED}
# Every field of cb_sim_stats_t, so a counter added in C shows up here without a change.
_STATS = tuple(name for name, f in ffi.typeof("cb_sim_stats_t").fields if f.type.kind == "primitive")
_PEER = ("first_chan", "nchan", "active", "seq", "start_tick", "answered", "late", "skipped", "stalled", "late_run")
# The card's per-kind counters (cb_sim_stats_t *_by[CB_SIM_KIND_SLOTS]): slot -> card event kind name.
_BY_KIND = ("card_ev_dropped_by", "far_sig_dropped_by", "far_late_events_by")
_CARD_KINDS = {int(lib.cb_kind_slot(int(t))): t.name for t in EventType if t < 0x100}


class SimCard(Card):
    """The software card: analog ports and E1/T1 spans with a scriptable far side."""

    name = "sim"
    capabilities = frozenset({"far_end", "in_process_far_side", "line_levels", "fault_drop_event", "spans"})

    def __init__(self, desc: CardDescription) -> None:
        ports = ffi.new("uint8_t[]", [_PORT[p] for p in desc.ports] or [0])
        spans = ffi.new("uint8_t[]", [_SPAN[s] for s in desc.spans] or [0])
        sim = lib.cb_sim_new(
            len(desc.ports), ports, len(desc.spans), spans, _LAW[desc.law], desc.k, _CLOCK[desc.clock]
        )
        if sim == ffi.NULL:
            raise DriverInitError(f"the sim card could not be made for {desc}")
        self._sim: Any = sim
        self.far = FarSide(self)
        self._nports = len(desc.ports)
        self._levels: Any = ffi.new("uint8_t[]", max(1, self._nports))
        for i in range(len(desc.spans)):
            c = desc.span_config(i)
            try:
                check(lib.cb_card_span_config(lib.cb_sim_card(sim), i, _config(c)), f"span {i}: framing {c}")
            except DriverOperationError as exc:
                lib.cb_sim_free(sim)
                raise DriverInitError(f"the sim card refuses {exc}") from None
        super().__init__(desc)

    @property
    def handle(self) -> int:
        if self._sim is None:
            raise DriverOperationError("the card is closed")
        return int(ffi.cast("uintptr_t", lib.cb_sim_card(self._sim)))

    @property
    def sim(self) -> Any:
        """The C card (cb_sim_t *)."""
        if self._sim is None:
            raise DriverOperationError("the card is closed")
        return self._sim

    def set_tick(self, tick: int) -> None:
        """Start the card's clock at `tick` (before the first block)."""
        check(lib.cb_sim_set_tick(self.sim, tick), "set the card's tick")

    @property
    def tick(self) -> int:
        """The next tick the card will exchange."""
        return int(lib.cb_sim_tick(self.sim))

    def stats(self) -> dict[str, Any]:
        """The card's counters (cb_sim_stats_t): blocks, late blocks, underflows, and the far end's
        lateness, drops and refusals; ``far_refused_by`` maps each reason's name to its count;
        ``card_ev_dropped_by``, ``far_sig_dropped_by`` and ``far_late_events_by`` map each event
        kind's name to how many of that kind were lost (the kinds with a loss only)."""
        st = ffi.new("cb_sim_stats_t *")
        lib.cb_sim_get_stats(self.sim, st)
        out: dict[str, Any] = {name: int(getattr(st, name)) for name in _STATS}
        out["far_refused_by"] = {r.name: int(st.far_refused_by[r.value]) for r in FarError}
        for field in _BY_KIND:
            counts = getattr(st, field)
            out[field] = {_CARD_KINDS.get(slot, f"slot{slot}"): int(counts[slot])
                          for slot in range(lib.CB_SIM_KIND_SLOTS) if counts[slot]}
        return out

    def line_levels(self) -> bytes:
        """The analog ports' current LineLevel bits (safe while the media thread runs:
        the card's levels are single bytes, read whole)."""
        n = check(lib.cb_sim_line_levels(self.sim, self._levels, self._nports), "line levels")
        return bytes(ffi.buffer(self._levels, n))

    def drop_next_event(self, chan: int, type_: EventType) -> None:
        """Fault injection (capability "fault_drop_event"): drop the next `type_` card event of
        `chan` (its level still changes), as a lost event would."""
        check(lib.cb_sim_drop_next_event(self.sim, chan, int(type_)), f"drop the next {type_.name} of channel {chan}")

    def far_peers(self) -> list[dict[str, int]]:
        """The attached far-end peers with their own counters (cb_sim_peer_info_t)."""
        buf = ffi.new("cb_sim_peer_info_t[]", lib.CB_SIM_MAX_PEERS)
        n = check(lib.cb_sim_far_peers(self.sim, buf, lib.CB_SIM_MAX_PEERS), "far-end peers")
        return [{name: int(getattr(p, name)) for name in _PEER} for p in buf[0:n]]

    def set_far_timeout(self, ms: int) -> None:
        """Virtual clock: the dead-peer limit, ms of wall time the card waits for one answer."""
        check(lib.cb_sim_set_far_timeout(self.sim, ms), f"far-end timeout {ms} ms")

    def span_status(self, span: int) -> SpanStatus:
        st = ffi.new("cb_span_status_t *")
        check(lib.cb_card_span_status(lib.cb_sim_card(self.sim), span, st), f"status of span {span}")
        return _status(st)

    def far_span_status(self, span: int) -> SpanStatus:
        """The alarms and counters of span `span`'s in-process far end (its own framer)."""
        st = ffi.new("cb_span_status_t *")
        check(lib.cb_sim_far_span_status(self.sim, span, st), f"far end status of span {span}")
        return _status(st)

    def far_span_config(self, span: int, c: SpanConfig) -> None:
        """Frame span `span`'s in-process far end otherwise than ours (its TS16 role stays ours)."""
        check(lib.cb_sim_far_span_config(self.sim, span, _config(c)), f"far end framing of span {span}")

    def set_sync_source(self, span: int | None) -> None:
        check(lib.cb_card_sync_source(lib.cb_sim_card(self.sim), -1 if span is None else span),
              f"clock from span {span}")

    @property
    def sync_source(self) -> int | None:
        """The span the card's clock was last asked to come from, or None (internal); the card takes it
        from the next block on."""
        n = int(lib.cb_sim_sync(self.sim))
        return None if n < 0 else n

    def span_fault(self, span: int, fault: SpanFault) -> None:
        """What span `span`'s in-process far end does to the line from the next block on: "cut" (no
        signal either way), "los" (it stops sending), "ais", "rai" (it sends them), "clear".
        Raises DriverOperationError for an unknown span or fault, or "rai" on a span a socket peer holds."""
        if fault not in _FAULT:
            raise DriverOperationError(f"unknown span fault {fault!r} (one of {', '.join(_FAULT)})")
        check(lib.cb_sim_span_fault(self.sim, span, _FAULT[fault]), f"fault {fault} on span {span}")

    def set_line_model(self, address: int | None) -> None:
        """Attach the test-only line model at `address` (a cb_line_model_t *, tests/line), or detach it."""
        model = ffi.NULL if address is None else ffi.cast("cb_line_model_t *", address)
        check(lib.cb_sim_set_line_model(self.sim, model), "line model")

    def _close(self) -> None:
        lib.cb_sim_free(self._sim)
        self._sim = None


class FarSide:
    """The sim card's far side, driven in process between blocks.

    On an FXS port it is the phone (hook); on an FXO port the exchange (ring,
    battery, polarity). Audio written here is what the line delivers to the
    card; audio read here is what the card sent, while listening.
    """

    def __init__(self, card: SimCard) -> None:
        self._card = card
        self._poll_max = 4096
        self._poll_buf: Any = ffi.new("cb_event_t[]", self._poll_max)
        self._frame_buf: Any = ffi.new("uint8_t[]", lib.CB_MAX_PAYLOAD)

    def write(self, chan: int, octets: bytes) -> int:
        """Queue G.711 octets from the far side toward the card; returns octets taken."""
        return check(lib.cb_sim_far_write(self._card.sim, chan, octets, len(octets)), "far write")

    def read(self, chan: int, n: int = 65536) -> bytes:
        """Take up to n octets the card sent toward the far side (see :meth:`listen`)."""
        buf = ffi.new("uint8_t[]", n)
        got = check(lib.cb_sim_far_read(self._card.sim, chan, buf, n), "far read")
        return bytes(ffi.buffer(buf, got))

    def write_all(self, octets: Any, nchan: int, n: int) -> None:
        """A period's far-side audio of channels 0..nchan-1 in one call: `n` octets each,
        channel-major in `octets` (bytes or a cffi ``uint8_t[]`` made once by the caller).
        Octets a full FIFO cannot take are counted (``far_fifo_overrun``)."""
        check(lib.cb_sim_far_write_all(self._card.sim, octets, nchan, n), "far write of a period")

    def read_all(self, out: Any, nchan: int, n: int, got: Any = None) -> int:
        """What the card sent on channels 0..nchan-1 in one call: the first `n` octets waiting on
        each channel listened to (:meth:`listen`), channel-major into `out` (a cffi ``uint8_t[]``
        of nchan x n made once by the caller), the idle octet after them where fewer were waiting;
        a channel not listened to is skipped (its part of `out` left as it is). `got` (None, or a
        cffi ``int32_t[nchan]``) takes how many were. Octets beyond n are dropped: returns how many."""
        return check(lib.cb_sim_far_read_all(self._card.sim, out, nchan, n, ffi.NULL if got is None else got),
                     "far read of a period")

    def listen(self, chan: int, on: bool = True) -> None:
        """Keep (or stop keeping) what the card transmits on `chan` for :meth:`read`."""
        check(lib.cb_sim_far_listen(self._card.sim, chan, int(on)), "far listen")

    def signal(self, chan: int, type_: int, value: int = 0, at_tick: int | None = None) -> None:
        """A line change on the far side at `at_tick` (default: the next tick).

        FXS port: HOOK_OFF / HOOK_ON (the phone). FXO port: RING_ON / RING_OFF,
        BATTERY (value 0/1), POLARITY (value 0/1).
        """
        tick = self._card.tick if at_tick is None else at_tick
        rc = lib.cb_sim_far_signal(self._card.sim, chan, int(type_), value, tick)
        if rc < 0:
            raise DriverOperationError(
                f"far-side {EventType(type_).name} on channel {chan} at tick {tick} refused", rc
            )

    def hook(self, chan: int, off_hook: bool, at_tick: int | None = None) -> None:
        """The phone on FXS port `chan` goes off hook (True) or on hook (False)."""
        self.signal(chan, EventType.HOOK_OFF if off_hook else EventType.HOOK_ON, int(off_hook), at_tick)

    def ring(self, chan: int, on: bool, at_tick: int | None = None) -> None:
        """The exchange rings FXO port `chan` (True) or stops ringing it."""
        self.signal(chan, EventType.RING_ON if on else EventType.RING_OFF, int(on), at_tick)

    def poll(self, max_events: int = 4096) -> list[LineEvent]:
        """Line changes the far side has seen since the last poll, with their ticks."""
        if max_events > self._poll_max:
            self._poll_max = max_events
            self._poll_buf = ffi.new("cb_event_t[]", max_events)
        buf = self._poll_buf
        n = lib.cb_sim_far_poll(self._card.sim, buf, max_events)
        if n == 0:
            return []
        return [LineEvent(int(e.tick), int(e.chan), int(e.type), int(e.value)) for e in buf[0:n]]

    def cas(self, chan: int, abcd: int) -> None:
        """The far end sends ABCD `abcd` on CAS timeslot channel `chan` (0000 is refused)."""
        check(lib.cb_sim_far_cas_set(self._card.sim, chan, abcd), f"far end ABCD {abcd:04b} on channel {chan}")

    def cas_received(self, chan: int) -> int:
        """The ABCD the far end receives on CAS timeslot channel `chan`."""
        return check(lib.cb_sim_far_cas_get(self._card.sim, chan), f"far end ABCD of channel {chan}")

    def send_frame(self, span: int, frame: bytes) -> None:
        """The far end sends one frame (without FCS) on span `span`'s D-channel."""
        check(lib.cb_sim_far_frame_send(self._card.sim, span, frame, len(frame)), f"far end frame on span {span}")

    def frames_waiting(self) -> int:
        """The spans whose far end has received frames not yet taken by :meth:`frames`: bit i for span i."""
        return int(lib.cb_sim_far_frames_waiting(self._card.sim))

    def frames(self, span: int) -> list[bytes]:
        """The frames the far end received on span `span`'s D-channel since the last call, in order."""
        buf = self._frame_buf
        out = []
        while (n := check(lib.cb_sim_far_frame_recv(self._card.sim, span, buf, lib.CB_MAX_PAYLOAD),
                          f"far end frames of span {span}")) > 0:
            out.append(bytes(ffi.buffer(buf, n)))
        return out

