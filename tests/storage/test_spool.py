"""When the database cannot commit, records go to the pre-allocated spool, an alarm is
raised, wait() still returns, and the spool is committed in order when it can be, also
after a restart. Nothing is lost, nothing is stored twice."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from appliance.storage import CdrRecord, Event, RecordWriter
from appliance.storage import spool as spool_mod
from tests.storage import make_cdr, make_event, stored_call_ids, stored_event_call_ids


class DiskFault:
    """Makes every statement of a writer's engine fail with a disk I/O error while on."""

    def __init__(self, w: RecordWriter) -> None:
        self.on = False
        assert w._engine is not None
        event.listen(w._engine, "before_cursor_execute", self._check)

    def _check(self, *_args: Any) -> None:
        if self.on:
            raise OperationalError("INSERT", None, sqlite3.OperationalError("disk I/O error"))


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "cicbox.db", tmp_path / "records.spool"


@pytest.fixture
def writer(paths: tuple[Path, Path]) -> Iterator[RecordWriter]:
    w = RecordWriter(*paths)
    w.start()
    yield w
    w.close()


def period(n: int) -> list[CdrRecord | Event]:
    """Period n: two calls end, one caller enters a queue."""
    return [make_cdr(f"p{n:03d}-a"), make_cdr(f"p{n:03d}-b"), make_event(f"p{n:03d}-a")]


def expected_ids(periods: range) -> list[str]:
    return [f"p{n:03d}-{x}" for n in periods for x in "ab"]


def test_spool_is_preallocated(writer: RecordWriter, paths: tuple[Path, Path]) -> None:
    assert paths[1].stat().st_size == 4 << 20
    assert paths[1].stat().st_blocks * 512 >= 4 << 20
    assert writer.alarm is None


def test_io_error_spools_then_commits_in_order(writer: RecordWriter, paths: tuple[Path, Path]) -> None:
    fault = DiskFault(writer)
    assert writer.wait(writer.submit(period(0), 0))
    fault.on = True
    for n in range(1, 4):
        assert writer.wait(writer.submit(period(n), n * 10)), "wait() must return while the disk fails"
    assert writer.alarm == "database cannot commit: disk I/O error; 9 records spooled"
    assert writer.committed_seq == 4                 # durable: in the spool
    assert writer.stats()["in_database_seq"] == 1
    assert writer.stats()["spool_records"] == 9
    assert stored_call_ids(paths[0]) == expected_ids(range(1))
    fault.on = False
    assert writer.wait(writer.submit(period(4), 40))
    assert writer.alarm is None
    assert writer.stats()["spool_records"] == 0
    assert writer.stats()["in_database_seq"] == 5
    assert stored_call_ids(paths[0]) == expected_ids(range(5))
    assert stored_event_call_ids(paths[0]) == [f"p{n:03d}-a" for n in range(5)]


