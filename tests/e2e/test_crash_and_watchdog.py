"""A crash of the engine's process (kill -9) loses no released call and the engine restarts on its
state; the database is WAL with synchronous=FULL; the systemd watchdog is gated on both tiers' progress.

A kill -9 is a crash, not a power cut: the kernel still writes out what the process had handed it, so
these tests do not show that a committed record survives losing power (that rests on WAL with
synchronous=FULL, checked here by reading the pragmas back)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml

CHILD = Path(__file__).resolve().parent / "crash_child.py"


def test_a_kill_9_crash_loses_no_released_call_and_the_engine_restarts(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(CHILD), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    released: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        st = json.loads(line)
        if len(st["released"]) >= 5 and st["up"] >= 2:
            released = st["released"]
            os.kill(proc.pid, signal.SIGKILL)    # a crash mid-call (kill -9)
            break
    proc.wait()
    proc.stdout.close()
    assert len(released) >= 5
    con = sqlite3.connect(tmp_path / "cicbox.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    have = {r[0] for r in con.execute("SELECT call_id FROM cdr")}
    con.close()
    assert set(released) <= have
    # The engine comes back on the same state and takes a call.
    caller = Caller(trunk=0, at_ms=1000, press_after_ms=500, hold_ms=3000)
    site = Site(tmp_path, site_yaml(agents=2), [caller], [PhoneScript(port=2, agent="1001", answer_after_ms=1000)],
                keep_audio=False)
    try:
        site.run(30000)
    finally:
        site.close()
    assert caller.connected_ms is not None and caller.hung_up_ms is not None


def test_writer_database_is_wal_and_full_sync(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        site.run(100)
        pragmas = site.engine.writer.pragmas    # read back on the writer's own connection
        assert str(pragmas["journal_mode"]).lower() == "wal"
        assert int(pragmas["synchronous"]) == 2
    finally:
        site.close()


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    yield sock
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_watchdog_pings_stop_when_the_media_tier_stalls(tmp_path: Path, notify: socket.socket) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False, enable_faults=True)
    pings: list[int] = []
    try:
        for _ in range(500):                                   # 6 s of engine clock
            site.run(site.engine.period_ms)
            pings += [site.engine.clock.now_ms for m in drain(notify) if "WATCHDOG=1" in m]
        assert site.engine._ready_sent
        assert len(pings) >= 4                                 # every half period (1 s)
        assert site.request("fault.freeze_media", on=True) == {"frozen": True}   # fault injection
        frozen_at = site.engine.clock.now_ms
        after: list[int] = []
        for _ in range(500):
            site.run(site.engine.period_ms)
            after += [site.engine.clock.now_ms for m in drain(notify) if "WATCHDOG=1" in m]
        assert all(t <= frozen_at + 2000 for t in after)       # stopped within one watchdog period
    finally:
        site.close()


def test_ready_is_sent_once(tmp_path: Path, notify: socket.socket) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        site.run(200)
        msgs = drain(notify)
    finally:
        site.close()
    assert sum("READY=1" in m for m in msgs) == 1
