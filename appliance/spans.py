"""The engine's E1/T1 spans: their configuration as the card takes it, their alarms, the sync source,
``span.status`` and the far-side faults of ``span.fault`` (docs/control-socket.md).

The framer (in the card) reports each change of a span's alarm bits as a CB_EV_ALARM event on the
span's first timeslot channel; :meth:`Spans.alarm` logs the change, hands the bits to the sync
source policy (e1t1.span) and applies the change of clock source it asks for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, get_args

from appliance.config import SiteConfig
from drivers.base import (
    ALARM_STATE_BITS,
    Card,
    SpanConfig,
    SpanCounters,
    SpanFault,
    SpanStatus,
    alarm_names,
    detail_names,
)
from drivers.errors import DriverError
from drivers.hal import Status
from e1t1.clock import Clock, Timer
from e1t1.span import SyncPolicy

log = logging.getLogger("cicbox.spans")

#: span.fault's faults (drivers.base.SpanFault)
FAULTS: tuple[str, ...] = get_args(SpanFault)
#: a fault's `ms` at most (a day of engine clock)
MAX_FAULT_MS = 86_400_000


class SpanFaultError(ValueError):
    """A span.fault request that cannot be carried out (nothing was changed)."""


def span_configs(cfg: SiteConfig) -> tuple[SpanConfig, ...]:
    """Each configured span as the card takes it: framing, coding, CRC-4, TS16's role, timing."""
    return tuple(SpanConfig(s.kind, s.line_framing, s.line_coding, s.line_crc4, s.ts16,  # type: ignore[arg-type]
                            s.timing_at(i))
                 for i, s in enumerate(cfg.spans))


