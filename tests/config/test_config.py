"""Site configuration: every kind of mistake at its FILE:LINE:COL, exit 2; versions stored, switched, rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config.loader import main_check, parse_config
from appliance.config.store import ConfigStore
from appliance.errors import ApplyError, ConfigError
from tests.e2e.harness import site_yaml

GOOD = site_yaml(agents=1)


def line_col(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


CASES = [
    ("yaml syntax", GOOD.replace("ivrs:\n", "ivrs: [\n"), None, "YAML syntax"),
    ("tab", GOOD.replace("  name: Test Hotel", "\tname: Test Hotel"), "\tname",
     "tab character in indentation; use spaces"),
    ("duplicate key", GOOD.replace("  k: 4", "  k: 4\n  k: 5"), "k: 5", "duplicate key 'k' (first at line 8)"),
    ("unknown key", GOOD.replace("  k: 4", "  k: 4\n  colour: red"), "colour", "card.colour: unknown key"),
    ("wrong type", GOOD.replace("k: 4", "k: four"), "four", "card.k: must be an integer, got 'four'"),
    ("out of range", GOOD.replace("answer_on_ring: 2}", "answer_on_ring: 12}", 1), "12}",
     "ports.0.answer_on_ring: must be at most 10, got 12"),
    ("bad zone", GOOD.replace("zone: cn", "zone: xx"), "xx", "site.zone: must be one of 'cn', 'us' or 'de', got 'xx'"),
    ("ivr to unknown queue", GOOD.replace("queue: front_desk", "queue: frontdesk"), "frontdesk",
     "ivrs.main.menu.1.queue: unknown queue 'frontdesk' (known: front_desk)"),
    ("route to unknown ivr", GOOD.replace("{trunk: trunk1, ivr: main}", "{trunk: trunk1, ivr: mian}"), "mian",
     "routes.0.ivr: unknown ivr 'mian' (known: main)"),
    ("queue to unknown agent", GOOD.replace("agents: ['1001']", "agents: ['1001', '1099']"), "'1099'",
     "queues.front_desk.agents.1: unknown agent '1099' (known: 1001)"),
    ("agent on a trunk", GOOD.replace("phone: phone1}", "phone: trunk1}"), "trunk1}",
     "agents.0.phone: 'trunk1' is an FXO trunk; an agent's phone is an FXS port"),
    # timers: one mapping per protocol, integer ms, names and ranges from each protocol's timer table
    ("unknown timer", GOOD + "timers:\n  fxs: {inter_digt: 5000}\n", "inter_digt",
     "timers.fxs.inter_digt: unknown timer (known: first_digit, inter_digit, after_match, open_loop, "
     "feature_done, cid_delay)"),
    ("timer of another protocol", GOOD + "timers:\n  fxo: {ring_gap: 9000, inter_digit: 5000}\n", "inter_digit",
     "timers.fxo.inter_digit: unknown timer (known: ring_gap, polarity_guard, cid_digit_gap, cid_before_ring)"),
    ("unknown protocol", GOOD + "timers:\n  fxs: {inter_digit: 5000}\n  r2: {T1: 4000}\n", "r2",
     "timers.r2: unknown protocol (known: fxo, fxs, q921, q931)"),
    ("timer not an integer", GOOD + "timers:\n  fxs: {inter_digit: 5000.5}\n", "5000.5",
     "timers.fxs.inter_digit: must be an integer, got 5000.5"),
    ("timer as text", GOOD + "timers:\n  fxs: {inter_digit: '5000'}\n", "'5000'",
     "timers.fxs.inter_digit: must be an integer, got '5000'"),
    ("timer below its range", GOOD + "timers:\n  fxs: {inter_digit: 999}\n", "999",
     "timers.fxs.inter_digit: must be at least 1000 ms, got 999"),
    ("timer above its range", GOOD + "timers:\n  fxo: {ring_gap: 30001}\n", "30001",
     "timers.fxo.ring_gap: must be at most 30000 ms, got 30001"),
    ("timers not a mapping", GOOD + "timers:\n  fxs: 4321\n", "4321", "timers.fxs: must be a mapping, got 4321"),
]


@pytest.mark.parametrize(("kind", "text", "needle", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_error_kind_at_its_place(kind: str, text: str, needle: str | None, message: str, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml")
    issue = exc.value.issues[0]
    if needle is not None:
        line, col = line_col(text, needle if kind != "agent on a trunk" else "phone: trunk1")
        col = col + (len("phone: ") if kind == "agent on a trunk" else 0)
        assert (issue.line, issue.col) == (line, col)
        assert issue.message == message
    else:
        assert issue.message.startswith(message)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    assert main_check(path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:{issue.line}:{issue.col}: ")


def test_site_timers_are_read_in_ms() -> None:
    cfg = parse_config(GOOD + "timers:\n  fxs: {inter_digit: 5000, first_digit: 1000}\n  fxo: {ring_gap: 30000}\n",
                       "site.yaml")
    assert cfg.timers == {"fxs": {"inter_digit": 5000, "first_digit": 1000}, "fxo": {"ring_gap": 30000}}
    assert parse_config(GOOD, "site.yaml").timers == {}


def test_all_cross_reference_errors_reported_together() -> None:
    text = GOOD.replace("queue: front_desk", "queue: frontdesk").replace("ivr: main}", "ivr: mian}")
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml")
    assert len(exc.value.issues) == 3          # two routes and the menu
    assert str(exc.value).count("site.yaml:") == 3


def test_store_versions_switch_and_rollback(tmp_path: Path) -> None:
    store = ConfigStore(tmp_path)
    seen: list[int] = []
    assert store.apply(GOOD, "v1.yaml", "a", None, lambda cfg, v: seen.append(v), 0) == 1
    two = GOOD.replace("Test Hotel", "Hotel Two")
    assert store.apply(two, "v2.yaml", "b", 1, lambda cfg, v: seen.append(v), 5) == 2
    with pytest.raises(ApplyError, match="based on version 1; version 2 is current"):
        store.apply(GOOD, "v3.yaml", "c", 1, lambda cfg, v: seen.append(v), 6)

    def fails(cfg: object, v: int) -> None:
        raise RuntimeError("prompt missing")

    with pytest.raises(ApplyError, match="version 3 could not be put in force, version 2 stays: prompt missing"):
        store.apply(GOOD, "v3.yaml", "c", 2, fails, 7)
    with pytest.raises(ConfigError):
        store.apply("site: [", "bad.yaml", "d", 2, lambda cfg, v: None, 8)
    again = ConfigStore(tmp_path)                          # survives reopening
    cur = again.current()
    assert cur is not None and cur.version == 2 and cur.config.site.name == "Hotel Two"
    assert [(h.version, h.status.split(":")[0]) for h in again.history()] == [
        (1, "superseded"), (2, "in force"), (3, "failed")]
    assert (tmp_path / "config" / "0003.yaml").exists()    # nothing stored is lost
    assert seen == [1, 2]
    (tmp_path / "config" / ".current.tmp").write_text("99\n")   # a crash mid-write leaves a temp file
    cur = ConfigStore(tmp_path).current()
    assert cur is not None and cur.version == 2


def test_a_version_that_needs_a_restart_is_put_in_force_at_the_next_start(tmp_path: Path) -> None:
    from appliance.errors import RestartNeededError

    store = ConfigStore(tmp_path)
    store.apply(GOOD, "v1.yaml", "a", None, lambda cfg, v: None, 0)
    p = store.prepare(GOOD.replace("Test Hotel", "Hotel Two"), "v2.yaml", "b", 1, 5)
    store.defer(p, str(RestartNeededError("ports changed")))
    assert store.current() is not None and store.current().version == 1      # type: ignore[union-attr]
    assert [h.status for h in store.history()][1].startswith("waiting for a restart")
    again = ConfigStore(tmp_path)                                            # the next start
    assert again.take_next() == 2
    cur = again.current()
    assert cur is not None and cur.version == 2 and cur.config.site.name == "Hotel Two"
    assert again.take_next() is None
    # superseded: an apply based on the version in force before the restart drops the waiting one
    p = again.prepare(GOOD, "v3.yaml", "c", 2, 6)
    again.defer(p, "ports changed")
    again.apply(GOOD.replace("Test Hotel", "Hotel Four"), "v4.yaml", "d", 2, lambda cfg, v: None, 7)
    assert ConfigStore(tmp_path).take_next() is None
    assert ConfigStore(tmp_path).current().version == 4                      # type: ignore[union-attr]
    assert [h.status for h in again.history()][2] == "superseded before a restart"
