"""A card and the media tier wired together, as the control tier sees them.

One object per card: it opens the backend by name, attaches it to the C
media tier, serves the sim card's far-end socket, and offers line commands
(ring with the zone's cadence, battery, polarity, hook, flash) next to the
media ones. It is the analog line machines' line port (e1t1.analog.port.LinePort):
their card and per-channel media commands. In virtual mode the caller steps it; in realtime mode the media
thread runs in C and the caller only queues commands and takes events.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import drivers
from drivers.base import Card, CardDescription
from drivers.errors import FarEndError
from drivers.farend import FarEndServer, FarPeer
from drivers.hal import FAR_ERROR_TEXT, CmdOp, EventType, FarError
from dsp import scheduler as dsp_sched
from dsp.errors import DspError
from dsp.scheduler import Event, Scheduler
from e1t1.analog.callerid import FskFrame

if TYPE_CHECKING:
    from drivers.sim import FarSide

# Counter slot -> event kind name, for the per-kind drop counters.
_SLOT_NAMES = {dsp_sched.kind_slot(int(k)): k.name for k in EventType}

log = logging.getLogger("cicbox.media")

_FAR_DROPS = frozenset({FarError.TIMEOUT, FarError.LATE_RUN, FarError.STALLED})
# The card's far_* counters that count no loss (peers attached, ever and now): not loss counters.
_FAR_NOT_LOSSES = frozenset({"far_attached", "far_peers"})
# The card's reasons a peer went that far_refused does not count: it left, or was dropped (far_dropped).
_FAR_NOT_REFUSALS = frozenset({"OK", "TIMEOUT", "LATE_RUN", "STALLED"})


class LineCard:
    """The card named `backend` with the described ports and spans, and its media tier."""

    def __init__(self, backend: str, desc: CardDescription, zone: str = "cn",
                 far_socket: Path | None = None, period_ticks: int = 20, ev_octets: int = 0,
                 span_names: tuple[str, ...] | None = None) -> None:
        self.desc = desc
        self.zone = zone
        dsp_sched.zone_id(zone)  # an unknown zone fails here, before any card is opened
        self.card: Card = drivers.open_card(backend, desc)
        self.sched = Scheduler(len(self.card.channels), desc.law, period_ticks=period_ticks, ev_octets=ev_octets)
        self.sched.attach_card(self.card.handle)
        self.far_server: FarEndServer | None = None
        self._peers: dict[int, tuple[list[int], Any]] = {}   # first channel -> (claim, attach buffer)
        if far_socket is not None and "far_end" in self.card.capabilities:
            self.far_server = FarEndServer(str(far_socket), desc, names=span_names)
        self.realtime_flags = 0
        # The sim card's counters read whole into one struct (loss_mark): its binding, the struct and
        # the offset of its first far_ counter (the ones before count no loss).
        self._loss_reading: tuple[Any, Any, Any, int] | None = None
        if self._sim_card() is not None:
            from drivers.sim import ffi as sim_ffi
            from drivers.sim import lib as sim_lib

            fields = sim_ffi.typeof("cb_sim_stats_t").fields
            self._loss_reading = (sim_ffi, sim_lib, sim_ffi.new("cb_sim_stats_t *"),
                                  min(f.offset for name, f in fields if name.startswith("far_")))

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
        """Take every waiting event; far-end refusals and drops are logged with their reason."""
        evs = self.sched.events()
        for ev in evs:
            if ev.type == EventType.FAR_ERROR:
                text = FAR_ERROR_TEXT.get(ev.value, f"reason {ev.value}")
                what = "dropped" if ev.value in _FAR_DROPS else "refused"
                log.warning("far-end peer on channels %s %s at tick %d: %s (detail %d); connection closed",
                            self._claim_of(ev.chan), what, ev.tick, text, ev.extra)
            elif ev.type == EventType.FAR_DOWN:
                claim, _ = self._peers.pop(ev.chan, ([], None))
                if self.far_server is not None:
                    self.far_server.release(claim)
                log.info("far-end peer detached from channels %s%s", claim,
                         "" if ev.value else " (it left)")
            elif ev.type == EventType.FAR_LATE:
                log.debug("far-end peer on channels %s late at tick %d (%d late blocks)",
                          self._claim_of(ev.chan), ev.tick, ev.value)
            elif ev.type == EventType.MEDIA_ERROR and ev.value == CmdOp.FAR_ATTACH:
                claim, _ = self._peers.pop(ev.chan, ([], None))
                if self.far_server is not None:
                    self.far_server.release(claim)
                log.warning("far-end peer on channels %s not taken by the card (status %d); connection closed",
                            claim, ev.extra)
            elif ev.type == EventType.MEDIA_ERROR:
                log.warning("command %#x on channel %d refused (status %d)", ev.value, ev.chan, ev.extra)
        return evs

    # -- far end -----------------------------------------------------------

    def poll_far_peers(self) -> list[FarPeer]:
        """Advance the far-end handshakes and hand every accepted peer to the card.

        Realtime: never waits (a handshake spans as many control periods as it needs, up to
        the HELLO deadline). Virtual clock (lockstep): a peer that is connecting is finished
        now, the clock waiting for it at most the dead-peer limit; it joins at the next block.
        """
        if self.far_server is None:
            return []
        peers = self.far_server.poll(self.tick)
        for peer in peers:
            self._attach(peer)
        return peers

    def wait_far_peer(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` seconds of wall time for a first peer (a lockstep run's start)."""
        if self.far_server is None:
            raise FarEndError("this card has no far-end socket")
        peers = self.far_server.wait(self.tick, timeout_s)
        for peer in peers:
            self._attach(peer)
        return bool(peers)

    def accept_far_peer(self, timeout: float | None = 0.0) -> FarPeer | None:
        """One peer: waited for up to `timeout` seconds (None: 30), or only polled for (0)."""
        if self.far_server is None:
            raise FarEndError("this card has no far-end socket")
        if timeout == 0.0:
            peers = self.poll_far_peers()
        else:
            peers = self.far_server.wait(self.tick, 30.0 if timeout is None else timeout)
            for peer in peers:
                self._attach(peer)
        return peers[0] if peers else None

    def _attach(self, peer: FarPeer) -> None:
        """The card takes the peer over; its first block is the one at `peer.start_tick`."""
        claim = peer.card_claim()
        chans = dsp_sched.ffi.new("uint16_t[]", claim)
        first = peer.channels[0]
        self._peers[first] = (list(peer.channels), chans)
        lo, hi = peer.start_tick & 0xFFFFFFFF, peer.start_tick >> 32
        fd = peer.detach_fd()
        try:
            self.sched.send(CmdOp.FAR_ATTACH, first, fd, len(claim),
                            lo - (1 << 32) if lo >= 1 << 31 else lo, hi, ptr=chans)
        except DspError as exc:
            os.close(fd)
            del self._peers[first]
            if self.far_server is not None:
                self.far_server.release(peer.channels)
            log.warning("far-end peer on channels %s not handed to the card: %s", peer.channels, exc)

    def _claim_of(self, first: int) -> list[int]:
        return self._peers.get(first, ([first], None))[0]

    @property
    def far_peer_channels(self) -> dict[int, list[int]]:
        """The attached peers' claims, by first channel."""
        return {first: claim for first, (claim, _) in self._peers.items()}

    def _sim_card(self) -> Any:
        """The sim card (it has the far end's counters), or None (another backend, or closed)."""
        if "far_end" not in self.card.capabilities or self.card.closed:
            return None
        from drivers.sim import SimCard  # only a card with a far end loads the sim backend

        return self.card if isinstance(self.card, SimCard) else None

    @property
    def far_side(self) -> FarSide | None:
        """The card's far side in process (the sim card's: the phones and the exchange beyond
        its ports), for a simulated world; None when the card has none or is closed."""
        sim = self._sim_card()
        return None if sim is None else sim.far

    def far_stats(self) -> dict[str, Any]:
        """The far end's counters: the card's (lateness, drops, refusals by reason, losses) and the
        handshakes' (refusals by reason, pending), and each attached peer's own."""
        out: dict[str, Any] = {"far_peers": 0, "far_late": 0, "far_skipped": 0, "far_stalled": 0, "far_dropped": 0,
                               "far_refused": 0, "far_ev_dropped": 0, "far_sig_dropped": 0, "far_late_events": 0,
                               "far_refused_by": {},
                               "handshakes_pending": 0, "hello_refused_by": {}, "peers": []}
        sim = self._sim_card()
        if sim is not None:
            st = sim.stats()
            for name in ("far_peers", "far_late", "far_skipped", "far_stalled", "far_dropped", "far_refused",
                         "far_ev_dropped", "far_sig_dropped", "far_late_events"):
                out[name] = st[name]
            out["far_refused_by"] = {k: v for k, v in st["far_refused_by"].items() if v and k != "OK"}
            out["peers"] = sim.far_peers()
        if self.far_server is not None:
            out["handshakes_pending"] = self.far_server.pending
            out["hello_refused_by"] = dict(self.far_server.refused)
        return out

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
        out.update({name: v for name, v in self.card.stats().items()
                    if name.startswith("far_") and name not in _FAR_NOT_LOSSES and isinstance(v, int)})
        if self.far_server is not None:     # a refused HELLO is a refused peer too
            out["far_refused"] = out.get("far_refused", 0) + sum(self.far_server.refused.values())
        return out

    def loss_mark(self) -> Hashable | None:
        """A cheap reading of what :meth:`counters` adds up (a few microseconds, whatever the number of
        channels): it changes whenever one of those counters does (it may change when none did); None
        when the card has no cheap reading (then only counters() says)."""
        if self._loss_reading is None or self.card.closed:
            return None
        sim_ffi, sim_lib, st, first_far = self._loss_reading
        sim_lib.cb_sim_get_stats(self.card.sim, st)      # type: ignore[attr-defined]
        refused = sum(self.far_server.refused.values()) if self.far_server is not None else 0
        return (self.sched.loss_counts(), refused, sim_ffi.buffer(st)[first_far:])

    def dropped_by_kind(self) -> dict[str, int]:
        """Lost events per kind, the kinds with a loss only: those a full event ring refused
        ({"events_dropped.HOOK_ON": n}), and the card's, if it counts them: card events beyond
        the block's event buffer ("card_events_dropped.<KIND>", adding up to the media tier's
        card_events_dropped) and a far-end peer's line changes that did not fit the card's signal
        queue ("far_sig_dropped.<KIND>", adding up to far_sig_dropped) or came in a late answer that
        was skipped ("far_late_events.<KIND>", adding up to far_late_events); both still set the
        lines' levels, which the engine reconciles. And the far-end peers refused, by reason
        ("far_refused.<reason>", adding up to far_refused): the card's (BAD_SEQUENCE, ...) and the
        HELLO's (claimed, not_json, ...)."""
        out = {f"events_dropped.{_SLOT_NAMES.get(slot, f'slot{slot}')}": n
               for slot, n in self.sched.dropped_by_kind().items()}
        st = self.card.stats() if not self.card.closed else {}
        for prefix, field in (("card_events_dropped", "card_ev_dropped_by"), ("far_sig_dropped", "far_sig_dropped_by"),
                              ("far_late_events", "far_late_events_by")):
            by_kind = st.get(field)
            if isinstance(by_kind, dict):
                out.update({f"{prefix}.{kind}": int(n) for kind, n in by_kind.items() if n})
        refused_by = st.get("far_refused_by")
        if isinstance(refused_by, dict):
            out.update({f"far_refused.{name}": int(n) for name, n in refused_by.items()
                        if n and name not in _FAR_NOT_REFUSALS})
        if self.far_server is not None:
            out.update({f"far_refused.{reason}": n for reason, n in self.far_server.refused.items() if n})
        return out

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

    # -- the line port's media commands (e1t1.analog.port.LinePort) ----------

    def tone(self, chan: int, zone: str, tone: str) -> None:
        self.sched.tone(chan, zone, tone)

    def stop_tone(self, chan: int) -> None:
        self.sched.stop_tone(chan)

    def silence(self, chan: int) -> None:
        self.sched.silence(chan)

    def detect_dtmf(self, chan: int, on: bool = True) -> None:
        self.sched.detect_dtmf(chan, on)

    def fsk_rx(self, chan: int, standard: str | None) -> None:
        self.sched.fsk_rx(chan, standard)

    def fsk_tx(self, chan: int, frame: FskFrame) -> None:
        self.sched.fsk_tx(chan, frame.message, frame.standard, frame.seizure_bits, frame.mark_bits)

    def busy_detect(self, chan: int, on_ms: int, off_ms: int, count: int) -> None:
        self.sched.busy_detect(chan, on_ms, off_ms, count)

    def echo(self, chan: int, taps: int) -> None:
        """The echo canceller of `chan` on (reset) with `taps`, its NLP, comfort noise and tone
        disabler, or off with 0 (appliance.echo switches it at answer and release)."""
        self.sched.echo(chan, taps)

    def close(self) -> None:
        self.sched.stop()
        if self.far_server is not None:
            fs = self.far_stats()
            if fs["far_late"] or fs["far_dropped"] or fs["far_refused"] or fs["hello_refused_by"]:
                log.info("far end: %d late blocks, %d peers dropped, %d refused (by reason %s), HELLOs refused %s",
                         fs["far_late"], fs["far_dropped"], fs["far_refused"], fs["far_refused_by"],
                         fs["hello_refused_by"])
        self.card.close()
        if self.far_server is not None:
            self.far_server.close()