class Spans:
    """The configured spans on `card` (channel numbering as the card's: ports, then each span's timeslots)."""

    def __init__(self, cfg: SiteConfig, card: Card, clock: Clock) -> None:
        self.card = card
        self.clock = clock
        self.names = [s.name for s in cfg.spans]
        self.configs = span_configs(cfg)
        self.has_status = "spans" in card.capabilities
        # CB_EV_ALARM names the span by its first timeslot's channel
        self.first_channel = {c.index: c.span for c in card.channels
                              if c.kind == "ts" and c.timeslot == 1 and c.span is not None}
        self.policy = SyncPolicy([c.timing for c in self.configs])
        self.bits = [0] * len(self.names)
        self._clear_timers: dict[int, Timer] = {}
        # span.status's "pri" of span i (the engine's PRI spans: appliance.pri), None for a span without PRI
        self.pri_status: Callable[[int], dict[str, Any] | None] = lambda i: None
        if self.names and self.has_status:
            for i in range(len(self.names)):
                self.bits[i] = self.card.span_status(i).alarm_bits
                self.policy.update(i, self.bits[i])
            self._apply(self.policy.source)

    def _apply(self, source: int | None) -> None:
        try:
            self.card.set_sync_source(source)
        except DriverError as exc:
            log.error("clock source %s not taken by the card: %s", self._source_name(source), exc)
            return
        log.info("clock source: %s", self._source_name(source))

    def _source_name(self, source: int | None) -> str:
        return "internal" if source is None else self.names[source]

    def is_alarm_channel(self, chan: int) -> bool:
        return chan in self.first_channel

    def alarm(self, chan: int, bits: int) -> int | None:
        """A CB_EV_ALARM of the span whose first timeslot is channel `chan`: its alarm bits are now `bits`.
        Returns the span's index (None for a channel that starts no span)."""
        span = self.first_channel.get(chan)
        if span is None:
            log.warning("alarm event on channel %d, which starts no span: ignored", chan)
            return None
        old, self.bits[span] = self.bits[span], bits
        if old != bits:
            states, detail = alarm_names(bits), detail_names(bits)
            level = logging.WARNING if bits & (ALARM_STATE_BITS["red"] | ALARM_STATE_BITS["blue"]) else logging.INFO
            log.log(level, "span %s: alarms %s (was %s)%s", self.names[span], ", ".join(states) or "none",
                    ", ".join(alarm_names(old)) or "none", f"; defects {', '.join(detail)}" if detail else "")
        change = self.policy.update(span, bits)
        if change is not None:
            self._apply(change.source)
        return span

    @property
    def sync_source(self) -> int | None:
        """The span the card's clock comes from (the card's word, where it says), or None: internal."""
        if not self.names:
            return None
        said = getattr(self.card, "sync_source", self.policy.source)
        if said is None or (isinstance(said, int) and 0 <= said < len(self.names)):
            return said
        return self.policy.source

    # -- span.status -----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``span status --json``: each span's configuration, alarms and counters, and the sync source."""
        source = self.sync_source
        return {"tick_ms": self.clock.now_ms, "sync_source": self._source_name(source),
                "spans": self.rows()}

    def rows(self) -> list[dict[str, Any]]:
        far_status: Callable[[int], SpanStatus] | None = getattr(self.card, "far_span_status", None)
        out = []
        for i, (name, c) in enumerate(zip(self.names, self.configs, strict=True)):
            st = self.card.span_status(i) if self.has_status else SpanStatus(self.bits[i], False, False,
                                                                            SpanCounters())
            far = None
            if far_status is not None:
                fs = far_status(i)
                far = {"alarms": list(fs.alarms), "counters": asdict(fs.counters)}
            out.append({"name": name, "kind": c.kind, "framing": c.framing, "coding": c.coding, "crc4": c.crc4,
                        "ts16": c.ts16, "timing": c.timing, "alarm_bits": st.alarm_bits,
                        "alarms": list(st.alarms), "detail": list(st.detail), "sending_rai": st.sending_rai,
                        "counters": asdict(st.counters),
                        "dchan": None if st.dchan is None else asdict(st.dchan),
                        "pri": self.pri_status(i), "far": far})
        return out

    # -- span.fault ------------------------------------------------------------------

    def fault(self, name: object, fault: object, ms: object) -> dict[str, Any]:
        """What span `name`'s far end does to the line from the next block on (sim card): `fault` one of
        FAULTS; with `ms`, "clear" again after that much engine clock. SpanFaultError, nothing changed,
        for an unknown span or fault, a bad `ms`, a card without far-side faults or a fault it refuses."""
        if not isinstance(name, str) or name not in self.names:
            raise SpanFaultError(f"span must be a configured span's name ({', '.join(self.names) or 'none'}), "
                                 f"not {name!r}")
        if not isinstance(fault, str) or fault not in FAULTS:
            raise SpanFaultError(f"fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        if ms is not None and (not isinstance(ms, int) or isinstance(ms, bool) or not 0 < ms <= MAX_FAULT_MS):
            raise SpanFaultError(f"ms must be null (until cleared) or a number of ms 1-{MAX_FAULT_MS}, not {ms!r}")
        inject: Callable[[int, str], None] | None = getattr(self.card, "span_fault", None)
        if inject is None:
            raise SpanFaultError(f"the {self.card.name} card has no far side to fault")
        span = self.names.index(name)
        try:
            inject(span, fault)
        except DriverError as exc:
            if fault == "rai" and exc.error_code == Status.STATE:
                raise SpanFaultError(f"span {name} is held by a sim.sock peer: the peer makes its far end's "
                                     "signal, so rai cannot be injected here (send it from the peer)") from None
            raise SpanFaultError(f"span {name}: {exc}") from None
        pending = self._clear_timers.pop(span, None)
        if pending is not None:
            pending.cancel()            # the new fault replaces the old one, and its end
        clears_at = None
        if ms is not None and fault != "clear":
            clears_at = self.clock.now_ms + ms
            self._clear_timers[span] = self.clock.call_later(ms, lambda: self._clear(span))
        log.warning("span %s: far-side fault %s%s", name, fault, "" if ms is None else f" for {ms} ms")
        return {"span": name, "fault": fault, "clears_at_ms": clears_at}

    def _clear(self, span: int) -> None:
        self._clear_timers.pop(span, None)
        inject: Callable[[int, str], None] = getattr(self.card, "span_fault")  # noqa: B009 (sim card only)
        try:
            inject(span, "clear")
        except DriverError as exc:
            log.error("span %s: far-side fault not cleared: %s", self.names[span], exc)
            return
        log.warning("span %s: far-side fault cleared (its time ran out)", self.names[span])
