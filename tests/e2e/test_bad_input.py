"""Bad input from phones and installers gets exact, harmless outcomes."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from appliance import cli
from appliance.control import ControlClient, ControlError
from appliance.world import Caller, PhoneScript
from drivers.hal import EventType
from e1t1.analog.fxs import PhoneState
from tests import signals
from tests.e2e.harness import Site, cdrs, decode, site_yaml
from tests.e2e.test_call import assert_cdr

PHONE = 2          # phone1 in site_yaml: two trunks, then the phones
DETECT_MS = 60     # a key-down is reported within two detector blocks of the tone's start (tests/dsp)


def tone_at(line: bytearray, start_tick: int, t: int, ms: int = 300) -> tuple[float, float]:
    x = decode(line[(t - start_tick) * 8:(t - start_tick + ms) * 8])
    return signals.frequency(x), signals.level_dbm0(x)


def bursts_ms(sent: bytearray, after_ms: int, before_ms: int) -> list[tuple[int, int]]:
    """The [start, end) ticks of each burst (1 ms above -40 dBm0) the far side sent in [after_ms, before_ms)."""
    x = decode(sent[after_ms * 8:before_ms * 8]).reshape(-1, 8)
    loud = np.sqrt(np.mean(x ** 2, axis=1)) * np.sqrt(2) > 32768 * 10 ** ((-40 - 3.14) / 20)
    edges = np.nonzero(np.diff(np.concatenate([[0], loud.astype(np.int8), [0]])))[0]
    return [(after_ms + int(a), after_ms + int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def agent_state_rows(state: Path) -> list[tuple[str, str]]:
    con = sqlite3.connect(state / "cicbox.db")
    rows = con.execute("SELECT agent, json_extract(detail, '$.state') || ': ' || json_extract(detail, '$.why') "
                       "FROM event WHERE kind = 'agent_state' ORDER BY id").fetchall()
    con.close()
    return [(str(a), str(d)) for a, d in rows]


def test_unknown_feature_code_flash_and_late_digits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0)
    site = Site(tmp_path, site_yaml(agents=1), [], [phone])
    eng = site.engine
    far = site.world.far
    assert far is not None
    try:
        site.run(4000)                                   # agent 1001 logged in: ready
        assert eng.acd.agents["1001"].state.value == "ready"
        # Off hook, dial *99#: an unknown feature code.
        far.hook(PHONE, True, at_tick=5000)
        site.run(1500)
        dial_at = eng.clock.now_ms
        site.world.dial(PHONE, "*99#")                   # spandsp's DTMF
        site.run(1000)
        keys = bursts_ms(site.world.sent[PHONE], dial_at, dial_at + 1000)
        assert len(keys) == 4                            # the four keys the far side sent
        ph = eng.phones[PHONE]
        states = [ph.state]
        # No feature code begins *9: congestion once the second key goes down (digits act on key-down);
        # the rest comes too late to matter.
        t_cong = next(t for t, _, _, to in reversed(ph.transitions) if to == "ANNOUNCE")
        assert 0 <= t_cong - keys[1][0] <= DETECT_MS + eng.period_ms
        site.run(1000)
        line, start = site.world.phones[PHONE].line, site.world.phones[PHONE].line_start or 0
        # cn congestion [line-signals.md]: 450 Hz at -10 dBm0, 700 ms on, 700 ms off
        f, lvl = tone_at(line, start, t_cong + 60, 600)
        assert abs(f - 450) < 5 and abs(lvl + 10) < 1.5
        assert tone_at(line, start, t_cong + 780, 570)[1] < -50
        assert eng.acd.agents["1001"].state.value == "ready"          # agent state unchanged
        # A flash (400 ms on hook, inside the 100-1250 ms window) on the announcing line: dial tone again.
        far.hook(PHONE, False, at_tick=eng.clock.now_ms + 10)
        far.hook(PHONE, True, at_tick=eng.clock.now_ms + 410)
        site.run(1000)
        states.append(ph.state)
        assert states == [PhoneState.ANNOUNCE, PhoneState.DIALTONE]
        f, lvl = tone_at(line, start, eng.clock.now_ms - 400)
        assert abs(f - 450) < 5 and abs(lvl + 10) < 1.5             # cn dial tone, continuous
        # Hang up; "not ready" (*24#) sent after hang-up is discarded.
        far.hook(PHONE, False, at_tick=eng.clock.now_ms + 10)
        site.run(2000)
        states.append(ph.state)
        site.world.dial(PHONE, "*24#")
        site.run(1500)
        states.append(ph.state)
        assert states[2:] == [PhoneState.IDLE, PhoneState.IDLE] and ph.digits == ""
        assert eng.acd.agents["1001"].state.value == "ready"
    finally:
        site.close()
    assert agent_state_rows(tmp_path) == [("1001", "ready: login")]   # nothing but the login was recorded
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_next_call_completes_after_bad_input(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caller = Caller(trunk=0, at_ms=8000, press_after_ms=1000, hold_ms=3000)
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0, answer_after_ms=1500)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone], keep_audio=False)
    try:
        assert site.world.far is not None
        site.world.far.signal(0, EventType.POLARITY, 1, at_tick=100)   # stray reversal on an idle trunk
        site.run(40000)
    finally:
        site.close()
    # The stray reversal started no call; the next call is stored exactly.
    (cdr,) = cdrs(tmp_path)
    assert_cdr(cdr, caller, phone, ani="13800138000", dnis="075588880001", trunk="trunk1", agent="1001")
    assert (cdr["answer_ms"], cdr["end_ms"], cdr["talk_ms"]) == (phone.answered[0], caller.hung_up_ms, 3000)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


BAD_QUEUE = "ivrs.main.menu.1.queue: unknown queue 'frontdesk' (known: front_desk)"


def test_bad_config_apply_keeps_the_running_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    bad = site_yaml(agents=1).replace("queue: front_desk", "queue: frontdesk")
    # where the unknown name stands in the document: its line, and the column of the value
    (line,) = [n for n, text in enumerate(bad.splitlines(), 1) if "frontdesk" in text]
    col = bad.splitlines()[line - 1].index("frontdesk") + 1
    try:
        site.run(100)
        with ControlClient(tmp_path / "control.sock") as c:
            errors: list[ControlError] = []

            def apply() -> None:
                try:
                    c.request("config.apply", text=bad, filename="bad.yaml", author="t", base_version=1)
                except ControlError as exc:
                    errors.append(exc)

            t = threading.Thread(target=apply)
            t.start()
            while t.is_alive():
                site.run(site.engine.period_ms)
            t.join()
        (err,) = errors
        assert str(err) == "configuration has 1 problem(s)"
        assert err.issues == [{"file": "bad.yaml", "line": line, "col": col, "message": BAD_QUEUE}]
        assert site.engine.config_version == 1
        # The installer's command: the same problem as FILE:LINE:COL, exit code 2, nothing applied.
        path = tmp_path / "bad.yaml"
        path.write_text(bad)
        capsys.readouterr()
        with site.serving():
            assert cli.main(["config", "apply", str(path), "--base", "1", "--state-dir", str(tmp_path)]) == 2
        out, errout = capsys.readouterr()
        assert (out, errout) == ("", f"{path}:{line}:{col}: {BAD_QUEUE}\n")
        assert site.engine.config_version == 1
        current = site.store.current()
        assert current is not None and current.version == 1
    finally:
        site.close()
