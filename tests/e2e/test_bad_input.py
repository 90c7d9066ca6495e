"""Bad input from phones and installers gets exact, harmless outcomes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from appliance.control import ControlClient, ControlError
from appliance.world import Caller, PhoneScript
from drivers.hal import EventType
from e1t1.analog.fxs import PhoneState
from tests import signals
from tests.e2e.harness import Site, decode, site_yaml


def tone_at(line: bytearray, start_tick: int, t: int, ms: int = 300) -> tuple[float, float]:
    x = decode(line[(t - start_tick) * 8:(t - start_tick + ms) * 8])
    return signals.frequency(x), signals.level_dbm0(x)


def test_unknown_feature_code_flash_and_late_digits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0)
    site = Site(tmp_path, site_yaml(agents=1), [], [phone])
    eng = site.engine
    far = site.world.card
    assert far is not None and site.world.fm is not None
    try:
        site.run(4000)                                   # agent 1001 logged in: ready
        before = eng.acd.agents["1001"].state
        # Off hook, dial *99#: an unknown feature code.
        far.far.hook(2, True, at_tick=5000)
        site.run(1500)
        site.world.fm.dtmf_tx(2, "*99#", 70, 80)
        site.run(1000)
        dialled_end = 5000 + 1500 + 4 * 150
        ph = eng.phones[2]
        states = [ph.state]
        t_cong = next(t for t, _, _, to in reversed(ph.transitions) if to == "ANNOUNCE")
        assert t_cong - dialled_end <= eng.period_ms + 60       # congestion within one control period of '#'
        f, lvl = tone_at(site.world.phones[2].line, site.world.phones[2].line_start or 0, t_cong + 50)
        assert abs(f - 450) < 5 and abs(lvl + 10) < 1.5          # cn congestion
        assert eng.acd.agents["1001"].state == before            # agent state unchanged
        # A flash on the off-hook idle line: dial tone again.
        far.far.hook(2, False, at_tick=eng.clock.now_ms + 10)
        far.far.hook(2, True, at_tick=eng.clock.now_ms + 410)
        site.run(1000)
        states.append(ph.state)
        assert states == [PhoneState.ANNOUNCE, PhoneState.DIALTONE]
        f, lvl = tone_at(site.world.phones[2].line, site.world.phones[2].line_start or 0, eng.clock.now_ms - 400)
        assert abs(f - 450) < 5
        # Hang up; DTMF sent after hang-up is discarded.
        far.far.hook(2, False, at_tick=eng.clock.now_ms + 10)
        site.run(2000)
        states.append(ph.state)
        site.world.fm.dtmf_tx(2, "*23#", 70, 80)
        site.run(1500)
        states.append(ph.state)
        assert states[2:] == [PhoneState.IDLE, PhoneState.IDLE] and ph.digits == ""
        assert eng.acd.agents["1001"].state == before
    finally:
        site.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_next_call_completes_after_bad_input(tmp_path: Path) -> None:
    caller = Caller(trunk=0, at_ms=8000, press_after_ms=1000, hold_ms=3000)
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=1500)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone], keep_audio=False)
    try:
        assert site.world.card is not None
        site.world.card.far.signal(0, EventType.POLARITY, 1, at_tick=100)   # stray reversal on an idle trunk
        site.run(40000)
    finally:
        site.close()
    assert caller.connected_ms is not None and caller.hung_up_ms is not None


def test_bad_config_apply_keeps_the_running_config(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        site.run(100)
        with ControlClient(tmp_path / "control.sock") as c:
            bad = site_yaml(agents=1).replace("queue: front_desk", "queue: frontdesk")
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
        assert errors and "unknown queue 'frontdesk'" in errors[0].issues[0]["message"]
        assert errors[0].issues[0]["file"] == "bad.yaml"
        assert site.engine.config_version == 1
    finally:
        site.close()
