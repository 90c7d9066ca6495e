"""The ACD scale benchmark's oracle on a tiny population: every decision of the production router
is decided again by the bench's brute-force scan, and they agree."""

from __future__ import annotations

from bench.acd_scale import run


def test_router_agrees_with_the_brute_force_scan_on_every_decision() -> None:
    out = run(callers=30, agents=60, queues=12, events=4_000, periods=2, freed=15, check_fraction=1.0)
    assert out["oracle_checks"] >= 2_000
    assert out["oracle_mismatches"] == 0, out["mismatch_examples"]
    assert out["largest_queue"] == 60
