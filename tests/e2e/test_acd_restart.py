"""The ACD through what goes wrong, on the sim card in virtual time (issue 11, Acceptance): a kill -9 with
40 calls up, agents whose state contradicts their phones, a queue removed while callers wait in it.

kill -9: the engine runs in a child process (this file run as a program): 40 trunks, 20 agents. Four calls come
and go first (two answered and hung up, one hung up in the IVR, one given up while a phone rang); then 40
callers who stay: 20 talk to the 20 agents, 20 wait. The child is killed (SIGKILL) once the 40 calls are
up, and the engine is started again on the same state directory, in this process:

- the four released calls keep their events and their CDRs, as they were;
- each of the 40 open calls ends ``system_restart``: its CDR, and a ``call_end`` event saying so;
- the 20 agents are logged in again, not ready (reason ``restart``), and what they are agrees with their
  phones from the first period on (no agent on a call, every phone on hook and idle);
- ten agents dial ``*23#`` and ten new calls are answered, by those ten.

Healing: ``fault.agent_state`` (control.sock, faults enabled) sets an idle ready agent on_call with no call,
or offered with no phone ringing; within a second of engine clock it is ready again (an ``agent_heal``
event says why) and the caller waiting meanwhile is offered to it at once.

A queue removed by ``cicbox config apply`` while two callers wait in it: its agent still answers both;
a call made after the apply follows the new version (its menu key now leads to another queue).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from appliance import cli
from appliance.figures import fold_call
from appliance.storage import read_events
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, by_call, cdrs_by_id, site_yaml

TRUNKS = 40
AGENTS = 20
PHONE0 = TRUNKS                 # the first phone's port
LONG = 3_600_000                # the 40 callers neither hang up nor give up during the test
CHILD_LIMIT_MS = 120_000        # the child stops by itself after this much engine clock


def site_text() -> str:
    """40 trunks answering on the first ring (no caller ID), 20 phones with one agent each, one queue."""
    trunks = "\n".join(f"  - {{kind: fxo, name: trunk{i + 1}, number: '07558888{i + 1:04d}', callerid: none, "
                       f"answer_on_ring: 1}}" for i in range(TRUNKS))
    phones = "\n".join(f"  - {{kind: fxs, name: phone{i + 1}, extension: '8{i + 1:03d}'}}" for i in range(AGENTS))
    routes = "\n".join(f"  - {{trunk: trunk{i + 1}, ivr: main}}" for i in range(TRUNKS))
    agents = "\n".join(f"  - {{number: '{1001 + i}', name: 'Agent {i + 1}', phone: phone{i + 1}}}"
                       for i in range(AGENTS))
    members = ", ".join(f"'{1001 + i}'" for i in range(AGENTS))
    return textwrap.dedent("""\
        site: {name: Big Hotel, zone: cn, law: alaw, epoch: "2026-03-02T09:00:00"}
        card: {backend: sim, k: 5}
        ports:
        TRUNKS
        PHONES
        spans: []
        routes:
        ROUTES
        ivrs:
          main: {greeting: welcome, language: en, menu: {'1': {queue: front_desk}}, timeout_ms: 5000,
                 max_repeats: 2}
        queues:
          front_desk: {agents: [MEMBERS], ring_timeout_ms: 15000}
        agents:
        AGENTS
        """).replace("TRUNKS", trunks).replace("PHONES", phones).replace("ROUTES", routes) \
        .replace("AGENTS", agents).replace("MEMBERS", members)


def first_callers() -> list[Caller]:
    """Before the 40: two answered (talk 2 s and 3 s), one hangs up in the IVR, one gives up 400 ms after
    choosing the queue, while the phone offered its call rings (the phones answer after 1 s)."""
    return [Caller(trunk=0, at_ms=4000, ani="13900000001", cid="none", press_after_ms=300, hold_ms=2000),
            Caller(trunk=1, at_ms=4500, ani="13900000002", cid="none", press_after_ms=300, hold_ms=3000),
            Caller(trunk=2, at_ms=5000, ani="13900000003", cid="none", digits="", press_after_ms=300,
                   patience_ms=200),
            Caller(trunk=3, at_ms=5500, ani="13900000004", cid="none", press_after_ms=300, patience_ms=400)]


def the_forty() -> list[Caller]:
    return [Caller(trunk=i, at_ms=12_000 + 100 * i, ani=f"1380000{i:04d}", cid="none", press_after_ms=300,
                   hold_ms=LONG, patience_ms=LONG) for i in range(TRUNKS)]


def child(state: Path) -> None:
    """The engine until killed: one JSON line whenever the calls up or the durable records change:
    {"t", "live": {call id up: its state}, "released": {call id: its durable CDR}, "agents": {number: state}}."""
    phones = [PhoneScript(port=PHONE0 + a, agent=str(1001 + a), login_at_ms=100 * a, answer_after_ms=1000)
              for a in range(AGENTS)]
    site = Site(state, site_text(), first_callers() + the_forty(), phones, keep_audio=False)
    engine = site.engine
    last: Any = None
    while engine.clock.now_ms < CHILD_LIMIT_MS:    # (the test kills it long before: else it fails, not hangs)
        engine.run_for(200)                  # returns with every record handed over durable
        live = {c["id"]: c["state"] for c in engine.snapshot()["calls"]}
        released = {r.call_id: dataclasses.asdict(r) for r in engine.released_log}
        agents = {n: a["state"] for n, a in engine.acd.agents_view().items()}
        now = (live, sorted(released), agents)
        if now != last:
            last = now
            print(json.dumps({"t": engine.clock.now_ms, "live": live, "released": released, "agents": agents}),
                  flush=True)


stored_cdrs = cdrs_by_id


def dial_code(site: Site, ports: list[int], code: str) -> None:
    """The agents at `ports` lift their phones, dial `code` after the dial tone, and hang up."""
    far = site.world.far
    assert far is not None
    now = site.engine.clock.now_ms
    for p in ports:
        far.hook(p, True, at_tick=now)
    site.run(600)
    for p in ports:
        site.world.dial(p, code)
    site.run(2400)
    now = site.engine.clock.now_ms
    for p in ports:
        far.hook(p, False, at_tick=now)
    site.run(500)


def kill_with_forty_up(state: Path) -> dict[str, Any]:
    """The child until the 40 calls are up (20 talking, 20 waiting), then kill -9; its last report."""
    proc = subprocess.Popen([sys.executable, __file__, str(state)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    report: dict[str, Any] = {}
    try:
        for line in proc.stdout:
            st = json.loads(line)
            states = sorted(st["live"].values())
            if states == ["connected"] * AGENTS + ["queued"] * (TRUNKS - AGENTS):
                report = st
                os.kill(proc.pid, signal.SIGKILL)      # a crash with 40 calls up
                break
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return report


def test_kill_9_with_40_calls_up_then_a_restart(tmp_path: Path, capsys: Any) -> None:
    before = kill_with_forty_up(tmp_path)
    assert before, "the child never had 40 calls up with every agent on a call"
    released = before["released"]
    assert sorted(c["disposition"] for c in released.values()) == ["abandoned", "answered", "answered",
                                                                   "ivr_hangup"]
    live = sorted(before["live"])
    assert list(before["agents"].values()) == ["on_call"] * AGENTS
    assert len(live) == TRUNKS and all(i.startswith("1-") for i in live)
    db = tmp_path / "cicbox.db"
    # The restart: the same state directory; the phones (no logins) answer after 1 s.
    callers = [Caller(trunk=i, at_ms=6000 + 200 * i, ani=f"1370000{i:04d}", cid="none", press_after_ms=300,
                      hold_ms=2000) for i in range(10)]
    phones = [PhoneScript(port=PHONE0 + a, agent=None, login_at_ms=None, answer_after_ms=1000)
              for a in range(AGENTS)]
    site = Site(tmp_path, site_text(), callers, phones, keep_audio=False)
    try:
        assert site.engine.boot == 2
        site.run(site.engine.period_ms)                        # one period
        with site.serving():
            assert cli.main(["agents", "--json", "--state-dir", str(tmp_path)]) == 0
            agents = json.loads(capsys.readouterr().out)["agents"]
            status = site.request("status")
        phone_state = {p["name"]: p["state"] for p in status["ports"]}
        for a in range(AGENTS):
            number = str(1001 + a)
            assert (agents[number]["state"], agents[number]["reason"]) == ("not_ready", "restart"), number
            assert phone_state[f"phone{a + 1}"] == "idle"
        assert status["calls"] == []
        # The log of the 40 lost calls, and the released ones, as stored now.
        stored = stored_cdrs(db)
        events = by_call(read_events(db))
        for call_id, cdr in released.items():
            assert stored[call_id] == cdr, call_id              # kept as it was
            assert fold_call(events[call_id]) == cdr, call_id    # and its events with it
            ends = [e for e in events[call_id] if e.kind == "call_end"]
            assert [e.detail["disposition"] for e in ends] == [cdr["disposition"]]
        for call_id in live:
            ends = [e for e in events[call_id] if e.kind == "call_end"]
            assert [e.detail["disposition"] for e in ends] == ["system_restart"], call_id
            assert stored[call_id]["disposition"] == "system_restart", call_id
            assert fold_call(events[call_id]) == stored[call_id], call_id
        assert sorted(stored) == sorted([*released, *live])
        lost = [stored[i] for i in live]
        assert sorted(c["agent"] for c in lost if c["answer_ms"] is not None) == \
            [str(1001 + a) for a in range(AGENTS)]                  # 20 were talking, one to each agent
        assert [c["queue"] for c in lost] == ["front_desk"] * TRUNKS and \
            sum(c["answer_ms"] is None and c["agent"] is None for c in lost) == TRUNKS - AGENTS   # 20 waited
        # Ten agents make themselves ready; ten new calls come and are answered by them.
        dial_code(site, [PHONE0 + a for a in range(10)], "*23#")
        with site.serving():
            assert cli.main(["agents", "--json", "--state-dir", str(tmp_path)]) == 0
            agents = json.loads(capsys.readouterr().out)["agents"]
        assert {n: (a["state"], a["reason"]) for n, a in agents.items()} == \
            {str(1001 + a): ("ready", None) if a < 10 else ("not_ready", "restart") for a in range(AGENTS)}
        site.run(20_000)
    finally:
        site.close()
    stored = stored_cdrs(db)
    new = {i: c for i, c in stored.items() if i.startswith("2-")}
    assert sorted(new) == [f"2-{n:06d}" for n in range(1, 11)]
    assert {c["disposition"] for c in new.values()} == {"answered"}
    assert sorted(c["agent"] for c in new.values()) == [str(1001 + a) for a in range(10)]


# -- healing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "why"), [("on_call", "on_call on hook with no call"),
                                            ("offered", "offered without ringing")])
def test_an_agent_set_against_its_phone_is_healed_within_a_second_and_takes_the_waiting_caller(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], state: str, why: str) -> None:
    caller = Caller(trunk=0, at_ms=9100, ani="13800000001", cid="none", press_after_ms=300, hold_ms=2000)
    phone = PhoneScript(port=1, agent="1001", login_at_ms=0, answer_after_ms=1000)
    site = Site(tmp_path, site_yaml(callerid="none", agents=1, trunks=1, answer_on_ring=1), [caller], [phone],
                keep_audio=False, enable_faults=True)
    try:
        site.run(9100)
        fault_at = site.engine.clock.now_ms
        assert site.request("fault.agent_state", agent="1001", state=state) == {"agent": "1001", "state": state}
        with site.serving():
            assert cli.main(["agents", "--json", "--state-dir", str(tmp_path)]) == 0
        assert json.loads(capsys.readouterr().out)["agents"]["1001"]["state"] == state
        site.run(1000)                             # a second of engine clock
        with site.serving():
            assert cli.main(["agents", "--json", "--state-dir", str(tmp_path)]) == 0
        healed = json.loads(capsys.readouterr().out)["agents"]["1001"]
        site.run(5000)
    finally:
        site.close()
    events = read_events(tmp_path / "cicbox.db")
    (heal,) = [e for e in events if e.kind == "agent_heal"]
    assert (heal.agent, heal.detail) == ("1001", {"was": state, "now": "ready", "why": why})
    assert fault_at < heal.tick_ms <= fault_at + 1000
    # The caller queued while the agent was wrongly busy, and was offered to it as it healed.
    (enter,) = [e for e in events if e.kind == "queue_enter"]
    (offer,) = [e for e in events if e.kind == "offer"]
    assert fault_at < enter.tick_ms < heal.tick_ms == offer.tick_ms and offer.agent == "1001"
    states = [(e.tick_ms, e.detail["state"]) for e in events if e.kind == "agent_state" and e.tick_ms >= fault_at]
    assert states[:3] == [(fault_at, state), (heal.tick_ms, "ready"), (heal.tick_ms, "offered")]
    assert healed["state"] in ("offered", "on_call")       # a second later: it has the caller
    assert caller.connected_ms is not None and caller.connected_ms > heal.tick_ms
    (cdr,) = stored_cdrs(tmp_path / "cicbox.db").values()
    assert (cdr["disposition"], cdr["agent"]) == ("answered", "1001")


# -- a queue removed while callers wait in it ------------------------------------------------------------


def two_queue_text(front_desk: bool) -> str:
    """Three trunks, agents 1001 (front_desk) and 1002 (concierge); key 1 leads to front_desk, or (without
    front_desk) to concierge."""
    text = site_yaml(agents=2, trunks=3)
    text = text.replace("agents: ['1001', '1002']", "agents: ['1001']")
    text = text.replace("queues:\n", "queues:\n  concierge: {agents: ['1002']}\n")
    if not front_desk:
        text = text.replace("{'1': {queue: front_desk}}", "{'1': {queue: concierge}}")
        text = text.replace("  front_desk:\n    agents: ['1001']\n    ring_timeout_ms: 15000\n", "")
        assert "front_desk" not in text
    return text


def test_a_queue_removed_by_an_apply_serves_its_callers_to_the_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """X0 talks to 1001 for 6 s; X1 and X2 wait in front_desk behind it. Version 2 (applied at 12 s) has no
    front_desk and sends key 1 to concierge: 1001 still answers X1 then X2; N, calling at 20 s (on X0's
    trunk), presses 1 and is answered by 1002 in concierge."""
    # Caller ID on (the trunks answer on ring 2, the phones after the caller ID they show, 3 s): the world
    # knows which caller each agent picked up.
    x0 = Caller(trunk=0, at_ms=3500, ani="13800000010", press_after_ms=300, hold_ms=6000)
    x1 = Caller(trunk=1, at_ms=4000, ani="13800000011", press_after_ms=300, hold_ms=2000)
    x2 = Caller(trunk=2, at_ms=4500, ani="13800000012", press_after_ms=300, hold_ms=2000)
    n = Caller(trunk=0, at_ms=20_000, ani="13800000013", press_after_ms=300, hold_ms=2000)
    phones = [PhoneScript(port=3, agent="1001", login_at_ms=0, answer_after_ms=3000),
              PhoneScript(port=4, agent="1002", login_at_ms=0, answer_after_ms=3000)]
    v2 = tmp_path / "v2.yaml"
    v2.write_text(two_queue_text(front_desk=False))
    site = Site(tmp_path, two_queue_text(front_desk=True), [x0, x1, x2, n], phones, keep_audio=False)
    try:
        site.run(12_000)
        with site.serving():
            assert cli.main(["queues", "--json", "--state-dir", str(tmp_path)]) == 0
            before = json.loads(capsys.readouterr().out)["queues"]
            assert cli.main(["config", "apply", str(v2), "--base", "1", "--state-dir", str(tmp_path)]) == 0
            assert "applied as version 2" in capsys.readouterr().out
            assert cli.main(["queues", "--json", "--state-dir", str(tmp_path)]) == 0
            applied = json.loads(capsys.readouterr().out)["queues"]
        assert site.engine.config_version == 2 and "front_desk" not in site.engine.config.queues
        assert before["front_desk"]["waiting"] == 2 and before["front_desk"]["retired"] is False
        assert (applied["front_desk"]["waiting"], applied["front_desk"]["retired"]) == (2, True)
        site.run(30_000)
        with site.serving():
            assert cli.main(["queues", "--json", "--state-dir", str(tmp_path)]) == 0
            after = json.loads(capsys.readouterr().out)["queues"]
    finally:
        site.close()
    cdrs = stored_cdrs(tmp_path / "cicbox.db")         # by call id: in the order the calls came
    assert [(c["trunk"], c["disposition"], c["queue"], c["agent"], c["config_version"])
            for _, c in sorted(cdrs.items())] == [("trunk1", "answered", "front_desk", "1001", 1),
                                                   ("trunk2", "answered", "front_desk", "1001", 1),
                                                   ("trunk3", "answered", "front_desk", "1001", 1),
                                                   ("trunk1", "answered", "concierge", "1002", 2)]
    assert [c["ani"] for _, c in sorted(cdrs.items())] == [x0.ani, x1.ani, x2.ani, n.ani]
    assert x0.hung_up_ms is not None and x1.connected_ms is not None and x2.connected_ms is not None
    assert x0.hung_up_ms < x1.connected_ms < x2.connected_ms          # in their order, after X0
    # Gone once its last caller left (today's figures stay).
    assert "retired" not in after["front_desk"] and after["front_desk"]["waiting"] == 0
    assert (after["front_desk"]["answered"], after["concierge"]["answered"]) == (3, 1)


if __name__ == "__main__":
    child(Path(sys.argv[1]))
