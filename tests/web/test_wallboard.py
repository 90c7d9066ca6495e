"""The wallboard's hub (appliance.web.wallboard) against a real engine in virtual time: one subscriber
thread, its snapshots fanned out to event streams at most twice a second (latest wins), the engine's
absence told at once and retried each second by the hub's clock (driven here), a heartbeat every 15 s,
16 streams at most, a stream that ends with its session, and the engine's database read-only."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control import ControlError
from appliance.web.wallboard import (
    GONE_CHECK_S,
    HEARTBEAT_S,
    MAX_STREAMS,
    MAX_STREAMS_PER_ACCOUNT,
    Hub,
    WallboardError,
    open_engine_db,
    today_by_queue,
)
from tests.e2e.harness import Site
from tests.web import FIRST_ANI, OFFERED_AT, SECOND_ANI, TALKING_AT, live_site

REAL_WAIT_S = 20.0        # a safety net for a test that would hang: never part of what is measured


class ManualClock:
    """The hub's clock, moved by the test. A wait ends at a notify or once the test has advanced the
    clock past its end; `waits` counts the waits begun (a waiter that begins one has found nothing due)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits = 0
        self._lock = threading.Condition()
        self._conds: set[threading.Condition] = set()

    def monotonic(self) -> float:
        return self.now

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        with self._lock:
            self._conds.add(cond)
            self.waits += 1
            self._lock.notify_all()
        cond.wait(REAL_WAIT_S)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        with self._lock:
            conds = list(self._conds)
        for cond in conds:
            with cond:
                cond.notify_all()

    def waiting_after(self, count: int) -> None:
        """Return once more than `count` waits have begun."""
        with self._lock:
            assert self._lock.wait_for(lambda: self.waits > count, REAL_WAIT_S), "nobody waits on the clock"


def parse(text: str) -> tuple[str, Any]:
    """One server-sent event's (name, data); a heartbeat or the retry line is ("", text)."""
    name, data = "", None
    for line in text.strip().splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
    return (name, data) if name else ("", text)


class Reader:
    """Takes a stream's events one at a time in a worker thread, so the test can see that one is not
    sent yet (its generator waits on the clock) before it moves the clock."""

    def __init__(self, events: Iterator[str]) -> None:
        self.events = events
        self.pool = concurrent.futures.ThreadPoolExecutor(1)

    def next(self) -> concurrent.futures.Future[tuple[str, Any]]:
        return self.pool.submit(lambda: parse(next(self.events)))

    def take(self) -> tuple[str, Any]:
        return self.next().result(REAL_WAIT_S)

    def close(self) -> None:
        self.pool.submit(self.events.close).result(REAL_WAIT_S)   # type: ignore[attr-defined]
        self.pool.shutdown()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = live_site(tmp_path)
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def hub_on(state: Path, clock: ManualClock) -> Hub:
    return Hub(state / "control.sock", db_path=state / "cicbox.db", clock=clock)


def wait_word(hub: Hub, what: str) -> dict[str, Any]:
    """The hub's snapshot (`what` "snapshot") or engine state (`what` "engine") once it has one."""
    with hub.cond:
        ok = hub.cond.wait_for(lambda: (hub.snapshot if what == "snapshot" else hub.engine) is not None,
                               REAL_WAIT_S)
        assert ok, f"the hub has no {what}"
        value = hub.snapshot if what == "snapshot" else hub.engine
    assert value is not None
    return value


def test_the_hub_follows_the_engine_and_streams_its_snapshots(site: Site, clock: ManualClock) -> None:
    site.run(OFFERED_AT)
    hub = hub_on(site.state, clock)
    with site.serving():
        hub.start()
        snap = wait_word(hub, "snapshot")          # the status asked at connect: a paused engine pushes none
        assert [(c["ani"], c["state"]) for c in snap["calls"]] == [(FIRST_ANI, "offered")]
        assert snap["tick_ms"] == site.engine.clock.now_ms
        reader = Reader(hub.events(hub.open_stream()))
        assert reader.take()[0] == ""              # the retry line
        name, data = reader.take()                 # the latest snapshot at once
        assert name == "snapshot" and data["calls"][0]["ani"] == FIRST_ANI
    version = hub.version
    site.run(TALKING_AT - OFFERED_AT)              # the engine pushes a snapshot each second of its clock
    with hub.cond:
        assert hub.cond.wait_for(lambda: hub.version > version, REAL_WAIT_S)
    clock.advance(0.5)
    name, data = reader.take()
    assert name == "snapshot"
    calls = {c["ani"]: c for c in data["calls"]}
    assert (calls[FIRST_ANI]["state"], calls[SECOND_ANI]["state"]) == ("connected", "queued")
    assert data["tick_ms"] - calls[FIRST_ANI]["state_since_ms"] > 0
    assert len(hub.streams) == 1
    reader.close()
    assert hub.streams == set()                    # a closed stream frees its place
    hub.stop()