def test_spool_is_retried_without_new_batches(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    w.RETRY_S = 0.01
    w.start()
    try:
        fault = DiskFault(w)
        fault.on = True
        assert w.wait(w.submit(period(0), 0))
        assert w.alarm is not None and "3 records spooled" in w.alarm
        committed = threading.Event()
        assert w._engine is not None
        event.listen(w._engine, "commit", lambda _c: committed.set())
        fault.on = False
        assert committed.wait(30)                     # the retry came without a new batch
        assert w.wait(w.submit([], 10))               # a barrier: that commit is over
        assert stored_call_ids(paths[0]) == expected_ids(range(1))
    finally:
        w.close()
    assert w.alarm is None


def test_restart_replays_a_non_empty_spool(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    w.start()
    fault = DiskFault(w)
    assert w.wait(w.submit(period(0), 0))
    fault.on = True
    for n in range(1, 6):
        assert w.wait(w.submit(period(n), n * 10))
    w.close()                                        # still failing: the spool stays on disk
    assert w.alarm is not None and "15 records spooled" in w.alarm
    assert stored_call_ids(paths[0]) == expected_ids(range(1))

    w2 = RecordWriter(*paths)
    w2.start()
    try:
        assert w2.wait(w2.submit(period(6), 60))
        assert w2.alarm is None
        assert stored_call_ids(paths[0]) == expected_ids(range(7))
    finally:
        w2.close()
    # A third start finds an empty spool and replays nothing.
    w3 = RecordWriter(*paths)
    w3.start()
    w3.close()
    assert stored_call_ids(paths[0]) == expected_ids(range(7))


def test_crash_after_commit_before_spool_emptied_stores_nothing_twice(
        monkeypatch: pytest.MonkeyPatch, paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    w.start()
    fault = DiskFault(w)
    fault.on = True
    for n in range(3):
        assert w.wait(w.submit(period(n), n * 10))
    fault.on = False

    def crash(_self: object) -> None:
        raise OSError(5, "Input/output error")

    # The spooled records commit, then the spool cannot be emptied (as if the process died there).
    monkeypatch.setattr(spool_mod.Spool, "reset", crash)
    assert w.wait(w.submit(period(3), 30))
    # More faults append behind the records already committed from the same spool generation.
    fault.on = True
    assert w.wait(w.submit(period(4), 40))
    w.close()
    monkeypatch.undo()
    assert stored_call_ids(paths[0]) == expected_ids(range(4))

    w2 = RecordWriter(*paths)
    w2.start()
    try:
        assert w2.wait(w2.submit(period(5), 50))
    finally:
        w2.close()
    ids = stored_call_ids(paths[0])
    assert ids == expected_ids(range(6))
    assert len(ids) == len(set(ids))
    assert stored_event_call_ids(paths[0]) == [f"p{n:03d}-a" for n in range(6)]


def test_full_spool_holds_records_in_memory_and_says_so(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths, spool_bytes=spool_mod.MIN_SPOOL_BYTES)
    w.start()
    try:
        fault = DiskFault(w)
        fault.on = True
        big = [[make_cdr(f"p{n:03d}-{i:02d}", trunk="t" * 60) for i in range(40)] for n in range(30)]
        results = [w.wait(w.submit(batch, n)) for n, batch in enumerate(big)]
        assert results[0] is True
        assert results[-1] is False                   # neither committed nor spooled
        first_held = results.index(False)
        assert all(results[:first_held]) and not any(results[first_held:])
        assert w.committed_seq == first_held
        assert w.alarm is not None and "held in memory and not safe (spool full)" in w.alarm
        fault.on = False
        assert w.wait(w.submit([make_cdr("after")], 99))
        assert w.alarm is None
        assert w.committed_seq == 31
        assert stored_call_ids(paths[0]) == [r.call_id for batch in big for r in batch] + ["after"]
    finally:
        w.close()


def test_damaged_spool_is_kept_aside_and_its_good_records_recovered(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    w.start()
    fault = DiskFault(w)
    fault.on = True
    for n in range(3):
        assert w.wait(w.submit(period(n), n * 10))
    w.close()
    # Flip a byte in the last record.
    with open(paths[1], "r+b") as f:
        f.seek(4096)
        data = f.read(1 << 16)
        last = data.rindex(b'"p002-a"')
        f.seek(4096 + last + 2)
        f.write(b"X")
    w2 = RecordWriter(*paths)
    w2.start()
    try:
        assert w2.alarm is not None and "damaged" in w2.alarm
        assert w2.wait(w2.submit(period(9), 90))
        assert w2.alarm is None
    finally:
        w2.close()
    kept = list(paths[1].parent.glob("records.spool.damaged-*"))
    assert len(kept) == 1
    # Everything before the damaged record (the last period's event) is stored, then the new period.
    assert stored_call_ids(paths[0]) == [*expected_ids(range(3)), "p009-a", "p009-b"]
    assert stored_event_call_ids(paths[0]) == ["p000-a", "p001-a", "p009-a"]
    assert b'"p002-a"' in kept[0].read_bytes()       # the damaged record is still on disk, set aside


def test_failure_to_reconnect_is_spooled_too(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    w.start()
    try:
        fault = DiskFault(w)
        reconnect_fails = True

        def on_connect(_dbapi: Any, _record: Any) -> None:
            if reconnect_fails:
                raise sqlite3.OperationalError("unable to open database file")

        assert w._engine is not None
        event.listen(w._engine, "connect", on_connect)
        fault.on = True                  # the commit fails, the connection is dropped...
        assert w.wait(w.submit(period(0), 0))
        fault.on = False                 # ...and opening a new one fails too, with a raw driver error
        assert w.wait(w.submit(period(1), 10))
        assert w.alarm == "database cannot commit: unable to open database file; 6 records spooled"
        reconnect_fails = False
        assert w.wait(w.submit(period(2), 20))
        assert w.alarm is None
        assert stored_call_ids(paths[0]) == expected_ids(range(3))
    finally:
        w.close()
