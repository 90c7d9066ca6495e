"""bench/echo.py runs and reports every figure the issue names (a tiny run: nothing is timed or
asserted on its speed). Our bank's figures are present exactly when the kernels have it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dsp.scheduler import lib

ROOT = Path(__file__).resolve().parent.parent.parent
KEYS = ("ours_ch_per_core_128", "ours_ch_per_core_256", "spandsp_ch_per_core_128", "spandsp_ch_per_core_256",
        "spandsp_shipped_ch_per_core_128", "ratio_vs_spandsp_128", "ratio_vs_spandsp_256",
        "erle_db_ours_128", "erle_db_spandsp_128", "isa")


def test_the_bench_reports_every_figure() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "echo.py"), "--channels", "2", "--seconds", "0.5",
                           "--runs", "1", "--shipped-runs", "1", "--quality-channels", "2"],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(KEYS) <= set(out)
    for key in ("spandsp_ch_per_core_128", "spandsp_ch_per_core_256", "spandsp_shipped_ch_per_core_128"):
        assert out[key] > 0
    assert out["erle_db_spandsp_128"] > 10      # converged over seconds 4-6 (2B with NLP off)
    ours = hasattr(lib, "cb_echo_process")
    for key in ("ours_ch_per_core_128", "ours_ch_per_core_256", "ratio_vs_spandsp_128", "ratio_vs_spandsp_256",
                "erle_db_ours_128"):
        assert (out[key] is not None) == ours, key
