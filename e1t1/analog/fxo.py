"""The FXO trunk (loop start): we are a phone on an exchange line.

It answers on the configured ring, takes the call's caller ID, reports the caller's
digits, and notices the far end hang up by the trunk's disconnect signals (battery loss,
polarity reversal, busy tone). It commands the card through a
:class:`~e1t1.analog.port.LinePort` and reports by events (e1t1.analog.events).

A caller's identity never crosses calls. Caller ID belongs to the call it starts: a
caller-ID start (the start code of DTMF caller ID, sent before ring 1; the channel
seizure of FSK caller ID, sent after ring 1) begins a new call's identity and puts the
ring count where that signal stands in a ringing cycle (before ring 1, after ring 1).
So a new caller whose DTMF caller ID comes while the trunk is still ringing for one who
gave up (the ring gap has not run out) starts a ringing cycle of its own. Digits on an
idle trunk that are no caller ID are discarded (:class:`~e1t1.analog.callerid.DtmfClipReader`).

Timers (protocol ``fxo``, site-overridable as ``timers: {fxo: {...}}``): ``ring_gap`` no
ring for this long: the caller gave up; ``polarity_guard`` polarity reversals right after
answer are not a hang-up; ``cid_digit_gap`` DTMF caller ID digits come in one burst.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import Any

from drivers.base import LineLevel
from e1t1.analog.callerid import CallerId, DtmfClipReader, FskMessageReader, decode_fsk_message
from e1t1.analog.events import (
    LineSink,
    TrunkAbandoned,
    TrunkAnswered,
    TrunkCallerId,
    TrunkDigit,
    TrunkReleased,
    TrunkRinging,
)
from e1t1.analog.port import LinePort
from e1t1.clock import Clock
from e1t1.errors import DecodeError
from e1t1.fsm import Census, StateDef, StateMachine
from e1t1.timers import TimerDef, TimerTable, TimerUnit

log = logging.getLogger("cicbox.lines")

FXO_TIMERS = (
    # The longest ring-off of the tone zones is 4 s (line-signals.md): the gap must outlast it.
    TimerDef("ring_gap", 8000, TimerUnit.MS, "no ring for this long after a ring: the caller gave up",
             5000, 30000),
    # chan_dahdi's polarityonanswerdelay (line-signals.md)
    TimerDef("polarity_guard", 600, TimerUnit.MS, "polarity reversals this soon after answer are not a hang-up",
             100, 5000),
    TimerDef("cid_digit_gap", 1000, TimerUnit.MS, "DTMF caller ID: a digit this long after the previous one "
             "is not part of the same message", 200, 5000),
    TimerDef("cid_before_ring", 3000, TimerUnit.MS, "DTMF caller ID ends at most this long before ring 1: "
             "older digits belong to no call", 500, 10000),
)

#: A ring cadence is kept to within this fraction (a ring or a pause this much shorter than the
#: zone's is not the cadence: a caller gave up mid-ring, or a new call began)
CADENCE_TOLERANCE = 0.1

#: caller ID modes of an FXO port (config) that use an FSK modem, and which
FSK_MODES = {"fsk_bell202": "bell202", "v23": "v23"}


class TrunkState(enum.Enum):
    IDLE = 1
    RINGING = 2
    UP = 3


class TrunkEvent(enum.Enum):
    RING_ON = 1
    RING_OFF = 2
    CID_BYTE = 3        # an octet from the FSK receiver (data: byte)
    DTMF = 4            # a digit, key down (data: digit, tick)
    BATTERY = 5         # data: value (1 present, 0 lost), tick
    POLARITY = 6        # data: value, tick
    BUSY = 7            # busy cadence detected (data: value, tick)
    RELEASE = 8         # our side ends the call (data: tick)
    TIMEOUT = 9
    FSK_CARRIER = 10    # FSK receiver's carrier: value 1 up (a channel seizure begins), 0 down


_E = TrunkEvent
_S = TrunkState


class FxoTrunk(StateMachine[TrunkState, TrunkEvent]):
    """An analog trunk: answers on the configured ring, takes caller ID, notices the far end hang up."""

    PROTOCOL = "fxo"
    TIMERS = FXO_TIMERS
    TIMEOUT = TrunkEvent.TIMEOUT
    REST = TrunkState.IDLE          # ringing or up, the trunk's channel is busy
    TABLE = {
        _S.IDLE: StateDef(
            frozenset({_E.RING_ON, _E.RING_OFF, _E.DTMF, _E.BATTERY, _E.POLARITY, _E.CID_BYTE, _E.FSK_CARRIER,
                       _E.RELEASE}),
            frozenset({_S.RINGING}), "st_idle", on_enter="enter_idle"),
        _S.RINGING: StateDef(
            frozenset({_E.RING_ON, _E.RING_OFF, _E.CID_BYTE, _E.FSK_CARRIER, _E.DTMF, _E.TIMEOUT, _E.BATTERY,
                       _E.POLARITY}),
            frozenset({_S.IDLE, _S.UP}), "st_ringing", timer="ring_gap", on_leave="leave_ringing"),
        _S.UP: StateDef(
            frozenset({_E.DTMF, _E.BATTERY, _E.POLARITY, _E.BUSY, _E.RELEASE, _E.TIMEOUT, _E.RING_ON, _E.RING_OFF,
                       _E.CID_BYTE, _E.FSK_CARRIER}),
            frozenset({_S.IDLE}), "st_up", timer="polarity_guard", on_enter="enter_up", on_leave="leave_up"),
    }

    def __init__(self, port: LinePort, sink: LineSink, chan: int, name: str, number: str, callerid_mode: str,
                 answer_on_ring: int, disconnect: Sequence[str], busy: tuple[int, int, int],
                 clock: Clock, timers: TimerTable | None = None,
                 ring_cadence: tuple[int, int] | None = None, census: Census | None = None) -> None:
        super().__init__(f"trunk({name})", TrunkState.IDLE, clock, timers, census=census)
        #: the exchange's ring cadence (on, off ms: the tone zone's); None: rings are not timed
        self.ring_cadence = ring_cadence
        self._ring_on_at: int | None = None
        self._ring_off_at: int | None = None
        self.port = port
        self.sink = sink
        self.chan = chan
        self.trunk_name = name
        self.number = number
        self.callerid_mode = callerid_mode
        self.answer_on_ring = answer_on_ring
        self.disconnect = frozenset(disconnect)
        self.busy = busy
        self.rings = 0
        self.ani: str | None = None
        self.guarding = False
        self.fsk = FskMessageReader()
        self.dtmf_cid = DtmfClipReader(self.timers["cid_digit_gap"])
        #: what the layer above keeps with the settings in force (its configuration version); a
        #: call takes the tag of the settings its ringing cycle ran on
        self.settings_tag: Any = None
        self._next: dict[str, Any] | None = None
        if callerid_mode == "dtmf":
            port.detect_dtmf(chan)   # DTMF caller ID comes before the first ring

    # -- settings ---------------------------------------------------------------------

    def configure(self, *, number: str, callerid_mode: str, answer_on_ring: int, disconnect: Sequence[str],
                  busy: tuple[int, int, int], timers: TimerTable | None = None, tag: Any = None) -> None:
        """New settings for the next call. A call that is ringing or up keeps the ones it began
        with (its answer ring, caller ID mode, disconnect signals, number); they take effect
        when the trunk is idle again, at once if it is idle now."""
        self._next = {"number": number, "callerid_mode": callerid_mode, "answer_on_ring": answer_on_ring,
                      "disconnect": frozenset(disconnect), "busy": busy, "timers": timers, "tag": tag}
        if self.state is _S.IDLE:
            self._take_settings()

    def enter_idle(self, prev: TrunkState) -> None:
        if self._next is not None:
            self._take_settings()

    def _take_settings(self) -> None:
        new, self._next = self._next, None
        if new is None:
            return
        was_dtmf = self.callerid_mode == "dtmf"
        self.number, self.callerid_mode = new["number"], new["callerid_mode"]
        self.answer_on_ring, self.disconnect, self.busy = new["answer_on_ring"], new["disconnect"], new["busy"]
        self.settings_tag = new["tag"]
        if new["timers"] is not None:
            self.timers = new["timers"]
            self.dtmf_cid.gap_ms = self.timers["cid_digit_gap"]
        if was_dtmf != (self.callerid_mode == "dtmf"):
            self.dtmf_cid.reset()
            self.port.detect_dtmf(self.chan, self.callerid_mode == "dtmf")
        log.info("%s: settings for the next call in force", self.name)

    def _tick(self, d: dict[str, Any]) -> int:
        return int(d.get("tick", self.clock.now_ms))

    # IDLE
    def st_idle(self, ev: TrunkEvent, **d: Any) -> None:
        if ev is _E.DTMF and self.callerid_mode == "dtmf":
            if self.dtmf_cid.feed(d["digit"], self._tick(d)):
                log.debug("%s: DTMF caller ID starts", self.name)
        elif ev is _E.RING_ON:
            self._first_ring(self._tick(d))
        # RING_OFF (its RING_ON was lost), battery and polarity changes, FSK (the receiver is off),
        # a release of a call already over: nothing to do on an idle trunk.

    def _first_ring(self, tick: int) -> None:
        """Ring 1 of a new call: a new ringing cycle and a new identity."""
        self.rings = 1
        self.fsk.reset()
        self.ani = None
        self._ring_on_at, self._ring_off_at = tick, None
        self._take_dtmf_cid(tick)
        if self.state is not _S.RINGING:
            self.transition(_S.RINGING)
        else:
            self.restart_timer(self.timers["ring_gap"])
        self.sink(TrunkRinging(self.chan, tick, self.rings))
        self._check_answer(tick)

    # RINGING
    def st_ringing(self, ev: TrunkEvent, **d: Any) -> None:
        fsk = FSK_MODES.get(self.callerid_mode)
        cadence = self.ring_cadence
        if ev is _E.RING_OFF:
            tick = self._tick(d)
            on_at, self._ring_off_at = self._ring_on_at, tick
            if cadence is not None and on_at is not None and tick - on_at < cadence[0] * (1 - CADENCE_TOLERANCE):
                # The exchange stopped a ring short of the cadence: the caller hung up while it rang.
                log.info("%s: ring %d cut short (%d ms): the caller gave up", self.name, self.rings, tick - on_at)
                self._give_up(tick, keep_cid=False)
                return
            self.restart_timer(self.timers["ring_gap"])
            if self.rings == 1 and fsk is not None:
                self.port.fsk_rx(self.chan, fsk)
        elif ev is _E.RING_ON:
            tick = self._tick(d)
            off_at = self._ring_off_at
            if cadence is not None and off_at is not None and tick - off_at < cadence[1] * (1 - CADENCE_TOLERANCE):
                # A ring sooner than the cadence's pause: the caller rung for gave up, this is a new call.
                log.info("%s: a ring %d ms after the last, sooner than the cadence: a new call", self.name,
                         tick - off_at)
                self.port.fsk_rx(self.chan, None)
                self.sink(TrunkAbandoned(self.chan, tick, self.rings))
                self.dtmf_cid.reset()
                self._first_ring(tick)
                return
            self._ring_on_at, self._ring_off_at = tick, None
            self.rings += 1
            self.restart_timer(self.timers["ring_gap"])
            if fsk is not None:
                self.port.fsk_rx(self.chan, None)
                if self.ani is None and self.fsk.in_progress:
                    self._fsk_message(bytes(self.fsk.octets), tick)    # cut short by the ring: says why
                    self.fsk.reset()
            self.sink(TrunkRinging(self.chan, tick, self.rings))
            self._check_answer(tick)
        elif ev is _E.FSK_CARRIER:
            if d.get("value"):
                self._fsk_seizure()
        elif ev is _E.CID_BYTE:
            msg = self.fsk.feed(d["byte"])
            if msg is not None:
                self.port.fsk_rx(self.chan, None)
                self._fsk_message(msg, self._tick(d))
        elif ev is _E.DTMF:
            if self.callerid_mode == "dtmf" and self.dtmf_cid.feed(d["digit"], self._tick(d)):
                # DTMF caller ID comes before ring 1: this is a new caller; the one rung for gave up.
                log.info("%s: caller ID of a new call after %d rings: the caller gave up", self.name, self.rings)
                self._give_up(self._tick(d), keep_cid=True)
        elif ev is _E.TIMEOUT:
            log.info("%s: caller gave up after %d rings", self.name, self.rings)
            self._give_up(self.clock.now_ms, keep_cid=False)

    def leave_ringing(self, new: TrunkState) -> None:
        self.port.fsk_rx(self.chan, None)

    def _give_up(self, tick: int, keep_cid: bool) -> None:
        """The caller gave up before we answered; `keep_cid`: the next caller's caller ID has begun."""
        rings = self.rings
        self.rings = 0
        self.fsk.reset()
        self.ani = None
        if not keep_cid:
            self.dtmf_cid.reset()
        self.transition(_S.IDLE)
        self.sink(TrunkAbandoned(self.chan, tick, rings))

    def _fsk_seizure(self) -> None:
        """A channel seizure: FSK caller ID of a call, which follows its first ring."""
        if self.rings != 1 or self.ani is not None:
            log.info("%s: FSK caller ID of a new call (ring count %d): its first ring was ring 1",
                     self.name, self.rings)
        self.rings = 1
        self.ani = None
        self.fsk.reset()

    def _check_answer(self, tick: int) -> None:
        if self.rings >= self.answer_on_ring:
            self.transition(_S.UP)
            self.sink(TrunkAnswered(self.chan, tick, self.ani))

    # UP
    def enter_up(self, prev: TrunkState) -> None:
        p = self.port
        if self.callerid_mode != "dtmf":
            p.detect_dtmf(self.chan)
        self.guarding = True
        p.hook(self.chan, True)
        if "busy" in self.disconnect:
            on, off, count = self.busy
            p.busy_detect(self.chan, on, off, count)

    def st_up(self, ev: TrunkEvent, **d: Any) -> None:
        if ev is _E.TIMEOUT:
            self.guarding = False
        elif ev is _E.DTMF:
            self.sink(TrunkDigit(self.chan, self._tick(d), d["digit"]))
        elif ev is _E.RELEASE:
            self._released(self._tick(d), "released", far_end=False)
        elif ev is _E.BATTERY and d["value"] == 0 and "battery" in self.disconnect:
            self._released(self._tick(d), "battery lost", far_end=True)
        elif ev is _E.POLARITY and "polarity" in self.disconnect and not self.guarding:
            self._released(self._tick(d), "polarity reversal", far_end=True)
        elif ev is _E.BUSY and "busy" in self.disconnect:
            self._released(self._tick(d), "busy tone", far_end=True)

    def leave_up(self, new: TrunkState) -> None:
        p = self.port
        p.silence(self.chan)
        p.busy_detect(self.chan, 0, 0, 0)
        if self.callerid_mode != "dtmf":
            p.detect_dtmf(self.chan, False)
        p.hook(self.chan, False)
        self._reset()

    def _released(self, tick: int, why: str, far_end: bool) -> None:
        """The call is over (the far end went as the trunk's disconnect signals say, or we release):
        on hook, then tell the layer above."""
        self.transition(_S.IDLE)
        self.sink(TrunkReleased(self.chan, tick, why, far_end))

    # -- line levels ----------------------------------------------------------------

    def level_event(self, level: LineLevel) -> TrunkEvent | None:
        """The event this trunk missed, if the card's current levels contradict it.

        Only where a missed event would leave a call up for ever: a call UP on a trunk whose
        disconnect signal is battery, with no battery now. Ringing needs none: a lost RING_ON
        is followed by the next ring's, and a lost RING_OFF is covered by the ring-gap timer.
        A polarity reversal is a change, not a level: a lost one cannot be read back.
        """
        if self.state is _S.UP and "battery" in self.disconnect and not level & LineLevel.BATTERY:
            return _E.BATTERY
        return None

    def reconcile(self, event: TrunkEvent, tick: int) -> None:
        """Deliver `event` (from :meth:`level_event`) as if the card had reported it."""
        log.warning("%s: the card's line has no battery but the call is up: BATTERY 0 reconciled", self.name)
        self.dispatch(event, value=0, tick=tick)

    # -- caller ID --------------------------------------------------------------------

    def _reset(self) -> None:
        self.rings = 0
        self.fsk.reset()
        self.dtmf_cid.reset()
        self.ani = None

    def _identified(self, cid: CallerId, tick: int) -> None:
        self.ani = cid.number
        self.sink(TrunkCallerId(self.chan, tick, cid.number, cid.number_absent, cid.name))

    def _fsk_message(self, data: bytes, tick: int) -> None:
        try:
            msg = decode_fsk_message(data)
        except DecodeError as exc:
            log.warning("%s: caller ID not understood: %s", self.name, exc)
            return
        if isinstance(msg, CallerId):
            self._identified(msg, tick)

    def _take_dtmf_cid(self, tick: int) -> None:
        if self.callerid_mode != "dtmf":
            return
        try:
            cid = self.dtmf_cid.take(tick, self.timers["cid_before_ring"])
        except DecodeError as exc:
            log.warning("%s: DTMF caller ID not understood: %s", self.name, exc)
            return
        if cid is not None:
            self._identified(cid, tick)
