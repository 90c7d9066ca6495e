"""The demo's and the benchmark's traffic: Poisson arrivals on every trunk, agents logged in."""

from __future__ import annotations

import random
from typing import Any

from appliance.world.world import Caller, FarSignals, PhoneScript, World


def traffic_world(config: Any, duration_ms: int, seed: int, erlang_per_trunk: float = 0.9,
                  mean_hold_s: float = 180.0, mean_patience_s: float = 240.0, first_call_ms: int = 500,
                  signals: FarSignals | None = None) -> World:
    """A world for `config`: every agent logs in at its phone; callers arrive on each trunk as
    a Poisson process offering `erlang_per_trunk` with exponential holding times (mean
    `mean_hold_s`); each caller picks a menu digit at random. The first caller comes at once,
    so a short demo shows a whole call. `signals`: see :class:`World`."""
    rng = random.Random(seed)
    ports = list(config.ports)
    port_index = {p.name: i for i, p in enumerate(ports)}
    phones = []
    for n, a in enumerate(sorted(config.agents, key=lambda a: a.number)):
        phones.append(PhoneScript(port=port_index[a.phone], agent=a.number, login_at_ms=200 + 150 * n,
                                  answer_after_ms=2500 + rng.randrange(0, 2000)))
    menu_digits: list[str] = []
    for ivr in config.ivrs.values():
        menu_digits += [d for d, act in ivr.menu.items() if getattr(act, "queue", None)]
    menu_digits = sorted(set(menu_digits)) or ["1"]
    callers = []
    rate_per_ms = erlang_per_trunk / (mean_hold_s * 1000.0)
    n_caller = 0
    for idx, port in enumerate(ports):
        if port.kind != "fxo":
            continue
        t = first_call_ms + idx * 300 if idx < 2 else int(rng.expovariate(rate_per_ms))
        while t < duration_ms:
            n_caller += 1
            hold = max(5000, int(rng.expovariate(1 / (mean_hold_s * 1000.0))))
            patience = max(10000, int(rng.expovariate(1 / (mean_patience_s * 1000.0))))
            callers.append(Caller(trunk=idx, at_ms=t, ani=f"1380013{n_caller:04d}", digits=rng.choice(menu_digits),
                                  press_after_ms=2500 + rng.randrange(0, 2000), hold_ms=hold, patience_ms=patience,
                                  cid=port.callerid if port.callerid != "none" else "none"))
            t += int(rng.expovariate(rate_per_ms))   # arrivals on a busy trunk are blocked by the world
    zone = config.site.zone
    return World(callers, phones, zone=zone, signals=signals)
