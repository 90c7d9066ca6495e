"""The disk fills: an engine on a 2 MiB and on a 6 MiB file system (tmpfs, mounted by the test as root)
takes calls while a ballast file fills the disk, then the ballast goes (and the 2 MiB one grows).

Calls go on throughout; each change of the record store's state is one alarm in the snapshot (and in
`cicbox status --json`) in the period it happens, and one log line; once space returns every call's
record reaches the database, once. On 6 MiB the spool (4 MiB, allocated at start) takes the records
while the database cannot grow; on 2 MiB the spool does not fit, the records are held in memory
until the database commits again, and the spool is tried again each minute of engine clock until
it fits."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import cli
from appliance.storage.writer import HEALTH_KINDS
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml
from tests.storage import stored_call_ids

FLOOR = 512 << 10


@contextlib.contextmanager
def small_fs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the CI machine runs the tests as root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write zeros to `path` until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (64 << 10, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    assert os.statvfs(path.parent).f_bavail == 0


def storage_changes(lines: list[str]) -> set[tuple[str, bool]]:
    """The writer's log lines as (kind, raised) changes."""
    out: set[tuple[str, bool]] = set()
    for line in lines:
        m = re.fullmatch(r"record store: (\w+)( cleared|: .*)", line)
        if m and m.group(1) in HEALTH_KINDS:
            out.add((m.group(1), m.group(2) != " cleared"))
    return out


@pytest.mark.parametrize("size", ["2m", "6m"])
def test_calls_go_on_while_the_disk_is_full_and_every_record_arrives(
        tmp_path: Path, size: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO, "cicbox.storage")
    callers = [Caller(trunk=k % 2, at_ms=2000 + 6000 * k, ani=f"13900000{k:03d}", press_after_ms=500, hold_ms=3000)
               for k in range(15)]
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=1000),
              PhoneScript(port=3, agent="1002", login_at_ms=0, answer_after_ms=1000)]
    with small_fs(tmp_path / "fs", size) as fs:
        site = Site(fs, site_yaml(agents=2), callers, phones, keep_audio=False,
                    writer_options={"free_floor_bytes": FLOOR})
        eng = site.engine
        kinds_seen: set[str] = set()
        seen_json = False

        def period() -> None:
            nonlocal seen_json
            before = {a["kind"] for a in eng.snapshot()["alarms"] if a["kind"] in HEALTH_KINDS}
            mark = len(caplog.records)
            site.run(eng.period_ms)
            snap = eng.snapshot()
            after = {a["kind"] for a in snap["alarms"] if a["kind"] in HEALTH_KINDS}
            kinds_seen.update(after)
            changes = {(k, True) for k in after - before} | {(k, False) for k in before - after}
            lines = [r.getMessage() for r in caplog.records[mark:] if r.name == "cicbox.storage"]
            # In the period of a change: its alarm, and one log line each; no line without a change.
            assert changes == storage_changes(lines), (eng.clock.now_ms, lines)
            assert len(lines) == len(changes), (eng.clock.now_ms, lines)
            if "records_commit_failing" in after and not seen_json:
                with site.serving():
                    assert cli.main(["status", "--json", "--state-dir", str(fs)]) == 0
                status = json.loads(capsys.readouterr().out)
                assert status["alarms"] == eng.snapshot()["alarms"]
                seen_json = True

        try:
            site.run(eng.period_ms)          # the first period: the alarms of the start
            want = {"spool_unavailable"} if size == "2m" else set()
            assert {a["kind"] for a in eng.snapshot()["alarms"]} == want
            assert storage_changes([r.getMessage() for r in caplog.records]) == {(k, True) for k in want}
            if size == "2m":
                assert not (fs / "records.spool.new").exists()         # its temporary file was removed
            while eng.clock.now_ms < 20000:
                period()
            fill(fs / "ballast")
            while eng.clock.now_ms < 60000:
                period()
            # The disk was full for 40 s: calls were answered and connected meanwhile.
            during = [c for c in callers if 20000 < c.at_ms < 52000]
            assert during and all(c.connected_ms is not None for c in during)
            assert "records_commit_failing" in kinds_seen and "disk_space_low" in kinds_seen
            assert ("records_spooled" if size == "6m" else "records_held_in_memory") in kinds_seen
            (fs / "ballast").unlink()
            if size == "2m":
                subprocess.run(["mount", "-o", "remount,size=16m", str(fs)], check=True)
            while eng.clock.now_ms < 125000:
                period()
            assert seen_json
            assert [a for a in eng.snapshot()["alarms"] if a["kind"] in HEALTH_KINDS] == []
            assert all(c.hung_up_ms is not None for c in callers)
        finally:
            site.close()
        ids = stored_call_ids(fs / "cicbox.db")
        assert len(ids) == len(set(ids)) == len(callers)
