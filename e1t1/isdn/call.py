"""Q.931 call control of one PRI span, user side or network side, EuroISDN (E1) or NI-2 (T1).

:class:`CallControl` owns a span's Q.921 link (e1t1.isdn.q921.DataLink): it is the link's sink
(DL-DATA-INDICATION in, the link's establishment and release reports) and sends every message
with :meth:`DataLink.send`. Each message is decoded (e1t1.isdn.q931.decode) and handled in the
order of Q.931 §5.8: a protocol discriminator not ours or too short a message is ignored (a
DecodeError, counted); a maintenance message (discriminator 0x43) goes to NI-2's SERVICE
procedure; the global call reference to the RESTART procedure; any other call reference is looked
up (value and flag: flag 1 is a message to the side that chose the value, so it names one of our
calls). Then, on a call: an unknown message type is answered STATUS 97, a message its state does
not accept (the state table says which) STATUS 101, a message whose mandatory IE is missing or
invalid (``msg.assess()``) RELEASE COMPLETE (a SETUP), RELEASE (a DISCONNECT) or STATUS with 96 or
100; otherwise the call acts on it, and answers STATUS 99 or 100 afterwards for an optional IE it
could not read. An unknown call reference: a SETUP with flag 0 is a new call (flag 1: ignored,
§5.8.3.2 d), RELEASE COMPLETE is ignored, STATUS ENQUIRY answered STATUS "null", a STATUS of a
state other than null and every other message RELEASE COMPLETE 81. A SETUP on a call reference in
use is ignored.

Each call is a :class:`Call` on the state-machine base (e1t1.fsm) with Q.931's states by number
and name (:class:`CallState`): :class:`UserCall` on the user side, :class:`NetworkCall` on the
network side. The two sides number the same moment of a call alike (a SETUP from the user puts it
in U1 at the user and N1 at the network), so a state means one thing on one side and another on
the other: the user's state 1 is a call it placed, the network's state 1 one it received. Both
tables are built from one table of the call's *phases* (placed or received, initiated, overlap,
proceeding, delivered, active, clearing...) and each side's map of phase to state
(:data:`USER_STATES`, :data:`NETWORK_STATES`): a phase has the same handler and timer on both
sides. The call's B-channel is its child :class:`BChannelLeg` (reserved, confirmed, connected);
the leg ends with the call, or when the call loses its channel to glare, and frees the channel.

What the call control does, by the issue's Definitions:

- Calls both ways: :meth:`CallControl.place` (ANI with its TON and presentation, DNIS, a channel
  or hunting, exclusive or preferred), en-bloc (Sending Complete), or by overlap sending
  (:meth:`Call.info`); offered calls en-bloc or by overlap receiving (SETUP ACKNOWLEDGE, then
  INFORMATION): the DNIS is complete on Sending Complete, on the owner's exact match
  (``is_complete(dnis)``), or when T302 runs out; then :class:`~e1t1.isdn.events.CallOffered`, and
  the owner accepts (CALL PROCEEDING), alerts, answers (CONNECT) or rejects it
  (:meth:`Call.no_route`: 1, or 28 after T302). The owner answers an offered call as it sees fit:
  the far end's T303 (a SETUP with no answer) is what limits the wait.
- Channels: a SETUP names a B-channel preferred or exclusive. Hunting: the user side takes the
  highest free B-channel, the network side the lowest, skipping those out of service or being
  restarted. Glare (both sides sent a SETUP for one channel): the network's call wins; the user's
  SETUP gets RELEASE COMPLETE 44 if exclusive, another channel in CALL PROCEEDING if preferred.
- Causes we clear with: no route 1, T302 without a route 28, no free B-channel 34, exclusive
  channel busy 44, no such channel 82, bearer not speech or 3.1 kHz audio 65 (disposition
  ``rejected``); alarm 38, T309 27 (``line_fault``); T303, T310 (and T304, T313) 102, T322
  41 (``failed``); a first answer naming a channel we cannot take 6; else 16.
- RESTART (§5.5): sent (:meth:`CallControl.restart`: class 7 "all interfaces" on the global call
  reference, or one channel, class 0 with its channel id) and received; the calls on the channels
  restarted are cleared locally; T316 resends an unanswered RESTART (no calls on those channels
  meanwhile).
- SERVICE (NI-2, :meth:`CallControl.service`): a B-channel in service, in maintenance or out of
  service, sent and received, acknowledged; a call on the channel goes on, hunting skips it.
- Link loss without alarm (DL-RELEASE-INDICATION): active calls keep their state and wait T309
  for the link, which is re-established at once; then STATUS ENQUIRY checks each (T322); when T309
  runs out they clear with 27. Other calls clear at once, 27.
- Span alarm (:meth:`CallControl.ph_down`, red or blue declared): every call cleared locally, 38;
  when the owner says the alarm's RECOVER ended (:meth:`CallControl.ph_up`) the link is
  re-established and RESTART class 7 sent; calls only after its RESTART ACKNOWLEDGE.

Where Q.931 leaves a choice, this call control does as follows:

- A call never waits for a timer Q.931 leaves unset (T301, alerting): only the owner ends it.
- Our SETUP carries Sending Complete unless the owner sends the number by overlap (``complete=False``,
  then :meth:`Call.info`, as the world's far exchange does): T304 (declared with the other timers)
  runs from the far end's SETUP ACKNOWLEDGE and after each INFORMATION, then the call clears 102.
- STATUS: one saying "null" clears the call locally (its cause, else 101); one answering our STATUS
  ENQUIRY after link recovery clears the call with RELEASE 101 when it is not "active"; other
  STATUS messages are recorded (``peer_state``) and logged. A call runs one timer at a time, so
  a STATUS ENQUIRY is supervised by T322 only in the active state (which has no timer of its own).
- A maintenance message other than SERVICE or SERVICE ACKNOWLEDGE, or one that cannot be acted on,
  is ignored (its call reference is no call's, so no STATUS answers it); on a EuroISDN span every
  maintenance message is ignored.
- The far end's RESTART clears its calls with cause 16 (reported as the far end's). T308 running
  out twice releases the call and restarts its channel (per-channel RESTART).

The call control's timers are the protocol ``q931`` (:data:`Q931_TIMERS`, registered in
e1t1.protocols); a span's overrides are its owner's, given as a TimerTable. T310's default is
30 s on the user side and 10 s on the network side (Q.931 Table 9-1 / 9-2) unless overridden.
``span status`` reads :meth:`CallControl.status`.

Its owner (the engine for a ``pri_cpe``/``pri_net`` span, the world's far exchange for the other
side of one) makes the span's DataLink (the span's side, its ``q921`` timers; frames out as the
card's D-channel frames, the card's D-channel frames into :meth:`DataLink.receive`), then the
CallControl over it with the span's switch type, ``q931`` timers, overlap and exclusive settings
and its routes' exact match; calls :meth:`CallControl.start`; gives red/blue to
:meth:`CallControl.ph_down` and the end of RECOVER to :meth:`CallControl.ph_up`; and hears the
reports: a :class:`~e1t1.isdn.events.CallOffered` is a call to route (its DNIS the called number,
its B-channel the timeslot whose card channel the call's leg uses), a
:class:`~e1t1.isdn.events.CallReleased` ends it with its cause and disposition.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from e1t1.errors import DecodeError, EncodeError, ProtocolError, TimerError
from e1t1.fsm import StateDef, StateMachine, TermCause
from e1t1.isdn import q931
from e1t1.isdn.events import (
    CallAlerting,
    CallAnswered,
    CallDigits,
    CallOffered,
    CallProceeding,
    CallProgress,
    CallRefused,
    CallReleased,
    DchanChanged,
    PriEvent,
    PriSink,
    RestartDone,
    ServiceChanged,
)
from e1t1.isdn.q921 import (
    DataLink,
    DlDataIndication,
    DlEstablishConfirm,
    DlEstablishIndication,
    DlEvent,
    DlReleaseIndication,
    Side,
)
from e1t1.isdn.q931 import (
    BearerCapability,
    CalledNumber,
    CallingNumber,
    CallRef,
    CallStateValue,
    Cause,
    ChangeStatus,
    ChannelId,
    Display,
    Keypad,
    Message,
    Npi,
    Presentation,
    ProgressIndicator,
    RestartClass,
    RestartIndicator,
    Screening,
    SendingComplete,
    ServiceStatus,
    Ton,
)
from e1t1.timers import TimerDef, TimerTable, TimerUnit

log = logging.getLogger("cicbox.isdn")

# Q.931 §9 (Tables 9-1 network side, 9-2 user side; EN 300 403 and NI-2 keep the values). One
# table for both sides, overridable per span as ``timers: {T310: ...}`` (integer ms).
Q931_TIMERS = (
    TimerDef("T302", 15000, TimerUnit.MS, "overlap receiving: no more digits for this long completes the called "
             "number (no route then: cause 28)", 1000, 60000),
    TimerDef("T303", 4000, TimerUnit.MS, "SETUP sent, no answer: sent once more, then the call clears with 102",
             1000, 30000),
    TimerDef("T304", 30000, TimerUnit.MS, "overlap sending (the far end's SETUP ACKNOWLEDGE to our SETUP, which "
             "was complete): then the call clears with 102", 5000, 120000),
    TimerDef("T305", 30000, TimerUnit.MS, "DISCONNECT sent, no RELEASE: then RELEASE", 4000, 120000),
    TimerDef("T308", 4000, TimerUnit.MS, "RELEASE sent, no RELEASE COMPLETE: sent once more, then the call is "
             "released and its channel restarted", 1000, 30000),
    TimerDef("T309", 6000, TimerUnit.MS, "the data link lost: active calls wait this long for it, then clear "
             "with 27", 1000, 90000),
    TimerDef("T310", 30000, TimerUnit.MS, "CALL PROCEEDING received, no ALERTING, CONNECT or DISCONNECT: the call "
             "clears with 102 (the network side's default is 10 s)", 1000, 120000),
    TimerDef("T313", 4000, TimerUnit.MS, "user side: CONNECT sent, no CONNECT ACKNOWLEDGE: the call clears with "
             "102", 1000, 30000),
    TimerDef("T316", 120000, TimerUnit.MS, "RESTART sent, no RESTART ACKNOWLEDGE: RESTART again", 10000, 600000),
    TimerDef("T322", 4000, TimerUnit.MS, "STATUS ENQUIRY sent, no STATUS: sent once more, then the call clears "
             "with 41 (§5.8.10)", 1000, 30000),
)
#: T310's default on the network side (Q.931 Table 9-1), unless a span overrides T310
T310_NETWORK_MS = 10000

#: the largest call reference value we choose (two octets, the flag bit aside)
MAX_CALL_REFERENCE = 0x7FFF


class Switch(enum.Enum):
    """The switch type of a span: EuroISDN (ETSI EN 300 403) on E1, NI-2 (national ISDN) on T1.
    The values are the configuration's ``switchtype``."""

    EUROISDN = "euroisdn"
    NI2 = "national"

    @classmethod
    def parse(cls, value: Switch | str) -> Switch:
        """A switch from its enum, its config word (``euroisdn``, ``national``) or ``ni2``."""
        if isinstance(value, Switch):
            return value
        if value == "ni2":
            return cls.NI2
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"switch must be euroisdn, national or ni2, not {value!r}") from None

    @property
    def b_channels(self) -> tuple[int, ...]:
        """The B-channels' timeslots: E1's 1-15 and 17-31 (TS16 is the D-channel), T1's 1-23 (24 is)."""
        if self is Switch.EUROISDN:
            return (*range(1, 16), *range(17, 32))
        return tuple(range(1, 24))

    @property
    def law(self) -> Literal["alaw", "ulaw"]:
        return "alaw" if self is Switch.EUROISDN else "ulaw"


