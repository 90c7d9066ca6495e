"""Q.921 LAPD on a PRI D-channel: the data link between our Q.931 and the far end's.

On a primary rate interface the link is point-to-point with fixed values: SAPI 0 (call
control), TEI 0, so TEI management and the "TEI unassigned" states never occur and a link
starts in state 4, TEI assigned. Frames are what the card's HDLC carries, without flags and
FCS (Q.921 §2.1):

    address (§3.3)    octet 1: SAPI (bits 8-3), C/R (bit 2), EA 0 (bit 1)
                      octet 2: TEI (bits 8-2), EA 1 (bit 1)
    control (§3.4)    I frame: N(S) << 1 | 0, then N(R) << 1 | P        (modulo 128, two octets)
                      S frame: 0000 SS01, then N(R) << 1 | P/F          RR SS=00, RNR 01, REJ 10
                      U frame: MMM P/F MM11 (one octet)                 SABME 011P1111, DM 000F1111,
                                                                        UI 000P0011, DISC 010P0011,
                                                                        UA 011F0011, FRMR 100F0111,
                                                                        XID 101P1111
    information       I (at most N201 = 260 octets), FRMR (5 octets, §3.6.12), UI, XID

C/R (§3.3.2, Table 1): the network side sends its commands with C/R = 1 and its responses with
0; the user side the reverse. So the user's SABME is ``00 01 7F`` and the network's UA to it
``00 01 73``; the network's SABME ``02 01 7F`` and the user's UA ``02 01 73``.

The frame codec is written by hand rather than with construct: two address octets and one or
two control octets are a few shifts, and every Q.931 message crosses it twice on the hot path
of call setup.

:class:`DataLink` is the data link layer entity of one D-channel on the state-machine base
(e1t1.fsm), following the procedures of Q.921 §5 and the SDL of its Annex B: multiple-frame
establishment (§5.5.1), information transfer with V(S), V(R), V(A) and window k = 7 (§5.6),
REJ recovery (§5.6.4), busy conditions (RNR, §5.6.5-5.6.6), timer recovery on T200 with N200 = 3
retransmissions (§5.6.7, §5.8.3), idle supervision by T203 (§5.10.2), re-establishment (§5.7),
exception conditions (§5.8) and release (§5.5.3). It has one timer running at a time, as Q.921
runs them: T200 while an acknowledgement or a response is awaited, T203 otherwise in the
established state.

Below: ``send_frame(octets)`` given at construction, ``receive(octets)`` called by the owner for
each frame the HDLC receiver delivered with a good FCS, and :meth:`DataLink.ph_down` /
:meth:`DataLink.ph_up` for the span's alarm (PH-DEACTIVATE / PH-ACTIVATE indications). Above:
the requests :meth:`DataLink.establish`, :meth:`DataLink.release`, :meth:`DataLink.send`, and the
indications and confirms, given to ``sink`` as :class:`DlEvent` dataclasses. Nothing a line sends
raises: a bad frame is discarded or handled as Q.921 says, and counted.

Where Q.921 leaves a choice, or says nothing, this link does as follows (each is commented where
it is done):

- A frame rejection condition (undefined control field, an S or U frame with an information
  field, an I frame over N201) is never answered with FRMR: established, the link re-establishes;
  otherwise the frame is discarded (§5.8.5). A received FRMR re-establishes (§5.8.6).
- A frame whose C/R contradicts its kind (a SABME, DISC or I response; a UA, DM or FRMR command),
  and UI and XID frames, are discarded like invalid frames.
- Messages layer 3 sends while the link is down or being established wait for the establishment;
  those in the queue go on a release or a re-establishment that reports loss.
- In timer recovery new I frames wait until the poll is answered.
- A re-establishment reports DL-ESTABLISH-INDICATION when I frames were outstanding (§5.7.2), and
  also when frames put back on the queue for retransmission had been sent once: they are
  discarded, never sent twice under new numbers.
- Down, an I or S command with P = 1 is answered DM F = 1, so a peer that thinks the link is up
  re-establishes. DM F = 1 in timer recovery (the answer to our poll) re-establishes.
- establish() while releasing establishes once the release is done; establish() while the
  physical layer is down establishes at ph_up(). Our own receiver busy (set_busy) lasts across a
  re-establishment (RNR again once up).

Layer 3 (the call control) owns one link per PRI span: it makes it with the span's side and its
``timers: {q921: ...}`` table, feeds it the span's D-channel frames and alarm changes, calls
:meth:`DataLink.establish` at start, after a DL-RELEASE-INDICATION (Q.931 §5.8.9) and when an
alarm's RECOVER ends, sends each Q.931 message with :meth:`DataLink.send`, and decodes each
:class:`DlDataIndication`. A :class:`DlEstablishIndication` while it has calls means the link
was reset under them, messages possibly lost (Q.931 §5.8.8). ``span status`` reads :attr:`DataLink.dchan`
and :meth:`DataLink.status`.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from e1t1.clock import Clock
from e1t1.errors import DecodeError, EncodeError, TimerError
from e1t1.fsm import StateDef, StateMachine
from e1t1.timers import TimerDef, TimerTable, TimerUnit

log = logging.getLogger("cicbox.isdn")

# Q.921 §5.9: system parameters. The timers, overridable per site as ``timers: {q921: {...}}``:
Q921_TIMERS = (
    # §5.9.1: longer than the time to send a frame and have its acknowledgement back; 1 s.
    TimerDef("T200", 1000, TimerUnit.MS, "an acknowledgement or a response to a command is awaited this long "
             "before retransmission or a poll", 200, 10000),
    # §5.9.8 (used by §5.10.2): the longest time without frames exchanged, then a poll; 10 s.
    TimerDef("T203", 10000, TimerUnit.MS, "with no frame exchanged for this long the link is polled "
             "(RR or RNR command, P = 1)", 1000, 300000),
)

SAPI = 0            # §3.3.3: call control procedures
TEI = 0             # point-to-point on a PRI, no TEI management
MODULUS = 128       # §3.5.2: sequence numbers of the modulo-128 (extended) operation
MAX_QUEUE = 1024    # I frames waiting to be sent at most; past this a request is discarded (and counted)


@dataclass(frozen=True)
class LapdParams:
    """The other §5.9 parameters of a PRI link, SAPI 0."""

    n200: int = 3       # §5.9.2: retransmissions of a frame (and polls) before giving up
    n201: int = 260     # §5.9.3: octets of an information field at most
    k: int = 7          # §5.9.5: outstanding I frames at most (SAPI 0, primary rate access)

    def __post_init__(self) -> None:
        if not 1 <= self.n200 <= 16:
            raise ValueError(f"N200 must be 1-16, not {self.n200}")
        if not 1 <= self.n201 <= 260:
            raise ValueError(f"N201 must be 1-260 octets, not {self.n201}")
        if not 1 <= self.k <= MODULUS - 1:
            raise ValueError(f"k must be 1-{MODULUS - 1}, not {self.k}")


class Side(enum.Enum):
    """Which end of the PRI we are: it sets the C/R bit of what we send and expect (§3.3.2)."""

    USER = "user"
    NETWORK = "network"

    @property
    def command_cr(self) -> int:
        """The C/R bit of this side's commands (its responses carry the other value)."""
        return 1 if self is Side.NETWORK else 0

    @property
    def other(self) -> Side:
        return Side.USER if self is Side.NETWORK else Side.NETWORK


