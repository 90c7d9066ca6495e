"""What a caller in the ACD hears, end to end on the sim card in virtual time: announcements of
position and expected wait, the queue's hold, each overflow target, the exit key, a route straight
to a queue. Heard = the card's octets to the caller, against the shipped prompt WAVs
(configs/prompts/en/): >= 0.9 for the prompt expected there, <= 0.3 for another one."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.world import Caller, PhoneScript
from tests import signals
from tests.e2e.acd_site import (
    DIAL_HZ,
    FIRST_PHONE,
    RINGBACK_OFF_MS,
    RINGBACK_ON_MS,
    acd_yaml,
    envelope_ms,
    events,
    heard_at,
    ms_of,
    prompt_heard,
)
from tests.e2e.harness import Site, cdrs

PERIOD_MS = 12           # k 4: the control period, 4 x ceil(10 / 4) ms
LATE_MS = 3 * PERIOD_MS  # a prompt's end is seen, and what follows started, within this
TWO_AGENTS = ["{number: '1001', name: Agent 1}", "{number: '1002', name: Agent 2}"]


def not_ready_at(site: Site, ports: list[int]) -> None:
    """The agents at these phones (logged in at 0 by their scripts) dial *24# at 4 s: not ready (other),
    still logged in (the expected wait's divisor)."""
    far = site.world.far
    assert far is not None
    site.run(4000 - site.engine.clock.now_ms)
    for port in ports:
        far.hook(port, True, at_tick=site.engine.clock.now_ms)
    site.run(600)
    for port in ports:
        site.world.dial(port, "*24#")
    site.run(1500)
    for port in ports:
        far.hook(port, False, at_tick=site.engine.clock.now_ms)
    site.run(100)
    for port in ports:
        agent = site.engine.acd.agent_at(site.engine.phones[port].phone_name)
        assert agent is not None and (agent.state.value, agent.reason) == ("not_ready", "other")


def assert_ringback_from(caller: Caller, tick: int, ms: int = RINGBACK_ON_MS + RINGBACK_OFF_MS - 100) -> None:
    """The cn ringback (450 Hz, 1000 on, 4000 off) starts at `tick` (within LATE_MS): one whole burst,
    then silence (`ms` from `tick` are looked at)."""
    x = heard_at(caller, tick, ms)
    bursts = [b for b in envelope_ms(x) if b[1] - b[0] >= 50]      # (not the last ms of a prompt before)
    assert bursts, "silence where ringback should be"
    start, end = bursts[0]
    assert start <= LATE_MS and abs((end - start) - RINGBACK_ON_MS) <= 2, bursts
    assert len(bursts) == 1, bursts                              # then 4 s of silence
    assert abs(signals.frequency(x[(start + 100) * 8:(start + 900) * 8]) - DIAL_HZ) <= 2


def test_position_and_wait_announcements_then_ringback(tmp_path: Path) -> None:
    """Two agents logged in but not ready, three callers waiting. Each hears, 4 s after entering,
    "you are caller number P, your expected wait is about M minute(s)", then ringback again; 15 s
    later the announcement again.

    By hand: EWT = ceil(position x expected_aht_ms / logged-in members / 60 s), expected_aht_ms 90 s,
    2 logged in: caller 1: ceil(0.75) = 1 ("minute"), caller 2: ceil(1.5) = 2, caller 3: ceil(2.25) = 3.
    """
    text = acd_yaml(queue="{agents: ['1001', '1002'], expected_aht_ms: 90000, "
                          "announce: {first_after_ms: 4000, every_ms: 15000}}", agents=TWO_AGENTS)
    callers = [Caller(trunk=i, at_ms=8000 + 500 * i, ani=None, digits="", patience_ms=30000) for i in range(3)]
    phones = [PhoneScript(port=FIRST_PHONE, agent="1001", login_at_ms=0),
              PhoneScript(port=FIRST_PHONE + 1, agent="1002", login_at_ms=0)]
    site = Site(tmp_path, text, callers, phones)
    try:
        not_ready_at(site, [FIRST_PHONE, FIRST_PHONE + 1])
        site.run(32000)
    finally:
        site.close()
    entered = [e.tick_ms for e in events(site, "queue_enter", queue="front_desk")]
    assert len(entered) == 3
    said = [(1, 1, "minute"), (2, 2, "minutes"), (3, 3, "minutes")]
    for caller, entry, (position, minutes, unit) in zip(callers, entered, said, strict=True):
        assert_ringback_from(caller, entry, 4000)                 # waiting: ringback from the entry
        at = entry + 4000
        words = ["position_intro", f"n{position}", "wait_intro", f"n{minutes}", unit]
        for word in words:
            assert prompt_heard(caller, word, at) >= 0.9, (position, word)
            if word.startswith("n"):
                for other in {"n1", "n2", "n3", "n4", "n5"} - {word}:
                    assert prompt_heard(caller, other, at) <= 0.3, (position, word, other)
            at += ms_of(word)
        # the announcement over ("minute" or "minutes": the one said ends here): ringback again
        assert_ringback_from(caller, at)
        assert prompt_heard(caller, "position_intro", entry + 4000 + 15000) >= 0.9    # every_ms later
        assert prompt_heard(caller, f"n{position}", entry + 4000 + 15000 + ms_of("position_intro")) >= 0.9


def hangup_case(case: str) -> tuple[str, list[Caller], int]:
    """(site, callers, index of the caller sent away) of one overflow to a hang-up prompt."""
    if case == "timeout":
        # Nobody logged in (the queue waits: no on_no_agents): after max_wait_ms the caller hears busy.
        text = acd_yaml(queue="{agents: ['1001'], max_wait_ms: 6000, on_timeout: {hangup: busy}}")
        return text, [Caller(trunk=0, at_ms=1000, ani=None, digits="", patience_ms=60000)], 0
    if case == "full":
        # One caller waiting fills the queue (max_callers 1): the next one hears busy at once.
        text = acd_yaml(queue="{agents: ['1001'], max_callers: 1, on_full: {hangup: busy}}")
        return text, [Caller(trunk=0, at_ms=1000, ani=None, digits="", patience_ms=15000),
                      Caller(trunk=1, at_ms=3000, ani=None, digits="", patience_ms=20000)], 1
    # A blacklisted number (its caller ID: the trunks answer on ring 2) hears blocked at once.
    text = acd_yaml(queue="{agents: ['1001']}", answer_on_ring=2,
                    acd="{blacklist: {numbers: ['13000000000'], then: {hangup: blocked}}}")
    return text, [Caller(trunk=0, at_ms=1000, ani="13000000000", digits="", patience_ms=60000)], 0


@pytest.mark.parametrize(("case", "prompt", "other", "disposition", "outcome"), [
    ("timeout", "busy", "blocked", "no_agent", "timeout"),
    ("full", "busy", "blocked", "busy", "full"),
    ("blacklist", "blocked", "busy", "blocked", "blacklist"),
])
def test_overflow_to_a_prompt_then_the_trunk_is_released(tmp_path: Path, case: str, prompt: str, other: str,
                                                         disposition: str, outcome: str) -> None:
    text, callers, gone = hangup_case(case)
    site = Site(tmp_path, text, callers, [PhoneScript(port=FIRST_PHONE, login_at_ms=None)])
    try:
        site.run(22000)
    finally:
        site.close()
    caller = callers[gone]
    assert caller.answered_ms is not None
    (leave,) = [e for e in events(site, "queue_leave") if e.detail["outcome"] != "abandoned"]
    assert leave.queue == "front_desk"
    assert leave.detail == {"outcome": outcome, "to": f"hangup:{prompt}"}
    (entry,) = [e.tick_ms for e in events(site, "queue_enter", call_id=leave.call_id)]
    # When it goes: after max_wait_ms in the queue, or at once.
    assert leave.tick_ms == entry + (6000 if case == "timeout" else 0)
    assert prompt_heard(caller, prompt, leave.tick_ms) >= 0.9
    assert prompt_heard(caller, other, leave.tick_ms) <= 0.3
    # Then the trunk goes on hook (the exchange sees our release): the prompt's length later.
    assert site.world.counts["released"] == 1
    assert caller.hung_up_ms is not None
    assert 0 <= caller.hung_up_ms - (leave.tick_ms + ms_of(prompt)) <= LATE_MS
    cdr = next(r for r in cdrs(tmp_path) if r["call_id"] == leave.call_id)
    assert (cdr["disposition"], cdr["queue"], cdr["agent"], cdr["answer_ms"]) == \
        (disposition, "front_desk", None, None)
    assert 0 <= caller.hung_up_ms - cdr["end_ms"] <= PERIOD_MS     # released, then on hook at the next block
    if case == "full":
        # the first caller waited on (ringback) until it gave up
        first = callers[0]
        assert first.hung_up_ms is not None and first.answered_ms is not None
        assert first.hung_up_ms == first.answered_ms + first.press_after_ms + first.patience_ms
        assert [r["disposition"] for r in cdrs(tmp_path) if r["call_id"] != leave.call_id] == ["abandoned"]


@pytest.mark.parametrize("how", ["timeout", "exit_key"])
def test_overflow_and_exit_key_to_an_ivr_play_its_greeting(tmp_path: Path, how: str) -> None:
    """The caller leaves the queue for IVR evening (on timeout after 6 s, or pressing 0 at 3 s): it hears
    that IVR's greeting (welcome_evening), not main's (welcome)."""
    rule = "max_wait_ms: 6000, on_timeout: {ivr: evening}" if how == "timeout" else \
        "exit_key: {key: '0', to: {ivr: evening}}"
    text = acd_yaml(queue=f"{{agents: ['1001'], {rule}}}")
    caller = Caller(trunk=0, at_ms=1000, ani=None, digits="0" if how == "exit_key" else "", press_after_ms=3000,
                    patience_ms=20000)
    site = Site(tmp_path, text, [caller], [PhoneScript(port=FIRST_PHONE, login_at_ms=None)])
    try:
        site.run(18000)
    finally:
        site.close()
    assert caller.answered_ms is not None
    (entry,) = [e.tick_ms for e in events(site, "queue_enter")]
    (leave,) = events(site, "queue_leave")
    assert leave.detail == {"outcome": how, "to": "ivr:evening"}
    if how == "timeout":
        assert leave.tick_ms == entry + 6000
    else:
        # the key is down within two detector blocks (60 ms) of the press
        assert 0 <= leave.tick_ms - (caller.answered_ms + 3000) <= 60 + PERIOD_MS
    assert_ringback_from(caller, entry, min(leave.tick_ms - entry, 4900))
    assert prompt_heard(caller, "welcome_evening", leave.tick_ms) >= 0.9
    assert prompt_heard(caller, "welcome", leave.tick_ms) <= 0.3


def test_a_route_straight_to_a_queue_no_greeting_ringback_then_an_agent(tmp_path: Path) -> None:
    """routes: trunk1 -> queue front_desk. The caller hears no greeting, ringback from the answer, and
    talks to agent 1001 once the phone (ready since login) answers after 2.5 s of ringing."""
    text = acd_yaml(queue="{agents: ['1001']}", trunks=1)
    caller = Caller(trunk=0, at_ms=5000, ani=None, digits="", hold_ms=3000)
    phone = PhoneScript(port=1, agent="1001", login_at_ms=0, answer_after_ms=2500)
    site = Site(tmp_path, text, [caller], [phone])
    try:
        site.run(16000)
    finally:
        site.close()
    assert caller.answered_ms is not None and caller.connected_ms is not None
    (entry,) = [e.tick_ms for e in events(site, "queue_enter")]
    (start,) = [e.tick_ms for e in events(site, "call_start")]
    assert entry == start                                      # in the queue at once: no IVR
    assert 0 <= caller.answered_ms - start <= PERIOD_MS        # (the exchange sees the answer at the next block)
    assert prompt_heard(caller, "welcome", caller.answered_ms) <= 0.3
    assert prompt_heard(caller, "welcome_evening", caller.answered_ms) <= 0.3
    # ringback until the agent answers
    x = heard_at(caller, entry, caller.connected_ms - entry)
    assert envelope_ms(x)[0][0] <= LATE_MS
    assert abs(signals.frequency(x[100 * 8:900 * 8]) - DIAL_HZ) <= 2
    assert phone.rings and phone.rings[0][0] - entry <= LATE_MS        # the ready agent's phone rang at once
    assert caller.connected_ms == phone.answered[0] == phone.rings[0][0] + 2500
    # then the agent: its 587 Hz
    talk = heard_at(caller, caller.connected_ms + 300, 2000)
    assert abs(signals.frequency(talk) - 587) <= 2
    (cdr,) = cdrs(tmp_path)
    assert (cdr["disposition"], cdr["queue"], cdr["agent"], cdr["trunk"]) == ("answered", "front_desk", "1001",
                                                                             "trunk1")
    assert (cdr["queue_entry_ms"], cdr["answer_ms"], cdr["wait_ms"]) == (entry, caller.connected_ms,
                                                                      caller.connected_ms - entry)


def test_a_hold_prompt_goes_round_and_comes_back_after_an_announcement(tmp_path: Path) -> None:
    """hold: hold_please: the waiting caller hears it from the entry, again and again (no ringback);
    after the announcement at 8 s ("caller number 1, about 1 minute": ceil(1 x 60 s / 1 / 60 s) = 1),
    the hold prompt again from its start."""
    text = acd_yaml(queue="{agents: ['1001'], hold: hold_please, expected_aht_ms: 60000, "
                          "announce: {first_after_ms: 8000, every_ms: 60000}}", trunks=1)
    caller = Caller(trunk=0, at_ms=8000, ani=None, digits="", patience_ms=22000)
    phone = PhoneScript(port=1, agent="1001", login_at_ms=0)
    site = Site(tmp_path, text, [caller], [phone])
    try:
        not_ready_at(site, [1])
        site.run(20000)
    finally:
        site.close()
    (entry,) = [e.tick_ms for e in events(site, "queue_enter")]
    loop = ms_of("hold_please")
    for k in range(2):                                      # the prompt goes round: 2.8 s, then again
        assert prompt_heard(caller, "hold_please", entry + k * loop) >= 0.9, k
        assert prompt_heard(caller, "welcome", entry + k * loop) <= 0.3
    at = entry + 8000
    for word in ["position_intro", "n1", "wait_intro", "n1", "minute"]:
        assert prompt_heard(caller, word, at) >= 0.9, word
        at += ms_of(word)
    assert prompt_heard(caller, "hold_please", at, lead_ms=LATE_MS) >= 0.9     # back to the hold prompt
    assert prompt_heard(caller, "hold_please", at + loop, lead_ms=LATE_MS) >= 0.9
