"""The call-center core's site keys (acd:, the queues' rules, agents' PINs and skills): the issue's
example accepted as written, and each kind of mistake at its FILE:LINE:COL, `cicbox config check`
exiting 2 on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cli
from appliance.config.loader import parse_config
from appliance.config.model import Target
from appliance.errors import ConfigError
from appliance.prompts import Prompts
from tests.config.test_config import line_col
from tests.e2e.harness import site_yaml

HEAD = site_yaml(agents=2).split("queues:\n")[0]

# The issue's document, with the queue (concierge) and the IVR (main) it names, a second agent
# (front_desk names '1002') and routes and a menu that use queues, skills and priorities.
EXAMPLE = HEAD.replace("menu: {'1': {queue: front_desk}}",
                       "menu: {'1': {queue: front_desk}, '2': {queues: [front_desk, concierge], skills: {zh: 1}, "
                       "priority: 2}, '9': {hangup: true}}") \
    .replace("  - {trunk: trunk2, ivr: main}", "  - {trunk: trunk2, queues: [concierge, front_desk], "
             "skills: {en: 2}, priority: 3}\n  - {dnis: '4000', queue: concierge}") + """\
acd: {random_seed: 1, max_missed_offers: 1, not_ready_reasons: {'1': break, '2': lunch},
  sticky: {window_days: 7, reserve_ms: 20000}, vip: {priority: 5, numbers: ['139*']},
  blacklist: {numbers: ['13000000000'], then: {hangup: blocked}},
  features: {login: '*21', logout: '*22', ready: '*23', not_ready: '*24'}}
queues:
  front_desk:
    {strategy: longest_idle, agents: ['1001', '1002'], ring_timeout_ms: 15000, wrap_up_ms: 10000,
     max_callers: 20, max_wait_ms: 300000, empty_when: [logged_out],
     on_timeout: {queue: concierge}, on_full: {hangup: busy}, on_no_agents: {ivr: main},
     exit_key: {key: '0', to: {ivr: main}}, hold: ringback,
     announce: {first_after_ms: 15000, every_ms: 30000, position: true, wait: true},
     sl_threshold_ms: 20000, short_abandon_ms: 5000, expected_aht_ms: 180000,
     widen: [{after_ms: 60000, skill: zh, min: 0}]}
  concierge:
    agents: ['1002']
    strategy: round_robin
agents: [{number: '1001', name: Desk 1, phone: phone1, pin: '4321', skills: {en: 5, zh: 3}},
  {number: '1002', name: Desk 2, phone: phone2}]
"""


def write_prompts(state: Path, *names: str, language: str = "en") -> None:
    """A state directory's prompts/<language>/<name>.wav (the loader only asks that they exist)."""
    d = state / "prompts" / language
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        (d / f"{n}.wav").write_bytes(b"")


def test_the_issues_example_is_accepted_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_config(EXAMPLE, "site.yaml")
    fd = cfg.queues["front_desk"]
    assert (fd.strategy, fd.agents, fd.ring_timeout_ms, fd.wrap_up_ms) == ("longest_idle", ("1001", "1002"),
                                                                          15000, 10000)
    assert (fd.max_callers, fd.max_wait_ms, fd.empty_when) == (20, 300000, ("logged_out",))
    assert [(k, t.ref()) for k, t in fd.overflows()] == [
        ("on_timeout", "queue:concierge"), ("on_full", "hangup:busy"), ("on_no_agents", "ivr:main")]
    assert fd.exit_key is not None and (fd.exit_key.key, fd.exit_key.to.kind(), fd.exit_key.to.name()) == \
        ("0", "ivr", "main")
    assert fd.hold == "ringback" and fd.announce is not None and fd.announce.every_ms == 30000
    assert (fd.sl_threshold_ms, fd.short_abandon_ms, fd.expected_aht_ms) == (20000, 5000, 180000)
    assert [(w.after_ms, w.skill, w.min) for w in fd.widen] == [(60000, "zh", 0)]
    acd = cfg.acd
    assert (acd.random_seed, acd.max_missed_offers, acd.not_ready_reasons) == (1, 1, {"1": "break", "2": "lunch"})
    assert acd.sticky is not None and (acd.sticky.window_days, acd.sticky.reserve_ms) == (7, 20000)
    assert acd.vip is not None and (acd.vip.priority, acd.vip.numbers) == (5, ("139*",))
    assert acd.blacklist is not None and acd.blacklist.then.ref() == "hangup:blocked"
    assert acd.features.codes() == {"*21": "login", "*22": "logout", "*23": "ready", "*24": "not_ready"}
    a = cfg.agents[0]
    assert (a.pin, a.skills) == ("4321", {"en": 5, "zh": 3})
    assert (cfg.agents[1].pin, cfg.agents[1].skills) == (None, {})
    menu = cfg.ivrs["main"].menu
    assert [menu[k].queue_names() for k in ("1", "2", "9")] == [("front_desk",), ("front_desk", "concierge"), ()]
    assert (menu["2"].skills, menu["2"].priority, menu["1"].priority) == ({"zh": 1}, 2, 0)
    assert [(r.ivr, r.queue_names(), r.priority) for r in cfg.routes] == [
        ("main", (), 0), (None, ("concierge", "front_desk"), 3), (None, ("concierge",), 0)]
    assert cfg.route_for("trunk2", None) is cfg.routes[1]
    assert cfg.route_for("trunk9", "4000") is cfg.routes[2]
    # `config check`: busy and blocked are prompts the site must have (here the state directory's)
    path = tmp_path / "site.yaml"
    path.write_text(EXAMPLE)
    write_prompts(tmp_path / "state", "busy", "blocked")
    assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path / "state")]) == 0
    assert capsys.readouterr().out == f"{path}: ok (4 ports, 0 spans, 2 queues, 2 agents)\n"


