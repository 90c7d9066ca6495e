"""ACD rules: longest idle (ties to the lowest number), ring timeout, queue order, withdrawal."""

from __future__ import annotations

from typing import Any

from appliance.acd import Acd, Agent, AgentState, QueueDef
from e1t1.clock import Clock


class Host:
    def __init__(self) -> None:
        self.offers: list[tuple[str, str]] = []
        self.withdrawn: list[tuple[str, str]] = []
        self.busy_phones: set[str] = set()

    def offer(self, call: Any, agent: Agent) -> bool:
        if agent.phone in self.busy_phones:
            return False
        self.offers.append((call, agent.number))
        return True

    def withdraw(self, call: Any, agent: Agent) -> None:
        self.withdrawn.append((call, agent.number))

    def agent_changed(self, agent: Agent, why: str) -> None:
        pass


def make(n: int = 3, ring_ms: int = 15000) -> tuple[Acd, Host, Clock]:
    clock = Clock()
    host = Host()
    acd = Acd(clock, host)
    numbers = [str(1001 + i) for i in range(n)]
    acd.configure([(x, f"Agent {x}") for x in numbers], [QueueDef("q", tuple(numbers), ring_ms)])
    return acd, host, clock


def test_longest_idle_with_ties_to_the_lowest_number() -> None:
    acd, host, clock = make()
    for number, phone in (("1003", "p3"), ("1001", "p1"), ("1002", "p2")):
        assert acd.login(number, phone)        # all ready at 0: a tie
    acd.enqueue("c1", "q")
    assert host.offers == [("c1", "1001")]
    clock.advance(1000)
    acd.answered("c1", 1000)
    clock.advance(5000)
    acd.call_ended("1001", 5000)                # 1001 idle since 5000; 1002, 1003 since 0
    acd.enqueue("c2", "q")
    acd.enqueue("c3", "q")
    assert host.offers[1:] == [("c2", "1002"), ("c3", "1003")]


def test_ready_later_means_idle_less() -> None:
    acd, host, clock = make()
    acd.login("1001", "p1")
    clock.advance(100)
    acd.login("1002", "p2")
    acd.ready("1001", False)
    clock.advance(200)
    acd.ready("1001", True)                     # ready again at 300: 1002 has waited longer
    acd.enqueue("c1", "q")
    assert host.offers == [("c1", "1002")]


def test_no_answer_makes_the_agent_not_ready_and_the_call_goes_on() -> None:
    acd, host, clock = make(ring_ms=15000)
    acd.login("1001", "p1")
    clock.advance(10)
    acd.login("1002", "p2")
    acd.enqueue("c1", "q")
    assert host.offers == [("c1", "1001")]
    clock.advance(15009)
    states = [acd.agents["1001"].state]
    clock.advance(15010)
    states.append(acd.agents["1001"].state)
    assert states == [AgentState.RINGING, AgentState.NOT_READY]
    assert host.withdrawn == [("c1", "1001")]
    assert host.offers[-1] == ("c1", "1002")


def test_calls_are_offered_in_queue_entry_order() -> None:
    acd, host, clock = make(n=1)
    for c in ("a", "b", "c"):
        acd.enqueue(c, "q")
        clock.advance(clock.now_ms + 100)
    acd.login("1001", "p1")
    assert host.offers == [("a", "1001")]
    acd.answered("a", 500)
    acd.call_ended("1001", 900)
    assert host.offers[-1] == ("b", "1001")
    assert [c for c, _ in acd.waiting("q")] == ["b", "c"]


def test_a_caller_who_leaves_while_offered_frees_the_agent() -> None:
    acd, host, _ = make(n=1)
    acd.login("1001", "p1")
    acd.enqueue("c1", "q")
    acd.remove("c1")
    assert host.withdrawn == [("c1", "1001")]
    assert acd.agents["1001"].state is AgentState.READY
    assert acd.waiting("q") == []


def test_feature_code_rules() -> None:
    acd, _, _ = make(n=2)
    assert not acd.login("9999", "p1")          # no such agent
    assert acd.login("1001", "p1")
    assert not acd.login("1002", "p1")          # p1 is 1001's
    assert acd.agent_at("p1") is acd.agents["1001"]
    assert acd.ready("1001", False)
    states = [acd.agents["1001"].state]
    assert acd.ready("1001", True)
    states.append(acd.agents["1001"].state)
    assert states == [AgentState.NOT_READY, AgentState.READY]
    assert acd.logout("1001") and acd.agents["1001"].state is AgentState.LOGGED_OUT
    assert not acd.ready("1001", True)          # logged out: log in first
    assert acd.agent_at("p1") is None


def test_an_offer_waits_for_a_busy_phone() -> None:
    acd, host, _ = make(n=1)
    host.busy_phones.add("p1")
    acd.login("1001", "p1")
    acd.enqueue("c1", "q")
    assert host.offers == []
    host.busy_phones.clear()
    acd.dispatch()                              # the engine calls this when the phone is back on hook
    assert host.offers == [("c1", "1001")]
