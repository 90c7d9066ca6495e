"""A process killed with SIGKILL while it writes loses nothing it waited for, and
leaves a database that passes its integrity check and opens again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from appliance.storage import RecordWriter
from tests.storage import make_cdr, stored_call_ids

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
from pathlib import Path
from appliance.storage import RecordWriter
from tests.storage import make_cdr, make_event

state, waited = Path(sys.argv[1]), int(sys.argv[2])
w = RecordWriter(state / "cicbox.db", state / "records.spool")
w.start()
n = 0
seen = 0
while True:
    batch = [make_cdr(f"b{n:05d}-{i}") for i in range(4)] + [make_event(f"b{n:05d}-0", n)]
    seq = w.submit(batch, n * 10)
    if n < waited:
        assert w.wait(seq)
        print("durable", n, flush=True)
    elif w.committed_seq != seen:              # the writer is committing batches nobody waits for
        seen = w.committed_seq
        print("committed", seen, flush=True)
    n += 1
"""


def test_sigkill_mid_write_keeps_every_waited_record(tmp_path: Path) -> None:
    waited = 40
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(waited)], env=env,
                             stdout=subprocess.PIPE, text=True)
    durable: list[int] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            word, n = line.split()
            if word == "durable":
                durable.append(int(n))
            elif int(n) >= waited + 100:    # kill while the writer keeps committing
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert durable == list(range(waited))

    con = sqlite3.connect(tmp_path / "cicbox.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    ids = stored_call_ids(tmp_path / "cicbox.db")
    assert len(ids) == len(set(ids))
    assert {f"b{n:05d}-{i}" for n in durable for i in range(4)} <= set(ids)
    # Whatever got in is a prefix of what was submitted: whole periods, in order.
    assert len(ids) % 4 == 0
    assert len(ids) // 4 >= waited + 100         # what the child saw committed is there too
    assert ids == [f"b{n:05d}-{i}" for n in range(len(ids) // 4) for i in range(4)]

    # The engine starts again on what the crash left.
    w = RecordWriter(tmp_path / "cicbox.db", tmp_path / "records.spool")
    w.start()
    try:
        assert w.alarm is None
        assert w.wait(w.submit([make_cdr("after-restart")], 0))
    finally:
        w.close()
    assert stored_call_ids(tmp_path / "cicbox.db")[-1] == "after-restart"