def test_new_keys_left_out_keep_todays_behaviour() -> None:
    cfg = parse_config(site_yaml(agents=1), "site.yaml")
    q = cfg.queues["front_desk"]
    assert (q.strategy, q.wrap_up_ms, q.max_callers, q.max_wait_ms, q.empty_when) == (
        "longest_idle", 0, None, None, ("logged_out",))
    assert (q.on_timeout, q.on_full, q.on_no_agents, q.exit_key, q.hold, q.announce, q.widen) == (
        None, None, None, None, "ringback", None, ())
    assert q.short_abandon_ms == 0 and q.overflows() == ()
    acd = cfg.acd
    assert (acd.max_missed_offers, acd.not_ready_reasons, acd.sticky, acd.vip, acd.blacklist) == (1, {}, None, None,
                                                                                                 None)
    assert acd.features.codes() == {"*21": "login", "*22": "logout", "*23": "ready", "*24": "not_ready"}
    assert (cfg.agents[0].pin, cfg.agents[0].skills) == (None, {})
    route = cfg.routes[0]
    assert (route.ivr, route.queue_names(), route.skills, route.priority) == ("main", (), {}, 0)
    act = cfg.ivrs["main"].menu["1"]
    assert (act.queue, act.queue_names(), act.skills, act.priority) == ("front_desk", ("front_desk",), {}, 0)


def test_every_strategy_is_accepted() -> None:
    for s in ("ring_all", "longest_idle", "round_robin", "fewest_calls", "least_talk_time", "linear", "random"):
        cfg = parse_config(EXAMPLE.replace("strategy: round_robin", f"strategy: {s}"), "site.yaml")
        assert cfg.queues["concierge"].strategy == s


def test_target_helpers() -> None:
    assert [(t.kind(), t.name(), t.ref()) for t in (Target(queue="a"), Target(ivr="m"), Target(hangup="busy"))] == [
        ("queue", "a", "queue:a"), ("ivr", "m", "ivr:m"), ("hangup", "busy", "hangup:busy")]


FD = "queues.front_desk"
SKILLS = "(agents' skills: en, zh)"
CYCLE_BACK = EXAMPLE.replace("    strategy: round_robin\n", "    strategy: round_robin\n    max_wait_ms: 60000\n"
                             "    on_timeout: {queue: front_desk}\n")
