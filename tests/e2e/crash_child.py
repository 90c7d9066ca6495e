"""Child process of the crash test: an engine with steady traffic, reporting released calls.

Prints one JSON line per control period in which something changed:
{"released": [call ids whose CDR is committed], "up": number of calls in progress}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml


def main() -> None:
    state = Path(sys.argv[1])
    callers = [Caller(trunk=i % 2, at_ms=1000 + 9000 * i, ani=f"1370000{i:04d}", press_after_ms=500,
                      hold_ms=4000 + 2000 * (i % 3)) for i in range(40)]
    phones = [PhoneScript(port=2 + a, agent=str(1001 + a), login_at_ms=0, answer_after_ms=1000) for a in range(2)]
    site = Site(state, site_yaml(agents=2), callers, phones, keep_audio=False)
    released: set[str] = set()
    last = None
    while True:
        site.run(site.engine.period_ms)
        live = set(site.engine.calls)
        done = {r.call_id for r in getattr(site.engine, "released_log", [])}
        released |= done
        state_now = (len(released), len(live))
        if state_now != last:
            last = state_now
            print(json.dumps({"released": sorted(released), "up": len(live)}), flush=True)


if __name__ == "__main__":
    main()
