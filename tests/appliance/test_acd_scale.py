"""The ACD scale benchmark, tiny: the router half's oracle on a small population (every decision of
the production router decided again by the bench's brute-force scan), and the sim-card half's whole
calls through the appliance on a small site."""

from __future__ import annotations

from bench.acd_scale import run as router_run
from bench.acd_scale import sim_run


def test_router_agrees_with_the_brute_force_scan_on_every_decision() -> None:
    out = router_run(callers=30, agents=60, queues=12, events=4_000, periods=18, freed=15, check_fraction=1.0)
    assert out["oracle_checks"] >= 2_000
    assert out["checked_periods"] == 2 and out["periods"] == 18     # one period in ten re-checked, untimed
    assert out["oracle_mismatches"] == 0, out["mismatch_examples"]
    assert out["largest_queue"] == 60


def test_sim_card_run_answers_every_caller_and_reports_the_figures() -> None:
    # 2 trunks routed straight to the queue, 3 agents all ready when the first callers come:
    # 2 callers a trunk, 2.5 s apart, each answered by an agent, 1 s of talk, hung up.
    out = sim_run(trunks=2, phones=3, calls_per_trunk=2)
    assert out["sim_callers"] == 4
    assert out["sim_calls"] == 4            # connected to an agent, talked, hung up
    assert out["sim_answered"] == 4         # the appliance's own count of answered calls
    assert out["sim_blocked"] == 0 and out["sim_released"] == 0
    assert set(out["cpu_ms_per_call"]) == {"media", "control", "writer"}
    for key in ("setups_per_s", "fsyncs_per_s", "world_cpu_ms_per_call"):
        assert out[key] is not None and out[key] >= 0


def test_cpu_parts_timed_while_the_core_was_taken_away_never_make_control_negative() -> None:
    from bench.virtual_hour import cpu_split

    assert cpu_split(2.0, 0.5, 0.5) == (0.5, 0.5, 1.0, False)
    world, media, control, scaled = cpu_split(1.0, 0.75, 0.5)     # 1.25 s of parts in 1 s of the thread's CPU
    assert (round(world, 6), round(media, 6), control, scaled) == (0.6, 0.4, 0.0, True)
