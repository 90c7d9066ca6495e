"""State machines as declared tables, on the one clock: the base of every machine of every layer.

A machine (an FXO trunk, an FXS phone, later Q.921/Q.931, R2, a call, an agent) is a
subclass of :class:`StateMachine` over two enums, its states and its input events::

    class Call(StateMachine[CallState, CallEvent]):
        PROTOCOL = "q931"                   # its timers: a site overrides them as timers: {q931: ...}
        TIMERS = Q931_TIMERS                # a sequence of TimerDef (e1t1.timers)
        TIMEOUT = CallEvent.TIMEOUT         # the event a state's timer delivers when it runs out
        ALL_STATE_EVENTS = frozenset({CallEvent.STATUS_ENQUIRY})   # accepted in every state ...
        ALL_STATE_HANDLER = "any_state"                            # ... and handled here
        CHILD_TERM_EVENT = CallEvent.LEG_GONE   # how a child's (a leg's) termination reaches the call
        TABLE = {
            CallState.NULL: StateDef(events=frozenset({...}), next_states=frozenset({...}),
                                     handler="st_null", timer=None, on_enter=None, on_leave=None),
            CallState.CALL_PRESENT: StateDef(..., timer="T303", ...),
            ...
        }

    leg = Leg(..., parent=call)             # a child: terminating the call terminates it first

Per state: the events it accepts, the states it may go to, the method that handles its
events (all actions of one state are in one place), the timer its entry starts (a name
from the protocol's timer table), and on-enter / on-leave actions. The table is checked
and bound to functions when the class is made (:meth:`StateMachine.__init_subclass__`):
every state present, events and next states of the machine's enums, methods that
exist, timers the protocol declares, a timeout event for states with a timer; a table
that does not hold together raises :class:`~e1t1.errors.FsmTableError` at import. A machine
has one running timer at a time; one whose states run several of its protocol's timers in turn
(Q.921: T200 and T203 in the established state) starts one by name with
:meth:`StateMachine.start_timer` and reads which one ran out in ``expired``.

At run time, :meth:`StateMachine.dispatch` hands an event to the bound handler of the
current state (or to the all-state handler). An event the state does not accept is a
protocol error with a defined outcome: logged, counted in ``protocol_errors``, recorded
in the transition log as "(ignored)", and nothing else changes (state, timer). Events
dispatched to a machine while one of its own actions runs (an upper layer answering
from inside the machine's report) are queued and run when that action is done, so each
action runs to completion. :meth:`StateMachine.transition` refuses a next state the
table does not declare (:class:`~e1t1.errors.FsmError`: a bug), calls the old state's
on-leave, stops its timer, starts the new state's and calls its on-enter. Every
transition, timeout and termination is logged with the instance's name and kept in a
bounded transition log that tests read.

Instances form a tree: a machine made with ``parent=`` is that parent's child. A machine
ends with :meth:`StateMachine.terminate` and a :class:`TermCause`: its children are
terminated first (cause PARENT), then its own clean-up runs (:meth:`on_terminate`),
then its parent receives the parent's declared ``CHILD_TERM_EVENT`` (or the one given
when the child was made) with ``child=`` and ``cause=`` (not when the parent itself is
what ended it). A terminated machine takes no more events (each is a counted protocol
error).

A machine may belong to a :class:`Census` its owner gives it (``census=``): the census
counts the owner's machines that are away from their rest state (the class's ``REST``,
an idle line's IDLE), kept as they change state, so the owner reads how many are busy
without looking at them; its ``watch`` hears each state change of those machines.
"""

from __future__ import annotations

import enum
import logging
import typing
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from e1t1.clock import Clock, Timer
from e1t1.errors import FsmError, FsmTableError, TimerError
from e1t1.timers import TimerDef, TimerTable

S = TypeVar("S", bound=enum.Enum)
E = TypeVar("E", bound=enum.Enum)

log = logging.getLogger("cicbox.fsm")

#: a state's handler ``(self, event, **data)``, on-enter ``(self, previous_state)``, on-leave ``(self, next_state)``
Action = Callable[..., None]


