"""bench/virtual_hour.py on the benchmark site, as CI runs it: a 10-minute hour twice with one seed.
The trunks run near full (the peak reaches all 240 channels, the mean at least 200) and both runs store
the same records; the run with the trunks' echo cancellers on is reported beside it. Wall time is
reported by the bench, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_site_runs_full_and_repeats() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "virtual_hour.py"), "--minutes", "10", "--runs", "2",
                          "--no-reference"], capture_output=True, text=True, check=True, timeout=900)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["profile"] == "bench-240.yaml"
    assert result["peak_busy_channels"] == 240, result
    assert result["mean_busy_channels"] >= 200, result
    assert result["digest_identical_across_runs"] is True, result
    assert result["answered"] > 0 and result["blocked"] > 0, result   # offered above what the trunks carry
    assert set(result["cpu_s"]) == {"world", "media", "control", "writer"}
    assert result["idle_period_us"] > 0
    assert result["fsyncs_per_s"] > 0
    # beside it, the same run with 128 taps on every trunk channel's echo canceller (reported only)
    assert result["echo_on_taps"] == 128 and result["wall_s_echo_on"] > 0, result
    assert isinstance(result["echo_overhead_pct"], float) and isinstance(result["echo_on_digest_identical"], bool)
