"""A PRI span's alarm through the engine, against libpri, in virtual time: LOS for 10 s (span.fault, as an
installer injects it on the sim card: the line towards us loses its signal) with 5 calls up clears them
when red is declared (2.5-2.6 s after the LOS began), cause 38, disposition line_fault; the span is down
in span status meanwhile; once its RECOVER (5 s) has ended our RESTART (class 7) is acknowledged, which
clears the peer's calls (the far end saw only our RAI), and a new call connects within 8 s of the LOS's
end on the first B-channel the peer hunts. A cut (both directions) the same, the peer clearing its own
calls at its red (38)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import site_yaml
from tests.e2e.pri_site import PriSite, call, pri_site_yaml
from tests.peers.pri_peer import BIN

pytestmark = pytest.mark.skipif(not BIN.exists(), reason="tests/peers/bin/pri_peer is not built (make setup)")


# (kind, our signalling, the B-channel the peer's hunting takes first: its network side the lowest, its user
# side the highest)
# los: the line towards us loses its signal (the far end sees our RAI); cut: both directions (the far end
# goes red too and clears its own calls, as chan_dahdi does)
@pytest.mark.parametrize(("kind", "signalling", "first", "fault"),
                         [("e1", "pri_cpe", 1, "los"), ("t1", "pri_net", 23, "los"), ("e1", "pri_cpe", 1, "cut")],
                         ids=["e1-user-los", "t1-network-los", "e1-user-cut"])
def test_los_with_five_calls_up(tmp_path: Path, kind: str, signalling: str, first: int, fault: str) -> None:
    text = pri_site_yaml(site_yaml(agents=1), kind, signalling)
    ps = PriSite(tmp_path, text, [], kind=kind, signalling=signalling, enable_faults=True,
                 script=[call(1500 + 50 * i, ani=f"1380013800{i}") for i in range(5)])
    try:
        ps.up()
        ps.until(lambda: len(ps.peer.named("answer")) == 5, 2000, "5 calls answered")
        step = 1 if first == 1 else -1
        assert [e["channel"] for e in ps.peer.named("answer")] == [first + step * i for i in range(5)]
        ps.run(3000)                                   # up past libpri's T313: 5 calls in the IVR
        assert len(ps.engine.calls) == 5
        los_at = ps.now
        done = ps.site.request("span.fault", span="span1", fault=fault, ms=10_000)
        assert done["clears_at_ms"] == los_at + 10_000
        ps.until(lambda: not ps.engine.calls, 3000, "the calls cleared at red")
        cleared_at = ps.now
        assert 2500 <= cleared_at - los_at <= 2600 + ps.engine.period_ms
        st = ps.pri_status()
        assert (st["alarm"], st["dchan"], st["calls"]) == (True, "down", 0)
        ps.until(lambda: ps.now >= los_at + 10_000, 10_000, "the LOS's end")
        los_end = los_at + 10_000
        if fault == "los":      # the far end lost nothing (LOS on our side of the line): its calls end with our RESTART
            assert ps.peer.named("hangup") == []
        else:                   # the far end went red too and cleared its own calls
            assert sorted((e["cause"], e.get("local")) for e in ps.peer.named("hangup")) == [(38, True)] * 5
        restart = ps.peer_event(lambda e: e["event"] == "restart" and e["t_ms"] > los_at, 8000)
        assert restart["channel"] is None                      # class 7, every B-channel
        assert restart["t_ms"] - los_end >= 5000                # after RECOVER (5 s after the LOS cleared)
        ps.until(lambda: ps.pri_status()["restarting"] == 0 and ps.pri_status()["dchan"] == "up", 1000,
                 "our RESTART acknowledged")
        st = ps.pri_status()
        assert (st["alarm"], st["calls"], st["b_busy"], st["b_idle"]) == (False, 0, 0, len(ps.span.chan_of))
        # the peer holds no call: its hunting takes the first B-channel again
        ps.do(call(0, ani="13900139000"))
        answer = ps.peer_event("answer", 3000)
        assert (answer["call"], answer["channel"]) == (6, first) and answer["t_ms"] - los_end <= 8000
        [c] = ps.engine.calls.values()
        assert (c.ani, c.state.name) == ("13900139000", "IVR")
    finally:
        assert ps.close() == 0
    rows = ps.cdrs()
    faulted = [r for r in rows if r["ani"] != "13900139000"]
    assert len(faulted) == 5
    assert {(r["disposition"], r["cause"]) for r in faulted} == {("line_fault", 38)}
    assert all(2500 <= r["end_ms"] - los_at <= 2600 for r in faulted), [r["end_ms"] - los_at for r in faulted]
    assert max(r["end_ms"] for r in faulted) <= cleared_at
