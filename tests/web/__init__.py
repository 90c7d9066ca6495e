"""The panel's tests run against a real engine: an Engine on the virtual clock with its
ControlServer and a scripted world (tests.e2e.harness.Site), its control.sock answered from
a thread while its clock stands still (`Site.serving()`), so the panel sees only what the
engine really reports.

The script of the live site (site_yaml: two trunks answering on the second ring, one agent,
the cn ring cadence of 1000 ms on, 4000 ms off [line-signals.md]):

- agent 1001 ("Agent 1") logs in from phone1 at once, and answers a ring after 8 s;
- caller 13800138000 rings trunk1 at 1 s: answered at 6 s (second ring), presses 1 at 6.5 s
  (in the queue at once, offered to the agent, whose phone rings), connected at about 14.5 s;
- caller 13900139000 rings trunk2 at 12 s: answered at 17 s, in the queue from 17.5 s, and
  waits there (the one agent is talking).
"""

from __future__ import annotations

from pathlib import Path

from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml

FIRST_ANI, SECOND_ANI = "13800138000", "13900139000"
OFFERED_AT = 9000       # ms: the first call offered to the agent, the phone ringing
TALKING_AT = 21000      # ms: the first call connected, the second queued

QUIET_SITE = """\
site:
  name: Quiet Site
  zone: cn
  law: alaw
  epoch: "2026-03-01T09:30:00"
card:
  backend: sim
  k: 4
ports:
  - {kind: fxo, name: trunk1, number: '075588880001', callerid: none}
spans: []
"""


def live_site(state: Path, agent_name: str = "Agent 1") -> Site:
    callers = [Caller(trunk=0, at_ms=1000, ani=FIRST_ANI, press_after_ms=500, hold_ms=600000),
               Caller(trunk=1, at_ms=12000, ani=SECOND_ANI, press_after_ms=500, hold_ms=600000)]
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=8000)
    text = site_yaml(agents=1).replace("name: 'Agent 1'", f"name: '{agent_name}'")
    return Site(state, text, callers, [phone], keep_audio=False)


def quiet_site(state: Path) -> Site:
    """One idle trunk, no agents, no queues: nothing happens."""
    return Site(state, QUIET_SITE, [], [], keep_audio=False)