#: the disposition hint of a cause we clear with (a cause not listed: None, a normal end)
OUR_DISPOSITION: Mapping[int, str] = {
    q931.CAUSE_UNALLOCATED: "rejected", q931.CAUSE_INVALID_NUMBER_FORMAT: "rejected",
    q931.CAUSE_NO_CIRCUIT_AVAILABLE: "rejected", q931.CAUSE_REQUESTED_CHANNEL_UNAVAILABLE: "rejected",
    q931.CAUSE_CHANNEL_DOES_NOT_EXIST: "rejected", q931.CAUSE_BEARER_NOT_IMPLEMENTED: "rejected",
    q931.CAUSE_NETWORK_OUT_OF_ORDER: "line_fault", q931.CAUSE_DESTINATION_OUT_OF_ORDER: "line_fault",
    q931.CAUSE_RECOVERY_ON_TIMER_EXPIRY: "failed", q931.CAUSE_CHANNEL_UNACCEPTABLE: "failed",
    q931.CAUSE_MANDATORY_IE_MISSING: "failed", q931.CAUSE_INVALID_IE_CONTENTS: "failed",
    q931.CAUSE_WRONG_MESSAGE_FOR_STATE: "failed", q931.CAUSE_TEMPORARY_FAILURE: "failed",
}
#: the causes that give the caller of a call we placed the info tone (17: busy, others: congestion)
INFO_TONE_CAUSES = frozenset({q931.CAUSE_UNALLOCATED, q931.CAUSE_NO_ROUTE_DESTINATION, q931.CAUSE_NUMBER_CHANGED,
                              q931.CAUSE_INVALID_NUMBER_FORMAT})


def tone_for(cause: int) -> str:
    """The tone for the caller of a call we placed that did not answer, by its cause."""
    if cause == q931.CAUSE_USER_BUSY:
        return "busy"
    return "info" if cause in INFO_TONE_CAUSES else "congestion"


# -- the B-channels ---------------------------------------------------------------------------

