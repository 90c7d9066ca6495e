"""The calls of one engine: made from the trunks' reports, offered by the ACD, ended into records.

:class:`Calls` turns the line machines' reports (e1t1.analog.events) and the PRI
spans' call control reports (e1t1.isdn.events) into events of the call machines
(appliance.calls.call), is the ACD's host (offer a call to
an agent's phone, withdraw it) and every call's host (media, prompts, trunk
release, records). The engine feeds it and takes its records each period, and
the durable marks of the calls in progress (:meth:`Calls.take_marks`: a call's
mark when it starts, enters a queue or is answered, and every call's mark again
when the engine refreshes them), and the agents' logins and logouts
(AgentSession records), so that a restart knows both.

A PRI call (:meth:`Calls.pri_offered`) is a call like an FXO trunk's: its caller's leg is the
B-channel's card channel (LegKind.PRI), its trunk name the span's, its DNIS the called number.
With a route it is answered at once (CONNECT; the B-channel's DTMF detector on) and goes to its
IVR or queues; without one it is refused (cause 1, or 28 when T302 completed the number) and
recorded ``rejected``. Its release by the far end or the line (:meth:`Calls.pri_released`: the
cause, and the disposition the line gives, ``line_fault`` for an alarm or a lost link) ends its
call; our side ends one with its cause (16 unless set) through :meth:`Calls.release_trunk`.
The agent's phone shows a restricted calling number as private ('P'), an unavailable one as
out of area ('O'), as the analog caller ID does.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from appliance.acd import Acd, AgentState, Target
from appliance.calls.call import CallEvent, CallMachine, CallState, agent_leg, caller_leg
from appliance.calls.legs import Leg, LegKind
from appliance.config.model import SiteConfig
from appliance.figures import LiveFigures, Totals, fold_call
from appliance.ivr.menu import route_choice
from appliance.storage import CdrRecord
from appliance.storage.cdr import AgentSession, CallMark, Event, MarksRefreshed, Record
from e1t1.analog import callerid
from e1t1.analog.events import PhoneAnswered, PhoneHungUp, TrunkAnswered, TrunkDigit, TrunkReleased
from e1t1.analog.fxo import FxoTrunk, TrunkEvent, TrunkState
from e1t1.analog.fxs import FxsPhone, PhoneEvent, PhoneState
from e1t1.clock import Clock
from e1t1.isdn import q931
from e1t1.isdn.events import CallOffered, CallRefused, CallReleased

log = logging.getLogger("cicbox.calls")

REFUSE_TONE_MS = 4000
# The line of a call that never held one (a refused SETUP): no card channel has this number.
NO_LINE = -1
"""A refused call hears congestion this long before its trunk releases."""


class Calls:
    """Every call in progress, by id and by the channels of its legs."""

    def __init__(self, clock: Clock, media: Callable[[], Any], prompts: Any, boot: int,
                 calendar: Callable[[int], dt.datetime], current: Callable[[], tuple[int, SiteConfig]]) -> None:
        self.clock = clock
        self._media = media
        self.prompts = prompts
        self.boot = boot
        self.calendar = calendar               # engine ms -> calendar time
        self.current = current                 # the configuration version in force now
        self.acd = Acd(clock, self)
        self.trunks: dict[int, FxoTrunk] = {}
        self.phones: dict[int, FxsPhone] = {}
        self.live: dict[str, CallMachine] = {}
        self.by_trunk: dict[int, CallMachine] = {}
        self.by_phone: dict[int, CallMachine] = {}      # the call last offered to each phone's channel
        self.pri_calls: dict[int, Any] = {}             # B-channel card channel -> its Q.931 call (e1t1.isdn.call.Call)
        self.records: list[Record] = []
        self._marked: dict[str, tuple[Any, ...]] = {}   # call id -> what its last mark said
        # The calls whose mark may have changed since it was taken (new, queued, answered), by id,
        # with their order of arrival: a period's marks never look at the other calls.
        self._unmarked: dict[str, CallMachine] = {}
        self._arrival: dict[str, int] = {}
        self._phone_names: dict[str, FxsPhone] = {}     # phones by name (rebuilt if the phones change)
        self.totals = Totals()                 # offered, answered, abandoned, wait: folded from the events
        self.live_figures = LiveFigures()      # today's figures, folded from the events
        self._call_events: dict[str, list[Event]] = {}   # each call's events so far: its CDR is their fold
        self._seq = 0
        # Why new calls must be refused now (the engine's records backpressure), or None: set by the host.
        self.refuse_new: Callable[[], str | None] = lambda: None
        # Told of each call that ended (its legs as they were): the host's, the engine turns its echo
        # cancellers off.
        self.call_over: Callable[[CallMachine], None] = lambda call: None
        self.refused = 0                       # calls refused so far
        self.emit("boot", detail={"boot": boot, "calendar_start": calendar(0).isoformat()})

    # -- from the lines ------------------------------------------------------------

    def trunk_answered(self, ev: TrunkAnswered) -> None:
        trunk = self.trunks[ev.chan]
        why = self.refuse_new()
        if why is not None:
            self._refuse(trunk, why)
            return
        tag = trunk.settings_tag
        version, cfg = tag if tag is not None else self.current()
        route = cfg.route_for(trunk.trunk_name, trunk.number)
        call = self._new_call(caller_leg(trunk.chan, trunk.trunk_name), ev.ani, trunk.number, cfg, version, route)
        if route is None:
            log.warning("%s: no route for trunk %s / DNIS %s: releasing", call.id, trunk.trunk_name, trunk.number)
            call.dispatch(CallEvent.RELEASE, tick=self.clock.now_ms, disposition="failed")

    def _new_call(self, caller: Leg, ani: str | None, dnis: str, cfg: SiteConfig, version: int, route: Any,
                  line: dict[str, Any] | None = None, *, on_line: bool = True,
                  start_ms: int | None = None) -> CallMachine:
        """A call from `caller` (to its route's IVR or queues; none: it only waits for its release);
        `on_line` False: a call that never held its line (a refused SETUP), not looked up by it;
        `start_ms`: when the line had it first (a PRI SETUP before its overlap digits), else now."""
        self._seq += 1
        call_id = f"{self.boot}-{self._seq:06d}"
        now = self.clock.now_ms if start_ms is None else start_ms
        self._arrival[call_id] = self._seq
        self._call_events[call_id] = []
        call = CallMachine(self, call_id, caller, ani, dnis, cfg, version, route.ivr if route is not None else None,
                           self.clock, self.calendar(now).isoformat(timespec="seconds"),
                           route_queues=route_choice(route) if route is not None else None, line=line,
                           start_ms=start_ms)
        if call.state is not CallState.ENDED:
            self.live[call_id] = call
            if on_line:
                self.by_trunk[caller.chan] = call
            self._unmarked[call_id] = call
            call.start()                            # straight to queues: entered now that it is known
        return call

    # -- from the PRI spans ------------------------------------------------------------

    def pri_offered(self, ev: CallOffered, trunk_name: str, chan: int) -> None:
        """A PRI call for us, its called number complete, on B-channel card channel `chan` of span
        `trunk_name`: answered and made a call if the configuration in force routes it (by the span's
        name or the DNIS), else refused with cause 1 (28 when T302 completed the number) and recorded
        ``rejected``; refused with congestion (42, no record) when new calls must be."""
        pc = ev.call
        why = self.refuse_new()
        if why is not None:
            self.refused += 1
            log.warning("span %s: call on B%s refused with congestion: %s", trunk_name, ev.chan, why)
            pc.reject(q931.CAUSE_SWITCH_CONGESTION)
            return
        version, cfg = self.current()
        route = cfg.route_for(trunk_name, ev.dnis)
        line = {"line": LegKind.PRI.value, "timeslot": ev.chan, "ani_ton": _name(ev.ani_ton),
                "ani_npi": _name(ev.ani_npi), "ani_presentation": _name(ev.ani_presentation),
                "ani_screening": _name(ev.ani_screening), "dnis_ton": _name(ev.dnis_ton),
                "dnis_npi": _name(ev.dnis_npi)}
        self.pri_calls[chan] = pc
        if route is not None:
            pc.answer()                             # CONNECT: the IVR (or the queue's hold) on the B-channel
            self.media.detect_dtmf(chan)
        call = self._new_call(caller_leg(chan, trunk_name, LegKind.PRI), ev.ani, ev.dnis, cfg, version, route, line,
                              start_ms=ev.setup_ms)
        if route is None:
            call.cause = q931.CAUSE_INVALID_NUMBER_FORMAT if ev.complete_by == "t302" else q931.CAUSE_UNALLOCATED
            log.warning("%s: no route for span %s / DNIS %s: refused, cause %d", call.id, trunk_name, ev.dnis,
                        call.cause)
            call.dispatch(CallEvent.RELEASE, tick=self.clock.now_ms, disposition="rejected")

    def pri_refused(self, ev: CallRefused, trunk_name: str, chan: int | None) -> None:
        """A SETUP the span's call control refused at once (34, 44, 82, 65: the RELEASE COMPLETE is
        sent), or an overlap call that ended before its number was complete: the caller tried, so it is
        recorded with the event's disposition (``rejected``; ``abandoned`` when the caller hung up while
        dialling), its numbers and cause, the timeslot, on card channel `chan` (None: no channel was named),
        from its SETUP's time, without touching any line."""
        version, cfg = self.current()
        line = {"line": LegKind.PRI.value, "timeslot": ev.timeslot, "ani_ton": _name(ev.ani_ton),
                "ani_npi": _name(ev.ani_npi), "ani_presentation": _name(ev.ani_presentation),
                "ani_screening": _name(ev.ani_screening), "dnis_ton": _name(ev.dnis_ton),
                "dnis_npi": _name(ev.dnis_npi)}
        call = self._new_call(caller_leg(NO_LINE if chan is None else chan, trunk_name, LegKind.PRI), ev.ani,
                              ev.dnis, cfg, version, None, line, on_line=False, start_ms=ev.setup_ms)
        if ev.disposition == "abandoned":
            log.info("%s: span %s: the caller hung up while dialling (%s so far): cause %d", call.id, trunk_name,
                     ev.dnis or "no digits", ev.cause)
        else:
            log.warning("%s: span %s refused a call for DNIS %s: cause %d", call.id, trunk_name, ev.dnis, ev.cause)
        call.dispatch(CallEvent.CALLER_GONE, tick=self.clock.now_ms, reason="refused", cause=ev.cause,
                      disposition=ev.disposition)

    def pri_released(self, ev: CallReleased, chan: int) -> None:
        """A PRI call on B-channel card channel `chan` is over (its call reference and channel free): its
        call, if it is still up, hears that the caller went (the cause, and the line's disposition when the
        line ended it: ``line_fault`` for an alarm or a lost link); the channel's media stop."""
        if self.pri_calls.get(chan) is ev.call:
            del self.pri_calls[chan]
        call = self.by_trunk.get(chan)
        if call is not None and call.caller.kind is LegKind.PRI and not call.leaving:
            call.dispatch(CallEvent.CALLER_GONE, tick=ev.tick, reason=ev.reason, cause=ev.cause,
                          disposition=None if ev.by_far_end else ev.disposition)
        self.media.silence(chan)
        self.media.detect_dtmf(chan, False)

    def caller_digit(self, chan: int, digit: str, tick: int) -> None:
        """A key the caller pressed (DTMF heard on its line)."""
        call = self.by_trunk.get(chan)
        if call is not None:
            call.dispatch(CallEvent.DIGIT, digit=digit, tick=tick)

    def _refuse(self, trunk: FxoTrunk, why: str) -> None:
        """The last resort: no call is made; the caller hears congestion for REFUSE_TONE_MS, then the
        trunk releases (no record: the caller never reached the system)."""
        self.refused += 1
        log.warning("trunk %s: call refused with congestion: %s", trunk.trunk_name, why)
        _, cfg = self.current()
        self.media.tone(trunk.chan, cfg.site.zone, "congestion")

        def release() -> None:
            if trunk.chan not in self.by_trunk and trunk.state is TrunkState.UP:
                trunk.dispatch(TrunkEvent.RELEASE, tick=self.clock.now_ms)

        self.clock.call_later(REFUSE_TONE_MS, release)

    def trunk_digit(self, ev: TrunkDigit) -> None:
        self.caller_digit(ev.chan, ev.digit, ev.tick)

    def trunk_released(self, ev: TrunkReleased) -> None:
        """The far end hung up (as the trunk's disconnect signals say)."""
        call = self.by_trunk.get(ev.chan)
        if call is not None and ev.far_end:
            call.dispatch(CallEvent.CALLER_GONE, tick=ev.tick, reason=ev.reason)

    def prompt_done(self, chan: int) -> None:
        """A prompt played to its end on a trunk: the call's greeting, an announcement (the hold comes
        back) or the prompt before a hang-up (the trunk is released)."""
        call = self.by_trunk.get(chan)
        if call is not None and call.accepts(CallEvent.PROMPT_DONE):
            call.dispatch(CallEvent.PROMPT_DONE)

    def _phone_named(self, name: str | None) -> FxsPhone | None:
        if name is None:
            return None
        phone = self._phone_names.get(name)
        if phone is None or self.phones.get(phone.chan) is not phone:
            self._phone_names = {p.phone_name: p for p in self.phones.values()}
            phone = self._phone_names.get(name)
        return phone

    def phone_answered(self, ev: PhoneAnswered) -> None:
        """A ringing phone went off hook: the ACD says whether the call is its agent's (the first
        off hook wins; in one tick, the lower port: the engine takes a tick's events by port)."""
        call = self.by_phone.get(ev.chan)
        phone = self.phones[ev.chan]
        agent = self.acd.agent_at(phone.phone_name)
        if call is not None and call.state is CallState.OFFERED and agent is not None and \
                self.acd.answered(call.id, agent.number):
            self._unmarked[call.id] = call          # its mark names the answer and the agent
            call.dispatch(CallEvent.AGENT_ANSWERED, tick=ev.tick, agent=agent.number, chan=ev.chan)
            return
        log.info("%s: off hook for a call that is not its own: the line is closed", phone.phone_name)
        phone.dispatch(PhoneEvent.REMOTE_GONE)

    def phone_hung_up(self, ev: PhoneHungUp) -> None:
        call = self.by_phone.get(ev.chan)
        if call is not None and call.state is CallState.CONNECTED:
            leg = call.agent_leg
            if leg is not None and leg.chan == ev.chan:
                call.dispatch(CallEvent.AGENT_GONE, tick=ev.tick)

    def connected_at(self, chan: int) -> CallMachine | None:
        """The call connected to the agent's phone on `chan`, if it is."""
        call = self.by_phone.get(chan)
        leg = call.agent_leg if call is not None and call.state is CallState.CONNECTED else None
        return call if leg is not None and leg.chan == chan else None

    def call_of(self, chan: int) -> tuple[str, tuple[int, ...]] | None:
        """The call in progress on `chan` (a trunk's, or the one a phone answered or rings for): its id
        and its legs' channels; None if there is none."""
        call = self.by_trunk.get(chan) or self.by_phone.get(chan)
        if call is None or call.id not in self.live:
            return None
        return call.id, tuple(leg.chan for leg in call.legs)

    def phone_changed(self, chan: int) -> None:
        """A line change of a phone: its agent is checked against it (and is a candidate again once
        the phone is on hook and idle)."""
        phone = self.phones.get(chan)
        if phone is not None:
            self.acd.phone_changed(phone.phone_name)

    # -- the ACD's host (by call id) -----------------------------------------------------

    def offer(self, call_id: str, agent: str, phone_name: str) -> bool:
        phone = self._phone_named(phone_name)
        call = self.live.get(call_id)
        if phone is None or phone.state is not PhoneState.IDLE or call is None or call.leaving:
            return False
        now = self.clock.now_ms
        when = self.calendar(now)
        # a number withheld (PRI presentation restricted) shows as private, one not available as out of area
        presentation = call.ani_presentation
        number = call.ani if presentation in (None, "allowed") else None
        absent = "P" if presentation == "restricted" else None if number else "O"
        cid = callerid.CallerId(number=number, name=None, month=when.month, day=when.day, hour=when.hour,
                                minute=when.minute, number_absent=absent, name_absent=None, call_type=None)
        phone.dispatch(PhoneEvent.OFFER, cid=cid)
        self.by_phone[phone.chan] = call
        call.dispatch(CallEvent.OFFERED, leg=agent_leg(phone.chan, phone.phone_name), agent=agent)
        return True

    def withdraw(self, call_id: str, agent: str, phone_name: str) -> None:
        phone = self._phone_named(phone_name)
        call = self.live.get(call_id)
        if phone is None:
            return
        if call is not None and self.by_phone.get(phone.chan) is call:
            del self.by_phone[phone.chan]
        if phone.state is PhoneState.RINGING:
            phone.dispatch(PhoneEvent.CANCEL)
        if call is not None and not call.leaving:
            call.dispatch(CallEvent.RING_STOPPED, chan=phone.chan)

    def requeued(self, call_id: str) -> None:
        call = self.live.get(call_id)
        if call is not None and not call.leaving and call.state is CallState.OFFERED:
            call.dispatch(CallEvent.REQUEUED)

    def route(self, call_id: str, target: Target, outcome: str) -> None:
        call = self.live.get(call_id)
        if call is not None and not call.leaving:
            call.dispatch(CallEvent.ROUTED, kind=target.kind, name=target.name, outcome=outcome)

    def announce(self, call_id: str, language: str, prompts: list[str]) -> None:
        call = self.live.get(call_id)
        if call is not None and not call.leaving:
            call.dispatch(CallEvent.ANNOUNCE, language=language, prompts=prompts)

    def phone_idle(self, phone_name: str) -> bool:
        phone = self._phone_named(phone_name)
        return phone is not None and phone.state is PhoneState.IDLE

    def phone_ringing(self, phone_name: str) -> bool:
        phone = self._phone_named(phone_name)
        return phone is not None and phone.state is PhoneState.RINGING

    def call_up(self, call_id: str) -> bool:
        call = self.live.get(call_id)
        return call is not None and call.state is CallState.CONNECTED

    def emit(self, kind: str, *, call_id: str | None = None, queue: str | None = None, agent: str | None = None,
             detail: dict[str, Any] | None = None, tick: int | None = None) -> None:
        """An event for the log (appliance.storage's Event), at `tick` (default: now); an agent's login
        or logout is also its session record, so a restart knows who was logged in where."""
        now = self.clock.now_ms if tick is None else tick
        ev = Event(self.boot, now, kind, call_id, queue, agent, detail or {})
        self.records.append(ev)
        self.totals.add(ev)
        self.live_figures.add(ev)
        if call_id is not None and call_id in self._call_events:
            self._call_events[call_id].append(ev)
            call = self.live.get(call_id)
            if call is not None and queue is not None and \
                    (kind == "answer" or (kind == "queue_enter" and not (detail or {}).get("first"))):
                # The call's queue is the one it was answered in, or overflowed to: its call_end, its
                # mark and the snapshot name the queue the log names.
                call.queue = queue
                self._unmarked[call_id] = call
            elif call is not None and queue is not None and kind == "queue_leave" and queue == call.queue and \
                    (detail or {}).get("outcome") not in ("abandoned", "released"):
                # It left the queue it was named by and waits on in its others: they name it now.
                call.left_queues.add(queue)
                rest = [q for q in call.queues if q not in call.left_queues]
                if rest:
                    call.queue = rest[0]
                    self._unmarked[call_id] = call
        if kind == "agent_state" and agent is not None and detail is not None:
            a = self.acd.agents.get(agent)
            if detail.get("why") in ("login", "restart") and a is not None and a.phone is not None:
                self.records.append(AgentSession(agent, a.phone, now))   # stays logged in across a restart
            elif detail.get("state") == AgentState.LOGGED_OUT.value:
                self.records.append(AgentSession(agent, None, now))

    # -- every call's host -------------------------------------------------------------

    @property
    def media(self) -> Any:
        return self._media()

    def prompt(self, language: str, name: str) -> Any:
        return self.prompts.get(language, name)

    def release_trunk(self, chan: int, tick: int, cause: int | None = None) -> None:
        """Our side ends the call on the caller's line: an FXO trunk goes on hook; a PRI call is cleared
        with `cause` (16 if None: DISCONNECT, or RELEASE COMPLETE to a SETUP not answered)."""
        pc = self.pri_calls.get(chan)
        if pc is not None:
            pc.hangup(cause if cause is not None else q931.CAUSE_NORMAL_CLEARING)
            return
        if chan in self.trunks:
            self.trunks[chan].dispatch(TrunkEvent.RELEASE, tick=tick)

    def far_end_gone(self, leg: Leg) -> None:
        phone = self.phones.get(leg.chan)
        if phone is not None:
            phone.dispatch(PhoneEvent.REMOTE_GONE)

    def enqueue(self, call: CallMachine) -> tuple[Target, str] | None:
        self._unmarked[call.id] = call          # its mark names the queue and when it entered
        return self.acd.enqueue(call.id, call.queues, ani=call.ani, priority=call.priority, skills=call.skills,
                                language=call.language)

    def leave_queue(self, call: CallMachine, outcome: str) -> None:
        self.acd.caller_gone(call.id, outcome)

    def queue_digit(self, call: CallMachine, digit: str) -> None:
        self.acd.digit(call.id, digit)

    def agent_free(self, agent: str, call: CallMachine, tick: int) -> None:
        talk = tick - call.answer_ms if call.answer_ms is not None else 0
        self.acd.call_ended(agent, call.id, talk)

    def record(self, rec: CdrRecord) -> None:
        """A call's record: the fold of its events (committed with its end event, in one batch)."""
        events = self._call_events.pop(rec.call_id, None)
        self.records.append(CdrRecord(**fold_call(events)) if events else rec)

    def ended(self, call: CallMachine) -> None:
        self.call_over(call)
        self.live.pop(call.id, None)
        self._call_events.pop(call.id, None)
        self._marked.pop(call.id, None)
        self._unmarked.pop(call.id, None)
        self._arrival.pop(call.id, None)
        if self.by_trunk.get(call.caller.chan) is call:
            del self.by_trunk[call.caller.chan]
        for leg in call.ringing_legs:
            if self.by_phone.get(leg.chan) is call:
                del self.by_phone[leg.chan]

    def take_records(self) -> list[Record]:
        out, self.records = self.records, []
        return out

    def take_marks(self, now_ms: int, refresh: bool) -> list[CallMark | MarksRefreshed]:
        """The marks to store this period: each call in progress that is new or whose queue entry,
        answer or agent changed since its last mark, in the calls' order of arrival; with `refresh`,
        then one MarksRefreshed at `now_ms` (every call in progress was up then). Only the calls that
        were made, queued or answered since the last marks are looked at."""
        out: list[CallMark | MarksRefreshed] = []
        if self._unmarked:
            calls = sorted(self._unmarked.values(), key=lambda c: self._arrival[c.id])
            self._unmarked = {}
            for call in calls:
                said = (call.queue, call.queue_entry_ms, call.answer_ms, call.agent)
                if self._marked.get(call.id) != said:
                    self._marked[call.id] = said
                    out.append(call.mark(now_ms))
        if refresh:
            out.append(MarksRefreshed(now_ms))
        return out

    def release_all(self, disposition: str) -> int:
        """Our side ends every call in progress with `disposition` (the engine is stopping); their
        records join this period's. Returns how many calls were released."""
        calls = list(self.live.values())
        now = self.clock.now_ms
        for call in calls:
            call.dispatch(CallEvent.RELEASE, tick=now, disposition=disposition)
        return len(calls)


def _name(value: Any) -> str | None:
    """An enum's name (a number's TON, NPI, presentation, screening), or None."""
    return None if value is None else str(getattr(value, "name", value))