@dataclass(frozen=True)
class StateDef(Generic[S, E]):
    """What a state accepts, where it may go, who handles its events, the timer its entry starts."""

    events: frozenset[E]
    next_states: frozenset[S]
    handler: str | None = None    # method handling this state's events (needed if it accepts any)
    timer: str | None = None      # protocol timer started on entry; when it runs out: the TIMEOUT event
    on_enter: str | None = None   # method called on entry, after the timer started: (self, previous_state)
    on_leave: str | None = None   # method called on leaving, before the state changes: (self, next_state)


@dataclass(frozen=True)
class BoundState:
    """A state's definition with its methods resolved (made once, when the class is made)."""

    events: frozenset[Any]
    next_states: frozenset[Any]
    handler: Action | None
    timer: str | None
    on_enter: Action | None
    on_leave: Action | None


class Census:
    """How many of one owner's machines are away from their rest state (``REST`` of their class),
    kept up to date by the machines as they change state, so reading it is O(1). `watch`, if
    given, is called with ``(machine, old, new)`` on every state change of those machines
    (after the state changed, before the new state's on-enter): what an owner keeps per machine
    (the line levels it expects, say) follows the machines without a scan."""

    __slots__ = ("busy", "watch")

    def __init__(self, watch: Callable[[StateMachine[Any, Any], Any, Any], None] | None = None) -> None:
        self.busy = 0
        self.watch = watch

    def moved(self, machine: StateMachine[Any, Any], old: Any, new: Any) -> None:
        """One of this census's machines went from `old` to `new` (the machine tells it)."""
        rest = machine.REST
        if old is rest and new is not rest:
            self.busy += 1
        elif new is rest and old is not rest:
            self.busy -= 1
        if self.watch is not None:
            self.watch(machine, old, new)


class TermCause(enum.Enum):
    """Why a machine terminated (told to its parent)."""

    REGULAR = 1     # it finished its job
    REQUEST = 2     # it was asked to stop
    PARENT = 3      # its parent terminated
    ERROR = 4       # it cannot go on
    TIMEOUT = 5     # a timer ran out with nothing left to try


