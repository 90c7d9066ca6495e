"""The call machine: one inbound call from the trunk's answer to its record.

A call is a declared state machine (e1t1.fsm) over its legs (appliance.calls.legs):
the caller's leg from the start, the agent's leg once the ACD offers the call.

::

    IVR --key: queue--> QUEUED --offer--> OFFERED --agent answers--> CONNECTED
     |                    ^                  |                           |
     |                    +----withdrawn-----+                           |
     +--------------- caller gone, hang-up, release ----------------> ENDED

- IVR: the menu's greeting plays; after it, the menu's timeout runs (TIMEOUT);
  keys go to the menu walk (appliance.ivr).
- QUEUED: ringback; the ACD offers the call to an agent's phone (OFFERED) or
  the caller gives up (CALLER_GONE: abandoned).
- OFFERED: the agent's phone rings; it answers (AGENT_ANSWERED) or the ACD
  withdraws the offer (WITHDRAWN: back to QUEUED, the queue position kept).
- CONNECTED: the legs are bridged; either side hangs up.
- ENDED: the call's record is written and the machine terminates.

The call holds the configuration version its trunk's ringing cycle ran on
(`config`, `config_version`): a later apply changes the next call, never this
one. Everything the call does to the world goes through its :class:`CallHost`.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Protocol

from appliance.calls.legs import Bridge, Leg, LegKind, Role
from appliance.config.model import SiteConfig
from appliance.ivr.menu import Choice, MenuChoice, MenuWalk
from appliance.storage import CdrRecord, Event
from appliance.storage.cdr import CallMark, boot_of
from e1t1.clock import Clock
from e1t1.fsm import StateDef, StateMachine, TermCause

log = logging.getLogger("cicbox.calls")


class CallState(enum.Enum):
    IVR = 1
    QUEUED = 2
    OFFERED = 3
    CONNECTED = 4
    ENDED = 5


class CallEvent(enum.Enum):
    DIGIT = 1            # the caller pressed a key (data: digit, tick)
    PROMPT_DONE = 2      # the greeting finished playing
    TIMEOUT = 3          # the menu's timeout after the greeting
    OFFERED = 4          # the ACD offered the call to an agent (data: leg, agent)
    WITHDRAWN = 5        # the ACD took the offer back (no answer)
    AGENT_ANSWERED = 6   # the agent's phone went off hook (data: tick)
    CALLER_GONE = 7      # the trunk's far end hung up (data: tick, reason)
    AGENT_GONE = 8       # the agent hung up (data: tick)
    RELEASE = 9          # our side ends the call (data: tick, disposition)


class CallHost(Protocol):
    """What a call needs from the layer that owns it."""

    @property
    def media(self) -> Any: ...                     # the channel scheduler (play, tone, bridge...)
    def prompt(self, language: str, name: str) -> Any: ...
    def release_trunk(self, chan: int, tick: int) -> None: ...
    def far_end_gone(self, leg: Leg) -> None: ...   # tell an agent's phone the caller went
    def enqueue(self, call: CallMachine, queue: str) -> None: ...
    def leave_queue(self, call: CallMachine) -> None: ...
    def agent_answered(self, call: CallMachine, tick: int) -> str | None: ...
    def agent_free(self, agent: str, tick: int) -> None: ...
    def record(self, rec: CdrRecord | Event) -> None: ...
    def count(self, what: str, n: int = 1) -> None: ...
    def ended(self, call: CallMachine) -> None: ...  # the call terminated: forget it


_S = CallState
_E = CallEvent
_GONE = frozenset({_E.CALLER_GONE, _E.RELEASE})


class CallMachine(StateMachine[CallState, CallEvent]):
    """One inbound call."""

    PROTOCOL = "call"
    TIMEOUT = CallEvent.TIMEOUT
    TABLE = {
        _S.IVR: StateDef(frozenset({_E.DIGIT, _E.PROMPT_DONE, _E.TIMEOUT}) | _GONE,
                         frozenset({_S.QUEUED, _S.ENDED}), "st_ivr", on_enter="enter_ivr"),
        _S.QUEUED: StateDef(frozenset({_E.OFFERED, _E.DIGIT}) | _GONE,
                            frozenset({_S.OFFERED, _S.ENDED}), "st_queued", on_enter="enter_queued"),
        _S.OFFERED: StateDef(frozenset({_E.AGENT_ANSWERED, _E.WITHDRAWN, _E.DIGIT}) | _GONE,
                             frozenset({_S.CONNECTED, _S.QUEUED, _S.ENDED}), "st_offered"),
        _S.CONNECTED: StateDef(frozenset({_E.AGENT_GONE, _E.DIGIT}) | _GONE,
                               frozenset({_S.ENDED}), "st_connected", on_enter="enter_connected"),
        _S.ENDED: StateDef(frozenset(), frozenset(), on_enter="enter_ended"),
    }

    def __init__(self, host: CallHost, call_id: str, caller: Leg, ani: str | None, dnis: str,
                 config: SiteConfig, config_version: int, ivr: str | None, clock: Clock,
                 calendar_start: str) -> None:
        super().__init__(f"call({call_id})", CallState.IVR, clock)
        self.host = host
        self.id = call_id
        self.legs: list[Leg] = [caller]
        self.bridge: Bridge | None = None
        self.ani = ani
        self.dnis = dnis
        self.config = config
        self.config_version = config_version
        self.walk = MenuWalk(ivr, config.ivrs[ivr]) if ivr is not None else None   # None: no route
        self.start_ms = clock.now_ms
        self.state_since_ms = self.start_ms
        self.calendar_start = calendar_start
        self.queue: str | None = None
        self.agent: str | None = None        # the agent who answered
        self.offered_to: str | None = None   # the agent whose phone rings now
        self.queue_entry_ms: int | None = None
        self.answer_ms: int | None = None
        self.end_ms: int | None = None
        self.disposition = ""
        self.leaving = False               # ending: an offer the ACD withdraws now is not news
        self.boot = boot_of(call_id)
        host.record(Event(self.boot, self.start_ms, "call_start", call_id, detail={
            "trunk": self.trunk_name, "ani": ani, "dnis": dnis, "config_version": config_version,
            "calendar_start": calendar_start}))
        self.enter_ivr(CallState.IVR)

    # -- what the call is made of ----------------------------------------------------

    @property
    def caller(self) -> Leg:
        return self.legs[0]

    @property
    def agent_leg(self) -> Leg | None:
        return next((leg for leg in self.legs if leg.role is Role.AGENT), None)

    @property
    def trunk_name(self) -> str:
        return self.caller.name

    def transition(self, new: CallState, timer_ms: int | None = None) -> None:
        self.state_since_ms = self.clock.now_ms
        super().transition(new, timer_ms)

    # -- IVR -------------------------------------------------------------------------

    def enter_ivr(self, prev: CallState) -> None:
        self._greet()

    def _greet(self) -> None:
        self.stop_timer()
        if self.walk is not None:
            self.host.media.play(self.caller.chan, self.host.prompt(*self.walk.greeting))

    def st_ivr(self, ev: CallEvent, **d: Any) -> None:
        walk = self.walk
        if walk is None and ev in (_E.PROMPT_DONE, _E.DIGIT, _E.TIMEOUT):
            return                       # a call without a route only waits for its release
        if ev is _E.PROMPT_DONE and walk is not None:
            self.restart_timer(walk.timeout_ms)
        elif ev is _E.DIGIT and walk is not None:
            self.stop_timer()
            self.host.media.stop_play(self.caller.chan)
            self._menu(walk.key(d["digit"]), int(d["tick"]))
        elif ev is _E.TIMEOUT and walk is not None:
            self._menu(walk.silence(), self.clock.now_ms)
        else:
            self._gone(ev, d, "ivr_hangup")

    def _menu(self, choice: MenuChoice, tick: int) -> None:
        if choice.choice is Choice.QUEUE and choice.queue is not None:
            self.queue = choice.queue
            self.queue_entry_ms = tick
            self.transition(_S.QUEUED)
        elif choice.choice is Choice.HANG_UP:
            self._release(tick, "ivr_hangup")
        else:
            self._greet()

    # -- queue and offer -------------------------------------------------------------

    def enter_queued(self, prev: CallState) -> None:
        if prev is not _S.IVR:
            return                       # an offer withdrawn: the caller keeps the queue position
        h = self.host
        h.count("offered")
        h.media.tone(self.caller.chan, self.config.site.zone, "ringback")
        h.record(Event(self.boot, self.queue_entry_ms or self.clock.now_ms, "queue_enter", self.id, self.queue,
                       detail={"first": True}))
        h.enqueue(self, self.queue or "")

    def st_queued(self, ev: CallEvent, **d: Any) -> None:
        if ev is _E.OFFERED:
            self.legs.append(d["leg"])
            self.offered_to = d.get("agent")
            self.transition(_S.OFFERED)
        elif ev is _E.DIGIT:
            pass                         # keys in the queue are not for us (yet)
        else:
            self._abandoned(ev, d)

    def st_offered(self, ev: CallEvent, **d: Any) -> None:
        if ev is _E.AGENT_ANSWERED:
            self.answer_ms = int(d["tick"])
            self.transition(_S.CONNECTED)
        elif ev is _E.WITHDRAWN:
            self._drop_agent_leg()
            self.offered_to = None
            self.transition(_S.QUEUED)
        elif ev is _E.DIGIT:
            pass
        else:
            self._abandoned(ev, d)

    def _abandoned(self, ev: CallEvent, d: dict[str, Any]) -> None:
        """The caller hung up while waiting (CALLER_GONE), or our side ends a waiting call (RELEASE)."""
        tick = int(d.get("tick", self.clock.now_ms))
        self.leaving = True
        self.host.leave_queue(self)
        self._drop_agent_leg()
        if ev is _E.CALLER_GONE:
            self.host.count("abandoned")
            self.host.record(Event(self.boot, tick, "queue_leave", self.id, self.queue,
                                   detail={"outcome": "abandoned", "to": None}))
        self._gone(ev, d, "abandoned")

    def _drop_agent_leg(self) -> None:
        self.legs = [leg for leg in self.legs if leg.role is not Role.AGENT]

    # -- connected -------------------------------------------------------------------

    def enter_connected(self, prev: CallState) -> None:
        h = self.host
        tick = self.answer_ms if self.answer_ms is not None else self.clock.now_ms
        self.agent = h.agent_answered(self, tick)
        h.count("answered")
        if self.queue_entry_ms is not None:
            h.count("wait_ms_total", tick - self.queue_entry_ms)
        leg = self.agent_leg
        if leg is not None:
            self.bridge = Bridge(self.caller, leg)
            self.bridge.join(h.media)
        h.record(Event(self.boot, tick, "answer", self.id, self.queue, self.agent))

    def st_connected(self, ev: CallEvent, **d: Any) -> None:
        if ev is _E.DIGIT:
            return
        tick = int(d.get("tick", self.clock.now_ms))
        if self.bridge is not None:
            self.bridge.leave(self.host.media)
        leg = self.agent_leg
        if ev is _E.CALLER_GONE:
            if leg is not None:
                self.host.far_end_gone(leg)
            self._end(tick, "answered")
        elif ev is _E.AGENT_GONE:
            self._release(tick, "answered")
        else:                            # our side ends it (the engine stops): the agent hears it go
            if leg is not None:
                self.host.far_end_gone(leg)
            self._gone(ev, d, "answered")
        if self.agent is not None:
            self.host.agent_free(self.agent, tick)

    # -- the end ---------------------------------------------------------------------

    def _gone(self, ev: CallEvent, d: dict[str, Any], disposition: str) -> None:
        """CALLER_GONE (the trunk is on hook already) or RELEASE (ours: put the trunk on hook)."""
        tick = int(d.get("tick", self.clock.now_ms))
        if ev is _E.RELEASE:
            self._release(tick, str(d.get("disposition", disposition)))
        else:
            log.info("%s: caller hung up (%s)", self.id, d.get("reason", ""))
            self._end(tick, disposition)

    def _release(self, tick: int, disposition: str) -> None:
        """Our side ends the call: its record, then the trunk goes on hook."""
        self._end(tick, disposition)
        self.host.release_trunk(self.caller.chan, tick)

    def _end(self, tick: int, disposition: str) -> None:
        self.leaving = True
        self.end_ms = tick
        self.disposition = disposition
        self.transition(_S.ENDED)

    def enter_ended(self, prev: CallState) -> None:
        self.host.record(Event(self.boot, self.end_ms if self.end_ms is not None else self.clock.now_ms, "call_end",
                               self.id, self.queue, self.agent, {"disposition": self.disposition}))
        self.host.record(self.cdr())
        self.terminate(TermCause.REGULAR)

    def on_terminate(self, cause: TermCause) -> None:
        self.host.ended(self)

    def mark(self, now_ms: int) -> CallMark:
        """The call's durable mark as of `now_ms`: what its record says if the engine dies now."""
        return CallMark(
            call_id=self.id, config_version=self.config_version, trunk=self.trunk_name, ani=self.ani,
            dnis=self.dnis, queue=self.queue, agent=self.agent, calendar_start=self.calendar_start,
            start_ms=self.start_ms, queue_entry_ms=self.queue_entry_ms, answer_ms=self.answer_ms,
            mark_ms=max(now_ms, self.start_ms))

    def cdr(self) -> CdrRecord:
        end = self.end_ms if self.end_ms is not None else self.clock.now_ms
        wait = self.answer_ms - self.queue_entry_ms \
            if self.answer_ms is not None and self.queue_entry_ms is not None else None
        talk = end - self.answer_ms if self.answer_ms is not None else None
        return CdrRecord(
            call_id=self.id, config_version=self.config_version, trunk=self.trunk_name, ani=self.ani,
            dnis=self.dnis, queue=self.queue, agent=self.agent, disposition=self.disposition,
            calendar_start=self.calendar_start, start_ms=self.start_ms, queue_entry_ms=self.queue_entry_ms,
            answer_ms=self.answer_ms, end_ms=end, wait_ms=wait, talk_ms=talk)


def caller_leg(chan: int, trunk_name: str) -> Leg:
    return Leg(LegKind.FXO, chan, trunk_name, Role.CALLER)


def agent_leg(chan: int, phone_name: str) -> Leg:
    return Leg(LegKind.FXS, chan, phone_name, Role.AGENT)
