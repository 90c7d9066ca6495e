"""Child process of the crash tests: an engine on a Site in virtual time, reporting as it goes.

``crash_child.py STATE`` (the kill -9 test): steady traffic on two trunks; one JSON line per
control period in which something changed: {"released": [call ids whose CDR is durable], "up": n}.

``crash_child.py STATE six``: six trunks, six agents, six callers who stay on the line; the loop
is the CLI's (cicbox run's signal handling and shutdown path). Each changed period:
{"t": engine ms, "live": [ids of calls in progress], "up": n, "released": [durable CDR ids]}.

``crash_child.py STATE loop SEED``: the crash loop's engine: traffic from a seeded random on four
trunks, two agents; first line {"ready": boot, "agents": {number: state}, "recovered": [ids]}
(the state restored at start), then each changed period {"t": ms, "acked": [newly durable call
ids], "first_ms": engine ms the run's first call (placed at 0 ms) was acknowledged, answered; or null,
"live": the calls in progress}.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from appliance import cli
from appliance.config.store import ConfigStore
from appliance.engine import Engine
from appliance.world import Caller, PhoneScript, World
from tests.e2e.harness import Site, site_yaml

LOOP_TRUNKS = 4
LOOP_AGENTS = 2


def steady(state: Path) -> None:
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


def six(state: Path) -> None:
    callers = [Caller(trunk=i, at_ms=500 + 300 * i, ani=f"1390000{i:04d}", press_after_ms=300, hold_ms=3_600_000,
                      patience_ms=3_600_000) for i in range(6)]
    phones = [PhoneScript(port=6 + a, agent=str(1001 + a), login_at_ms=0, answer_after_ms=300) for a in range(6)]
    stop = cli._stop_on_signals()
    site = Site(state, site_yaml(agents=6, trunks=6, answer_on_ring=1), callers, phones, keep_audio=False)
    engine = site.engine
    period = engine.run_period
    last: tuple[object, ...] | None = None

    def run_period() -> None:
        nonlocal last
        period()
        live = sorted(engine.calls)
        released = sorted(r.call_id for r in engine.released_log)
        if (live, released) != last:
            last = (live, released)
            print(json.dumps({"t": engine.clock.now_ms, "live": live, "up": len(live), "released": released}),
                  flush=True)

    engine.run_period = run_period  # type: ignore[method-assign]  # report each period, through the CLI loop
    try:
        cli._serve(engine, None, stop)
    finally:
        engine.close()
        stop.uninstall()
    print(json.dumps({"exited": True, "released": sorted(r.call_id for r in engine.released_log)}), flush=True)


def loop(state: Path, seed: int) -> None:
    rnd = random.Random(seed)
    # The first caller comes at once: the engine must take a call right after its restart.
    callers = [Caller(trunk=0, at_ms=0, ani="1380000000", press_after_ms=200, hold_ms=300)]
    t = 1500
    for i in range(200):
        callers.append(Caller(trunk=1 + i % (LOOP_TRUNKS - 1), at_ms=t, ani=f"1381{seed % 1000:03d}{i:04d}",
                              press_after_ms=200, hold_ms=rnd.randrange(300, 4000), patience_ms=8000))
        t += rnd.randrange(300, 1500)
    phones = [PhoneScript(port=LOOP_TRUNKS + a, agent=str(1001 + a), login_at_ms=0, answer_after_ms=200)
              for a in range(LOOP_AGENTS)]
    # The world's own far-side modem (not spandsp's): the loop is about restarts, not signals, and runs faster.
    store = ConfigStore(state)
    text = state / "site.yaml"
    text.write_text(site_yaml(agents=LOOP_AGENTS, trunks=LOOP_TRUNKS, answer_on_ring=1))
    store.bootstrap(text)
    cur = store.current()
    assert cur is not None
    engine = Engine(state, cur.config, cur.version, clock="virtual", store=store,
                    world=World(callers, phones, zone="cn", keep_audio=False))
    snap = engine.snapshot()
    print(json.dumps({"ready": engine.boot, "agents": {a["number"]: a["state"] for a in snap["agents"]},
                      "recovered": [r.call_id for r in engine.released_log if r.disposition == "system_restart"]}),
          flush=True)
    acked: set[str] = {r.call_id for r in engine.released_log}
    first_ms: int | None = None
    while True:
        engine.run_for(engine.period_ms)
        new = [r for r in engine.released_log if r.call_id not in acked]
        if new:
            acked.update(r.call_id for r in new)
            if first_ms is None and any(r.disposition == "answered" and r.call_id == f"{engine.boot}-000001"
                                        for r in new):
                first_ms = engine.clock.now_ms
            print(json.dumps({"t": engine.clock.now_ms, "acked": [r.call_id for r in new], "first_ms": first_ms,
                              "live": sorted(engine.calls)}), flush=True)


def main() -> None:
    state = Path(sys.argv[1])
    scenario = sys.argv[2] if len(sys.argv) > 2 else "steady"
    if scenario == "six":
        six(state)
    elif scenario == "loop":
        loop(state, int(sys.argv[3]))
    else:
        steady(state)


if __name__ == "__main__":
    main()
