"""Automatic call distribution: queues of waiting callers and the agents who take them.

Three parts, one owner each: :mod:`appliance.acd.router` decides (indexes, the
strategies, skills, places; no I/O), :mod:`appliance.acd.agents` owns agent state,
:mod:`appliance.acd.queues` owns each queue's timers (overflow, announcements,
widening). :class:`Acd` ties them together on the control tier's clock and speaks to
the call layer (its :class:`AcdHost`) in call ids only: it never holds a call object.

The rules that make the known failures of ACDs impossible here:

- An offer is made only to a ready agent whose phone is on hook and idle; an offer
  the phone refuses anyway makes the agent no candidate and the caller is offered to
  the next ready agent at once, in the same period, until none is left.
- A caller being offered is out of the router's indexes, so no two agents are ever
  offered the same caller except by ``ring_all``; an offer that ends unanswered puts
  the caller back at its place (priority, then first entry) and moves it on at once.
- An answer withdraws the caller from every other queue and every other ringing
  phone in the same period (a ring-all loser hears dial tone and stays ready).
- A queue removed by a configuration change keeps serving the callers in it (and the
  calls that started on the older version) until the last one leaves.
- Agents are checked against their phones on every line change and every second
  (appliance.acd.agents) and healed, with an ``agent_heal`` event saying why.

Every change is an event (the shared vocabulary of appliance.storage's ``Event``):
the figures and each call's record are folds over them (appliance.figures).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.acd import announce
from appliance.acd.agents import MISSED, OTHER, RESTART, Agent, AgentEvent, AgentHost, Agents, AgentState, LoginResult
from appliance.acd.queues import QueueMachine, Stay
from appliance.acd.router import QueueSpec, Router, Waiter
from appliance.collector import freeze_survivors
from appliance.config.model import Acd as AcdSettings
from appliance.config.model import SiteConfig
from appliance.config.model import Target as ConfigTarget
from appliance.config.numbers import number_matches
from e1t1.clock import Clock, Timer

log = logging.getLogger("cicbox.acd")

__all__ = ["MISSED", "OTHER", "RESTART", "Acd", "AcdHost", "Agent", "AgentState", "LoginResult", "Target"]


@dataclass(frozen=True)
class Target:
    """Where a caller goes when a queue lets it go: a queue, an IVR, or a prompt then hang-up."""

    kind: str       # queue | ivr | hangup
    name: str

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.name}"

    @staticmethod
    def of(spec: ConfigTarget | None) -> Target | None:
        """The target a configuration's target entry names (None for none)."""
        return Target(spec.kind(), spec.name()) if spec is not None else None


class AcdHost(Protocol):
    """What the ACD needs from the call layer (by call id)."""

    def offer(self, call_id: str, agent: str, phone: str) -> bool: ...    # ring the phone; False: it cannot
    def withdraw(self, call_id: str, agent: str, phone: str) -> None: ...  # stop ringing it
    def requeued(self, call_id: str) -> None: ...                          # no phone rings for it any more
    def route(self, call_id: str, target: Target, outcome: str) -> None: ...   # it leaves the ACD
    def announce(self, call_id: str, language: str, prompts: list[str]) -> None: ...
    def emit(self, kind: str, *, call_id: str | None = None, queue: str | None = None, agent: str | None = None,
             detail: dict[str, Any] | None = None) -> None: ...
    def phone_idle(self, phone: str) -> bool: ...
    def phone_ringing(self, phone: str) -> bool: ...
    def call_up(self, call_id: str) -> bool: ...


@dataclass
class _Call:
    """A caller the ACD has: its waiter (its place), its queues' stays, the phones ringing for it."""

    waiter: Waiter
    ani: str | None
    language: str
    offers: dict[str, tuple[str, Timer]]       # agent -> (queue, ring timer)
    routed: bool = False                       # in the router's indexes now (not while offered)
    reserved: str | None = None                # sticky: the agent it waits for
    reserve_timer: Timer | None = None


