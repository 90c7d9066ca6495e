"""Each strategy through the ACD (issue 11, Acceptance): 4 agents, 20 callers, the who-got-which list worked
out by hand in tests/appliance/test_router.py (each fails under every other strategy), and the agents'
report figures from the ACD's own events equal the ones that list gives by hand.

The scene is the router test's: members in the order C, A, D, B; the agents log in B at 0 ms, D at 10,
A at 20, C at 30 (so idle since B 0, D 10, A 20, C 30), with a history in the queue since login of A 3
calls / 30 s talk, B 1 / 50 s, C 2 / 5 s, D 1 / 40 s. Caller i (1..20) arrives at 1000 + 100 i - 50 ms;
the agent offered answers at once (ring_all: the lowest number answers first, the others are withdrawn),
and hangs up 50 ms later (counted as 10 s of talk for least_talk_time, as the router test counts it).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from appliance.acd.router import Strategy
from appliance.figures import report
from appliance.storage import Event
from tests.appliance.test_acd import World, site
from tests.appliance.test_router import EXPECTED

A, B, C, D = "1001", "1002", "1003", "1004"
END_MS = 1000 + 100 * 20          # the last hang-up: every agent ready again
TALK_MS = 50


def run(strategy: str) -> tuple[list[str], list[Event]]:
    w = World(site(f"q: {{strategy: {strategy}, agents: ['{C}', '{A}', '{D}', '{B}']}}"))
    for agent, at in ((B, 0), (D, 10), (A, 20), (C, 30)):
        w.at(at)
        w.login(agent)
    for agent, talks in ((A, (10_000, 10_000, 10_000)), (B, (50_000,)), (C, (2_000, 3_000)), (D, (40_000,))):
        for t in talks:
            w.acd.router.call_done("q", agent, t)          # the history since login the scene starts from
    got = []
    for i in range(1, 21):
        cid = f"c{i:02}"
        w.at(1000 + 100 * i - 50)
        n = len(w.host.offers)
        assert w.acd.enqueue(cid, ["q"], ani=str(i)) is None
        offered = [a for c, a in w.host.offers[n:] if c == cid]
        agent = min(offered, key=int)                      # ring_all: the lowest number answers first
        assert w.answer(cid, agent)
        got.append(agent)
        w.at(1000 + 100 * i)
        w.hang_up(cid, agent, 10_000)
    events = [Event(1, 0, "boot", detail={"boot": 1, "calendar_start": "2026-03-01T09:00:00"})]
    events += [Event(1, t, kind, call, queue, agent, detail) for t, kind, call, queue, agent, detail in w.host.events]
    return got, events


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_each_strategy_gives_its_list_and_the_agents_figures_follow(strategy: Strategy) -> None:
    got, events = run(strategy)
    assert got == EXPECTED[strategy]
    answered = Counter(EXPECTED[strategy])
    login = {B: 0, D: 10, A: 20, C: 30}
    want: dict[str, dict[str, Any]] = {}
    for agent in (A, B, C, D):
        n = answered.get(agent, 0)
        # ready from the login to the end but for each call's 50 ms on it (offers answered in their tick)
        want[agent] = {"answered": n, "missed": 0, "talk_ms": TALK_MS * n, "wrap_ms": 0,
                       "ready_ms": END_MS - login[agent] - TALK_MS * n, "not_ready_ms": 0}
    assert report(events, "agent")["agents"] == want
