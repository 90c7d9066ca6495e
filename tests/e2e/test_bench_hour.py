"""bench/virtual_hour.py on the benchmark site, as CI runs it: a 10-minute hour twice with one seed on
the PRI site (8 E1 spans against the world's network-side stack), both runs storing the same records;
beside it the analog variant (120 FXO trunks), whose trunks run near full (the peak reaches all 240
channels, the mean at least 200), and the PRI run with echo cancellers on. Wall time is reported by
the bench, never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def result() -> Any:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "virtual_hour.py"), "--minutes", "10", "--runs", "2",
                          "--no-reference"], capture_output=True, text=True, check=True, timeout=1200)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_bench_site_repeats_and_reports_both_variants(result: Any) -> None:
    assert result["profile"] == "bench-240.yaml"
    assert result["digest_identical_across_runs"] is True, result
    assert result["callers"] > 1000, result                    # the hour's callers came to the spans
    assert set(result["cpu_s"]) == {"world", "media", "control", "writer"}
    assert set(result["answered_by_kind"]) == {"fxo", "pri"} and result["answered_by_kind"]["fxo"] == 0
    assert result["idle_period_us"] > 0
    assert result["wall_s"] > 0 and result["wall_s_fxo"] > 0 and result["wall_s_no_spans"] > 0
    assert isinstance(result["span_overhead_pct"], float) and result["spans_added"] == 8
    # with and without the spans in three pairs, the figure the median of the pairs' figures
    fxo_runs, no_spans_runs = result["wall_s_fxo_runs"], result["wall_s_no_spans_runs"]
    assert len(fxo_runs) == len(no_spans_runs) == 3, result
    assert result["wall_s_fxo"] == sorted(fxo_runs)[1] and result["wall_s_no_spans"] == sorted(no_spans_runs)[1]
    pairs = [round((w / n - 1) * 100, 1) for w, n in zip(fxo_runs, no_spans_runs, strict=True)]
    assert result["span_overhead_pct_pairs"] == pairs and result["span_overhead_pct"] == sorted(pairs)[1]
    # beside it, the same run with 128 taps on every trunk channel's echo canceller (reported only)
    assert result["echo_on_taps"] == 128 and result["wall_s_echo_on"] > 0, result
    assert isinstance(result["echo_overhead_pct"], float) and isinstance(result["echo_on_digest_identical"], bool)


def test_the_analog_variant_runs_its_trunks_full(result: Any) -> None:
    fxo = result["fxo"]
    assert fxo["peak_busy_channels"] == 240, fxo
    assert fxo["mean_busy_channels"] >= 200, fxo
    assert fxo["answered"] > 0 and fxo["blocked"] > 0, fxo   # offered above what the trunks carry
    assert fxo["answered_by_kind"]["pri"] == 0 and fxo["answered_by_kind"]["fxo"] > 0
    assert fxo["fsyncs_per_s"] > 0


def test_the_pri_site_runs_its_b_channels_full(result: Any) -> None:
    assert result["answered"] > 0 and result["blocked"] > 0, result   # offered above what the spans carry
    assert result["answered_by_kind"]["pri"] > 0, result
    assert result["peak_pri_calls"] == 240, result
    assert result["mean_pri_calls"] >= 200, result
    assert result["fsyncs_per_s"] > 0
