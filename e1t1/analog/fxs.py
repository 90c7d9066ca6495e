"""The FXS port: a phone on our line.

Dial tone and digit collection (feature codes), ringing with caller ID, talking, and
telling the phone the far end went (open loop, then congestion tone). It commands the
card through a :class:`~e1t1.analog.port.LinePort` and reports by events
(e1t1.analog.events). The meaning of a dialled string is the layer above's: the phone
reports each digit string (PhoneDialled) and is answered with ACCEPT (confirm tone) or
REJECT (congestion tone), or not at all while the string may go on.

Timers (protocol ``fxs``, site-overridable as ``timers: {fxs: {...}}``): ``first_digit``
16 s, ``inter_digit`` 8 s, ``after_match`` 3 s (digit collection as chan_dahdi has it,
line-signals.md); ``open_loop`` battery removed to signal a far-end disconnect before
congestion tone; ``feature_done`` how long a feature code's tone waits for on hook;
``cid_delay`` caller ID starts this long after the end of ring 1.

Events say when a line changed; the card's line levels say what it is now. Each control
period the layer above hands every line the card's current levels (:meth:`FxsPhone.level_event`):
a phone whose idea of its hook disagrees gets the event it missed (logged "reconciled"),
so a lost HOOK_ON never leaves a phone off hook.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from drivers.base import LineLevel
from dsp.scheduler import ring_cadence
from e1t1.analog.callerid import CallerId, FskFrame, callerid_frame, fsk_standard
from e1t1.analog.events import (
    LineSink,
    PhoneAnswered,
    PhoneDialled,
    PhoneDigit,
    PhoneFlash,
    PhoneHookOff,
    PhoneHungUp,
    PhoneOnHook,
)
from e1t1.analog.port import LinePort
from e1t1.clock import Clock
from e1t1.errors import EncodeError
from e1t1.fsm import Census, StateDef, StateMachine
from e1t1.timers import TimerDef, TimerTable, TimerUnit

log = logging.getLogger("cicbox.lines")

FXS_TIMERS = (
    # Digit collection on FXS (chan_dahdi.c, line-signals.md): first digit 16 s, between digits 8 s,
    # after a possible match 3 s.
    TimerDef("first_digit", 16, TimerUnit.S, "wait for the first digit after dial tone", 1, 60),
    TimerDef("inter_digit", 8, TimerUnit.S, "wait for the next digit", 1, 60),
    TimerDef("after_match", 3, TimerUnit.S, "wait after a digit string that may be complete", 1, 30),
    TimerDef("open_loop", 750, TimerUnit.MS, "battery off to signal that the far end hung up", 100, 2000),
    TimerDef("feature_done", 30, TimerUnit.S, "after a feature code's tone, wait for on hook this long", 1, 300),
    # Bell 202 data starts at least 500 ms after the end of the first ring (line-signals.md).
    TimerDef("cid_delay", 500, TimerUnit.MS, "caller ID starts this long after the end of ring 1", 500, 2000),
)


class PhoneState(enum.Enum):
    IDLE = 1          # on hook
    DIALTONE = 2      # off hook, dial tone, no digit yet
    DIALLING = 3      # collecting digits
    ANNOUNCE = 4      # a feature code's result tone; waiting for on hook
    RINGING = 5       # a call is offered: the phone rings
    CONNECTED = 6
    OPEN_LOOP = 7     # the far end hung up: battery off for a moment
    CONGESTION = 8    # then congestion tone until on hook


class PhoneEvent(enum.Enum):
    HOOK_OFF = 1
    HOOK_ON = 2
    FLASH = 3
    DTMF = 4          # data: digit, tick
    OFFER = 5         # a call for this phone: ring (data: cid, the CallerId to show, or None)
    CANCEL = 6        # the offer is withdrawn
    REMOTE_GONE = 7   # the far end of the call hung up
    TIMEOUT = 8
    ACCEPT = 9        # the digits dialled are a done feature code: confirm tone
    REJECT = 10       # the digits dialled are no feature code: congestion tone


_E = PhoneEvent
_S = PhoneState

#: states in which the phone is off hook (as the machine believes)
OFF_HOOK_STATES = frozenset({_S.DIALTONE, _S.DIALLING, _S.ANNOUNCE, _S.CONNECTED, _S.OPEN_LOOP, _S.CONGESTION})

_DIAL_EVENTS = frozenset({_E.HOOK_ON, _E.FLASH, _E.DTMF, _E.TIMEOUT, _E.CANCEL, _E.REMOTE_GONE, _E.ACCEPT,
                          _E.REJECT})
_ANNOUNCE_EVENTS = frozenset({_E.HOOK_ON, _E.FLASH, _E.DTMF, _E.TIMEOUT, _E.CANCEL, _E.REMOTE_GONE})
_DIAL_NEXT = frozenset({_S.IDLE, _S.DIALLING, _S.DIALTONE, _S.ANNOUNCE})


class FxsPhone(StateMachine[PhoneState, PhoneEvent]):
    """A phone on an FXS port: dial tone and feature codes, ringing with caller ID, talking."""

    PROTOCOL = "fxs"
    TIMERS = FXS_TIMERS
    TIMEOUT = PhoneEvent.TIMEOUT
    REST = PhoneState.IDLE          # off hook or ringing, the port is busy
    TABLE = {
        _S.IDLE: StateDef(
            frozenset({_E.HOOK_OFF, _E.OFFER, _E.DTMF, _E.CANCEL, _E.REMOTE_GONE}),
            frozenset({_S.DIALTONE, _S.RINGING}), "st_idle", on_enter="enter_idle"),
        _S.DIALTONE: StateDef(_DIAL_EVENTS, _DIAL_NEXT, "st_dialling", timer="first_digit", on_enter="enter_dialtone"),
        _S.DIALLING: StateDef(_DIAL_EVENTS, _DIAL_NEXT, "st_dialling", timer="inter_digit"),
        _S.ANNOUNCE: StateDef(_ANNOUNCE_EVENTS, frozenset({_S.IDLE, _S.DIALTONE}), "st_announce",
                              timer="feature_done"),
        # The ringing state's timer is the caller ID's: it runs from the start of ring 1 to cid_delay
        # after its end.
        _S.RINGING: StateDef(
            frozenset({_E.HOOK_OFF, _E.CANCEL, _E.DTMF, _E.TIMEOUT, _E.REMOTE_GONE}),
            frozenset({_S.IDLE, _S.CONNECTED}), "st_ringing", timer="cid_delay", on_enter="enter_ringing",
            on_leave="leave_ringing"),
        _S.CONNECTED: StateDef(
            frozenset({_E.HOOK_ON, _E.REMOTE_GONE, _E.DTMF, _E.FLASH}),
            frozenset({_S.IDLE, _S.OPEN_LOOP}), "st_connected"),
        _S.OPEN_LOOP: StateDef(
            frozenset({_E.TIMEOUT, _E.HOOK_ON, _E.DTMF, _E.FLASH}),
            frozenset({_S.CONGESTION, _S.IDLE}), "st_open_loop", timer="open_loop", on_enter="enter_open_loop",
            on_leave="leave_open_loop"),
        _S.CONGESTION: StateDef(
            frozenset({_E.HOOK_ON, _E.DTMF, _E.FLASH}),
            frozenset({_S.IDLE}), "st_congestion", on_enter="enter_congestion"),
    }

    def __init__(self, port: LinePort, sink: LineSink, chan: int, name: str, extension: str, zone: str,
                 clock: Clock, timers: TimerTable | None = None, census: Census | None = None) -> None:
        super().__init__(f"phone({name})", PhoneState.IDLE, clock, timers, census=census)
        self.port = port
        self.sink = sink
        self.chan = chan
        self.phone_name = name
        self.extension = extension
        self.zone = zone
        self.digits = ""
        self.ring_on_ms = ring_cadence(zone)[0]     # the first ring's length
        self._cid: FskFrame | None = None           # caller ID of the call offered, to send after ring 1
        self._next: tuple[str, TimerTable | None] | None = None

    def configure(self, *, extension: str, timers: TimerTable | None = None) -> None:
        """New settings (extension, timers) for the phone's next use: at once if it is idle, else
        when it is back on hook (a dialling or a call in progress keeps its timers)."""
        self._next = (extension, timers)
        if self.state is _S.IDLE:
            self.enter_idle(self.state)

    def enter_idle(self, prev: PhoneState) -> None:
        if self._next is not None:
            (self.extension, timers), self._next = self._next, None
            if timers is not None:
                self.timers = timers

    @property
    def off_hook(self) -> bool:
        """Whether this machine believes the phone is off hook."""
        return self.state in OFF_HOOK_STATES

    def _tick(self, d: dict[str, Any]) -> int:
        return int(d.get("tick", self.clock.now_ms))

    def level_event(self, level: LineLevel) -> PhoneEvent | None:
        """HOOK_ON or HOOK_OFF if the card's hook level (as reported: past the flash window)
        contradicts this machine; None if they agree, or if the port has no battery (open
        loop: a real card cannot see the hook then)."""
        if not level & LineLevel.BATTERY:
            return None
        card_off = bool(level & LineLevel.HOOK_OFF)
        if card_off == self.off_hook:
            return None
        return _E.HOOK_OFF if card_off else _E.HOOK_ON

    def reconcile(self, event: PhoneEvent, tick: int) -> None:
        """Deliver `event` (from :meth:`level_event`) as if the card had reported it."""
        log.warning("%s: the card says %s hook, the line was %s: %s reconciled", self.name,
                    "off" if event is _E.HOOK_OFF else "on", self.state.name, event.name)
        self.dispatch(event, tick=tick)

    # IDLE (on hook)
    def st_idle(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is _E.HOOK_OFF:
            self.transition(_S.DIALTONE)
            self.sink(PhoneHookOff(self.chan, self._tick(d)))
        elif ev is _E.OFFER:
            self._cid = self._frame(d.get("cid"))
            self.transition(_S.RINGING, timer_ms=self.ring_on_ms + self.timers["cid_delay"])

    def _frame(self, cid: CallerId | None) -> FskFrame | None:
        if cid is None:
            return None
        try:
            return callerid_frame(cid, fsk_standard(self.zone))
        except EncodeError as exc:
            log.warning("%s: caller ID cannot be sent (%s): ringing without it", self.name, exc)
            return None

    def enter_dialtone(self, prev: PhoneState) -> None:
        p = self.port
        self.digits = ""
        p.silence(self.chan)
        p.tone(self.chan, self.zone, "dial")
        p.detect_dtmf(self.chan)

    # DIALTONE / DIALLING
    def st_dialling(self, ev: PhoneEvent, **d: Any) -> None:
        p = self.port
        if ev is _E.HOOK_ON:
            self._on_hook(self._tick(d))
        elif ev is _E.FLASH:
            self.transition(_S.DIALTONE)   # a flash on an idle line: dial tone again
        elif ev is _E.DTMF:
            if self.state is _S.DIALTONE:
                p.stop_tone(self.chan)
            self.digits += d["digit"]
            self.transition(_S.DIALLING)
            self.sink(PhoneDialled(self.chan, self._tick(d), self.digits))
        elif ev is _E.ACCEPT:
            p.tone(self.chan, self.zone, "confirm")
            self.transition(_S.ANNOUNCE)
        elif ev in (_E.REJECT, _E.TIMEOUT):
            p.tone(self.chan, self.zone, "congestion")
            self.transition(_S.ANNOUNCE)

    # ANNOUNCE
    def st_announce(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is _E.HOOK_ON:
            self._on_hook(self._tick(d))
        elif ev is _E.FLASH:
            self.transition(_S.DIALTONE)
        elif ev is _E.TIMEOUT:
            self.port.tone(self.chan, self.zone, "congestion")

    # RINGING
    def enter_ringing(self, prev: PhoneState) -> None:
        self.port.ring(self.chan)

    def st_ringing(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is _E.HOOK_OFF:
            self.transition(_S.CONNECTED)
            self.sink(PhoneAnswered(self.chan, self._tick(d)))
        elif ev in (_E.CANCEL, _E.REMOTE_GONE):
            self.transition(_S.IDLE)
        elif ev is _E.TIMEOUT and self._cid is not None:
            self.port.fsk_tx(self.chan, self._cid)     # in the gap after ring 1

    def leave_ringing(self, new: PhoneState) -> None:
        self.port.ring_stop(self.chan)
        self.port.silence(self.chan)
        self._cid = None

    # CONNECTED
    def st_connected(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is _E.HOOK_ON:
            tick = self._tick(d)
            self.port.detect_dtmf(self.chan, False)
            self.transition(_S.IDLE)
            self.sink(PhoneHungUp(self.chan, tick))
            self.sink(PhoneOnHook(self.chan, tick))
        elif ev is _E.REMOTE_GONE:
            self.transition(_S.OPEN_LOOP)
        elif ev is _E.DTMF:
            self.sink(PhoneDigit(self.chan, self._tick(d), d["digit"]))
        elif ev is _E.FLASH:
            self.sink(PhoneFlash(self.chan, self._tick(d)))

    # OPEN_LOOP: battery off, then congestion tone
    def enter_open_loop(self, prev: PhoneState) -> None:
        self.port.battery(self.chan, False)

    def st_open_loop(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is _E.TIMEOUT:
            self.transition(_S.CONGESTION)
        elif ev is _E.HOOK_ON:
            self._on_hook(self._tick(d))

    def leave_open_loop(self, new: PhoneState) -> None:
        self.port.battery(self.chan, True)

    # CONGESTION
    def enter_congestion(self, prev: PhoneState) -> None:
        self.port.tone(self.chan, self.zone, "congestion")

    def st_congestion(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is _E.HOOK_ON:
            self._on_hook(self._tick(d))

    def _on_hook(self, tick: int) -> None:
        p = self.port
        p.silence(self.chan)
        p.detect_dtmf(self.chan, False)
        self.digits = ""
        self.transition(_S.IDLE)
        self.sink(PhoneOnHook(self.chan, tick))