class FreeChannels:
    """How many of a span's B-channels are free, kept by the channels as they change (whether a
    call can be placed is asked for every call offered, also while every channel is busy)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class BChannel:
    """One B-channel of the span: its timeslot, service state (NI-2), the leg holding it, and
    whether a RESTART of ours for it waits for its acknowledgement. Free: none of these holds it."""

    __slots__ = ("_leg", "_pool", "_restarting", "_service", "free", "timeslot")

    def __init__(self, timeslot: int, pool: FreeChannels) -> None:
        self.timeslot = timeslot
        self._service = ServiceStatus.in_service
        self._leg: BChannelLeg | None = None
        self._restarting = False
        self._pool = pool
        self.free = True
        pool.count += 1

    def __repr__(self) -> str:
        return (f"BChannel({self.timeslot}, service={self._service.name}, leg={self._leg!r}, "
                f"restarting={self._restarting})")

    def _recount(self) -> None:
        free = self._leg is None and not self._restarting and self._service is ServiceStatus.in_service
        if free != self.free:
            self.free = free
            self._pool.count += 1 if free else -1

    @property
    def leg(self) -> BChannelLeg | None:
        return self._leg

    @leg.setter
    def leg(self, leg: BChannelLeg | None) -> None:
        self._leg = leg
        self._recount()

    @property
    def restarting(self) -> bool:
        return self._restarting

    @restarting.setter
    def restarting(self, on: bool) -> None:
        self._restarting = on
        self._recount()

    @property
    def service(self) -> ServiceStatus:
        return self._service

    @service.setter
    def service(self, status: ServiceStatus) -> None:
        self._service = status
        self._recount()


class LegState(enum.Enum):
    RESERVED = 1        # our SETUP named it; the far end has not answered yet
    CONFIRMED = 2       # both ends hold the call on it
    CONNECTED = 3       # the call is answered: speech both ways


class LegInput(enum.Enum):
    CONFIRM = 1
    CONNECT = 2


class BChannelLeg(StateMachine[LegState, LegInput]):
    """A call's B-channel: a child of the call. It ends with the call (or when the call loses the
    channel to glare) and frees the channel then; :meth:`move` puts it on another channel (the far
    end's first answer named another)."""

    TABLE = {
        LegState.RESERVED: StateDef(frozenset({LegInput.CONFIRM, LegInput.CONNECT}),
                                    frozenset({LegState.CONFIRMED, LegState.CONNECTED}), "st_leg"),
        LegState.CONFIRMED: StateDef(frozenset({LegInput.CONFIRM, LegInput.CONNECT}),
                                     frozenset({LegState.CONNECTED}), "st_leg"),
        LegState.CONNECTED: StateDef(frozenset({LegInput.CONFIRM, LegInput.CONNECT}), frozenset(), "st_leg"),
    }

    def __init__(self, call: Call, channel: BChannel, initial: LegState) -> None:
        super().__init__(f"{call.name}.B{channel.timeslot}", initial, call.clock, parent=call)
        self.call = call
        self.channel = channel
        channel.leg = self

    @property
    def chan(self) -> int:
        return self.channel.timeslot

    def st_leg(self, ev: LegInput, **_: Any) -> None:
        if ev is LegInput.CONNECT and self.state is not LegState.CONNECTED:
            self.transition(LegState.CONNECTED)
        elif ev is LegInput.CONFIRM and self.state is LegState.RESERVED:
            self.transition(LegState.CONFIRMED)

    def move(self, channel: BChannel) -> None:
        """Onto `channel` (free): the old one is freed."""
        if self.channel.leg is self:
            self.channel.leg = None
        self.channel = channel
        channel.leg = self
        self.name = f"{self.call.name}.B{channel.timeslot}"

    def on_terminate(self, cause: TermCause) -> None:
        if self.channel.leg is self:
            self.channel.leg = None


# -- the call machine ---------------------------------------------------------------------------

class CallState(enum.Enum):
    """Q.931 §2's call states, by their number (the call state IE's value; U and N share them)."""

    NULL = 0
    CALL_INITIATED = 1
    OVERLAP_SENDING = 2
    OUTGOING_CALL_PROCEEDING = 3
    CALL_DELIVERED = 4
    CALL_PRESENT = 6
    CALL_RECEIVED = 7
    CONNECT_REQUEST = 8
    INCOMING_CALL_PROCEEDING = 9
    ACTIVE = 10
    DISCONNECT_REQUEST = 11
    DISCONNECT_INDICATION = 12
    RELEASE_REQUEST = 19
    OVERLAP_RECEIVING = 25


class CallInput(enum.Enum):
    # from the owner (the call control's API)
    PLACE = 1            # send our SETUP
    ACCEPT = 2           # CALL PROCEEDING
    ALERT = 3            # ALERTING
    ANSWER = 4           # CONNECT
    HANGUP = 5           # clear (data: cause, reason)
    ENQUIRE = 6          # STATUS ENQUIRY
    INFO = 7             # overlap sending: more digits of the called number (data: digits, complete)
    # messages received (data: msg; DISCONNECT also reply_cause, diagnostic when it cannot be read)
    SETUP = 10
    SETUP_ACK = 11
    CALL_PROCEEDING = 12
    ALERTING = 13
    CONNECT = 14
    CONNECT_ACK = 15
    PROGRESS = 16
    INFORMATION = 17
    DISCONNECT = 18
    RELEASE = 19
    RELEASE_COMPLETE = 20
    STATUS = 21
    STATUS_ENQUIRY = 22
    NOTIFY = 23
    FACILITY = 24
    # from the span
    LOCAL_CLEAR = 30     # release without messages (data: cause, reason): alarm, restart, link
    LINK_DOWN = 31       # DL-RELEASE-INDICATION without alarm
    LINK_UP = 32         # the link is back
    TIMEOUT = 33
    LEG_GONE = 34        # the B-channel leg ended (glare took the channel)


_I = CallInput

#: the call input of each message type
MESSAGE_INPUT: Mapping[type[Message], CallInput] = {
    q931.Setup: _I.SETUP, q931.SetupAck: _I.SETUP_ACK, q931.CallProceeding: _I.CALL_PROCEEDING,
    q931.Alerting: _I.ALERTING, q931.Connect: _I.CONNECT, q931.ConnectAck: _I.CONNECT_ACK,
    q931.Progress: _I.PROGRESS, q931.Information: _I.INFORMATION, q931.Disconnect: _I.DISCONNECT,
    q931.Release: _I.RELEASE, q931.ReleaseComplete: _I.RELEASE_COMPLETE, q931.Status: _I.STATUS,
    q931.StatusEnquiry: _I.STATUS_ENQUIRY, q931.Notify: _I.NOTIFY, q931.FacilityMessage: _I.FACILITY,
}

_FIRST_ANSWERS = frozenset({_I.SETUP_ACK, _I.CALL_PROCEEDING, _I.ALERTING, _I.CONNECT})
_LATE = frozenset({_I.SETUP_ACK, _I.CALL_PROCEEDING, _I.ALERTING, _I.CONNECT, _I.CONNECT_ACK, _I.PROGRESS,
                   _I.INFORMATION, _I.DISCONNECT, _I.HANGUP, _I.ACCEPT, _I.ALERT, _I.ANSWER, _I.INFO})


@dataclass(frozen=True)
class Phase:
    """A moment of a call, the same on both sides (the state it is depends on the side): the
    inputs it takes, the phases it may go to, its handler and the timer its entry starts."""

    inputs: frozenset[CallInput]
    next: frozenset[str]
    handler: str | None = None
    timer: str | None = None


_CLEARING = frozenset({"clear_sent", "clear_received", "null"})

#: the phases of a call: ``out_*`` a call we placed, ``in_*`` one offered to us
PHASES: Mapping[str, Phase] = {
    "null": Phase(frozenset({_I.PLACE, _I.SETUP}), frozenset({"out_initiated", "in_present", "in_overlap", "null"}),
                  "st_null"),
    # our SETUP sent: T303 (sent once more, then 102)
    "out_initiated": Phase(
        frozenset({_I.SETUP_ACK, _I.CALL_PROCEEDING, _I.ALERTING, _I.CONNECT, _I.PROGRESS, _I.INFORMATION,
                   _I.DISCONNECT, _I.HANGUP, _I.TIMEOUT, _I.INFO}),
        frozenset({"out_overlap", "out_proceeding", "out_delivered", "out_connecting", "active"}) | _CLEARING,
        "st_calling", "T303"),
    # the far end's SETUP ACKNOWLEDGE: our digits by INFORMATION, T304 after each
    "out_overlap": Phase(
        frozenset({_I.CALL_PROCEEDING, _I.ALERTING, _I.CONNECT, _I.PROGRESS, _I.INFORMATION, _I.DISCONNECT,
                   _I.HANGUP, _I.TIMEOUT, _I.INFO}),
        frozenset({"out_proceeding", "out_delivered", "out_connecting", "active"}) | _CLEARING, "st_calling", "T304"),
    "out_proceeding": Phase(
        frozenset({_I.ALERTING, _I.CONNECT, _I.PROGRESS, _I.INFORMATION, _I.DISCONNECT, _I.HANGUP, _I.TIMEOUT}),
        frozenset({"out_delivered", "out_connecting", "active"}) | _CLEARING, "st_calling", "T310"),
    "out_delivered": Phase(
        frozenset({_I.CONNECT, _I.PROGRESS, _I.INFORMATION, _I.DISCONNECT, _I.HANGUP}),
        frozenset({"out_connecting", "active"}) | _CLEARING, "st_calling"),
    # the network side between the user's CONNECT and its CONNECT ACKNOWLEDGE (passed through at once)
    "out_connecting": Phase(frozenset(), frozenset({"active"}) | _CLEARING),
    # offered to us, the called number complete: the owner accepts, alerts, answers or rejects
    "in_present": Phase(
        frozenset({_I.ACCEPT, _I.ALERT, _I.ANSWER, _I.HANGUP, _I.DISCONNECT, _I.INFORMATION}),
        frozenset({"in_proceeding", "in_received", "in_connecting", "active"}) | _CLEARING, "st_called"),
    # SETUP ACKNOWLEDGE sent: digits by INFORMATION, T302 after each
    "in_overlap": Phase(
        frozenset({_I.INFORMATION, _I.TIMEOUT, _I.ACCEPT, _I.ALERT, _I.ANSWER, _I.HANGUP, _I.DISCONNECT}),
        frozenset({"in_proceeding", "in_received", "in_connecting", "active"}) | _CLEARING, "st_called", "T302"),
    "in_proceeding": Phase(
        frozenset({_I.ALERT, _I.ANSWER, _I.HANGUP, _I.DISCONNECT, _I.INFORMATION, _I.ACCEPT}),
        frozenset({"in_received", "in_connecting", "active"}) | _CLEARING, "st_called"),
    "in_received": Phase(
        frozenset({_I.ANSWER, _I.HANGUP, _I.DISCONNECT, _I.INFORMATION, _I.ACCEPT, _I.ALERT}),
        frozenset({"in_connecting", "active"}) | _CLEARING, "st_called"),
    # the user side's CONNECT sent: T313 for the CONNECT ACKNOWLEDGE
    "in_connecting": Phase(
        frozenset({_I.CONNECT_ACK, _I.HANGUP, _I.DISCONNECT, _I.INFORMATION, _I.TIMEOUT}),
        frozenset({"active"}) | _CLEARING, "st_called", "T313"),
    # answered; T309 (link lost) and T322 (our STATUS ENQUIRY) are started by name here
    "active": Phase(
        frozenset({_I.DISCONNECT, _I.HANGUP, _I.INFORMATION, _I.CONNECT_ACK, _I.TIMEOUT}),
        frozenset({"release_request"}) | _CLEARING, "st_active"),
    # our DISCONNECT sent: T305. Messages crossing it are let be
    "clear_sent": Phase(frozenset({_I.TIMEOUT}) | _LATE, frozenset({"release_request", "null"}),
                        "st_clear_sent", "T305"),
    # the far end's DISCONNECT taken: RELEASE goes at once
    "clear_received": Phase(frozenset(), frozenset({"release_request", "null"})),
    # our RELEASE sent: T308 (sent once more, then the call is released)
    "release_request": Phase(frozenset({_I.TIMEOUT}) | _LATE, frozenset({"null"}), "st_release_request", "T308"),
}

#: each phase's state on the user side (every Q.931 state but the network's N8)
USER_STATES: Mapping[str, CallState] = {
    "null": CallState.NULL, "out_initiated": CallState.CALL_INITIATED, "out_overlap": CallState.OVERLAP_SENDING,
    "out_proceeding": CallState.OUTGOING_CALL_PROCEEDING, "out_delivered": CallState.CALL_DELIVERED,
    "in_present": CallState.CALL_PRESENT, "in_received": CallState.CALL_RECEIVED,
    "in_connecting": CallState.CONNECT_REQUEST, "in_proceeding": CallState.INCOMING_CALL_PROCEEDING,
    "active": CallState.ACTIVE, "clear_sent": CallState.DISCONNECT_REQUEST,
    "clear_received": CallState.DISCONNECT_INDICATION, "release_request": CallState.RELEASE_REQUEST,
    "in_overlap": CallState.OVERLAP_RECEIVING,
}
#: each phase's state on the network side: a call from the user is in N1-N4, one to it in N6-N9, N25
NETWORK_STATES: Mapping[str, CallState] = {
    "null": CallState.NULL, "in_present": CallState.CALL_INITIATED, "in_overlap": CallState.OVERLAP_SENDING,
    "in_proceeding": CallState.OUTGOING_CALL_PROCEEDING, "in_received": CallState.CALL_DELIVERED,
    "out_initiated": CallState.CALL_PRESENT, "out_delivered": CallState.CALL_RECEIVED,
    "out_connecting": CallState.CONNECT_REQUEST, "out_proceeding": CallState.INCOMING_CALL_PROCEEDING,
    "active": CallState.ACTIVE, "clear_received": CallState.DISCONNECT_REQUEST,
    "clear_sent": CallState.DISCONNECT_INDICATION, "release_request": CallState.RELEASE_REQUEST,
    "out_overlap": CallState.OVERLAP_RECEIVING,
}


def _table(states: Mapping[str, CallState]) -> dict[CallState, StateDef[CallState, CallInput]]:
    """One side's state table from the phases and that side's map of them to states."""
    return {state: StateDef(PHASES[phase].inputs,
                            frozenset(states[p] for p in PHASES[phase].next if p in states),
                            PHASES[phase].handler, PHASES[phase].timer)
            for phase, state in states.items()}


_EVERY_STATE = frozenset({_I.STATUS_ENQUIRY, _I.STATUS, _I.RELEASE, _I.RELEASE_COMPLETE, _I.LOCAL_CLEAR,
                          _I.LINK_DOWN, _I.LINK_UP, _I.LEG_GONE, _I.ENQUIRE, _I.NOTIFY, _I.FACILITY})


class Call(StateMachine[CallState, CallInput]):
    """One call of a PRI span (a base: :class:`UserCall` and :class:`NetworkCall` have the tables).

    ``ours`` says whether we placed it (we chose its call reference value); ``cr`` is the call
    reference as we write it. The owner acts with :meth:`accept`, :meth:`alert`, :meth:`answer`,
    :meth:`hangup`, :meth:`no_route`, :meth:`enquire`.
    """

    PROTOCOL = "q931"
    TIMERS = Q931_TIMERS
    TIMEOUT = CallInput.TIMEOUT
    REST = CallState.NULL
    ALL_STATE_EVENTS = _EVERY_STATE
    ALL_STATE_HANDLER = "any_state"
    CHILD_TERM_EVENT = CallInput.LEG_GONE
    SIDE: ClassVar[Side]
    STATE_OF: ClassVar[Mapping[str, CallState]]
    PHASE_OF: ClassVar[Mapping[CallState, str]]

    def __init__(self, control: CallControl, call_id: int, cr_value: int, ours: bool, cr_length: int = 2) -> None:
        super().__init__(f"q931({control.name}:{'o' if ours else 'i'}{cr_value})", CallState.NULL, control.clock,
                         control.timers)
        self.control = control
        self.id = call_id
        self.ours = ours
        #: the call reference as we write it: flag 0 when we chose the value, 1 when the far end did
        self.cr = CallRef(cr_value, not ours, cr_length)
        self.leg: BChannelLeg | None = None
        self.exclusive = False          # our SETUP's channel was exclusive
        self.displaced = False          # glare took our channel: the far end's first answer names another
        self.answered_first = False     # we sent our first answer to the far end's SETUP (it named the channel)
        self.first_heard = False        # the far end's first answer to our SETUP came
        self.answered = False
        self.setup_octets = b""
        self.setup_resent = False
        self.digits_waiting: list[tuple[str, bool]] = []    # overlap sending: digits before SETUP ACKNOWLEDGE
        self.release_resent = False
        self.enquiry_resent = False
        self.clear_cause: int | None = None
        self.clear_by_far_end = False
        self.clear_reason = "cleared"
        self.peer_state: int | None = None
        # what the offer said
        self.ani: str | None = None
        self.ani_ton: Ton | None = None
        self.ani_npi: Npi | None = None
        self.ani_presentation: Presentation | None = None
        self.ani_screening: Screening | None = None
        self.dnis = ""
        self.dnis_ton = Ton.unknown
        self.dnis_npi = Npi.isdn
        self.bearer = q931.ITC_SPEECH
        self.display: str | None = None
        self.complete_by: str | None = None
        self.setup_ms: int | None = None        # the far end's SETUP came then

    # -- what the owner reads and does ------------------------------------------------------------

    @property
    def phase(self) -> str:
        return self.PHASE_OF[self.state]

    @property
    def chan(self) -> int | None:
        """The call's B-channel (timeslot), or None."""
        return self.leg.chan if self.leg is not None else None

    def accept(self) -> None:
        """CALL PROCEEDING to a call offered to us (the called number is complete, the call goes on)."""
        self.dispatch(_I.ACCEPT)

    def alert(self) -> None:
        """ALERTING (CALL PROCEEDING not needed first)."""
        self.dispatch(_I.ALERT)

    def answer(self) -> None:
        """CONNECT: the call is connected."""
        self.dispatch(_I.ANSWER)

    def hangup(self, cause: int = q931.CAUSE_NORMAL_CLEARING, reason: str = "cleared") -> None:
        """Clear the call with `cause`: RELEASE COMPLETE to a SETUP not yet answered, else DISCONNECT."""
        self.dispatch(_I.HANGUP, cause=cause, reason=reason)

    def reject(self, cause: int) -> None:
        """Refuse a call offered to us with `cause` (disposition ``rejected`` for the Definitions' causes)."""
        self.hangup(cause, reason="rejected")

    def no_route(self) -> None:
        """No route for the called number: cause 1, or 28 when T302 completed it."""
        self.reject(q931.CAUSE_INVALID_NUMBER_FORMAT if self.complete_by == "t302" else q931.CAUSE_UNALLOCATED)

    def info(self, digits: str, complete: bool = False) -> None:
        """Overlap sending, on a call placed with ``complete=False``: more digits of the called number
        (INFORMATION; kept until the far end's SETUP ACKNOWLEDGE), with Sending Complete when `complete`."""
        CalledNumber(digits).encode()           # an EncodeError for what cannot be sent, here
        self.dispatch(_I.INFO, digits=digits, complete=complete)

    def enquire(self) -> None:
        """STATUS ENQUIRY: the far end answers with its state (``peer_state``)."""
        self.dispatch(_I.ENQUIRE)

    # -- sending -----------------------------------------------------------------------------------

    def _cause(self, value: int, diagnostic: bytes = b"") -> Cause:
        return Cause(value, self.control.location, diagnostic=diagnostic)

    def send(self, cls: type[Message], *ies: q931.InformationElement) -> None:
        self.control.send(cls(self.cr, tuple(ies)))

    def send_status(self, cause: int, diagnostic: bytes = b"") -> None:
        """STATUS with our state (answering STATUS ENQUIRY, or a §5.8 error)."""
        self.send(q931.Status, self._cause(cause, diagnostic), q931.CallState(CallStateValue(self.state.value)))

    def _channel_ie(self) -> tuple[ChannelId, ...]:
        """Our first answer to the far end's SETUP names the channel (exclusive); later ones do not."""
        if self.answered_first:
            return ()
        self.answered_first = True
        return (ChannelId.b_channel(self.leg.chan, exclusive=True),) if self.leg is not None else ()

    def go(self, phase: str, timer_ms: int | None = None) -> None:
        self.transition(self.STATE_OF[phase], timer_ms)

    def _report(self, cls: type[Any], **fields: Any) -> None:
        self.control.report(cls(self.control.name, self.clock.now_ms, self.id, self.chan, self, **fields))

    # -- clearing ----------------------------------------------------------------------------------

    def _note_clear(self, cause: int | None, by_far_end: bool, reason: str) -> None:
        """The first clearing cause counts (ours, or the far end's)."""
        if self.clear_cause is None:
            self.clear_cause = cause if cause is not None else q931.CAUSE_NORMAL_CLEARING
            self.clear_by_far_end = by_far_end
            self.clear_reason = reason

    @staticmethod
    def _cause_of(msg: Message | None) -> int | None:
        c = msg.get(Cause) if msg is not None else None
        return c.value if c is not None else None

    def _disconnect(self, cause: int, reason: str) -> None:
        """Our DISCONNECT: to clear_sent (T305)."""
        self._note_clear(cause, False, reason)
        self.send(q931.Disconnect, self._cause(cause))
        self.go("clear_sent")

    def _release_request(self, cause: int | None) -> None:
        """Our RELEASE: to release_request (T308)."""
        self.send(q931.Release, *((self._cause(cause),) if cause is not None else ()))
        self.go("release_request")

    def _far_disconnect(self, msg: Message, reply_cause: int | None = None, diagnostic: bytes = b"") -> None:
        """The far end's DISCONNECT: RELEASE at once (with 96 or 100 when its cause could not be read)."""
        cause = self._cause_of(msg)
        self._note_clear(cause if cause is not None else reply_cause, True, "cleared")
        self.go("clear_received")
        self.send(q931.Release, *((self._cause(reply_cause, diagnostic),) if reply_cause is not None else ()))
        self.go("release_request")

    def _released(self, cause: int | None = None, by_far_end: bool = False, reason: str = "cleared") -> None:
        """Into null: the call reference and the channel are free, then the owner hears of it."""
        self._note_clear(cause, by_far_end, reason)
        if self.state is not CallState.NULL:
            self.go("null")
        chan = self.chan
        self.terminate(TermCause.REGULAR)
        cause_value = self.clear_cause or q931.CAUSE_NORMAL_CLEARING
        disposition = None if self.clear_by_far_end else OUR_DISPOSITION.get(cause_value)
        tone = tone_for(cause_value) if self.ours and not self.answered else None
        log.info("%s: released, cause %d (%s, %s)", self.name, cause_value,
                 "far end" if self.clear_by_far_end else "ours", self.clear_reason)
        if not self.ours and self.setup_ms is not None and self.complete_by is None:
            # offered to us but never complete (overlap): the owner never had it; the attempt is reported
            self.control.refused_call(self, cause_value, "abandoned" if self.clear_by_far_end else
                                      OUR_DISPOSITION.get(cause_value, "failed"), chan)
        self.control.report(CallReleased(self.control.name, self.clock.now_ms, self.id, chan, self,
                                         cause=cause_value, by_far_end=self.clear_by_far_end,
                                         reason=self.clear_reason, answered=self.answered,
                                         disposition=disposition, tone=tone))

    def on_terminate(self, cause: TermCause) -> None:
        self.leg = None                     # ended before this (a child), its channel free
        self.control.forget(self)

    # -- every state ---------------------------------------------------------------------------------

    def any_state(self, ev: CallInput, **d: Any) -> None:
        msg: Message | None = d.get("msg")
        if ev is _I.STATUS_ENQUIRY:
            self.send_status(q931.CAUSE_RESPONSE_TO_STATUS_ENQUIRY)
        elif ev is _I.STATUS:
            assert msg is not None
            self._status(msg)
        elif ev is _I.RELEASE:
            if self.phase == "release_request":     # §5.3.5: both sent RELEASE: released, no RELEASE COMPLETE
                self._released(self._cause_of(msg), True)
            else:
                self._note_clear(self._cause_of(msg), True, "cleared")
                self.send(q931.ReleaseComplete)
                self._released()
        elif ev is _I.RELEASE_COMPLETE:
            self._released(self._cause_of(msg), True)
        elif ev is _I.LOCAL_CLEAR:
            self._released(d["cause"], bool(d.get("by_far_end", False)), d["reason"])
        elif ev is _I.LINK_DOWN:
            if self.phase == "active":
                running = self.timer
                if running is None or running[0] != "T309":     # from the first loss, not each retry's
                    self.start_timer("T309")        # §5.8.9: wait for the link
            else:
                self._released(q931.CAUSE_DESTINATION_OUT_OF_ORDER, False, "link")
        elif ev is _I.LINK_UP:
            running = self.timer
            if running is not None and running[0] == "T309":
                self.stop_timer()
                self._enquire()
        elif ev is _I.LEG_GONE:
            if d["child"] is self.leg:
                self.leg = None
        elif ev is _I.ENQUIRE:
            self._enquire()
        # NOTIFY, FACILITY: nothing to do (supplementary services are out of scope)

    def _enquire(self) -> None:
        self.send(q931.StatusEnquiry)
        if self.phase == "active" and self.timer is None:
            self.enquiry_resent = False
            self.start_timer("T322")

    def _status(self, msg: Message) -> None:
        """The far end's STATUS (§5.8.11)."""
        cs = msg.get(q931.CallState)
        if cs is None:
            return
        self.peer_state = cs.state.value
        running = self.timer
        if cs.state is CallStateValue.null and self.state is not CallState.NULL:
            cause = self._cause_of(msg)
            self._released(cause if cause is not None and cause != q931.CAUSE_RESPONSE_TO_STATUS_ENQUIRY
                           else q931.CAUSE_WRONG_MESSAGE_FOR_STATE, True, "status")
        elif running is not None and running[0] == "T322":
            self.stop_timer()
            if cs.state.value != self.state.value:
                log.warning("%s: the far end is in state %d, we are in %d: cleared", self.name, cs.state.value,
                            self.state.value)
                self._note_clear(q931.CAUSE_WRONG_MESSAGE_FOR_STATE, False, "status")
                self._release_request(q931.CAUSE_WRONG_MESSAGE_FOR_STATE)
        elif cs.state.value != self.state.value:
            log.info("%s: STATUS says the far end is in state %d, we are in %d", self.name, cs.state.value,
                     self.state.value)

    # -- null -----------------------------------------------------------------------------------

    def st_null(self, ev: CallInput, **d: Any) -> None:
        if ev is _I.PLACE:
            self.setup_octets = d["octets"]
            self.control.send_octets(self.setup_octets)
            self.go("out_initiated")
        else:
            self._offered(d["msg"])

    def _offered(self, msg: Message) -> None:
        """The far end's SETUP, its bearer and channel accepted: en-bloc, or overlap receiving."""
        self.setup_ms = self.clock.now_ms
        calling, called = msg.get(CallingNumber), msg.get(CalledNumber)
        if calling is not None:
            self.ani = calling.digits
            self.ani_ton, self.ani_npi = calling.ton, calling.npi
            self.ani_presentation, self.ani_screening = calling.presentation, calling.screening
        if called is not None:
            self.dnis, self.dnis_ton, self.dnis_npi = called.digits, called.ton, called.npi
        bc = msg.get(BearerCapability)
        self.bearer = bc.capability if bc is not None else q931.ITC_SPEECH
        disp = msg.get(Display)
        self.display = disp.text if disp is not None else None
        by = self._complete_by(msg)
        if by is None:
            self.send(q931.SetupAck, *self._channel_ie())
            self.go("in_overlap")
        else:
            self.go("in_present")
            self._complete(by)

    def _complete_by(self, msg: Message) -> str | None:
        if msg.get(SendingComplete) is not None:
            return "sending_complete"
        test = self.control.is_complete
        if test is not None and test(self.dnis):
            return "match"
        if not self.control.overlap and msg.CODE == q931.Setup.CODE:
            return "en_bloc"
        return None

    def _complete(self, by: str) -> None:
        self.complete_by = by
        if self.phase == "in_overlap":
            self.stop_timer()
        self._report(CallOffered, ani=self.ani, ani_ton=self.ani_ton, ani_npi=self.ani_npi,
                     ani_presentation=self.ani_presentation, ani_screening=self.ani_screening, dnis=self.dnis,
                     dnis_ton=self.dnis_ton, dnis_npi=self.dnis_npi, complete_by=by, bearer=self.bearer,
                     display=self.display, setup_ms=self.setup_ms)

    # -- a call offered to us -----------------------------------------------------------------------

    def st_called(self, ev: CallInput, **d: Any) -> None:
        phase = self.phase
        msg: Message | None = d.get("msg")
        if ev is _I.DISCONNECT:
            assert msg is not None
            self._far_disconnect(msg, d.get("reply_cause"), d.get("diagnostic", b""))
        elif ev is _I.INFORMATION:
            assert msg is not None
            self._information(msg)
        elif ev is _I.TIMEOUT:
            if phase == "in_overlap":               # T302: the number is as complete as it gets
                self._complete("t302")
            else:                                   # T313: no CONNECT ACKNOWLEDGE
                self._disconnect(q931.CAUSE_RECOVERY_ON_TIMER_EXPIRY, "T313")
        elif ev is _I.CONNECT_ACK:
            self.go("active")
        elif ev is _I.ACCEPT:
            if phase in ("in_present", "in_overlap"):
                self.send(q931.CallProceeding, *self._channel_ie())
                self.go("in_proceeding")
        elif ev is _I.ALERT:
            if phase in ("in_present", "in_overlap", "in_proceeding"):
                self.send(q931.Alerting, *self._channel_ie())
                self.go("in_received")
        elif ev is _I.ANSWER:
            self.send(q931.Connect, *self._channel_ie())
            self.answered = True
            if self.leg is not None:
                self.leg.dispatch(LegInput.CONNECT)
            self.go("in_connecting" if self.SIDE is Side.USER else "active")
            self._report(CallAnswered)
        elif ev is _I.HANGUP:
            cause, reason = d["cause"], d["reason"]
            if not self.answered_first:             # no answer sent yet: the SETUP is refused
                self._note_clear(cause, False, reason)
                self.send(q931.ReleaseComplete, self._cause(cause))
                self._released()
            else:
                self._disconnect(cause, reason)

    def _information(self, msg: Message) -> None:
        called, keypad = msg.get(CalledNumber), msg.get(Keypad)
        digits = (called.digits if called is not None else "") + (keypad.digits if keypad is not None else "")
        overlap = self.phase == "in_overlap" and self.complete_by is None
        if overlap and called is not None:
            if len(self.dnis) + len(called.digits) > q931.MAX_NUMBER_DIGITS:
                self._too_long()
                return
            self.dnis += called.digits
        if digits:
            self._report(CallDigits, digits=digits, dnis=self.dnis)
        if overlap:
            by = self._complete_by(msg)
            if by is not None:
                self._complete(by)
            elif digits:
                self.restart_timer(self.timers["T302"])      # T302 again after each digit

    def _too_long(self) -> None:
        """Overlap digits that would make the called number longer than any number is (MAX_NUMBER_DIGITS):
        the call is cleared with 28 (invalid number format); as every call that ends before its number is
        complete, it is reported refused when released (_released), with the number as far as it was valid."""
        log.warning("%s: call reference %d: called number %s... grows past %d digits: cleared, cause 28",
                    self.control.name, self.cr.value, self.dnis[:12], q931.MAX_NUMBER_DIGITS)
        self._disconnect(q931.CAUSE_INVALID_NUMBER_FORMAT, "number too long")

    # -- a call we placed ---------------------------------------------------------------------------

    def st_calling(self, ev: CallInput, **d: Any) -> None:
        msg: Message | None = d.get("msg")
        if ev is _I.TIMEOUT:
            name = self.expired
            if name == "T303":
                if not self.setup_resent:           # §5.1.1: once more
                    self.setup_resent = True
                    self.control.send_octets(self.setup_octets)
                    self.restart_timer(self.timers["T303"])
                else:
                    self._note_clear(q931.CAUSE_RECOVERY_ON_TIMER_EXPIRY, False, "T303")
                    self.send(q931.ReleaseComplete, self._cause(q931.CAUSE_RECOVERY_ON_TIMER_EXPIRY))
                    self._released()
            else:                                   # T304, T310
                self._disconnect(q931.CAUSE_RECOVERY_ON_TIMER_EXPIRY, name or "timer")
            return
        if ev is _I.INFO:
            if self.phase == "out_overlap":
                self._send_digits(d["digits"], d["complete"])
            else:
                self.digits_waiting.append((d["digits"], d["complete"]))
            return
        if ev is _I.HANGUP:
            self._disconnect(d["cause"], d["reason"])
            return
        assert msg is not None
        if ev is _I.DISCONNECT:
            self._far_disconnect(msg, d.get("reply_cause"), d.get("diagnostic", b""))
            return
        if ev is _I.INFORMATION:
            keypad = msg.get(Keypad)
            if keypad is not None and keypad.digits:
                self._report(CallDigits, digits=keypad.digits, dnis=self.dnis)
            return
        self._progress(msg)
        if ev is _I.PROGRESS:
            return
        if ev in _FIRST_ANSWERS and not self._first_answer(msg):
            return
        if ev is _I.SETUP_ACK:
            self.go("out_overlap")
            self._report(CallProceeding, overlap=True)
            waiting, self.digits_waiting = self.digits_waiting, []
            for digits, complete in waiting:
                self._send_digits(digits, complete)
        elif ev is _I.CALL_PROCEEDING:
            self.go("out_proceeding")
            self._report(CallProceeding)
        elif ev is _I.ALERTING:
            self.go("out_delivered")
            self._report(CallAlerting, inband=self._inband(msg))
        else:                                       # CONNECT
            if self.SIDE is Side.NETWORK:
                self.go("out_connecting")
            self.send(q931.ConnectAck)
            self.answered = True
            if self.leg is not None:
                self.leg.dispatch(LegInput.CONNECT)
            self.go("active")
            self._report(CallAnswered)

    def _send_digits(self, digits: str, complete: bool) -> None:
        """INFORMATION with the next digits of the called number; T304 again (§5.1.3)."""
        self.dnis += digits
        ies: tuple[q931.InformationElement, ...] = (CalledNumber(digits, self.dnis_ton, self.dnis_npi),)
        self.send(q931.Information, *(((SendingComplete(),) if complete else ()) + ies))
        self.restart_timer(self.timers["T304"])

    @staticmethod
    def _inband(msg: Message) -> bool:
        return any(p.description == q931.PROGRESS_INBAND for p in msg.all(ProgressIndicator))

    def _progress(self, msg: Message) -> None:
        for p in msg.all(ProgressIndicator):
            self._report(CallProgress, description=p.description)

    def _first_answer(self, msg: Message) -> bool:
        """The channel of the far end's first answer (§5.1.2): ours confirmed, or another taken
        when ours was preferred (or lost to glare); one we cannot take clears the call with 6.
        False when the call was cleared."""
        if self.first_heard:
            return True
        self.first_heard = True
        ci = msg.get(ChannelId)
        control = self.control
        if ci is None:
            if self.leg is not None:
                self.leg.dispatch(LegInput.CONFIRM)
                return True
            self._disconnect(q931.CAUSE_CHANNEL_UNACCEPTABLE, "channel")
            return False
        ts = ci.channel
        if self.leg is not None and ts == self.leg.chan:
            self.leg.dispatch(LegInput.CONFIRM)
            return True
        ch = control.channel(ts)
        if ch is None or not ch.free or (self.exclusive and not self.displaced) or not control.plain_channel_id(ci):
            log.warning("%s: the far end's answer names channel %s: not ours to take", self.name, ts)
            self._disconnect(q931.CAUSE_CHANNEL_UNACCEPTABLE, "channel")
            return False
        if self.leg is not None:
            self.leg.move(ch)
            self.leg.dispatch(LegInput.CONFIRM)
        else:
            self.leg = BChannelLeg(self, ch, LegState.CONFIRMED)
        return True

    def displace(self) -> None:
        """Glare on the user side: the network's call takes our channel; the network's first answer
        to our SETUP names another (or refuses it: RELEASE COMPLETE 44)."""
        self.displaced = True
        if self.leg is not None:
            leg = self.leg
            self.leg = None
            leg.terminate(TermCause.REQUEST)

    # -- answered -----------------------------------------------------------------------------------

    def st_active(self, ev: CallInput, **d: Any) -> None:
        msg: Message | None = d.get("msg")
        if ev is _I.DISCONNECT:
            assert msg is not None
            self._far_disconnect(msg, d.get("reply_cause"), d.get("diagnostic", b""))
        elif ev is _I.HANGUP:
            self._disconnect(d["cause"], d["reason"])
        elif ev is _I.INFORMATION:
            assert msg is not None
            keypad = msg.get(Keypad)
            if keypad is not None and keypad.digits:
                self._report(CallDigits, digits=keypad.digits, dnis=self.dnis)
        elif ev is _I.TIMEOUT:
            if self.expired == "T309":              # the link did not come back
                self._released(q931.CAUSE_DESTINATION_OUT_OF_ORDER, False, "link")
            elif not self.enquiry_resent:           # T322: once more
                self.enquiry_resent = True
                self.send(q931.StatusEnquiry)
                self.start_timer("T322")
            else:
                self._note_clear(q931.CAUSE_TEMPORARY_FAILURE, False, "T322")     # §5.8.10: 41
                self._release_request(q931.CAUSE_TEMPORARY_FAILURE)
        # CONNECT_ACK: the user's answer to our CONNECT (network side), or a repeat: nothing to do

    # -- clearing -----------------------------------------------------------------------------------

    def st_clear_sent(self, ev: CallInput, **d: Any) -> None:
        if ev is _I.DISCONNECT:                     # §5.3.5: both sent DISCONNECT: RELEASE
            self._release_request(None)
        elif ev is _I.TIMEOUT:                      # T305: RELEASE
            self._release_request(self.clear_cause)
        # messages crossing our DISCONNECT, and the owner's requests: nothing more to do

    def st_release_request(self, ev: CallInput, **d: Any) -> None:
        if ev is not _I.TIMEOUT:
            return
        if not self.release_resent:                 # T308: RELEASE once more
            self.release_resent = True
            self.send(q931.Release, self._cause(self.clear_cause or q931.CAUSE_NORMAL_CLEARING))
            self.restart_timer(self.timers["T308"])
            return
        chan = self.chan
        self._released(reason="T308")
        if chan is not None:                        # §5.3.4.3: the channel's state is unknown: restart it
            self.control.restart(chan)


class UserCall(Call):
    """A call on the user side (we are the CPE: ``pri_cpe``)."""

    SIDE = Side.USER
    STATE_OF = USER_STATES
    PHASE_OF = {s: p for p, s in USER_STATES.items()}
    TABLE = _table(USER_STATES)


class NetworkCall(Call):
    """A call on the network side (we are the exchange: ``pri_net``)."""

    SIDE = Side.NETWORK
    STATE_OF = NETWORK_STATES
    PHASE_OF = {s: p for p, s in NETWORK_STATES.items()}
    TABLE = _table(NETWORK_STATES)


# -- the global call reference: RESTART ------------------------------------------------------------

class RestState(enum.Enum):
    """The global call reference's states (§2.4: REST 0 null, REST 1 restart request; REST 2, the far
    end's restart being done, passes at once here)."""

    REST0 = 0
    REST1 = 61


class RestInput(enum.Enum):
    REQUEST = 1     # restart channels (data: channel, a timeslot or None for all)
    ACK = 2         # RESTART ACKNOWLEDGE (data: msg)
    TIMEOUT = 3     # T316
    RESET = 4       # the span went into alarm: forget what was asked


class GlobalCall(StateMachine[RestState, RestInput]):
    """The RESTART procedure of §5.5.1 on the global call reference: one RESTART at a time, resent on
    T316 until acknowledged; requests made meanwhile wait their turn."""

    PROTOCOL = "q931"
    TIMERS = Q931_TIMERS
    TIMEOUT = RestInput.TIMEOUT
    REST = RestState.REST0
    TABLE = {
        RestState.REST0: StateDef(frozenset({RestInput.REQUEST, RestInput.RESET, RestInput.ACK}),
                                  frozenset({RestState.REST1}), "st_rest0"),
        RestState.REST1: StateDef(frozenset({RestInput.REQUEST, RestInput.ACK, RestInput.TIMEOUT, RestInput.RESET}),
                                  frozenset({RestState.REST0}), "st_rest1", timer="T316"),
    }

    def __init__(self, control: CallControl) -> None:
        super().__init__(f"q931({control.name}:global)", RestState.REST0, control.clock, control.timers)
        self.control = control
        self.current: int | None = None         # the timeslot restarting, or None (all)
        self.waiting: list[int | None] = []
        self.sent = 0

    def st_rest0(self, ev: RestInput, **d: Any) -> None:
        if ev is RestInput.REQUEST:
            self._start(d["channel"])
        elif ev is RestInput.ACK:
            log.info("%s: RESTART ACKNOWLEDGE with no RESTART of ours: ignored", self.name)

    def _start(self, channel: int | None) -> None:
        self.current = channel
        self.control.restarting(channel)
        self._send()
        if self.state is RestState.REST0:
            self.transition(RestState.REST1)
        else:
            self.start_timer("T316")

    def _send(self) -> None:
        self.sent += 1
        channel = self.current
        if channel is None:
            ies: tuple[q931.InformationElement, ...] = (RestartIndicator(RestartClass.all_interfaces),)
        else:
            ies = (ChannelId.b_channel(channel, exclusive=True), RestartIndicator(RestartClass.indicated_channels))
        self.control.send(q931.Restart(q931.GLOBAL_CALL_REFERENCE, ies))

    def link_reset(self) -> None:
        """The link was re-established under a RESTART awaiting its acknowledgement (the far end's SABME
        crossing ours after an alarm): the I frame that carried it was discarded with the link's
        queue, so it goes again now, not at T316."""
        if self.state is RestState.REST1:
            log.info("%s: the link was reset before the RESTART was acknowledged: RESTART again", self.name)
            self._send()
            self.start_timer("T316")

    def st_rest1(self, ev: RestInput, **d: Any) -> None:
        if ev is RestInput.REQUEST:
            if d["channel"] != self.current and d["channel"] not in self.waiting:
                self.waiting.append(d["channel"])
        elif ev is RestInput.TIMEOUT:               # §5.5.1: RESTART again until acknowledged
            log.warning("%s: no RESTART ACKNOWLEDGE in T316: RESTART again", self.name)
            self._send()
            self.start_timer("T316")
        elif ev is RestInput.RESET:
            self.waiting.clear()
            self.current = None
            self.transition(RestState.REST0)
        else:                                       # ACK
            msg: Message = d["msg"]
            ri, ci = msg.get(RestartIndicator), msg.get(ChannelId)
            whole = ri is not None and ri.restart_class is not RestartClass.indicated_channels
            mine = whole if self.current is None else (not whole and ci is not None and ci.channel == self.current)
            if not mine:
                log.info("%s: RESTART ACKNOWLEDGE for another restart than ours: ignored", self.name)
                return
            done = self.current
            self.current = None
            self.transition(RestState.REST0)
            self.control.restarted(done)
            if self.waiting:
                self._start(self.waiting.pop(0))


# -- the span ---------------------------------------------------------------------------------------

@dataclass
class CallCounters:
    """What a span's call control counted (``span status``)."""

    messages_rx: int = 0
    messages_tx: int = 0
    ignored: int = 0            # octets that are no message of ours (§5.8.1-5.8.3.1), maintenance ones we ignore
    status_tx: int = 0          # STATUS sent (answers to STATUS ENQUIRY and §5.8 errors)
    unknown_cr: int = 0         # messages on a call reference we do not know
    rejected: int = 0           # SETUPs refused at once (RELEASE COMPLETE)
    calls_in: int = 0
    calls_out: int = 0


class CallControl:
    """Q.931 call control of one PRI span over its data link (see the module's description).

    :param link: the span's Q.921 data link (its side is ours); the call control becomes its sink.
    :param sink: where the reports go (e1t1.isdn.events).
    :param switch: ``euroisdn`` (E1) or ``national``/``ni2`` (T1): the B-channels, the law, SERVICE.
    :param timers: the ``q931`` timers in force (the span's overrides); the defaults when None.
    :param overlap: accept overlap receiving (otherwise a SETUP's called number is complete as it comes).
    :param exclusive: our SETUPs' channel is exclusive (else preferred) unless :meth:`place` says.
    :param is_complete: the owner's exact match of a called number (a route's DNIS): complete.
    """

    def __init__(self, link: DataLink, sink: PriSink, *, switch: Switch | str = Switch.EUROISDN,
                 name: str = "span", timers: TimerTable | None = None, overlap: bool = True,
                 exclusive: bool = False, is_complete: Callable[[str], bool] | None = None) -> None:
        self.link = link
        self.clock = link.clock
        self.side = link.side
        self.switch = Switch.parse(switch)
        self.name = name
        self.sink = sink
        self.overlap = overlap
        self.exclusive = exclusive
        self.is_complete = is_complete
        timers = timers if timers is not None else TimerTable("q931", Q931_TIMERS)
        if timers.protocol != "q931":
            raise TimerError(f"{name}: call control runs q931 timers, given the {timers.protocol} table")
        if self.side is Side.NETWORK and "T310" not in timers.overridden:
            timers = TimerTable("q931", Q931_TIMERS, {**timers.overridden, "T310": T310_NETWORK_MS})
        self.timers = timers
        self.location = q931.LOC_USER if self.side is Side.USER else q931.LOC_PUBLIC_LOCAL
        self.peer_side: q931.Side = "network" if self.side is Side.USER else "user"
        self.call_class: type[Call] = UserCall if self.side is Side.USER else NetworkCall
        self._free = FreeChannels()
        self.channels: dict[int, BChannel] = {ts: BChannel(ts, self._free) for ts in self.switch.b_channels}
        self._hunt_order = sorted(self.channels, reverse=self.side is Side.USER)
        self.calls: dict[tuple[int, bool], Call] = {}       # (call reference value, ours) -> call
        self._next_cr = 1
        self._next_id = 1
        self.alarm = False
        self._restart_on_up = False
        self._service_pending: dict[int, ServiceStatus] = {}
        self.counters = CallCounters()
        self._dchan = link.dchan            # as last reported
        self._down_since: int | None = None  # the link went down then and has not come back (logged once)
        self.global_call = GlobalCall(self)
        link.sink = self._on_link

    # -- the owner's side ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the D-channel up (DL-ESTABLISH-REQUEST); once it is, RESTART class 7: whatever the far
        end still holds from before this start (an engine killed mid-call) is cleared, and no call is
        taken or placed until the acknowledgement (§5.5)."""
        self._restart_on_up = True
        self.link.establish()

    def place(self, *, ani: str | None, dnis: str, ani_ton: Ton | str = Ton.unknown,
              ani_pres: Presentation | str = Presentation.allowed, ani_npi: Npi | str = Npi.isdn,
              ani_screening: Screening | str | None = None, dnis_ton: Ton | str = Ton.unknown,
              dnis_npi: Npi | str = Npi.isdn, channel: int | None = None, exclusive: bool | None = None,
              complete: bool = True) -> Call:
        """Place a call: SETUP with Sending Complete (without when not `complete`: overlap sending, the
        rest of the number by :meth:`Call.info`), the bearer (speech, the span's law), the channel
        (`channel`, or hunted), calling number `ani` (None: none) with its TON, plan, presentation and
        screening (by default user-provided not screened from the user side, network-provided from the
        network side), called number `dnis`. Returns the call; one that cannot be placed (alarm 38, no
        free channel 34, the channel asked for exclusively is busy 44) is released at once, reported.

        Raises EncodeError for a number that cannot be sent, ValueError for a channel the span has not."""
        exclusive = self.exclusive if exclusive is None else exclusive
        if channel is not None and channel not in self.channels:
            raise ValueError(f"{self.name}: no B-channel {channel} (the span's are {self.switch.b_channels[0]}-"
                             f"{self.switch.b_channels[-1]})")
        screening = _enum(Screening, ani_screening) if ani_screening is not None else (
            Screening.user_unscreened if self.side is Side.USER else Screening.network)
        calling = None if ani is None else CallingNumber(ani, _enum(Ton, ani_ton), _enum(Npi, ani_npi),
                                                         _enum(Presentation, ani_pres), screening)
        called = CalledNumber(dnis, _enum(Ton, dnis_ton), _enum(Npi, dnis_npi))
        for ie in (calling, called):
            if ie is not None:
                ie.encode()                 # an EncodeError here, before any call exists
        call = self._new_call(self._alloc_cr(), ours=True)
        call.exclusive = exclusive
        call.ani, call.dnis = ani, dnis
        call.dnis_ton, call.dnis_npi = called.ton, called.npi
        self.counters.calls_out += 1
        ch, cause = self._channel_for_us(channel, exclusive)
        if ch is None:
            call.dispatch(_I.LOCAL_CLEAR, cause=cause, reason="alarm" if self.alarm else "rejected")
            return call
        call.leg = BChannelLeg(call, ch, LegState.RESERVED)
        ies: list[q931.InformationElement] = [SendingComplete()] if complete else []
        ies += [BearerCapability.speech(self.switch.law), ChannelId.b_channel(ch.timeslot, exclusive)]
        if calling is not None:
            ies.append(calling)
        ies.append(called)
        octets = q931.Setup(call.cr, tuple(ies)).encode()
        call.dispatch(_I.PLACE, octets=octets)
        return call

    def restart(self, channel: int | None = None) -> None:
        """RESTART: every B-channel (class 7, all interfaces) or one (its timeslot, class 0). The calls
        on them are cleared locally now; no call uses them until the RESTART ACKNOWLEDGE."""
        if channel is not None and channel not in self.channels:
            raise ValueError(f"{self.name}: no B-channel {channel}")
        if self.alarm:
            log.info("%s: in alarm: the RESTART after recovery covers every channel", self.name)
            return
        self.global_call.dispatch(RestInput.REQUEST, channel=channel)

    def service(self, channel: int, status: ServiceStatus | str) -> None:
        """NI-2 SERVICE: put B-channel `channel` in service, in maintenance or out of service (here at
        once; the far end's SERVICE ACKNOWLEDGE is reported). A call on it goes on."""
        if self.switch is not Switch.NI2:
            raise ProtocolError(f"{self.name}: SERVICE is NI-2's, this span is {self.switch.value}")
        ch = self.channels.get(channel)
        if ch is None:
            raise ValueError(f"{self.name}: no B-channel {channel}")
        st = _enum(ServiceStatus, status)
        ch.service = st
        self._service_pending[channel] = st
        cr = CallRef(self._alloc_cr())
        self.send(q931.Service(cr, (ChangeStatus(st), ChannelId.b_channel(channel, exclusive=True))))

    def ph_down(self) -> None:
        """The span is in alarm (red or blue declared): every call cleared locally with 38, the link down."""
        if self.alarm:
            return
        self.alarm = True
        log.warning("%s: span alarm: %d call(s) cleared", self.name, len(self.calls))
        for call in list(self.calls.values()):
            call.dispatch(_I.LOCAL_CLEAR, cause=q931.CAUSE_NETWORK_OUT_OF_ORDER, reason="alarm")
        self.global_call.dispatch(RestInput.RESET)
        for ch in self.channels.values():
            ch.restarting = False
        self.link.ph_down()

    def ph_up(self) -> None:
        """The span's alarm is over (its RECOVER ended): the link is re-established, then RESTART class 7;
        no calls until its acknowledgement."""
        if not self.alarm:
            return
        self.alarm = False
        self._restart_on_up = True
        for ch in self.channels.values():
            ch.restarting = True
        self.link.ph_up()
        self.link.establish()

    # -- what the span status shows -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Calls can be placed: no alarm, the link up, a channel free."""
        return not self.alarm and self.link.dchan == "up" and self._free.count > 0

    def status(self) -> dict[str, Any]:
        """``span status``'s ``pri``: side, switch, dchan, calls and the B-channels idle, busy (a call
        or a restart holds them) and out of service (NI-2: out of service or in maintenance)."""
        busy = oos = 0
        for ch in self.channels.values():
            if ch.leg is not None or ch.restarting:
                busy += 1
            elif ch.service is not ServiceStatus.in_service:
                oos += 1
        return {"side": self.side.value, "switch": self.switch.value, "dchan": self.link.dchan,
                "calls": len(self.calls), "b_idle": len(self.channels) - busy - oos, "b_busy": busy,
                "b_out_of_service": oos, "restarting": sum(ch.restarting for ch in self.channels.values()),
                "alarm": self.alarm}

    def channel(self, timeslot: int | None) -> BChannel | None:
        return self.channels.get(timeslot) if timeslot is not None else None

    # -- sending ------------------------------------------------------------------------------------

    def send(self, msg: Message) -> None:
        if isinstance(msg, q931.Status):
            self.counters.status_tx += 1
        self.send_octets(msg.encode())

    def send_octets(self, octets: bytes) -> None:
        self.counters.messages_tx += 1
        self.link.send(octets)

    def report(self, event: PriEvent) -> None:
        self.sink(event)

    def _status_to(self, cr: CallRef, cause: int, state: int, diagnostic: bytes = b"") -> None:
        self.send(q931.Status(cr, (Cause(cause, self.location, diagnostic=diagnostic),
                                   q931.CallState(CallStateValue(state)))))

    # -- calls and channels -------------------------------------------------------------------------

    def _alloc_cr(self) -> int:
        for _ in range(MAX_CALL_REFERENCE):
            value = self._next_cr
            self._next_cr = value % MAX_CALL_REFERENCE + 1
            if (value, True) not in self.calls:
                return value
        raise ProtocolError(f"{self.name}: every call reference value is in use")

    def _new_call(self, cr_value: int, ours: bool, cr_length: int = 2) -> Call:
        call = self.call_class(self, self._next_id, cr_value, ours, cr_length)
        self._next_id += 1
        self.calls[(cr_value, ours)] = call
        return call

    def forget(self, call: Call) -> None:
        """A call terminated: its call reference is free."""
        key = (call.cr.value, call.ours)
        if self.calls.get(key) is call:
            del self.calls[key]

    def _hunt(self) -> BChannel | None:
        """User side: the highest free B-channel; network side: the lowest."""
        for ts in self._hunt_order:
            ch = self.channels[ts]
            if ch.free:
                return ch
        return None

    def _channel_for_us(self, channel: int | None, exclusive: bool) -> tuple[BChannel | None, int]:
        if self.alarm:
            return None, q931.CAUSE_NETWORK_OUT_OF_ORDER
        if channel is not None:
            ch = self.channels[channel]
            if ch.free:
                return ch, 0
            if exclusive:
                return None, q931.CAUSE_REQUESTED_CHANNEL_UNAVAILABLE
        ch2 = self._hunt()
        return (ch2, 0) if ch2 is not None else (None, q931.CAUSE_NO_CIRCUIT_AVAILABLE)

    @staticmethod
    def plain_channel_id(ci: ChannelId) -> bool:
        """A channel id of one interface (ours: none named, or interface 0), B-channels by number."""
        return (ci.primary and not ci.d_channel and ci.interface in (None, b"\x80") and ci.slot_map is None
                and ci.channel_type == q931.CHANNEL_TYPE_B)

    def _channel_for_peer(self, ci: ChannelId | None) -> tuple[BChannel | None, int]:
        """The channel for the far end's SETUP (§5.1.2 / §5.2.3), or the cause to refuse it with."""
        if ci is None or ci.selection == q931.SELECT_ANY:
            ch = self._hunt()
            return (ch, 0) if ch is not None else (None, q931.CAUSE_NO_CIRCUIT_AVAILABLE)
        if ci.selection == q931.SELECT_NO_CHANNEL:
            return None, q931.CAUSE_NO_CIRCUIT_AVAILABLE
        if (ci.selection != q931.SELECT_AS_INDICATED or not self.plain_channel_id(ci) or not ci.channels
                or any(ts not in self.channels for ts in ci.channels)):
            return None, q931.CAUSE_CHANNEL_DOES_NOT_EXIST
        for ts in ci.channels:
            ch = self.channels[ts]
            if ch.free:
                return ch, 0
            holder = ch.leg.call if ch.leg is not None else None
            if (holder is not None and holder.ours and holder.phase == "out_initiated" and not holder.first_heard
                    and self.side is Side.USER and not ch.restarting and ch.service is ServiceStatus.in_service):
                # glare: the network's call wins the channel; our SETUP gets its answer (44 or another channel)
                log.info("%s: glare on B%d: the network's call takes it", self.name, ts)
                holder.displace()
                return ch, 0
        if ci.exclusive:
            return None, q931.CAUSE_REQUESTED_CHANNEL_UNAVAILABLE
        ch = self._hunt()
        return (ch, 0) if ch is not None else (None, q931.CAUSE_NO_CIRCUIT_AVAILABLE)

    # -- what the link delivers -----------------------------------------------------------------------

    def _on_link(self, ev: DlEvent) -> None:
        if isinstance(ev, DlDataIndication):
            self._on_data(ev.data)
        elif isinstance(ev, DlEstablishConfirm | DlEstablishIndication):
            self._link_up(reset=isinstance(ev, DlEstablishIndication))
        elif isinstance(ev, DlReleaseIndication):
            self._link_down(ev.reason)
        # DL-RELEASE-CONFIRM: a release we asked for; nothing follows from it

    def _dchan_changed(self) -> None:
        """DchanChanged when the link's state is not what was last reported (a link that stays down
        through its retries is reported down once)."""
        if self.link.dchan != self._dchan:
            self._dchan = self.link.dchan
            self.report(DchanChanged(self.name, self.clock.now_ms, self._dchan))

    def _link_up(self, reset: bool) -> None:
        self._dchan_changed()
        if self._down_since is not None:
            log.info("%s: the data link is up again after %d ms down", self.name,
                     self.clock.now_ms - self._down_since)
            self._down_since = None
        for call in list(self.calls.values()):
            running = call.timer
            if running is not None and running[0] == "T309":
                call.dispatch(_I.LINK_UP)
            elif reset and call.phase == "active":
                call.dispatch(_I.ENQUIRE)   # §5.8.8: the link was reset under the call: check its state
        if self._restart_on_up:
            self._restart_on_up = False
            self.restart(None)
        elif reset:
            self.global_call.link_reset()

    def _link_down(self, reason: str) -> None:
        self._dchan_changed()
        if self.alarm:
            return                          # the calls are cleared already; ph_up() re-establishes
        if self._down_since is None:
            self._down_since = self.clock.now_ms
            log.warning("%s: the data link is down (%s): re-establishing until it answers", self.name, reason)
        else:                               # still down: each round is counted, not logged
            log.debug("%s: the data link is still down (%s): re-establishing", self.name, reason)
        for call in list(self.calls.values()):
            call.dispatch(_I.LINK_DOWN)
        self.link.establish()               # §5.8.9

    def _on_data(self, octets: bytes) -> None:
        c = self.counters
        c.messages_rx += 1
        try:
            msg = q931.decode(octets, self.peer_side)
        except DecodeError as exc:
            c.ignored += 1
            log.info("%s: %s ignored: %s", self.name, octets[:8].hex(" "), exc)
            return
        if msg.cr.is_dummy:
            c.ignored += 1
            log.info("%s: a message on the dummy call reference: ignored (not used on a PRI)", self.name)
            return
        if msg.pd == q931.PD_MAINTENANCE:
            self._maintenance(msg)
        elif msg.cr.is_global:
            self._global(msg)
        else:
            call = self.calls.get((msg.cr.value, msg.cr.flag))
            if call is None:
                self._unknown_cr(msg)
            else:
                self._to_call(call, msg)

    def _to_call(self, call: Call, msg: Message) -> None:
        verdict = msg.assess()
        if isinstance(msg, q931.UnknownMessage):                     # §5.8.4
            call.send_status(q931.CAUSE_MESSAGE_TYPE_NONEXISTENT, bytes((msg.mtype,)))
            return
        ev = MESSAGE_INPUT.get(type(msg))
        if ev is _I.SETUP:                                           # §5.8.3.2 e: a call reference in use
            log.info("%s: SETUP on call reference %d in use: ignored", self.name, msg.cr.value)
            return
        if ev is None or not call.accepts(ev):                       # §5.8.4: wrong for the state
            log.info("%s: %s in state %d: STATUS 101", call.name, msg.NAME, call.state.value)
            call.send_status(q931.CAUSE_WRONG_MESSAGE_FOR_STATE, bytes((msg.mtype,)))
            return
        clearing = ev in (_I.DISCONNECT, _I.RELEASE, _I.RELEASE_COMPLETE)
        diagnostic = bytes(verdict.ies)
        if not verdict.act and ev is _I.DISCONNECT:                  # §5.8.6: RELEASE 96 or 100
            call.dispatch(ev, msg=msg, reply_cause=verdict.cause, diagnostic=diagnostic)
            return
        if not verdict.act and ev not in (_I.RELEASE, _I.RELEASE_COMPLETE):   # the clearing goes through regardless
            assert verdict.cause is not None
            call.send_status(verdict.cause, diagnostic)
            return
        call.dispatch(ev, msg=msg)
        if verdict.cause is not None and not clearing and not call.terminated:   # §5.8.7: act, then STATUS
            call.send_status(verdict.cause, diagnostic)

    def _unknown_cr(self, msg: Message) -> None:
        """§5.8.3.2: a call reference no call of ours has."""
        c = self.counters
        answer = msg.cr.answer()
        if isinstance(msg, q931.Setup):
            if msg.cr.flag:                                          # d: flag 1 on a SETUP: ignored
                c.ignored += 1
                log.info("%s: SETUP with call reference flag 1: ignored", self.name)
                return
            self._offer(msg)
            return
        c.unknown_cr += 1
        if isinstance(msg, q931.ReleaseComplete):
            return
        if isinstance(msg, q931.StatusEnquiry):                      # h, §5.8.10: we hold no call: null
            self._status_to(answer, q931.CAUSE_RESPONSE_TO_STATUS_ENQUIRY, 0)
            return
        if isinstance(msg, q931.Status):                             # g, §5.8.11
            cs = msg.get(q931.CallState)
            if cs is None or cs.state is CallStateValue.null:
                return
        self.send(q931.ReleaseComplete(answer, (Cause(q931.CAUSE_INVALID_CALL_REFERENCE, self.location),)))

    def _offer(self, msg: Message) -> None:
        """The far end's SETUP on a new call reference: refused at once (RELEASE COMPLETE) or a new call."""
        c = self.counters
        verdict = msg.assess()
        refuse: int | None = None
        diagnostic = b""
        ch: BChannel | None = None
        if not verdict.act:
            refuse, diagnostic = verdict.cause, bytes(verdict.ies)
        else:
            bc = msg.get(BearerCapability)
            if bc is None or bc.capability not in (q931.ITC_SPEECH, q931.ITC_AUDIO_3K1):
                refuse = q931.CAUSE_BEARER_NOT_IMPLEMENTED
            else:
                ch, cause = self._channel_for_peer(msg.get(ChannelId))
                if ch is None:
                    refuse = cause
        if ch is None:
            c.rejected += 1
            refuse = refuse if refuse is not None else q931.CAUSE_NORMAL_CLEARING
            log.info("%s: SETUP on call reference %d refused: cause %d", self.name, msg.cr.value, refuse)
            self.send(q931.ReleaseComplete(msg.cr.answer(), (Cause(refuse, self.location, diagnostic=diagnostic),)))
            if verdict.act:                 # readable: a caller tried, and is reported (a malformed one is not)
                self._refused(msg, refuse)
            return
        c.calls_in += 1
        call = self._new_call(msg.cr.value, ours=False, cr_length=msg.cr.length)
        call.leg = BChannelLeg(call, ch, LegState.CONFIRMED)
        call.dispatch(_I.SETUP, msg=msg)
        if verdict.cause is not None and not call.terminated:       # §5.8.7: act, then STATUS
            call.send_status(verdict.cause, bytes(verdict.ies))

    def _refused(self, msg: Message, cause: int) -> None:
        """Report a SETUP refused at once: its numbers, and the timeslot it asked for if the span has
        that B-channel (a channel 0, 40 or the D-channel's is no timeslot a call could hold)."""
        calling, called = msg.get(CallingNumber), msg.get(CalledNumber)
        ci = msg.get(ChannelId)
        asked = ci.channels[0] if ci is not None and ci.selection == q931.SELECT_AS_INDICATED and ci.channels else None
        if asked not in self.channels or (ci is not None and not self.plain_channel_id(ci)):
            asked = None                # another interface's channel 5 is no timeslot of ours
        self.report(CallRefused(
            self.name, self.clock.now_ms, msg.cr.value, cause, asked,
            calling.digits if calling is not None else None, calling.ton if calling is not None else None,
            calling.npi if calling is not None else None, calling.presentation if calling is not None else None,
            calling.screening if calling is not None else None, called.digits if called is not None else "",
            called.ton if called is not None else None, called.npi if called is not None else None))

    def refused_call(self, call: Call, cause: int, disposition: str, chan: int | None) -> None:
        """Report an offered call that ended before its number was complete (see CallRefused), with its
        numbers as they came, its B-channel's timeslot and when its SETUP came."""
        self.report(CallRefused(
            self.name, self.clock.now_ms, call.cr.value, cause, chan, call.ani, call.ani_ton, call.ani_npi,
            call.ani_presentation, call.ani_screening, call.dnis, call.dnis_ton, call.dnis_npi,
            disposition=disposition, setup_ms=call.setup_ms))

    # -- the global call reference: RESTART ---------------------------------------------------------

    def _global(self, msg: Message) -> None:
        rest = self.global_call.state.value
        if isinstance(msg, q931.Restart):
            self._far_restart(msg)
        elif isinstance(msg, q931.RestartAck):
            if msg.assess().act:
                self.global_call.dispatch(RestInput.ACK, msg=msg)
        elif not isinstance(msg, q931.Status):                       # §5.8.3.2 f: STATUS 81
            self._status_to(msg.cr.answer(), q931.CAUSE_INVALID_CALL_REFERENCE, rest)

    def _far_restart(self, msg: Message) -> None:
        """The far end's RESTART (§5.5.2): its channels' calls cleared, RESTART ACKNOWLEDGE."""
        verdict = msg.assess()
        rest = self.global_call.state.value
        if not verdict.act:
            assert verdict.cause is not None
            self._status_to(msg.cr.answer(), verdict.cause, rest, bytes(verdict.ies))
            return
        ri = msg.get(RestartIndicator)
        assert ri is not None
        ci = msg.get(ChannelId)
        if ri.restart_class is RestartClass.indicated_channels:
            if ci is None:                  # there (the decoder saw it) but unreadable: mandatory here, 100
                self._status_to(msg.cr.answer(), q931.CAUSE_INVALID_IE_CONTENTS, rest, bytes((ChannelId.ID,)))
                return
            if not self.plain_channel_id(ci) or not ci.channels or any(ts not in self.channels for ts in ci.channels):
                self._status_to(msg.cr.answer(), q931.CAUSE_CHANNEL_DOES_NOT_EXIST, rest)
                return
            channels: tuple[int, ...] = ci.channels
            calls = [call for call in self.calls.values() if call.chan in channels]
            ack_ies: tuple[q931.InformationElement, ...] = (ci, ri)
        else:
            channels = tuple(self.channels)
            calls = list(self.calls.values())
            ack_ies = (ri,)
        said = "every channel" if ri.restart_class is not RestartClass.indicated_channels else \
            ", ".join(f"B{ts}" for ts in channels)
        log.info("%s: the far end restarts %s: %d call(s) cleared", self.name, said, len(calls))
        for call in calls:
            call.dispatch(_I.LOCAL_CLEAR, cause=q931.CAUSE_NORMAL_CLEARING, reason="restart", by_far_end=True)
        self.send(q931.RestartAck(msg.cr.answer(), ack_ies))
        self.report(RestartDone(self.name, self.clock.now_ms, channels, by_far_end=True))
        if verdict.cause is not None:
            self._status_to(msg.cr.answer(), verdict.cause, self.global_call.state.value, bytes(verdict.ies))

    def restarting(self, channel: int | None) -> None:
        """Our RESTART goes now (the global call's): the calls on its channels are cleared, the channels held."""
        chans = [self.channels[channel]] if channel is not None else list(self.channels.values())
        calls = list(self.calls.values()) if channel is None else [c for c in self.calls.values() if c.chan == channel]
        for call in calls:
            call.dispatch(_I.LOCAL_CLEAR, cause=q931.CAUSE_NORMAL_CLEARING, reason="restart")
        for ch in chans:
            ch.restarting = True

    def restarted(self, channel: int | None) -> None:
        """Our RESTART was acknowledged: its channels are idle."""
        chans = (channel,) if channel is not None else tuple(self.channels)
        for ts in chans:
            self.channels[ts].restarting = False
        log.info("%s: RESTART ACKNOWLEDGE: %s idle", self.name, "every channel" if channel is None else f"B{channel}")
        self.report(RestartDone(self.name, self.clock.now_ms, chans, by_far_end=False))

    # -- NI-2 maintenance: SERVICE --------------------------------------------------------------------

    def _maintenance(self, msg: Message) -> None:
        """SERVICE and SERVICE ACKNOWLEDGE (NI-2); anything else, or on EuroISDN, is ignored."""
        if self.switch is not Switch.NI2 or not isinstance(msg, q931.Service | q931.ServiceAck) \
                or not msg.assess().act:
            self.counters.ignored += 1
            log.info("%s: maintenance message 0x%02x ignored", self.name, msg.mtype)
            return
        cs, ci = msg.get(ChangeStatus), msg.get(ChannelId)
        assert cs is not None and ci is not None
        ch = self.channel(ci.channel) if self.plain_channel_id(ci) else None
        if ch is None:
            self.counters.ignored += 1
            log.info("%s: %s for channel %s: no such B-channel, ignored", self.name, msg.NAME, ci.channels)
            return
        if isinstance(msg, q931.Service):
            ch.service = cs.status
            self._service_pending.pop(ch.timeslot, None)
            self.send(q931.ServiceAck(msg.cr.answer(), (ChangeStatus(cs.status, cs.preference), ci)))
            log.info("%s: the far end puts B%d %s", self.name, ch.timeslot, cs.status.name)
            self.report(ServiceChanged(self.name, self.clock.now_ms, ch.timeslot, cs.status, True, True))
        elif self._service_pending.get(ch.timeslot) is cs.status:
            del self._service_pending[ch.timeslot]
            self.report(ServiceChanged(self.name, self.clock.now_ms, ch.timeslot, cs.status, False, True))


EnumT = TypeVar("EnumT", bound=enum.IntEnum)


def _enum(cls: type[EnumT], value: EnumT | str | int) -> EnumT:
    """An IntEnum member from itself, its name or its value (EncodeError for none of them)."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return cls[value]
        except KeyError:
            raise EncodeError(f"{cls.__name__}: no {value!r} (one of {', '.join(m.name for m in cls)})") from None
    try:
        return cls(value)
    except ValueError:
        raise EncodeError(f"{cls.__name__}: no {value!r}") from None
