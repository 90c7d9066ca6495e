"""The traffic generator: lazily made callers, the hotel profile's draws kept, one stream for a
trunk group, a day's curve by thinning, agents' logins within a few seconds."""

from __future__ import annotations

import itertools
import math
import random
import tracemalloc
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from appliance.config.loader import load_config
from appliance.world import Caller
from appliance.world.traffic import traffic, traffic_world

CONFIGS = Path(__file__).resolve().parent.parent.parent / "configs"
HOTEL = load_config(CONFIGS / "hotel.yaml")
BENCH = load_config(CONFIGS / "bench-240.yaml")
HOUR = 3600000


def hotel_profile_callers(config: Any, duration_ms: int, seed: int, erlang_per_trunk: float = 0.9,
                          mean_hold_s: float = 180.0, mean_patience_s: float = 240.0,
                          first_call_ms: int = 500) -> list[tuple[Any, ...]]:
    """The callers the hotel profile has always drawn (the generator as it was, a list made at once),
    as tuples of their fields."""
    rng = random.Random(seed)
    ports = list(config.ports)
    for _ in sorted(config.agents, key=lambda a: a.number):
        rng.randrange(0, 2000)
    menu_digits: list[str] = []
    for ivr in config.ivrs.values():
        menu_digits += [d for d, act in ivr.menu.items() if getattr(act, "queue", None)]
    menu_digits = sorted(set(menu_digits)) or ["1"]
    out = []
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
            out.append((idx, t, f"1380013{n_caller:04d}", rng.choice(menu_digits), 2500 + rng.randrange(0, 2000),
                        hold, patience, port.callerid))
            t += int(rng.expovariate(rate_per_ms))
    return out


def fields(c: Caller) -> tuple[Any, ...]:
    return (c.trunk, c.at_ms, c.ani, c.digits, c.press_after_ms, c.hold_ms, c.patience_ms, c.cid)


@pytest.mark.parametrize("seed", [20261125, 7])
def test_per_trunk_traffic_draws_the_hotel_profiles_callers(seed: int) -> None:
    want = hotel_profile_callers(HOTEL, HOUR, seed)
    got = [fields(c) for c in traffic(HOTEL, HOUR, seed).callers if c.span is None]
    # the same callers, now in order of arrival (ties by trunk); a PRI span's come after their draws
    assert got == sorted(want, key=lambda f: (f[1], f[0]))
    assert len(got) > 100


def test_the_agents_phones_keep_their_draws_and_log_in_within_a_few_seconds() -> None:
    small = traffic(HOTEL, HOUR, 20261125).phones
    assert [p.login_at_ms for p in small] == [200 + 150 * n for n in range(len(small))]   # as before
    rng = random.Random(20261125)
    assert [p.answer_after_ms for p in small] == [2500 + rng.randrange(0, 2000) for _ in small]
    big = traffic(BENCH, HOUR, 1).phones
    assert len(big) == 120
    assert max(p.login_at_ms or 0 for p in big) + 3000 <= 6500     # the last one logged in by 6.5 s
    assert len({p.login_at_ms for p in big}) == 120                 # one at a time


def test_an_agent_with_no_phone_of_its_own_gets_no_phone_in_the_world() -> None:
    # A site may have an agent who logs in at any phone: the world's phones are the others', as before.
    roaming = HOTEL.model_copy(update={"agents": (*HOTEL.agents, HOTEL.agents[0].model_copy(
        update={"number": "1999", "name": "Roaming", "phone": None}))})
    phones = traffic(roaming, HOUR, 20261125).phones
    assert [p.agent for p in phones] == [p.agent for p in traffic(HOTEL, HOUR, 20261125).phones]


def test_callers_are_made_as_they_are_taken_and_memory_stays_flat() -> None:
    tracemalloc.start()
    try:
        day = traffic(BENCH, 24 * HOUR, 3, offered_erlang=150.0).callers    # ~72,000 callers
        first = list(itertools.islice(day, 1000))
        base, _ = tracemalloc.get_traced_memory()
        ((n, last),) = deque(enumerate(day, start=1), maxlen=1)               # taken and let go
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first[0].at_ms == 500 and last.at_ms < 24 * HOUR
    assert n > 60000
    assert peak - base < 256 * 1024, (base, peak)       # no list of the day behind the stream


def test_one_stream_offers_the_trunk_group_its_load() -> None:
    callers = list(traffic(BENCH, HOUR, 11, offered_erlang=150.0).callers)
    assert all(c.trunk is None and c.cid is None for c in callers)    # the exchange hunts and sends the trunk's
    expected = 150.0 / 180.0 * 3600                                   # arrivals: erlang / mean hold, per second
    assert abs(len(callers) - expected) < 5 * math.sqrt(expected)
    assert callers[0].at_ms == 500
    assert all(a.at_ms <= b.at_ms for a, b in itertools.pairwise(callers))
    assert [fields(c) for c in traffic(BENCH, HOUR, 11, offered_erlang=150.0).callers] == \
        [fields(c) for c in callers]                                  # deterministic per seed
    assert [c.at_ms for c in traffic(BENCH, HOUR, 12, offered_erlang=150.0).callers][:20] != \
        [c.at_ms for c in callers][:20]


def day_curve(ms: int) -> float:
    """Night low, busy hours at 10 and 15 o'clock."""
    h = ms / HOUR
    return 0.1 + math.exp(-((h - 10) ** 2) / 2) + math.exp(-((h - 15) ** 2) / 2)


def test_a_curve_scales_the_arrival_rate_by_thinning() -> None:
    day = list(traffic(BENCH, 24 * HOUR, 5, offered_erlang=100.0, curve=day_curve).callers)
    per_hour = [0] * 24
    for c in day:
        per_hour[c.at_ms // HOUR] += 1
    rate_h = 100.0 / 180.0 * 3600
    for h in (3, 10, 15, 22):
        mean = rate_h * sum(day_curve(h * HOUR + m * 60000) for m in range(60)) / 60
        assert abs(per_hour[h] - mean) < 5 * math.sqrt(mean), (h, per_hour[h], mean)
    assert per_hour[10] > 5 * per_hour[3]
    half = list(traffic(BENCH, HOUR, 5, offered_erlang=100.0, curve=lambda ms: 0.5).callers)
    assert abs(len(half) - rate_h / 2) < 5 * math.sqrt(rate_h / 2)
    none = list(traffic(BENCH, HOUR, 5, offered_erlang=100.0, curve=lambda ms: 0.0).callers)
    assert none == []
    with pytest.raises(ValueError, match="must not be negative"):
        traffic(BENCH, HOUR, 5, offered_erlang=100.0, curve=lambda ms: -1.0)


def test_per_trunk_traffic_with_a_curve_still_one_trunk_stream_each() -> None:
    callers = list(traffic(HOTEL, HOUR, 5, curve=lambda ms: 0.0 if ms > HOUR // 2 else 1.0).callers)
    late = [c for c in callers if c.at_ms > HOUR // 2]
    assert callers and not late
    assert {c.trunk for c in callers if c.span is None} <= {i for i, p in enumerate(HOTEL.ports) if p.kind == "fxo"}


def test_a_traffic_world_lets_finished_callers_go_unless_asked_to_keep_them() -> None:
    assert traffic_world(HOTEL, HOUR, 1).callers == []
    kept = traffic_world(HOTEL, HOUR, 1, keep_callers=True)
    assert kept.callers == []           # kept as the world takes them, while it runs