# -- frames ---------------------------------------------------------------------------------

class FrameKind(enum.Enum):
    """The frames of Q.921 §3.6 (Table 5), and UNDEFINED for a control field it does not define."""

    I = "I"             # noqa: E741 (the standard's name)
    RR = "RR"
    RNR = "RNR"
    REJ = "REJ"
    SABME = "SABME"
    DM = "DM"
    UI = "UI"
    DISC = "DISC"
    UA = "UA"
    FRMR = "FRMR"
    XID = "XID"
    UNDEFINED = "UNDEFINED"


P_BIT = 0x10        # the P/F bit of a U frame's control octet (bit 5)

# §3.6, Table 5: control octets with P/F = 0.
_U_CONTROL = {FrameKind.SABME: 0x6F, FrameKind.DM: 0x0F, FrameKind.UI: 0x03, FrameKind.DISC: 0x43,
              FrameKind.UA: 0x63, FrameKind.FRMR: 0x87, FrameKind.XID: 0xAF}
_U_KIND = {v: k for k, v in _U_CONTROL.items()}
_S_CONTROL = {FrameKind.RR: 0x01, FrameKind.RNR: 0x05, FrameKind.REJ: 0x09}
_S_KIND = {v: k for k, v in _S_CONTROL.items()}
SUPERVISORY = frozenset(_S_CONTROL)
UNNUMBERED = frozenset(_U_CONTROL)


@dataclass(frozen=True, slots=True)
class Frame:
    """One LAPD frame as it is on the wire (without FCS). `cr` is the C/R bit as sent: whether
    it is a command depends on who sent it (:attr:`Side.command_cr`). `ns` is an I frame's,
    `nr` an I or S frame's; `control` the control field's octets as received (what an FRMR
    names, and all there is of an UNDEFINED frame)."""

    kind: FrameKind
    cr: int
    pf: bool = False
    ns: int = 0
    nr: int = 0
    info: bytes = b""
    sapi: int = SAPI
    tei: int = TEI
    control: bytes = b""


def encode_frame(f: Frame) -> bytes:
    """The octets of `f` (no length check: a too-long frame can be built, to test a receiver)."""
    if not 0 <= f.sapi <= 63 or not 0 <= f.tei <= 127 or f.cr not in (0, 1):
        raise EncodeError(f"address SAPI {f.sapi}, TEI {f.tei}, C/R {f.cr}: SAPI 0-63, TEI 0-127, C/R 0 or 1")
    if not 0 <= f.ns < MODULUS or not 0 <= f.nr < MODULUS:
        raise EncodeError(f"N(S) {f.ns}, N(R) {f.nr}: sequence numbers are 0-{MODULUS - 1}")
    address = bytes(((f.sapi << 2) | (f.cr << 1), (f.tei << 1) | 1))
    pf = 1 if f.pf else 0
    if f.kind is FrameKind.I:
        control = bytes((f.ns << 1, (f.nr << 1) | pf))
    elif f.kind in SUPERVISORY:
        control = bytes((_S_CONTROL[f.kind], (f.nr << 1) | pf))
    elif f.kind is FrameKind.UNDEFINED:
        if not f.control:
            raise EncodeError("an UNDEFINED frame needs its control octets")
        control = f.control
    else:
        control = bytes((_U_CONTROL[f.kind] | (P_BIT if f.pf else 0),))
    return address + control + f.info


def decode_frame(data: bytes) -> Frame:
    """The frame in `data`; DecodeError if it is an invalid frame of §2.9 (too short, an address
    of one octet or of more than two), which a receiver discards without telling anyone. A
    control field Q.921 does not define decodes as UNDEFINED (a frame rejection condition,
    §5.8.4, which the data link entity handles)."""
    n = len(data)
    if n < 3:
        raise DecodeError(f"{n} octets: a frame has at least an address (2) and a control field (1)")
    a0, a1, c0 = data[0], data[1], data[2]
    if a0 & 1:
        raise DecodeError(f"address octet 1 is {a0:#04x}: EA 1 there makes a one-octet address")
    if not a1 & 1:
        raise DecodeError(f"address octet 2 is {a1:#04x}: EA 0 there makes an address of more than two octets")
    sapi, cr, tei = a0 >> 2, (a0 >> 1) & 1, a1 >> 1
    if not c0 & 1:                                  # I format
        if n < 4:
            raise DecodeError("an I frame of 3 octets: its control field has two")
        c1 = data[3]
        return Frame(FrameKind.I, cr, bool(c1 & 1), c0 >> 1, c1 >> 1, data[4:], sapi, tei, data[2:4])
    if c0 & 3 == 1:                                 # S format
        if n < 4:
            raise DecodeError("a supervisory frame of 3 octets: its control field has two")
        c1 = data[3]
        kind = _S_KIND.get(c0, FrameKind.UNDEFINED)
        return Frame(kind, cr, bool(c1 & 1), 0, c1 >> 1, data[4:], sapi, tei, data[2:4])
    kind = _U_KIND.get(c0 & ~P_BIT, FrameKind.UNDEFINED)   # U format
    return Frame(kind, cr, bool(c0 & P_BIT), 0, 0, data[3:], sapi, tei, data[2:3])