# (kind, document, needle: the text the issue must point at (nth occurrence), message)
CASES: list[tuple[str, str, tuple[str, int], str]] = [
    ("unknown strategy", EXAMPLE.replace("strategy: round_robin", "strategy: fastest"), ("fastest", 0),
     "queues.concierge.strategy: must be one of 'ring_all', 'longest_idle', 'round_robin', 'fewest_calls', "
     "'least_talk_time', 'linear' or 'random', got 'fastest'"),
    # skills: asked by a menu, a route or a widening, and no agent has them
    ("unknown skill (widen)", EXAMPLE.replace("skill: zh, min: 0", "skill: fr, min: 0"), ("fr, min", 0),
     f"{FD}.widen.0.skill: unknown skill 'fr': no agent has it {SKILLS}"),
    ("unknown skill (menu)", EXAMPLE.replace("skills: {zh: 1}", "skills: {zh: 1, fr: 2}"), ("fr: 2", 0),
     f"ivrs.main.menu.2.skills.fr: unknown skill 'fr': no agent has it {SKILLS}"),
    ("unknown skill (route)", EXAMPLE.replace("skills: {en: 2}", "skills: {de: 2}"), ("de: 2", 0),
     f"routes.1.skills.de: unknown skill 'de': no agent has it {SKILLS}"),
    ("skill level above 10", EXAMPLE.replace("zh: 3}", "zh: 11}"), ("11}", 0),
     "agents.0.skills.zh: must be at most 10, got 11"),
    # not-ready reasons
    ("reserved reason", EXAMPLE.replace("'2': lunch", "'2': missed"), ("missed}", 0),
     "acd.not_ready_reasons.2: reason 'missed' is the appliance's own (other, missed and restart cannot be "
     "configured)"),
    ("reason code of 3 digits", EXAMPLE.replace("'1': break", "'123': break"), ("'123'", 0),
     "acd.not_ready_reasons.123: a not-ready reason code is 1 or 2 digits, got '123'"),
    ("reason named twice", EXAMPLE.replace("'2': lunch", "'2': break"), ("break", 1),
     "acd.not_ready_reasons.2: reason 'break' is already code 1"),
    # targets
    ("unknown queue (on_timeout)", EXAMPLE.replace("on_timeout: {queue: concierge}", "on_timeout: {queue: concierg}"),
     ("concierg}", 0), f"{FD}.on_timeout.queue: unknown queue 'concierg' (known: concierge, front_desk)"),
    ("unknown ivr (on_no_agents)", EXAMPLE.replace("on_no_agents: {ivr: main}", "on_no_agents: {ivr: mian}"),
     ("mian", 0), f"{FD}.on_no_agents.ivr: unknown ivr 'mian' (known: main)"),
    ("unknown ivr (exit key)", EXAMPLE.replace("to: {ivr: main}", "to: {ivr: night}"), ("night", 0),
     f"{FD}.exit_key.to.ivr: unknown ivr 'night' (known: main)"),
    ("unknown queue (blacklist)", EXAMPLE.replace("then: {hangup: blocked}", "then: {queue: jail}"), ("jail", 0),
     "acd.blacklist.then.queue: unknown queue 'jail' (known: concierge, front_desk)"),
    ("unknown queue (menu queues)", EXAMPLE.replace("[front_desk, concierge]", "[front_desk, bar]"), ("bar]", 0),
     "ivrs.main.menu.2.queues.1: unknown queue 'bar' (known: concierge, front_desk)"),
    ("unknown queue (route)", EXAMPLE.replace("{dnis: '4000', queue: concierge}", "{dnis: '4000', queue: spa}"),
     ("spa}", 0), "routes.2.queue: unknown queue 'spa' (known: concierge, front_desk)"),
    ("target of two kinds", EXAMPLE.replace("on_full: {hangup: busy}", "on_full: {hangup: busy, queue: concierge}"),
     ("{hangup: busy, queue", 0), f"{FD}.on_full: a target is exactly one of queue, ivr, hangup"),
    ("menu queue and queues", EXAMPLE.replace("'2': {queues:", "'2': {queue: concierge, queues:"),
     ("{queue: concierge, queues", 0), "ivrs.main.menu.2: a menu entry needs exactly one of queue, queues, hangup, "
     "repeat"),
    ("route ivr and queue", EXAMPLE.replace("{dnis: '4000', queue: concierge}", "{dnis: '4000', queue: concierge, "
                                            "ivr: main}"),
     ("{dnis: '4000'", 0), "routes.2: a route goes to exactly one of ivr, queue, queues"),
    ("priority above 9", EXAMPLE.replace("priority: 3}", "priority: 10}"), ("10}", 0),
     "routes.1.priority: must be at most 9, got 10"),
    # overflow cycles: at the key that closes the cycle, the cycle named
    ("overflow cycle", CYCLE_BACK, ("on_timeout: {queue: front_desk}", 0),
     "queues.concierge.on_timeout: overflow cycle: front_desk (on_timeout) -> concierge (on_timeout) -> front_desk"),
    ("overflow to itself", EXAMPLE.replace("on_no_agents: {ivr: main}", "on_no_agents: {queue: front_desk}"),
     ("on_no_agents", 0), f"{FD}.on_no_agents: overflow cycle: front_desk (on_no_agents) -> front_desk"),
    ("overflow cycle of three", EXAMPLE.replace("    strategy: round_robin\n", "    strategy: round_robin\n"
                                                "    on_no_agents: {queue: lobby}\n  lobby:\n    agents: ['1001']\n"
                                                "    max_callers: 5\n    on_full: {queue: front_desk}\n"),
     ("on_full: {queue: front_desk}", 0),
     "queues.lobby.on_full: overflow cycle: front_desk (on_timeout) -> concierge (on_no_agents) -> lobby (on_full) "
     "-> front_desk"),
    # agents
    ("PIN too short", EXAMPLE.replace("pin: '4321'", "pin: '432'"), ("'432'", 0),
     "agents.0.pin: a PIN is 4 to 8 digits, got '432'"),
    ("PIN too long", EXAMPLE.replace("pin: '4321'", "pin: '123456789'"), ("'123456789'", 0),
     "agents.0.pin: a PIN is 4 to 8 digits, got '123456789'"),
    ("PIN not digits", EXAMPLE.replace("pin: '4321'", "pin: '43a1'"), ("'43a1'", 0),
     "agents.0.pin: a PIN is 4 to 8 digits, got '43a1'"),
    ("agent named twice", EXAMPLE.replace("phone: phone2}]", "phone: phone2},\n  {number: '1001', name: Desk 3}]"),
     ("'1001', name: Desk 3", 0), "agents.2.number: agent number 1001 is already used by agent 0"),
    ("member named twice", EXAMPLE.replace("agents: ['1001', '1002']", "agents: ['1001', '1001']"), ("'1001'", 1),
     f"{FD}.agents.1: agent 1001 is named twice (first at agents.0)"),
    ("member not an agent", EXAMPLE.replace("agents: ['1002']", "agents: ['1002', '1003']"), ("'1003'", 0),
     "queues.concierge.agents.1: unknown agent '1003' (known: 1001, 1002)"),
    # feature codes
    ("feature code not *digits", EXAMPLE.replace("login: '*21'", "login: '#21'"), ("'#21'", 0),
     "acd.features.login: a feature code is * and 1 to 3 digits, got '#21'"),
    ("feature code twice", EXAMPLE.replace("ready: '*23'", "ready: '*22'"), ("'*22'", 1),
     "acd.features.ready: *22 is already the logout code"),
    ("feature code a prefix", EXAMPLE.replace("not_ready: '*24'", "not_ready: '*2'"), ("'*2'", 0),
     "acd.features.not_ready: *2 and the login code *21: one is a prefix of the other"),
    # numbers, queue states, rules that go together
    ("bad number", EXAMPLE.replace("numbers: ['139*']", "numbers: ['139*', '13x']"), ("'13x'", 0),
     "acd.vip.numbers.1: '13x' is not a number (digits, spaces, dashes, a leading + and, for a prefix, "
     "a trailing *)"),
    ("state that is never empty", EXAMPLE.replace("empty_when: [logged_out]", "empty_when: [logged_out, ready]"),
     ("ready]", 0), f"{FD}.empty_when.1: must be one of 'logged_out', 'not_ready', 'wrap_up', 'on_call' or "
     "'offered', got 'ready'"),
    ("max_wait_ms without on_timeout", EXAMPLE.replace("on_timeout: {queue: concierge}, ", ""), ("max_wait_ms", 0),
     f"{FD}.max_wait_ms: max_wait_ms and on_timeout go together (how long a caller waits, then where it goes)"),
    ("on_full without max_callers", EXAMPLE.replace("max_callers: 20, ", ""), ("on_full", 0),
     f"{FD}.on_full: max_callers and on_full go together (how many callers wait, then where the next one goes)"),
]


