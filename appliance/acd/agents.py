"""Agents: the one owner of agent state.

Each agent is a state machine on the shared base (e1t1.fsm)::

    logged_out --login--> ready --offer--> offered --answer--> on_call --end--> wrap_up --timer/*23--> ready
                            ^  \\                |  (no answer, refused,            |        (wrap_up_ms 0:
                            |   *24             |   withdrawn, answered            |         straight to ready)
                            |    v              |   elsewhere)                     v
                            +-- not_ready(reason) <---- max_missed_offers in a row ----

``*24<reason>#`` during a call or a wrap-up is kept and applies when it ends. A supervisor's
action (control.sock ``agent.state``, ``agent.logout``: :meth:`Agents.supervise`) on an agent
whose phone rings or who talks is kept the same way and applies when the offer or the call ends
(a logout then skips the wrap-up); the call is never cut. An agent
is a routing candidate (the router's ``agent_ready``) only while ready *and* its phone
is on hook and idle: a ready agent dialling a feature code, or the loser of a ring-all
offer hearing dial tone, is skipped until the phone is back on hook, so an offer is
never made to a phone that cannot ring (and a refused offer goes to the next agent).
Idle since = the later of becoming ready and the end of the last call or wrap-up, across
queues; an offer that ends unanswered keeps the agent's place.

Agents are checked against their phones on every line change of their phone and each
second (:meth:`Agents.check`, over the agents that are offered or on a call): an agent
on_call whose phone is on hook with no call, or offered without a ringing phone,
heals to ready, with an ``agent_heal`` event saying why.

Logins: ``*21<agent>*<pin>#`` (``*21<agent>#`` for an agent without a PIN); a wrong
PIN is refused (congestion), and LOCK_FAILURES wrong PINs within LOCK_WINDOW_MS lock the
agent out for LOCK_MS.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from e1t1.clock import Clock
from e1t1.fsm import StateDef, StateMachine

log = logging.getLogger("cicbox.acd")

LOCK_FAILURES = 3
LOCK_WINDOW_MS = 5 * 60_000
LOCK_MS = 5 * 60_000
OTHER = "other"          # *24# without a reason
MISSED = "missed"        # max_missed_offers unanswered offers in a row
RESTART = "restart"      # logged in again after the engine restarted


class AgentState(enum.Enum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    OFFERED = "offered"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    NOT_READY = "not_ready"


class AgentEvent(enum.Enum):
    LOGIN = 1        # data: phone, why
    LOGOUT = 2
    READY = 3        # *23 (also ends a wrap-up)
    NOT_READY = 4    # data: reason
    OFFER = 5        # data: call_id, queue
    OFFER_END = 6    # data: why (no_answer, refused, withdrawn, answered_elsewhere, caller_gone)
    ANSWER = 7
    CALL_END = 8     # data: wrap_ms
    TIMEOUT = 9      # the wrap-up ran out
    HEAL = 10        # data: why: the phone says otherwise


class AgentHost(Protocol):
    """What the agents need from the ACD around them."""

    def emit(self, kind: str, *, agent: str, queue: str | None = None, call_id: str | None = None,
             detail: dict[str, Any] | None = None) -> None: ...
    def phone_idle(self, phone: str) -> bool: ...        # on hook, not ringing
    def phone_ringing(self, phone: str) -> bool: ...
    def has_call(self, agent: str, call_id: str) -> bool: ...   # the call is up (offered/answered) with this agent
    def moved(self, agent: Agent, why: str) -> None: ...         # a new state, told before `available`
    def available(self, agent: Agent, ready: bool) -> None: ...  # a routing candidate now, or not


_S = AgentState
_E = AgentEvent
_BUSY = frozenset({_S.OFFERED, _S.ON_CALL})


class Agent(StateMachine[AgentState, AgentEvent]):
    """One agent: its state, the phone it works at, what it did since login."""

    PROTOCOL = "agent"
    TIMEOUT = AgentEvent.TIMEOUT
    ALL_STATE_EVENTS = frozenset({_E.HEAL})
    ALL_STATE_HANDLER = "heal"
    REST = AgentState.LOGGED_OUT
    LOG_SIZE = 64
    TABLE = {
        _S.LOGGED_OUT: StateDef(frozenset({_E.LOGIN}), frozenset({_S.READY, _S.NOT_READY}), "st_logged_out"),
        _S.READY: StateDef(frozenset({_E.OFFER, _E.NOT_READY, _E.LOGOUT, _E.READY}),
                           frozenset({_S.OFFERED, _S.NOT_READY, _S.LOGGED_OUT}), "st_ready", on_enter="enter_ready"),
        _S.OFFERED: StateDef(frozenset({_E.ANSWER, _E.OFFER_END, _E.NOT_READY, _E.LOGOUT, _E.READY}),
                             frozenset({_S.ON_CALL, _S.READY, _S.NOT_READY, _S.LOGGED_OUT}), "st_offered"),
        _S.ON_CALL: StateDef(frozenset({_E.CALL_END, _E.NOT_READY, _E.LOGOUT, _E.READY}),
                             frozenset({_S.WRAP_UP, _S.READY, _S.NOT_READY, _S.LOGGED_OUT}), "st_on_call"),
        _S.WRAP_UP: StateDef(frozenset({_E.TIMEOUT, _E.READY, _E.NOT_READY, _E.LOGOUT}),
                             frozenset({_S.READY, _S.NOT_READY, _S.LOGGED_OUT}), "st_wrap_up"),
        _S.NOT_READY: StateDef(frozenset({_E.READY, _E.NOT_READY, _E.LOGOUT}),
                               frozenset({_S.READY, _S.LOGGED_OUT}), "st_not_ready"),
    }

    def __init__(self, owner: Agents, number: str, name: str, clock: Clock) -> None:
        super().__init__(f"agent({number})", AgentState.LOGGED_OUT, clock)
        self.owner = owner
        self.number = number
        self.label = name
        self.pin: str | None = None
        self.skills: dict[str, int] = {}
        self.phone: str | None = None          # the phone it is logged in at
        self.reason: str | None = None         # not_ready's reason
        self.pending: str | None = None        # *24 during a call or wrap-up: applies after it
        self.pending_logout = False            # a supervisor's logout during an offer or a call: after it
        self.since_ms = clock.now_ms           # in this state since
        self.idle_since_ms = clock.now_ms
        self.missed_in_row = 0
        self.call_id: str | None = None        # offered or on this call ...
        self.queue: str | None = None          # ... of this queue
        self.wrap_queue: str | None = None     # the queue of the call being wrapped up
        self.candidate = False                 # the router has it as ready now

    # -- the table's handlers ------------------------------------------------------------

    def st_logged_out(self, ev: AgentEvent, **d: Any) -> None:
        self.phone = str(d["phone"])
        self.missed_in_row = 0
        why = str(d.get("why", "login"))
        if d.get("reason") is not None:
            self._to(_S.NOT_READY, why, reason=str(d["reason"]))
        else:
            self._to(_S.READY, why)

    def enter_ready(self, prev: AgentState) -> None:
        if prev is not _S.OFFERED:
            self.idle_since_ms = self.clock.now_ms

    def st_ready(self, ev: AgentEvent, **d: Any) -> None:
        if ev is _E.OFFER:
            self.call_id, self.queue = str(d["call_id"]), str(d["queue"])
            self._to(_S.OFFERED, f"offered {self.call_id}")
        elif ev is _E.NOT_READY:
            self._to(_S.NOT_READY, "not ready", reason=str(d["reason"]))
        elif ev is _E.LOGOUT:
            self._logout()

    def st_offered(self, ev: AgentEvent, **d: Any) -> None:
        if ev is _E.ANSWER:
            self.missed_in_row = 0
            self._to(_S.ON_CALL, "answered")
        elif ev is _E.NOT_READY:
            self.pending = str(d["reason"])
            self.pending_logout = False
        elif ev in (_E.LOGOUT, _E.READY):
            self._keep(ev)
        elif ev is _E.OFFER_END:
            why = str(d["why"])
            call = self.call_id
            self.call_id = self.queue = None
            if why == "no_answer" and not self.pending_logout:
                self.missed_in_row += 1
                if self.missed_in_row >= self.owner.max_missed_offers:
                    self.pending = None
                    self._to(_S.NOT_READY, f"no answer to {call}", reason=MISSED)
                    return
            self._after(f"offer of {call} ended: {why}")

    def st_on_call(self, ev: AgentEvent, **d: Any) -> None:
        if ev is _E.NOT_READY:
            self.pending = str(d["reason"])
            self.pending_logout = False
        elif ev in (_E.LOGOUT, _E.READY):
            self._keep(ev)
        elif ev is _E.CALL_END:
            wrap_ms = int(d.get("wrap_ms", 0))
            call = self.call_id
            self.wrap_queue = self.queue
            self.call_id = None
            if self.pending_logout:                  # a supervisor logged the agent out meanwhile
                self.queue = None
                self._logout()
            elif wrap_ms > 0:
                self._to(_S.WRAP_UP, f"call {call} ended", timer_ms=wrap_ms)
            else:
                self.queue = None
                self._after(f"call {call} ended")

    def st_wrap_up(self, ev: AgentEvent, **d: Any) -> None:
        if ev is _E.NOT_READY and d.get("now"):      # a supervisor's: the wrap-up ends here
            self.pending = None
            self.queue = None
            self._to(_S.NOT_READY, "not ready (supervisor)", reason=str(d["reason"]))
        elif ev is _E.NOT_READY:
            self.pending = str(d["reason"])
        elif ev is _E.READY:
            self.pending = None
            self.queue = None
            self._to(_S.READY, "wrap-up ended (*23)")
        elif ev is _E.TIMEOUT:
            self.queue = None
            self._after("wrap-up over")
        elif ev is _E.LOGOUT:
            self.queue = None
            self._logout()

    def st_not_ready(self, ev: AgentEvent, **d: Any) -> None:
        if ev is _E.READY:
            self._to(_S.READY, "ready")
        elif ev is _E.NOT_READY:
            self._to(_S.NOT_READY, "not ready", reason=str(d["reason"]))
        elif ev is _E.LOGOUT:
            self._logout()

    def heal(self, ev: AgentEvent, **d: Any) -> None:
        """The phone contradicts the state (offered without ringing, on a call on hook with none):
        back to ready (or the reason kept for after), the offer or call forgotten."""
        was = self.state
        why = str(d["why"])
        self.call_id = self.queue = None
        self.stop_timer()
        if self.pending_logout:
            self.pending = None
            self.pending_logout = False
            self.owner.unmap(self)
            self._force(_S.LOGGED_OUT, f"healed: {why}; logout", reason=None)
            self.phone = None
        else:
            self._force(_S.NOT_READY if self.pending is not None else _S.READY, f"healed: {why}",
                        reason=self.pending)
        self.pending = None
        self.owner.host.emit("agent_heal", agent=self.number, detail={"was": was.value, "now": self.state.value,
                                                                       "why": why})

    def heal_to_call(self, why: str) -> None:
        """The agent's phone is on its call while the state says otherwise: on_call again (the call's
        end then runs its wrap-up as usual)."""
        was = self.state
        self.stop_timer()
        self._force(_S.ON_CALL, f"healed: {why}", reason=None)
        self.owner.host.emit("agent_heal", agent=self.number, detail={"was": was.value, "now": self.state.value,
                                                                       "why": why})

    # -- helpers ---------------------------------------------------------------------------

    def _keep(self, ev: AgentEvent) -> None:
        """A supervisor's logout or ready during an offer or a call: kept for when it ends (ready
        drops what was kept: the agent is ready after it, as without any)."""
        self.pending_logout = ev is _E.LOGOUT
        self.pending = None
        log.info("%s: %s kept until the %s ends", self.name, "logout" if self.pending_logout else "ready",
                 "offer" if self.state is _S.OFFERED else "call")

    def _after(self, why: str) -> None:
        """A call, wrap-up or offer is over: ready, or the not-ready reason dialled meanwhile (or the
        logout a supervisor asked for)."""
        if self.pending_logout:
            self.wrap_queue = None
            self._logout()
        elif self.pending is not None:
            reason, self.pending = self.pending, None
            self._to(_S.NOT_READY, why, reason=reason)
        else:
            self._to(_S.READY, why)

    def _logout(self) -> None:
        self.pending = None
        self.pending_logout = False
        self.owner.unmap(self)
        self._to(_S.LOGGED_OUT, "logout")
        self.phone = None

    def _to(self, new: AgentState, why: str, *, reason: str | None = None, timer_ms: int | None = None) -> None:
        self.reason = reason if new is _S.NOT_READY else None
        if new is not self.state:                    # (not ready again: another reason, a new period)
            self.transition(new, timer_ms)
        self.since_ms = self.clock.now_ms
        self.owner.changed(self, why)

    def _force(self, new: AgentState, why: str, *, reason: str | None) -> None:
        """Heal or fault: the state set without the table's transitions (the machine was wrong)."""
        old = self.state
        self.state = new
        if new is _S.READY and old is not _S.OFFERED:
            self.idle_since_ms = self.clock.now_ms
        self.reason = reason if new is _S.NOT_READY else None
        self.since_ms = self.clock.now_ms
        self.transitions.append((self.clock.now_ms, old.name, "(forced)", new.name))
        self.owner.changed(self, why)

    def view(self) -> dict[str, Any]:
        return {"name": self.label, "state": self.state.value, "since_ms": self.since_ms, "reason": self.reason,
                "available": self.candidate,     # ready at a phone on hook and idle: offers can reach it
                "queue": self.queue or self.wrap_queue if self.state in (_S.OFFERED, _S.ON_CALL, _S.WRAP_UP)
                else None, "call_id": self.call_id, "phone": self.phone,
                "pending": "logout" if self.pending_logout else "not_ready" if self.pending is not None else None}


