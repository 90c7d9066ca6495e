"""The ACD around its router: offers, refusals, ring timeouts, wrap-up, ring-all, several queues,
priorities, VIP, blacklist, sticky agents, overflow, exit keys, skills and widening, healing,
PINs and lock-out, a queue removed while callers wait. The host plays the phones; every expected
outcome below is worked out by hand from the issue's definitions."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from appliance.acd import Acd, AgentState, LoginResult, Target
from appliance.config.loader import parse_config
from e1t1.clock import Clock

AGENTS = ("1001", "1002", "1003", "1004")


def site(queues: str, acd: str = "", agents: str = "") -> Any:
    """A site with four agents at phones p1..p4 and the queues given (YAML, indented 2)."""
    agent_lines = agents or "\n".join(f"  - {{number: '{n}', name: A{n}, phone: p{i + 1}}}"
                                      for i, n in enumerate(AGENTS))
    phones = "\n".join(f"  - {{kind: fxs, name: p{i + 1}, extension: '80{i + 1:02d}'}}" for i in range(5))
    text = textwrap.dedent("""\
        site: {name: Test, zone: cn}
        ports:
          - {kind: fxo, name: trunk1, number: '1'}
        PHONES
        routes:
          - {trunk: trunk1, ivr: main}
        ivrs:
          main: {greeting: welcome, menu: {'1': {hangup: true}}}
          other: {greeting: welcome_evening}
        ACD
        queues:
        QUEUES
        agents:
        AGENTS
        """).replace("PHONES", phones).replace("QUEUES", textwrap.indent(textwrap.dedent(queues), "  ")) \
        .replace("AGENTS", agent_lines).replace("ACD", acd)
    return parse_config(text, "site.yaml")


class Host:
    """The call layer and the phones as the ACD sees them."""

    def __init__(self) -> None:
        self.phones: dict[str, str] = {f"p{i}": "idle" for i in range(1, 6)}
        self.refuse: set[str] = set()               # phones that refuse an offer though they look idle
        self.offers: list[tuple[str, str]] = []     # (call, agent) in order
        self.withdrawn: list[tuple[str, str]] = []
        self.routed: list[tuple[str, str, str]] = []
        self.announced: list[tuple[str, list[str]]] = []
        self.requeues: list[str] = []
        self.events: list[tuple[int, str, str | None, str | None, str | None, dict[str, Any]]] = []
        self.up: set[str] = set()
        self.clock: Clock | None = None

    def offer(self, call_id: str, agent: str, phone: str) -> bool:
        if self.phones[phone] != "idle" or phone in self.refuse:
            return False
        self.phones[phone] = "ringing"
        self.offers.append((call_id, agent))
        return True

    def withdraw(self, call_id: str, agent: str, phone: str) -> None:
        self.withdrawn.append((call_id, agent))
        if self.phones[phone] == "ringing":
            self.phones[phone] = "idle"

    def requeued(self, call_id: str) -> None:
        self.requeues.append(call_id)

    def route(self, call_id: str, target: Target, outcome: str) -> None:
        self.routed.append((call_id, target.text, outcome))

    def announce(self, call_id: str, language: str, prompts: list[str]) -> None:
        self.announced.append((call_id, prompts))

    def emit(self, kind: str, *, call_id: str | None = None, queue: str | None = None, agent: str | None = None,
             detail: dict[str, Any] | None = None) -> None:
        now = self.clock.now_ms if self.clock is not None else 0
        self.events.append((now, kind, call_id, queue, agent, dict(detail or {})))

    def phone_idle(self, phone: str) -> bool:
        return self.phones.get(phone) == "idle"

    def phone_ringing(self, phone: str) -> bool:
        return self.phones.get(phone) == "ringing"

    def call_up(self, call_id: str) -> bool:
        return call_id in self.up

    def kinds(self, kind: str) -> list[tuple[Any, ...]]:
        return [e for e in self.events if e[1] == kind]


class World:
    """An ACD, its clock and host, and helpers that act as the agents at their phones."""

    def __init__(self, cfg: Any) -> None:
        self.clock = Clock()
        self.host = Host()
        self.host.clock = self.clock
        self.acd = Acd(self.clock, self.host)
        self.acd.configure(cfg)

    def at(self, ms: int) -> None:
        self.clock.advance(ms)

    def login(self, *numbers: str) -> None:
        for n in numbers:
            phone = f"p{AGENTS.index(n) + 1}"
            assert self.acd.login(n, phone) is LoginResult.OK

    def answer(self, call_id: str, agent: str) -> bool:
        phone = self.acd.agents[agent].phone
        assert phone is not None
        self.host.phones[phone] = "off"
        won = self.acd.answered(call_id, agent)
        if won:
            self.host.up.add(call_id)
        self.acd.phone_changed(phone)
        return won

    def hang_up(self, call_id: str, agent: str, talk_ms: int) -> None:
        phone = self.acd.agents[agent].phone
        assert phone is not None
        self.host.phones[phone] = "idle"
        self.host.up.discard(call_id)
        self.acd.call_ended(agent, call_id, talk_ms)
        self.acd.phone_changed(phone)

    def state(self, agent: str) -> str:
        a = self.acd.agents[agent]
        return a.state.value + (f"({a.reason})" if a.reason else "")


Q = "q: {strategy: longest_idle, agents: ['1001', '1002', '1003', '1004'], ring_timeout_ms: 15000}"


def test_a_refused_offer_goes_to_the_next_ready_agent_at_once() -> None:
    w = World(site(Q))
    w.login("1001", "1002", "1003")
    w.host.phones["p1"] = w.host.phones["p2"] = "off"   # lifted, and the ACD not told yet
    assert w.acd.enqueue("c1", ["q"], ani="1") is None
    assert w.host.offers == [("c1", "1003")]    # in the same call, not a period later
    # The refusing agents are no candidates until their phones change; a second caller waits.
    assert w.acd.enqueue("c2", ["q"], ani="2") is None
    assert w.host.offers == [("c1", "1003")]
    w.host.phones["p2"] = "idle"
    w.acd.phone_changed("p2")                   # a line change of p2: 1002 is a candidate again
    assert w.host.offers[-1] == ("c2", "1002")


def test_an_offer_the_call_layer_cannot_make_lets_the_caller_go_not_the_agent() -> None:
    w = World(site(Q))
    w.login("1001")
    w.host.refuse = {"p1"}                      # the phone is idle: the call is what is missing
    w.acd.enqueue("c1", ["q"], ani="1")
    assert w.host.offers == [] and w.acd.waiting("q") == []
    w.host.refuse = set()
    w.acd.enqueue("c2", ["q"], ani="2")         # the agent is still a candidate
    assert w.host.offers == [("c2", "1001")]


def test_a_phone_off_hook_is_never_offered_and_is_offered_once_on_hook() -> None:
    w = World(site(Q))
    w.login("1001", "1002")
    w.host.phones["p1"] = "off"                 # 1001 (longest idle) is dialling
    w.acd.phone_changed("p1")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.acd.enqueue("c2", ["q"], ani="2")
    assert w.host.offers == [("c1", "1002")]
    assert w.state("1001") == "ready"           # ready, but its phone is busy: not offered
    w.host.phones["p1"] = "idle"
    w.acd.phone_changed("p1")
    assert w.host.offers == [("c1", "1002"), ("c2", "1001")]


def test_a_ring_timeout_moves_the_call_on_and_one_miss_is_not_ready_missed() -> None:
    w = World(site(Q))
    w.login("1001")
    w.at(10)
    w.login("1002")
    w.acd.enqueue("c1", ["q"], ani="1")         # at 10 ms
    assert w.host.offers == [("c1", "1001")]
    w.at(15009)
    assert w.host.offers == [("c1", "1001")]
    w.at(15010)
    assert w.host.offers == [("c1", "1001"), ("c1", "1002")]      # at the timeout, to the next agent
    assert w.state("1001") == "not_ready(missed)"
    (ev,) = w.host.kinds("offer_end")
    assert ev[0] == 15010 and ev[4] == "1001" and ev[5] == {"why": "no_answer"}


def test_max_missed_offers_counts_misses_in_a_row() -> None:
    w = World(site(Q, acd="acd: {max_missed_offers: 2}"))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.at(15000)                                 # first miss: ready again, and offered the call again
    assert w.state("1001") == "offered" and w.host.offers == [("c1", "1001")] * 2
    w.at(30000)                                 # second in a row: not ready
    assert w.state("1001") == "not_ready(missed)"
    assert w.acd.agents.ready(w.acd.agents["1001"])
    assert w.host.offers[-1] == ("c1", "1001")
    assert w.answer("c1", "1001")               # an answer: the count starts again
    w.hang_up("c1", "1001", 5000)
    w.acd.enqueue("c2", ["q"], ani="2")         # at 30 s, offered to 1001
    w.at(45000)
    assert w.state("1001") == "offered"         # one miss since the answer: offered again
    w.at(60000)
    assert w.state("1001") == "not_ready(missed)"


def test_wrap_up_then_ready_and_star23_ends_it_early() -> None:
    w = World(site("q: {agents: ['1001', '1002'], wrap_up_ms: 10000}"))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.at(1000)
    assert w.answer("c1", "1001")
    w.at(61000)
    w.hang_up("c1", "1001", 60000)
    assert w.state("1001") == "wrap_up"
    w.acd.enqueue("c2", ["q"], ani="2")         # waits: the only member wraps up
    assert w.host.offers == [("c1", "1001")]
    w.at(70999)
    assert w.state("1001") == "wrap_up"
    w.at(71000)
    assert w.state("1001") == "offered" and w.host.offers[-1] == ("c2", "1001")
    assert w.answer("c2", "1001")
    w.at(80000)
    w.hang_up("c2", "1001", 9000)
    w.at(82000)
    assert w.acd.agents.ready(w.acd.agents["1001"])     # *23 during wrap-up
    assert w.state("1001") == "ready"
    states = [(e[0], e[5]["state"]) for e in w.host.kinds("agent_state")]
    assert states == [(0, "ready"), (0, "offered"), (1000, "on_call"), (61000, "wrap_up"), (71000, "ready"),
                      (71000, "offered"), (71000, "on_call"), (80000, "wrap_up"), (82000, "ready")]


def test_not_ready_dialled_during_a_call_applies_after_wrap_up() -> None:
    w = World(site("q: {agents: ['1001'], wrap_up_ms: 5000}", acd="acd: {not_ready_reasons: {'1': break}}"))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.answer("c1", "1001")
    assert w.acd.agents.not_ready(w.acd.agents["1001"], "break")
    assert w.state("1001") == "on_call"
    w.at(3000)
    w.hang_up("c1", "1001", 3000)
    assert w.state("1001") == "wrap_up"
    w.at(8000)
    assert w.state("1001") == "not_ready(break)"


def test_ring_all_the_first_off_hook_wins_the_loser_stays_ready_without_a_miss() -> None:
    w = World(site("q: {strategy: ring_all, agents: ['1001', '1002', '1003']}"))
    w.login("1001", "1002", "1003")
    w.acd.enqueue("c1", ["q"], ani="1")
    assert w.host.offers == [("c1", "1001"), ("c1", "1002"), ("c1", "1003")]
    assert w.answer("c1", "1002")               # 1002 first
    assert not w.answer("c1", "1003")           # 1003 off hook later: not its call
    assert sorted(w.host.withdrawn) == [("c1", "1001"), ("c1", "1003")]
    assert [w.state(n) for n in ("1001", "1002", "1003")] == ["ready", "on_call", "ready"]
    ends = {e[4]: e[5]["why"] for e in w.host.kinds("offer_end")}
    assert ends == {"1001": "answered_elsewhere", "1003": "answered_elsewhere"}
    assert w.acd.agents["1003"].missed_in_row == 0


def test_a_caller_in_two_queues_is_answered_once_and_withdrawn_from_the_other() -> None:
    w = World(site("""\
        sales: {agents: ['1001']}
        support: {agents: ['1002']}
        """))
    w.acd.enqueue("c1", ["sales", "support"], ani="1")
    w.login("1002")
    assert w.host.offers == [("c1", "1002")]
    w.login("1001")                             # ready while c1 rings at 1002: nothing for it
    assert w.host.offers == [("c1", "1002")]
    assert w.answer("c1", "1002")
    leaves = [(e[3], e[5]["outcome"]) for e in w.host.kinds("queue_leave")]
    assert leaves == [("sales", "withdrawn")]
    assert [(e[3], e[4]) for e in w.host.kinds("answer")] == [("support", "1002")]
    assert w.acd.waiting("sales") == [] and w.acd.waiting("support") == []


def test_priority_is_strict_and_vip_numbers_set_it() -> None:
    w = World(site(Q, acd="acd: {vip: {priority: 5, numbers: ['139*']}}"))
    w.acd.enqueue("c1", ["q"], ani="13800000001")
    w.at(10)
    w.acd.enqueue("c2", ["q"], ani="13800000002", priority=3)
    w.at(20)
    w.acd.enqueue("c3", ["q"], ani="+139 0000-0003")      # VIP (normalised): priority 5
    w.login("1001")
    w.login("1002")
    w.login("1003")
    assert [c for c, _ in w.host.offers] == ["c3", "c2", "c1"]


def test_a_blacklisted_caller_goes_to_then() -> None:
    w = World(site(Q, acd="acd: {blacklist: {numbers: ['13000000000'], then: {hangup: blocked}}}"))
    w.login("1001")
    assert w.acd.enqueue("c1", ["q"], ani="130-0000-0000") == (Target("hangup", "blocked"), "blacklist")
    assert w.host.offers == []
    assert [e[5]["outcome"] for e in w.host.kinds("queue_leave")] == ["blacklist"]


def test_a_caller_answered_recently_waits_for_that_agent_then_goes_to_anyone() -> None:
    w = World(site(Q, acd="acd: {sticky: {window_days: 7, reserve_ms: 20000}}"))
    w.login("1001", "1002")
    w.acd.enqueue("c1", ["q"], ani="555")
    assert w.host.offers == [("c1", "1001")]
    w.answer("c1", "1001")
    w.at(1000)
    w.acd.enqueue("c2", ["q"], ani="666")       # another caller takes 1002
    w.answer("c2", "1002")
    w.at(2000)
    w.hang_up("c2", "1002", 1000)               # 1002 ready; 1001 still on c1
    w.acd.enqueue("c3", ["q"], ani="555")       # 555 again: reserved for 1001 for 20 s
    assert w.host.offers[-1] == ("c2", "1002")
    w.at(21999)
    assert w.host.offers[-1] == ("c2", "1002")
    w.at(22000)
    assert w.host.offers[-1] == ("c3", "1002")  # reserve over: routed normally


def test_the_sticky_memory_holds_one_windows_callers_and_nothing_without_sticky() -> None:
    w = World(site(Q, acd="acd: {sticky: {window_days: 1, reserve_ms: 20000}}"))
    w.login("1001")
    for i in range(3):                          # three callers answered on day 1
        w.at(1000 * i)
        w.acd.enqueue(f"a{i}", ["q"], ani=f"55{i}")
        w.answer(f"a{i}", "1001")
        w.hang_up(f"a{i}", "1001", 100)
        w.at(1000 * i + 500)
    assert set(w.acd._sticky) == {"550", "551", "552"}
    w.at(86_400_000 + 1500)                     # a day and a bit later: 550 and 551 are beyond it
    w.acd.enqueue("b", ["q"], ani="777")
    w.answer("b", "1001")
    assert set(w.acd._sticky) == {"552", "777"}
    plain = World(site(Q))
    plain.login("1001")
    plain.acd.enqueue("c", ["q"], ani="555")
    plain.answer("c", "1001")
    assert plain.acd._sticky == {}


def test_the_reserved_agent_takes_the_caller_when_free() -> None:
    w = World(site(Q, acd="acd: {sticky: {window_days: 7, reserve_ms: 20000}}"))
    w.login("1001", "1002")
    w.acd.enqueue("c1", ["q"], ani="555")
    w.answer("c1", "1001")
    w.at(5000)
    w.hang_up("c1", "1001", 5000)
    w.at(6000)
    w.acd.enqueue("c2", ["q"], ani="555")       # 1002 idle longer, but 555 was 1001's
    assert w.host.offers[-1] == ("c2", "1001")


@pytest.mark.parametrize(("target", "routed"), [
    ("{ivr: other}", ("c1", "ivr:other", "timeout")),
    ("{hangup: busy}", ("c1", "hangup:busy", "timeout")),
    ("{queue: spill}", None),
])
def test_timeout_overflow_is_strict(target: str, routed: tuple[str, str, str] | None) -> None:
    w = World(site(f"""\
        q: {{agents: ['1001'], max_wait_ms: 30000, on_timeout: {target}}}
        spill: {{agents: ['1002']}}
        """))
    w.acd.enqueue("c1", ["q"], ani="1")
    w.at(29999)
    assert not w.host.kinds("queue_leave")
    w.at(30000)
    (leave,) = w.host.kinds("queue_leave")
    assert leave[0] == 30000 and leave[5]["outcome"] == "timeout"
    if routed is not None:
        assert w.host.routed == [routed]
    else:
        enters = w.host.kinds("queue_enter")
        assert [(e[3], e[5]["first"]) for e in enters] == [("q", True), ("spill", False)]
        w.login("1002")
        assert w.host.offers == [("c1", "1002")]


def test_a_full_queue_and_a_queue_without_agents_turn_callers_away() -> None:
    w = World(site("""\
        q: {agents: ['1001'], max_callers: 1, on_full: {hangup: busy}, on_no_agents: {queue: spill}}
        spill: {agents: ['1002']}
        """))
    # No agent logged in: no_agents at entry, to spill (a queue: the call waits there).
    assert w.acd.enqueue("c1", ["q"], ani="1") is None
    assert [(e[3], e[5]["outcome"]) for e in w.host.kinds("queue_leave")] == [("q", "no_agents")]
    assert w.acd.waiting("spill")[0][0] == "c1"
    w.login("1001")
    w.host.phones["p1"] = "off"                 # 1001 present but busy at the phone: c2 waits in q
    w.acd.phone_changed("p1")
    assert w.acd.enqueue("c2", ["q"], ani="2") is None
    assert w.acd.enqueue("c3", ["q"], ani="3") == (Target("hangup", "busy"), "full")


def test_a_queue_empty_for_30_s_sends_its_callers_on() -> None:
    w = World(site("""\
        q: {agents: ['1001'], on_no_agents: {ivr: other}}
        """))
    w.login("1001")
    w.acd.agents.not_ready(w.acd.agents["1001"], "other")   # present (not logged out): callers wait
    w.acd.enqueue("c1", ["q"], ani="1")
    w.at(1000)
    w.acd.agents.logout(w.acd.agents["1001"])   # now no agents: 30 s later the callers go
    w.at(30999)
    assert w.host.routed == []
    w.at(31000)
    assert w.host.routed == [("c1", "ivr:other", "no_agents")]


def test_the_exit_key_takes_the_caller_out_of_every_queue() -> None:
    w = World(site("q: {agents: ['1001'], exit_key: {key: '0', to: {ivr: other}}}"))
    w.acd.enqueue("c1", ["q"], ani="1")
    assert not w.acd.digit("c1", "5")
    assert w.acd.digit("c1", "0")
    assert w.host.routed == [("c1", "ivr:other", "exit_key")]
    assert w.acd.waiting("q") == []


ZH = """\
  - {number: '1001', name: En, phone: p1, skills: {en: 5}}
  - {number: '1002', name: Zh, phone: p2, skills: {zh: 4, en: 1}}
  - {number: '1003', name: Other, phone: p3}
  - {number: '1004', name: Other2, phone: p4}"""


@pytest.mark.parametrize("zh_agent_at", [20000, None])
def test_a_zh_caller_waits_for_a_zh_agent_or_widens_to_en_at_60_s(zh_agent_at: int | None) -> None:
    w = World(site("q: {agents: ['1001', '1002'], widen: [{after_ms: 60000, skill: zh, min: 0}]}", agents=ZH))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1", skills={"zh": 1})
    w.at(100)
    w.acd.enqueue("c2", ["q"], ani="2", skills={"zh": 1})   # behind c1, keeps its place
    assert w.host.offers == []                               # the en agent is free, but speaks no zh
    if zh_agent_at is not None:
        w.at(zh_agent_at)
        w.login("1002")
        assert w.host.offers == [("c1", "1002")]
    else:
        w.at(59999)
        assert w.host.offers == []
        w.at(60000)
        assert w.host.offers == [("c1", "1001")]
        w.at(60100)
        w.login("1002")
        assert w.host.offers[-1] == ("c2", "1002")


def test_an_agent_on_a_call_with_none_heals_within_a_second() -> None:
    w = World(site(Q))
    w.login("1001")
    a = w.acd.agents["1001"]
    w.acd.agents.force(a, AgentState.ON_CALL)
    a.call_id = "ghost"
    w.acd.enqueue("c1", ["q"], ani="1")
    assert w.host.offers == []
    w.at(1000)
    w.acd.each_second()
    assert w.state("1001") == "offered" and w.host.offers == [("c1", "1001")]
    (heal,) = w.host.kinds("agent_heal")
    assert heal[5] == {"was": "on_call", "now": "ready", "why": "on_call on hook with no call"}


def test_an_agent_made_ready_while_its_phone_is_on_its_call_heals_to_on_call_then_wraps_up() -> None:
    w = World(site(Q.replace("ring_timeout_ms: 15000", "ring_timeout_ms: 15000, wrap_up_ms: 3000")))
    w.login("1001")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.answer("c1", "1001")
    a = w.acd.agents["1001"]
    w.acd.agents.force(a, AgentState.READY)     # the state forgot the call; the phone still talks
    w.acd.enqueue("c2", ["q"], ani="2")
    w.at(1000)
    w.acd.each_second()
    assert w.state("1001") == "on_call"
    assert w.host.offers == [("c1", "1001")]    # c2 was never offered to an agent on a call
    (heal,) = w.host.kinds("agent_heal")
    assert heal[5] == {"was": "ready", "now": "on_call", "why": "on a call the state forgot"}
    w.hang_up("c1", "1001", 5000)
    assert w.state("1001") == "wrap_up"


def test_an_offered_agent_whose_phone_does_not_ring_heals() -> None:
    w = World(site(Q))
    w.login("1001", "1002")
    w.acd.enqueue("c1", ["q"], ani="1")
    w.host.phones["p1"] = "idle"                # the ring was lost: the phone is not ringing
    w.acd.each_second()
    assert w.state("1001") == "ready"
    assert [e[5]["why"] for e in w.host.kinds("agent_heal")] == ["offered without ringing"]


def test_wrong_pins_are_refused_and_three_in_5_min_lock_the_agent_for_5_min() -> None:
    agents = "  - {number: '1001', name: A, phone: p1, pin: '4321'}"
    w = World(site("q: {agents: ['1001']}", agents=agents))
    for t in (0, 60_000, 120_000):
        w.at(t)
        assert w.acd.login("1001", "p1", "1111") is LoginResult.WRONG_PIN
    w.at(130_000)
    assert w.acd.login("1001", "p1", "4321") is LoginResult.LOCKED
    assert w.state("1001") == "logged_out"
    w.at(120_000 + 300_000)
    assert w.acd.login("1001", "p1", "4321") is LoginResult.OK
    assert [e[5]["why"] for e in w.host.kinds("login_failed")] == ["wrong_pin"] * 3 + ["locked"]
    assert [e[5]["until_ms"] for e in w.host.kinds("agent_locked")] == [420_000]


def test_wrong_pins_spread_over_more_than_5_min_do_not_lock() -> None:
    agents = "  - {number: '1001', name: A, phone: p1, pin: '4321'}"
    w = World(site("q: {agents: ['1001']}", agents=agents))
    for t in (0, 200_000, 300_000):
        w.at(t)
        w.acd.login("1001", "p1", "0000")
    assert w.acd.login("1001", "p1", "4321") is LoginResult.OK


def test_a_queue_removed_by_an_apply_serves_its_callers_to_the_end() -> None:
    w = World(site("""\
        q: {agents: ['1001']}
        old: {agents: ['1002']}
        """))
    w.acd.enqueue("c1", ["old"], ani="1")
    w.acd.configure(site("q: {agents: ['1001']}"))
    assert "old" in w.acd.queues and w.acd.queues["old"].retired
    w.login("1002")
    assert w.host.offers == [("c1", "1002")]
    w.answer("c1", "1002")
    assert "old" not in w.acd.queues


def test_announcements_say_the_place_and_a_hand_computed_wait() -> None:
    w = World(site("q: {agents: ['1001', '1002', '1003', '1004', '1005'], expected_aht_ms: 180000, "
                   "announce: {first_after_ms: 15000, every_ms: 30000}}",
                   agents="\n".join(f"  - {{number: '100{i}', name: A{i}, phone: p{i}}}" for i in range(1, 6))))
    for n in AGENTS:
        w.login(n)
    assert w.acd.login("1005", "p5") is LoginResult.OK
    for n in ("1001", "1002", "1003", "1004", "1005"):
        w.acd.agents.not_ready(w.acd.agents[n], "other")   # logged in, not taking calls
    for i in range(3):
        w.acd.enqueue(f"c{i + 1}", ["q"], ani=str(i))
    w.at(15000)
    # caller 3: "you are caller number three", EWT = ceil(3 x 180 s / 5 agents / 60 s) = ceil(1.8) = 2
    assert w.host.announced[2] == ("c3", ["position_intro", "n3", "wait_intro", "n2", "minutes"])
    assert w.host.announced[0] == ("c1", ["position_intro", "n1", "wait_intro", "n1", "minute"])
    w.at(45000)
    assert len(w.host.announced) == 6


def test_fewest_calls_counts_from_the_login() -> None:
    w = World(site("q: {strategy: fewest_calls, agents: ['1001', '1002']}"))
    w.login("1001", "1002")
    for i in range(2):                          # 1001 takes two calls, 1002 one
        w.acd.enqueue(f"a{i}", ["q"], ani="1")
        agent = w.host.offers[-1][1]
        w.answer(f"a{i}", agent)
        w.at(1000 * (i + 1))
        w.hang_up(f"a{i}", agent, 500)
    assert [a for _, a in w.host.offers] == ["1001", "1002"]
    w.acd.enqueue("a2", ["q"], ani="1")         # 1 call each: longest idle, 1001 (idle since 1000)
    w.answer("a2", "1001")
    w.at(3000)
    w.hang_up("a2", "1001", 500)                # 1001: 2 calls, 1002: 1
    w.acd.agents.logout(w.acd.agents["1001"])
    w.login("1001")                             # logged in again: 1001 starts from 0 calls
    w.at(3500)
    w.acd.enqueue("a3", ["q"], ani="1")
    assert w.host.offers[-1] == ("a3", "1001")


def test_a_pin_for_an_agent_without_one_is_wrong_and_an_unknown_agent_is_logged() -> None:
    w = World(site(Q))
    assert w.acd.login("1001", "p1", "1234") is LoginResult.WRONG_PIN
    assert w.acd.login("9999", "p1") is LoginResult.UNKNOWN
    assert [(e[4], e[5]["why"]) for e in w.host.kinds("login_failed")] == [("1001", "wrong_pin"),
                                                                          ("9999", "unknown_agent")]
    assert w.state("1001") == "logged_out"


def test_pins_dialled_for_an_agent_without_one_never_lock_it_out() -> None:
    # The lock-out stops PINs being guessed; an agent without a PIN has none to guess, and three
    # such dials by anyone must not keep it from logging in.
    w = World(site(Q))
    for t in (0, 10_000, 20_000, 30_000):
        w.at(t)
        assert w.acd.login("1001", "p1", "1234") is LoginResult.WRONG_PIN
    assert w.acd.login("1001", "p1") is LoginResult.OK
    assert w.host.kinds("agent_locked") == []


def test_a_forced_wrap_up_ends_like_a_real_one() -> None:
    w = World(site(Q))
    w.login("1001")
    w.acd.agents.force(w.acd.agents["1001"], AgentState.WRAP_UP, wrap_ms=4000)
    w.at(3999)
    assert w.state("1001") == "wrap_up"
    w.at(4000)
    assert w.state("1001") == "ready"