class Acd:
    """Queues and agents on the control tier's clock."""

    def __init__(self, clock: Clock, host: AcdHost) -> None:
        self.clock = clock
        self.host = host
        self.router = Router()
        self.agents = Agents(clock, _AgentSide(self))
        self.queues: dict[str, QueueMachine] = {}
        self.calls: dict[str, _Call] = {}
        self.settings = AcdSettings()
        self._member_of: dict[str, tuple[str, ...]] = {}     # agent -> its queues
        self._seq = 0
        self._sticky: dict[str, tuple[str, int]] = {}        # caller number -> (agent, answered at ms)
        self._serving = False                                # re-entry guard of _dispatch_ready
        self._due: list[str] = []                            # agents that became candidates meanwhile

    # -- configuration ---------------------------------------------------------------------

    def configure(self, cfg: SiteConfig) -> None:
        """(Re)load agents and queues from a site configuration. Agents keep their state; a queue
        no longer configured is retired: it serves its callers to the end, then goes."""
        self.settings = cfg.acd
        self.agents.configure([(a.number, a.name, a.pin, dict(a.skills)) for a in cfg.agents],
                              cfg.acd.max_missed_offers)
        for name, spec in cfg.queues.items():
            q = self.queues.get(name)
            if q is None:
                self.queues[name] = QueueMachine(name, spec, self.clock, self._no_agents)
            else:
                q.spec, q.retired = spec, False
        for name, q in list(self.queues.items()):
            if name not in cfg.queues:
                q.retired = True
                self._retire_if_done(q)
        self._member_of = {}
        for name, q in self.queues.items():
            for m in q.members:
                self._member_of.setdefault(m, ())
                self._member_of[m] += (name,)
        self.router.configure({n: QueueSpec(q.spec.strategy, q.members)
                               for n, q in self.queues.items()},
                              {n: a.skills for n, a in self.agents.agents.items()},
                              self.settings.random_seed)
        for q in self.queues.values():               # the queues' presence from the agents' states now
            q.recount({m: a.state.value for m in q.members if (a := self.agents.get(m)) is not None})
        for a in self.agents.agents.values():
            if a.candidate:
                self.router.agent_ready(a.number, a.idle_since_ms)
        freeze_survivors()

    def _retire_if_done(self, q: QueueMachine) -> None:
        if q.retired and not q.stays:
            q.stop_timer()
            del self.queues[q.qname]

    # -- callers -----------------------------------------------------------------------------

    def enqueue(self, call_id: str, queues: Iterable[str], *, ani: str | None, priority: int = 0,
                skills: dict[str, int] | None = None, language: str = "en") -> tuple[Target, str] | None:
        """A caller asks for `queues`. None: it waits (and may be offered at once); else (target,
        outcome): where it must go now (blacklisted, every queue full or without agents)."""
        now = self.clock.now_ms
        wanted = list(queues)
        names = [q for q in wanted if q in self.queues]
        if not names:
            log.warning("%s: none of the queues %s exists", call_id, wanted)
            return Target("hangup", "busy"), "full"
        s = self.settings
        vip = s.vip
        if vip is not None and ani and number_matches(vip.numbers, ani):
            priority = max(priority, int(vip.priority))
        self._seq += 1
        w = Waiter(call_id=call_id, priority=priority, first_entry_ms=now, queues=(), skills=dict(skills or {}),
                   seq=self._seq)
        c = _Call(w, ani, language, {})
        self.calls[call_id] = c
        bl = s.blacklist
        if bl is not None and ani and number_matches(bl.numbers, ani):
            self._enter_event(c, names[0], first=True)
            target = Target.of(bl.then) or Target("hangup", "blocked")
            self._leave_event(call_id, names[0], "blacklist", target)
            del self.calls[call_id]
            return target, "blacklist"
        first = True
        for _ in range(len(self.queues) + 1):       # overflow at entry into another queue (no cycles: the loader)
            turned: tuple[Target, str] | None = None
            kept: list[str] = []
            for name in names:
                q = self.queues[name]
                self._enter_event(c, name, first=first)
                full = q.spec.max_callers
                nobody = Target.of(q.spec.on_no_agents)
                if full is not None and len(q.stays) >= full:
                    go = (Target.of(q.spec.on_full) or Target("hangup", "busy"), "full")
                elif q.empty and nobody is not None:
                    go = (nobody, "no_agents")
                else:
                    kept.append(name)
                    self._stay(c, q)
                    continue
                self._leave_event(call_id, name, go[1], go[0])
                turned = turned or go
            first = False
            if kept:
                break
            assert turned is not None
            if turned[0].kind == "queue" and turned[0].name in self.queues and \
                    not self.queues[turned[0].name].retired:
                names = [turned[0].name]
                continue
            del self.calls[call_id]
            return turned
        else:
            del self.calls[call_id]
            return Target("hangup", "busy"), "full"
        w.queues = tuple(kept)
        self._sticky_reserve(c)
        self._route_in(c)
        self._serve_call(c)
        return None

    def _enter_event(self, c: _Call, queue: str, *, first: bool) -> None:
        q = self.queues[queue]
        self.host.emit("queue_enter", call_id=c.waiter.call_id, queue=queue, detail={
            "priority": c.waiter.priority, "skills": dict(c.waiter.skills), "first": first,
            "sl_threshold_ms": q.spec.sl_threshold_ms, "short_abandon_ms": q.spec.short_abandon_ms})

    def _leave_event(self, call_id: str, queue: str, outcome: str, target: Target | None) -> None:
        self.host.emit("queue_leave", call_id=call_id, queue=queue,
                       detail={"outcome": outcome, "to": target.text if target is not None else None})

    def _stay(self, c: _Call, q: QueueMachine) -> None:
        """The caller's timers in `q`: overflow on timeout, announcements, widening."""
        cid = c.waiter.call_id
        stay = Stay(cid, self.clock.now_ms)
        q.stays[cid] = stay
        spec = q.spec
        wait = spec.max_wait_ms
        if wait is not None:
            stay.timers.append(self.clock.call_later(int(wait), functools.partial(self._timed_out, cid, q.qname)))
        ann = spec.announce
        if ann is not None and (ann.position or ann.wait):
            stay.timers.append(self.clock.call_later(int(ann.first_after_ms),
                                                     functools.partial(self._announce, cid, q.qname)))
        for rule in spec.widen:
            stay.timers.append(self.clock.call_later(
                int(rule.after_ms), functools.partial(self._widen, cid, str(rule.skill), int(rule.min))))

    def _sticky_reserve(self, c: _Call) -> None:
        sticky = self.settings.sticky
        if sticky is None or not c.ani:
            return
        seen = self._sticky.get(c.ani)
        if seen is None or self.clock.now_ms - seen[1] > int(sticky.window_days) * 86_400_000:
            return
        agent = self.agents.get(seen[0])
        if agent is None or agent.state is AgentState.LOGGED_OUT or \
                not set(self._member_of.get(agent.number, ())) & set(c.waiter.queues):
            return
        c.reserved = agent.number
        c.reserve_timer = self.clock.call_later(int(sticky.reserve_ms),
                                                functools.partial(self._unreserve, c.waiter.call_id))

    def _remember_answer(self, ani: str | None, number: str) -> None:
        """Sticky only: the caller was answered by agent `number` now. The memory is kept in answer
        order, so the answers older than the window go from its front: it holds one window's callers."""
        sticky = self.settings.sticky
        if sticky is None:
            self._sticky.clear()
            return
        now = self.clock.now_ms
        window = int(sticky.window_days) * 86_400_000
        if ani:
            self._sticky.pop(ani, None)
            self._sticky[ani] = (number, now)
        while self._sticky:
            oldest = next(iter(self._sticky))
            if now - self._sticky[oldest][1] <= window:
                break
            del self._sticky[oldest]

    def _unreserve(self, call_id: str) -> None:
        c = self.calls.get(call_id)
        if c is None or c.reserved is None:
            return
        c.reserved = None
        if c.routed:
            self.router.unreserve(call_id)
        self._serve_call(c)

    def _route_in(self, c: _Call) -> None:
        """The caller into the router's indexes, at its place (after an offer ended, too)."""
        if not c.routed and not c.offers:
            self.router.add(c.waiter)
            c.routed = True
            if c.reserved is not None:
                self.router.reserve(c.waiter.call_id, c.reserved)

    def _route_out(self, c: _Call) -> None:
        if c.routed:
            self.router.remove(c.waiter.call_id)
            c.routed = False

    # -- offers --------------------------------------------------------------------------------

    def _serve_call(self, c: _Call) -> None:
        """Offer a waiting caller to the agents its queues pick, now; a refused offer goes on to the
        next pick until one rings or none is left."""
        if c.offers or not c.routed:
            return
        cid = c.waiter.call_id
        if c.reserved is not None:
            a = self.agents.get(c.reserved)
            if a is not None and a.candidate:
                q = next(n for n in c.waiter.queues if n in self._member_of.get(a.number, ()))
                self._offer(c, q, [a.number])
            return
        for name in c.waiter.queues:
            for _ in range(len(self.agents.agents) + 1):
                picks = self.router.pick_agents(cid, name)
                if not picks:
                    break
                if self._offer(c, name, picks):
                    return

    def _offer(self, c: _Call, queue: str, picks: list[str]) -> bool:
        """Ring each picked agent's phone (one, or all of ring_all's); True if any rings. A phone that
        refuses makes its agent no candidate (so the next pick is another agent)."""
        cid = c.waiter.call_id
        q = self.queues[queue]
        rang = False
        for number in picks:
            a = self.agents[number]
            phone = a.phone
            if phone is None or not self.host.offer(cid, number, phone):
                if phone is not None and self.host.phone_idle(phone):
                    # The phone is fine: the call layer has no such waiting call. The ACD lets it go
                    # (the agent stays a candidate).
                    log.error("%s: the call layer has no such waiting call: it leaves the ACD", cid)
                    self.caller_gone(cid, "released")
                    return rang
                log.info("%s: agent %s's phone refused the offer: next agent", cid, number)
                self.agents.sync(a)                   # its phone is busy: no candidate until it changes
                continue
            if not rang:
                self._route_out(c)
            rang = True
            timer = self.clock.call_later(int(q.spec.ring_timeout_ms),
                                          functools.partial(self._ring_timeout, cid, number))
            c.offers[number] = (queue, timer)
            self.router.offered(queue, number)
            self.host.emit("offer", call_id=cid, queue=queue, agent=number)
            a.dispatch(AgentEvent.OFFER, call_id=cid, queue=queue)
        return rang

    def _end_offer(self, c: _Call, number: str, why: str) -> None:
        queue, timer = c.offers.pop(number)
        timer.cancel()
        a = self.agents.get(number)
        if a is not None and a.phone is not None:
            self.host.withdraw(c.waiter.call_id, number, a.phone)
        self.host.emit("offer_end", call_id=c.waiter.call_id, queue=queue, agent=number, detail={"why": why})
        if a is not None and a.state is AgentState.OFFERED and a.call_id == c.waiter.call_id:
            a.dispatch(AgentEvent.OFFER_END, why=why)

    def _ring_timeout(self, call_id: str, number: str) -> None:
        c = self.calls.get(call_id)
        if c is None or number not in c.offers:
            return
        log.info("%s: agent %s did not answer", call_id, number)
        self._end_offer(c, number, "no_answer")
        self._requeue(c)

    def _requeue(self, c: _Call) -> None:
        """No phone rings for the caller any more: back at its place, moved on at once."""
        if c.offers:
            return
        self.host.requeued(c.waiter.call_id)
        self._route_in(c)
        self._serve_call(c)
        self._dispatch_ready()

    def answered(self, call_id: str, number: str) -> bool:
        """Agent `number`'s phone went off hook for `call_id`. True: the call is this agent's (the
        caller leaves every queue, every other phone stops ringing); False: it is not (answered
        elsewhere first, or never offered here)."""
        c = self.calls.get(call_id)
        if c is None or number not in c.offers:
            return False
        queue, timer = c.offers.pop(number)
        timer.cancel()
        for other in sorted(c.offers, key=_num_key):
            self._end_offer(c, other, "answered_elsewhere")
        self._route_out(c)
        del self.calls[call_id]
        self.host.emit("answer", call_id=call_id, queue=queue, agent=number)
        for name in c.waiter.queues:
            if name != queue:
                self._leave_event(call_id, name, "withdrawn", None)
        self._drop_stays(c)
        if c.reserve_timer is not None:
            c.reserve_timer.cancel()
        self._remember_answer(c.ani, number)
        self.agents[number].dispatch(AgentEvent.ANSWER)
        self._dispatch_ready()
        return True

    def call_ended(self, number: str, call_id: str, talk_ms: int) -> None:
        """The answered call of agent `number` is over: wrap-up (the call's queue's), then ready."""
        a = self.agents.get(number)
        if a is None or a.state is not AgentState.ON_CALL or a.call_id != call_id:
            return
        queue = a.queue
        q = self.queues.get(queue or "")
        wrap = q.spec.wrap_up_ms if q is not None else 0
        if q is not None:
            self.router.call_done(q.qname, number, talk_ms)
            q.handled(talk_ms, wrap)
        a.dispatch(AgentEvent.CALL_END, wrap_ms=wrap)
        self._dispatch_ready()

    def caller_gone(self, call_id: str, outcome: str = "abandoned") -> None:
        """The caller left while waiting or ringing (hung up: abandoned; or our side released it)."""
        c = self.calls.pop(call_id, None)
        if c is None:
            return
        for number in sorted(c.offers, key=_num_key):
            self._end_offer(c, number, "caller_gone")
        self._route_out(c)
        for name in c.waiter.queues:
            self._leave_event(call_id, name, outcome, None)
        self._drop_stays(c)
        if c.reserve_timer is not None:
            c.reserve_timer.cancel()
        self._dispatch_ready()

    def _drop_stays(self, c: _Call) -> None:
        for name in c.waiter.queues:
            self._drop_stay(c.waiter.call_id, name)

    def _drop_stay(self, call_id: str, name: str) -> None:
        """The caller's stay in queue `name` is over: its timers stop (a retired queue left empty goes)."""
        q = self.queues.get(name)
        if q is not None:
            stay = q.stays.pop(call_id, None)
            if stay is not None:
                stay.cancel()
            self._retire_if_done(q)

    def digit(self, call_id: str, key: str) -> bool:
        """A key the waiting caller pressed: the exit key of one of its queues takes it out."""
        c = self.calls.get(call_id)
        if c is None:
            return False
        for name in c.waiter.queues:
            ek = self.queues[name].spec.exit_key
            if ek is not None and ek.key == key:
                target = Target.of(ek.to)
                if target is not None:
                    self._move_out(c, name, "exit_key", target, every=True)
                    return True
        return False

    # -- overflow ------------------------------------------------------------------------------

    def _timed_out(self, call_id: str, queue: str) -> None:
        c = self.calls.get(call_id)
        q = self.queues.get(queue)
        if c is None or q is None:
            return
        target = Target.of(q.spec.on_timeout)
        self._move_out(c, queue, "timeout", target, every=False)

    def _no_agents(self, q: QueueMachine) -> None:
        target = Target.of(q.spec.on_no_agents)
        if target is None:
            return
        for call_id in list(q.stays):
            c = self.calls.get(call_id)
            if c is not None:
                self._move_out(c, q.qname, "no_agents", target, every=False)

    def _move_out(self, c: _Call, queue: str, outcome: str, target: Target | None, *, every: bool) -> None:
        """The caller leaves `queue` (all its queues if `every`) with `outcome`: if it waits nowhere
        else it goes to `target` (a queue: joined, its place kept; an IVR or a hang-up: the call layer)."""
        cid = c.waiter.call_id
        leaving = list(c.waiter.queues) if every else [queue]
        rest = tuple(n for n in c.waiter.queues if n not in leaving)
        if not rest and target is None:
            # A timeout with nowhere to go: the caller waits on (the queue names no on_timeout).
            return
        for number in sorted(c.offers, key=_num_key):
            if every or c.offers[number][0] == queue or not rest:
                self._end_offer(c, number, "withdrawn")
        for name in leaving:
            self._leave_event(cid, name, outcome, target if not rest else None)
            if c.routed:
                self.router.leave_queue(cid, name)
            self._drop_stay(cid, name)
        if not c.routed:
            c.waiter.queues = rest              # (while routed the router keeps them, as it leaves them)
        if rest:
            self._requeue(c)
            return
        assert target is not None
        if target.kind == "queue" and target.name in self.queues and not self.queues[target.name].retired:
            q = self.queues[target.name]
            if c.routed:
                self.router.join_queue(cid, target.name)
            else:
                c.waiter.queues = (target.name,)
            self._enter_event(c, target.name, first=False)
            self._stay(c, q)
            if not c.offers:
                self.host.requeued(cid)
            self._route_in(c)
            self._serve_call(c)
            return
        self._route_out(c)
        del self.calls[cid]
        if c.reserve_timer is not None:
            c.reserve_timer.cancel()
        self.host.route(cid, target, outcome)

    # -- announcements and widening ------------------------------------------------------------

    def _announce(self, call_id: str, queue: str) -> None:
        c = self.calls.get(call_id)
        q = self.queues.get(queue)
        if c is None or q is None or call_id not in q.stays:
            return
        ann = q.spec.announce
        if ann is None:
            return
        q.stays[call_id].timers.append(self.clock.call_later(int(ann.every_ms),
                                                             functools.partial(self._announce, call_id, queue)))
        if c.offers:
            return                                   # a phone rings for it: no announcement now
        position = self.router.position(call_id, queue)
        if position is None:
            return
        prompts: list[str] = []
        try:
            if ann.position:
                prompts += announce.position_prompts(c.language, position)
            minutes = q.ewt_minutes(position)
            if ann.wait and minutes is not None:
                prompts += announce.wait_prompts(c.language, minutes)
        except ValueError as exc:
            log.warning("%s: no announcement in %s: %s", call_id, c.language, exc)
            return
        if prompts:
            self.host.announce(call_id, c.language, prompts)

    def _widen(self, call_id: str, skill: str, minimum: int) -> None:
        c = self.calls.get(call_id)
        if c is None or skill not in c.waiter.skills or c.waiter.skills[skill] <= minimum:
            return
        if c.routed:
            self.router.widen(call_id, skill, minimum)
        else:
            c.waiter.skills[skill] = minimum
        self._serve_call(c)

    # -- agents ----------------------------------------------------------------------------------

    def agent_candidate(self, a: Agent, ready: bool) -> None:
        """The agents module: `a` is a routing candidate now (or no longer)."""
        if ready:
            self._due.append(a.number)
            self._dispatch_ready()
        else:
            self.router.agent_unavailable(a.number)

    def _dispatch_ready(self) -> None:
        """The agents that became candidates take the best waiting place over their queues; one who
        finds none (or whose offer does not ring) is put in the router's ready set. An agent who
        takes a caller at once is never put there: that saves the router two index updates per
        freed agent when callers wait."""
        if self._serving:
            return
        self._serving = True
        try:
            while self._due:
                number = self._due.pop(0)
                a = self.agents.get(number)
                if a is None or not a.candidate:
                    continue
                w = self.router.pick_waiter(number)
                c = self.calls.get(w.call_id) if w is not None else None
                if w is not None and c is not None:
                    queue = next((n for n in w.queues if n in self._member_of.get(number, ())), w.queues[0])
                    if self._offer(c, queue, [number]):
                        continue
                if a.candidate:
                    self.router.agent_ready(number, a.idle_since_ms)
        finally:
            self._serving = False

    def agent_moved(self, a: Agent) -> None:
        for name in self._member_of.get(a.number, ()):
            q = self.queues.get(name)
            if q is not None:
                q.agent_moved(a.number, a.state.value)

    def phone_changed(self, phone: str) -> None:
        """A line change on `phone`: its agent checked against it (and a candidate again once idle)."""
        a = self.agents.at(phone)
        if a is not None:
            self.agents.check(a)

    def each_second(self) -> None:
        self.agents.check_busy()

    # -- feature codes -----------------------------------------------------------------------------

    def login(self, number: str, phone: str, pin: str | None = None) -> LoginResult:
        return self.agents.login(number, phone, pin)

    def restore(self, number: str, phone: str) -> bool:
        """An agent who was logged in at `phone` when the engine last stopped: logged in again, not
        ready (reason ``restart``)."""
        a = self.agents.get(number)
        if a is None or a.state is not AgentState.LOGGED_OUT or self.agents.at(phone) is not None:
            return False
        return self.agents.login(number, phone, None, restore=True) is LoginResult.OK

    def agent_at(self, phone: str) -> Agent | None:
        return self.agents.at(phone)

    # -- views ---------------------------------------------------------------------------------------

    def waiting(self, queue: str) -> list[tuple[str, int]]:
        """(call id, entry ms) of the callers in `queue`, oldest first."""
        q = self.queues.get(queue)
        if q is None:
            return []
        return sorted(((s.call_id, s.entered_ms) for s in q.stays.values()), key=lambda x: x[1])

    def queues_view(self) -> dict[str, dict[str, Any]]:
        now = self.clock.now_ms
        out: dict[str, dict[str, Any]] = {}
        for name, q in sorted(self.queues.items()):
            states: dict[str, int] = {}
            for m in q.members:
                a = self.agents.get(m)
                if a is not None:
                    states[a.state.value] = states.get(a.state.value, 0) + 1
            out[name] = {"waiting": len(q.stays),
                         "longest_wait_ms": max((now - s.entered_ms for s in q.stays.values()), default=0),
                         "agents": states, "state": q.state.name.lower(), "retired": q.retired}
        return out

    def agents_view(self) -> dict[str, dict[str, Any]]:
        return self.agents.view()


