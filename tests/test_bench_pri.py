"""bench/pri.py in a tiny run: it ends, its last line is JSON with every figure of the issue's
Benchmark, the setup cycles all succeed (our user side against our network side through the sim
card's framed spans) and libpri's pair ran (or says why not). Speeds are reported, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.pri import SetupBench

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"q931_msgs_per_s", "setups_per_s", "calls_failed", "speed_vs_realtime", "libpri_setups_per_s"}


def test_the_pri_bench_reports_every_figure() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "pri.py"), "--seconds", "0.6", "--spans", "2"],
                         capture_output=True, text=True, check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) >= KEYS, result
    assert result["bench"] == "pri" and result["spans"] == 2
    assert result["q931_msgs_per_s"] > 0 and result["setups_per_s"] > 0 and result["speed_vs_realtime"] > 0
    assert result["calls_failed"] == 0 and result["cycles"] > 0
    if result["libpri_setups_per_s"] is None:
        assert result["libpri_reason"], result            # null only with the reason
    else:
        assert result["libpri_setups_per_s"] > 0 and result["libpri_reason"] is None


def test_the_setup_cycles_cross_the_framed_spans_and_leave_every_b_channel_idle() -> None:
    bench = SetupBench(spans=1, inflight=4)
    try:
        got = bench.run(0.3)
        assert got["cycles"] > 0 and got["calls_failed"] == 0
        assert got["setups_per_line_s"] <= 100                    # one D-channel's 64 kb/s bounds it
        status = bench.lc.card.span_status(0).dchan
        assert status is not None and status.frames_tx > 4 * got["cycles"] and status.bad_fcs == 0
        assert bench.users[0].control.status()["b_idle"] == 30
        assert bench.network.status()["span1"]["calls"] == 0
    finally:
        bench.close()
