"""What a PRI span's call control (e1t1.isdn.call) reports upward, to the sink its owner gives it.

As the analog line machines do (e1t1.analog.events), each report is a frozen dataclass stamped
with the tick (ms of the clock) of the line event that caused it and naming its span. A call's
reports also carry the call's id (unique on its span), its B-channel (the timeslot, None while it
has none) and the call itself (``call``, left out of comparisons), on which the owner acts:
``call.accept()``, ``call.alert()``, ``call.answer()``, ``call.hangup(cause)``, ``call.no_route()``.

A call's reports, in order:

- placed by us: :class:`CallProceeding` (the far end's CALL PROCEEDING, or SETUP ACKNOWLEDGE),
  :class:`CallProgress` (in-band information), :class:`CallAlerting`, :class:`CallAnswered`
  (its CONNECT), then :class:`CallReleased`;
- offered to us: :class:`CallDigits` while the called number comes by overlap receiving, then
  :class:`CallOffered` once it is complete (Sending Complete, the owner's exact match, en-bloc, or
  T302), :class:`CallAnswered` when we sent CONNECT (the Definitions' "connected"), then
  :class:`CallReleased`.

:class:`CallReleased` says why: the cause (Q.850), who cleared, a disposition hint for the record
(``rejected``, ``line_fault``, ``failed``, or None for a normal end the owner names itself), and,
for a call we placed that never answered, the tone to give the caller (``busy``, ``info``,
``congestion``). Span reports: the D-channel's state, a RESTART done, a B-channel's service
state (NI-2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from e1t1.isdn.q931 import Npi, Presentation, Screening, ServiceStatus, Ton

if TYPE_CHECKING:
    from e1t1.isdn.call import Call


@dataclass(frozen=True)
class PriEvent:
    """A report from PRI span `span` at `tick` (ms)."""

    span: str
    tick: int


@dataclass(frozen=True)
class PriCallEvent(PriEvent):
    """A report about call `call_id` of the span, on B-channel `chan` (a timeslot, or None)."""

    call_id: int
    chan: int | None
    call: Call = field(compare=False, repr=False)


@dataclass(frozen=True)
class CallOffered(PriCallEvent):
    """A call for us, its called number complete: ANI and DNIS as received, with their type of
    number, numbering plan, presentation and screening (None where the SETUP carried no calling
    number or no octet 3a). `complete_by` says what completed the DNIS: ``sending_complete``,
    ``match`` (the owner's is_complete), ``en_bloc`` (no overlap receiving on this span) or
    ``t302`` (no more digits came: a DNIS with no route then clears with 28, not 1)."""

    ani: str | None
    ani_ton: Ton | None
    ani_npi: Npi | None
    ani_presentation: Presentation | None
    ani_screening: Screening | None
    dnis: str
    dnis_ton: Ton
    dnis_npi: Npi
    complete_by: str
    bearer: int                 # the information transfer capability (speech, 3.1 kHz audio)
    display: str | None = None
    setup_ms: int | None = None  # when its SETUP came (overlap: before its digits); None: `tick`


@dataclass(frozen=True)
class CallRefused(PriEvent):
    """A readable SETUP we refused at once with RELEASE COMPLETE (no free B-channel 34, the channel it
    asked for exclusively busy 44, no such channel 82, a bearer other than speech or 3.1 kHz audio 65):
    no call exists, but a caller tried; its numbers as received (None where absent), the timeslot it
    asked for (None: any), the call reference, the cause. Also an overlap call that ended before its
    number was complete (never offered), so the attempt has its record: cleared by us with 28 (its
    called number growing past q931.MAX_NUMBER_DIGITS), 38 or 27, or by the caller hanging up while
    dialling (``abandoned``); its timeslot is its B-channel's."""

    cr: int
    cause: int
    timeslot: int | None
    ani: str | None
    ani_ton: Ton | None
    ani_npi: Npi | None
    ani_presentation: Presentation | None
    ani_screening: Screening | None
    dnis: str
    dnis_ton: Ton | None
    dnis_npi: Npi | None
    disposition: str = "rejected"   # or, for an overlap call that ended before its number was complete:
    # "abandoned" (the caller hung up while dialling), "line_fault" (alarm, link lost), "failed"
    setup_ms: int | None = None     # when its SETUP came (None: `tick`)


@dataclass(frozen=True)
class CallDigits(PriCallEvent):
    """Digits the far end sent in INFORMATION: `digits` the new ones, `dnis` the called number so
    far (overlap receiving), or keypad digits during the call (`dnis` unchanged)."""

    digits: str
    dnis: str


@dataclass(frozen=True)
class CallProceeding(PriCallEvent):
    """A call we placed is being set up: the far end's first answer (CALL PROCEEDING; SETUP
    ACKNOWLEDGE with `overlap`) named the call's B-channel."""

    overlap: bool = False


@dataclass(frozen=True)
class CallProgress(PriCallEvent):
    """The far end says in-band information (tones, announcements) is on the B-channel (a progress
    indicator 8 in PROGRESS, ALERTING or CALL PROCEEDING), or interworking (`description`)."""

    description: int


@dataclass(frozen=True)
class CallAlerting(PriCallEvent):
    """The called party of a call we placed is being alerted (ALERTING)."""

    inband: bool = False


@dataclass(frozen=True)
class CallAnswered(PriCallEvent):
    """The call is connected: the far end's CONNECT on a call we placed, our CONNECT on one offered to us."""


@dataclass(frozen=True)
class CallReleased(PriCallEvent):
    """The call is over and its call reference and B-channel free: the cause (Q.850) of the first
    clearing, whether the far end cleared (`by_far_end`), what began the clearing (`reason`:
    ``cleared``, ``rejected``, ``alarm``, ``link``, ``restart``, ``status``, or the timer that ran out:
    ``T303``...), whether it had been answered, the disposition hint (``rejected``, ``line_fault``,
    ``failed`` or None) and, for a call we placed that never answered, the tone for its caller
    (``busy``, ``info``, ``congestion``)."""

    cause: int
    by_far_end: bool
    reason: str
    answered: bool
    disposition: str | None
    tone: str | None


@dataclass(frozen=True)
class DchanChanged(PriEvent):
    """The D-channel's data link is now `dchan`: ``up``, ``establishing`` or ``down``."""

    dchan: str


@dataclass(frozen=True)
class RestartDone(PriEvent):
    """B-channels returned to idle by a RESTART: ours acknowledged (`by_far_end` False), or the far
    end's acknowledged by us. `channels` are timeslots (every B-channel for a global restart)."""

    channels: tuple[int, ...]
    by_far_end: bool


@dataclass(frozen=True)
class ServiceChanged(PriEvent):
    """A B-channel's service state changed (NI-2 SERVICE): asked by the far end (`by_far_end`), or
    by us (`acknowledged` once the far end's SERVICE ACKNOWLEDGE came)."""

    chan: int
    status: ServiceStatus
    by_far_end: bool
    acknowledged: bool


#: where a span's call control sends its reports
PriSink = Callable[[PriEvent], None]


def no_sink(event: PriEvent) -> None:
    """A sink that drops every report."""