def test_snapshots_at_most_twice_a_second_the_latest_wins(tmp_path: Path, clock: ManualClock) -> None:
    hub = hub_on(tmp_path, clock)                  # no thread: the test publishes
    for tick in (1000, 2000, 3000):
        hub.publish({"tick_ms": tick, "calls": []})
    reader = Reader(hub.events(hub.open_stream()))
    reader.take()
    assert reader.take() == ("snapshot", {"tick_ms": 3000, "calls": [], "today": {}})
    clock.advance(0.2)
    for tick in (4000, 5000):
        hub.publish({"tick_ms": tick, "calls": []})
    waits = clock.waits
    pending = reader.next()
    clock.waiting_after(waits)                     # the stream waits: 0.2 s is too soon for another
    assert not pending.done()
    clock.advance(0.3)
    assert pending.result(REAL_WAIT_S)[1]["tick_ms"] == 5000     # 4000 was never sent
    # nothing new: a heartbeat comes 15 s after the last line, not before
    waits = clock.waits
    pending = reader.next()
    clock.waiting_after(waits)
    clock.advance(HEARTBEAT_S - 1)
    clock.waiting_after(clock.waits)
    assert not pending.done()
    clock.advance(1)
    assert pending.result(REAL_WAIT_S) == ("", ": heartbeat\n\n")
    reader.close()


def test_engine_gone_then_back_on_the_same_state_dir(site: Site, clock: ManualClock, tmp_path: Path) -> None:
    site.run(OFFERED_AT)
    hub = hub_on(site.state, clock)
    try:
        with site.serving():
            hub.start()
            wait_word(hub, "snapshot")
            reader = Reader(hub.events(hub.open_stream()))
            reader.take()
            assert reader.take()[0] == "snapshot"
        connects = hub.connects
        site.close()                               # the engine goes: the stream hears it at once
        name, data = reader.take()
        assert name == "engine" and data["reachable"] is False
        assert "closed the connection" in data["reason"] or "cannot reach" in data["reason"]
        # it tries again each second of its clock, not sooner
        clock.waiting_after(0)
        assert hub.connects == connects
        clock.advance(1.0)
        with hub.cond:
            assert hub.cond.wait_for(lambda: hub.engine is not None and "cannot reach" in hub.engine["reason"],
                                     REAL_WAIT_S)
        # a new engine on the same state directory: the next retry finds it, the stream gets its snapshot
        again = Site(tmp_path, (tmp_path / "site.yaml").read_text(), [], [], keep_audio=False)
        try:
            with again.serving():
                clock.advance(1.0)
                name, data = reader.take()
                while name == "engine":            # (the reason changed meanwhile: told too)
                    assert "cannot reach" in data["reason"]
                    name, data = reader.take()
                assert name == "snapshot" and data["calls"] == []
                assert hub.engine is None
        finally:
            again.close()
        reader.close()
    finally:
        hub.stop()


def test_sixteen_streams_then_refused(tmp_path: Path, clock: ManualClock) -> None:
    hub = hub_on(tmp_path, clock)
    streams = [hub.open_stream() for _ in range(MAX_STREAMS)]
    with pytest.raises(WallboardError, match="16 streams at once"):
        hub.open_stream()
    hub.close_stream(streams[0])
    hub.open_stream()


def test_a_stream_ends_with_its_session(tmp_path: Path, clock: ManualClock) -> None:
    hub = hub_on(tmp_path, clock)
    hub.publish({"tick_ms": 1, "calls": []})
    alive = [True]
    reader = Reader(hub.events(hub.open_stream(), lambda: alive[0]))
    reader.take()
    assert reader.take()[0] == "snapshot"
    waits = clock.waits
    pending = reader.next()
    clock.waiting_after(waits)
    alive[0] = False                               # signed out, or idle past its limit
    clock.advance(1.0)
    assert pending.result(REAL_WAIT_S) == ("end", {"reason": "your session is over: sign in again"})
    with pytest.raises(StopIteration):
        reader.take()
    assert hub.streams == set()
    reader.pool.shutdown()


