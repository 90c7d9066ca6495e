"""Automatic call distribution: queues of waiting callers and the agents who take them.

Strategy ``longest_idle``: a waiting call goes to the member agent who is ready
and has been idle longest, where idle time is measured from the later of
becoming ready and the end of the last call; ties go to the lowest agent
number. Calls are served oldest first (queue entry order, across queues that
share agents). An agent who does not answer within the queue's ring timeout
becomes not ready, and the call goes back to the head of its queue.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from e1t1.clock import Clock, Timer

log = logging.getLogger("cicbox.acd")


class AgentState(enum.Enum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    NOT_READY = "not_ready"
    RINGING = "ringing"
    TALKING = "talking"


@dataclass
class Agent:
    number: str
    name: str
    state: AgentState = AgentState.LOGGED_OUT
    phone: str | None = None          # the FXS port name the agent logged in from
    ready_since_ms: int = 0
    last_call_end_ms: int = 0
    calls_taken: int = 0

    def idle_since(self) -> int:
        return max(self.ready_since_ms, self.last_call_end_ms)


@dataclass
class QueueDef:
    name: str
    members: tuple[str, ...]
    ring_timeout_ms: int


class AcdHost(Protocol):
    def offer(self, call: Any, agent: Agent) -> bool: ...
    def withdraw(self, call: Any, agent: Agent) -> None: ...
    def agent_changed(self, agent: Agent, why: str) -> None: ...


@dataclass
class _Waiting:
    call: Any
    queue: str
    entered_ms: int
    seq: int
    offered_to: str | None = None
    timer: Timer | None = field(default=None, repr=False)


class Acd:
    """Queues and agents on the control tier's clock."""

    def __init__(self, clock: Clock, host: AcdHost) -> None:
        self.clock = clock
        self.host = host
        self.agents: dict[str, Agent] = {}
        self.queues: dict[str, QueueDef] = {}
        self._waiting: list[_Waiting] = []
        self._seq = 0
        self._ready: dict[str, Agent] = {}              # the agents READY now, kept by _set
        self._members: dict[str, frozenset[str]] = {}   # each queue's members, as a set

    # -- configuration -----------------------------------------------------

    def configure(self, agents: Iterable[tuple[str, str]], queues: Iterable[QueueDef]) -> None:
        """(Re)load agents and queues; agents keep their state across a configuration change."""
        wanted = dict(agents)
        for number, name in wanted.items():
            a = self.agents.get(number)
            if a is None:
                self.agents[number] = Agent(number, name)
            else:
                a.name = name
        for number in [n for n in self.agents if n not in wanted]:
            if self.agents[number].state in (AgentState.LOGGED_OUT, AgentState.READY, AgentState.NOT_READY):
                del self.agents[number]
                self._ready.pop(number, None)
        self.queues = {q.name: q for q in queues}
        self._members = {q.name: frozenset(q.members) for q in self.queues.values()}

    # -- agents' feature codes ----------------------------------------------

    def login(self, number: str, phone: str) -> bool:
        """*21: log in at `phone`, ready at once. False if no such agent or busy."""
        a = self.agents.get(number)
        if a is None or a.state in (AgentState.RINGING, AgentState.TALKING):
            return False
        for other in self.agents.values():
            if other is not a and other.phone == phone and other.state is not AgentState.LOGGED_OUT:
                return False    # another agent holds this phone
        a.phone = phone
        self._set(a, AgentState.READY, "login")
        self.dispatch()
        return True

    def logout(self, number: str) -> bool:
        a = self.agents.get(number)
        if a is None or a.state in (AgentState.LOGGED_OUT, AgentState.RINGING, AgentState.TALKING):
            return False
        a.phone = None
        self._set(a, AgentState.LOGGED_OUT, "logout")
        return True

    def ready(self, number: str, ready: bool) -> bool:
        a = self.agents.get(number)
        if a is None or a.state not in (AgentState.READY, AgentState.NOT_READY):
            return False
        self._set(a, AgentState.READY if ready else AgentState.NOT_READY, "ready" if ready else "not ready")
        if ready:
            self.dispatch()
        return True

    def restore(self, number: str, phone: str) -> bool:
        """An agent who was logged in at `phone` when the engine last stopped: logged in again, not
        ready (reason "restart"). False if the agent is unknown, busy, or another agent holds the phone."""
        a = self.agents.get(number)
        if a is None or a.state is not AgentState.LOGGED_OUT:
            return False
        if self.agent_at(phone) is not None:
            return False
        a.phone = phone
        self._set(a, AgentState.NOT_READY, "restart")
        return True

    def agent_at(self, phone: str) -> Agent | None:
        for a in self.agents.values():
            if a.phone == phone and a.state is not AgentState.LOGGED_OUT:
                return a
        return None

    # -- calls -----------------------------------------------------------------

    def enqueue(self, call: Any, queue: str) -> None:
        self._seq += 1
        self._waiting.append(_Waiting(call, queue, self.clock.now_ms, self._seq))
        self.dispatch()

    def waiting(self, queue: str) -> list[tuple[Any, int]]:
        """(call, entry ms) of the callers waiting in `queue`, oldest first."""
        return [(w.call, w.entered_ms) for w in self._waiting if w.queue == queue]

    def remove(self, call: Any) -> None:
        """The caller left the queue (hung up); withdraw an offer if one is ringing."""
        for w in list(self._waiting):
            if w.call is call:
                self._waiting.remove(w)
                if w.offered_to is not None:
                    if w.timer is not None:
                        w.timer.cancel()
                    a = self.agents[w.offered_to]
                    self.host.withdraw(call, a)
                    self._set(a, AgentState.READY, "offer withdrawn")
                    self.dispatch()

    def answered(self, call: Any, tick: int) -> Agent | None:
        """The offered agent went off hook: the call leaves the queue."""
        for w in list(self._waiting):
            if w.call is call and w.offered_to is not None:
                self._waiting.remove(w)
                if w.timer is not None:
                    w.timer.cancel()
                a = self.agents[w.offered_to]
                a.calls_taken += 1
                self._set(a, AgentState.TALKING, "answered")
                return a
        return None

    def call_ended(self, number: str, tick: int) -> None:
        a = self.agents.get(number)
        if a is None:
            return
        a.last_call_end_ms = tick
        if a.state is AgentState.TALKING:
            self._set(a, AgentState.READY, "call ended")
        self.dispatch()

    def dispatch(self) -> None:
        """Offer waiting calls, oldest first, to the longest-idle ready member of their queue (only
        the agents ready now are looked at: none ready, nothing to do)."""
        if not self._ready:
            return
        for w in sorted(self._waiting, key=lambda w: (w.entered_ms, w.seq)):
            if w.offered_to is not None:
                continue
            q = self.queues.get(w.queue)
            if q is None:
                continue
            members = self._members[q.name]
            ready = [a for n, a in self._ready.items() if n in members]
            if not ready:
                continue
            best = min(ready, key=lambda a: (a.idle_since(), int(a.number) if a.number.isdigit() else 0, a.number))
            if not self.host.offer(w.call, best):
                continue
            w.offered_to = best.number
            self._set(best, AgentState.RINGING, f"offered {getattr(w.call, 'id', '')}")
            w.timer = self.clock.call_later(q.ring_timeout_ms, functools.partial(self._no_answer, w))
            if not self._ready:
                return

    def _no_answer(self, w: _Waiting) -> None:
        if w not in self._waiting or w.offered_to is None:
            return
        a = self.agents[w.offered_to]
        self.host.withdraw(w.call, a)
        w.offered_to = None
        w.timer = None
        self._set(a, AgentState.NOT_READY, "no answer")
        log.info("agent %s did not answer: not ready", a.number)
        self.dispatch()

    def _set(self, a: Agent, state: AgentState, why: str) -> None:
        if state is AgentState.READY and a.state is not AgentState.READY:
            a.ready_since_ms = self.clock.now_ms
        a.state = state
        if state is AgentState.READY:
            self._ready[a.number] = a
        else:
            self._ready.pop(a.number, None)
        self.host.agent_changed(a, why)