def _enum_args(cls: type) -> tuple[type[enum.Enum], type[enum.Enum]] | None:
    """The (states, events) enums of ``class X(StateMachine[States, Events])``, up the MRO."""
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            origin = typing.get_origin(base)
            args = typing.get_args(base)
            if isinstance(origin, type) and issubclass(origin, StateMachine) and len(args) == 2 \
                    and all(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
                return args[0], args[1]
    return None


class StateMachine(Generic[S, E]):
    """Base of every state machine: a declared table, bound and checked when the class is made."""

    #: per state its StateDef (a subclass without TABLE is an abstract base of machines)
    TABLE: ClassVar[Mapping[Any, StateDef[Any, Any]]]
    #: the protocol whose timers this machine runs (the key of a site's ``timers:`` section)
    PROTOCOL: ClassVar[str] = ""
    #: the protocol's timer table: every timer a state starts is declared here
    TIMERS: ClassVar[Sequence[TimerDef]] = ()
    #: the event a state's timer delivers when it runs out
    TIMEOUT: ClassVar[Any] = None
    #: events accepted in every state, all handled by ALL_STATE_HANDLER
    ALL_STATE_EVENTS: ClassVar[frozenset[Any]] = frozenset()
    ALL_STATE_HANDLER: ClassVar[str | None] = None
    #: the event this machine receives when one of its children terminates (data: child, cause)
    CHILD_TERM_EVENT: ClassVar[Any] = None
    #: the state a machine rests in (an idle line): away from it, it counts as busy in its census
    REST: ClassVar[Any] = None
    LOG_SIZE: ClassVar[int] = 256

    # Made when the class is made, from the table:
    STATES: ClassVar[type[enum.Enum]]
    EVENTS: ClassVar[type[enum.Enum]]
    BOUND: ClassVar[Mapping[Any, BoundState]]
    _all_state: ClassVar[Action | None]
    _timer_names: ClassVar[frozenset[str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "TABLE", None) is None:
            return          # an abstract base of machines: nothing to bind yet
        cls._bind_table()

    @classmethod
    def _bind_table(cls) -> None:
        """Check the table and resolve its method names to functions; raise FsmTableError listing every fault."""
        problems: list[str] = []
        found = _enum_args(cls)
        states = cls.__dict__.get("STATES") or (found[0] if found else None)
        events = cls.__dict__.get("EVENTS") or (found[1] if found else None)
        if states is None or events is None:
            raise FsmTableError(f"{cls.__name__}: declare it as StateMachine[States, Events] (two enums)")

        def resolve(where: str, name: str | None) -> Action | None:
            if name is None:
                return None
            fn = getattr(cls, name, None)
            if not callable(fn):
                problems.append(f"{where}: {name!r} is not a method of {cls.__name__}")
                return None
            return typing.cast(Action, fn)

        timer_names = [t.name for t in cls.TIMERS]
        if len(set(timer_names)) != len(timer_names):
            problems.append(f"TIMERS: a timer is declared twice in {timer_names}")
        if timer_names and not cls.PROTOCOL:
            problems.append("TIMERS given without a PROTOCOL name")
        all_events = frozenset(cls.ALL_STATE_EVENTS)
        for ev in all_events:
            if not isinstance(ev, events):
                problems.append(f"ALL_STATE_EVENTS: {ev!r} is not a {events.__name__}")
        all_state = resolve("ALL_STATE_HANDLER", cls.ALL_STATE_HANDLER)
        if all_events and cls.ALL_STATE_HANDLER is None:
            problems.append("ALL_STATE_EVENTS given without an ALL_STATE_HANDLER")
        if cls.REST is not None and not isinstance(cls.REST, states):
            problems.append(f"REST: {cls.REST!r} is not a {states.__name__}")
        if cls.TIMEOUT is not None and not isinstance(cls.TIMEOUT, events):
            problems.append(f"TIMEOUT: {cls.TIMEOUT!r} is not a {events.__name__}")
        for st in states:
            if st not in cls.TABLE:
                problems.append(f"state {st.name} is missing from the table")
        bound: dict[Any, BoundState] = {}
        for st, sdef in cls.TABLE.items():
            if not isinstance(st, states):
                problems.append(f"table key {st!r} is not a {states.__name__}")
                continue
            where = f"state {st.name}"
            for ev in sdef.events:
                if not isinstance(ev, events):
                    problems.append(f"{where}: event {ev!r} is not a {events.__name__}")
                elif ev in all_events:
                    problems.append(f"{where}: {ev.name} is accepted in every state already")
            for nxt in sdef.next_states:
                if not isinstance(nxt, states):
                    problems.append(f"{where}: next state {nxt!r} is not a {states.__name__}")
            if sdef.events and sdef.handler is None:
                problems.append(f"{where}: accepts events but names no handler")
            if sdef.timer is not None:
                if sdef.timer not in timer_names:
                    known = ", ".join(timer_names) or "none"
                    problems.append(f"{where}: timer {sdef.timer!r} is not in {cls.PROTOCOL or 'its'} "
                                    f"timer table (known: {known})")
                if cls.TIMEOUT is None:
                    problems.append(f"{where}: starts a timer but the machine declares no TIMEOUT event")
                elif cls.TIMEOUT not in sdef.events and cls.TIMEOUT not in all_events:
                    problems.append(f"{where}: starts a timer but does not accept {cls.TIMEOUT.name}")
            bound[st] = BoundState(frozenset(sdef.events), frozenset(sdef.next_states),
                                   resolve(f"{where} handler", sdef.handler), sdef.timer,
                                   resolve(f"{where} on_enter", sdef.on_enter),
                                   resolve(f"{where} on_leave", sdef.on_leave))
        term = cls.CHILD_TERM_EVENT
        if term is not None:
            if not isinstance(term, events):
                problems.append(f"CHILD_TERM_EVENT: {term!r} is not a {events.__name__}")
            elif term not in all_events:
                deaf = [st.name for st, b in bound.items() if term not in b.events]
                if deaf:
                    problems.append(f"CHILD_TERM_EVENT {term.name} is not accepted in {', '.join(deaf)} "
                                    "(a child may end at any time)")
        if problems:
            raise FsmTableError(f"{cls.__name__}: " + "; ".join(problems))
        cls.STATES = states
        cls.EVENTS = events
        cls.BOUND = bound
        cls._all_state = all_state
        cls._timer_names = frozenset(b.timer for b in bound.values() if b.timer is not None)

    def __init__(self, name: str, initial: S, clock: Clock, timers: TimerTable | None = None, *,
                 parent: StateMachine[Any, Any] | None = None, term_event: enum.Enum | None = None,
                 census: Census | None = None) -> None:
        cls = type(self)
        if getattr(cls, "BOUND", None) is None:
            raise FsmError(f"{cls.__name__} has no TABLE: it cannot be instantiated")
        if initial not in cls.BOUND:
            raise FsmError(f"{name}: initial state {initial!r} is not one of {cls.STATES.__name__}")
        if timers is None:
            timers = TimerTable(cls.PROTOCOL, cls.TIMERS)
        elif cls.PROTOCOL and timers.protocol != cls.PROTOCOL:
            raise TimerError(f"{name}: runs {cls.PROTOCOL} timers, given the {timers.protocol} table")
        missing = sorted(t for t in cls._timer_names if t not in timers)
        if missing:
            raise TimerError(f"{name}: timer table {timers.protocol!r} lacks {', '.join(missing)}")
        self.name = name
        self.state: S = initial
        self.clock = clock
        #: when the machine entered its current state (engine ms): what the wallboard counts time in state from
        self.state_since_ms = clock.now_ms
        self.timers = timers
        self._timer: Timer | None = None
        self._timer_name: str | None = None
        #: the timer whose TIMEOUT was delivered last (a handler of TIMEOUT reads which ran out)
        self.expired: str | None = None
        self.transitions: deque[tuple[int, str, str, str]] = deque(maxlen=self.LOG_SIZE)
        self.protocol_errors = 0
        self.children: list[StateMachine[Any, Any]] = []
        self.parent: StateMachine[Any, Any] | None = None
        self.term_event: enum.Enum | None = None
        self.terminated = False
        self.term_cause: TermCause | None = None
        self._running = False
        self._pending: deque[tuple[E, dict[str, Any]]] = deque()
        self.census = census
        if census is not None and initial is not cls.REST:
            census.busy += 1
        if parent is not None:
            self._attach(parent, term_event)

    def _attach(self, parent: StateMachine[Any, Any], term_event: enum.Enum | None) -> None:
        event = term_event if term_event is not None else type(parent).CHILD_TERM_EVENT
        if event is None:
            raise FsmError(f"{self.name}: parent {parent.name} declares no CHILD_TERM_EVENT and none was given")
        if not isinstance(event, type(parent).EVENTS):
            raise FsmError(f"{self.name}: {event!r} is not an event of parent {parent.name}")
        if parent.terminated:
            raise FsmError(f"{self.name}: parent {parent.name} has terminated")
        self.parent = parent
        self.term_event = event
        parent.children.append(self)

    # -- events ----------------------------------------------------------------

    def accepts(self, event: E) -> bool:
        """Whether the current state (or every state) accepts `event`."""
        return event in self.ALL_STATE_EVENTS or event in self.BOUND[self.state].events

    def dispatch(self, event: E, **data: Any) -> None:
        """Deliver one event: to the all-state handler or the current state's; queued if an action of
        this machine is running (it runs when that action is done)."""
        if not isinstance(event, self.EVENTS):
            raise FsmError(f"{self.name}: {event!r} is not an event of {type(self).__name__}")
        if self._running:
            self._pending.append((event, data))
            return
        self._running = True
        try:
            self._deliver(event, data)
            while self._pending:
                ev, d = self._pending.popleft()
                self._deliver(ev, d)
        finally:
            self._running = False
            self._pending.clear()

    def _deliver(self, event: E, data: dict[str, Any]) -> None:
        if self.terminated:
            self._refuse(event, "terminated")
            return
        if event in self.ALL_STATE_EVENTS:
            log.debug("%s: %s in %s (every state)", self.name, event.name, self.state.name)
            fn = type(self)._all_state
        else:
            b = self.BOUND[self.state]
            if event not in b.events:
                self._refuse(event, "not accepted")
                return
            log.debug("%s: %s in %s", self.name, event.name, self.state.name)
            fn = b.handler
        if fn is not None:
            fn(self, event, **data)

    def _refuse(self, event: E, why: str) -> None:
        self.protocol_errors += 1
        log.info("%s: event %s %s in state %s: ignored", self.name, event.name, why, self.state.name)
        self.transitions.append((self.clock.now_ms, self.state.name, event.name, "(ignored)"))

    # -- transitions and timers --------------------------------------------------

    def transition(self, new: S, timer_ms: int | None = None) -> None:
        """Go to `new`: on-leave of the old state, stop its timer, start the new one's (the table's,
        or `timer_ms`), on-enter of the new state."""
        if self.terminated:
            raise FsmError(f"{self.name}: terminated, cannot go to {new.name}")
        old = self.state
        ob = self.BOUND[old]
        if new not in ob.next_states:
            raise FsmError(f"{self.name}: {old.name} -> {new.name} is not in the table")
        self.stop_timer()
        if ob.on_leave is not None:
            ob.on_leave(self, new)
        self.state = new
        self.state_since_ms = self.clock.now_ms
        self.transitions.append((self.clock.now_ms, old.name, "->", new.name))
        log.debug("%s: %s -> %s", self.name, old.name, new.name)
        if self.census is not None:
            self.census.moved(self, old, new)
        nb = self.BOUND[new]
        if timer_ms is not None or nb.timer is not None:
            delay = timer_ms if timer_ms is not None else self.timers[nb.timer or ""]
            self._start_timer(nb.timer or "(given)", delay)
        if nb.on_enter is not None:
            nb.on_enter(self, old)

    def _start_timer(self, name: str, ms: int) -> None:
        self._timer_name = name
        self._timer = self.clock.call_later(ms, self._expire)

    def start_timer(self, name: str, ms: int | None = None) -> None:
        """Stop the running timer and start the protocol's timer `name` (its value in force, or `ms`):
        for a machine whose states run more than one timer (Q.921's T200 and T203 in one state)."""
        if name not in self.timers:
            raise TimerError(f"{self.name}: timer table {self.timers.protocol!r} has no {name}")
        self.stop_timer()
        self._start_timer(name, self.timers[name] if ms is None else ms)

    def restart_timer(self, ms: int) -> None:
        """Restart the current state's timer with `ms`."""
        name = self._timer_name or self.BOUND[self.state].timer or "(given)"
        self.stop_timer()
        self._start_timer(name, ms)

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_name = None

    @property
    def timer(self) -> tuple[str, int] | None:
        """The running timer: (name, due ms), or None."""
        if self._timer is None or self._timer.cancelled:
            return None
        return (self._timer_name or "", self._timer.due_ms)

    def _expire(self) -> None:
        name = self._timer_name or ""
        self._timer = None
        self._timer_name = None
        self.expired = name
        log.debug("%s: timeout of %s in %s", self.name, name, self.state.name)
        self.transitions.append((self.clock.now_ms, self.state.name, "TIMEOUT", name))
        self.dispatch(self.TIMEOUT)

    # -- parents and children ----------------------------------------------------

    def terminate(self, cause: TermCause, **info: Any) -> None:
        """End this machine: its children first (cause PARENT), then its clean-up, then tell its parent
        (the parent's child-termination event with child=self, cause=cause and `info`)."""
        if self.terminated:
            return
        for child in list(reversed(self.children)):
            child.terminate(TermCause.PARENT)
        self.stop_timer()
        self.on_terminate(cause)
        self.terminated = True
        if self.census is not None and self.state is not self.REST:
            self.census.busy -= 1       # a terminated machine is no longer counted
        self.census = None
        self.term_cause = cause
        self.transitions.append((self.clock.now_ms, self.state.name, "TERMINATE", cause.name))
        log.debug("%s: terminated (%s) in %s", self.name, cause.name, self.state.name)
        parent, event = self.parent, self.term_event
        if parent is None:
            return
        parent.children.remove(self)
        self.parent = None
        if cause is not TermCause.PARENT and event is not None:
            parent.dispatch(event, child=self, cause=cause, **info)

    def on_terminate(self, cause: TermCause) -> None:
        """Clean-up when the machine terminates (after its children, before its parent hears): override."""
