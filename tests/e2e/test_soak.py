"""The soak's one-hour version (`make soak` runs 24 virtual hours of the day's curve): one busy hour of
the benchmark site's analog variant, checked as the soak checks each hour (bench/soak.py)."""

from __future__ import annotations

import io
import json

from bench.soak import FD_BOUND, RSS_BOUND_MIB, soak


def test_busy_hour_soak_memory_flat_nothing_stuck_nothing_leaked() -> None:
    out = io.StringIO()
    summary = soak(1, busy_hour_only=True, out=out)
    hour = json.loads(out.getvalue().splitlines()[-1])
    assert hour["offered"] > 1000, hour                      # the hour carried the bench's traffic
    assert summary["max_rss_growth_mib"] <= RSS_BOUND_MIB, summary
    assert summary["max_fd_growth"] <= FD_BOUND, summary
    assert summary["db_within_records"], summary
    assert summary["stuck"] == 0, summary["stuck_first"]
    assert summary["leaked"] == 0, summary["leaked_first"]
    assert summary["calls_left_after_drain"] == 0, summary
    assert summary["busy_lines_after_drain"] == 0, summary
    assert summary["records_not_yet_durable"] == 0, summary
