"""An idle control period costs the same Python work at 24 ports as at 240 (issue 10: "a loop whose idle
periods are cheap"): nothing scans every channel, call or agent each period.

Work is counted, not timed: the Python function calls (sys.setprofile's "call" events, this thread)
over the same idle periods of two engines on generated bench sites, 12 trunks and 12 phones against
120 and 120, once with nobody logged in and once with every agent logged in and ready. The periods
counted span several seconds of engine clock, so the once-a-second work (the writer's heartbeat, the
snapshot's time, the watchdog) is in them. The writer's barrier (``RecordWriter.wait``: a wait for its
thread, whose calls depend on how far that thread got) is counted as one call, its inside not.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from appliance.config import load_config
from appliance.engine import Engine
from bench.bench_site import site_yaml

PERIODS = 350           # 3.5 s of engine clock at 10 ms


def idle_calls(tmp: Path, trunks: int, phones: int, logged_in: bool) -> Counter[tuple[str, str]]:
    """The Python calls of PERIODS idle periods, by (file, function)."""
    tmp.mkdir()
    (tmp / "site.yaml").write_text(site_yaml(trunks, phones, 8))
    cfg = load_config(tmp / "site.yaml")
    eng = Engine(tmp, cfg, 1, clock="virtual")
    calls: Counter[tuple[str, str]] = Counter()
    counting = False

    def count(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            calls[(Path(frame.f_code.co_filename).name, frame.f_code.co_name)] += 1

    real_wait = eng.writer.wait

    def barrier(seq: int, timeout_s: float | None = None) -> bool:
        sys.setprofile(None)
        try:
            return real_wait(seq, timeout_s)
        finally:
            sys.setprofile(count if counting else None)

    eng.writer.wait = barrier       # type: ignore[method-assign]
    try:
        if logged_in:
            for agent in cfg.agents:
                assert agent.phone is not None and eng.acd.login(agent.number, agent.phone)
        eng.run_for(2000)
        start = eng.clock.now_ms
        counting = True
        sys.setprofile(count)
        try:
            for _ in range(PERIODS):
                eng.run_period()
        finally:
            sys.setprofile(None)
            counting = False
        assert calls[("engine.py", "run_period")] == PERIODS
        assert eng.clock.now_ms == start + PERIODS * eng.period_ms
        assert eng.calls == {} and eng.busy_channels == 0          # idle all along
        ready = sum(1 for a in eng.acd.agents.values() if a.state.value == "ready")
        assert ready == (phones if logged_in else 0)
    finally:
        eng.close()
    return calls


@pytest.mark.parametrize("logged_in", [False, True], ids=["nobody logged in", "every agent ready"])
def test_an_idle_period_costs_the_same_calls_at_24_and_at_240_ports(tmp_path: Path, logged_in: bool) -> None:
    small = idle_calls(tmp_path / "small", 12, 12, logged_in)
    large = idle_calls(tmp_path / "large", 120, 120, logged_in)
    differ = {k: (small[k], large[k]) for k in small.keys() | large.keys() if small[k] != large[k]}
    assert differ == {}, f"calls that grow with the ports (24 ports, 240 ports): {differ}"
    assert sum(small.values()) == sum(large.values())
