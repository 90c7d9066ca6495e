"""The call machine: one inbound call from the trunk's answer to its record.

A call is a declared state machine (e1t1.fsm) over its legs (appliance.calls.legs):
the caller's leg from the start, an agent's leg for each phone the ACD rings for it
(several with ``ring_all``), the answering agent's once connected.

::

    IVR --key: queue(s)--> QUEUED --offer--> OFFERED --agent answers--> CONNECTED
     ^  (route: queue)      ^  |                |                           |
     |                      |  +--requeued------+                           |
     +--routed: ivr---------+--routed: hangup--> LEAVING (prompt) --------->|
     +--------------- caller gone, hang-up, release ---------------------> ENDED

- IVR: the menu's greeting plays; after it, the menu's timeout runs (TIMEOUT);
  keys go to the menu walk (appliance.ivr). A route that names queues starts the
  call in its queues, without a menu.
- QUEUED: the caller hears the queue's hold (ringback, or a looped prompt) and
  now and then an announcement (position, expected wait); the ACD offers the call
  to agents' phones (OFFERED). A key goes to the ACD (the queue's exit key).
- OFFERED: phones ring; one answers (AGENT_ANSWERED, the ACD decides which) or
  the ACD takes every offer back (REQUEUED: QUEUED again, the place kept).
- ROUTED: the ACD lets the caller go: to an IVR (its menu), or to a prompt and
  hang-up (LEAVING).
- CONNECTED: the legs are bridged; either side hangs up.
- ENDED: the call's record is written and the machine terminates.

A call from a PRI span (its caller's leg a B-channel, LegKind.PRI) also carries what the SETUP said
of its numbers (`line`: the timeslot, the calling number's type of number, plan, presentation and
screening, the called number's type and plan; in its call_start event and so in its record) and the
Q.850 cause it was cleared with (`cause`: the far end's, the line's, or ours: 16 unless the host
set another, as for a call refused without a route; in its call_end event). CALLER_GONE and RELEASE
may name the disposition (a PRI call's ``line_fault``, ``failed``, ``rejected``): it is the
record's, whatever the state.

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
from appliance.storage import CdrRecord
from appliance.storage.cdr import CallMark
from e1t1.clock import Clock
from e1t1.fsm import StateDef, StateMachine, TermCause

log = logging.getLogger("cicbox.calls")

HOLD_LOOP_SAMPLES = 0x7FFFFFFF
"""A hold prompt goes round its buffer this many samples (about 74 hours)."""

#: why the ACD let a caller go to a prompt and hang-up -> the call's disposition
ROUTED_DISPOSITION = {"blacklist": "blocked", "full": "busy", "timeout": "no_agent", "no_agents": "no_agent",
                      "exit_key": "exit"}


class CallState(enum.Enum):
    IVR = 1
    QUEUED = 2
    OFFERED = 3
    CONNECTED = 4
    LEAVING = 5
    ENDED = 6


class CallEvent(enum.Enum):
    DIGIT = 1            # the caller pressed a key (data: digit, tick)
    PROMPT_DONE = 2      # the prompt playing finished
    TIMEOUT = 3          # the menu's timeout after the greeting
    OFFERED = 4          # the ACD rings an agent's phone (data: leg, agent)
    REQUEUED = 5         # no phone rings for the call any more: waiting again
    AGENT_ANSWERED = 6   # the ACD gave the call to the agent whose phone went off hook (data: tick, agent, chan)
    CALLER_GONE = 7      # the trunk's far end hung up, or the line went (data: tick, reason; cause, disposition)
    AGENT_GONE = 8       # the agent hung up (data: tick)
    RELEASE = 9          # our side ends the call (data: tick, disposition)
    ROUTED = 10          # the ACD lets the caller go (data: kind ivr|hangup, name, outcome)
    ANNOUNCE = 11        # play these prompts over the hold (data: language, prompts)
    RING_STOPPED = 12    # the ACD stopped ringing one phone (data: chan)


class CallHost(Protocol):
    """What a call needs from the layer that owns it."""

    @property
    def media(self) -> Any: ...                     # the channel scheduler (play, tone, bridge...)
    def prompt(self, language: str, name: str) -> Any: ...
    def release_trunk(self, chan: int, tick: int, cause: int | None = None) -> None: ...   # cause: a PRI call's
    def far_end_gone(self, leg: Leg) -> None: ...   # tell an agent's phone the caller went
    def enqueue(self, call: CallMachine) -> Any: ...   # None: waiting; else (Target, outcome): go there
    def leave_queue(self, call: CallMachine, outcome: str) -> None: ...
    def queue_digit(self, call: CallMachine, digit: str) -> None: ...
    def agent_free(self, agent: str, call: CallMachine, tick: int) -> None: ...
    def emit(self, kind: str, *, call_id: str | None = None, queue: str | None = None, agent: str | None = None,
             detail: dict[str, Any] | None = None, tick: int | None = None) -> None: ...
    def record(self, rec: CdrRecord) -> None: ...
    def ended(self, call: CallMachine) -> None: ...  # the call terminated: forget it


_S = CallState
_E = CallEvent
_GONE = frozenset({_E.CALLER_GONE, _E.RELEASE})
_WAIT = frozenset({_E.DIGIT, _E.PROMPT_DONE, _E.ANNOUNCE, _E.ROUTED, _E.RING_STOPPED})


class CallMachine(StateMachine[CallState, CallEvent]):
    """One inbound call."""

    PROTOCOL = "call"
    TIMEOUT = CallEvent.TIMEOUT
    TABLE = {
        _S.IVR: StateDef(frozenset({_E.DIGIT, _E.PROMPT_DONE, _E.TIMEOUT}) | _GONE,
                         frozenset({_S.QUEUED, _S.LEAVING, _S.ENDED}), "st_ivr", on_enter="enter_ivr"),
        _S.QUEUED: StateDef(frozenset({_E.OFFERED, _E.REQUEUED}) | _WAIT | _GONE,
                            frozenset({_S.OFFERED, _S.IVR, _S.LEAVING, _S.ENDED}), "st_queued",
                            on_enter="enter_queued"),
        _S.OFFERED: StateDef(frozenset({_E.AGENT_ANSWERED, _E.REQUEUED, _E.OFFERED}) | _WAIT | _GONE,
                             frozenset({_S.CONNECTED, _S.QUEUED, _S.IVR, _S.LEAVING, _S.ENDED}), "st_offered"),
        _S.CONNECTED: StateDef(frozenset({_E.AGENT_GONE, _E.DIGIT, _E.PROMPT_DONE}) | _GONE,
                               frozenset({_S.ENDED}), "st_connected", on_enter="enter_connected"),
        _S.LEAVING: StateDef(frozenset({_E.PROMPT_DONE, _E.DIGIT}) | _GONE, frozenset({_S.ENDED}), "st_leaving"),
        _S.ENDED: StateDef(frozenset(), frozenset(), on_enter="enter_ended"),
    }

    def __init__(self, host: CallHost, call_id: str, caller: Leg, ani: str | None, dnis: str,
                 config: SiteConfig, config_version: int, ivr: str | None, clock: Clock,
                 calendar_start: str, route_queues: MenuChoice | None = None,
                 line: dict[str, Any] | None = None, start_ms: int | None = None) -> None:
        super().__init__(f"call({call_id})", CallState.IVR, clock)
        self.host = host
        self.id = call_id
        self.legs: list[Leg] = [caller]
        self.bridge: Bridge | None = None
        self.ani = ani
        self.dnis = dnis
        self.config = config
        self.config_version = config_version
        self.walk = MenuWalk(ivr, config.ivrs[ivr]) if ivr is not None else None   # None: no menu
        self.language = self.walk.greeting[0] if self.walk is not None else _first_language(config)
        # its start: now, or when its line first had it (a PRI call's SETUP, before overlap digits)
        self.start_ms = clock.now_ms if start_ms is None else start_ms
        self.state_since_ms = clock.now_ms
        self.calendar_start = calendar_start
        # What the call asks of the ACD (its menu choice or route): queues, skills, priority.
        self.queues: tuple[str, ...] = ()
        self.left_queues: set[str] = set()       # of those, the ones it left (timeout, overflow) waiting on
        self.skills: dict[str, int] = {}
        self.priority = 0
        self.queue: str | None = None        # the queue it waits in (the first of its queues), or was answered from
        self.agent: str | None = None        # the agent who answered
        self.queue_entry_ms: int | None = None   # first entry into a queue
        self.answer_ms: int | None = None
        self.end_ms: int | None = None
        self.disposition = ""
        self.leaving = False                 # ending: what the ACD does now is not news
        self._announcing = False             # an announcement plays over the hold
        self._leave_prompt: tuple[str, str] | None = None
        self._offered: list[str] = []       # the agents whose phones ring for it
        self.line = dict(line or {})         # a PRI call's: timeslot, the numbers' attributes as received
        self.cause: int | None = None        # a PRI call's clearing cause (Q.850)
        host.emit("call_start", call_id=call_id, detail={
            "trunk": caller.name, "ani": ani, "dnis": dnis, "config_version": config_version,
            "calendar_start": calendar_start, **self.line,
            # a start before the event (a PRI SETUP whose number came by overlap digits): the record's
            **({"start_ms": self.start_ms} if self.start_ms != clock.now_ms else {})})
        self._route_queues = route_queues    # a route straight to queues: entered by start()
        if route_queues is not None:
            self.walk = None
        else:
            self.enter_ivr(CallState.IVR)

    def start(self) -> None:
        """A call routed straight to queues enters them, once its host knows it by id (an offer made
        at once must find the call; from the constructor it would not, and the agent's phone would
        look as if it refused)."""
        choice, self._route_queues = self._route_queues, None
        if choice is not None and self.state is _S.IVR:
            self._to_queues(choice, self.clock.now_ms)

    # -- what the call is made of ----------------------------------------------------

    @property
    def caller(self) -> Leg:
        return self.legs[0]

    @property
    def agent_leg(self) -> Leg | None:
        return next((leg for leg in self.legs if leg.role is Role.AGENT), None)

    @property
    def ringing_legs(self) -> list[Leg]:
        return [leg for leg in self.legs if leg.role is Role.AGENT]

    @property
    def offered_to(self) -> str | None:
        """The agent whose phone rings for the call (the first, with ring_all)."""
        return self._offered[0] if self._offered and self.state is _S.OFFERED else None

    @property
    def trunk_name(self) -> str:
        return self.caller.name

    @property
    def ani_presentation(self) -> str | None:
        """The calling number's presentation as received (a PRI call's: allowed, restricted, unavailable)."""
        value = self.line.get("ani_presentation")
        return str(value) if value is not None else None

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
        if choice.choice is Choice.QUEUE and choice.queues:
            self._to_queues(choice, tick)
        elif choice.choice is Choice.HANG_UP:
            self._release(tick, "ivr_hangup")
        else:
            self._greet()

    # -- queue and offer -------------------------------------------------------------

    def _to_queues(self, choice: MenuChoice, tick: int) -> None:
        """Into the ACD with what the menu choice (or route) asks: queues, skills, priority."""
        self.queues = choice.queues
        self.skills = dict(choice.skills)
        self.priority = choice.priority
        self.queue = self.queues[0]
        if self.queue_entry_ms is None:
            self.queue_entry_ms = tick
        self._offered = []
        if self.state is _S.IVR:
            self.transition(_S.QUEUED)
        routing = self.host.enqueue(self)
        if routing is not None:
            target, outcome = routing
            self._routed(target.kind, target.name, outcome)

    def enter_queued(self, prev: CallState) -> None:
        if prev is _S.IVR:
            self._hold()

    def _hold(self) -> None:
        """The queue's hold: ringback, or its prompt going round."""
        chan = self.caller.chan
        media = self.host.media
        media.stop_play(chan)
        hold = self._hold_prompt()
        if hold is None:
            media.tone(chan, self.config.site.zone, "ringback")
        else:
            media.stop_tone(chan)
            media.play(chan, self.host.prompt(self.language, hold), HOLD_LOOP_SAMPLES)

    def _hold_prompt(self) -> str | None:
        q = self.config.queues.get(self.queue or "")
        hold = q.hold if q is not None else "ringback"
        return None if hold in (None, "ringback") else str(hold)

    def _waiting(self, ev: CallEvent, d: dict[str, Any]) -> bool:
        """What QUEUED and OFFERED share: keys, announcements, the ACD letting the caller go."""
        if ev is _E.DIGIT:
            self.host.queue_digit(self, str(d["digit"]))
        elif ev is _E.ANNOUNCE:
            chan = self.caller.chan
            media = self.host.media
            media.stop_tone(chan)
            media.stop_play(chan)
            samples = _joined([self.host.prompt(str(d["language"]), p) for p in d["prompts"]])
            media.play(chan, samples)
            self._announcing = True
        elif ev is _E.PROMPT_DONE:
            if self._announcing:
                self._announcing = False
                self._hold()
        elif ev is _E.ROUTED:
            self._routed(str(d["kind"]), str(d["name"]), str(d["outcome"]))
        elif ev is _E.RING_STOPPED:
            self.legs = [leg for leg in self.legs if not (leg.role is Role.AGENT and leg.chan == d["chan"])]
        else:
            return False
        return True

    def _routed(self, kind: str, name: str, outcome: str) -> None:
        self._drop_agent_legs()
        self._offered = []
        chan = self.caller.chan
        media = self.host.media
        media.stop_tone(chan)
        media.stop_play(chan)
        self._announcing = False
        if kind == "ivr" and name in self.config.ivrs:
            self.walk = MenuWalk(name, self.config.ivrs[name])
            self.language = self.walk.greeting[0]
            self.transition(_S.IVR)
        else:
            self._leave_prompt = (self.language, name)
            self.disposition = ROUTED_DISPOSITION.get(outcome, "no_agent")
            self.transition(_S.LEAVING)
            try:
                media.play(chan, self.host.prompt(self.language, name))
            except KeyError:
                log.warning("%s: prompt %s (%s) not loaded: hanging up", self.id, name, self.language)
                self._release(self.clock.now_ms, self.disposition)

    def st_queued(self, ev: CallEvent, **d: Any) -> None:
        if ev is _E.OFFERED:
            self.legs.append(d["leg"])
            self._offered = [*self._offered, str(d["agent"])]
            self.transition(_S.OFFERED)
        elif ev is _E.REQUEUED:
            pass
        elif not self._waiting(ev, d):
            self._abandoned(ev, d)

    def st_offered(self, ev: CallEvent, **d: Any) -> None:
        if ev is _E.AGENT_ANSWERED:
            self.answer_ms = int(d["tick"])
            self.agent = str(d["agent"])
            self.legs = [leg for leg in self.legs if leg.role is not Role.AGENT or leg.chan == d["chan"]]
            self.transition(_S.CONNECTED)
        elif ev is _E.OFFERED:
            self.legs.append(d["leg"])
            self._offered = [*self._offered, str(d["agent"])]
        elif ev is _E.REQUEUED:
            self._drop_agent_legs()
            self._offered = []
            self.transition(_S.QUEUED)
        elif not self._waiting(ev, d):
            self._abandoned(ev, d)

    def _abandoned(self, ev: CallEvent, d: dict[str, Any]) -> None:
        """The caller hung up while waiting (CALLER_GONE), or our side ends a waiting call (RELEASE)."""
        self.leaving = True
        hung_up = ev is _E.CALLER_GONE and d.get("disposition") is None     # not the line going
        self.host.leave_queue(self, "abandoned" if hung_up else "released")
        self._drop_agent_legs()
        self._gone(ev, d, "abandoned")

    def _drop_agent_legs(self) -> None:
        self.legs = [leg for leg in self.legs if leg.role is not Role.AGENT]

    # -- leaving: a prompt, then the hang-up ------------------------------------------

    def st_leaving(self, ev: CallEvent, **d: Any) -> None:
        if ev is _E.PROMPT_DONE:
            self._release(self.clock.now_ms, self.disposition)
        elif ev is _E.DIGIT:
            pass
        else:
            self._gone(ev, d, self.disposition)

    # -- connected -------------------------------------------------------------------

    def enter_connected(self, prev: CallState) -> None:
        h = self.host
        chan = self.caller.chan
        h.media.stop_play(chan)
        # Connected, the caller's keys mean nothing (st_connected ignores them): a B-channel stops
        # listening (an FXO line's machine owns its detector: it may read caller ID by DTMF).
        if self.caller.kind is LegKind.PRI:
            h.media.detect_dtmf(chan, False)
        leg = self.agent_leg
        if leg is not None:
            self.bridge = Bridge(self.caller, leg)
            self.bridge.join(h.media)
            # the agent's keys during the call (*24<reason>#: not ready after it); the phone stops
            # listening when it goes on hook
            h.media.detect_dtmf(leg.chan)

    def st_connected(self, ev: CallEvent, **d: Any) -> None:
        if ev in (_E.DIGIT, _E.PROMPT_DONE):
            return
        tick = int(d.get("tick", self.clock.now_ms))
        if self.bridge is not None:
            self.bridge.leave(self.host.media)
        leg = self.agent_leg
        if ev is _E.CALLER_GONE:
            if leg is not None:
                self.host.far_end_gone(leg)
            self._note_cause(d)
            self._end(tick, str(d.get("disposition") or "answered"))
        elif ev is _E.AGENT_GONE:
            self._release(tick, "answered")
        else:                            # our side ends it (the engine stops): the agent hears it go
            if leg is not None:
                self.host.far_end_gone(leg)
            self._gone(ev, d, "answered")
        if self.agent is not None:
            self.host.agent_free(self.agent, self, tick)

    # -- the end ---------------------------------------------------------------------

    def _gone(self, ev: CallEvent, d: dict[str, Any], disposition: str) -> None:
        """CALLER_GONE (the trunk is on hook already) or RELEASE (ours: put the trunk on hook)."""
        tick = int(d.get("tick", self.clock.now_ms))
        if ev is _E.RELEASE:
            self._release(tick, str(d.get("disposition", disposition)))
        else:
            log.info("%s: caller hung up (%s)", self.id, d.get("reason", ""))
            self._note_cause(d)
            self._end(tick, str(d.get("disposition") or disposition))

    def _note_cause(self, d: dict[str, Any]) -> None:
        """The cause a PRI call was cleared with, as CALLER_GONE names it (the first one counts)."""
        cause = d.get("cause")
        if self.cause is None and cause is not None:
            self.cause = int(cause)

    def _release(self, tick: int, disposition: str) -> None:
        """Our side ends the call: its record, then the trunk goes on hook (a PRI call: cleared with its
        cause, 16 unless the host set another)."""
        if self.cause is None and self.caller.kind is LegKind.PRI:
            self.cause = 16
        self._end(tick, disposition)
        self.host.release_trunk(self.caller.chan, tick, self.cause)

    def _end(self, tick: int, disposition: str) -> None:
        self.leaving = True
        self.end_ms = tick
        self.disposition = disposition
        self.transition(_S.ENDED)

    def enter_ended(self, prev: CallState) -> None:
        detail: dict[str, Any] = {"disposition": self.disposition}
        if self.caller.kind is LegKind.PRI:
            detail["cause"] = self.cause
        self.host.emit("call_end", call_id=self.id, queue=self.queue, agent=self.agent, detail=detail,
                       tick=self.end_ms)
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
            answer_ms=self.answer_ms, end_ms=end, wait_ms=wait, talk_ms=talk,
            timeslot=self.line.get("timeslot"), ani_ton=self.line.get("ani_ton"), ani_npi=self.line.get("ani_npi"),
            ani_presentation=self.line.get("ani_presentation"), ani_screening=self.line.get("ani_screening"),
            cause=self.cause)


def _first_language(config: SiteConfig) -> str:
    return next((ivr.language for ivr in config.ivrs.values()), "en")


def _joined(parts: list[Any]) -> Any:
    out = parts[0][:0] if parts else b""
    for p in parts:
        out += p
    return out


def caller_leg(chan: int, trunk_name: str, kind: LegKind = LegKind.FXO) -> Leg:
    """The caller's leg: an FXO trunk's line, or (kind PRI) a PRI span's B-channel, named by its span."""
    return Leg(kind, chan, trunk_name, Role.CALLER)


def agent_leg(chan: int, phone_name: str) -> Leg:
    return Leg(LegKind.FXS, chan, phone_name, Role.AGENT)
