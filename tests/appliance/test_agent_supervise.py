"""A supervisor's actions on agents (Agents.supervise, behind control.sock's agent.state and agent.logout)
in each agent state, against the ACD with the phones played by the test (tests/appliance/test_acd.py's
World): applied at once for an agent without a call (a wrap-up ends there), kept for a ringing or talking
agent until its offer or call ends; the call itself is never touched."""

from __future__ import annotations

import pytest

from appliance.acd.agents import SuperviseError
from tests.appliance.test_acd import Q, World, site


def supervise(w: World, number: str, action: str, reason: str | None = None) -> str:
    return w.acd.agents.supervise(w.acd.agents[number], action, reason)


def test_a_ready_agent_changes_at_once_and_is_no_candidate() -> None:
    w = World(site(Q))
    w.login("1001", "1002")
    assert supervise(w, "1001", "not_ready", "other") == "done"
    assert w.state("1001") == "not_ready(other)"
    w.acd.enqueue("c1", ["q"], ani="1")
    assert w.host.offers == [("c1", "1002")]                 # the next call goes elsewhere
    assert supervise(w, "1001", "ready") == "done"
    w.acd.enqueue("c2", ["q"], ani="2")
    assert w.host.offers[-1] == ("c2", "1001")
    events = [e[5] for e in w.host.kinds("agent_state") if e[4] == "1001"]
    assert {"state": "not_ready", "reason": "other"} in [{k: e[k] for k in ("state", "reason")} for e in events]


def test_logout_of_a_ringing_agent_waits_for_the_offer_to_end() -> None:
    w = World(site(Q))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    assert w.state("1001") == "offered"
    assert supervise(w, "1001", "logout") == "pending"
    assert w.state("1001") == "offered" and w.host.withdrawn == []   # its phone still rings
    assert w.acd.agents["1001"].view()["pending"] == "logout"
    w.at(15000)                                                   # unanswered: the offer ends
    assert w.state("1001") == "logged_out"                        # (not not_ready(missed): logged out)
    assert w.acd.agents.at("p1") is None and w.acd.agents["1001"].phone is None


def test_logout_of_a_talking_agent_skips_the_wrap_up_and_frees_the_phone() -> None:
    w = World(site("q: {agents: ['1001', '1002'], wrap_up_ms: 10000}"))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    assert w.answer("c1", "1001")
    assert supervise(w, "1001", "logout") == "pending"
    w.at(60_000)
    assert w.state("1001") == "on_call"                           # the call goes on
    w.hang_up("c1", "1001", 60_000)
    assert w.state("1001") == "logged_out"
    assert w.acd.login("1002", "p1").value == "ok"            # the phone is free for another login


def test_not_ready_during_a_call_applies_after_it_and_its_wrap_up() -> None:
    w = World(site("q: {agents: ['1001'], wrap_up_ms: 5000}", acd="acd: {not_ready_reasons: {'1': break}}"))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.answer("c1", "1001")
    assert supervise(w, "1001", "not_ready", "break") == "pending"
    w.hang_up("c1", "1001", 1000)
    assert w.state("1001") == "wrap_up"
    w.at(5000)
    assert w.state("1001") == "not_ready(break)"


def test_a_wrap_up_ends_at_a_supervisor_s_action() -> None:
    w = World(site("q: {agents: ['1001', '1002'], wrap_up_ms: 10000}"))
    w.login("1001", "1002")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.answer("c1", "1001")
    w.hang_up("c1", "1001", 1000)
    assert w.state("1001") == "wrap_up"
    assert supervise(w, "1001", "not_ready", "other") == "done"
    assert w.state("1001") == "not_ready(other)"
    w.at(20_000)                                                  # the wrap-up's timer is gone with it
    assert w.state("1001") == "not_ready(other)"
    w.acd.enqueue("c2", ["q"], ani="2")
    w.answer("c2", "1002")
    w.hang_up("c2", "1002", 1000)
    assert supervise(w, "1002", "logout") == "done" and w.state("1002") == "logged_out"


def test_ready_during_a_call_drops_what_was_kept() -> None:
    w = World(site(Q))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.answer("c1", "1001")
    supervise(w, "1001", "logout")
    assert supervise(w, "1001", "ready") == "pending"
    assert w.acd.agents["1001"].view()["pending"] is None
    w.hang_up("c1", "1001", 1000)
    assert w.state("1001") == "ready"


def test_a_logged_out_agent() -> None:
    w = World(site(Q))
    assert supervise(w, "1001", "logout") == "done"
    with pytest.raises(SuperviseError, match="agent 1001 is logged out"):
        supervise(w, "1001", "ready")
    with pytest.raises(SuperviseError, match="no such action"):
        w.login("1001")
        supervise(w, "1001", "dance")


def test_a_heal_keeps_a_pending_logout() -> None:
    w = World(site(Q))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.answer("c1", "1001")
    supervise(w, "1001", "logout")
    w.host.phones["p1"] = "idle"                                  # on hook, and the call layer has no call
    w.host.up.discard("c1")
    w.acd.phone_changed("p1")
    assert w.state("1001") == "logged_out" and w.acd.agents.at("p1") is None
    assert w.host.kinds("agent_heal")[-1][5]["now"] == "logged_out"
