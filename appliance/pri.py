"""The engine's PRI spans: for each ``pri_cpe`` or ``pri_net`` span, our Q.921 and Q.931 on its D-channel.

Each :class:`PriSpan` is a span's data link (e1t1.isdn.q921.DataLink: the span's side, its ``q921``
timers; its frames go out as CB_CMD_FRAME on the D-channel's card channel, E1 TS16 or T1 TS24, and
each CB_EV_FRAME of that channel comes in at its tick) and its call control (e1t1.isdn.call.CallControl:
the span's switch type, ``q931`` timers, overlap and exclusive settings, and the owner's exact match of
a called number, a route's ``dnis``). What the call control reports goes to the engine's sink with the
span, which makes calls of them (appliance.calls.registry: a B-channel is a leg of the call machine as
an FXO trunk's line is).

Alarms: the span's CB_EV_ALARM bits (appliance.spans) come here too. Red or blue declared is the
physical layer down (:meth:`CallControl.ph_down`: every call cleared locally, 38, ``line_fault``); the
end of RECOVER (red and blue gone, and the 5 s of RECOVER after them) is the physical layer up again
(:meth:`CallControl.ph_up`: the link re-established, then RESTART class 7; new calls after its
acknowledgement). A span in alarm when the engine starts starts down, so its recovery restarts it too.

Timers: the site's ``timers: {q931: ..., q921: ...}`` for every PRI span, under the span's own
``timers:`` (Q.931 and Q.921 names in one mapping, each to its protocol's table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from appliance.config.model import SiteConfig, Span
from drivers.base import ALARM_STATE_BITS, ChannelInfo
from e1t1.isdn.call import Q931_TIMERS, T310_NETWORK_MS, CallControl, Switch
from e1t1.isdn.events import PriEvent
from e1t1.isdn.q921 import Q921_TIMERS, DataLink, DlEvent, Side
from e1t1.timers import TimerTable

log = logging.getLogger("cicbox.pri")

#: red or blue: the span's physical layer is down
DOWN_BITS = ALARM_STATE_BITS["red"] | ALARM_STATE_BITS["blue"]
#: down, or recovering from it: the physical layer comes up again when none of these is set
NOT_UP_BITS = DOWN_BITS | ALARM_STATE_BITS["recover"]
#: the D-channel's timeslot by kind of span
DCHAN_TIMESLOT = {"e1": 16, "t1": 24}
#: the keys of ``span status``'s ``pri`` (CallControl.status())
STATUS_KEYS = ("side", "switch", "dchan", "calls", "b_idle", "b_busy", "b_out_of_service", "restarting", "alarm")

_Q931 = frozenset(d.name for d in Q931_TIMERS)
_Q921 = frozenset(d.name for d in Q921_TIMERS)


def span_timers(cfg: SiteConfig, span: Span) -> tuple[TimerTable, TimerTable]:
    """The ``q931`` and ``q921`` timers in force on `span`: defaults, the site's, then the span's own."""
    own = span.timers or {}
    q931 = {**cfg.timers.get("q931", {}), **{k: v for k, v in own.items() if k in _Q931}}
    q921 = {**cfg.timers.get("q921", {}), **{k: v for k, v in own.items() if k in _Q921}}
    return TimerTable("q931", Q931_TIMERS, q931), TimerTable("q921", Q921_TIMERS, q921)


def _no_link_sink(ev: DlEvent) -> None:
    """The link's sink until its call control takes it (CallControl sets its own)."""