def frmr_info(rejected: bytes, vs: int, vr: int, rejected_was_response: bool, *, w: bool = False,
              x: bool = False, y: bool = False, z: bool = False) -> bytes:
    """The 5-octet information field of an FRMR response (§3.6.12, modulo 128): the rejected
    frame's control field (a U frame's one octet, then 0), V(S), V(R) with the rejected frame's
    C/R (1: it was a response), then W (control field undefined), X (an information field not
    permitted, or a wrong length), Y (information field over N201), Z (invalid N(R))."""
    if len(rejected) not in (1, 2):
        raise EncodeError(f"a control field has 1 or 2 octets, not {len(rejected)}")
    ctl = rejected + b"\x00" * (2 - len(rejected))
    flags = (1 if w else 0) | (2 if x else 0) | (4 if y else 0) | (8 if z else 0)
    return ctl + bytes((vs << 1, (vr << 1) | (1 if rejected_was_response else 0), flags))


# -- primitives to layer 3 ----------------------------------------------------------------

@dataclass(frozen=True)
class DlEvent:
    """A data link primitive to layer 3, at `tick` (ms of the clock)."""

    tick: int


@dataclass(frozen=True)
class DlEstablishIndication(DlEvent):
    """DL-ESTABLISH-INDICATION: the peer established the link (its SABME), or the link
    re-established itself after I frames were lost: layer 3 checks its calls (Q.931 §5.8.8)."""


@dataclass(frozen=True)
class DlEstablishConfirm(DlEvent):
    """DL-ESTABLISH-CONFIRM: the establishment layer 3 asked for is done."""


@dataclass(frozen=True)
class DlReleaseIndication(DlEvent):
    """DL-RELEASE-INDICATION: the link is down without layer 3 asking (the peer's DISC or DM, no
    answer to SABME after N200 retransmissions, the physical layer gone): `reason` says which."""

    reason: str


@dataclass(frozen=True)
class DlReleaseConfirm(DlEvent):
    """DL-RELEASE-CONFIRM: the release layer 3 asked for is done."""


@dataclass(frozen=True)
class DlDataIndication(DlEvent):
    """DL-DATA-INDICATION: the information field of an I frame received in sequence (a Q.931 message)."""

    data: bytes


# -- the data link entity -----------------------------------------------------------------

class LinkState(enum.Enum):
    """Q.921 Annex B's data link states, numbered as there (1-3 need TEI management: not on PRI)."""

    TEI_ASSIGNED = 4
    AWAITING_ESTABLISHMENT = 5
    AWAITING_RELEASE = 6
    MULTIPLE_FRAME_ESTABLISHED = 7
    TIMER_RECOVERY = 8


class LinkEvent(enum.Enum):
    ESTABLISH = 1       # DL-ESTABLISH-REQUEST
    RELEASE = 2         # DL-RELEASE-REQUEST
    DATA = 3            # DL-DATA-REQUEST (data: data)
    SABME = 4           # frames received (data: frame, command)
    DISC = 5
    UA = 6
    DM = 7
    FRMR = 8
    I = 9               # noqa: E741 (the frame's name)
    RR = 10
    RNR = 11
    REJ = 12
    REJECTED = 13       # a frame rejection condition of §5.8.4 (data: frame, code: its MDL error)
    TIMEOUT = 14        # T200 or T203 ran out (which one: `expired`)
    PH_DOWN = 15        # PH-DEACTIVATE-INDICATION: the span is in alarm
    PH_UP = 16          # PH-ACTIVATE-INDICATION: the span is back
    BUSY = 17           # our own receiver busy set or cleared (data: on)


_S = LinkState
_E = LinkEvent
_FRAME_EVENT = {FrameKind.SABME: _E.SABME, FrameKind.DISC: _E.DISC, FrameKind.UA: _E.UA, FrameKind.DM: _E.DM,
                FrameKind.FRMR: _E.FRMR, FrameKind.I: _E.I, FrameKind.RR: _E.RR, FrameKind.RNR: _E.RNR,
                FrameKind.REJ: _E.REJ}
# §3.6: these are only commands, those only responses (S frames are either).
_COMMANDS_ONLY = frozenset({FrameKind.SABME, FrameKind.DISC, FrameKind.I})
_RESPONSES_ONLY = frozenset({FrameKind.UA, FrameKind.DM, FrameKind.FRMR})
_FRAMES_IN_LINK = frozenset({_E.SABME, _E.DISC, _E.UA, _E.DM, _E.FRMR, _E.I, _E.RR, _E.RNR, _E.REJ, _E.REJECTED})

#: Q.921 Appendix II, Table II-1: the management errors (MDL-ERROR-INDICATION) by code.
MDL_ERRORS = {
    "A": "supervisory response with F = 1 not expected",
    "B": "DM response with F = 1 not expected",
    "C": "UA response with F = 1 not expected",
    "D": "UA response with F = 0 not expected",
    "E": "DM response with F = 0: the peer re-establishes",
    "F": "SABME while established: the peer re-establishes",
    "G": "SABME unanswered after N200 retransmissions",
    "H": "DISC unanswered after N200 retransmissions",
    "I": "status enquiry unanswered after N200 retransmissions",
    "J": "N(R) error",
    "K": "FRMR received",
    "L": "control field undefined or not implemented",
    "M": "information field not permitted",
    "N": "frame of the wrong size",
    "O": "information field longer than N201",
}


@dataclass
class LinkCounters:
    """What a link counted since it was made (``span status``)."""

    frames_tx: int = 0
    frames_rx: int = 0
    i_tx: int = 0               # I frames sent, retransmissions included
    i_rx: int = 0               # I frames taken in sequence (DL-DATA-INDICATION)
    retransmitted: int = 0      # I frames sent again (REJ, poll answer, T200)
    rej_tx: int = 0
    rnr_tx: int = 0
    invalid: int = 0            # frames discarded unseen (§2.9, another SAPI or TEI, C/R, PH down, UI/XID)
    rejected: int = 0           # frame rejection conditions (§5.8.4)
    t200_expiries: int = 0
    t203_expiries: int = 0
    established: int = 0        # times the link came up (establishment or re-establishment)
    released: int = 0           # times it went down
    data_discarded: int = 0     # layer 3 messages discarded (release, re-establishment, full queue)
    mdl_errors: dict[str, int] = field(default_factory=dict)


