"""The state-machine base and the clock: tables checked when the class is made, timers from the
protocol's table on the clock, on-enter/on-leave, events of every state, parents and children,
errors contained."""

from __future__ import annotations

import enum
import types
from typing import Any

import pytest

from e1t1.clock import Clock
from e1t1.errors import FsmError, FsmTableError, TimerError
from e1t1.fsm import StateDef, StateMachine, TermCause
from e1t1.timers import TimerDef, TimerTable, TimerUnit


class St(enum.Enum):
    IDLE = 1
    WAIT = 2
    DONE = 3


class Ev(enum.Enum):
    GO = 1
    REPLY = 2
    TIMEOUT = 3
    STATUS = 4        # accepted in every state
    CHILD_GONE = 5    # a child terminated


TIMERS = (TimerDef("T1", 300, TimerUnit.MS, "wait for a reply", 10, 10000),)


class Toy(StateMachine[St, Ev]):
    PROTOCOL = "toy"
    TIMERS = TIMERS
    TIMEOUT = Ev.TIMEOUT
    ALL_STATE_EVENTS = frozenset({Ev.STATUS, Ev.CHILD_GONE})
    ALL_STATE_HANDLER = "any_state"
    CHILD_TERM_EVENT = Ev.CHILD_GONE
    TABLE = {
        St.IDLE: StateDef(frozenset({Ev.GO}), frozenset({St.WAIT}), "st_idle", on_leave="leave_idle"),
        St.WAIT: StateDef(frozenset({Ev.REPLY, Ev.TIMEOUT, Ev.GO}), frozenset({St.DONE, St.IDLE, St.WAIT}), "st_wait",
                          timer="T1", on_enter="enter_wait", on_leave="leave_wait"),
        St.DONE: StateDef(frozenset(), frozenset()),
    }

    def __init__(self, clock: Clock, overrides: dict[str, int] | None = None, name: str = "toy(1)",
                 parent: Toy | None = None, timers: TimerTable | None = None) -> None:
        super().__init__(name, St.IDLE, clock, timers or TimerTable("toy", TIMERS, overrides), parent=parent)
        self.seen: list[Any] = []

    def st_idle(self, ev: Ev, **data: Any) -> None:
        self.transition(St.WAIT)

    def leave_idle(self, new: St) -> None:
        self.seen.append(("leave IDLE", new.name, self.state.name, self.timer))

    def enter_wait(self, prev: St) -> None:
        self.seen.append(("enter WAIT", prev.name, self.state.name, self.timer is not None))

    def leave_wait(self, new: St) -> None:
        self.seen.append(("leave WAIT", new.name, self.state.name, self.timer))

    def st_wait(self, ev: Ev, **data: Any) -> None:
        self.seen.append((ev, data))
        if ev is Ev.GO:
            self.transition(St.WAIT)
        else:
            self.transition(St.DONE if ev is Ev.REPLY else St.IDLE)

    def any_state(self, ev: Ev, **data: Any) -> None:
        self.seen.append(("any", ev.name, self.state.name, data.get("cause")))

    def on_terminate(self, cause: TermCause) -> None:
        self.seen.append(("terminate", self.name, cause.name))


def test_timer_started_on_entry_fires_timeout_at_its_ms() -> None:
    clock = Clock()
    m = Toy(clock)
    m.dispatch(Ev.GO)
    clock.advance(299)
    states = [m.state]
    clock.advance(300)
    states.append(m.state)
    assert states == [St.WAIT, St.IDLE]
    assert m.transitions[-2] == (300, "WAIT", "TIMEOUT", "T1")
    assert m.transitions[-1] == (300, "WAIT", "->", "IDLE")


def test_site_override_changes_the_timer() -> None:
    clock = Clock()
    m = Toy(clock, {"T1": 50})
    m.dispatch(Ev.GO)
    clock.advance(50)
    assert m.state is St.IDLE
    with pytest.raises(TimerError, match="unknown timer 'T9'"):
        Toy(clock, {"T9": 1})


def test_leaving_a_state_cancels_its_timer() -> None:
    clock = Clock()
    m = Toy(clock)
    m.dispatch(Ev.GO)
    clock.advance(100)
    m.dispatch(Ev.REPLY, text="ok")
    clock.advance(1000)
    assert m.state is St.DONE and m.timer is None
    assert (Ev.REPLY, {"text": "ok"}) in m.seen