class PriSpan:
    """One PRI span of the card (see the module): its link, its call control, its channels.

    :param index: the span's position in the configuration (and on the card).
    :param channels: the card's timeslot channels of this span, timeslot -> card channel.
    :param send_frame: sends a D-channel frame: (card channel, octets).
    :param sink: takes the call control's reports, with this span.
    :param is_complete: the exact match of a called number (a route's ``dnis``).
    :param alarm_bits: the span's alarm bits now (a span in alarm starts down).
    """

    def __init__(self, index: int, cfg: SiteConfig, span: Span, channels: Mapping[int, int],
                 send_frame: Callable[[int, bytes], None], clock: Any, sink: Callable[[PriSpan, PriEvent], None],
                 is_complete: Callable[[str], bool], alarm_bits: int = 0) -> None:
        self.index = index
        self.name = span.name
        self.kind = span.kind
        self.side = Side.USER if span.signalling == "pri_cpe" else Side.NETWORK
        self.switch = Switch.parse(span.pri_switch)
        self.dchan = channels[DCHAN_TIMESLOT[span.kind]]
        #: B-channel timeslot -> card channel, and back
        self.chan_of: dict[int, int] = {ts: channels[ts] for ts in self.switch.b_channels}
        self.timeslot_of: dict[int, int] = {c: ts for ts, c in self.chan_of.items()}
        self._send = send_frame
        self._sink = sink
        q931_timers, q921_timers = span_timers(cfg, span)
        self.down = bool(alarm_bits & DOWN_BITS)
        self.link = DataLink(self.side, self._send_frame, _no_link_sink, clock, q921_timers, name=span.name)
        self.control = CallControl(self.link, self._report, switch=self.switch, name=span.name, timers=q931_timers,
                                   overlap=span.pri_overlap, exclusive=span.pri_exclusive, is_complete=is_complete)

    def start(self) -> None:
        """Bring the D-channel up, or (a span in alarm) wait for the end of its RECOVER."""
        log.info("span %s: PRI %s side, %s, D-channel on card channel %d", self.name, self.side.value,
                 self.switch.value, self.dchan)
        if self.down:
            log.warning("span %s: in alarm at start: the D-channel comes up after its recovery", self.name)
            self.control.ph_down()
        else:
            self.control.start()

    def configure(self, cfg: SiteConfig, span: Span) -> None:
        """A new configuration for the next calls: overlap, exclusive and the q931 timers (the switch type,
        the side and the q921 timers are the span's for as long as the engine runs)."""
        timers, _ = span_timers(cfg, span)
        if self.side is Side.NETWORK and "T310" not in timers.overridden:      # as CallControl takes them
            timers = TimerTable("q931", Q931_TIMERS, {**timers.overridden, "T310": T310_NETWORK_MS})
        self.control.timers = timers
        self.control.overlap = span.pri_overlap
        self.control.exclusive = span.pri_exclusive

    def _send_frame(self, octets: bytes) -> None:
        self._send(self.dchan, octets)

    def _report(self, ev: PriEvent) -> None:
        self._sink(self, ev)

    # -- what the engine hands over --------------------------------------------------------------

    def frame(self, octets: bytes) -> None:
        """A frame the card's HDLC received on the D-channel (good FCS), at the clock's tick."""
        self.link.receive(octets)

    def alarm(self, bits: int) -> None:
        """The span's alarm bits changed: red or blue is the physical layer down; once neither is set
        and RECOVER has ended, up again."""
        if bits & DOWN_BITS:
            if not self.down:
                self.down = True
                log.warning("span %s: red/blue alarm: the D-channel is down, its calls cleared (38)", self.name)
                self.control.ph_down()
        elif self.down and not bits & NOT_UP_BITS:
            self.down = False
            log.info("span %s: alarm recovered: the D-channel comes up again, then RESTART", self.name)
            self.control.ph_up()

    def status(self) -> dict[str, Any]:
        """``span status``'s ``pri`` of this span."""
        st = self.control.status()
        return {k: st[k] for k in STATUS_KEYS}


class PriSpans:
    """The card's PRI spans (those of `cfg` signalled ``pri_cpe`` or ``pri_net``), by span index, by
    D-channel and by B-channel card channel."""

    def __init__(self, cfg: SiteConfig, card_channels: Sequence[ChannelInfo], send_frame: Callable[[int, bytes], None],
                 clock: Any, sink: Callable[[PriSpan, PriEvent], None], is_complete: Callable[[str], bool],
                 alarm_bits: Sequence[int]) -> None:
        self.spans: dict[int, PriSpan] = {}
        for i, span in enumerate(cfg.spans):
            if not span.pri:
                continue
            channels = {c.timeslot: c.index for c in card_channels
                        if c.kind == "ts" and c.span == i and c.timeslot is not None}
            self.spans[i] = PriSpan(i, cfg, span, channels, send_frame, clock, sink, is_complete,
                                    alarm_bits[i] if i < len(alarm_bits) else 0)
        self.by_dchan = {s.dchan: s for s in self.spans.values()}
        #: B-channel card channel -> its span
        self.by_bchan = {c: s for s in self.spans.values() for c in s.chan_of.values()}
        self.by_name = {s.name: s for s in self.spans.values()}

    def start(self) -> None:
        for span in self.spans.values():
            span.start()

    def alarm(self, index: int | None, bits: int) -> None:
        span = self.spans.get(index) if index is not None else None
        if span is not None:
            span.alarm(bits)

    def configure(self, cfg: SiteConfig) -> None:
        for i, span in self.spans.items():
            span.configure(cfg, cfg.spans[i])

    def status(self, index: int) -> dict[str, Any] | None:
        span = self.spans.get(index)
        return span.status() if span is not None else None

    def __bool__(self) -> bool:
        return bool(self.spans)
