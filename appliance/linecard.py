"""A card and the media tier wired together, as the control tier sees them.

One object per card: it opens the backend by name, attaches it to the C
media tier, serves the sim card's far-end socket, and offers line commands
(ring with the zone's cadence, battery, polarity, hook, flash) next to the
media ones. In virtual mode the caller steps it; in realtime mode the media
thread runs in C and the caller only queues commands and takes events.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import drivers
from drivers.base import Card, CardDescription
from drivers.errors import FarEndError
from drivers.farend import FarEndServer, FarPeer
from drivers.hal import FAR_ERROR_TEXT, CmdOp, EventType
from dsp import scheduler as dsp_sched
from dsp.scheduler import Event, Scheduler

# Counter slot -> event kind name, for the per-kind drop counters.
_SLOT_NAMES = {dsp_sched.kind_slot(int(k)): k.name for k in EventType}

log = logging.getLogger("cicbox.sched")


class LineCard:
    """The card named `backend` with the described ports and spans, and its media tier."""

    def __init__(self, backend: str, desc: CardDescription, zone: str = "cn",
                 far_socket: Path | None = None, period_ticks: int = 20, ev_octets: int = 0) -> None:
        self.desc = desc
        self.zone = zone
        dsp_sched.zone_id(zone)  # an unknown zone fails here, before any card is opened
        self.card: Card = drivers.open_card(backend, desc)
        self.sched = Scheduler(len(self.card.channels), desc.law, period_ticks=period_ticks, ev_octets=ev_octets)
        self.sched.attach_card(self.card.handle)
        self.far_server: FarEndServer | None = None
        self._peer_channels: list[int] = []
        self._attach_buf: Any = None
        if far_socket is not None and "far_end" in self.card.capabilities:
            self.far_server = FarEndServer(str(far_socket), desc)
        self.realtime_flags = 0

    # -- clock -------------------------------------------------------------

    def step(self, ticks: int) -> list[Event]:
        """Virtual clock: run `ticks` ticks, then return the events they produced."""
        self.sched.step(ticks)
        return self.events()

    @property
    def tick(self) -> int:
        return self.sched.tick

    def start_realtime(self, fifo_priority: int = 50) -> int:
        """Start the media thread on the realtime clock; logs what the OS allowed."""
        flags = self.sched.start(fifo_priority)
        self.realtime_flags = flags
        fifo = bool(flags & 2)
        locked = bool(flags & 4)
        if not fifo:
            log.warning("media thread runs without SCHED_FIFO (not permitted here): ticks may be late under load")
        if not locked:
            log.warning("memory not locked (mlockall not permitted here): page faults may delay ticks")
        log.info("media thread started (SCHED_FIFO %s, memory locked %s, ISA %s)",
                 "yes" if fifo else "no", "yes" if locked else "no", dsp_sched.isa())
        return flags

    def stop_realtime(self) -> None:
        self.sched.stop()

    # -- events ------------------------------------------------------------

    def events(self) -> list[Event]:
        """Take every waiting event; far-end refusals are logged with their reason."""
        evs = self.sched.events()
        for ev in evs:
            if ev.type == EventType.FAR_ERROR:
                text = FAR_ERROR_TEXT.get(ev.value, f"reason {ev.value}")
                log.warning("far-end peer refused at tick %d: %s (detail %d); connection closed",
                            ev.tick, text, ev.extra)
            elif ev.type == EventType.FAR_DOWN:
                if self.far_server is not None:
                    self.far_server.release(self._peer_channels)
                log.info("far-end peer detached from channels %s", self._peer_channels)
                self._peer_channels = []
                self._attach_buf = None
            elif ev.type == EventType.MEDIA_ERROR:
                log.warning("command %#x on channel %d refused (status %d)", ev.value, ev.chan, ev.extra)
        return evs

    # -- far end -----------------------------------------------------------

    def accept_far_peer(self, timeout: float | None = 0.0) -> FarPeer | None:
        """Accept a far-end peer on the socket, if one is connecting, and hand it to the card.

        The card takes it over at the start of the next block. One peer at a time.
        """
        if self.far_server is None:
            raise FarEndError("this card has no far-end socket")
        if self._peer_channels:
            return None
        peer = self.far_server.accept(self.tick, timeout)
        if peer is None:
            return None
        chans = self.media_ffi_channels(peer.channels)
        self._peer_channels = list(peer.channels)
        self._attach_buf = chans
        self.sched.send(CmdOp.FAR_ATTACH, 0, peer.detach_fd(), len(peer.channels), ptr=chans)
        return peer

    @staticmethod
    def media_ffi_channels(channels: list[int]) -> Any:
        return dsp_sched.ffi.new("uint16_t[]", channels)

    # -- line levels and counters ---------------------------------------------

    def line_levels(self) -> bytes | None:
        """The analog ports' current LineLevel bits (one octet per port), or None if the card
        cannot read them. Safe while the media thread runs."""
        if "line_levels" not in self.card.capabilities:
            return None
        return self.card.line_levels()

    def counters(self) -> dict[str, int]:
        """The media tier's and the card's counters that say something was lost or refused."""
        m = self.sched.stats()
        out = {name: m[name] for name in ("events_dropped", "card_events_dropped", "commands_failed", "card_errors")}
        out.update({name: v for name, v in self.card.stats().items() if name.startswith("far_")})
        return out

    def dropped_by_kind(self) -> dict[str, int]:
        """The events lost to a full event ring, per kind: {"events_dropped.HOOK_ON": n}."""
        return {f"events_dropped.{_SLOT_NAMES.get(slot, f'slot{slot}')}": n
                for slot, n in self.sched.dropped_by_kind().items()}

    # -- line commands -------------------------------------------------------

    def ring(self, chan: int, cadence: tuple[int, int, int, int] | None = None) -> None:
        """Ring the phone on FXS port `chan` with the zone's cadence (or the one given, ms)."""
        on1, off1, on2, off2 = cadence or dsp_sched.ring_cadence(self.zone)
        self.sched.send(CmdOp.RING, chan, on1, off1, on2, off2)

    def ring_stop(self, chan: int) -> None:
        self.sched.send(CmdOp.RING_STOP, chan)

    def battery(self, chan: int, on: bool) -> None:
        """Feed (or remove: open loop) battery on FXS port `chan`."""
        self.sched.send(CmdOp.BATTERY, chan, int(on))

    def polarity(self, chan: int, reversed_: bool) -> None:
        self.sched.send(CmdOp.POLARITY, chan, int(reversed_))

    def hook(self, chan: int, off_hook: bool) -> None:
        """Seize/answer (True) or release (False) FXO trunk `chan`."""
        self.sched.send(CmdOp.HOOK, chan, int(off_hook))

    def flash(self, chan: int, ms: int = 750) -> None:
        """Hook flash on FXO trunk `chan` (DAHDI's default is 750 ms)."""
        self.sched.send(CmdOp.FLASH, chan, ms)

    def close(self) -> None:
        self.sched.stop()
        self.card.close()
        if self.far_server is not None:
            self.far_server.close()
