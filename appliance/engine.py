"""The engine: the control tier's loop over one card and its media tier.

Each control period (10 ms, rounded up to whole card blocks) the engine:
lets the simulated world (if any) prepare the far side, steps the media tier
(virtual clock) or takes the ticks the realtime thread made, advances the one
clock, hands every media event to its line's state machine, runs due timers,
reconciles the line machines against the card's current line levels (a lost
hook event is made up for, logged "reconciled"), updates the alarms, answers
control.sock, hands the period's records to the writer, and feeds the systemd
watchdog only while both tiers made progress.

Records in virtual time: the writer commits only what the engine hands over, and
reports what it did as of the engine's last wait, so nothing the engine does or
publishes depends on the writer thread's speed. Inside :meth:`Engine.run_for`, at
the first period at or past each multiple of COMMIT_EVERY_MS (1 s) of the clock,
the engine waits for the records it handed over at the previous such point
(committed while it ran) and hands over the periods' records since: at most one
commit, one WAL fsync, per virtual second however many calls end. When run_for
returns, and after a period run on its own (run_period: `cicbox run` on the
virtual clock), every record handed to the writer is durable; so are they after
:meth:`Engine.shutdown` and :meth:`Engine.close`. In realtime the writer commits
each period's batch as it comes (the records wait in ``_unsettled``, never the
lines). Either way a record stays in the engine's memory (``_unsettled``) until
the writer has made it durable; only then does a CDR go to ``released_log``.

A period's work is what happened in it: a period with no media event, no due timer
and no request looks at no channel, call or agent. The lines' census (e1t1.fsm.Census,
kept by the line machines as they change state) gives the busy channels
(:attr:`Engine.busy_channels`) and the levels the machines expect
(e1t1.analog.levels), so reconciling compares all the card's levels at once and
looks only at the lines that differ; the loss counters are read whole only when
their cheap reading changes; a snapshot is built only for a subscriber.

Alarms (appliance.alarms, docs/control-socket.md): the media tier's and the
card's loss counters (events dropped, commands refused, card exchange errors,
far-end refusals and lateness) raise an alarm of the counter's name when they
grow, cleared after alarms.QUIET_MS of engine clock without growth; each of the
record writer's conditions (``RecordWriter.health``: records_commit_failing,
records_spooled, records_held_in_memory, spool_unavailable, disk_space_low...)
is an alarm of its kind while it lasts. The engine hands the writer a batch at
least every WRITER_HEARTBEAT_MS of its clock (empty if need be), so the writer's
retries run on this clock. While the writer asks for backpressure (too many
records held in memory, not safe), new calls are refused with congestion.

Spans (appliance.spans): the card is configured with each span's framing, coding,
CRC-4, TS16 role and timing from the site; each CB_EV_ALARM event (a span's alarm
bits changed) is logged and fed to the sync source policy (e1t1.span), whose change
of clock source goes to the card at once. A paused engine (``paused``, ``cicbox run
--paused``) runs only the periods control ``clock.advance`` asks for.

PRI spans (appliance.pri): each ``pri_cpe``/``pri_net`` span runs our Q.921 and Q.931 on its
D-channel: CB_EV_FRAME events of the D-channel's card channel go to its data link at their tick,
its frames go out as CB_CMD_FRAME; its alarm bits (red or blue: down, cause 38; the end of RECOVER:
up, then RESTART) follow CB_EV_ALARM. What its call control reports becomes calls (appliance.calls:
an offered call with a route is answered and goes to its IVR or queues; its B-channel's DTMF and
prompts are the caller's line's; its release ends the call, with its cause and disposition); a
call is answered on its B-channel's echo canceller as on an FXO trunk's line.

Echo cancellers (appliance.echo): a line's goes on, reset, with its configured
``echo_taps`` when its call is answered (the trunk answering; the agent's phone
picking up the call) and off when the line is released or the call is over;
the media tier's CB_EV_ECHO and CB_EV_ANS events go to it (tone-disabled and back
on are logged; 2100 Hz without reversal during a call turns the call's cancellers
off for the rest of it: the fax rule). The snapshot shows each channel's.

Calls in progress keep the configuration they started with; a new version
applies to the next call.

Nothing lost (docs/architecture.md, "Data"): the boot number is stored durably
before the first call and is never below the highest boot in the record
database; each call in progress has a durable mark in the record database,
written with the period's batch (when the call starts, queues or is answered,
and refreshed every MARK_EVERY_MS), so a call the engine lost (kill -9, power
cut, watchdog) gets a ``system_restart`` record at the next start; a stop
(:meth:`Engine.shutdown`, on SIGTERM/SIGINT) releases every call with
``shutdown`` and waits, within a bound, for the records to be durable. Agents
logged in when the engine stopped are logged in again at start, not ready
(reason ``restart``). A record whose id is already stored is kept under a
suffixed id and raises the ``record_id_repeated`` alarm.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.acd import AgentState
from appliance.acd import announce as announcements
from appliance.alarms import AlarmRegistry, CounterAlarms
from appliance.calls import CallMachine, Calls
from appliance.collector import Collector
from appliance.config import SiteConfig
from appliance.config.model import FxoPort, FxsPort
from appliance.config.store import ConfigStore
from appliance.config.worker import ConfigWorker
from appliance.control import ControlServer
from appliance.control.commands import EngineCommands
from appliance.control.snapshot import engine_snapshot
from appliance.echo import EchoLines
from appliance.errors import RestartNeededError
from appliance.features import Verdict, feature_code
from appliance.features.codes import InCallCodes
from appliance.figures import LiveFigures, fold_call
from appliance.lifecycle import StateLock
from appliance.linecard import LineCard
from appliance.notify import Notifier
from appliance.pri import PriSpan, PriSpans
from appliance.prompts import Prompts
from appliance.spans import Spans, span_configs
from appliance.storage import CdrRecord, RecordWriter
from appliance.storage.cdr import AgentSession, CallMark, MarksRefreshed, Record, boot_of
from appliance.storage.cdr import Event as LogEvent
from appliance.storage.writer import HEALTH_KINDS
from drivers.base import CardDescription, LineLevel
from drivers.errors import FarEndError
from drivers.hal import CmdOp, EventType
from dsp import scheduler as dsp_sched
from dsp.scheduler import Event
from e1t1.analog.events import (
    LineEvent,
    PhoneAnswered,
    PhoneDialled,
    PhoneDigit,
    PhoneHungUp,
    PhoneOnHook,
    TrunkAnswered,
    TrunkDigit,
    TrunkReleased,
)
from e1t1.analog.fxo import FxoTrunk, TrunkEvent, TrunkState
from e1t1.analog.fxs import FxsPhone, PhoneEvent
from e1t1.analog.levels import ExpectedLevels
from e1t1.clock import Clock
from e1t1.fsm import Census
from e1t1.isdn.events import CallAnswered, CallDigits, CallOffered, CallRefused, CallReleased, PriEvent
from e1t1.protocols import timer_tables

log = logging.getLogger("cicbox.engine")

# Media events as the line machines take them (digits act on key-down).
TRUNK_EVENTS: dict[int, TrunkEvent] = {
    EventType.RING_ON: TrunkEvent.RING_ON, EventType.RING_OFF: TrunkEvent.RING_OFF,
    EventType.BATTERY: TrunkEvent.BATTERY, EventType.POLARITY: TrunkEvent.POLARITY,
    EventType.BUSY: TrunkEvent.BUSY, EventType.FSK_BYTE: TrunkEvent.CID_BYTE, EventType.DTMF_DOWN: TrunkEvent.DTMF,
    EventType.FSK_CARRIER: TrunkEvent.FSK_CARRIER,
}
PHONE_EVENTS: dict[int, PhoneEvent] = {
    EventType.HOOK_OFF: PhoneEvent.HOOK_OFF, EventType.HOOK_ON: PhoneEvent.HOOK_ON,
    EventType.FLASH: PhoneEvent.FLASH, EventType.DTMF_DOWN: PhoneEvent.DTMF,
}
HOOK_EVENTS = frozenset({EventType.HOOK_OFF, EventType.HOOK_ON, EventType.FLASH})
ECHO_EVENTS = frozenset({EventType.ECHO, EventType.ANS})
# What one unit of each loss counter is, for its alarm's detail (a counter not named here is
# described by its name: the far end's counters grow with the far-end socket).
COUNTER_TEXT = {
    "events_dropped": "media events lost: the event ring was full (line states are reconciled from the card)",
    "card_events_dropped": "card events lost: more in one block than the block's event buffer holds",
    "commands_failed": "media commands refused",
    "card_errors": "card exchanges failed",
    "far_refused": "far-end peers refused or dropped",
    "far_late": "far-end answers late (idle sent instead)",
    "far_late_events": "far-end line changes in late answers (events lost; the levels are reconciled)",
    "far_sig_dropped": "far-end line changes that did not fit the card's signal queue (the levels are reconciled)",
    "far_fifo_overrun": "far-side octets that did not fit the card's FIFO",
}
DEFAULT_EPOCH = dt.datetime(2026, 1, 1)
WRITER_HEARTBEAT_MS = 1000
"""The writer gets a batch (empty if the period has no records) at least this often, engine clock."""
COMMIT_EVERY_MS = 1000
"""Virtual time, inside run_for: the records of the periods since the last such point are handed to the
writer as one commit at the first period ending at or past each multiple of this (engine clock), and the
engine waits there for the previous one; so at most one commit per this much engine clock, plus one
when run_for returns (see _hand_off_records)."""
AGENT_CHECK_MS = 1000
"""Agents offered or on a call are checked against their phones this often (engine clock)."""
MARK_EVERY_MS = 1000
"""The marks of the calls in progress are refreshed this often (engine clock): a lost call's record
ends at most this long before the engine died."""



class Engine:
    """The appliance's engine over one card."""

    def __init__(self, state_dir: Path, config: SiteConfig, config_version: int, *,
                 clock: str = "virtual", store: ConfigStore | None = None, world: Any = None,
                 wall_start: dt.datetime | None = None, enable_faults: bool = False,
                 event_ring_octets: int = 0, writer_options: dict[str, Any] | None = None,
                 state_lock: StateLock | None = None) -> None:
        # One engine per state directory (EngineRunningError), held from before anything in it is read.
        self._state_lock = state_lock if state_lock is not None else StateLock(state_dir)
        try:
            self._build(state_dir, config, config_version, clock=clock, store=store, world=world,
                        wall_start=wall_start, enable_faults=enable_faults, event_ring_octets=event_ring_octets,
                        writer_options=writer_options)
        except BaseException:
            self._state_lock.release()
            raise

    def _build(self, state_dir: Path, config: SiteConfig, config_version: int, *, clock: str,
               store: ConfigStore | None, world: Any, wall_start: dt.datetime | None, enable_faults: bool,
               event_ring_octets: int, writer_options: dict[str, Any] | None) -> None:
        self.state_dir = state_dir
        self.config = config
        self.config_version = config_version
        self.store = store
        self.mode = clock
        cfg = config
        desc = CardDescription(
            ports=tuple(p.kind for p in cfg.ports),
            spans=tuple(s.kind for s in cfg.spans),
            law=cfg.site.law, k=cfg.card.k, clock=clock,  # type: ignore[arg-type]
            span_configs=span_configs(cfg),
        )
        self.desc = desc
        self.k = cfg.card.k
        self.period_ms = self.k * math.ceil(10 / self.k)
        self.tier_ = LineCard(cfg.card.backend, desc, zone=cfg.site.zone, far_socket=state_dir / "sim.sock",
                              span_names=tuple(s.name for s in cfg.spans) or None,
                              period_ticks=self.period_ms, ev_octets=event_ring_octets)
        self.clock = Clock(self.tier_.tick)
        self.spans = Spans(cfg, self.tier_.card, self.clock)
        self.paused = False                       # cicbox run --paused: the clock runs only on clock.advance
        self.alarms = AlarmRegistry(lambda: self.clock.now_ms)
        self.counter_alarms = CounterAlarms(self.alarms, lambda: self.clock.now_ms,
                                            lambda name: COUNTER_TEXT.get(name, name))
        self._record_alarms_up = False                        # some writer condition is an alarm now
        self._loss_mark = self.tier_.loss_mark()              # the counters unchanged since, update has no news
        self.counter_alarms.update(self.tier_.counters())     # every counter in the snapshot from the start
        # Realtime, media thread: a level that disagrees is acted on only if it still does one
        # period later (its event may be on its way); these lines disagreed last period.
        self._level_suspects: set[int] = set()
        if wall_start is not None:
            self.epoch = wall_start
        elif cfg.site.epoch is not None:
            self.epoch = _parse_epoch(cfg.site.epoch)
        else:
            self.epoch = DEFAULT_EPOCH
        self.prompts = Prompts(state_dir / "prompts")
        self._load_prompts(cfg)
        # The record store opens first: what the last run left (its highest boot, the marks of calls it
        # lost, the agents logged in) decides this boot's number and state before the first call.
        # writer_options: RecordWriter's keywords (free_floor_bytes, max_held_records, io...).
        self.writer = RecordWriter(state_dir / "cicbox.db", state_dir / "records.spool",
                                   **{"idle_retry_s": None if clock == "virtual" else 5.0,
                                      "commit_on_wait": clock == "virtual", **(writer_options or {})})
        self.writer.start()
        startup = self.writer.startup
        self.boot = _next_boot(state_dir, startup.highest_boot)      # call ids never repeat across restarts
        self.call_layer = Calls(self.clock, lambda: self.tier_.sched, self.prompts, self.boot, self.calendar,
                                lambda: (self.config_version, self.config))
        self.acd = self.call_layer.acd
        self._in_call_codes = InCallCodes()
        self._next_agent_check = 0                # engine ms of the next check of agents against phones
        self._configure_acd(cfg)
        self._restore_agents(startup.agents)
        self.trunks = self.call_layer.trunks
        self.phones = self.call_layer.phones
        # The lines' echo cancellers: on at each answer, off at each release (appliance.echo).
        self.echo = EchoLines(lambda: self.tier_, self.tier_.card.channels, self._channel_names(cfg),
                              self.call_layer.call_of)
        self.call_layer.call_over = lambda call: self.echo.call_over(call.id, [leg.chan for leg in call.legs])
        # The lines' busy census and the levels the card should show, kept as the machines change state.
        self.expected_levels = ExpectedLevels()
        self.trunk_census = Census(self.expected_levels.trunk_moved)
        self.phone_census = Census(self.expected_levels.phone_moved)
        self._build_lines(cfg)
        # The PRI spans: our Q.921 and Q.931 on each one's D-channel (started below, once all is built).
        self.pri = PriSpans(cfg, self.tier_.card.channels, self._send_frame, self.clock, self._pri_event,
                            self._dnis_complete, self.spans.bits)
        self.spans.pri_status = self.pri.status
        self.released_log: list[CdrRecord] = []   # the last durable CDRs
        self._unsettled: list[tuple[int, list[Record]]] = []   # submitted, not yet durable
        self._writer_fed_ms = 0
        self._in_run_for = False                  # virtual time: records wait for the next commit point
        self._next_commit_ms = COMMIT_EVERY_MS    # engine ms of the next grouped wait for the writer
        self.call_layer.refuse_new = self._refuse_new_calls
        self._next_mark = 0                       # engine ms of the next refresh of every call's mark
        self._repeats_seen = 0                    # record ids found repeated by the writer, so far
        self._record_lost_calls(startup.live, startup.events)
        self.control = ControlServer(state_dir / "control.sock", enable_faults=enable_faults)
        # The configuration in force as text (for config.get), and the worker that stores the next.
        self.config_worker = ConfigWorker(store, self._read_prompts) if store is not None else None
        self.commands = EngineCommands(self, store.document() if store is not None else None)
        self.notifier = Notifier()
        self._watchdog_usec = Notifier.watchdog_usec()
        self._last_progress = (-1, -1)
        self._last_ping: int | None = None
        self._control_periods = 0
        self.collector = Collector()
        self.world = world
        # The media tier is stepped by this loop in virtual time, and also on the realtime clock
        # when a simulated world sits on the card's far side in process (the sim card's clock
        # then paces each block); otherwise the media thread runs it.
        self.stepped = clock == "virtual" or world is not None
        self.snapshot_every_ms = 1000
        self._next_snapshot = 0
        if world is not None:
            world.attach(self)
        self._ready_sent = False
        self.pri.start()

    # -- set-up ----------------------------------------------------------------

    def _load_prompts(self, cfg: SiteConfig) -> None:
        for language, name in sorted(site_prompts(cfg)):
            self.prompts.load(language, name)

    def _configure_acd(self, cfg: SiteConfig) -> None:
        self.acd.configure(cfg)

    def _channel_names(self, cfg: SiteConfig) -> list[str]:
        """Each card channel's name for the log: its port's, or SPAN/tsN for a span's timeslot."""
        return [cfg.ports[c.port].name if c.port is not None else
                f"{cfg.spans[c.span].name}/ts{c.timeslot}" if c.span is not None else f"channel {c.index}"
                for c in self.tier_.card.channels]

    def _build_lines(self, cfg: SiteConfig) -> None:
        """The line machines, on the card as their line port, reporting to :meth:`_line_event`, with the
        site's timers (defaults and the ``timers:`` overrides)."""
        self.timers = timer_tables(cfg.timers)
        for idx, port in enumerate(cfg.ports):
            if isinstance(port, FxoPort):
                t = _trunk_settings(port, cfg.site.zone)
                self.trunks[idx] = FxoTrunk(self.tier_, self._line_event, idx, port.name, t["number"],
                                            t["callerid_mode"], t["answer_on_ring"], t["disconnect"], t["busy"],
                                            self.clock, self.timers["fxo"], ring_cadence=_ring_timing(cfg.site.zone),
                                            census=self.trunk_census)
                self.trunks[idx].settings_tag = (self.config_version, cfg)
                self.expected_levels.add_trunk(self.trunks[idx])
            else:
                self.phones[idx] = FxsPhone(self.tier_, self._line_event, idx, port.name, port.extension,
                                            cfg.site.zone, self.clock, self.timers["fxs"], census=self.phone_census)
                self.expected_levels.add_phone(self.phones[idx])

    def _restore_agents(self, sessions: list[AgentSession]) -> None:
        """Agents logged in when the engine last stopped: logged in again, not ready (reason "restart").
        A session the configuration no longer allows (agent gone, phone taken) is ended."""
        phones = {p.name for p in self.config.ports if isinstance(p, FxsPort)}
        for s in sessions:
            if s.phone is None or s.phone not in phones or not self.acd.restore(s.agent, s.phone):
                log.warning("agent %s was logged in at %s before the restart: not restored", s.agent, s.phone)
                self.call_layer.records.append(AgentSession(s.agent, None, self.clock.now_ms))

    def _record_lost_calls(self, marks: list[CallMark], events: dict[str, list[LogEvent]]) -> None:
        """Calls that were up when the engine died get their end now: a ``call_end`` event (disposition
        system_restart) at their last durable mark (or their last stored event, if later), and their
        record, the fold of their stored events and that end (the mark's own record where no event
        of the call was stored); the records and the end of the marks are one commit."""
        if not marks:
            return
        lost: list[Record] = []
        for m in marks:
            stored = events.get(m.call_id, [])
            end_ms = max([m.mark_ms, *(e.tick_ms for e in stored)])
            end = LogEvent(boot_of(m.call_id), end_ms, "call_end", m.call_id, m.queue, m.agent,
                           {"disposition": "system_restart"})
            lost.append(end)
            if any(e.kind == "call_start" for e in stored):
                lost.append(CdrRecord(**fold_call([*stored, end])))
            else:
                lost.append(m.lost_cdr("system_restart"))
        for m in marks:
            log.warning("call %s was up when the engine stopped (last known up at %d ms): recorded as "
                        "system_restart", m.call_id, m.mark_ms)
        seq = self.writer.submit(lost, self.clock.now_ms)
        self._unsettled.append((seq, lost))
        if self.mode == "virtual":
            self._make_records_durable()
        self._settle_records()

    # -- line events -------------------------------------------------------------

    def _line_event(self, ev: LineEvent) -> None:
        """What the line machines report (their sink): the reports that act on calls go to the call
        layer, dialled strings to the feature codes; the others (rings, caller ID, abandoned ringing,
        a phone off hook or a digit during a call) change no call today."""
        calls = self.call_layer
        match ev:
            case TrunkAnswered():
                # on first: a call refused or without a route releases the trunk inside trunk_answered
                self.echo.answered(ev.chan, self._trunk_config(ev.chan))
                calls.trunk_answered(ev)
            case TrunkDigit():
                calls.trunk_digit(ev)
            case TrunkReleased():
                calls.trunk_released(ev)
                self.echo.released(ev.chan)
            case PhoneDialled():
                self._dialled(ev)
            case PhoneAnswered():
                calls.phone_answered(ev)
                call = calls.connected_at(ev.chan)
                if call is not None:
                    self.echo.answered(ev.chan, call.config)
            case PhoneHungUp():
                calls.phone_hung_up(ev)
                self.echo.released(ev.chan)
            case PhoneOnHook():
                self.echo.released(ev.chan)
            case PhoneDigit():
                self._in_call_key(ev)
            case _:
                pass

    # -- PRI spans ---------------------------------------------------------------

    def _send_frame(self, chan: int, octets: bytes) -> None:
        """A D-channel frame out on card channel `chan` (the card's HDLC adds flags and FCS)."""
        self.tier_.sched.send(CmdOp.FRAME, chan, payload=octets)

    def _dnis_complete(self, dnis: str) -> bool:
        """A called number is complete when it is exactly a route's ``dnis`` (the configuration in force)."""
        return any(r.dnis == dnis for r in self.config.routes)

    def _pri_event(self, span: PriSpan, ev: PriEvent) -> None:
        """What a PRI span's call control reports (its sink): offered calls become calls, an answer
        switches its B-channel's echo canceller on, a release ends the call; keypad digits during a
        call are the caller's keys. The span's own reports (D-channel, RESTART, SERVICE) are logged."""
        calls = self.call_layer
        match ev:
            case CallOffered():
                if ev.chan is not None:
                    calls.pri_offered(ev, span.name, span.chan_of[ev.chan])
            case CallAnswered():
                if ev.chan is not None:
                    chan = span.chan_of[ev.chan]
                    call = calls.by_trunk.get(chan)
                    self.echo.answered(chan, call.config if call is not None else self.config)
            case CallDigits():
                if ev.chan is not None and ev.call.answered:      # keypad during the call, not overlap digits
                    for digit in ev.digits:
                        calls.caller_digit(span.chan_of[ev.chan], digit, ev.tick)
            case CallRefused():
                calls.pri_refused(ev, span.name, span.chan_of.get(ev.timeslot) if ev.timeslot is not None else None)
            case CallReleased():
                if ev.chan is not None:
                    chan = span.chan_of[ev.chan]
                    calls.pri_released(ev, chan)
                    self.echo.released(chan)
            case _:
                log.info("span %s: %s", span.name, ev)

    def _trunk_config(self, chan: int) -> SiteConfig:
        """The configuration the call answered on trunk `chan` runs on (its ringing cycle's)."""
        tag = self.trunks[chan].settings_tag
        return tag[1] if tag is not None else self.config

    def _in_call_key(self, ev: PhoneDigit) -> None:
        """A key an agent pressed during a call: *24<reason># (not ready after the call) is for us."""
        phone = self.phones[ev.chan]
        self._in_call_codes.key(self.acd, phone.phone_name, ev.digit)

    def _dialled(self, ev: PhoneDialled) -> None:
        """A digit string from a phone: done (the phone's ACCEPT: confirm tone), wrong (REJECT: congestion)
        or it may go on (no answer: the phone's inter-digit timer runs)."""
        phone = self.phones[ev.chan]
        verdict = feature_code(self.acd, phone.phone_name, ev.digits)
        if verdict is Verdict.OK:
            phone.dispatch(PhoneEvent.ACCEPT)
        elif verdict is Verdict.BAD:
            phone.dispatch(PhoneEvent.REJECT)

    def calendar(self, ms: int) -> dt.datetime:
        return self.epoch + dt.timedelta(milliseconds=ms)

    @property
    def calls(self) -> dict[str, CallMachine]:
        """The calls in progress, by id."""
        return self.call_layer.live

    @property
    def stats(self) -> dict[str, int]:
        """Offered, answered and abandoned calls and the total wait since start, over all queues, folded
        from the event log (appliance.figures.Totals: ASA = wait_ms_total / answered)."""
        return self.call_layer.totals.figures()

    @property
    def live_figures(self) -> LiveFigures:
        """Today's queue and agent figures, folded from the event log as it is written."""
        return self.call_layer.live_figures

    @property
    def busy_trunks(self) -> int:
        """Trunk channels whose line machine is not idle (ringing or up); kept as they change, O(1)."""
        return self.trunk_census.busy

    @property
    def busy_phones(self) -> int:
        """Phone ports whose line machine is not idle (off hook or ringing); kept as they change, O(1)."""
        return self.phone_census.busy

    @property
    def busy_channels(self) -> int:
        """Busy trunk channels and phone ports (a channel is busy when its line machine is not idle)."""
        return self.trunk_census.busy + self.phone_census.busy

    # -- the loop ------------------------------------------------------------------

    def run_period(self) -> None:
        """One control period. Python's garbage is collected after it, not inside it (appliance.collector)."""
        self.collector.period_starts()
        try:
            self._period()
        finally:
            self.collector.period_ends()

    def _period(self) -> None:
        if self.world is not None:
            self.world.before_period(self.clock.now_ms, self.period_ms)
        evs = self.tier_.step(self.period_ms) if self.stepped else self.tier_.events()
        # A block's card events (hook, ring) come before its detectors' (busy, DTMF): the lines take
        # them in the order they happened (stable: one tick keeps the ring's order).
        # Within one tick, the lower port first (two phones off hook in one tick: the lower one wins).
        evs = sorted(evs, key=lambda e: (e.tick, e.chan))
        heard: set[int] = set()     # lines whose hook or battery the card reported this period
        for ev in evs:
            self.clock.advance(max(self.clock.now_ms, ev.tick))
            self._dispatch(ev)
            if ev.type in HOOK_EVENTS or ev.type == EventType.BATTERY:
                heard.add(ev.chan)
        self.clock.advance(self.tier_.tick)
        self._reconcile(heard)
        if self.clock.now_ms >= self._next_agent_check:
            self._next_agent_check = self.clock.now_ms + AGENT_CHECK_MS
            self.acd.each_second()
        self._update_alarms()
        if self.world is not None:
            self.world.after_period(self.clock.now_ms)
        self.poll_control()
        if self.tier_.far_server is not None:
            self._poll_far_peer()
        if self.clock.now_ms >= self._next_snapshot and self._snapshot_wanted():
            self._next_snapshot = self.clock.now_ms + self.snapshot_every_ms
            self.control.publish(self.snapshot())
        self._hand_off_records()
        self._update_record_alarms()
        self._check_repeated_ids()
        self._control_periods += 1
        self._feed_watchdog()

    def _hand_off_records(self) -> None:
        """The period's records (and the marks due) to the writer, which commits them on its thread.

        Virtual time (the writer commits only what the engine hands over, when it does): a period
        run on its own ends with every record durable. Inside :meth:`run_for`, at the first period
        ending at or past each multiple of COMMIT_EVERY_MS of the clock, the engine waits for the
        records it handed over at the last such point (committed while it ran: at most one commit)
        and hands over those gathered since, to be committed together while it runs on."""
        now = self.clock.now_ms
        batch = self.call_layer.take_records()
        batch += self._take_marks()
        if batch or now - self._writer_fed_ms >= WRITER_HEARTBEAT_MS:
            seq = self.writer.submit(batch, now)
            self._writer_fed_ms = now
            if batch:
                self._unsettled.append((seq, batch))
        if self.mode == "virtual":
            if not self._in_run_for:
                self._make_records_durable()
            elif now >= self._next_commit_ms:
                self._next_commit_ms = (now // COMMIT_EVERY_MS + 1) * COMMIT_EVERY_MS
                self.writer.wait(self.writer.handed_seq)
                self.writer.hand_over()
        self._settle_records()

    def _make_records_durable(self) -> None:
        """Virtual time: hand every record over to the writer and wait until all are durable."""
        self._next_commit_ms = (self.clock.now_ms // COMMIT_EVERY_MS + 1) * COMMIT_EVERY_MS
        self.writer.wait(self.writer.submitted_seq)

    def _take_marks(self) -> list[CallMark | MarksRefreshed]:
        """This period's marks of calls in progress (new or changed ones; all of them every MARK_EVERY_MS)."""
        now = self.clock.now_ms
        refresh = now >= self._next_mark and bool(self.call_layer.live)
        if refresh:
            self._next_mark = now + MARK_EVERY_MS
        return self.call_layer.take_marks(now, refresh)

    def _check_repeated_ids(self) -> None:
        """A record that came with an id already stored was kept under a suffixed id: the
        ``record_id_repeated`` alarm, raised until the engine restarts (ids must never repeat)."""
        repeated = self.writer.stats()["ids_repeated"]
        if repeated > self._repeats_seen:
            self._repeats_seen = repeated
            first, kept = self.writer.repeated_ids[-1]
            self.alarms.raise_alarm(
                "record_id_repeated", f"{repeated} records came with a call id already stored and were kept "
                f"under a new id (last: {first} kept as {kept})")

    def shutdown(self, budget_s: float, disposition: str = "shutdown") -> bool:
        """Stop cleanly: every call in progress is released with `disposition`, its trunk put on hook and
        its record handed to the writer; then wait up to `budget_s` (wall time) for every record to be
        durable. True if they all are. The engine is still open (close() follows)."""
        self.notifier.notify(STOPPING=1)
        released = 0
        for _ in range(3):      # a trunk that answered during the last period brings one more call
            if not self.call_layer.live:
                break
            released += self.call_layer.release_all(disposition)
            self.run_period()   # the lines go on hook; the records go to the writer
        if released:
            log.info("stopping: %d calls in progress released (%s)", released, disposition)
        self.call_layer.emit("stop", detail={"disposition": disposition})   # the log's open states end here
        self._hand_off_records()
        if self._unsettled and not self.writer.wait(self._unsettled[-1][0], budget_s):
            log.error("stopping: %d records not yet durable after %.1f s", self.records_not_yet_durable, budget_s)
        self._settle_records()
        return not self._unsettled

    @property
    def records_not_yet_durable(self) -> int:
        """Records handed to the writer that it has not yet committed or spooled."""
        return sum(len(b) for _, b in self._unsettled)

    def _settle_records(self) -> None:
        """Let go of the records the writer made durable (committed, or spooled and fsynced); until
        then the engine keeps them (realtime: the lines went idle at once, the records wait here)."""
        durable = self.writer.committed_seq
        while self._unsettled and self._unsettled[0][0] <= durable:
            _, batch = self._unsettled.pop(0)
            self.released_log.extend(r for r in batch if isinstance(r, CdrRecord))
        del self.released_log[:-1000]

    def _dispatch(self, ev: Event) -> None:
        t = ev.type
        if t == EventType.ALARM:
            self.pri.alarm(self.spans.alarm(ev.chan, ev.value), ev.value)
        elif t == EventType.FRAME:
            span = self.pri.by_dchan.get(ev.chan)
            if span is not None:
                span.frame(ev.payload)
        elif t in ECHO_EVENTS or (t == EventType.MEDIA_ERROR and ev.value == CmdOp.ECHO):
            self.echo.media_event(ev)
        elif ev.chan in self.pri.by_bchan:
            if t == EventType.DTMF_DOWN:
                self.call_layer.caller_digit(ev.chan, chr(ev.value), ev.tick)
            elif t == EventType.PLAY_DONE:
                self.call_layer.prompt_done(ev.chan)
        elif ev.chan in self.trunks:
            trunk = self.trunks[ev.chan]
            tev = TRUNK_EVENTS.get(t)
            if tev is TrunkEvent.CID_BYTE:
                trunk.dispatch(tev, byte=ev.value, tick=ev.tick)
            elif tev is TrunkEvent.DTMF:
                trunk.dispatch(tev, digit=chr(ev.value), tick=ev.tick)
            elif tev is not None:
                trunk.dispatch(tev, value=ev.value, tick=ev.tick)
            elif t == EventType.PLAY_DONE:
                self.call_layer.prompt_done(ev.chan)
        elif ev.chan in self.phones:
            pev = PHONE_EVENTS.get(t)
            if pev is PhoneEvent.DTMF:
                self.phones[ev.chan].dispatch(pev, digit=chr(ev.value), tick=ev.tick)
            elif pev is not None:
                self.phones[ev.chan].dispatch(pev, tick=ev.tick)
                # A line change: the phone's agent checked against it, once the phone's machine has
                # done all it does about the change (an offer made meanwhile rings by then).
                self.call_layer.phone_changed(ev.chan)

    def _reconcile(self, heard: set[int]) -> None:
        """Compare each line machine with the card's current levels; make up the events it missed.

        A line the card reported on this period is left alone (its events are its truth). Stepped
        (virtual time, or the in-process world), every event of the period has been taken when the
        levels are read, so a disagreement is a lost event and is acted on at once; with the media
        thread running, the event may still be on its way, so only a disagreement seen two periods
        in a row is.
        """
        levels = self.tier_.line_levels()
        if levels is None:
            return
        # The lines whose machine disagrees with the card, found in one comparison over all ports
        # (no look at a line that agrees); each line named, its machine has the last word.
        differ = self.expected_levels.differing(levels)
        if not differ and not self._level_suspects:
            return
        now = self.clock.now_ms
        suspects: set[int] = set()
        for chan in differ:
            if chan in heard:
                continue
            level = LineLevel(levels[chan])
            phone = self.phones.get(chan)
            if phone is not None:
                pev = phone.level_event(level)
                if pev is not None:
                    if self.stepped or chan in self._level_suspects:
                        phone.reconcile(pev, now)
                        self.call_layer.phone_changed(chan)
                    else:
                        suspects.add(chan)
                continue
            trunk = self.trunks.get(chan)
            tev = trunk.level_event(level) if trunk is not None else None
            if trunk is not None and tev is not None:
                if self.stepped or chan in self._level_suspects:
                    trunk.reconcile(tev, now)
                else:
                    suspects.add(chan)
        self._level_suspects = suspects

    def _update_alarms(self) -> None:
        """Loss counters raise (and, once quiet, clear) their alarms; each of the record writer's
        conditions is an alarm of its kind while the writer reports it (the writer logs the change).
        The counters are read whole only when their cheap reading changed or a raised alarm may clear."""
        mark = self.tier_.loss_mark()
        due = self.counter_alarms.clear_due_ms
        if mark is None or mark != self._loss_mark or (due is not None and self.clock.now_ms >= due):
            self._loss_mark = mark
            self.counter_alarms.update(self.tier_.counters())
        self._update_record_alarms()

    def _update_record_alarms(self) -> None:
        """The writer's conditions as alarms (also after the period's hand-off: in virtual time a change
        the period's batch made is in the snapshot of the same period)."""
        health = self.writer.health
        if not health and not self._record_alarms_up:
            return
        for kind in HEALTH_KINDS:
            if kind in health:
                self.alarms.raise_alarm(kind, health[kind], logged=False)
            elif kind in self.alarms:
                self.alarms.clear_alarm(kind, logged=False)
        self._record_alarms_up = bool(health)

    @property
    def records_backpressure(self) -> bool:
        """The last resort: the writer holds too many records in memory (not safe); new calls are refused."""
        return self.writer.backpressure

    def _refuse_new_calls(self) -> str | None:
        """Why a trunk that answers now must refuse its call (congestion, then release); None to take it."""
        if self.records_backpressure:
            return "records are held in memory and not safe (records_backpressure)"
        return None

    def poll_far_peer(self) -> None:
        """Let far-end peers attach now (a paused engine's loop, between clock.advance requests)."""
        self._poll_far_peer()

    def _poll_far_peer(self) -> None:
        """Far-end peers may attach at any time: on the realtime clock the handshake never blocks
        (it spans control periods); in virtual time a connecting peer joins in lockstep at the
        next block, the clock waiting for its HELLO at most the dead-peer limit."""
        try:
            self.tier_.poll_far_peers()
        except FarEndError as exc:
            log.warning("%s", exc)

    def _feed_watchdog(self) -> None:
        if not self._ready_sent:
            self.notifier.notify(READY=1, STATUS=f"running: {len(self.trunks)} trunks, {len(self.phones)} phones")
            self._ready_sent = True
        if not self._watchdog_due():
            return      # the tiers' progress is read only when a ping is due
        progress = (self.tier_.sched.stats()["ticks"], self._control_periods)
        if progress[0] > self._last_progress[0] and progress[1] > self._last_progress[1]:
            self._last_ping = self.clock.now_ms
            self.notifier.notify(WATCHDOG=1)
            self._last_progress = progress

    def _watchdog_due(self) -> bool:
        """Whether a ping is due: half the watchdog period (in engine clock) since the last one."""
        if self._watchdog_usec is None:
            return False
        return self._last_ping is None or self.clock.now_ms - self._last_ping >= self._watchdog_usec // 2000

    def wait_far_peer(self, timeout_s: float) -> bool:
        """Let a far-end peer attach before the clock runs (virtual time stays repeatable): wait up to
        `timeout_s` seconds of wall time for its HELLO."""
        return self.tier_.wait_far_peer(timeout_s)

    def run_for(self, ms: int, each_period: Callable[[], None] | None = None) -> None:
        """Run `ms` of engine clock, calling `each_period` (if given: a benchmark's or a soak's
        observer) after every period. In virtual time every record handed to the writer is durable when
        it returns (within the run, at each multiple of COMMIT_EVERY_MS: :meth:`_hand_off_records`)."""
        end = self.clock.now_ms + ms
        outer, self._in_run_for = self._in_run_for, True
        try:
            while self.clock.now_ms < end:
                self.run_period()
                if each_period is not None:
                    each_period()
        finally:
            self._in_run_for = outer
        if self.mode == "virtual" and not outer:
            self._make_records_durable()
            self._settle_records()
            self._update_record_alarms()
            self._check_repeated_ids()

    # -- control.sock -----------------------------------------------------------------

    def poll_control(self) -> None:
        """Answer control.sock and finish configuration hand-offs (each period; also for a paused engine)."""
        self.commands.poll()

    def _read_prompts(self, cfg: SiteConfig) -> dict[tuple[str, str], Any]:
        """The prompts `cfg` names, read from disk (runs on the configuration worker)."""
        return {(language, name): self.prompts.read(language, name) for language, name in sorted(site_prompts(cfg))}

    def switch_config(self, cfg: SiteConfig, version: int, prompts: dict[tuple[str, str], Any] | None = None) -> None:
        """Make `cfg` the configuration for new calls, whole or not at all (raises ApplyError, nothing
        changed). Memory only: `prompts` were read by the worker."""
        old = self.config
        same = [(p.kind, p.name) for p in cfg.ports] == [(p.kind, p.name) for p in old.ports] and \
            span_configs(cfg) == span_configs(old) and [_span_fixed(s) for s in cfg.spans] == \
            [_span_fixed(s) for s in old.spans] and cfg.timers.get("q921") == old.timers.get("q921") and \
            (cfg.site.law, cfg.card.k, cfg.card.backend, cfg.site.zone) == \
            (old.site.law, old.card.k, old.card.backend, old.site.zone)
        if not same:
            raise RestartNeededError("ports, spans (or their names, framing, coding, timing, signalling, switch type "
                                     "or Q.921 timers), law, zone, k or the card backend changed")
        if prompts is None:
            prompts = self._read_prompts(cfg)
        timers = timer_tables(cfg.timers)
        trunks = {idx: _trunk_settings(port, cfg.site.zone) for idx, port in enumerate(cfg.ports)
                  if isinstance(port, FxoPort)}
        # Nothing below can fail: the switch is whole or not at all.
        self.prompts.install(prompts)
        self.config = cfg
        self.config_version = version
        self.timers = timers
        self._configure_acd(cfg)
        for idx, settings in trunks.items():
            # A call ringing or up keeps the settings it began with; the next call takes these.
            self.trunks[idx].configure(**settings, timers=timers["fxo"], tag=(version, cfg))
        for idx, port in enumerate(cfg.ports):
            if isinstance(port, FxsPort):
                self.phones[idx].configure(extension=port.extension, timers=timers["fxs"])
        self.pri.configure(cfg)         # overlap, exclusive and the Q.931 timers of the next calls
        log.info("configuration version %d in force for new calls", version)

    def snapshot(self) -> dict[str, Any]:
        """The engine's state as control.sock publishes it (appliance.control.snapshot)."""
        return engine_snapshot(self)

    def _snapshot_wanted(self) -> bool:
        """A snapshot is due: whether anyone subscribed to it. With no subscriber none is built (its
        time passes all the same: the snapshots keep their cadence)."""
        if self.control.subscribers:
            return True
        self._next_snapshot = self.clock.now_ms + self.snapshot_every_ms
        return False

    @property
    def far_side(self) -> Any:
        """The card's far side in process (drivers.sim.FarSide), where a simulated world plays the
        phones and the exchange; None when the card has none."""
        return self.tier_.far_side

    def close(self) -> None:
        try:
            if self.config_worker is not None:
                self.config_worker.close()
            self.writer.close()
            self.control.close()
            self.tier_.close()
            self.notifier.close()
        finally:
            self._state_lock.release()


def _span_fixed(span: Any) -> tuple[Any, ...]:
    """What of a span only a restart changes: its name, signalling, switch type and Q.921 timers (its
    overlap, exclusive and Q.931 timers apply to the next calls)."""
    q921 = {k: v for k, v in (span.timers or {}).items() if k in ("T200", "T203")}
    return (span.name, span.signalling, span.pri_switch if span.pri else None, q921)


def site_prompts(cfg: SiteConfig) -> set[tuple[str, str]]:
    """(language, name) of every prompt a configuration may play: greetings, each queue's hold, the
    hang-up prompts its targets name (and "busy" for a full queue, "blocked" for the blacklist), and
    (for the languages of its menus, when a queue announces) the words of the announcements."""
    out = {(ivr.language, ivr.greeting) for ivr in cfg.ivrs.values()}
    languages = {ivr.language for ivr in cfg.ivrs.values()} or {"en"}
    names: set[str] = set()
    bl = cfg.acd.blacklist
    targets = [bl.then] if bl is not None else []
    if bl is not None:
        names.add("blocked")
    announced = False
    for q in cfg.queues.values():
        if q.hold != "ringback":
            names.add(q.hold)
        targets += [t for _, t in q.overflows()]
        if q.exit_key is not None:
            targets.append(q.exit_key.to)
        announced = announced or q.announce is not None
        if q.max_callers is not None:
            names.add("busy")
    names |= {t.hangup for t in targets if t.hangup is not None}
    out |= {(lang, name) for lang in languages for name in names}
    if announced:
        for lang in languages & set(announcements.LANGUAGES):
            out |= {(lang, name) for name in announcements.prompt_names(lang)}
    return out


def _ring_timing(zone: str) -> tuple[int, int]:
    """The zone's shortest ring and shortest pause (ms): what the exchange's cadence keeps to."""
    on1, off1, on2, off2 = dsp_sched.ring_cadence(zone)
    return min(x for x in (on1, on2) if x > 0), min(x for x in (off1, off2) if x > 0)


def _trunk_settings(port: FxoPort, zone: str) -> dict[str, Any]:
    """An FXO port's settings as its trunk machine takes them."""
    bc = port.busy_cadence
    busy = (bc.on_ms, bc.off_ms, bc.count) if bc is not None else (*dsp_sched.busy_cadence(zone), 3)
    return {"number": port.number, "callerid_mode": port.callerid, "answer_on_ring": port.answer_on_ring,
            "disconnect": list(port.disconnect), "busy": busy}


MAX_BOOT = 1 << 62
"""Boot numbers stay far below SQLite's integer range, where the database's cross-check reads them."""


def _next_boot(state_dir: Path, highest_stored: int = 0) -> int:
    """This start's number: one more than the larger of STATE_DIR/boots and `highest_stored` (the highest
    boot among the record database's call ids), stored durably before it is used: the file written and
    fsynced, renamed over the old one, the directory fsynced. A boots file a power cut left empty or torn
    counts as 0: the database still knows the boots whose calls it holds."""
    path = state_dir / "boots"
    try:
        counted = int(path.read_text().strip())
    except (OSError, ValueError):
        counted = 0
    if not 0 <= counted < MAX_BOOT:
        log.warning("boot count %r is not a boot number: taken as 0 (the record database decides)", counted)
        counted = 0
    boot = max(counted, highest_stored) + 1
    if highest_stored > counted:
        log.warning("boot count %d is behind the record database (boot %d): this boot is %d",
                    counted, highest_stored, boot)
    tmp = state_dir / ".boots.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, f"{boot}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        # Not fatal: the database's highest boot is checked at every start, and a repeated id is kept.
        log.error("boot count %d could not be stored in %s: %s", boot, path, exc)
    return boot


def _parse_epoch(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


__all__ = ["AgentState", "CallMachine", "Engine", "TrunkState"]
