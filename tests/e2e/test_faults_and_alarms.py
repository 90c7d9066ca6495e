"""Fault commands only with --enable-faults; alarms in the snapshot and in `cicbox status`, raised when
something is lost and cleared after the documented quiet time (engine clock)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from appliance import alarms, cli
from appliance.control import ControlError
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml
from tests.storage.test_spool import DiskFault

REFUSAL = "fault commands are disabled: start the engine with --enable-faults"


def test_fault_commands_are_refused_without_enable_faults(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        site.run(100)
        for cmd, args in (("fault.freeze_media", {"on": True}), ("fault.drop_event", {"chan": 2, "type": "hook_on"}),
                          ("fault.not_yet_written", {})):
            with pytest.raises(ControlError) as exc:
                site.request(cmd, **args)
            assert str(exc.value) == REFUSAL
        ticks = site.engine.tier_.sched.stats()["ticks"]
        site.run(100)
        assert site.engine.tier_.sched.stats()["ticks"] > ticks      # not frozen
        assert site.request("status")["tick_ms"] == site.engine.clock.now_ms
    finally:
        site.close()


@pytest.mark.parametrize("args", [{}, {"on": "false"}, {"on": 0}, {"on": None}])
def test_freeze_media_takes_only_true_or_false(tmp_path: Path, args: dict[str, object]) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False, enable_faults=True)
    try:
        site.run(100)
        with pytest.raises(ControlError, match="on must be true or false"):
            site.request("fault.freeze_media", **args)
        ticks = site.engine.tier_.sched.stats()["ticks"]
        site.run(100)
        assert site.engine.tier_.sched.stats()["ticks"] > ticks      # not frozen
    finally:
        site.close()


def test_fault_commands_work_with_enable_faults(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False, enable_faults=True)
    try:
        site.run(100)
        assert site.request("fault.freeze_media", on=True) == {"frozen": True}
        ticks = site.engine.tier_.sched.stats()["ticks"]
        site.run(100)
        assert site.engine.tier_.sched.stats()["ticks"] == ticks
        with pytest.raises(ControlError, match=r"type must be one of hook_off, hook_on, .* not 'dtmf'"):
            site.request("fault.drop_event", chan=2, type="dtmf")
        with pytest.raises(ControlError, match=r"chan must be a channel number 0-2, not 9"):
            site.request("fault.drop_event", chan=9, type="hook_on")
    finally:
        site.close()


def test_run_takes_enable_faults_and_demo_passes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["run", "--enable-faults"]).enable_faults is True
    assert parser.parse_args(["run"]).enable_faults is False
    seen: list[bool] = []

    def serve(engine: Any, duration_ms: int | None, stop: Any = None, alive: Any = None) -> None:
        seen.append(engine.control.enable_faults)

    monkeypatch.setattr(cli, "_serve", serve)
    for argv in (["run", "--clock", "virtual"], ["run", "--clock", "virtual", "--enable-faults"],
                 ["demo", "--clock", "virtual", "--duration", "1", "--json"]):
        args = parser.parse_args([*argv, "--state-dir", str(tmp_path)])
        assert isinstance(args, argparse.Namespace)
        assert args.func(args) == 0
    assert seen == [False, True, True]


def status_text(site: Site, capsys: pytest.CaptureFixture[str]) -> str:
    with site.serving():
        assert cli.main(["status", "--state-dir", str(site.state)]) == 0
    return capsys.readouterr().out


def test_dropped_events_raise_an_alarm_that_clears_after_the_quiet_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The smallest event ring (1024 octets) holds 32 events of 32 octets. Two more agents than that
    # log in at the same moment: 34 HOOK_OFFs in one period.
    ring_min, per_event = 1024, 8 + 24
    fit = ring_min // per_event
    agents = fit + 2
    phones = [PhoneScript(port=2 + a, agent=str(1001 + a), login_at_ms=0) for a in range(agents)]
    site = Site(tmp_path, site_yaml(agents=agents), [], phones, keep_audio=False, event_ring_octets=ring_min)
    try:
        eng = site.engine
        assert eng.snapshot()["alarms"] == []
        assert eng.snapshot()["counters"]["events_dropped"] == 0
        site.run(eng.period_ms)
        snap = eng.snapshot()
        (alarm,) = snap["alarms"]
        assert set(alarm) == {"kind", "since_ms", "detail"}
        assert alarm["kind"] == "events_dropped" and alarm["since_ms"] == eng.period_ms
        assert "media events lost: the event ring was full" in alarm["detail"]
        assert snap["counters"]["events_dropped"] >= 1
        # Every lost event is counted, by kind: 34 phones went off hook, 32 fit.
        assert snap["counters"]["events_dropped.HOOK_OFF"] == snap["counters"]["events_dropped"] == agents - fit
        out = status_text(site, capsys)
        assert "alarms: 1" in out
        assert f"  events_dropped   since 0.0 s (0.0 s)  {alarm['detail']}" in out
        assert f"  events_dropped   {snap['counters']['events_dropped']}" in out
        # The phones' lost HOOK_OFFs were made up for from the card's levels.
        assert all(p.off_hook for p in eng.phones.values())

        # The logins end (dialling and hanging up lose more events); then nothing is lost.
        last_growth, dropped = eng.clock.now_ms, snap["counters"]["events_dropped"]
        while eng.clock.now_ms < last_growth + alarms.QUIET_MS - eng.period_ms:
            site.run(eng.period_ms)
            now_dropped = eng.snapshot()["counters"]["events_dropped"]
            if now_dropped > dropped:
                last_growth, dropped = eng.clock.now_ms, now_dropped
            assert [a["kind"] for a in eng.snapshot()["alarms"]] == ["events_dropped"]
            assert eng.snapshot()["alarms"][0]["since_ms"] == eng.period_ms
        assert last_growth < 10000
        site.run(2 * eng.period_ms)                                  # the quiet time has passed
        snap = eng.snapshot()
        assert snap["alarms"] == []
        assert snap["counters"]["events_dropped"] == dropped          # the counter stays
        out = status_text(site, capsys)
        assert "alarms: none" in out and f"  events_dropped   {dropped}" in out
    finally:
        site.close()


def test_the_record_alarms_last_while_records_are_spooled(tmp_path: Path) -> None:
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0), PhoneScript(port=3, agent="1002", login_at_ms=8000)]
    site = Site(tmp_path, site_yaml(agents=2), [], phones, keep_audio=False)
    try:
        eng = site.engine
        fault = DiskFault(eng.writer)
        fault.on = True
        site.run(5000)                                     # agent 1001 logged in: its record is spooled
        alarms_now = {a["kind"]: a["detail"] for a in eng.snapshot()["alarms"]}
        assert alarms_now == {"records_commit_failing": "database cannot commit: disk I/O error",
                              "records_spooled": alarms_now.get("records_spooled")}
        assert alarms_now["records_spooled"].endswith(" records spooled")
        assert eng.snapshot()["counters"]["records_spooled"] >= 1
        fault.on = False
        site.run(8000)                                     # agent 1002's record commits, the spool with it
        assert eng.snapshot()["alarms"] == []
    finally:
        site.close()


def test_records_backpressure_refuses_new_calls_with_congestion_until_records_are_safe(tmp_path: Path) -> None:
    from appliance.storage.spool import MIN_SPOOL_BYTES
    from tests.storage.lazyio import LazyIO

    # No spool (it does not fit) and a database that cannot commit: the agents' login records are
    # held in memory, past the bound of 1.
    callers = [Caller(trunk=0, at_ms=6000, press_after_ms=500, hold_ms=2000, patience_ms=20000),
               Caller(trunk=1, at_ms=40000, press_after_ms=500, hold_ms=2000)]
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=1000)]
    site = Site(tmp_path, site_yaml(agents=1), callers, phones, keep_audio=False,
                writer_options={"io": LazyIO(capacity=MIN_SPOOL_BYTES // 2), "free_floor_bytes": 0,
                                "max_held_records": 1})
    try:
        eng = site.engine
        fault = DiskFault(eng.writer)
        fault.on = True
        site.run(5000)
        assert eng.records_backpressure
        kinds = {a["kind"] for a in eng.snapshot()["alarms"]}
        assert {"records_backpressure", "records_held_in_memory", "records_commit_failing"} <= kinds
        site.run(25000)
        first = callers[0]
        assert first.answered_ms is not None and first.connected_ms is None     # answered, never queued
        assert first.hung_up_ms is not None or eng.trunks[0].state.name == "IDLE"
        assert eng.snapshot()["counters"]["calls_refused"] == 1
        assert eng.calls == {}
        fault.on = False
        site.run(2000)                                   # the held records commit: calls are taken again
        assert not eng.records_backpressure
        site.run(20000)
        assert callers[1].connected_ms is not None
        assert eng.snapshot()["counters"]["calls_refused"] == 1
    finally:
        site.close()
    from tests.storage import stored_call_ids
    assert len(stored_call_ids(tmp_path / "cicbox.db")) == 1       # the refused call made no record
