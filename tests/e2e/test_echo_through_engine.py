"""The trunk's echo canceller through the whole engine, in virtual time: a caller on an FXO trunk whose
line returns the agent's voice as echo (a test-side path: ERL 6 dB, one control period + 4 ms of flat
delay, a decaying 8 ms response). The agent speaks speech-shaped noise from the phone's far side; from
2 s after the answer on, what the agent hears of that echo is at least 30 dB lower with the trunk's
default 128 taps than with `echo_taps: 0`, the run otherwise the same; and the caller's DTMF is still
detected, the menu key over the greeting's echo and a key pressed while the agent talks."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.world import Caller, PhoneScript
from bench import echo_signals
from e1t1.analog.events import TrunkDigit
from tests.e2e.echo_line import EchoLine
from tests.e2e.harness import Site, decode, site_yaml
from tests.e2e.test_call import spandsp_digit

SEED = 13
SPEECH_S = 14            # the agent talks this long from the answer
FROM_MS, TO_MS = 2000, 10000     # the window measured, from the agent's answer
WINDOW_MS = 500
KEY_AT_MS = 11000        # the caller presses 5 this long after the agent's answer, the agent still talking


def test_the_echo_line_is_the_path_applied_period_by_period() -> None:
    path = echo_signals.echo_path(SEED)
    x = echo_signals.rin_speech(SEED, 1.0)
    line = EchoLine(path)
    got = np.concatenate([line.returns(x[i:i + 80]) for i in range(0, len(x), 80)])
    assert np.allclose(got, echo_signals.apply_path(x, path))
    assert echo_signals.erl_db(x, got) == pytest.approx(6.0, abs=1.0)


def call_with_echo(tmp: Path, echo_taps: int | None) -> dict[str, Any]:
    """One call whose trunk line returns the agent's voice: what the agent heard from its answer, the
    caller's digits the trunk reported (and when), the agent's answer tick."""
    speech = array("h", echo_signals.rin_speech(SEED, SPEECH_S).tobytes())
    caller = Caller(trunk=0, at_ms=1000, digits="1", press_after_ms=1500, hold_ms=KEY_AT_MS + 2000, talk_hz=0,
                    press_audio=spandsp_digit("1"))
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=2500, talk_audio=speech)
    site = Site(tmp, site_yaml(agents=1, echo_taps=echo_taps), [caller], [phone])
    site.world.far_lines[0] = EchoLine(echo_signals.echo_path(SEED, delay_ms=4.0, erl_db=6.0))
    digits: list[tuple[int, str]] = []
    calls = site.engine.call_layer
    heard_digit = calls.trunk_digit

    def trunk_digit(ev: TrunkDigit) -> None:
        digits.append((ev.tick, ev.digit))
        heard_digit(ev)

    calls.trunk_digit = trunk_digit           # type: ignore[method-assign]
    try:
        site.run(12000)
        assert phone.answered, "the agent's phone never answered"
        answered = phone.answered[0]
        site.run(answered + KEY_AT_MS - site.engine.clock.now_ms)
        during = site.engine.snapshot()["ports"]
        site.world.dial(0, "5")
        site.run(2500)
        assert phone.line_start is not None
        start = (answered - phone.line_start) * 8
        return {"heard": decode(phone.line[start:]), "digits": digits, "answered": answered,
                "caller": caller, "echo_during": [p["echo"] for p in during],
                "echo_after": [p["echo"] for p in site.engine.snapshot()["ports"]]}
    finally:
        site.close()


def window_levels(heard: Any) -> Any:
    n = WINDOW_MS * 8
    return np.array([echo_signals.level_dbm0(heard[a:a + n]) for a in range(FROM_MS * 8, TO_MS * 8, n)])


def test_the_agent_hears_the_trunks_echo_30_db_lower_with_the_canceller(tmp_path: Path) -> None:
    off = call_with_echo(tmp_path / "off", 0)
    on = call_with_echo(tmp_path / "on", None)         # the trunk's default: 128 taps
    assert off["answered"] == on["answered"]           # the same run but for the canceller
    # Without a canceller the agent hears its own voice back, about 6 dB (the ERL) under it.
    echo_off = window_levels(off["heard"])
    assert np.all(np.abs(echo_off - (echo_signals.RIN_DBM0 - 6.0)) < 2.0), echo_off
    echo_on = window_levels(on["heard"])
    assert np.all(echo_off - echo_on >= 30.0), (echo_off - echo_on).round(1)
    # The caller's keys: 1 at the menu (over the greeting's echo), 5 while the agent talks, in both runs.
    for run in (off, on):
        caller = run["caller"]
        assert caller.answered_ms is not None and caller.connected_ms is not None
        keys = [d for _, d in run["digits"]]
        assert keys == ["1", "5"], run["digits"]
        (t1, _), (t5, _) = run["digits"]
        assert 0 <= t1 - (caller.answered_ms + caller.press_after_ms) <= 100
        assert 0 <= t5 - (run["answered"] + KEY_AT_MS) <= 150


    # The measurement ran through the trunk's canceller (and none on the phone: 0 by default), off after.
    off_ = {"state": "off", "taps": 0}
    assert on["echo_during"] == [{"state": "on", "taps": 128}, off_, off_]
    assert off["echo_during"] == on["echo_after"] == off["echo_after"] == [off_, off_, off_]
