"""The event log of a running engine (virtual time): each CDR it writes equals its call's fold over the
stored events, and the report over the log agrees with the engine's own counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from appliance.figures import fold_call, report
from appliance.storage import Event, read_events
from appliance.storage.schema import CDR_COLUMNS
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml

TRUNKS = 4


def callers() -> list[Caller]:
    """A new call on each trunk every 2.5 s for 10 s: some hang up in the IVR, some queue and are answered,
    some give up waiting."""
    return [Caller(trunk=i % TRUNKS, at_ms=100 + 2500 * (i // TRUNKS) + 600 * (i % TRUNKS), ani=f"1371{i:07d}",
                   digits="" if i % 3 == 0 else "1", press_after_ms=100, hold_ms=600 + 100 * (i % 5),
                   patience_ms=300 if i % 3 == 0 else 900) for i in range(4 * TRUNKS)]


def test_each_cdr_is_its_calls_fold_and_the_report_matches_the_engine(tmp_path: Path) -> None:
    phones = [PhoneScript(port=TRUNKS + a, agent=str(1001 + a), login_at_ms=0, answer_after_ms=200) for a in range(2)]
    site = Site(tmp_path, site_yaml(agents=2, trunks=TRUNKS, answer_on_ring=1), callers(), phones, keep_audio=False)
    try:
        site.run(14_000)
        stats = dict(site.engine.stats)
    finally:
        site.close()
    db = tmp_path / "cicbox.db"
    con = sqlite3.connect(db)
    try:
        stored = {row[0]: dict(zip(CDR_COLUMNS, row, strict=True))
                  for row in con.execute(f"SELECT {', '.join(CDR_COLUMNS)} FROM cdr")}
    finally:
        con.close()
    events = read_events(db)
    calls: dict[str, list[Event]] = {}
    for e in events:
        if e.call_id is not None:
            calls.setdefault(e.call_id, []).append(e)
    assert {c["disposition"] for c in stored.values()} >= {"answered", "abandoned", "ivr_hangup"}
    assert set(calls) == set(stored)
    for call_id, cdr in stored.items():
        assert fold_call(calls[call_id]) == cdr, call_id
    assert [e.kind for e in events if e.kind == "boot"] == ["boot"]
    # The log's report says what the engine counted (no short abandons configured: offered = entered).
    (queue,) = report(events, "queue")["queues"].values()
    assert (queue["offered"], queue["answered"], queue["abandoned"]) == (
        stats["offered"], stats["answered"], stats["abandoned"])
    assert queue["answered"] > 0 and queue["abandoned"] > 0
    assert queue["asa_ms"] == round(stats["wait_ms_total"] / stats["answered"])
