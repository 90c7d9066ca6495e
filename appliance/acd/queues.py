"""Queues: each a state machine (serving, or empty of agents), with its callers' timers.

A queue is EMPTY while none of its members is in a state its ``empty_when`` does not
count as absent (by default: every member logged out); after NO_AGENTS_MS of that, its
callers leave with outcome ``no_agents`` to ``on_no_agents`` (if the queue names one;
otherwise they wait on). A caller in a queue has its own timers there: the strict
``max_wait_ms`` (overflow ``on_timeout``), the announcements (position and expected
wait: ``first_after_ms``, then ``every_ms``) and each ``widen`` rule (a skill minimum
lowered ``after_ms`` after entering). AHT_q, the queue's handle-time estimate for
the expected wait, starts at ``expected_aht_ms`` and moves as (3·old + new)/4 with
each call's talk + wrap-up.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.acd import announce
from appliance.config.model import Queue
from e1t1.clock import Clock, Timer
from e1t1.fsm import StateDef, StateMachine

NO_AGENTS_MS = 30_000
"""A queue with no agents this long sends its callers to on_no_agents."""


class QueueState(enum.Enum):
    SERVING = 1
    EMPTY = 2


class QueueInput(enum.Enum):
    AGENTS = 1      # data: present (members not counted as absent)
    TIMEOUT = 2     # NO_AGENTS_MS without agents


@dataclass
class Stay:
    """One caller in one queue: when it entered, its timers there."""

    call_id: str
    entered_ms: int
    timers: list[Timer] = field(default_factory=list)

    def cancel(self) -> None:
        for t in self.timers:
            t.cancel()
        self.timers.clear()


class QueueMachine(StateMachine[QueueState, QueueInput]):
    """One queue: its definition (the site's ``queues:`` entry), members present, callers' stays."""

    PROTOCOL = "queue"
    TIMEOUT = QueueInput.TIMEOUT
    LOG_SIZE = 32
    TABLE = {
        QueueState.SERVING: StateDef(frozenset({QueueInput.AGENTS}), frozenset({QueueState.EMPTY}), "st_serving"),
        QueueState.EMPTY: StateDef(frozenset({QueueInput.AGENTS, QueueInput.TIMEOUT}),
                                   frozenset({QueueState.SERVING}), "st_empty"),
    }

    def __init__(self, name: str, spec: Queue, clock: Clock, no_agents: Callable[[QueueMachine], None]) -> None:
        super().__init__(f"queue({name})", QueueState.EMPTY, clock)
        self.qname = name
        self.spec = spec
        self.retired = False                  # no longer configured: serves its callers to the end
        self.present: set[str] = set()        # members in a state that counts as an agent
        self.logged_in: set[str] = set()      # members logged in (the EWT's divisor)
        self.stays: dict[str, Stay] = {}
        self.aht_ms = float(spec.expected_aht_ms)
        self._no_agents = no_agents
        self.restart_timer(NO_AGENTS_MS)

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(self.spec.agents)

    def st_serving(self, ev: QueueInput, **d: Any) -> None:
        if not d["present"]:
            self.transition(QueueState.EMPTY, NO_AGENTS_MS)

    def st_empty(self, ev: QueueInput, **d: Any) -> None:
        if ev is QueueInput.AGENTS and d["present"]:
            self.transition(QueueState.SERVING)
        elif ev is QueueInput.TIMEOUT:
            self._no_agents(self)                # callers who come later go at entry

    @property
    def empty(self) -> bool:
        return self.state is QueueState.EMPTY

    def agent_moved(self, number: str, state: str) -> None:
        """A member's new state (its value: logged_out, ready...)."""
        absent = state in self.spec.empty_when
        was = bool(self.present)
        if absent:
            self.present.discard(number)
        else:
            self.present.add(number)
        if state == "logged_out":
            self.logged_in.discard(number)
        else:
            self.logged_in.add(number)
        if bool(self.present) != was:
            self.dispatch(QueueInput.AGENTS, present=bool(self.present))

    def recount(self, states: dict[str, str]) -> None:
        """Its members' states (number -> state value) afresh, after a configuration change."""
        self.present = {n for n, st in states.items() if st not in self.spec.empty_when}
        self.logged_in = {n for n, st in states.items() if st != "logged_out"}
        if bool(self.present) == (self.state is QueueState.SERVING):
            return
        self.dispatch(QueueInput.AGENTS, present=bool(self.present))

    def handled(self, talk_ms: int, wrap_ms: int) -> None:
        """One call's handle time into AHT_q."""
        self.aht_ms = (3 * self.aht_ms + talk_ms + wrap_ms) / 4

    def ewt_minutes(self, position: int) -> int | None:
        """Expected wait of the caller at `position`, whole minutes up; None (silent) with nobody logged in."""
        return announce.ewt_minutes(position, self.aht_ms, len(self.logged_in))
