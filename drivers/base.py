"""The card abstraction every backend implements.

A card is described by its analog ports and digital spans; it numbers its
channels ports first, then each span's timeslots. The media tier drives the
card through the C HAL head (``Card.handle``), never through Python on the
1 ms path. Backends subclass :class:`Card` and call ``super().__init__`` last,
once their C card exists.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Literal

from drivers.errors import DriverInitError, NotSupportedError

PortKind = Literal["fxo", "fxs"]
SpanKind = Literal["e1", "t1"]
ChannelKind = Literal["fxo", "fxs", "ts"]
Law = Literal["alaw", "ulaw"]
Clock = Literal["virtual", "realtime"]

SPAN_TIMESLOTS: dict[SpanKind, int] = {"e1": 31, "t1": 24}

Framing = Literal["ccs", "cas", "esf", "d4"]
Coding = Literal["hdb3", "ami", "b8zs"]
Ts16Role = Literal["clear", "dchan", "cas"]
SpanFault = Literal["cut", "los", "ais", "rai", "clear"]

#: alarm state bits (cb_span_alarm), by name, as `span status` shows them
ALARM_STATE_BITS: dict[str, int] = {"recover": 1, "yellow": 4, "red": 8, "blue": 16}
#: the defects behind them
ALARM_DETAIL_BITS: dict[str, int] = {"los": 1 << 8, "lfa": 1 << 9, "lmfa": 1 << 10}


def alarm_names(bits: int) -> tuple[str, ...]:
    """The alarm states set in `bits`: "red", "yellow", "blue", "recover" (in that order)."""
    return tuple(n for n in ("red", "yellow", "blue", "recover") if bits & ALARM_STATE_BITS[n])


def detail_names(bits: int) -> tuple[str, ...]:
    """The defects set in `bits`: "los", "lfa", "lmfa"."""
    return tuple(n for n, b in ALARM_DETAIL_BITS.items() if bits & b)


@dataclass(frozen=True)
class SpanConfig:
    """How one span is framed, coded and clocked (the card's view of a configured span).

    :param framing: E1 "ccs" (common channel: TS16 clear or a D-channel) or "cas" (TS16 carries
        the CAS multiframe); T1 "esf" or "d4".
    :param ts16: the role of E1 TS16 ("clear", "dchan", "cas"); on T1 "dchan" is TS24.
    :param timing: clock priority, 1 first; 0 never a clock source.
    """

    kind: SpanKind = "e1"
    framing: Framing = "ccs"
    coding: Coding = "hdb3"
    crc4: bool = True
    ts16: Ts16Role = "clear"
    timing: int = 0

    @staticmethod
    def default(kind: SpanKind, timing: int = 0) -> SpanConfig:
        """The framing a span of `kind` has when nothing else is said."""
        if kind == "t1":
            return SpanConfig("t1", "esf", "b8zs", False, "clear", timing)
        return SpanConfig("e1", "ccs", "hdb3", True, "clear", timing)

    def bearers(self) -> tuple[int, ...]:
        """The timeslots (1-based) that carry audio: all but a D-channel or CAS timeslot."""
        n = SPAN_TIMESLOTS[self.kind]
        signalling = 24 if self.kind == "t1" else 16
        return tuple(t for t in range(1, n + 1) if self.ts16 == "clear" or t != signalling)


@dataclass(frozen=True)
class SpanCounters:
    """A span's cumulative error counters (cb_span_counters_t)."""

    bpv: int = 0
    crc: int = 0
    ebit: int = 0
    fas: int = 0
    slips: int = 0
    es: int = 0
    ses: int = 0


@dataclass(frozen=True)
class DchanStats:
    """A D-channel's HDLC counters (cb_dchan_stats_t)."""

    frames_rx: int = 0
    frames_tx: int = 0
    bad_fcs: int = 0
    aborts: int = 0
    too_long: int = 0       # frames dropped: longer than the largest payload before the FCS
    rx_dropped: int = 0     # good frames dropped: the receive queue was full


@dataclass(frozen=True)
class SpanStatus:
    """A span's alarms and counters as the card reads them now."""

    alarm_bits: int
    sending_rai: bool
    sync: bool
    counters: SpanCounters
    dchan: DchanStats | None = None

    @property
    def alarms(self) -> tuple[str, ...]:
        """The alarm states set: "red", "yellow", "blue", "recover" (in that order)."""
        return alarm_names(self.alarm_bits)

    @property
    def detail(self) -> tuple[str, ...]:
        """The defects behind them: "los", "lfa", "lmfa"."""
        return detail_names(self.alarm_bits)


@dataclass(frozen=True)
class CardDescription:
    """What a card carries and how it is clocked.

    :param ports: analog ports in order: "fxo" (a trunk: an exchange on the far
        side) or "fxs" (a phone port: a phone on the far side).
    :param spans: digital spans in order, "e1" (31 timeslots) or "t1" (24).
    :param law: the line law; its idle octet is what an idle channel carries.
    :param k: ticks (1 ms each) per block exchanged with the card, 1-10.
    :param clock: "virtual" (stepped by the caller) or "realtime".
    :param span_configs: each span's framing, coding and timing (empty: :meth:`SpanConfig.default`
        for each kind, timing by position).
    """

    ports: tuple[PortKind, ...] = ()
    spans: tuple[SpanKind, ...] = ()
    law: Law = "alaw"
    k: int = 1
    clock: Clock = "virtual"
    span_configs: tuple[SpanConfig, ...] = ()

    def span_config(self, span: int) -> SpanConfig:
        """The framing of span `span` (0-based)."""
        if self.span_configs:
            return self.span_configs[span]
        return SpanConfig.default(self.spans[span], span + 1)

    def __post_init__(self) -> None:
        for i, p in enumerate(self.ports):
            if p not in ("fxo", "fxs"):
                raise DriverInitError(f"port {i}: kind must be 'fxo' or 'fxs', not {p!r}")
        for i, s in enumerate(self.spans):
            if s not in SPAN_TIMESLOTS:
                raise DriverInitError(f"span {i}: kind must be 'e1' or 't1', not {s!r}")
        if self.law not in ("alaw", "ulaw"):
            raise DriverInitError(f"law must be 'alaw' or 'ulaw', not {self.law!r}")
        if not isinstance(self.k, int) or not 1 <= self.k <= 10:
            raise DriverInitError(f"k (ticks per block) must be 1-10, not {self.k!r}")
        if self.clock not in ("virtual", "realtime"):
            raise DriverInitError(f"clock must be 'virtual' or 'realtime', not {self.clock!r}")
        if self.span_configs and [c.kind for c in self.span_configs] != list(self.spans):
            raise DriverInitError("span_configs must give one configuration per span, of its kind")
        if not self.ports and not self.spans:
            raise DriverInitError("a card needs at least one port or span")

    def channels(self) -> list[ChannelInfo]:
        """The channels this description gives, in the card's numbering."""
        out = [ChannelInfo(i, kind, port=i) for i, kind in enumerate(self.ports)]
        for si, span in enumerate(self.spans):
            for ts in range(SPAN_TIMESLOTS[span]):
                out.append(ChannelInfo(len(out), "ts", span=si, timeslot=ts + 1))
        return out


class LineLevel(enum.IntFlag):
    """One analog port's current line state, as :meth:`Card.line_levels` reads it."""

    #: FXS: the phone is off hook as the card reports it (a hook flash stays off hook; on hook
    #: only once the flash window has passed). FXO: our side is off hook (seized or answered).
    HOOK_OFF = 1
    #: FXS: we ring the phone (its cadence is running). FXO: ring voltage from the exchange, now.
    RINGING = 2
    #: FXS: we feed battery. FXO: the exchange's battery is present.
    BATTERY = 4
    #: polarity reversed
    POLARITY = 8


@dataclass(frozen=True)
class ChannelInfo:
    """One channel of a card: an analog port, or a timeslot (1-based) of a span."""

    index: int
    kind: ChannelKind
    port: int | None = None
    span: int | None = None
    timeslot: int | None = None


class Card(abc.ABC):
    """A card backend. Required: ``handle``; optional features are in ``capabilities``."""

    #: the registry name of the backend
    name: str = ""
    #: optional features, e.g. {"far_end", "line_levels"}; code checks these rather than catching errors
    capabilities: frozenset[str] = frozenset()

    @abc.abstractmethod
    def __init__(self, desc: CardDescription) -> None:
        self.description = desc
        self.channels = desc.channels()
        self._closed = False

    @property
    @abc.abstractmethod
    def handle(self) -> int:
        """Address of the card's C HAL head (cb_card_t *), for the media tier."""

    def line_levels(self) -> bytes:
        """Capability "line_levels": the current :class:`LineLevel` bits of each analog port, one
        octet per port in port order, read now (a backend's events say when they changed; these
        say what they are). May be read while the media thread runs.

        Raises NotSupportedError on a backend without the capability.
        """
        raise NotSupportedError(f"the {self.name or type(self).__name__} card cannot read line levels")


    def span_status(self, span: int) -> SpanStatus:
        """Capability "spans": span `span`'s (0-based) alarms and counters, read now.

        Raises NotSupportedError on a backend without the capability.
        """
        raise NotSupportedError(f"the {self.name} card has no span status")

    def set_sync_source(self, span: int | None) -> None:
        """Capability "spans": take the card's clock from span `span` (None: the internal clock).

        Raises NotSupportedError on a backend without the capability.
        """
        raise NotSupportedError(f"the {self.name} card cannot take its clock from a span")
    def stats(self) -> dict[str, int]:
        """The card's counters by name (cumulative since it opened); empty if it keeps none."""
        return {}

    def close(self) -> None:
        """Release the card. Idempotent."""
        if not self._closed:
            self._closed = True
            self._close()

    @abc.abstractmethod
    def _close(self) -> None:
        """Backend hook of :meth:`close`."""

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Card:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