Sender = Callable[[bytes], None]
Sink = Callable[[DlEvent], None]

_ANY = frozenset({_E.PH_DOWN, _E.PH_UP, _E.BUSY})
_ESTABLISHED = (_S.MULTIPLE_FRAME_ESTABLISHED, _S.TIMER_RECOVERY)


class DataLink(StateMachine[LinkState, LinkEvent]):
    """The data link layer entity of one PRI D-channel (SAPI 0, TEI 0), user or network side."""

    PROTOCOL = "q921"
    TIMERS = Q921_TIMERS
    TIMEOUT = LinkEvent.TIMEOUT
    REST = LinkState.TEI_ASSIGNED
    ALL_STATE_EVENTS = _ANY
    ALL_STATE_HANDLER = "any_state"
    # Frames a state does not list are ignored (logged and counted by the base): while establishing
    # or releasing, Q.921 (§5.5.1, §5.5.3) ignores all but unnumbered frames.
    TABLE = {
        _S.TEI_ASSIGNED: StateDef(
            frozenset({_E.ESTABLISH, _E.RELEASE, _E.DATA, _E.SABME, _E.DISC, _E.UA, _E.DM, _E.I, _E.RR, _E.RNR,
                       _E.REJ, _E.REJECTED}),
            frozenset({_S.AWAITING_ESTABLISHMENT, _S.MULTIPLE_FRAME_ESTABLISHED}), "st_tei_assigned"),
        _S.AWAITING_ESTABLISHMENT: StateDef(
            frozenset({_E.ESTABLISH, _E.RELEASE, _E.DATA, _E.SABME, _E.DISC, _E.UA, _E.DM, _E.REJECTED,
                       _E.TIMEOUT}),
            frozenset({_S.TEI_ASSIGNED, _S.AWAITING_RELEASE, _S.MULTIPLE_FRAME_ESTABLISHED}),
            "st_awaiting_establishment", timer="T200"),
        _S.AWAITING_RELEASE: StateDef(
            frozenset({_E.ESTABLISH, _E.DATA, _E.SABME, _E.DISC, _E.UA, _E.DM, _E.REJECTED, _E.TIMEOUT}),
            frozenset({_S.TEI_ASSIGNED}), "st_awaiting_release", timer="T200"),
        _S.MULTIPLE_FRAME_ESTABLISHED: StateDef(
            frozenset({_E.ESTABLISH, _E.RELEASE, _E.DATA, _E.TIMEOUT}) | _FRAMES_IN_LINK,
            frozenset({_S.TEI_ASSIGNED, _S.AWAITING_ESTABLISHMENT, _S.AWAITING_RELEASE,
                       _S.MULTIPLE_FRAME_ESTABLISHED, _S.TIMER_RECOVERY}),
            "st_established", timer="T203"),
        _S.TIMER_RECOVERY: StateDef(
            frozenset({_E.ESTABLISH, _E.RELEASE, _E.DATA, _E.TIMEOUT}) | _FRAMES_IN_LINK,
            frozenset({_S.TEI_ASSIGNED, _S.AWAITING_ESTABLISHMENT, _S.AWAITING_RELEASE,
                       _S.MULTIPLE_FRAME_ESTABLISHED}),
            "st_timer_recovery", timer="T200"),
    }

    def __init__(self, side: Side, send_frame: Sender, sink: Sink, clock: Clock,
                 timers: TimerTable | None = None, params: LapdParams | None = None, *,
                 name: str = "dchan", ph_active: bool = True) -> None:
        super().__init__(f"q921({name})", LinkState.TEI_ASSIGNED, clock, timers)
        if self.timers["T203"] <= self.timers["T200"]:
            raise TimerError(f"{self.name}: T203 ({self.timers['T203']} ms) must be longer than T200 "
                             f"({self.timers['T200']} ms)")
        self.side = side
        self.params = params or LapdParams()
        self.send_frame = send_frame
        self.sink = sink
        self.ph_active = ph_active
        self.counters = LinkCounters()
        self._unanswered = 0                # SABME rounds unanswered since the link was last up (logged once)
        # The state variables of §3.5.2 and the conditions of the SDL.
        self.vs = 0                     # V(S): the next N(S) to send
        self.va = 0                     # V(A): the oldest I frame not acknowledged
        self.vr = 0                     # V(R): the next N(S) expected
        self.rc = 0                     # retransmission count
        self.peer_busy = False
        self.own_busy = False           # our own receiver busy: the owner's condition (set_busy)
        self.reject_exception = False   # a REJ sent, its recovery not yet seen
        self.ack_pending = False        # an I frame taken and not yet acknowledged
        self.l3_initiated = False       # layer 3 asked for the establishment under way
        self.establish_wanted = False   # a DL-ESTABLISH-REQUEST waiting for PH up, or for a release to end
        self._unacked: deque[bytes] = deque()      # sent, N(S) = V(A) .. V(S) - 1
        self._queue: deque[bytes] = deque()        # to send (the I queue)
        self._requeued = 0              # how many at the queue's head were sent before (retransmissions)
        self._queue_full = False
        self._depth = 0
        cr = side.command_cr
        self._addr_cmd = bytes(((SAPI << 2) | (cr << 1), (TEI << 1) | 1))
        self._addr_rsp = bytes(((SAPI << 2) | ((1 - cr) << 1), (TEI << 1) | 1))
        self._peer_command_cr = side.other.command_cr

    # -- the owner's side ---------------------------------------------------------------

    def establish(self) -> None:
        """DL-ESTABLISH-REQUEST: bring the link up (again: re-establish if it is up)."""
        self.dispatch(_E.ESTABLISH)

    def release(self) -> None:
        """DL-RELEASE-REQUEST: take the link down; messages not yet sent are discarded."""
        self.dispatch(_E.RELEASE)

    def send(self, data: bytes) -> None:
        """DL-DATA-REQUEST: `data` (a Q.931 message) in an I frame; queued while the link is not
        established or its window is full, discarded if it is released first."""
        if not data or len(data) > self.params.n201:
            raise EncodeError(f"{self.name}: an information field has 1-{self.params.n201} octets, not {len(data)}")
        self.dispatch(_E.DATA, data=bytes(data))

    def set_busy(self, on: bool) -> None:
        """Our own receiver busy (on) or not: while busy, I frames are refused with RNR (§5.6.6)."""
        self.dispatch(_E.BUSY, on=on)

    def ph_down(self) -> None:
        """PH-DEACTIVATE-INDICATION (the span went red or blue): the link stops at once, DL-RELEASE upward."""
        self.dispatch(_E.PH_DOWN)

    def ph_up(self) -> None:
        """PH-ACTIVATE-INDICATION (the span's alarm ended): frames pass again; an establishment asked
        for while it was down starts now."""
        self.dispatch(_E.PH_UP)

    def receive(self, octets: bytes) -> None:
        """A frame from the HDLC receiver (FCS checked and removed)."""
        c = self.counters
        c.frames_rx += 1
        if not self.ph_active:
            self._invalid(octets, "the physical layer is down")
            return
        try:
            f = decode_frame(octets)
        except DecodeError as exc:
            self._invalid(octets, str(exc))
            return
        if f.sapi != SAPI or f.tei != TEI:
            self._invalid(octets, f"SAPI {f.sapi}, TEI {f.tei}: not this link's")
            return
        command = f.cr == self._peer_command_cr
        kind = f.kind
        # A SABME, DISC or I frame that says it is a response (or a UA, DM, FRMR that says it is a
        # command) is no frame Q.921 defines: it is discarded like an invalid frame rather than made
        # a frame rejection condition, since re-establishing a working link for a flipped C/R bit
        # would drop the calls' messages in flight for nothing.
        if (kind in _COMMANDS_ONLY and not command) or (kind in _RESPONSES_ONLY and command):
            self._invalid(octets, f"{kind.value} as a {'command' if command else 'response'}")
            return
        if kind is FrameKind.UI or kind is FrameKind.XID:
            # Defined by Q.921 but not used by Q.931 on a PRI (no DL-UNIT-DATA, no parameter
            # negotiation): discarded.
            self._invalid(octets, f"{kind.value} frames are not used on this link")
            return
        # Frame rejection conditions (§5.8.5). Such a frame is not answered with FRMR
        # (LAPD never sends one; FRMR is only received, from peers built on LAPB's rules); in the
        # multiple frame established state and timer recovery the link re-establishes
        # (MDL-ERROR-INDICATION, SABME), in the other states the frame is discarded. Re-establishing
        # rather than reporting is what Q.921 does because the peer that sent a frame we cannot
        # parse cannot be trusted to recover from an FRMR either; SABME resets both ends.
        code = None
        if kind is FrameKind.UNDEFINED:
            code = "L"
        elif kind is FrameKind.I:
            if len(f.info) > self.params.n201:
                code = "O"
        elif f.info and kind is not FrameKind.FRMR:
            code = "N" if kind in SUPERVISORY else "M"
        if code is not None:
            c.rejected += 1
            self.dispatch(_E.REJECTED, frame=f, code=code)
        else:
            self.dispatch(_FRAME_EVENT[kind], frame=f, command=command)

    # -- what the span status shows -------------------------------------------------------

    @property
    def dchan(self) -> str:
        """``"up"`` (multiple frame established, timer recovery included), ``"establishing"``, or ``"down"``."""
        if not self.ph_active:
            return "down"
        if self.state in _ESTABLISHED:
            return "up"
        return "establishing" if self.state is _S.AWAITING_ESTABLISHMENT else "down"

    @property
    def outstanding(self) -> int:
        """I frames sent and not yet acknowledged: V(S) - V(A)."""
        return (self.vs - self.va) % MODULUS

    @property
    def queued(self) -> int:
        """Layer 3 messages waiting to be sent."""
        return len(self._queue)

    def status(self) -> dict[str, Any]:
        return {"dchan": self.dchan, "state": self.state.name.lower(), "side": self.side.value,
                "ph_active": self.ph_active, "vs": self.vs, "va": self.va, "vr": self.vr,
                "outstanding": self.outstanding, "queued": self.queued, "peer_busy": self.peer_busy,
                "own_busy": self.own_busy, "counters": asdict(self.counters)}

    # -- dispatch: the I queue goes out once the events in hand are done ------------------

    def dispatch(self, event: LinkEvent, **data: Any) -> None:
        """The base's dispatch; then, outside any action, the I frames the window allows and the
        acknowledgement still pending (so an answer layer 3 gives from inside DL-DATA-INDICATION
        carries the N(R), and no RR goes alone)."""
        self._depth += 1
        try:
            super().dispatch(event, **data)
            if self._depth == 1:
                self._pump()
        finally:
            self._depth -= 1

    def _pump(self) -> None:
        """Q.921's "I frame queued up", in the established state (in timer recovery new I frames
        wait: the answer to the poll says where the peer stands, and the queue goes out from the
        V(S) it sets); then RR for an acknowledgement still pending."""
        k = self.params.k
        while (self._queue and self.state is _S.MULTIPLE_FRAME_ESTABLISHED and not self.peer_busy
               and (self.vs - self.va) % MODULUS < k):
            data = self._queue.popleft()
            if self._requeued:
                self._requeued -= 1
                self.counters.retransmitted += 1
            ns = self.vs
            self.vs = (ns + 1) % MODULUS
            self._unacked.append(data)
            self.ack_pending = False
            running = self.timer
            if running is None or running[0] != "T200":
                self.start_timer("T200")            # stop T203, start T200
            self.counters.i_tx += 1
            self._tx(self._addr_cmd + bytes((ns << 1, self.vr << 1)) + data)
        if self.ack_pending and self.state in _ESTABLISHED:
            self.ack_pending = False
            self._s_frame(FrameKind.RR, command=False, pf=False)

    # -- sending ---------------------------------------------------------------------------

    def _tx(self, octets: bytes) -> None:
        self.counters.frames_tx += 1
        self.send_frame(octets)

    def _u_frame(self, kind: FrameKind, command: bool, pf: bool) -> None:
        self._tx((self._addr_cmd if command else self._addr_rsp)
                 + bytes((_U_CONTROL[kind] | (P_BIT if pf else 0),)))

    def _s_frame(self, kind: FrameKind, command: bool, pf: bool) -> None:
        if kind is FrameKind.RNR:
            self.counters.rnr_tx += 1
        elif kind is FrameKind.REJ:
            self.counters.rej_tx += 1
        self._tx((self._addr_cmd if command else self._addr_rsp)
                 + bytes((_S_CONTROL[kind], (self.vr << 1) | (1 if pf else 0))))

    def _transmit_enquiry(self) -> None:
        """RR (RNR if we are busy) command with P = 1; T200 is started by the caller's state."""
        self._s_frame(FrameKind.RNR if self.own_busy else FrameKind.RR, command=True, pf=True)
        self.ack_pending = False

    def _enquiry_response(self) -> None:
        """RR (RNR if we are busy) response with F = 1."""
        self._s_frame(FrameKind.RNR if self.own_busy else FrameKind.RR, command=False, pf=True)
        self.ack_pending = False

    def _retransmit_last(self) -> None:
        """The last I frame sent (N(S) = V(S) - 1), again, with P = 1 (§5.6.7)."""
        ns = (self.vs - 1) % MODULUS
        self.counters.i_tx += 1
        self.counters.retransmitted += 1
        self.ack_pending = False
        self._tx(self._addr_cmd + bytes((ns << 1, (self.vr << 1) | 1)) + self._unacked[-1])

    # -- the SDL's procedures ---------------------------------------------------------------

    def _report(self, event: DlEvent) -> None:
        if isinstance(event, DlDataIndication):
            log.debug("%s: DL-DATA-INDICATION of %d octets", self.name, len(event.data))
        elif isinstance(event, DlReleaseIndication) and self._unanswered > 1:
            log.debug("%s: %s", self.name, event)       # another unanswered round (the first was logged)
        else:
            log.info("%s: %s", self.name, event)
        self.sink(event)

    def _mdl_error(self, code: str) -> None:
        errs = self.counters.mdl_errors
        errs[code] = errs.get(code, 0) + 1
        if code == "G":                     # a far end that never answers: said once, then counted
            self._unanswered += 1
            if self._unanswered > 1:
                log.debug("%s: MDL-ERROR-INDICATION G again (%d times)", self.name, self._unanswered)
                return
        # F is the far end re-establishing a link that was up (its restart, or a SABME crossing ours at
        # start): its own doing and counted, no fault of the line; the others are.
        log.log(logging.INFO if code == "F" else logging.WARNING, "%s: MDL-ERROR-INDICATION %s: %s (in %s)",
                self.name, code, MDL_ERRORS[code], self.state.name)

    def _invalid(self, octets: bytes, why: str) -> None:
        self.counters.invalid += 1
        log.info("%s: frame %s discarded: %s", self.name, octets[:8].hex(" "), why)

    def _discard_queue(self) -> None:
        """Discard the I queue and the frames awaiting acknowledgement."""
        n = len(self._queue) + len(self._unacked)
        if n:
            self.counters.data_discarded += n
            log.info("%s: %d layer 3 message(s) discarded", self.name, n)
        self._queue.clear()
        self._unacked.clear()
        self._requeued = 0

    def _clear_exceptions(self) -> None:
        self.peer_busy = False
        self.reject_exception = False
        self.ack_pending = False

    def _establish_data_link(self, l3_initiated: bool) -> None:
        """SABME with P = 1, T200 (by the state), and to AWAITING_ESTABLISHMENT."""
        self._clear_exceptions()
        self.rc = 0
        self.l3_initiated = l3_initiated
        self._u_frame(FrameKind.SABME, command=True, pf=True)
        if self.state is _S.AWAITING_ESTABLISHMENT:
            self.start_timer("T200")
        else:
            self.transition(_S.AWAITING_ESTABLISHMENT)

    def _reestablish(self, code: str) -> None:
        """Re-establishment the data link layer starts itself (§5.7.2)."""
        self._mdl_error(code)
        self._establish_data_link(l3_initiated=False)

    def _established(self, report: DlEvent | None) -> None:
        """V(S) = V(A) = V(R) = 0, into the established state (T203), then `report` upward."""
        self.vs = self.va = self.vr = 0
        self._unacked.clear()
        self.rc = 0
        self._unanswered = 0
        self.counters.established += 1
        self.transition(_S.MULTIPLE_FRAME_ESTABLISHED)
        if self.own_busy:
            self._s_frame(FrameKind.RNR, command=False, pf=False)
        if report is not None:
            self._report(report)

    def _released(self, report: DlEvent) -> None:
        """Into TEI_ASSIGNED (no timer), the queue discarded, `report` upward."""
        was_up = self.state in _ESTABLISHED
        self._discard_queue()
        self.vs = self.va = self.vr = 0
        self.rc = 0
        self._clear_exceptions()
        if was_up:
            self.counters.released += 1
        if self.state is not _S.TEI_ASSIGNED:
            self.transition(_S.TEI_ASSIGNED)
        self._report(report)

    def _release_data_link(self) -> None:
        """DISC with P = 1, T200 (by the state), and to AWAITING_RELEASE; queued messages discarded."""
        self._discard_queue()
        self.rc = 0
        self._u_frame(FrameKind.DISC, command=True, pf=True)
        if self.state in _ESTABLISHED:
            self.counters.released += 1
        self.transition(_S.AWAITING_RELEASE)

    def _lost_on_reset(self) -> bool:
        """Whether a re-establishment now loses I frames: V(S) > V(A) (§5.7.2), or frames sent once
        and put back on the queue by a retransmission (the SDL's V(S) is N(R) again then, but the
        peer may have taken one: sending it anew after the reset could deliver it twice)."""
        return self.vs != self.va or self._requeued > 0

    def _peer_reestablished(self, f: Frame) -> None:
        """SABME while established (§5.7.2): UA, and start over; layer 3 hears of it if I frames
        were outstanding (they are lost, and so is the rest of the queue)."""
        self._u_frame(FrameKind.UA, command=False, pf=f.pf)
        self._clear_exceptions()
        self._mdl_error("F")
        lost = self._lost_on_reset()
        if lost:
            self._discard_queue()
        self._established(DlEstablishIndication(self.clock.now_ms) if lost else None)

    def _nr_valid(self, nr: int) -> bool:
        """V(A) <= N(R) <= V(S), modulo 128."""
        return (nr - self.va) % MODULUS <= (self.vs - self.va) % MODULUS

    def _acknowledge(self, nr: int) -> None:
        """V(A) = N(R): the frames up to N(R) - 1 are acknowledged."""
        for _ in range((nr - self.va) % MODULUS):
            self._unacked.popleft()
        self.va = nr

    def _invoke_retransmission(self) -> None:
        """V(S) = N(R) (V(A) by now): the frames not acknowledged go back to the head of the I queue."""
        n = len(self._unacked)
        if n:
            self._queue.extendleft(reversed(self._unacked))
            self._unacked.clear()
            self._requeued += n
        self.vs = self.va

    def _take_i(self, f: Frame) -> None:
        """An I frame's N(S) and information (§5.6.2, the same in both established states)."""
        if self.own_busy:
            if f.pf:
                self._s_frame(FrameKind.RNR, command=False, pf=True)
                self.ack_pending = False
        elif f.ns == self.vr:
            self.vr = (self.vr + 1) % MODULUS
            self.reject_exception = False
            self.counters.i_rx += 1
            if f.pf:
                self._s_frame(FrameKind.RR, command=False, pf=True)
                self.ack_pending = False
            else:
                self.ack_pending = True
            self._report(DlDataIndication(self.clock.now_ms, f.info))
        elif self.reject_exception:
            if f.pf:
                self._s_frame(FrameKind.RR, command=False, pf=True)
                self.ack_pending = False
        else:
            self.reject_exception = True
            self._s_frame(FrameKind.REJ, command=False, pf=f.pf)
            self.ack_pending = False

    # -- every state ------------------------------------------------------------------------

    def any_state(self, ev: LinkEvent, **d: Any) -> None:
        if ev is _E.PH_DOWN:
            if not self.ph_active:
                return
            self.ph_active = False
            self.establish_wanted = False
            log.warning("%s: the physical layer is down in %s", self.name, self.state.name)
            if self.state is _S.AWAITING_RELEASE:
                self._released(DlReleaseConfirm(self.clock.now_ms))
            elif self.state is not _S.TEI_ASSIGNED:
                self._released(DlReleaseIndication(self.clock.now_ms, "physical layer down"))
        elif ev is _E.PH_UP:
            if self.ph_active:
                return
            self.ph_active = True
            log.info("%s: the physical layer is up", self.name)
            if self.establish_wanted:
                self.establish_wanted = False
                self._establish_data_link(l3_initiated=True)
        else:       # BUSY
            on = bool(d["on"])
            if on == self.own_busy:
                return
            self.own_busy = on
            if self.state in _ESTABLISHED:
                self._s_frame(FrameKind.RNR if on else FrameKind.RR, command=False, pf=False)
                self.ack_pending = False

    # -- state 4: TEI assigned (the link is down) -------------------------------------------

    def st_tei_assigned(self, ev: LinkEvent, **d: Any) -> None:
        if ev is _E.ESTABLISH:
            if self.ph_active:
                self._establish_data_link(l3_initiated=True)
            else:
                self.establish_wanted = True    # PH-ACTIVATE first: done by ph_up()
        elif ev is _E.RELEASE:
            self.establish_wanted = False
            self._report(DlReleaseConfirm(self.clock.now_ms))
        elif ev is _E.DATA:
            # Not in Q.921's state 4, where layer 3 sends nothing before establishing: kept for
            # after the establishment, as DL-DATA-REQUESTs in state 5 are.
            self._enqueue(d["data"])
        elif ev is _E.SABME:
            self._u_frame(FrameKind.UA, command=False, pf=d["frame"].pf)
            self._clear_exceptions()
            self._established(DlEstablishIndication(self.clock.now_ms))
        elif ev is _E.DISC:
            self._u_frame(FrameKind.DM, command=False, pf=d["frame"].pf)
        elif ev is _E.UA:
            self._mdl_error("C" if d["frame"].pf else "D")
        elif ev is _E.DM:
            pass        # the peer is down too: establishing is layer 3's decision
        elif ev is _E.REJECTED:
            self._mdl_error(d["code"])
        elif d["command"] and d["frame"].pf:
            # An I or S command with P = 1: the peer polls a link it believes up; DM F = 1 tells it
            # we are in disconnected mode, and it re-establishes.
            self._u_frame(FrameKind.DM, command=False, pf=True)

    def _enqueue(self, data: bytes) -> None:
        if len(self._queue) >= MAX_QUEUE:
            self.counters.data_discarded += 1
            if not self._queue_full:        # said once while it stays full
                self._queue_full = True
                log.warning("%s: %d messages queued already: more are discarded", self.name, MAX_QUEUE)
            return
        self._queue_full = False
        self._queue.append(data)

    # -- state 5: awaiting establishment ----------------------------------------------------

    def st_awaiting_establishment(self, ev: LinkEvent, **d: Any) -> None:
        if ev is _E.TIMEOUT:
            self.counters.t200_expiries += 1
            if self.rc >= self.params.n200:
                self._mdl_error("G")
                self._released(DlReleaseIndication(self.clock.now_ms, "no answer to SABME"))
            else:
                self.rc += 1
                self._u_frame(FrameKind.SABME, command=True, pf=True)
                self.start_timer("T200")
        elif ev is _E.UA:
            f = d["frame"]
            if not f.pf:
                self._mdl_error("D")
                return
            if self.l3_initiated:
                report: DlEvent | None = DlEstablishConfirm(self.clock.now_ms)
            elif self._lost_on_reset():
                self._discard_queue()
                report = DlEstablishIndication(self.clock.now_ms)
            else:
                report = None       # re-established with nothing lost: layer 3 needs not know
            self._established(report)
        elif ev is _E.DM:
            if d["frame"].pf:       # the peer refuses
                self._released(DlReleaseIndication(self.clock.now_ms, "the peer refused (DM)"))
        elif ev is _E.SABME:        # §5.5.5: the same command both ways: UA, and wait for ours
            self._u_frame(FrameKind.UA, command=False, pf=d["frame"].pf)
        elif ev is _E.DISC:         # §5.5.5: different commands: DM
            self._u_frame(FrameKind.DM, command=False, pf=d["frame"].pf)
        elif ev is _E.ESTABLISH:
            self._discard_queue()
            self.l3_initiated = True
        elif ev is _E.RELEASE:
            # Not in Q.921's state 5: released as from the established state, so a peer that took
            # our SABME hears of it.
            self._release_data_link()
        elif ev is _E.DATA:
            self._enqueue(d["data"])
        elif ev is _E.REJECTED:
            self._mdl_error(d["code"])

    # -- state 6: awaiting release ----------------------------------------------------------

    def st_awaiting_release(self, ev: LinkEvent, **d: Any) -> None:
        if ev is _E.TIMEOUT:
            self.counters.t200_expiries += 1
            if self.rc >= self.params.n200:
                self._mdl_error("H")
                self._release_done()
            else:
                self.rc += 1
                self._u_frame(FrameKind.DISC, command=True, pf=True)
                self.start_timer("T200")
        elif ev is _E.UA or ev is _E.DM:
            if d["frame"].pf:
                self._release_done()
            elif ev is _E.UA:
                self._mdl_error("D")
        elif ev is _E.ESTABLISH:
            # Not in Q.921's state 6: the release goes on, and the establishment follows it.
            self.establish_wanted = True
        elif ev is _E.SABME:        # §5.5.5: different commands: DM
            self._u_frame(FrameKind.DM, command=False, pf=d["frame"].pf)
        elif ev is _E.DISC:         # §5.5.5: the same command both ways: UA
            self._u_frame(FrameKind.UA, command=False, pf=d["frame"].pf)
        elif ev is _E.DATA:
            self.counters.data_discarded += 1       # the link is being released: nothing more goes
        elif ev is _E.REJECTED:
            self._mdl_error(d["code"])

    def _release_done(self) -> None:
        """DL-RELEASE-CONFIRM; then the establishment asked for while releasing, if one was."""
        self._released(DlReleaseConfirm(self.clock.now_ms))
        if self.establish_wanted:
            self.establish_wanted = False
            self._establish_data_link(l3_initiated=True)

    # -- states 7 and 8: the link is up -------------------------------------------------------

    def _common_established(self, ev: LinkEvent, d: dict[str, Any]) -> bool:
        """What states 7 and 8 do alike; False for the events each does its own way."""
        if ev is _E.DATA:
            self._enqueue(d["data"])
        elif ev is _E.ESTABLISH:
            self._discard_queue()
            self._establish_data_link(l3_initiated=True)
        elif ev is _E.RELEASE:
            self._release_data_link()
        elif ev is _E.SABME:
            self._peer_reestablished(d["frame"])
        elif ev is _E.DISC:
            self._u_frame(FrameKind.UA, command=False, pf=d["frame"].pf)
            self._released(DlReleaseIndication(self.clock.now_ms, "the peer released (DISC)"))
        elif ev is _E.UA:
            self._mdl_error("C" if d["frame"].pf else "D")
        elif ev is _E.FRMR:
            self._reestablish("K")
        elif ev is _E.REJECTED:
            self._reestablish(d["code"])
        else:
            return False
        return True

    def st_established(self, ev: LinkEvent, **d: Any) -> None:
        if self._common_established(ev, d):
            return
        if ev is _E.TIMEOUT:
            if self.expired == "T203":      # §5.10.2: nothing exchanged for T203: poll, N200 times at most
                self.counters.t203_expiries += 1
                self.rc = 0
                self._transmit_enquiry()
            else:                           # §5.6.7: no acknowledgement in T200: the last I frame again
                self.counters.t200_expiries += 1
                if self.peer_busy or not self._unacked:
                    self._transmit_enquiry()
                else:
                    self._retransmit_last()
                self.rc = 1
            self.transition(_S.TIMER_RECOVERY)      # T200 again
        elif ev is _E.DM:
            if d["frame"].pf:
                self._mdl_error("B")
            else:
                self._reestablish("E")
        elif ev is _E.I:
            f = d["frame"]
            self._take_i(f)
            if self.state is _S.MULTIPLE_FRAME_ESTABLISHED:
                self._nr_established(f.nr)
        else:                               # RR, RNR, REJ
            f, command = d["frame"], d["command"]
            self.peer_busy = ev is _E.RNR
            if command:
                if f.pf:
                    self._enquiry_response()
            elif f.pf:
                self._mdl_error("A")
            if not self._nr_valid(f.nr):
                self._reestablish("J")
            elif ev is _E.RNR:              # poll the busy peer by T200 (§5.6.5)
                self._acknowledge(f.nr)
                self.start_timer("T200")
            elif ev is _E.REJ:              # §5.6.4: everything from N(R) again
                self._acknowledge(f.nr)
                self.start_timer("T203")
                self._invoke_retransmission()
            else:
                self._nr_established(f.nr)

    def _nr_established(self, nr: int) -> None:
        """An I or RR frame's N(R) in the established state."""
        if not self._nr_valid(nr):
            self._reestablish("J")
        elif self.peer_busy:
            self._acknowledge(nr)
        elif nr == self.vs:                 # all acknowledged: idle supervision again
            self._acknowledge(nr)
            self.start_timer("T203")
        elif nr != self.va:                 # progress: a new T200 for the rest
            self._acknowledge(nr)
            self.start_timer("T200")

    def st_timer_recovery(self, ev: LinkEvent, **d: Any) -> None:
        if self._common_established(ev, d):
            return
        if ev is _E.TIMEOUT:                # T200
            self.counters.t200_expiries += 1
            if self.rc >= self.params.n200:
                self._reestablish("I")
                return
            if self.vs == self.va or self.peer_busy:
                self._transmit_enquiry()
            else:
                self._retransmit_last()
            self.rc += 1
            self.start_timer("T200")
        elif ev is _E.DM:                   # the answer to our poll may be DM F = 1: the peer is down
            self._reestablish("B" if d["frame"].pf else "E")
        elif ev is _E.I:
            f = d["frame"]
            self._take_i(f)
            if self.state is _S.TIMER_RECOVERY:
                if self._nr_valid(f.nr):
                    self._acknowledge(f.nr)
                else:
                    self._reestablish("J")
        else:                               # RR, RNR, REJ
            f, command = d["frame"], d["command"]
            self.peer_busy = ev is _E.RNR
            if command and f.pf:
                self._enquiry_response()
            if not self._nr_valid(f.nr):
                self._reestablish("J")
                return
            self._acknowledge(f.nr)
            if not command and f.pf:        # the answer to our poll: recovery ends (§5.6.7)
                self.transition(_S.MULTIPLE_FRAME_ESTABLISHED)      # T203
                if ev is _E.RNR:
                    self.start_timer("T200")
                self._invoke_retransmission()