def test_an_event_a_state_does_not_accept_is_counted_and_ignored() -> None:
    clock = Clock()
    m = Toy(clock)
    m.dispatch(Ev.REPLY)                  # IDLE does not accept REPLY
    assert (m.state, m.protocol_errors, m.timer) == (St.IDLE, 1, None)
    assert m.transitions[-1] == (0, "IDLE", "REPLY", "(ignored)")
    m.dispatch(Ev.GO)
    m.dispatch(Ev.REPLY)
    clock.advance(50)
    m.dispatch(Ev.GO)                     # DONE accepts nothing
    assert m.state is St.DONE and m.protocol_errors == 2
    assert m.transitions[-1] == (50, "DONE", "GO", "(ignored)")


def test_a_transition_outside_the_table_is_a_bug() -> None:
    m = Toy(Clock())
    with pytest.raises(FsmError, match="IDLE -> DONE is not in the table"):
        m.transition(St.DONE)


def test_on_leave_runs_before_the_state_changes_and_on_enter_after_the_timer_started() -> None:
    clock = Clock()
    m = Toy(clock)
    m.dispatch(Ev.GO)
    m.dispatch(Ev.GO)            # WAIT -> WAIT: leave and enter run again, the timer restarts
    clock.advance(200)
    m.dispatch(Ev.REPLY)
    hooks = [s for s in m.seen if isinstance(s[0], str)]
    assert hooks == [
        ("leave IDLE", "WAIT", "IDLE", None),      # still IDLE, no timer yet
        ("enter WAIT", "IDLE", "WAIT", True),      # in WAIT, T1 already running
        ("leave WAIT", "WAIT", "WAIT", None),      # the old timer was stopped first
        ("enter WAIT", "WAIT", "WAIT", True),
        ("leave WAIT", "DONE", "WAIT", None),
    ]


def test_events_of_every_state_reach_the_all_state_handler_in_each_state() -> None:
    clock = Clock()
    m = Toy(clock)
    seen_in = []
    for step in (None, Ev.GO, Ev.REPLY):
        if step is not None:
            m.dispatch(step)
        state, timer = m.state, m.timer
        m.dispatch(Ev.STATUS)
        assert (m.state, m.timer) == (state, timer)
        seen_in.append(m.seen[-1][2])
    assert seen_in == ["IDLE", "WAIT", "DONE"] and m.protocol_errors == 0


def test_events_sent_from_inside_an_action_run_after_it() -> None:
    order: list[str] = []

    class Echo(Toy):
        def st_idle(self, ev: Ev, **data: Any) -> None:
            order.append("idle: start")
            self.dispatch(Ev.REPLY)            # an upper layer answering from inside the report
            order.append(f"idle: end in {self.state.name}")
            self.transition(St.WAIT)

        def st_wait(self, ev: Ev, **data: Any) -> None:
            order.append(f"{ev.name} in {self.state.name}")
            super().st_wait(ev, **data)

    m = Echo(Clock())
    m.dispatch(Ev.GO)
    assert order == ["idle: start", "idle: end in IDLE", "REPLY in WAIT"]
    assert m.state is St.DONE


def test_handlers_are_bound_when_the_class_is_made() -> None:
    class Other(Toy):
        def st_idle(self, ev: Ev, **data: Any) -> None:    # a subclass's own handler is the one bound
            self.seen.append("other")

    assert Toy.BOUND[St.IDLE].handler is Toy.st_idle
    assert Other.BOUND[St.IDLE].handler is Other.st_idle
    m = Other(Clock())
    m.st_idle = lambda ev, **d: m.seen.append("patched")  # type: ignore[method-assign]
    m.dispatch(Ev.GO)
    assert m.seen == ["other"]                  # not looked up by name at each event


