"""A supervisor's actions on agents over control.sock (issue 15, item 10), on the sim card in virtual time:
``agent.state`` (ready, not_ready with a reason) and ``agent.logout`` through the ACD's owner of agent
state. A ringing or talking agent changes when its call ends ("pending"); the call is never cut. And the
snapshot's times in state (item 9): ports[].state_since_ms/call_id, calls[].port/state_since_ms,
agents[].state_since_ms/reason, all on the engine clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control import ControlError
from appliance.storage import read_events
from appliance.world import Caller, PhoneScript
from tests.e2e.acd_site import heard_at, line_at
from tests.e2e.harness import Site, site_yaml
from tests.signals import frequency

PHONE1, PHONE2 = 2, 3           # site_yaml: two trunks (ports 0, 1), then the phones


def agent(snap: dict[str, Any], number: str) -> dict[str, Any]:
    return next(a for a in snap["agents"] if a["number"] == number)


def run_until(site: Site, agent_number: str, state: str, limit_ms: int = 30000) -> None:
    """Run the engine a period at a time until the agent is in `state` (engine clock, at most `limit_ms`)."""
    end = site.engine.clock.now_ms + limit_ms
    while site.engine.acd.agents[agent_number].state.value != state:
        assert site.engine.clock.now_ms < end, f"agent {agent_number} never {state}"
        site.run(10)


def reasons_yaml() -> str:
    return site_yaml(agents=2).replace("queues:", "acd: {not_ready_reasons: {'1': break, '2': lunch}}\nqueues:")


@pytest.fixture
def two_agents(tmp_path: Path) -> Iterator[Site]:
    """Agents 1001 and 1002 log in at once; a caller on trunk1 presses 1 for the queue at 6 s of engine
    clock; the phone that rings answers after 2 s."""
    caller = Caller(trunk=0, at_ms=6000, ani="13912345678", press_after_ms=500, hold_ms=20000)
    phones = [PhoneScript(port=PHONE1, agent="1001", login_at_ms=0, answer_after_ms=2000),
              PhoneScript(port=PHONE2, agent="1002", login_at_ms=0, answer_after_ms=2000)]
    site = Site(tmp_path, reasons_yaml(), [caller], phones, keep_audio=False)
    yield site
    site.close()


def test_not_ready_on_a_ready_agent_sends_the_next_call_elsewhere(two_agents: Site) -> None:
    site = two_agents
    site.run(4000)
    snap = site.request("status")
    assert [agent(snap, n)["state"] for n in ("1001", "1002")] == ["ready", "ready"]
    done = site.request("agent.state", number="1001", state="not_ready", reason="break")
    assert done == {"number": "1001", "result": "done", "before": {"state": "ready", "reason": None},
                    "state": "not_ready", "reason": "break"}
    now = site.engine.clock.now_ms
    snap = site.request("status")
    a = agent(snap, "1001")
    assert (a["state"], a["reason"], a["state_since_ms"]) == ("not_ready", "break", now)
    site.run(10000)                                   # the caller came, pressed 1, was offered and answered
    snap = site.request("status")
    (call,) = snap["calls"]
    assert (call["state"], call["agent"]) == ("connected", "1002")
    assert agent(snap, "1001")["state"] == "not_ready"
    # the agent's state change is an event like any other (the figures and reports see it)
    changes = [e for e in read_events(site.state / "cicbox.db") if e.kind == "agent_state" and e.agent == "1001"]
    assert changes[-1].detail["state"] == "not_ready" and changes[-1].detail["reason"] == "break"
    # and ready again: the next offer may reach it
    back = site.request("agent.state", number="1001", state="ready")
    assert (back["result"], back["state"], back["before"]) == ("done", "ready",
                                                               {"state": "not_ready", "reason": "break"})


def test_logout_of_a_talking_agent_waits_for_the_call_to_end(tmp_path: Path) -> None:
    caller = Caller(trunk=0, at_ms=1000, ani="13912345678", press_after_ms=500, hold_ms=20000)
    phone = PhoneScript(port=PHONE1, agent="1001", login_at_ms=0, answer_after_ms=2000)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone], keep_audio=True)
    try:
        site.run(12000)                               # the caller talks to 1001
        snap = site.request("status")
        (call,) = snap["calls"]
        assert (call["state"], call["agent"], call["port"]) == ("connected", "1001", 0)
        assert caller.answered_ms is not None
        # the snapshot's times in state, on the engine clock
        assert snap["tick_ms"] - call["state_since_ms"] < 12000 - 4000
        assert call["state_since_ms"] == call["since_ms"]
        trunk, phone1 = snap["ports"][0], snap["ports"][PHONE1]
        assert trunk["call_id"] == call["id"] and phone1["call_id"] == call["id"]
        assert snap["ports"][1]["call_id"] is None
        assert trunk["state_since_ms"] <= call["state_since_ms"] <= snap["tick_ms"]
        a = agent(snap, "1001")
        assert a["state"] == "on_call" and a["state_since_ms"] == call["state_since_ms"]

        kept = site.request("agent.logout", number="1001")
        assert (kept["result"], kept["state"], kept["before"]["state"]) == ("pending", "on_call", "on_call")
        asked = site.engine.clock.now_ms
        site.run(5000)                                # the call goes on: each side hears the other
        assert abs(frequency(heard_at(caller, asked + 300, 4000)) - 587) <= 2
        assert abs(frequency(line_at(site.world.phones[PHONE1], asked + 300, 4000)) - 1020) <= 2
        snap = site.request("status")
        (call,) = snap["calls"]
        assert call["state"] == "connected"
        assert (agent(snap, "1001")["state"], agent(snap, "1001")["pending"]) == ("on_call", "logout")
        assert snap["ports"][PHONE1]["state"] != "idle"
        site.run(12000)                               # the caller hung up after 20 s of talk
        snap = site.request("status")
        assert snap["calls"] == []
        a = agent(snap, "1001")
        assert (a["state"], a["phone"], a["pending"]) == ("logged_out", None, None)
        assert caller.hung_up_ms is not None and caller.hung_up_ms - caller.answered_ms >= 20000
    finally:
        site.close()


def test_bad_requests_are_refused_clearly(two_agents: Site) -> None:
    site = two_agents
    site.run(4000)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"cmd": "agent.state", "number": "1999", "state": "ready"}, "configured agent's number (1001, 1002)"),
        ({"cmd": "agent.state", "number": 1001, "state": "ready"}, "not 1001"),
        ({"cmd": "agent.state", "number": "1001", "state": "on_call"}, "state must be ready or not_ready"),
        ({"cmd": "agent.state", "number": "1001", "state": "not_ready", "reason": "nap"},
         "reason must be one of break, lunch, other, not 'nap'"),
        ({"cmd": "agent.state", "number": "1001", "state": "ready", "reason": "break"}, "with not_ready only"),
        ({"cmd": "agent.logout", "number": None}, "configured agent's number"),
    ]
    for req, message in cases:
        args = dict(req)
        cmd = args.pop("cmd")
        with pytest.raises(ControlError) as exc:
            site.request(cmd, **args)
        assert message in str(exc.value), (req, str(exc.value))
    snap = site.request("status")
    assert [agent(snap, n)["state"] for n in ("1001", "1002")] == ["ready", "ready"]
    # a logged-out agent: logout is done already, a state needs a login at a phone
    assert site.request("agent.logout", number="1002")["result"] == "done"
    assert site.request("agent.logout", number="1002") == {
        "number": "1002", "result": "done", "before": {"state": "logged_out", "reason": None},
        "state": "logged_out", "reason": None}
    with pytest.raises(ControlError, match="agent 1002 is logged out"):
        site.request("agent.state", number="1002", state="ready")
    # *24# without a reason is other; a supervisor's not_ready without one too
    assert site.request("agent.state", number="1001", state="not_ready")["reason"] == "other"


def test_not_ready_on_a_ringing_agent_applies_after_its_call(two_agents: Site) -> None:
    site = two_agents
    site.run(4000)
    site.request("agent.state", number="1002", state="not_ready", reason="lunch")
    run_until(site, "1001", "offered")               # the caller is in the queue, 1001's phone rings
    snap = site.request("status")
    assert agent(snap, "1001")["state"] == "offered"
    kept = site.request("agent.state", number="1001", state="not_ready", reason="break")
    assert (kept["result"], kept["state"]) == ("pending", "offered")
    site.run(2500)                                   # answered: the call is never cut
    snap = site.request("status")
    assert (snap["calls"][0]["state"], agent(snap, "1001")["state"]) == ("connected", "on_call")
    assert agent(snap, "1001")["pending"] == "not_ready"
    site.run(22000)                                  # the caller hung up
    snap = site.request("status")
    assert snap["calls"] == []
    assert (agent(snap, "1001")["state"], agent(snap, "1001")["reason"]) == ("not_ready", "break")
