"""A power cut, not only a kill: the writer on a lazy file system (tests/storage/lazyio.py) loses the
power at 30 seeded random points of its I/O during traffic, with the database failing now and then
(so the spool fills, is replayed, is emptied, and records are held when it is full). After each cut
and restart: every record the writer acknowledged is stored exactly once, no call id repeats, the
database passes its integrity check, and the spool is replayed exactly once."""

from __future__ import annotations

import copy
import logging
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from appliance.storage import CdrRecord, Event, RecordWriter, StoreOpenError
from appliance.storage.cdr import Record
from appliance.storage.spool import MIN_SPOOL_BYTES
from tests.storage import make_cdr, make_event, stored_call_ids
from tests.storage.lazyio import LazyIO, PowerCut
from tests.storage.test_spool import DiskFault


def traffic(n: int) -> list[Record]:
    """Period n: two calls end, one caller enters a queue (its event names the period: unique)."""
    return [make_cdr(f"p{n:05d}-a"), make_cdr(f"p{n:05d}-b"), make_event(f"p{n:05d}-a")]


def integrity(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def stored_events(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT detail FROM event ORDER BY id")]
    finally:
        con.close()


def check_after_restart(io: LazyIO, state: Path, where: Path, acked: list[Record], sent: int) -> None:
    """Power on a copy of what the cut left (database files and spool), let the writer replay and
    commit, and check the records: what was acknowledged exactly once, the rest at most once."""
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    for suffix in ("", "-wal"):
        src = Path(f"{state / 'cicbox.db'}{suffix}")
        if src.exists():
            shutil.copy(src, Path(f"{where / 'cicbox.db'}{suffix}"))
    io2 = copy.deepcopy(io)
    w = RecordWriter(where / "cicbox.db", state / "records.spool", io=io2, spool_bytes=MIN_SPOOL_BYTES,
                     idle_retry_s=None)
    w.start()
    try:
        assert w.wait(w.submit([], 0))
        assert w.health == {}, w.health
    finally:
        w.close()
    db = where / "cicbox.db"
    assert integrity(db) == "ok"
    ids = stored_call_ids(db)
    assert len(ids) == len(set(ids)), "a call id is stored twice"
    events = stored_events(db)
    assert len(events) == len(set(events)), "a queue event is stored twice: the spool was replayed twice"
    want_ids = [r.call_id for r in acked if isinstance(r, CdrRecord)]
    assert set(want_ids) <= set(ids), f"acknowledged CDRs lost: {sorted(set(want_ids) - set(ids))[:5]}"
    want_events = {r.detail_json for r in acked if isinstance(r, Event)}
    assert want_events <= set(events), f"acknowledged events lost: {sorted(want_events - set(events))[:5]}"
    # Nothing that was never sent, and whole periods only.
    assert set(ids) <= {f"p{n:05d}-{x}" for n in range(sent) for x in "ab"}


def test_power_cut_at_30_random_points_loses_nothing_acknowledged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "cicbox.storage")
    rng = random.Random(20260301)
    io = LazyIO(seed=11)
    state = tmp_path / "state"
    state.mkdir()
    acked: list[Record] = []
    n = 0
    faults = torn_starts = 0
    for _cut in range(30):
        w = RecordWriter(state / "cicbox.db", state / "records.spool", io=io, spool_bytes=MIN_SPOOL_BYTES,
                         idle_retry_s=None)
        io.cut_after(rng.randint(1, 160))
        try:
            w.start()
        except StoreOpenError as exc:
            assert isinstance(exc.__cause__, PowerCut)     # the power went while it opened and replayed
            torn_starts += 1
        else:
            fault = DiskFault(w)
            while not io.dead:
                if rng.random() < 0.1:
                    fault.on = not fault.on
                    faults += fault.on
                batch = traffic(n)
                n += 1
                if w.wait(w.submit(batch, n * 10), timeout_s=60):
                    acked.extend(batch)
            w.close()
            assert w.stopped
        io.power_cut()
        assert integrity(state / "cicbox.db") == "ok"
        check_after_restart(io, state, tmp_path / "verify", acked, n)
    assert io.cuts == 30
    # The run went through the cases it is meant to: faults, replays of a spool left by a cut.
    assert faults >= 5
    replays = [r for r in caplog.records if "from before a restart" in r.getMessage()]
    assert len(replays) >= 3, len(replays)
    assert len(acked) > 300
