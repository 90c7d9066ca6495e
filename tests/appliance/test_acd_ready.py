"""The ACD looks only at the agents ready now: queue membership, agents configured away and
agents who become ready again are all seen through that, as the queue rules say."""

from __future__ import annotations

from appliance.acd import AgentState, QueueDef
from tests.appliance.test_acd import make


def test_only_ready_members_of_the_callers_queue_are_offered() -> None:
    acd, host, clock = make(4)
    acd.configure([(n, n) for n in ("1001", "1002", "1003", "1004")],
                  [QueueDef("q", ("1003", "1004"), 15000), QueueDef("other", ("1001", "1002"), 15000)])
    acd.login("1001", "p1")                 # idle longest, but not a member of q
    clock.advance(100)
    acd.login("1004", "p4")
    clock.advance(200)                      # the clock's time, ms
    acd.login("1003", "p3")
    acd.enqueue("c1", "q")
    assert host.offers == [("c1", "1004")]
    acd.enqueue("c2", "q")
    assert host.offers == [("c1", "1004"), ("c2", "1003")]
    acd.enqueue("c3", "q")                  # every member busy: c3 waits, 1001 is not asked
    assert host.offers[-1] == ("c2", "1003")
    acd.answered("c1", 1000)
    acd.call_ended("1004", 2000)            # 1004 ready again: the waiting call goes to it
    assert host.offers[-1] == ("c3", "1004")


def test_an_agent_configured_away_while_ready_is_never_offered() -> None:
    acd, host, clock = make(2)
    acd.login("1001", "p1")
    clock.advance(100)
    acd.login("1002", "p2")
    acd.configure([("1002", "Agent 1002")], [QueueDef("q", ("1001", "1002"), 15000)])
    assert "1001" not in acd.agents
    acd.enqueue("c1", "q")
    assert host.offers == [("c1", "1002")]
    acd.enqueue("c2", "q")
    assert host.offers == [("c1", "1002")]            # 1001 is a member still, but no agent now


def test_an_agent_not_ready_or_logged_out_is_not_offered_until_ready() -> None:
    acd, host, _ = make(2)
    acd.login("1001", "p1")
    acd.ready("1001", False)
    acd.login("1002", "p2")
    acd.logout("1002")
    acd.enqueue("c1", "q")
    assert host.offers == []
    assert [a.state for a in acd.agents.values()] == [AgentState.NOT_READY, AgentState.LOGGED_OUT]
    acd.ready("1001", True)
    assert host.offers == [("c1", "1001")]
