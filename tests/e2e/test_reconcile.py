"""Line levels against line machines: a hook or battery event the card lost is made up for within one
control period of the card's level saying so, and the user sees the call end (or start) as usual."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.world import Caller, PhoneScript
from drivers.base import LineLevel
from e1t1.analog.fxo import TrunkState
from e1t1.analog.fxs import PhoneState
from tests.e2e.harness import Site, site_yaml

PHONE = 2     # port of phone1 (after the two trunks)


def level(site: Site, chan: int) -> LineLevel:
    return LineLevel(site.engine.tier_.card.line_levels()[chan])


def phone_state(site: Site) -> PhoneState:
    return site.engine.phones[PHONE].state


def reconciled(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "reconciled" in r.getMessage()]


@pytest.fixture
def call(tmp_path: Path) -> Iterator[tuple[Site, Caller, PhoneScript]]:
    """A caller queued at 1 s; the agent answers 1 s after the ring starts and hangs up 5 s later."""
    caller = Caller(trunk=0, at_ms=1000, press_after_ms=500, hold_ms=60000)
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0, answer_after_ms=1000, hang_up_after_ms=5000)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone], keep_audio=False, enable_faults=True)
    yield site, caller, phone
    site.close()


def test_a_dropped_hook_on_is_reconciled_and_the_call_released(
        call: tuple[Site, Caller, PhoneScript], caplog: pytest.LogCaptureFixture) -> None:
    site, caller, _ = call
    caplog.set_level(logging.WARNING)
    eng = site.engine
    while phone_state(site) is not PhoneState.CONNECTED:
        site.run(eng.period_ms)
        assert eng.clock.now_ms < 20000, "the agent never answered"
    assert reconciled(caplog) == []                     # a healthy call needs no reconciling
    assert site.request("fault.drop_event", chan=PHONE, type="hook_on") == {"chan": PHONE, "type": "hook_on"}
    # The agent hangs up; the card's HOOK_ON (1250 ms later, past the flash window) is lost.
    while LineLevel.HOOK_OFF in level(site, PHONE):
        site.run(eng.period_ms)
        assert eng.clock.now_ms < 40000, "the card never saw the phone on hook"
    # Within the period in which the level went on hook, the engine has the phone on hook.
    assert phone_state(site) is PhoneState.IDLE
    assert eng.calls == {}
    assert eng.acd.agents["1001"].state.value == "ready"
    assert reconciled(caplog) == ["phone(phone1): the card says on hook, the line was CONNECTED: "
                                               "HOOK_ON reconciled"]
    snap = eng.snapshot()
    assert [p["state"] for p in snap["ports"] if p["name"] == "phone1"] == ["idle"]
    assert snap["agents"][0]["state"] == "ready" and snap["calls"] == []
    site.run(100)
    assert caller.hung_up_ms is not None                # the trunk was released: the caller heard it
    assert eng.trunks[0].state is TrunkState.IDLE


def test_a_dropped_hook_off_while_ringing_answers_the_call(
        call: tuple[Site, Caller, PhoneScript], caplog: pytest.LogCaptureFixture) -> None:
    site, _, _ = call
    caplog.set_level(logging.WARNING)
    eng = site.engine
    while phone_state(site) is not PhoneState.RINGING:
        site.run(eng.period_ms)
        assert eng.clock.now_ms < 20000, "the agent's phone never rang"
    site.request("fault.drop_event", chan=PHONE, type="hook_off")
    while LineLevel.HOOK_OFF not in level(site, PHONE):
        site.run(eng.period_ms)
        assert eng.clock.now_ms < 20000, "the agent never picked up"
    assert phone_state(site) is PhoneState.CONNECTED
    assert eng.acd.agents["1001"].state.value == "on_call"
    assert [c.state.name for c in eng.calls.values()] == ["CONNECTED"]
    assert len(reconciled(caplog)) == 1


def test_a_dropped_battery_loss_ends_the_call(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    caller = Caller(trunk=0, at_ms=1000, press_after_ms=500, hold_ms=4000)     # hangs up by a battery drop
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0, answer_after_ms=1000)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone], keep_audio=False, enable_faults=True)
    try:
        eng = site.engine
        while caller.connected_ms is None:
            site.run(eng.period_ms)
            assert eng.clock.now_ms < 20000, "the call never connected"
        site.request("fault.drop_event", chan=0, type="battery")
        while LineLevel.BATTERY in level(site, 0):
            site.run(eng.period_ms)
            assert eng.clock.now_ms < 30000, "the exchange never dropped battery"
        assert eng.trunks[0].state is TrunkState.IDLE
        assert eng.calls == {}
        assert phone_state(site) is PhoneState.OPEN_LOOP     # the agent is told the caller went
        assert reconciled(caplog) == ["trunk(trunk1): the card's line has no battery but the call is up: "
                                      "BATTERY 0 reconciled"]
    finally:
        site.close()


def test_with_the_media_thread_a_disagreement_must_last_two_periods(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Realtime: the event may be in flight when the level is read, so one look is not enough."""
    site = Site(tmp_path, site_yaml(agents=1), [], [PhoneScript(port=PHONE, login_at_ms=None)], keep_audio=False)
    try:
        eng = site.engine
        site.run(100)
        off = bytes([LineLevel.BATTERY, LineLevel.BATTERY, LineLevel.BATTERY | LineLevel.HOOK_OFF])
        monkeypatch.setattr(eng.tier_, "line_levels", lambda: off)
        monkeypatch.setattr(eng, "stepped", False)
        eng._reconcile(set())
        assert phone_state(site) is PhoneState.IDLE          # first look: maybe its HOOK_OFF is on its way
        eng._reconcile({PHONE})
        assert phone_state(site) is PhoneState.IDLE          # its event came: the suspicion is gone
        eng._reconcile(set())
        assert phone_state(site) is PhoneState.IDLE
        eng._reconcile(set())
        assert phone_state(site) is PhoneState.DIALTONE      # two looks in a row: reconciled
    finally:
        site.close()
