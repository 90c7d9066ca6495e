"""The near end of PRI spans for the world's tests: a sim card with framed spans and, on each span's
D-channel, our own Q.921 and Q.931 (the appliance's side, user or network), stepped in virtual time
with a World on the card's far side, as the engine steps it. It stands in for the engine's PRI part
(appliance/engine.py's, another part of the work): the world's far exchange is tested against our
stack's other side here, and against the engine where the engine answers PRI calls.

:class:`Near` offers what the world takes from an engine (``far_side``, ``desc``, ``period_ms``), runs
periods as the engine does (the world's before_period, the card's block, the frames to each link at
their ticks, the world's after_period), keeps each span's reports (``reports``) and the DTMF the media
tier heard (``digits``), and answers offered calls after `answer_ms` (None: never), or rejects them
(``reject``, a cause), as a site's routes would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from appliance.linecard import LineCard
from appliance.world import World
from drivers.base import CardDescription, SpanConfig, SpanFault
from drivers.hal import CmdOp, EventType
from drivers.sim import SimCard
from e1t1.clock import Clock
from e1t1.isdn.call import CallControl
from e1t1.isdn.events import CallAnswered, CallOffered, CallReleased, PriEvent
from e1t1.isdn.q921 import DataLink, Side

DCHAN_TS = {"e1": 16, "t1": 24}
SWITCH = {"e1": "euroisdn", "t1": "national"}
LAW = {"e1": "alaw", "t1": "ulaw"}


def span_config(kind: str, timing: int = 1) -> SpanConfig:
    """A PRI span as the card takes it: CRC-4 E1 (HDB3) or ESF T1 (B8ZS), TS16 / TS24 the D-channel."""
    if kind == "e1":
        return SpanConfig("e1", "ccs", "hdb3", True, "dchan", timing)
    return SpanConfig("t1", "esf", "b8zs", False, "dchan", timing)


class Near:
    """Our side of `kinds` PRI spans named span1, span2... (`side`: ``user`` for a pri_cpe site,
    ``network`` for pri_net), with `ports` analog ports before them, and `world` on the far side."""

    def __init__(self, world: World, kinds: Sequence[str] = ("e1",), side: str = "user", *,
                 ports: Sequence[str] = (), k: int = 5, period: int = 10, answer_ms: int | None = 0) -> None:
        law = LAW[kinds[0]]
        self.desc = CardDescription(ports=tuple(ports), spans=tuple(kinds),  # type: ignore[arg-type]
                                    span_configs=tuple(span_config(kd, i + 1) for i, kd in enumerate(kinds)),
                                    law=law, k=k)  # type: ignore[arg-type]
        self.period_ms = period
        self.lc = LineCard("sim", self.desc, period_ticks=period)
        self.clock = Clock(self.lc.tick)
        self.answer_ms = answer_ms
        self.reject: int | None = None
        self.reports: dict[str, list[PriEvent]] = {}
        self.digits: dict[int, str] = {}        # card channel -> DTMF heard on it
        self.names = [f"span{i + 1}" for i in range(len(kinds))]
        chans = self.lc.card.channels
        self.channel_of = {(c.span, c.timeslot): c.index for c in chans if c.span is not None}
        self.dchan = {self.channel_of[(i, DCHAN_TS[kd])]: i for i, kd in enumerate(kinds)}
        self.links: list[DataLink] = []
        self.controls: list[CallControl] = []
        for i, kd in enumerate(kinds):
            name = self.names[i]
            self.reports[name] = []
            link = DataLink(Side(side), self._sender(i, kd), lambda ev: None, self.clock, name=name)
            self.links.append(link)
            self.controls.append(CallControl(link, self._sink(i), switch=SWITCH[kd], name=name))
        self.world = world
        world.attach(self)
        for cc in self.controls:
            cc.start()

    # -- what the world takes from an engine -------------------------------------------------------

    @property
    def far_side(self) -> Any:
        return self.lc.far_side

    # -- the spans -----------------------------------------------------------------------------------

    def _sender(self, span: int, kind: str) -> Callable[[bytes], None]:
        chan = self.channel_of[(span, DCHAN_TS[kind])]
        return lambda octets: self.lc.sched.send(CmdOp.FRAME, chan, payload=octets)

    def _sink(self, span: int) -> Callable[[PriEvent], None]:
        def sink(ev: PriEvent) -> None:
            self.reports[ev.span].append(ev)
            if isinstance(ev, CallOffered):
                chan = self.channel(span, ev.chan) if ev.chan is not None else None
                if chan is not None:
                    self.lc.detect_dtmf(chan)
                if self.reject is not None:
                    ev.call.reject(self.reject)
                elif self.answer_ms == 0:
                    ev.call.answer()
                elif self.answer_ms is not None:
                    ev.call.accept()
                    call = ev.call
                    self.clock.call_later(self.answer_ms, lambda: call.answer() if call.state.value else None)
            elif isinstance(ev, CallAnswered) and ev.chan is not None:
                self.lc.tone(self.channel(span, ev.chan), "cn", "ringback")   # something for the far end to hear
            elif isinstance(ev, CallReleased) and ev.chan is not None:
                chan = self.channel(span, ev.chan)
                self.lc.detect_dtmf(chan, False)
                self.lc.silence(chan)
        return sink

    def fault(self, span: int, fault: SpanFault) -> None:
        """What span `span`'s line does from the next block on (the sim card's far-end faults)."""
        card = self.lc.card
        assert isinstance(card, SimCard)
        card.span_fault(span, fault)

    def channel(self, span: int, timeslot: int) -> int:
        return self.channel_of[(span, timeslot)]

    def of(self, name: str, cls: type[Any]) -> list[Any]:
        """Span `name`'s reports of class `cls`, in order."""
        return [e for e in self.reports[name] if isinstance(e, cls)]

    # -- the clock ---------------------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.lc.tick

    def step(self) -> None:
        """One control period, as the engine runs it."""
        self.world.before_period(self.clock.now_ms, self.period_ms)
        for ev in sorted(self.lc.step(self.period_ms), key=lambda e: (e.tick, e.chan)):
            self.clock.advance(max(self.clock.now_ms, ev.tick))
            if ev.type == EventType.FRAME and ev.chan in self.dchan:
                self.links[self.dchan[ev.chan]].receive(ev.payload)
            elif ev.type == EventType.DTMF:
                self.digits[ev.chan] = self.digits.get(ev.chan, "") + chr(ev.value)
        self.clock.advance(self.lc.tick)
        self.world.after_period(self.clock.now_ms)

    def run(self, ms: int) -> None:
        end = self.now + ms
        while self.now < end:
            self.step()

    def until(self, cond: Callable[[], bool], within_ms: int, what: str = "the condition") -> None:
        end = self.now + within_ms
        while not cond():
            if self.now >= end:
                raise AssertionError(f"{what} not met within {within_ms} ms (at {self.now} ms)")
            self.step()

    def close(self) -> None:
        self.lc.close()