def bad_table(**attrs: Any) -> type:
    base: dict[str, Any] = {
        "PROTOCOL": "toy", "TIMERS": TIMERS, "TIMEOUT": Ev.TIMEOUT,
        "TABLE": {St.IDLE: StateDef(frozenset({Ev.GO}), frozenset({St.WAIT}), "st"),
                  St.WAIT: StateDef(frozenset({Ev.TIMEOUT}), frozenset({St.IDLE}), "st", timer="T1"),
                  St.DONE: StateDef(frozenset(), frozenset())},
        "st": lambda self, ev, **d: None,
    }
    base.update(attrs)
    return types.new_class("Bad", (StateMachine[St, Ev],), exec_body=lambda ns: ns.update(base))


@pytest.mark.parametrize(("change", "message"), [
    ({}, None),
    ({"TABLE": {St.IDLE: StateDef(frozenset(), frozenset())}}, "state WAIT is missing from the table"),
    ({"TABLE": {St.IDLE: StateDef(frozenset({Ev.GO}), frozenset({Ev.GO}), "st"), St.WAIT: StateDef(frozenset(),
      frozenset()), St.DONE: StateDef(frozenset(), frozenset())}}, "next state <Ev.GO: 1> is not a St"),
    ({"TABLE": {St.IDLE: StateDef(frozenset({Ev.TIMEOUT}), frozenset(), "st", timer="T7"),
                St.WAIT: StateDef(frozenset(), frozenset()), St.DONE: StateDef(frozenset(), frozenset())}},
     "state IDLE: timer 'T7' is not in toy timer table (known: T1)"),
    ({"TABLE": {St.IDLE: StateDef(frozenset({Ev.GO}), frozenset(), "st_nowhere"),
                St.WAIT: StateDef(frozenset(), frozenset()), St.DONE: StateDef(frozenset(), frozenset())}},
     "state IDLE handler: 'st_nowhere' is not a method of Bad"),
    ({"TABLE": {St.IDLE: StateDef(frozenset({Ev.GO}), frozenset(), "st", timer="T1"),
                St.WAIT: StateDef(frozenset(), frozenset()), St.DONE: StateDef(frozenset(), frozenset())}},
     "state IDLE: starts a timer but does not accept TIMEOUT"),
    ({"ALL_STATE_EVENTS": frozenset({Ev.GO}), "ALL_STATE_HANDLER": "st"}, "state IDLE: GO is accepted in every "
                                                                          "state already"),
    ({"CHILD_TERM_EVENT": Ev.GO}, "CHILD_TERM_EVENT GO is not accepted in WAIT, DONE"),
    ({"TABLE": {St.IDLE: StateDef(frozenset({Ev.GO}), frozenset())}, "TIMERS": ()},
     "state WAIT is missing from the table"),
])
def test_a_bad_table_raises_when_the_class_is_made(change: dict[str, Any], message: str | None) -> None:
    if message is None:
        assert issubclass(bad_table(), StateMachine)       # the unchanged table is good
        return
    with pytest.raises(FsmTableError) as exc:
        bad_table(**change)
    assert message in str(exc.value)


def test_a_child_tells_its_parent_why_it_ended() -> None:
    clock = Clock()
    parent = Toy(clock, name="call(1)")
    child = Toy(clock, name="leg(1a)", parent=parent)
    assert parent.children == [child] and child.parent is parent
    child.terminate(TermCause.REGULAR)
    assert ("any", "CHILD_GONE", "IDLE", TermCause.REGULAR) in parent.seen
    assert parent.children == [] and child.terminated and child.term_cause is TermCause.REGULAR
    # A terminated machine takes no more events: each is a counted protocol error.
    child.dispatch(Ev.GO)
    assert child.state is St.IDLE and child.protocol_errors == 1
    with pytest.raises(FsmError, match="terminated"):
        child.transition(St.WAIT)


def test_terminating_a_parent_terminates_its_children_first() -> None:
    clock = Clock()
    parent = Toy(clock, name="call(1)")
    a = Toy(clock, name="leg(a)", parent=parent)
    b = Toy(clock, name="leg(b)", parent=parent)
    grandchild = Toy(clock, name="tone(b1)", parent=b)
    parent.dispatch(Ev.GO)
    log: list[Any] = []
    for m in (parent, a, b, grandchild):
        m.seen = log
    parent.terminate(TermCause.REQUEST)
    assert [e for e in log if e[0] == "terminate"] == [
        ("terminate", "tone(b1)", "PARENT"), ("terminate", "leg(b)", "PARENT"), ("terminate", "leg(a)", "PARENT"),
        ("terminate", "call(1)", "REQUEST")]
    assert not [e for e in log if e[0] == "any"]       # a child ended by its parent does not report back
    assert parent.timer is None                         # the parent's WAIT timer is stopped
    clock.advance(10000)
    assert parent.state is St.WAIT
    with pytest.raises(FsmError, match="has terminated"):
        Toy(clock, name="late", parent=parent)


