"""The engine's busy-channel census (Engine.busy_channels, busy_trunks, busy_phones) against the line
machines' states, period by period, through two agents logging in and two calls answered, talked and
hung up: a channel is busy while its line machine is not idle."""

from __future__ import annotations

from pathlib import Path

from appliance.world import Caller, PhoneScript
from e1t1.analog.fxo import TrunkState
from e1t1.analog.fxs import PhoneState
from tests.e2e.harness import Site, site_yaml


def test_the_census_follows_the_line_machines_through_two_calls(tmp_path: Path) -> None:
    callers = [Caller(trunk=0, at_ms=3000, press_after_ms=500, hold_ms=8000),
               Caller(trunk=1, at_ms=5000, press_after_ms=500, hold_ms=8000)]
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=1000),
              PhoneScript(port=3, agent="1002", login_at_ms=200, answer_after_ms=1000)]
    site = Site(tmp_path, site_yaml(agents=2), callers, phones, keep_audio=False)
    try:
        eng = site.engine
        seen: list[tuple[int, int]] = []
        for _ in range(3000):                          # 30 s
            site.run(eng.period_ms)
            trunks = sum(1 for t in eng.trunks.values() if t.state is not TrunkState.IDLE)
            busy_phones = sum(1 for p in eng.phones.values() if p.state is not PhoneState.IDLE)
            assert (eng.busy_trunks, eng.busy_phones) == (trunks, busy_phones), eng.clock.now_ms
            assert eng.busy_channels == trunks + busy_phones
            if not seen or seen[-1] != (trunks, busy_phones):
                seen.append((trunks, busy_phones))
        assert all(c.hung_up_ms is not None for c in callers)
        assert (2, 2) in seen                         # both calls up at once: 4 busy channels
        assert (0, 1) in seen or (0, 2) in seen       # an agent dialling the login code is busy too
        assert seen[-1] == (0, 0) and eng.busy_channels == 0
        assert eng.stats["answered"] == 2
    finally:
        site.close()
