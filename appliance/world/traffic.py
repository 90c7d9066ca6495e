"""The demo's, the benchmark's and the soak's traffic: Poisson arrivals, agents logged in.

Callers are made lazily, in order of arrival, as the world takes them (a day of traffic is never
a list): per trunk (today's hotel profile: every trunk its own Poisson stream, an arrival on a busy
trunk blocked; every PRI span too, after the trunks, its callers placed by the world's far exchange
with the span's number as DNIS), or as one stream offered to the whole group, which the exchange
hunts (the lowest-numbered free FXO trunk, then the first PRI span with a B-channel free; blocked
when none is). A `curve` scales the arrival rate over the run (a day's traffic: night low, two busy
hours), by thinning; the same seed gives the same callers.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.world.exchange import PriSpan, pri_spans
from appliance.world.world import Caller, FarSignals, PhoneScript, World

LOGIN_SPREAD_MS = 3000      # agents' logins start within this long (150 ms apart on a small site)
CURVE_STEP_MS = 1000        # a curve's largest value is taken from samples this far apart


@dataclass
class Traffic:
    """A run's traffic: the agents' phones, the callers (lazily, in order of arrival), the caller ID
    each FXO trunk expects (for callers the exchange hunts onto the group), and the site's PRI spans
    (their far end the world's far exchange)."""

    phones: list[PhoneScript]
    callers: Iterator[Caller]
    trunk_cid: dict[int, str]
    pri_spans: list[PriSpan]


def traffic(config: Any, duration_ms: int, seed: int, *, erlang_per_trunk: float = 0.9,
            mean_hold_s: float = 180.0, mean_patience_s: float = 240.0, first_call_ms: int = 500,
            offered_erlang: float | None = None, curve: Callable[[int], float] | None = None,
            max_hold_s: float | None = None, max_patience_s: float | None = None,
            press_after_ms: tuple[int, int] = (2500, 4500), erlang_per_span: float | None = None) -> Traffic:
    """The traffic of :func:`traffic_world` (same arguments), without the world."""
    if press_after_ms[0] < 0 or press_after_ms[1] <= press_after_ms[0]:
        raise ValueError(f"press_after_ms must be a range (low, high) of ms, low >= 0: {press_after_ms}")
    rng = random.Random(seed)
    ports = list(config.ports)
    # an agent with no phone of its own (one who logs in at any phone) has none in the world to log in from
    agents = sorted((a for a in config.agents if a.phone is not None), key=lambda a: a.number)
    step = min(150, LOGIN_SPREAD_MS // max(1, len(agents)))
    port_index = {p.name: i for i, p in enumerate(ports)}
    phones = []
    for n, a in enumerate(agents):
        login = f"{config.acd.features.login}{a.number}{'*' + a.pin if a.pin else ''}#"   # the site's code
        phones.append(PhoneScript(port=port_index[a.phone], agent=a.number, login_at_ms=200 + step * n,
                                  answer_after_ms=2500 + rng.randrange(0, 2000), login=login))
    menu_digits: list[str] = []
    for ivr in config.ivrs.values():
        menu_digits += [d for d, act in ivr.menu.items() if act.queue_names()]
    menu_digits = sorted(set(menu_digits)) or ["1"]
    cid_of = {i: (p.callerid if p.callerid != "none" else "none") for i, p in enumerate(ports) if p.kind == "fxo"}
    gen = _Generator(rng, menu_digits, mean_hold_s, mean_patience_s, duration_ms, curve,
                     max_hold_s=max_hold_s, max_patience_s=max_patience_s, press_after_ms=press_after_ms)
    spans = pri_spans(config)
    callers: Iterator[Caller]
    if offered_erlang is None:
        callers = gen.per_trunk(sorted(cid_of), cid_of, erlang_per_trunk, first_call_ms, spans,
                                erlang_per_trunk if erlang_per_span is None else erlang_per_span)
    else:
        callers = gen.group(offered_erlang, first_call_ms)
    return Traffic(phones, callers, cid_of, spans)


def traffic_world(config: Any, duration_ms: int, seed: int, *, erlang_per_trunk: float = 0.9,
                  mean_hold_s: float = 180.0, mean_patience_s: float = 240.0, first_call_ms: int = 500,
                  signals: FarSignals | None = None, offered_erlang: float | None = None,
                  curve: Callable[[int], float] | None = None, keep_callers: bool = False,
                  max_hold_s: float | None = None, max_patience_s: float | None = None,
                  press_after_ms: tuple[int, int] = (2500, 4500), erlang_per_span: float | None = None) -> World:
    """A world for `config`: every agent logs in at its phone (150 ms apart, closer on a big site so
    all are in within a few seconds); callers arrive with exponential holding times (mean
    `mean_hold_s`) and patience, each picking a menu digit at random, until `duration_ms`.

    Arrivals: each trunk its own Poisson stream offering `erlang_per_trunk` (the first caller on
    each of the first two trunks comes at once, so a short demo shows a whole call), then each PRI
    span its own offering `erlang_per_span` (None: as a trunk; the first caller on each of the first
    two spans comes at once too); or, with `offered_erlang`, one stream offering that load to the
    whole group, FXO trunks and PRI spans, hunted by the exchange (the first caller at
    `first_call_ms`). `curve(ms)` (>= 0) scales the rate of either
    at each moment (taken at its largest value sampled once a second where it is higher between
    samples). Finished callers are let go (the world's ``counts`` keep the outcomes) unless
    `keep_callers`. `max_hold_s` and `max_patience_s` cap the drawn times (a soak bounds how long a
    call may stay in a state by them); each caller presses its menu digit a uniform time in
    `press_after_ms` [low, high) after the answer. `signals`: see :class:`World`."""
    t = traffic(config, duration_ms, seed, erlang_per_trunk=erlang_per_trunk, mean_hold_s=mean_hold_s,
                mean_patience_s=mean_patience_s, first_call_ms=first_call_ms, offered_erlang=offered_erlang,
                curve=curve, max_hold_s=max_hold_s, max_patience_s=max_patience_s, press_after_ms=press_after_ms,
                erlang_per_span=erlang_per_span)
    return World(t.callers, t.phones, zone=config.site.zone, signals=signals, trunk_cid=t.trunk_cid,
                 keep_callers=keep_callers, pri_spans=t.pri_spans)


class _Generator:
    """Callers from one random stream, drawn in the order the hotel profile always drew them."""

    def __init__(self, rng: random.Random, menu_digits: Sequence[str], mean_hold_s: float,
                 mean_patience_s: float, duration_ms: int, curve: Callable[[int], float] | None, *,
                 max_hold_s: float | None = None, max_patience_s: float | None = None,
                 press_after_ms: tuple[int, int] = (2500, 4500)) -> None:
        self.rng = rng
        self.menu = list(menu_digits)
        self.hold_ms = mean_hold_s * 1000.0
        self.patience_ms = mean_patience_s * 1000.0
        self.duration = duration_ms
        self.curve = curve
        self.max_hold = int(max_hold_s * 1000) if max_hold_s is not None else None
        self.max_patience = int(max_patience_s * 1000) if max_patience_s is not None else None
        self.press = press_after_ms
        self.peak = 1.0
        if curve is not None:
            samples = [curve(t) for t in range(0, max(1, duration_ms), CURVE_STEP_MS)] + [curve(duration_ms)]
            if min(samples) < 0:
                raise ValueError("a traffic curve scales the arrival rate: it must not be negative")
            self.peak = max(samples)

    def _caller(self, rng: random.Random, n: int, trunk: int | None, at: int, cid: str | None,
                span: PriSpan | None = None) -> Caller:
        hold = max(5000, int(rng.expovariate(1 / self.hold_ms)))
        patience = max(10000, int(rng.expovariate(1 / self.patience_ms)))
        if self.max_hold is not None:
            hold = min(hold, self.max_hold)
        if self.max_patience is not None:
            patience = min(patience, self.max_patience)
        low, high = self.press
        return Caller(trunk=trunk, at_ms=at, ani=f"1380013{n:04d}", digits=rng.choice(self.menu),
                      press_after_ms=low + rng.randrange(0, high - low), hold_ms=hold, patience_ms=patience, cid=cid,
                      span=span.name if span is not None else None, dnis=span.dnis if span is not None else None)

    def _arrivals(self, rng: random.Random, rate_per_ms: float, first: int | None) -> Iterator[int]:
        """Arrival ticks of a Poisson stream of `rate_per_ms` scaled by the curve (thinning: a stream
        at the curve's peak, each arrival kept with the curve's share of it); `first`: the first
        arrival's tick, kept whatever the curve says (None: drawn too)."""
        peak = self.peak
        if rate_per_ms <= 0 or peak <= 0:
            return
        t = first if first is not None else int(rng.expovariate(rate_per_ms * peak))
        kept = first is not None
        while t < self.duration:
            if kept or self.curve is None or rng.random() * peak < self.curve(t):
                yield t
            kept = False
            t += int(rng.expovariate(rate_per_ms * peak))

    def _trunk(self, rng: random.Random, idx: int | None, n0: int, cid: str | None, rate: float, first: int | None,
               make: bool, span: PriSpan | None = None) -> Iterator[Caller | None]:
        """One trunk's callers, or one PRI span's (numbered from n0 + 1); `make` False draws the same
        numbers only."""
        n = n0
        for at in self._arrivals(rng, rate, first):
            n += 1
            if make:
                yield self._caller(rng, n, idx, at, cid, span)
            else:
                self._caller(rng, n, idx, at, cid, span)
                yield None

    def per_trunk(self, trunks: list[int], cid_of: dict[int, str], erlang: float, first_call_ms: int,
                  spans: Sequence[PriSpan] = (), span_erlang: float = 0.0) -> Iterator[Caller]:
        """Every trunk its own stream, then every PRI span. The hotel profile drew trunk after trunk
        from one random stream, numbering callers so; a first pass runs those draws to learn where
        each trunk's (then each span's) began (its random state and first number), then each is
        drawn again from there as the world takes its callers, merged in order of arrival (and of
        trunk, then span)."""
        rate = erlang / self.hold_ms
        lines: list[tuple[int | None, str | None, PriSpan | None, float, int | None]] = [
            (idx, cid_of[idx], None, rate, first_call_ms + idx * 300 if idx < 2 else None) for idx in trunks]
        lines += [(None, None, s, span_erlang / self.hold_ms, first_call_ms + 1000 + j * 300 if j < 2 else None)
                  for j, s in enumerate(spans)]
        starts: list[tuple[int, Any, int]] = []
        n = 0
        for i, (idx, cid, span, r, first) in enumerate(lines):
            starts.append((i, self.rng.getstate(), n))
            n += sum(1 for _ in self._trunk(self.rng, idx, n, cid, r, first, make=False, span=span))

        def line(i: int, state: Any, n0: int) -> Iterator[Caller]:
            idx, cid, span, r, first = lines[i]
            rng = random.Random()
            rng.setstate(state)
            for c in self._trunk(rng, idx, n0, cid, r, first, make=True, span=span):
                assert c is not None
                yield c

        streams = [line(i, state, n0) for i, state, n0 in starts]
        return heapq.merge(*streams, key=lambda c: c.at_ms)

    def group(self, offered_erlang: float, first_call_ms: int) -> Iterator[Caller]:
        """One stream offered to the whole group: the exchange hunts each caller a trunk (or a PRI
        span's B-channel)."""
        rate = offered_erlang / self.hold_ms
        for n, at in enumerate(self._arrivals(self.rng, rate, first_call_ms), start=1):
            yield self._caller(self.rng, n, None, at, None)