def test_no_engine_at_all(tmp_path: Path, clock: ManualClock) -> None:
    hub = hub_on(tmp_path, clock)
    hub.start()
    try:
        state = wait_word(hub, "engine")
        assert state["reachable"] is False and state["reason"].startswith("cannot reach the engine at ")
        assert hub.current(0) == (None, state)
    finally:
        hub.stop()


def test_the_engine_database_is_read_only(site: Site) -> None:
    site.run(1000)
    db = site.state / "cicbox.db"
    con = open_engine_db(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM cdr").fetchone() == (0,)
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|read-only|query_only|attempt to write"):
            con.execute("DELETE FROM cdr")
        with pytest.raises(sqlite3.OperationalError):
            con.execute("CREATE TABLE mine (x)")
        assert con.execute("PRAGMA query_only").fetchone() == (1,)
    finally:
        con.close()
    with pytest.raises(sqlite3.OperationalError):
        open_engine_db(site.state / "absent.db")    # never created
    assert not (site.state / "absent.db").exists()


def test_today_per_queue_from_the_records(tmp_path: Path) -> None:
    db = tmp_path / "cicbox.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE cdr (queue TEXT, disposition TEXT, calendar_start TEXT)")
    con.executemany("INSERT INTO cdr VALUES (?, ?, ?)", [
        ("front_desk", "answered", "2026-03-01T09:31:00"), ("front_desk", "answered", "2026-03-01T23:59:59"),
        ("front_desk", "abandoned", "2026-03-01T10:00:00"), ("front_desk", "answered", "2026-02-28T10:00:00"),
        ("spa", "no_agent", "2026-03-01T10:00:00"), (None, "answered", "2026-03-01T10:00:00")])
    con.commit()
    con.close()
    ro = open_engine_db(db)
    try:
        assert today_by_queue(ro, "2026-03-01") == {"front_desk": {"answered": 2, "abandoned": 1},
                                                   "spa": {"answered": 0, "abandoned": 0}}
    finally:
        ro.close()


def test_a_connect_error_is_a_reason_not_a_crash(tmp_path: Path, clock: ManualClock) -> None:
    def refuse(path: Path) -> Any:
        raise ControlError(f"cannot reach the engine at {path}: refused")

    hub = Hub(tmp_path / "control.sock", clock=clock, connect=refuse)
    hub.start()
    try:
        assert wait_word(hub, "engine")["reason"].endswith("refused")
    finally:
        hub.stop()


def test_a_stream_whose_client_went_away_frees_its_place_within_a_second(tmp_path: Path, clock: ManualClock) -> None:
    hub = hub_on(tmp_path, clock)
    hub.publish({"tick_ms": 1000, "calls": []})
    closed = threading.Event()
    stream = hub.open_stream("user 1")
    reader = Reader(hub.events(stream, gone=closed.is_set))
    reader.take()
    assert reader.take()[0] == "snapshot"
    waits = clock.waits
    pending = reader.next()
    clock.waiting_after(waits)
    closed.set()                                   # the browser tab is closed
    clock.advance(GONE_CHECK_S)                    # not HEARTBEAT_S: no write is needed to notice
    with pytest.raises(StopIteration):
        pending.result(REAL_WAIT_S)
    assert hub.streams == set()
    reader.pool.shutdown()


def test_one_account_holds_four_streams_at_most(tmp_path: Path) -> None:
    hub = hub_on(tmp_path, ManualClock())
    mine = [hub.open_stream("user 1") for _ in range(MAX_STREAMS_PER_ACCOUNT)]
    with pytest.raises(WallboardError, match="your account has 4 wallboard streams open already") as exc:
        hub.open_stream("user 1")
    assert exc.value.status == 429
    others = [hub.open_stream("user 2") for _ in range(4)]         # another account is not held up
    hub.close_stream(mine[0])
    hub.open_stream("user 1")                                  # a closed one's place is free again
    assert len(hub.streams) == 8 and others
