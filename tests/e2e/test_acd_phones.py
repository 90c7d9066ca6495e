"""The agents' phones in the ACD, end to end on the sim card in virtual time: ring-all and who wins,
feature codes (login with a PIN and the lock-out, not ready with reasons, bad input), wrap-up, a
ring timeout. What a phone hears is read off its line (the cn tones' cadences, line-signals.md); the
DTMF a phone sends is spandsp's; states and events are the engine's and its stored log's."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.world import Caller, PhoneScript
from e1t1.analog.fxs import PhoneState
from tests import signals
from tests.e2e.acd_site import DIAL_HZ, PERIOD, acd_yaml, dial_code, events, line_at, tone_kind
from tests.e2e.harness import Site, cdrs

LATE_MS = 3 * PERIOD       # what follows a line change or a timer happens within this
HANG_UP_MS = 1250          # the sim card reports on hook this long after it (shorter: a hook flash)
P1, P2 = 1, 2              # acd_yaml with one trunk: the phones of agents 1001 and 1002
TWO = ["{number: '1001', name: Agent 1}", "{number: '1002', name: Agent 2}"]
REASONS = "{not_ready_reasons: {'1': break, '2': lunch}}"


def states(site: Site) -> dict[str, tuple[str, str | None]]:
    return {n: (a.state.value, a.reason) for n, a in site.engine.acd.agents.agents.items()}


def ring_ons(phone: PhoneScript) -> list[int]:
    return [t for t, typ in phone.rings if typ == 4]     # RING_ON


# -- ring-all ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("after1", "after2", "winner"), [
    (2000, 2000, "1001"),      # both off hook in the same tick: the lower port wins
    (2000, 2300, "1001"),      # the lower port first
    (2300, 2000, "1002"),      # the higher port first
])
def test_ring_all_the_first_off_hook_wins_the_loser_hears_dial_tone(tmp_path: Path, after1: int, after2: int,
                                                                    winner: str) -> None:
    text = acd_yaml(queue="{strategy: ring_all, agents: ['1001', '1002']}", agents=TWO, trunks=1)
    caller = Caller(trunk=0, at_ms=5000, ani=None, digits="", hold_ms=4000)
    phones = [PhoneScript(port=P1, agent="1001", login_at_ms=0, answer_after_ms=after1),
              PhoneScript(port=P2, agent="1002", login_at_ms=0, answer_after_ms=after2)]
    site = Site(tmp_path, text, [caller], phones)
    try:
        site.run(5500)
        # both phones ring, from the same tick, at once
        (entry,) = [e.tick_ms for e in events(site, "queue_enter")]
        ring = ring_ons(phones[0])[0]
        assert ring_ons(phones[1])[0] == ring and 0 <= ring - entry <= LATE_MS
        loser_port, loser = (P2, "1002") if winner == "1001" else (P1, "1001")
        off = {P1: ring + after1, P2: ring + after2}
        site.run(off[loser_port] + 1400 - site.engine.clock.now_ms)     # (it hangs up at 2 s: nobody there)
        # the loser is off hook with dial tone (its phone's machine, and what its line carries)
        assert site.engine.phones[loser_port].state is PhoneState.DIALTONE
        lp = phones[loser_port - P1]
        tone = line_at(lp, off[loser_port] + LATE_MS, 700)
        assert abs(signals.frequency(tone) - DIAL_HZ) <= 2 and signals.level_dbm0(tone) > -20
        assert tone_kind(line_at(lp, off[loser_port] + LATE_MS, 1200)) == "dial"
        site.run(10000)
    finally:
        site.close()
    # one call, answered by the winner when its phone went off hook
    (cdr,) = cdrs(tmp_path)
    win_port = P1 if winner == "1001" else P2
    assert (cdr["disposition"], cdr["agent"], cdr["answer_ms"]) == ("answered", winner, off[win_port])
    assert caller.connected_ms == off[win_port]
    # the loser: its offer ended answered_elsewhere; ready again, never missed nor not ready
    ends = events(site, "offer_end")
    assert [(e.agent, e.detail["why"]) for e in ends] == [(loser, "answered_elsewhere")]
    assert ends[0].tick_ms == off[win_port]
    assert [e.agent for e in events(site, "answer")] == [winner]
    loser_states = [e.detail["state"] for e in events(site, "agent_state", agent=loser)]
    assert loser_states == ["ready", "offered", "ready"]
    assert states(site)[loser] == ("ready", None)


def test_a_ring_all_loser_who_picks_up_hangs_up_and_takes_the_next_caller(tmp_path: Path) -> None:
    """The person at the losing phone picks up after the other took the call (caller ID showed who),
    hears dial tone, hangs up: the phone is free again and rings for the next caller."""
    text = acd_yaml(queue="{strategy: ring_all, agents: ['1001', '1002']}", agents=TWO, trunks=2,
                    answer_on_ring=2)
    first = Caller(trunk=0, at_ms=5000, ani="13800000001", digits="", hold_ms=60_000)
    second = Caller(trunk=1, at_ms=40_000, ani="13800000002", digits="", hold_ms=5000)
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=3000),
              PhoneScript(port=3, agent="1002", login_at_ms=0, answer_after_ms=3500)]
    site = Site(tmp_path, text, [first, second], phones)
    try:
        site.run(90_000)
    finally:
        site.close()
    by_ani = {c["ani"]: c for c in cdrs(tmp_path)}
    assert by_ani["13800000001"]["agent"] == "1001"
    assert by_ani["13800000002"]["agent"] == "1002"        # the loser's phone was free again
    assert second.connected_ms is not None


# -- login with a PIN, the lock-out ----------------------------------------------------------------------


def test_login_with_a_pin_wrong_pins_and_the_lock_out(tmp_path: Path) -> None:
    agents = ["{number: '1001', name: Agent 1, pin: '4321'}", "{number: '1002', name: Agent 2}"]
    text = acd_yaml(queue="{agents: ['1001', '1002']}", agents=agents, trunks=1)
    site = Site(tmp_path, text, [], [PhoneScript(port=P1, login_at_ms=None), PhoneScript(port=P2, login_at_ms=None)])
    eng = site.engine
    try:
        site.run(500)
        # the right PIN: confirm tone, ready
        assert dial_code(site, P1, "*211001*4321#") == ("confirm", "ANNOUNCE")
        assert states(site)["1001"] == ("ready", None)
        assert dial_code(site, P1, "*22") == ("confirm", "ANNOUNCE")
        assert states(site)["1001"] == ("logged_out", None)
        # a wrong PIN, and none at all: congestion, still logged out
        assert dial_code(site, P1, "*211001*1111#") == ("congestion", "ANNOUNCE")
        assert states(site)["1001"] == ("logged_out", None)
        first_wrong = events(site, "login_failed")[0].tick_ms
        assert dial_code(site, P1, "*211001#") == ("congestion", "ANNOUNCE")
        assert states(site)["1001"] == ("logged_out", None)
        # the third wrong PIN within 5 minutes locks the agent for 5 minutes
        assert dial_code(site, P1, "*211001*9999#") == ("congestion", "ANNOUNCE")
        fails = events(site, "login_failed", agent="1001")
        assert [e.detail["why"] for e in fails] == ["wrong_pin"] * 3
        assert fails[-1].tick_ms - first_wrong < 5 * 60_000
        (locked,) = events(site, "agent_locked")
        assert (locked.agent, locked.tick_ms, locked.detail) == ("1001", fails[-1].tick_ms,
                                                                 {"until_ms": fails[-1].tick_ms + 300_000})
        # even the right PIN is refused while locked (10 s before the end of the lock)
        site.run(fails[-1].tick_ms + 300_000 - 10_000 - eng.clock.now_ms)
        assert dial_code(site, P1, "*211001*4321#") == ("congestion", "ANNOUNCE")
        assert states(site)["1001"] == ("logged_out", None)
        assert events(site, "login_failed", agent="1001")[-1].detail == {"phone": "phone1", "why": "locked"}
        # then it works
        site.run(fails[-1].tick_ms + 300_000 - eng.clock.now_ms)
        assert dial_code(site, P1, "*211001*4321#") == ("confirm", "ANNOUNCE")
        assert states(site)["1001"] == ("ready", None)
        # an agent without a PIN logs in with *21<agent>#
        assert dial_code(site, P2, "*211002#") == ("confirm", "ANNOUNCE")
        assert states(site)["1002"] == ("ready", None)
    finally:
        site.close()
    logins = [(e.agent, e.detail["state"], e.detail["why"]) for e in events(site, "agent_state")]
    assert logins == [("1001", "ready", "login"), ("1001", "logged_out", "logout"), ("1001", "ready", "login"),
                      ("1002", "ready", "login")]


def test_two_wrong_pins_then_five_minutes_do_not_lock(tmp_path: Path) -> None:
    """The lock counts wrong PINs within 5 minutes: two, then a third 5 minutes after the first, lock nothing."""
    agents = ["{number: '1001', name: Agent 1, pin: '4321'}"]
    text = acd_yaml(queue="{agents: ['1001']}", agents=agents, trunks=1)
    site = Site(tmp_path, text, [], [PhoneScript(port=P1, login_at_ms=None)], keep_audio=True)
    try:
        site.run(500)
        assert dial_code(site, P1, "*211001*1111#")[0] == "congestion"
        first = events(site, "login_failed")[0].tick_ms
        assert dial_code(site, P1, "*211001*2222#")[0] == "congestion"
        site.run(first + 300_000 - site.engine.clock.now_ms)
        assert dial_code(site, P1, "*211001*3333#")[0] == "congestion"
        assert events(site, "agent_locked") == []
        assert dial_code(site, P1, "*211001*4321#") == ("confirm", "ANNOUNCE")
    finally:
        site.close()
    assert states(site)["1001"] == ("ready", None)


# -- bad input, not ready ------------------------------------------------------------------------------


def test_bad_codes_change_nothing_not_ready_takes_a_reason(tmp_path: Path) -> None:
    text = acd_yaml(queue="{agents: ['1001']}", agents=TWO[:1], trunks=1, acd=REASONS)
    site = Site(tmp_path, text, [], [PhoneScript(port=P1, login_at_ms=None)])
    try:
        site.run(500)
        assert dial_code(site, P1, "*23") == ("congestion", "ANNOUNCE")         # *23 logged out
        assert dial_code(site, P1, "*24#") == ("congestion", "ANNOUNCE")        # *24 logged out
        assert dial_code(site, P1, "*219999#") == ("congestion", "ANNOUNCE")    # an unknown agent
        assert states(site) == {"1001": ("logged_out", None)}
        assert events(site, "agent_state") == []
        assert dial_code(site, P1, "*211001#") == ("confirm", "ANNOUNCE")
        assert dial_code(site, P1, "*249#") == ("congestion", "ANNOUNCE")       # reason 9: none such
        assert states(site) == {"1001": ("ready", None)}
        assert dial_code(site, P1, "*24#") == ("confirm", "ANNOUNCE")
        assert states(site) == {"1001": ("not_ready", "other")}
        assert dial_code(site, P1, "*241#") == ("confirm", "ANNOUNCE")
        assert states(site) == {"1001": ("not_ready", "break")}
        assert dial_code(site, P1, "*242#") == ("confirm", "ANNOUNCE")
        assert states(site) == {"1001": ("not_ready", "lunch")}
        assert dial_code(site, P1, "*23") == ("confirm", "ANNOUNCE")
        assert states(site) == {"1001": ("ready", None)}
    finally:
        site.close()
    said = [(e.detail["state"], e.detail["reason"]) for e in events(site, "agent_state")]
    assert said == [("ready", None), ("not_ready", "other"), ("not_ready", "break"), ("not_ready", "lunch"),
                    ("ready", None)]


@pytest.mark.parametrize("wrap_ms", [0, 6000])
def test_not_ready_dialled_during_a_call_applies_after_it(tmp_path: Path, wrap_ms: int) -> None:
    """*241# dialled while talking goes as DTMF in the call; the engine takes it: after the call (and its
    wrap-up) the agent is not ready (break), and the caller waiting next is not offered."""
    text = acd_yaml(queue=f"{{agents: ['1001'], wrap_up_ms: {wrap_ms}}}", agents=TWO[:1], trunks=2, acd=REASONS)
    callers = [Caller(trunk=0, at_ms=5000, ani=None, digits="", hold_ms=8000),
               Caller(trunk=1, at_ms=7000, ani=None, digits="", patience_ms=40000)]
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=1000)
    site = Site(tmp_path, text, callers, [phone])
    try:
        site.run(5000)
        site.run(callers[0].at_ms + 3000 - site.engine.clock.now_ms)
        assert callers[0].connected_ms is not None
        site.world.dial(2, "*241#")              # during the call
        site.run(2000)
        assert states(site) == {"1001": ("on_call", None)}      # the call goes on
        site.run(30000)
    finally:
        site.close()
    (first, *_) = sorted(cdrs(tmp_path), key=lambda r: int(str(r["start_ms"])))
    assert (first["disposition"], first["agent"]) == ("answered", "1001")
    assert first["talk_ms"] == 8000
    said = [(e.tick_ms, e.detail["state"], e.detail["reason"]) for e in events(site, "agent_state")]
    end = int(first["end_ms"])
    after = [("wrap_up", None)] if wrap_ms else []
    assert [(s, r) for _, s, r in said] == [("ready", None), ("offered", None), ("on_call", None), *after,
                                            ("not_ready", "break")]
    assert said[-1][0] == end + wrap_ms
    assert states(site) == {"1001": ("not_ready", "break")}
    assert len(ring_ons(phone)) >= 1 and all(t < end for t in ring_ons(phone))   # no second call offered
    assert callers[1].connected_ms is None


# -- wrap-up ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("early", [False, True])
def test_no_call_during_wrap_up_then_one_right_after(tmp_path: Path, early: bool) -> None:
    """wrap_up_ms 8 s: the second caller (waiting since 6 s) rings the agent's phone only when the wrap-up
    is over; or, with *23 dialled 3 s into it, as soon as the phone is back on hook (the card tells a
    hang-up from a flash HANG_UP_MS after it)."""
    text = acd_yaml(queue="{agents: ['1001'], wrap_up_ms: 8000}", agents=TWO[:1], trunks=2)
    callers = [Caller(trunk=0, at_ms=5000, ani=None, digits="", hold_ms=3000),
               Caller(trunk=1, at_ms=6000, ani=None, digits="", patience_ms=60000, hold_ms=2000)]
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=1000)
    site = Site(tmp_path, text, callers, [phone])
    try:
        site.run(5000)
        while callers[0].hung_up_ms is None:
            site.run(100)
        end = callers[0].hung_up_ms
        site.run(end + 3000 - site.engine.clock.now_ms)
        assert states(site) == {"1001": ("wrap_up", None)}
        assert ring_ons(phone)[-1] < end                        # nothing rang since the call
        on_hook = None
        if early:
            assert dial_code(site, 2, "*23") == ("confirm", "ANNOUNCE")
            on_hook = site.engine.clock.now_ms - 200             # dial_code's last line change
        site.run(20000)
    finally:
        site.close()
    rows = sorted(cdrs(tmp_path), key=lambda r: int(str(r["start_ms"])))
    assert [(r["disposition"], r["agent"]) for r in rows] == [("answered", "1001"), ("answered", "1001")]
    assert rows[0]["end_ms"] == end
    second_ring = next(t for t in ring_ons(phone) if t > end)
    if early:
        # the phone is known to be on hook once the card's flash window has passed: it rings then
        assert on_hook is not None and -PERIOD <= second_ring - (on_hook + HANG_UP_MS) <= LATE_MS
        wrap = [e for e in events(site, "agent_state") if e.detail["state"] == "ready" and e.tick_ms > end]
        assert wrap[0].detail["why"] == "wrap-up ended (*23)"
        assert wrap[0].tick_ms < end + 8000
    else:
        assert 0 <= second_ring - (end + 8000) <= LATE_MS
    assert rows[1]["answer_ms"] == second_ring + 1000


# -- ring timeout ------------------------------------------------------------------------------------------


def test_a_ring_timeout_moves_the_call_to_the_next_agent_at_once(tmp_path: Path) -> None:
    """ring_timeout_ms 7 s; 1001 (idle longest: both log in at once, the lower number) never answers: its
    phone rings 7 s, then 1002's at once; 1001 is not ready (missed)."""
    text = acd_yaml(queue="{agents: ['1001', '1002'], ring_timeout_ms: 7000}", agents=TWO, trunks=1)
    caller = Caller(trunk=0, at_ms=5000, ani=None, digits="", hold_ms=3000)
    phones = [PhoneScript(port=P1, agent="1001", login_at_ms=0, answers=False),
              PhoneScript(port=P2, agent="1002", login_at_ms=0, answer_after_ms=1500)]
    site = Site(tmp_path, text, [caller], phones)
    try:
        site.run(25000)
    finally:
        site.close()
    (offer1, offer2) = events(site, "offer")
    assert (offer1.agent, offer2.agent) == ("1001", "1002")
    (end,) = events(site, "offer_end")
    assert (end.agent, end.detail["why"], end.tick_ms - offer1.tick_ms) == ("1001", "no_answer", 7000)
    assert offer2.tick_ms == end.tick_ms                      # the next agent at once
    r1, r2 = ring_ons(phones[0]), ring_ons(phones[1])
    # 1001's phone rang from the offer: cn cadence 1000 on, 4000 off: rings at 0 and 5 s, none after 7 s
    assert [t - r1[0] for t in r1] == [0, 5000] and 0 <= r1[0] - offer1.tick_ms <= LATE_MS
    assert all(t <= r1[0] + 7000 + LATE_MS for t, _ in phones[0].rings)
    assert 0 <= r2[0] - end.tick_ms <= LATE_MS
    assert states(site) == {"1001": ("not_ready", "missed"), "1002": ("ready", None)}
    missed = [e for e in events(site, "agent_state", agent="1001") if e.detail["state"] == "not_ready"]
    assert [(e.tick_ms, e.detail["reason"]) for e in missed] == [(end.tick_ms, "missed")]
    (cdr,) = cdrs(tmp_path)
    assert (cdr["disposition"], cdr["agent"], cdr["answer_ms"]) == ("answered", "1002", r2[0] + 1500)


def test_a_caller_who_times_out_of_one_of_its_queues_is_recorded_in_the_other(tmp_path: Path) -> None:
    """Waiting in front_desk and support; front_desk's 10 s run out (the caller waits on in support),
    then the caller hangs up: the CDR and the log's end name support."""
    text = acd_yaml(queue="{agents: ['1001'], max_wait_ms: 10000, on_timeout: {queue: support}}",
                    trunks=1, routes="  - {trunk: trunk1, queues: [front_desk, support]}",
                    extra_queues="  support: {agents: ['1001']}")
    caller = Caller(trunk=0, at_ms=2000, ani=None, digits="", patience_ms=25_000)
    site = Site(tmp_path, text, [caller], [PhoneScript(port=P1, agent="1001", login_at_ms=None)])
    try:
        site.run(40_000)
    finally:
        site.close()
    (cdr,) = cdrs(tmp_path)
    assert (cdr["disposition"], cdr["queue"]) == ("abandoned", "support")
    leaves = [(e.queue, e.detail["outcome"]) for e in events(site, "queue_leave")]
    assert leaves == [("front_desk", "timeout"), ("support", "abandoned")]
