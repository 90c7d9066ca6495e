"""A site's timers: section reaches the line machines: the FXS inter-digit timeout a phone hears.

The default between two digits is 8 s (chan_dahdi's, shared/reference/line-signals.md); a site
sets 5 s with ``timers: {fxs: {inter_digit: 5000}}``. A phone goes off hook, dials '*' (a feature
code may follow) and waits: the congestion tone comes that long after the digit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cli
from appliance.world import PhoneScript
from tests import signals
from tests.e2e.harness import Site, decode, site_yaml

PHONE = 2          # phone1, after the two trunks


def tone_onset(line: bytearray, line_start: int, after: int, until: int) -> int | None:
    """The first tick in [after, until) whose 5 ms hold a tone above -40 dBm0, as the phone heard it."""
    for t in range(after, until, 5):
        x = decode(line[(t - line_start) * 8:(t - line_start + 5) * 8])
        if len(x) and signals.level_dbm0(x) > -40:
            return t
    return None


@pytest.mark.parametrize(("timers", "wait_ms"), [("", 8000), ("timers:\n  fxs: {inter_digit: 5000}\n", 5000)],
                         ids=["default", "site-5s"])
def test_inter_digit_timeout_heard_on_a_phone(tmp_path: Path, timers: str, wait_ms: int) -> None:
    phone = PhoneScript(port=PHONE, login_at_ms=None)
    site = Site(tmp_path, site_yaml(agents=1) + timers, [], [phone])
    try:
        assert site.world.far is not None and site.world.fm is not None
        site.world.far.hook(PHONE, True, at_tick=1000)
        site.run(2000)                                    # dial tone
        digit_at = site.engine.clock.now_ms               # the far side's next block starts the digit
        site.world.fm.dtmf_tx(PHONE, "*", 70, 80)
        site.run(12000)
    finally:
        site.close()
    assert phone.line_start is not None
    onset = tone_onset(phone.line, phone.line_start, digit_at + 200, digit_at + 11000)
    assert onset is not None, "no congestion tone after the digit"
    # The timer runs from the digit's key down (within the 70 ms tone) to the tone, within a period.
    assert wait_ms <= onset - digit_at <= wait_ms + 70 + site.engine.period_ms + 5
    x = decode(phone.line[(onset + 20 - phone.line_start) * 8:(onset + 320 - phone.line_start) * 8])
    assert abs(signals.frequency(x) - 450) < 5            # cn congestion: 450 Hz (line-signals.md)


def test_a_timer_applied_while_running_holds_for_the_next_dialling(tmp_path: Path) -> None:
    phone = PhoneScript(port=PHONE, login_at_ms=None)
    site = Site(tmp_path, site_yaml(agents=1), [], [phone])
    try:
        assert site.world.far is not None and site.world.fm is not None
        site.run(1000)
        doc = site_yaml(agents=1) + "timers:\n  fxs: {inter_digit: 5000}\n"
        assert site.request("config.apply", text=doc, filename="v2.yaml", author="t", base_version=1) == {
            "version": 2}
        site.world.far.hook(PHONE, True, at_tick=site.engine.clock.now_ms + 100)
        site.run(2000)
        digit_at = site.engine.clock.now_ms
        site.world.fm.dtmf_tx(PHONE, "*", 70, 80)
        site.run(12000)
    finally:
        site.close()
    assert phone.line_start is not None
    onset = tone_onset(phone.line, phone.line_start, digit_at + 200, digit_at + 11000)
    assert onset is not None, "no congestion tone after the digit"
    assert 5000 <= onset - digit_at <= 5000 + 70 + site.engine.period_ms + 5


def test_an_unknown_timer_is_refused_at_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = site_yaml(agents=1) + "timers:\n  fxs: {inter_digits: 5000}\n"
    path = tmp_path / "site.yaml"
    path.write_text(text)
    assert cli.main(["config", "check", str(path)]) == 2
    line = text.count("\n", 0, text.index("inter_digits")) + 1
    col = text.index("inter_digits") - text.rfind("\n", 0, text.index("inter_digits"))
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:{line}:{col}: timers.fxs.inter_digits: unknown timer (known: ")