@pytest.mark.parametrize(("kind", "text", "needle", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_error_kind_at_its_place(kind: str, text: str, needle: tuple[str, int], message: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert text != EXAMPLE
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml")
    line, col = line_col(text, *needle)
    assert [(i.line, i.col, i.message) for i in exc.value.issues] == [(line, col, message)]
    path = tmp_path / "site.yaml"
    path.write_text(text)
    write_prompts(tmp_path / "state", "busy", "blocked")
    assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path / "state")]) == 2
    assert capsys.readouterr().err == f"{path}:{line}:{col}: {message}\n"


@pytest.mark.parametrize(("where", "old", "new", "needle"), [
    ("queues.front_desk.on_full.hangup", "on_full: {hangup: busy}", "on_full: {hangup: rooms_full}", "rooms_full}"),
    ("acd.blacklist.then.hangup", "then: {hangup: blocked}", "then: {hangup: barred}", "barred}"),
    ("queues.front_desk.hold", "hold: ringback", "hold: lounge_music", "lounge_music"),
    ("queues.front_desk.exit_key.to.hangup", "to: {ivr: main}", "to: {hangup: goodbye}", "goodbye"),
])
def test_a_prompt_the_queues_name_must_exist(where: str, old: str, new: str, needle: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Like a greeting: in the site's prompts or the shipped ones; here one of them is missing."""
    text = EXAMPLE.replace(old, new)
    state = tmp_path / "state"
    wanted = {"busy", "blocked", "rooms_full", "barred", "lounge_music", "goodbye"} - {needle.rstrip("}")}
    write_prompts(state, *wanted)
    name = needle.rstrip("}")
    line, col = line_col(text, needle)
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml", Prompts(state / "prompts", shipped_dir=greetings_only(tmp_path)))
    assert [(i.line, i.col) for i in exc.value.issues] == [(line, col)]
    assert exc.value.issues[0].message.startswith(f"{where}: prompt '{name}' (en) not found in {state / 'prompts'}")
    path = tmp_path / "site.yaml"
    path.write_text(text)
    assert cli.main(["config", "check", str(path), "--state-dir", str(state)]) == 2
    assert capsys.readouterr().err.startswith(f"{path}:{line}:{col}: {where}: prompt '{name}' (en)")
    write_prompts(state, name)                     # there now: accepted
    parse_config(text, "site.yaml", Prompts(state / "prompts", shipped_dir=greetings_only(tmp_path)))


def greetings_only(tmp_path: Path) -> Path:
    """Shipped prompts without the queues' (busy, blocked... ship now): only the greeting."""
    import shutil

    from appliance.prompts import SHIPPED
    out = tmp_path / "shipped"
    (out / "en").mkdir(parents=True, exist_ok=True)
    shutil.copy(SHIPPED / "en" / "welcome.wav", out / "en" / "welcome.wav")
    return out


def test_queue_prompts_are_needed_in_every_language_the_ivrs_speak(tmp_path: Path) -> None:
    text = EXAMPLE.replace("    max_repeats: 2\n", "    max_repeats: 2\n  night:\n    greeting: welcome\n"
                           "    language: zh\n", 1)
    state = tmp_path / "state"
    write_prompts(state, "busy", "blocked")
    write_prompts(state, "welcome", "busy", language="zh")
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml", Prompts(state / "prompts", shipped_dir=greetings_only(tmp_path)))
    assert [i.message.split(" not found")[0] for i in exc.value.issues] == [
        "acd.blacklist.then.hangup: prompt 'blocked' (zh)"]


@pytest.mark.parametrize("name", ["hotel.yaml", "hospital.yaml", "bench-240.yaml"])
def test_the_shipped_sites_still_load(name: str) -> None:
    from appliance.config.loader import load_config

    cfg = load_config(Path(__file__).resolve().parent.parent.parent / "configs" / name, Prompts(None))
    assert cfg.queues and all(q.strategy == "longest_idle" and q.wrap_up_ms == 0 and q.overflows() == ()
                              and q.announce is None for q in cfg.queues.values())


def test_overflow_that_meets_without_coming_back_is_no_cycle() -> None:
    """front_desk -> concierge and front_desk -> lobby -> concierge: two ways to one queue, no cycle."""
    cfg = parse_config(EXAMPLE.replace("on_no_agents: {ivr: main}", "on_no_agents: {queue: lobby}").replace(
        "    strategy: round_robin\n", "    strategy: round_robin\n  lobby:\n    agents: ['1001']\n"
        "    max_callers: 5\n    on_full: {queue: concierge}\n"), "site.yaml")
    assert [t.ref() for _, t in cfg.queues["lobby"].overflows()] == ["queue:concierge"]


def test_a_queue_without_agents_is_refused_at_its_name(tmp_path: Path) -> None:
    text = EXAMPLE.replace("agents: ['1001', '1002'], ring_timeout_ms", "agents: [], ring_timeout_ms", 1)
    assert text != EXAMPLE
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml", Prompts(None))
    msgs = [i.message for i in exc.value.issues]
    assert any(m.startswith("queues.front_desk: a queue needs at least one agent") for m in msgs), msgs
