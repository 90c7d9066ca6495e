"""The world's far exchange on the site's PRI spans: our own ISDN stack, the other side.

For each PRI span of the site (``signalling: pri_cpe`` or ``pri_net``) the far end of the cable runs
the same Q.921 and Q.931 the appliance runs (e1t1.isdn.q921.DataLink, e1t1.isdn.call.CallControl),
on the other side: the network side against a ``pri_cpe`` span, the user side against a ``pri_net``
one, with the span's switch type (EuroISDN on E1, NI-2 on T1). Its data link is on the span's
far-side D-channel, through the sim card's far side only (drivers.sim.FarSide: ``send_frame`` for
what it sends, ``frames`` for what it received), so every frame crosses the framed line and both
HDLC ends. Never libpri: libpri is a test peer (tests/peers/pri_peer), never part of the product or
of its world.

The exchange keeps its own clock (e1t1.clock.Clock), moved by the world to the period's start before
its steps and to the period's end before the frames the far end received in it are read; the
timers of both layers run on it. :class:`PriExchange` places the world's calls (ANI with its type
of number, plan and presentation; DNIS en bloc, with Sending Complete), clears them, and hands every
report of the span's call control (e1t1.isdn.events) to the world's sink; the world keeps the
callers. A B-channel's audio is the world's far-side media on that timeslot's card channel
(:meth:`PriExchange.channel`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from e1t1.clock import Clock
from e1t1.isdn.call import Call, CallControl, Switch
from e1t1.isdn.events import PriEvent
from e1t1.isdn.q921 import DataLink, Side

log = logging.getLogger("cicbox.world.pri")

#: the appliance's signalling -> the side the far exchange plays
FAR_SIDE = {"pri_cpe": "network", "pri_net": "user"}
#: a span's switch type unless the site names one: EuroISDN on E1, NI-2 on T1
DEFAULT_SWITCH = {"e1": "euroisdn", "t1": "national"}
#: what the world's callers dial on a PRI span when no route names a DNIS for it
DEFAULT_DNIS = "075588880000"


@dataclass(frozen=True)
class PriSpan:
    """A PRI span as the far exchange sees it: the card's span `index` named `name` (E1 or T1), the
    side the exchange plays there (``network`` against the appliance's ``pri_cpe``, ``user`` against
    ``pri_net``), its switch type (``euroisdn``, ``national``) and the number the world's callers
    dial on it unless they name one (`dnis`)."""

    index: int
    name: str
    kind: Literal["e1", "t1"]
    side: Literal["network", "user"]
    switch: str
    dnis: str = DEFAULT_DNIS

    @property
    def b_channels(self) -> tuple[int, ...]:
        """The span's B-channels' timeslots."""
        return Switch.parse(self.switch).b_channels


def pri_spans(config: Any) -> list[PriSpan]:
    """The PRI spans of a site (appliance.config's SiteConfig, read by its attributes only): each span
    whose signalling is ``pri_cpe`` or ``pri_net``, with the DNIS of the first route by DNIS, else
    :data:`DEFAULT_DNIS` (a route by the span's name takes any)."""
    out = []
    for i, s in enumerate(getattr(config, "spans", ())):
        side = FAR_SIDE.get(s.signalling)
        if side is None:
            continue
        switch = getattr(s, "switchtype", None) or DEFAULT_SWITCH[s.kind]
        dnis = next((r.dnis for r in getattr(config, "routes", ()) if r.dnis), DEFAULT_DNIS)
        out.append(PriSpan(i, s.name, s.kind, side, str(switch), dnis))   # type: ignore[arg-type]
    return out


class _SpanEnd:
    """The far end of one PRI span: a data link on its far-side D-channel, the call control over it."""

    def __init__(self, span: PriSpan, far: Any, clock: Clock, sink: Callable[[PriEvent], None]) -> None:
        self.span = span
        self.far = far
        index = span.index
        self.link = DataLink(Side(span.side), lambda octets: far.send_frame(index, octets), _no_sink, clock,
                             name=f"far-{span.name}")
        # The far exchange takes the appliance's numbers as they come (en bloc): no overlap receiving.
        self.control = CallControl(self.link, sink, switch=span.switch, name=span.name, overlap=False)

    def receive(self) -> int:
        """The frames the far end received since the last call, to the data link; returns how many."""
        frames = self.far.frames(self.span.index)
        for f in frames:
            self.link.receive(f)
        return len(frames)


def _no_sink(event: Any) -> None:
    """The data link's sink until the call control takes it over (it does at once)."""


class PriExchange:
    """The far exchange of the site's PRI spans (see the module's description).

    `far`: the card's far side (drivers.sim.FarSide); `channels`: the card channel of each
    (span index, timeslot); `sink`: where each span's call control reports (e1t1.isdn.events);
    `start_ms`: the engine clock when the world begins.
    """

    def __init__(self, spans: Iterable[PriSpan], far: Any, channels: Mapping[tuple[int, int], int],
                 sink: Callable[[PriEvent], None], start_ms: int = 0) -> None:
        self.clock = Clock(start_ms)
        self.far = far
        self.spans = {s.name: s for s in spans}
        self._channels = dict(channels)
        self.ends = {name: _SpanEnd(s, far, self.clock, sink) for name, s in self.spans.items()}
        self.order = list(self.ends)            # the spans in the site's order (hunting a group)
        self.frames_in = 0

    def start(self) -> None:
        """Bring every span's D-channel up (the appliance does the same from its end)."""
        for end in self.ends.values():
            end.control.start()

    def advance(self, now_ms: int) -> None:
        """The exchange's clock to `now_ms` (never back), its timers due by then run."""
        if now_ms > self.clock.now_ms:
            self.clock.advance(now_ms)

    def receive(self, now_ms: int) -> None:
        """At `now_ms` (a period's end): the frames each span's far end received in the period."""
        self.advance(now_ms)
        waiting = self.far.frames_waiting()
        if waiting:
            for end in self.ends.values():
                if waiting >> end.span.index & 1:
                    self.frames_in += end.receive()

    def control(self, span: str) -> CallControl:
        """The call control of span `span` (its name)."""
        return self.ends[span].control

    def channel(self, span: str, timeslot: int) -> int:
        """The card channel of `timeslot` on span `span`: where its B-channel's audio goes and comes."""
        return self._channels[(self.spans[span].index, timeslot)]

    def can_place(self, span: str) -> bool:
        """A call can be placed on `span` now: its D-channel up, no alarm, a B-channel free."""
        return self.ends[span].control.ready

    def hunt(self) -> str | None:
        """The first span (in the site's order) a call can be placed on now, or None."""
        return next((name for name in self.order if self.ends[name].control.ready), None)

    def place(self, span: str, *, ani: str | None, dnis: str, ani_ton: str = "national", ani_npi: str = "isdn",
              ani_pres: str = "allowed") -> Call:
        """SETUP on `span`, en bloc (Sending Complete), a B-channel hunted by the span's side; the call's
        reports go to the sink, a call that cannot be placed is reported released at once."""
        return self.ends[span].control.place(ani=ani, dnis=dnis, ani_ton=ani_ton, ani_npi=ani_npi,
                                             ani_pres=ani_pres)

    def status(self) -> dict[str, dict[str, Any]]:
        """Each span's call control status (side, switch, dchan, calls, B-channels)."""
        return {name: end.control.status() for name, end in self.ends.items()}
