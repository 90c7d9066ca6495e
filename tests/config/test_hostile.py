"""Hostile and surprising documents: alias bombs, recursive aliases and deep nesting are refused at
FILE:LINE:COL in milliseconds and bounded memory (`config check` and `config.apply`), a missing prompt
fails `config check`, and a YAML 1.1 octal gets a hint to quote it."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from appliance import cli
from appliance.config.loader import NODE_BUDGET, main_check, parse_config
from appliance.control import ControlClient, ControlError
from appliance.errors import ConfigError
from tests.e2e.harness import Site, site_yaml

ROOT = Path(__file__).resolve().parent.parent.parent
PEAK_LIMIT = 50 << 20


def alias_bomb(levels: int, width: int, size: int) -> str:
    """The classic nested alias bomb: a: &a [lol, ...], b: &b [*a, *a, ...], ...; `size` octets."""
    names = "abcdefghijklmnop"
    lines = [f"a: &a [{','.join(['lol'] * width)}]"]
    lines += [f"{n}: &{n} [{','.join([f'*{p}'] * width)}]" for p, n in itertools.pairwise(names[:levels])]
    text = "\n".join(lines) + "\n"
    assert len(text) <= size and width ** levels > NODE_BUDGET
    return text + "#" * (size - len(text))


BOMBS = {
    "201-byte bomb": alias_bomb(6, 8, 201),         # 8^6 = 262 144 lols
    "236-byte bomb": alias_bomb(10, 5, 236),        # 5^10 = 9 765 625 lols
    "recursive alias": "site: &s {name: Hotel, again: *s}\n",
}


def test_the_bombs_are_the_sizes_they_claim() -> None:
    assert [len(BOMBS[k].encode()) for k in ("201-byte bomb", "236-byte bomb")] == [201, 236]


def check_bomb(text: str, issue_line: int, issue_col: int, message: str) -> None:
    """The issue stands at an alias of the document and says the node budget tripped."""
    assert "node budget" in message
    assert text.splitlines()[issue_line - 1][issue_col - 1] == "*"     # at the alias that tripped it


@pytest.mark.parametrize("kind", list(BOMBS))
def test_config_check_refuses_alias_bombs_fast_and_small(kind: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(BOMBS[kind])
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        rc = cli.main(["config", "check", str(path)])
        took = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    print(f"{kind}: config check refused it in {1000 * took:.1f} ms, traced peak {peak / 1e6:.2f} MB")
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(f"{path}:")
    _, line, col, message = err.strip().split(":", 3)
    check_bomb(BOMBS[kind], int(line), int(col), message)
    assert peak < PEAK_LIMIT
    assert took < 1.0


def test_the_recursive_alias_message() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(BOMBS["recursive alias"], "site.yaml")
    assert str(exc.value) == (f"site.yaml:1:31: recursive alias '*s' (inside the node it names): its expansion "
                              f"never ends, past the node budget of {NODE_BUDGET} nodes")


def test_deep_nesting_is_refused_where_it_passes_the_limit() -> None:
    text = "site: " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml")
    # the document mapping is level 1: the 64th bracket (column 6 + 64) is level 65
    assert str(exc.value) == f"site.yaml:1:{6 + 64}: nested deeper than 64 levels"
    # an alias that would nest a shallow-looking document too deep
    deep = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    with pytest.raises(ConfigError, match=r"site.yaml:2:34: alias '\*a' nests the document deeper than 64"):
        parse_config(deep, "site.yaml")


def test_aliases_within_the_budget_still_work() -> None:
    text = site_yaml(agents=1).replace("{trunk: trunk1, ivr: main}", "{trunk: trunk1, ivr: &m main}") \
        .replace("{trunk: trunk2, ivr: main}", "{trunk: trunk2, ivr: *m}")
    assert "*m" in text
    assert [r.ivr for r in parse_config(text, "site.yaml").routes] == ["main", "main"]


@pytest.mark.parametrize("kind", list(BOMBS))
def test_config_apply_refuses_alias_bombs_while_status_is_answered(kind: str, tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    eng = site.engine
    sock = tmp_path / "control.sock"
    try:
        site.run(100)
        errors: list[ControlError] = []
        waits: list[int] = []

        def apply() -> None:
            with ControlClient(sock, timeout_s=60) as c:
                try:
                    c.request("config.apply", text=BOMBS[kind], filename="bomb.yaml", author="t", base_version=1)
                except ControlError as exc:
                    errors.append(exc)

        applier = threading.Thread(target=apply)

        def keep_asking() -> None:
            with ControlClient(sock, timeout_s=60) as c:
                while applier.is_alive() or not waits:
                    sent_ms = eng.clock.now_ms
                    waits.append(c.request("status")["tick_ms"] - sent_ms)

        asker = threading.Thread(target=keep_asking)
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            applier.start()
            asker.start()
            periods = 0
            while applier.is_alive() or asker.is_alive():
                site.run(eng.period_ms)
                periods += 1
                assert periods < 3000
            took = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        (err,) = errors
        (issue,) = err.issues
        print(f"{kind}: config.apply refused it after {periods} periods, {1000 * took:.1f} ms, traced peak "
              f"{peak / 1e6:.2f} MB; {len(waits)} status answered meanwhile, the longest wait "
              f"{max(waits) // eng.period_ms} periods")
        assert issue["file"] == "bomb.yaml"
        check_bomb(BOMBS[kind], issue["line"], issue["col"], issue["message"])
        assert peak < PEAK_LIMIT
        assert max(waits) // eng.period_ms <= 10
        assert eng.config_version == 1
    finally:
        site.close()


def test_a_missing_prompt_fails_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)                      # no ./state here
    monkeypatch.delenv("CICBOX_STATE_DIR", raising=False)
    # ... and no /var/lib/cicbox either, whatever the machine has there (a box that ran the
    # appliance has one, and its prompts would be searched too).
    monkeypatch.setattr(cli, "DEFAULT_STATE_DIR", tmp_path / "absent")
    text = site_yaml(agents=1, greeting="lobby_night")
    path = tmp_path / "site.yaml"
    path.write_text(text)
    (line,) = [n for n, t in enumerate(text.splitlines(), 1) if "greeting: lobby_night" in t]
    col = text.splitlines()[line - 1].index("lobby_night") + 1
    assert cli.main(["config", "check", str(path)]) == 2
    shipped = ROOT / "configs" / "prompts"
    assert capsys.readouterr().err == (f"{path}:{line}:{col}: ivrs.main.greeting: prompt 'lobby_night' (en) "
                                       f"not found in {shipped}\n")
    # The site's own prompt, in the state directory given: found.
    state = tmp_path / "st"
    (state / "prompts" / "en").mkdir(parents=True)
    assert cli.main(["config", "check", str(path), "--state-dir", str(state)]) == 2
    assert f"not found in {state / 'prompts'} or {shipped}" in capsys.readouterr().err
    shutil.copy(shipped / "en" / "welcome.wav", state / "prompts" / "en" / "lobby_night.wav")
    assert cli.main(["config", "check", str(path), "--state-dir", str(state)]) == 0
    # Without --state-dir: the rule's directory, when it exists ($CICBOX_STATE_DIR here).
    capsys.readouterr()
    assert cli.main(["config", "check", str(path)]) == 2
    monkeypatch.setenv("CICBOX_STATE_DIR", str(state))
    assert cli.main(["config", "check", str(path)]) == 0
    assert "ok (" in capsys.readouterr().out


@pytest.mark.parametrize(("field", "raw", "value"), [("extension", "0755", 493), ("number", "0644", 420)])
def test_an_octal_number_gets_a_hint_to_quote_it(field: str, raw: str, value: int) -> None:
    text = site_yaml(agents=1)
    if field == "extension":
        text = text.replace("extension: '8001'", f"extension: {raw}")
    else:
        text = text.replace("number: '075588880001'", f"number: {raw}")
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml")
    (issue,) = exc.value.issues
    assert issue.message.endswith(f"must be text, got {value} (YAML reads {raw} as the octal number {value}: "
                                  f"write '{raw}' in quotes)")
    # a plain number that is not octal gets no such hint
    with pytest.raises(ConfigError) as plain:
        parse_config(text.replace(raw, "755"), "site.yaml")
    assert "octal" not in str(plain.value)



def test_a_control_character_is_refused_at_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "site.yaml"
    path.write_text('site:\n  name: "a\x01b"\n')
    assert main_check(path) == 2
    assert capsys.readouterr().err.startswith(f"{path}:2:11: character U+0001 is not allowed")