def test_timers_declare_unit_and_range() -> None:
    t303 = TimerDef("T303", 4, TimerUnit.S, "SETUP sent, waiting for an answer", 1, 60)
    table = TimerTable("q931", [t303], {"T303": 1500})
    assert (t303.default_ms, t303.min_ms, t303.max_ms) == (4000, 1000, 60000)
    assert table["T303"] == 1500
    assert TimerTable("q931", [t303])["T303"] == 4000
    with pytest.raises(TimerError, match=r"q931.T303: must be 1000-60000 ms, got 999"):
        TimerTable("q931", [t303], {"T303": 999})
    with pytest.raises(TimerError, match=r"must be an integer number of ms, got 2\.5"):
        TimerTable("q931", [t303], {"T303": 2.5})  # type: ignore[dict-item]
    with pytest.raises(TimerError, match="default 61 is outside its range 1-60 s"):
        TimerDef("T310", 61, TimerUnit.S, "", 1, 60)
    with pytest.raises(TimerError, match="runs toy timers, given the q931 table"):
        Toy(Clock(), timers=table)


def test_clock_runs_timers_in_due_then_creation_order_and_never_goes_back() -> None:
    clock = Clock()
    order: list[str] = []
    clock.call_at(20, lambda: order.append("b"))
    clock.call_at(10, lambda: order.append("a"))
    clock.call_at(20, lambda: order.append("c"))
    t = clock.call_at(15, lambda: order.append("x"))
    t.cancel()
    assert clock.advance(25) == 3
    assert order == ["a", "b", "c"]
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(10)


class TwoTimers(StateMachine[St, Ev]):
    """A machine whose one state runs two timers in turn, as Q.921's established state runs T200 and T203."""

    PROTOCOL = "two"
    TIMERS = (TimerDef("TA", 100, TimerUnit.MS, "first", 10, 1000),
              TimerDef("TB", 250, TimerUnit.MS, "second", 10, 1000))
    TIMEOUT = Ev.TIMEOUT
    TABLE = {
        St.IDLE: StateDef(frozenset({Ev.GO}), frozenset({St.WAIT}), "st"),
        St.WAIT: StateDef(frozenset({Ev.TIMEOUT, Ev.GO}), frozenset({St.IDLE}), "st", timer="TA"),
        St.DONE: StateDef(frozenset(), frozenset()),
    }

    def __init__(self, clock: Clock) -> None:
        super().__init__("two(1)", St.IDLE, clock)
        self.ran_out: list[tuple[int, str | None]] = []

    def st(self, ev: Ev, **data: Any) -> None:
        if ev is Ev.GO and self.state is St.IDLE:
            self.transition(St.WAIT)
        elif ev is Ev.GO:
            self.start_timer("TB")
        else:
            self.ran_out.append((self.clock.now_ms, self.expired))
            if self.expired == "TA":
                self.start_timer("TB", 50)


def test_a_state_runs_two_timers_by_name_and_knows_which_ran_out() -> None:
    clock = Clock()
    m = TwoTimers(clock)
    m.dispatch(Ev.GO)
    assert m.timer == ("TA", 100)
    clock.advance(100)
    assert m.timer == ("TB", 150)          # started with a given ms
    clock.advance(150)
    assert m.ran_out == [(100, "TA"), (150, "TB")] and m.timer is None
    m.dispatch(Ev.GO)                      # in WAIT: TB by its value in force, replacing nothing
    assert m.timer == ("TB", 400)
    m.start_timer("TA")                    # the running TB stops: TA from now (150)
    clock.advance(1000)
    assert m.ran_out[2:] == [(250, "TA"), (300, "TB")]
    with pytest.raises(TimerError, match="has no T9"):
        m.start_timer("T9")
