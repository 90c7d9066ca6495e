"""Nothing lost: call ids never repeat across restarts (even when a power cut empties the boot count), a
repeated id is kept and raises an alarm, every call gets a record whether the engine is stopped (SIGTERM:
``shutdown``) or dies (kill -9: ``system_restart`` at the next start), and logged-in agents stay logged in."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance import cli
from appliance.lifecycle import DEFAULT_STOP_BUDGET_S, parse_timespan, stop_budget_s
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml

CHILD = Path(__file__).resolve().parent / "crash_child.py"
SIX = site_yaml(agents=6, trunks=6, answer_on_ring=1)


def cdrs(db: Path) -> dict[str, tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {r[0]: r[1:] for r in con.execute(
            "SELECT call_id, disposition, start_ms, queue_entry_ms, answer_ms, end_ms FROM cdr")}
    finally:
        con.close()


def live_marks(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT call_id FROM live_call")]
    finally:
        con.close()


def short_calls(n: int, trunks: int, first_ms: int = 200) -> list[Caller]:
    """`n` callers who hang up in the IVR soon after the answer (a record each, quickly)."""
    return [Caller(trunk=i % trunks, at_ms=first_ms + (i // trunks) * 3000 + (i % trunks) * 50,
                   ani=f"1370000{i:04d}", digits="", press_after_ms=100, patience_ms=300) for i in range(n)]


def run_six(state: Path, sig: int) -> tuple[subprocess.Popen[str], list[str], list[str]]:
    """The six-calls child until six calls are up, then `sig`; its live call ids and its last report."""
    proc = subprocess.Popen([sys.executable, str(CHILD), str(state), "six"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    live: list[str] = []
    lines: list[str] = []
    for line in proc.stdout:
        st = json.loads(line)
        if st.get("up") == 6:
            live = st["live"]
            os.kill(proc.pid, sig)
            break
    lines = list(proc.stdout)       # what it said while stopping
    proc.wait(timeout=60)
    proc.stdout.close()
    return proc, live, lines


def test_sigterm_with_six_calls_up_records_six_shutdown_calls(tmp_path: Path) -> None:
    proc, live, lines = run_six(tmp_path, signal.SIGTERM)
    assert len(live) == 6
    assert proc.returncode == 0
    assert json.loads(lines[-1]) == {"exited": True, "released": sorted(live)}   # acknowledged before exit
    stored = cdrs(tmp_path / "cicbox.db")
    assert sorted(stored) == sorted(live)
    assert {row[0] for row in stored.values()} == {"shutdown"}
    assert live_marks(tmp_path / "cicbox.db") == []


def test_kill_9_with_six_calls_up_records_six_system_restart_calls_at_the_next_start(tmp_path: Path) -> None:
    proc, live, _ = run_six(tmp_path, signal.SIGKILL)
    assert len(live) == 6 and proc.returncode == -signal.SIGKILL
    assert cdrs(tmp_path / "cicbox.db") == {}              # nothing recorded yet: the calls were up
    assert sorted(live_marks(tmp_path / "cicbox.db")) == sorted(live)
    site = Site(tmp_path, SIX, [], [], keep_audio=False)   # the restart
    try:
        site.run(100)
        assert site.engine.boot == 2
    finally:
        site.close()
    stored = cdrs(tmp_path / "cicbox.db")
    assert sorted(stored) == sorted(live)
    for disposition, start, _queued, answer, end in stored.values():
        assert disposition == "system_restart"
        assert start <= end and (answer is None or answer <= end)
    assert live_marks(tmp_path / "cicbox.db") == []


def test_an_emptied_boot_count_does_not_repeat_call_ids(tmp_path: Path) -> None:
    text = site_yaml(agents=1, trunks=6, answer_on_ring=1)
    site = Site(tmp_path, text, short_calls(50, 6), [], keep_audio=False)
    try:
        site.run(30_000)
    finally:
        site.close()
    old = cdrs(tmp_path / "cicbox.db")
    assert len(old) == 50 and all(i.startswith("1-") for i in old)
    (tmp_path / "boots").write_text("")                    # as a power cut may leave it
    site = Site(tmp_path, text, short_calls(6, 6), [], keep_audio=False)
    try:
        site.run(4_000)
        alarms = [a["kind"] for a in site.engine.snapshot()["alarms"]]
    finally:
        site.close()
    stored = cdrs(tmp_path / "cicbox.db")
    new = sorted(set(stored) - set(old))
    assert set(old) <= set(stored) and all(stored[i] == old[i] for i in old)    # every old record, unchanged
    assert len(new) == 6 and all(i.startswith("2-") and ".dup" not in i for i in new)
    assert "record_id_repeated" not in alarms
    assert (tmp_path / "boots").read_text() == "2\n"


def test_a_repeated_call_id_is_kept_and_raises_an_alarm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path, site_yaml(agents=1, trunks=2, answer_on_ring=1),
                short_calls(1, 2) + short_calls(1, 2, first_ms=5_000), [], keep_audio=False)
    try:
        site.run(4_000)
        assert sorted(cdrs(tmp_path / "cicbox.db")) == ["1-000001"]
        site.engine.call_layer._seq = 0                    # forced: the next call gets the same id
        site.run(4_000)
        snap = site.request("status")
        with site.serving():
            assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
    finally:
        site.close()
    assert sorted(cdrs(tmp_path / "cicbox.db")) == ["1-000001", "1-000001.dup1"]   # both kept
    alarm = next(a for a in snap["alarms"] if a["kind"] == "record_id_repeated")
    assert set(alarm) == {"kind", "since_ms", "detail"} and "1-000001 kept as 1-000001.dup1" in alarm["detail"]
    assert "record_id_repeated" in capsys.readouterr().out


def test_logged_in_agents_stay_logged_in_after_a_restart_not_ready(tmp_path: Path) -> None:
    text = site_yaml(agents=2)
    site = Site(tmp_path, text, [], [PhoneScript(port=2, agent="1001", login_at_ms=0)], keep_audio=False)
    try:
        site.run(5_000)
        assert {a["number"]: a["state"] for a in site.engine.snapshot()["agents"]} == \
            {"1001": "ready", "1002": "logged_out"}
    finally:
        site.close()
    site = Site(tmp_path, text, [], [], keep_audio=False)
    try:
        site.run(100)
        agents = {a["number"]: (a["state"], a["phone"]) for a in site.engine.snapshot()["agents"]}
    finally:
        site.close()
    assert agents == {"1001": ("not_ready", "phone1"), "1002": ("logged_out", None)}
    con = sqlite3.connect(tmp_path / "cicbox.db")
    details = [r[0] for r in con.execute(
        "SELECT json_extract(detail, '$.state') || ': ' || json_extract(detail, '$.why') FROM event "
        "WHERE agent = '1001' AND kind = 'agent_state' ORDER BY id")]
    con.close()
    assert details[-1] == "not_ready: restart"


def test_the_stop_budget_comes_from_the_units_stop_timeout(tmp_path: Path) -> None:
    assert stop_budget_s() == pytest.approx(10.0)         # TimeoutStopSec=15s in systemd/cicbox-engine.service
    unit = tmp_path / "x.service"
    unit.write_text("[Service]\nTimeoutStopSec=1min 30s\n")
    assert stop_budget_s(unit) == pytest.approx(60.0)
    assert stop_budget_s(tmp_path / "missing.service") == DEFAULT_STOP_BUDGET_S
    assert parse_timespan("500ms") == pytest.approx(0.5) and parse_timespan("infinity") is None