class _AgentSide(AgentHost):
    """The agents module's host: the ACD and, through it, the call layer."""

    def __init__(self, acd: Acd) -> None:
        self.acd = acd

    def emit(self, kind: str, *, agent: str, queue: str | None = None, call_id: str | None = None,
             detail: dict[str, Any] | None = None) -> None:
        self.acd.host.emit(kind, agent=agent, queue=queue, call_id=call_id, detail=detail)

    def moved(self, agent: Agent, why: str) -> None:
        if why in ("login", RESTART):
            self.acd.router.agent_logged_in(agent.number)   # fewest_calls, least_talk_time: since login
        self.acd.agent_moved(agent)

    def phone_idle(self, phone: str) -> bool:
        return self.acd.host.phone_idle(phone)

    def phone_ringing(self, phone: str) -> bool:
        return self.acd.host.phone_ringing(phone)

    def has_call(self, agent: str, call_id: str) -> bool:
        c = self.acd.calls.get(call_id)
        if c is not None:
            return agent in c.offers
        return self.acd.host.call_up(call_id)

    def available(self, agent: Agent, ready: bool) -> None:
        self.acd.agent_candidate(agent, ready)


def _num_key(number: str) -> tuple[int, str]:
    return (int(number) if number.isdigit() else 1 << 62, number)