class SuperviseError(Exception):
    """A supervisor's action that cannot be (the message says why)."""


class LoginResult(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown_agent"
    WRONG_PIN = "wrong_pin"
    LOCKED = "locked"
    BUSY = "busy"          # logged in elsewhere on a call, or the phone is another agent's


@dataclass
class _Failures:
    times: deque[int]
    locked_until_ms: int = 0


class Agents:
    """Every agent of the site: their machines, by number and by the phone they work at."""

    def __init__(self, clock: Clock, host: AgentHost) -> None:
        self.clock = clock
        self.host = host
        self.agents: dict[str, Agent] = {}
        self.by_phone: dict[str, Agent] = {}
        self.max_missed_offers = 1
        self._failures: dict[str, _Failures] = {}
        self._busy: dict[str, Agent] = {}          # offered or on a call: checked every second

    def configure(self, agents: Iterable[tuple[str, str, str | None, dict[str, int]]], max_missed_offers: int) -> None:
        """(number, name, pin, skills) of every agent; agents keep their state across a change. An agent
        no longer configured is dropped once logged out (one logged in stays until it logs out)."""
        self.max_missed_offers = max_missed_offers
        wanted = {n: (name, pin, dict(skills)) for n, name, pin, skills in agents}
        for number, (name, pin, skills) in wanted.items():
            a = self.agents.get(number)
            if a is None:
                a = self.agents[number] = Agent(self, number, name, self.clock)
            a.label, a.pin, a.skills = name, pin, skills
        for number in [n for n, a in self.agents.items() if n not in wanted and a.state is AgentState.LOGGED_OUT]:
            del self.agents[number]

    def values(self) -> Iterable[Agent]:
        return self.agents.values()

    def __getitem__(self, number: str) -> Agent:
        return self.agents[number]

    def get(self, number: str) -> Agent | None:
        return self.agents.get(number)

    def at(self, phone: str) -> Agent | None:
        """The agent logged in at `phone`."""
        return self.by_phone.get(phone)

    # -- feature codes ---------------------------------------------------------------------

    def login(self, number: str, phone: str, pin: str | None, *, restore: bool = False) -> LoginResult:
        a = self.agents.get(number)
        now = self.clock.now_ms
        if a is None:
            log.info("login at %s as %s refused: no such agent", phone, number)
            self.host.emit("login_failed", agent=number[:32],
                           detail={"phone": phone, "why": LoginResult.UNKNOWN.value})
            return LoginResult.UNKNOWN
        f = self._failures.get(number)
        if f is not None and now < f.locked_until_ms:
            self._failed(a, phone, LoginResult.LOCKED)
            return LoginResult.LOCKED
        if not restore and pin != a.pin:
            if a.pin is None:           # a PIN for an agent without one: refused, but nothing to guess
                self._failed(a, phone, LoginResult.WRONG_PIN)
                return LoginResult.WRONG_PIN
            return self._wrong_pin(a, phone)
        holder = self.by_phone.get(phone)
        if (holder is not None and holder is not a) or a.state in _BUSY:
            self._failed(a, phone, LoginResult.BUSY)
            return LoginResult.BUSY
        self._failures.pop(number, None)
        if a.state is not AgentState.LOGGED_OUT:          # logged in already (here or elsewhere): move here
            if a.phone is not None and self.by_phone.get(a.phone) is a:
                del self.by_phone[a.phone]
            a.phone = phone
            self.by_phone[phone] = a
            if a.state is AgentState.READY:
                self.changed(a, "login")
            else:
                a.dispatch(AgentEvent.READY)
            return LoginResult.OK
        self.by_phone[phone] = a
        a.dispatch(AgentEvent.LOGIN, phone=phone, why=RESTART if restore else "login",
                   reason=RESTART if restore else None)
        return LoginResult.OK

    def _wrong_pin(self, a: Agent, phone: str) -> LoginResult:
        now = self.clock.now_ms
        f = self._failures.setdefault(a.number, _Failures(deque()))
        f.times.append(now)
        while f.times and now - f.times[0] >= LOCK_WINDOW_MS:
            f.times.popleft()
        self._failed(a, phone, LoginResult.WRONG_PIN)
        if len(f.times) >= LOCK_FAILURES:
            f.locked_until_ms = now + LOCK_MS
            f.times.clear()
            log.warning("agent %s: %d wrong PINs within %d s: locked for %d s", a.number, LOCK_FAILURES,
                        LOCK_WINDOW_MS // 1000, LOCK_MS // 1000)
            self.host.emit("agent_locked", agent=a.number, detail={"until_ms": f.locked_until_ms})
        return LoginResult.WRONG_PIN

    def _failed(self, a: Agent, phone: str, why: LoginResult) -> None:
        log.info("agent %s: login at %s refused (%s)", a.number, phone, why.value)
        self.host.emit("login_failed", agent=a.number, detail={"phone": phone, "why": why.value})

    def logout(self, a: Agent) -> bool:
        """*22: logged out now (refused during an offer or a call: the phone is busy with it)."""
        if a.state in _BUSY or not a.accepts(AgentEvent.LOGOUT):
            return False
        a.dispatch(AgentEvent.LOGOUT)
        return True

    def unmap(self, a: Agent) -> None:
        """`a` leaves its phone (logging out)."""
        if a.phone is not None and self.by_phone.get(a.phone) is a:
            del self.by_phone[a.phone]

    def supervise(self, a: Agent, action: str, reason: str | None = None) -> str:
        """A supervisor's action on `a` (control.sock ``agent.logout``, ``agent.state``): `action` is
        ``logout``, ``ready`` or ``not_ready`` (with `reason`). "done" when the agent is there now;
        "pending" for an agent whose phone rings or who talks: it changes when the offer or the call
        ends, which is never cut. Raises SuperviseError when it cannot be (a logged-out agent)."""
        if a.state is AgentState.LOGGED_OUT:
            if action == "logout":
                return "done"
            raise SuperviseError(f"agent {a.number} is logged out: only a login at a phone makes it {action}")
        busy = a.state in _BUSY
        if action == "logout":
            a.dispatch(AgentEvent.LOGOUT)
        elif action == "ready":
            a.dispatch(AgentEvent.READY)
        elif action == "not_ready":
            if a.state is AgentState.NOT_READY and a.reason == reason:
                return "done"
            a.dispatch(AgentEvent.NOT_READY, reason=reason, now=True)
        else:
            raise SuperviseError(f"no such action: {action!r}")
        if busy:
            return "pending"
        return "done"

    def ready(self, a: Agent) -> bool:
        """*23: ready (ends a wrap-up); False (congestion) when logged out, offered or on a call."""
        if a.state in (AgentState.LOGGED_OUT, AgentState.OFFERED, AgentState.ON_CALL):
            return False
        if a.state is not AgentState.READY:
            a.dispatch(AgentEvent.READY)
        return True

    def not_ready(self, a: Agent, reason: str) -> bool:
        """*24: not ready now, or after the call or wrap-up in progress."""
        if a.state is AgentState.LOGGED_OUT:
            return False
        a.dispatch(AgentEvent.NOT_READY, reason=reason)
        return True

    # -- what the ACD does to agents -------------------------------------------------------

    def changed(self, a: Agent, why: str) -> None:
        """Every state change of an agent: its event, the router told, the set checked each second kept
        (the agents offered or on a call, and any other still holding a call: the state forgot it)."""
        if a.state in _BUSY or (a.call_id is not None and a.state is not AgentState.LOGGED_OUT):
            self._busy[a.number] = a
        else:
            self._busy.pop(a.number, None)
        queue = a.queue if a.state in _BUSY else a.wrap_queue if a.state is AgentState.WRAP_UP else None
        self.host.emit("agent_state", agent=a.number, queue=queue, call_id=a.call_id,
                       detail={"state": a.state.value, "reason": a.reason, "why": why})
        log.info("agent %s: %s%s (%s)", a.number, a.state.value, f" ({a.reason})" if a.reason else "", why)
        if a.state is not AgentState.WRAP_UP:
            a.wrap_queue = None
        self.host.moved(a, why)
        self.sync(a)

    def sync(self, a: Agent) -> None:
        """Tell the router whether `a` is a candidate now: ready, at a phone on hook and idle."""
        ready = a.state is AgentState.READY and a.phone is not None and self.host.phone_idle(a.phone)
        if ready != a.candidate:
            a.candidate = ready
            self.host.available(a, ready)

    def check(self, a: Agent) -> None:
        """`a` against its phone: heal an agent offered without ringing, or on a call with none."""
        phone = a.phone
        if phone is None:
            return
        gone = a.call_id is None or not self.host.has_call(a.number, a.call_id)
        if a.state is AgentState.OFFERED and (gone or not self.host.phone_ringing(phone)):
            a.dispatch(AgentEvent.HEAL, why="offered without ringing")
        elif a.state is AgentState.ON_CALL and gone and self.host.phone_idle(phone):
            a.dispatch(AgentEvent.HEAL, why="on_call on hook with no call")
        elif a.state not in _BUSY and a.state is not AgentState.LOGGED_OUT and a.call_id is not None:
            if not gone and not self.host.phone_idle(phone):
                a.heal_to_call("on a call the state forgot")
            else:
                a.call_id = None                  # a call it no longer holds: nothing to heal
                self.changed(a, "call forgotten")
        self.sync(a)

    def check_busy(self) -> None:
        """Each second: the agents offered or on a call, against their phones."""
        for a in list(self._busy.values()):
            self.check(a)

    def force(self, a: Agent, state: AgentState, reason: str | None = None, wrap_ms: int = 1000) -> None:
        """Test only (fault.agent_state): set a state without any phone or call behind it (a wrap-up
        runs `wrap_ms`, as a real one would)."""
        a.stop_timer()
        a._force(state, "fault injected", reason=reason)
        if state is AgentState.WRAP_UP:
            a.restart_timer(max(1, wrap_ms))

    def view(self) -> dict[str, dict[str, Any]]:
        return {n: a.view() for n, a in sorted(self.agents.items(), key=lambda kv: _num_key(kv[0]))}


def _num_key(number: str) -> tuple[int, str]:
    return (int(number) if number.isdigit() else 1 << 62, number)
