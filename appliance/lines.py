"""Line state machines: an FXO trunk (we are a phone line on an exchange) and an
FXS port (a phone on our line). Each is a declared table (appliance.fsm); the
engine feeds them the media tier's events and they ask the engine (through
:class:`LineHost`) to act on calls.

Timers (one table, site-overridable):

- FXO: ``ring_gap`` no further ring: the caller gave up before we answered;
  ``polarity_guard`` polarity reversals ignored right after answer.
- FXS: ``first_digit`` 16 s, ``inter_digit`` 8 s, ``after_match`` 3 s (digit
  collection, as installers know it); ``open_loop`` battery removed to signal a
  far-end disconnect before congestion tone.

Events say when a line changed; the card's line levels say what it is now.
Each control period the engine hands every line the card's current levels
(:meth:`FxsPhone.level_event`, :meth:`FxoTrunk.level_event`): a line whose
idea of its hook or battery disagrees gets the event it missed
(:meth:`~appliance.fsm.StateMachine.dispatch` as usual, logged "reconciled"),
so a lost HOOK_ON never leaves a phone off hook in the engine.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from appliance.clock import Clock
from appliance.fsm import StateDef, StateMachine, TimerDef, TimerTable
from drivers.base import LineLevel
from e1t1 import callerid
from e1t1.errors import DecodeError

log = logging.getLogger("cicbox.lines")

LINE_TIMERS = [
    TimerDef("ring_gap", 8000, "FXO: no ring for this long after a ring: the caller gave up"),
    TimerDef("polarity_guard", 600, "FXO: polarity reversals this soon after answer are not a hang-up"),
    TimerDef("first_digit", 16000, "FXS: wait for the first digit after dial tone"),
    TimerDef("inter_digit", 8000, "FXS: wait for the next digit"),
    TimerDef("after_match", 3000, "FXS: wait after a digit string that may be complete"),
    TimerDef("open_loop", 750, "FXS: battery off to signal that the far end hung up"),
    TimerDef("feature_done", 30000, "FXS: after a feature code's tone, wait for on hook this long"),
    TimerDef("cid_delay", 500, "FXS: caller ID starts this long after the end of ring 1"),
]


class LineHost(Protocol):
    """What a line asks of the engine."""

    def trunk_answered(self, trunk: FxoTrunk, ani: str | None) -> None: ...
    def trunk_digit(self, trunk: FxoTrunk, digit: str, tick: int) -> None: ...
    def trunk_cleared(self, trunk: FxoTrunk, tick: int, reason: str) -> None: ...
    def phone_answered(self, phone: FxsPhone, tick: int) -> None: ...
    def phone_hung_up(self, phone: FxsPhone, tick: int) -> None: ...
    def phone_dialled(self, phone: FxsPhone, digits: str) -> str: ...
    def sched(self) -> Any: ...
    def tier(self) -> Any: ...
    def answer_trunk(self, trunk: FxoTrunk) -> None: ...
    def hangup_trunk(self, trunk: FxoTrunk) -> None: ...
    def ring_phone(self, phone: FxsPhone, cid: Any) -> None: ...
    def stop_ringing(self, phone: FxsPhone) -> None: ...
    def phone_idle(self, phone: FxsPhone) -> None: ...


# -- FXO trunk ---------------------------------------------------------------

class TrunkState(enum.Enum):
    IDLE = 1
    RINGING = 2
    UP = 3


class TrunkEvent(enum.Enum):
    RING_ON = 1
    RING_OFF = 2
    CID_BYTE = 3
    DTMF = 4
    BATTERY = 5
    POLARITY = 6
    BUSY = 7
    RELEASE = 8     # our side ends the call
    TIMEOUT = 9


class FxoTrunk(StateMachine[TrunkState, TrunkEvent]):
    """An analog trunk: answers on the configured ring, takes caller ID, notices the far end hang up."""

    TIMEOUT = TrunkEvent.TIMEOUT
    TABLE = {
        TrunkState.IDLE: StateDef(
            frozenset({TrunkEvent.RING_ON, TrunkEvent.RING_OFF, TrunkEvent.DTMF, TrunkEvent.BATTERY,
                       TrunkEvent.POLARITY, TrunkEvent.CID_BYTE, TrunkEvent.RELEASE}),
            frozenset({TrunkState.RINGING}), "st_idle"),
        TrunkState.RINGING: StateDef(
            frozenset({TrunkEvent.RING_ON, TrunkEvent.RING_OFF, TrunkEvent.CID_BYTE, TrunkEvent.DTMF,
                       TrunkEvent.TIMEOUT, TrunkEvent.BATTERY, TrunkEvent.POLARITY}),
            frozenset({TrunkState.IDLE, TrunkState.UP}), "st_ringing", timer="ring_gap"),
        TrunkState.UP: StateDef(
            frozenset({TrunkEvent.DTMF, TrunkEvent.BATTERY, TrunkEvent.POLARITY, TrunkEvent.BUSY,
                       TrunkEvent.RELEASE, TrunkEvent.TIMEOUT, TrunkEvent.RING_ON, TrunkEvent.RING_OFF,
                       TrunkEvent.CID_BYTE}),
            frozenset({TrunkState.IDLE}), "st_up", timer="polarity_guard"),
    }

    def __init__(self, host: LineHost, chan: int, name: str, number: str, callerid_mode: str,
                 answer_on_ring: int, disconnect: Sequence[str], busy: tuple[int, int, int],
                 clock: Clock, timers: TimerTable) -> None:
        super().__init__(f"trunk({name})", TrunkState.IDLE, clock, timers)
        self.host = host
        self.chan = chan
        self.trunk_name = name
        self.number = number
        self.callerid_mode = callerid_mode
        self.answer_on_ring = answer_on_ring
        self.disconnect = frozenset(disconnect)
        self.busy = busy
        self.rings = 0
        self.cid_bytes = bytearray()
        self.cid_digits = ""
        self.ani: str | None = None
        self.guarding = False
        m = host.sched()
        if callerid_mode == "dtmf":
            m.detect_dtmf(chan)   # DTMF caller ID comes before the first ring

    # IDLE
    def st_idle(self, ev: TrunkEvent, **d: Any) -> None:
        if ev is TrunkEvent.DTMF and self.callerid_mode == "dtmf":
            self.cid_digits += d["digit"]
        elif ev is TrunkEvent.RING_ON:
            self.rings = 1
            self.cid_bytes.clear()
            self.ani = self._decode_dtmf_cid()
            self.transition(TrunkState.RINGING)
            self._check_answer()

    # RINGING
    def st_ringing(self, ev: TrunkEvent, **d: Any) -> None:
        m = self.host.sched()
        if ev is TrunkEvent.RING_OFF:
            self.restart_timer(self.timers["ring_gap"])
            if self.rings == 1 and self.callerid_mode in ("fsk_bell202", "v23"):
                m.fsk_rx(self.chan, "bell202" if self.callerid_mode == "fsk_bell202" else "v23")
        elif ev is TrunkEvent.RING_ON:
            self.rings += 1
            self.restart_timer(self.timers["ring_gap"])
            if self.callerid_mode in ("fsk_bell202", "v23"):
                m.fsk_rx(self.chan, None)
                if self.ani is None and self.cid_bytes:
                    self.ani = self._decode_fsk_cid()
            self._check_answer()
        elif ev is TrunkEvent.CID_BYTE:
            if not self.cid_bytes and d["byte"] not in callerid.MESSAGE_TYPES:
                return    # not the start of a message (channel seizure, noise)
            self.cid_bytes.append(d["byte"])
            if len(self.cid_bytes) >= 2 and len(self.cid_bytes) >= self.cid_bytes[1] + 3:
                m.fsk_rx(self.chan, None)
                self.ani = self._decode_fsk_cid()
        elif ev is TrunkEvent.TIMEOUT:
            log.info("%s: caller gave up after %d rings", self.name, self.rings)
            self._reset()
            self.transition(TrunkState.IDLE)

    def _check_answer(self) -> None:
        if self.rings >= self.answer_on_ring:
            m = self.host.sched()
            m.fsk_rx(self.chan, None)
            if self.callerid_mode != "dtmf":
                m.detect_dtmf(self.chan)
            self.guarding = True
            self.transition(TrunkState.UP)
            self.host.answer_trunk(self)
            if "busy" in self.disconnect:
                on, off, count = self.busy
                m.busy_detect(self.chan, on, off, count)
            self.host.trunk_answered(self, self.ani)

    # UP
    def st_up(self, ev: TrunkEvent, **d: Any) -> None:
        if ev is TrunkEvent.TIMEOUT:
            self.guarding = False
        elif ev is TrunkEvent.DTMF:
            self.host.trunk_digit(self, d["digit"], d["tick"])
        elif ev is TrunkEvent.RELEASE:
            self._clear()
        elif ev is TrunkEvent.BATTERY and d["value"] == 0 and "battery" in self.disconnect:
            self._far_end_gone(d["tick"], "battery lost")
        elif ev is TrunkEvent.POLARITY and "polarity" in self.disconnect and not self.guarding:
            self._far_end_gone(d["tick"], "polarity reversal")
        elif ev is TrunkEvent.BUSY and "busy" in self.disconnect:
            self._far_end_gone(d["tick"], "busy tone")

    def level_event(self, level: LineLevel) -> TrunkEvent | None:
        """The event this trunk missed, if the card's current levels contradict it.

        Only where a missed event would leave a call up for ever: a call UP on a trunk whose
        disconnect signal is battery, with no battery now. Ringing needs none: a lost RING_ON
        is followed by the next ring's, and a lost RING_OFF is covered by the ring-gap timer.
        A polarity reversal is a change, not a level: a lost one cannot be read back.
        """
        if self.state is TrunkState.UP and "battery" in self.disconnect and not level & LineLevel.BATTERY:
            return TrunkEvent.BATTERY
        return None

    def reconcile(self, event: TrunkEvent, tick: int) -> None:
        """Deliver `event` (from :meth:`level_event`) as if the card had reported it."""
        log.warning("%s: the card's line has no battery but the call is up: BATTERY 0 reconciled", self.name)
        self.dispatch(event, value=0, tick=tick)

    def _far_end_gone(self, tick: int, why: str) -> None:
        """The caller hung up (as the trunk's disconnect signals say): release, then tell the engine."""
        self._clear()
        self.host.trunk_cleared(self, tick, why)

    def _clear(self) -> None:
        m = self.host.sched()
        m.silence(self.chan)
        m.busy_detect(self.chan, 0, 0, 0)
        if self.callerid_mode != "dtmf":
            m.detect_dtmf(self.chan, False)
        self.host.hangup_trunk(self)
        self._reset()
        self.transition(TrunkState.IDLE)

    def _reset(self) -> None:
        self.rings = 0
        self.cid_bytes.clear()
        self.cid_digits = ""
        self.ani = None

    def _decode_fsk_cid(self) -> str | None:
        try:
            msg = callerid.decode_fsk_message(bytes(self.cid_bytes))
        except DecodeError as exc:
            log.warning("%s: caller ID not understood: %s", self.name, exc)
            return None
        return getattr(msg, "number", None)

    def _decode_dtmf_cid(self) -> str | None:
        if self.callerid_mode != "dtmf" or not self.cid_digits:
            return None
        digits, self.cid_digits = self.cid_digits, ""
        try:
            return callerid.decode_dtmf_clip(digits).number
        except DecodeError as exc:
            log.warning("%s: DTMF caller ID not understood: %s", self.name, exc)
            return None


# -- FXS phone ---------------------------------------------------------------

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
    DTMF = 4
    OFFER = 5
    CANCEL = 6
    REMOTE_GONE = 7
    TIMEOUT = 8


#: states in which the phone is off hook (as the machine believes)
OFF_HOOK_STATES = frozenset({PhoneState.DIALTONE, PhoneState.DIALLING, PhoneState.ANNOUNCE, PhoneState.CONNECTED,
                             PhoneState.OPEN_LOOP, PhoneState.CONGESTION})

_ON_HOOK_EVENTS = frozenset({PhoneEvent.HOOK_ON, PhoneEvent.FLASH, PhoneEvent.DTMF, PhoneEvent.TIMEOUT,
                             PhoneEvent.CANCEL, PhoneEvent.REMOTE_GONE})


class FxsPhone(StateMachine[PhoneState, PhoneEvent]):
    """A phone on an FXS port: dial tone and feature codes, ringing with caller ID, talking."""

    TIMEOUT = PhoneEvent.TIMEOUT
    TABLE = {
        PhoneState.IDLE: StateDef(
            frozenset({PhoneEvent.HOOK_OFF, PhoneEvent.OFFER, PhoneEvent.DTMF, PhoneEvent.CANCEL,
                       PhoneEvent.REMOTE_GONE}),
            frozenset({PhoneState.DIALTONE, PhoneState.RINGING}), "st_idle"),
        PhoneState.DIALTONE: StateDef(
            _ON_HOOK_EVENTS, frozenset({PhoneState.IDLE, PhoneState.DIALLING, PhoneState.DIALTONE,
                                        PhoneState.ANNOUNCE}), "st_dialling", timer="first_digit",
            on_enter="enter_dialtone"),
        PhoneState.DIALLING: StateDef(
            _ON_HOOK_EVENTS, frozenset({PhoneState.IDLE, PhoneState.DIALLING, PhoneState.DIALTONE,
                                        PhoneState.ANNOUNCE}), "st_dialling", timer="inter_digit"),
        PhoneState.ANNOUNCE: StateDef(
            _ON_HOOK_EVENTS, frozenset({PhoneState.IDLE, PhoneState.DIALTONE}), "st_announce",
            timer="feature_done"),
        PhoneState.RINGING: StateDef(
            frozenset({PhoneEvent.HOOK_OFF, PhoneEvent.CANCEL, PhoneEvent.DTMF, PhoneEvent.TIMEOUT,
                       PhoneEvent.REMOTE_GONE}),
            frozenset({PhoneState.IDLE, PhoneState.CONNECTED}), "st_ringing"),
        PhoneState.CONNECTED: StateDef(
            frozenset({PhoneEvent.HOOK_ON, PhoneEvent.REMOTE_GONE, PhoneEvent.DTMF, PhoneEvent.FLASH}),
            frozenset({PhoneState.IDLE, PhoneState.OPEN_LOOP}), "st_connected"),
        PhoneState.OPEN_LOOP: StateDef(
            frozenset({PhoneEvent.TIMEOUT, PhoneEvent.HOOK_ON, PhoneEvent.DTMF, PhoneEvent.FLASH}),
            frozenset({PhoneState.CONGESTION, PhoneState.IDLE}), "st_open_loop", timer="open_loop"),
        PhoneState.CONGESTION: StateDef(
            frozenset({PhoneEvent.HOOK_ON, PhoneEvent.DTMF, PhoneEvent.FLASH}),
            frozenset({PhoneState.IDLE}), "st_congestion"),
    }

    def __init__(self, host: LineHost, chan: int, name: str, extension: str, zone: str,
                 clock: Clock, timers: TimerTable) -> None:
        super().__init__(f"phone({name})", PhoneState.IDLE, clock, timers)
        self.host = host
        self.chan = chan
        self.phone_name = name
        self.extension = extension
        self.zone = zone
        self.digits = ""
        self.offer: Any = None
        self.cid_timer: Any = None

    @property
    def off_hook(self) -> bool:
        """Whether this machine believes the phone is off hook."""
        return self.state in OFF_HOOK_STATES

    def level_event(self, level: LineLevel) -> PhoneEvent | None:
        """HOOK_ON or HOOK_OFF if the card's hook level (as reported: past the flash window)
        contradicts this machine; None if they agree, or if the port has no battery (open
        loop: a real card cannot see the hook then)."""
        if not level & LineLevel.BATTERY:
            return None
        card_off = bool(level & LineLevel.HOOK_OFF)
        if card_off == self.off_hook:
            return None
        return PhoneEvent.HOOK_OFF if card_off else PhoneEvent.HOOK_ON

    def reconcile(self, event: PhoneEvent, tick: int) -> None:
        """Deliver `event` (from :meth:`level_event`) as if the card had reported it."""
        log.warning("%s: the card says %s hook, the line was %s: %s reconciled", self.name,
                    "off" if event is PhoneEvent.HOOK_OFF else "on", self.state.name, event.name)
        self.dispatch(event, tick=tick)

    # IDLE (on hook)
    def st_idle(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is PhoneEvent.HOOK_OFF:
            self.transition(PhoneState.DIALTONE)
        elif ev is PhoneEvent.OFFER:
            self.offer = d["call"]
            self.transition(PhoneState.RINGING)
            self.host.ring_phone(self, d.get("cid"))

    def enter_dialtone(self) -> None:
        m = self.host.sched()
        self.digits = ""
        m.silence(self.chan)
        m.tone(self.chan, self.zone, "dial")
        m.detect_dtmf(self.chan)

    # DIALTONE / DIALLING
    def st_dialling(self, ev: PhoneEvent, **d: Any) -> None:
        m = self.host.sched()
        if ev is PhoneEvent.HOOK_ON:
            self._on_hook()
        elif ev is PhoneEvent.FLASH:
            self.transition(PhoneState.DIALTONE)   # a flash on an idle line: dial tone again
        elif ev is PhoneEvent.DTMF:
            if self.state is PhoneState.DIALTONE:
                m.stop_tone(self.chan)
            self.digits += d["digit"]
            verdict = self.host.phone_dialled(self, self.digits)
            if verdict == "more":
                self.transition(PhoneState.DIALLING)
            elif verdict == "ok":
                m.tone(self.chan, self.zone, "confirm")
                self.transition(PhoneState.ANNOUNCE)
            else:
                m.tone(self.chan, self.zone, "congestion")
                self.transition(PhoneState.ANNOUNCE)
        elif ev is PhoneEvent.TIMEOUT:
            m.tone(self.chan, self.zone, "congestion")
            self.transition(PhoneState.ANNOUNCE)

    # ANNOUNCE
    def st_announce(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is PhoneEvent.HOOK_ON:
            self._on_hook()
        elif ev is PhoneEvent.FLASH:
            self.transition(PhoneState.DIALTONE)
        elif ev is PhoneEvent.TIMEOUT:
            self.host.sched().tone(self.chan, self.zone, "congestion")

    # RINGING
    def st_ringing(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is PhoneEvent.HOOK_OFF:
            self.host.stop_ringing(self)
            self.transition(PhoneState.CONNECTED)
            self.host.phone_answered(self, d["tick"])
        elif ev in (PhoneEvent.CANCEL, PhoneEvent.REMOTE_GONE, PhoneEvent.TIMEOUT):
            self.host.stop_ringing(self)
            self.offer = None
            self.transition(PhoneState.IDLE)

    # CONNECTED
    def st_connected(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is PhoneEvent.HOOK_ON:
            self.offer = None
            self.host.sched().detect_dtmf(self.chan, False)
            self.transition(PhoneState.IDLE)
            self.host.phone_hung_up(self, d["tick"])
            self.host.phone_idle(self)
        elif ev is PhoneEvent.REMOTE_GONE:
            self.offer = None
            self.host.tier().battery(self.chan, False)
            self.transition(PhoneState.OPEN_LOOP)

    # OPEN_LOOP: battery off, then congestion tone
    def st_open_loop(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is PhoneEvent.TIMEOUT:
            self.host.tier().battery(self.chan, True)
            self.host.sched().tone(self.chan, self.zone, "congestion")
            self.transition(PhoneState.CONGESTION)
        elif ev is PhoneEvent.HOOK_ON:
            self.host.tier().battery(self.chan, True)
            self._on_hook()

    def st_congestion(self, ev: PhoneEvent, **d: Any) -> None:
        if ev is PhoneEvent.HOOK_ON:
            self._on_hook()

    def _on_hook(self) -> None:
        m = self.host.sched()
        m.silence(self.chan)
        m.detect_dtmf(self.chan, False)
        self.digits = ""
        self.transition(PhoneState.IDLE)
        self.host.phone_idle(self)
