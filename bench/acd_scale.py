"""ACD scale benchmark: prints one JSON object.

The router half (``router_bench``): 10,000 waiting callers, 2,000 agents each a member of 1-20 of
200 queues (Zipf sizes, the largest has every agent), 10 % of callers in 3 queues, 3 priorities,
4 skills at levels 1-5, widening. A seeded random mix of events (an agent ready -> pick_waiter, a
caller arriving -> pick_agents, a widening -> pick_agents, abandons, agents going not ready,
reservations) is driven through the production router (appliance/acd/router.py); each pick is one
*decision* and is timed. 1 % of the decisions are decided again by a brute-force scan written here
from the definitions alone (the oracle, with its own copy of the state); any difference counts as
a mismatch. A freed agent makes the router calls the ACD makes (appliance/acd, _dispatch_ready):
pick_waiter first; the waiter found is offered (remove, offered, agent_unavailable), and only an
agent who finds none is made ready (agent_ready). Then periods in which 200 agents are freed at
once: ``period_p99_ms`` is the time of all those router calls summed over a period,
``period_find_p99_ms`` that of the pick_waiter calls alone; their decisions are re-checked in one
untimed period of ten (CHECKED_EVERY). ``--quick`` runs fewer events and
periods over the same population. (``update_p99_us``: the index updates; its tail is a class
seen for the first time in a big queue, whose served set is built then, once per configuration.)
Garbage is collected as the engine collects it (appliance.collector): never inside a period, each
event and each period of 200 freed agents being one; the collections' own times at the periods'
ends are ``collect_p99_ms`` and ``collect_max_ms`` (``collections``: the events and periods that
ended with one).

The sim-card half (``sim_bench``): the whole appliance in virtual time on a site of 32 trunks
(no caller ID, answered on ring 1, each routed straight to one queue) and 64 agents' phones; each
trunk takes a caller every 2.5 s, each phone answers 100 ms after it starts ringing, each caller
talks 1 s and hangs up. ``setups_per_s``: calls set up (an agent answered) and torn down (the
caller hung up) per wall second; ``cpu_ms_per_call``: CPU by part per such call (media tier,
control tier, record writer, split as bench/virtual_hour.py does; the simulated world's own in
``world_cpu_ms_per_call``; cpu_split: parts timed while the core was taken away are scaled to the
thread's CPU time); ``fsyncs_per_s``: the writer's fsyncs per virtual second. ``sim_calls``: the
callers who talked to an agent and hung up; ``sim_released``: calls the appliance released itself
(0 when every caller hangs up first, as here).

Times are measurements (time.perf_counter_ns around each router call, wall and CPU time around the
sim-card run): nothing passes or fails on them. Targets (issue 11): decision p99 <= 50 us, 0
mismatches, period <= 2 ms, >= 500 setups and teardowns per second.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.acd.router import STRATEGIES, QueueSpec, Router, Strategy, Waiter, number_key
from appliance.collector import Collector

SKILLS = ("en", "zh", "yue", "fr")
PRIORITIES = ((0, 0.80), (1, 0.15), (5, 0.05))
SEED = 11
CHECKED_EVERY = 10
"""Every 10th period is a checked one: its decisions are re-checked by the oracle (10 times the
fraction of the events), and it is not timed. The oracle's scans of all callers push the router's
indexes out of the cache, which no engine work does: inside timed periods they added 0.4 ms to the
period p50 (1.40 -> 1.79 ms) and 0.8 ms to its p99."""


@dataclass
class Population:
    queues: dict[str, QueueSpec]
    agents: dict[str, dict[str, int]]
    size: dict[str, int]                             # queue -> members (the arrival weights)


def population(rng: random.Random, agents: int, queues: int, *, max_queues: int = 20,
               zipf_s: float = 0.85) -> Population:
    """Queue k (1-based) has about agents / k**s members; the largest has them all. Each agent
    is in 1..max_queues queues; members are in a random configuration order; strategies cycle."""
    numbers = [str(1000 + i) for i in range(agents)]
    skills: dict[str, dict[str, int]] = {}
    for n in numbers:
        sk = {s: rng.randint(1, 5) for s in SKILLS if rng.random() < 0.5}
        if not sk:
            sk = {rng.choice(SKILLS): rng.randint(1, 5)}
        skills[n] = sk
    count = dict.fromkeys(numbers, 0)
    specs: dict[str, QueueSpec] = {}
    size: dict[str, int] = {}
    for k in range(1, queues + 1):
        want = max(2, round(agents / k**zipf_s))
        free = [n for n in numbers if count[n] < max_queues]
        members = rng.sample(free, min(want, len(free)))
        for n in members:
            count[n] += 1
        name = f"q{k:03}"
        strategy: Strategy = STRATEGIES[(k - 1) % len(STRATEGIES)]
        specs[name] = QueueSpec(strategy, tuple(members))
        size[name] = len(members)
    return Population(specs, skills, size)


# -- the oracle: the same decisions from first principles, by scanning everything -------------------

@dataclass
class OWaiter:
    priority: int
    first: int
    seq: int
    queues: list[str]
    skills: dict[str, int]
    reserved: str | None = None


@dataclass
class Oracle:
    queues: dict[str, QueueSpec]
    skills: dict[str, dict[str, int]]
    waiters: dict[str, OWaiter] = field(default_factory=dict)
    ready: dict[str, int] = field(default_factory=dict)        # agent -> idle since
    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    talk: dict[tuple[str, str], int] = field(default_factory=dict)
    last_offered: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    member_sets: dict[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.member_sets = {q: frozenset(s.members) for q, s in self.queues.items()}

    def level(self, agent: str, skill: str) -> int:
        return self.skills.get(agent, {}).get(skill, 0)

    def can_serve(self, agent: str, queue: str, w: OWaiter) -> bool:
        return agent in self.member_sets[queue] and all(self.level(agent, s) >= m for s, m in w.skills.items())

    def rank(self, agent: str, w: OWaiter) -> int:
        return min((self.level(agent, s) for s in w.skills), default=0)

    def pick_waiter(self, agent: str) -> str | None:
        best: tuple[int, int, int] | None = None
        found = None
        for cid, w in self.waiters.items():
            if w.reserved is not None and w.reserved != agent:
                continue
            if not any(self.can_serve(agent, q, w) for q in w.queues):
                continue
            place = (-w.priority, w.first, w.seq)
            if best is None or place < best:
                best, found = place, cid
        return found

    def pick_agents(self, cid: str, queue: str) -> list[str] | set[str]:
        """The expected answer; for `random` the set of agents any one of which is right."""
        w = self.waiters[cid]
        if queue not in w.queues:
            return []
        if w.reserved is not None:
            return [w.reserved] if w.reserved in self.ready and self.can_serve(w.reserved, queue, w) else []
        cands = [a for a in self.ready if self.can_serve(a, queue, w)]
        if not cands:
            return []
        top = max(self.rank(a, w) for a in cands)
        cands = [a for a in cands if self.rank(a, w) == top]
        spec = self.queues[queue]
        s = spec.strategy
        order = {a: i for i, a in enumerate(spec.members)}
        if s == "ring_all":
            return sorted(cands, key=number_key)
        if s == "random":
            return set(cands)
        if s == "linear":
            return [min(cands, key=order.__getitem__)]
        if s == "round_robin":
            last = order.get(self.last_offered.get(queue, ""), -1)
            after = [a for a in cands if order[a] > last]
            return [min(after or cands, key=order.__getitem__)]
        idle: Callable[[str], tuple[Any, ...]]
        if s == "longest_idle":
            idle = lambda a: (self.ready[a], number_key(a))  # noqa: E731
        elif s == "fewest_calls":
            idle = lambda a: (self.calls.get((queue, a), 0), self.ready[a], number_key(a))  # noqa: E731
        else:
            idle = lambda a: (self.talk.get((queue, a), 0), self.ready[a], number_key(a))  # noqa: E731
        return [min(cands, key=idle)]


# -- the driver: every call goes to both, decisions are timed -----------------------------------------

class Drive:
    def __init__(self, pop: Population, seed: int, check_fraction: float) -> None:
        self.pop = pop
        self.rng = random.Random(seed)
        self.router = Router()
        self.router.configure(pop.queues, pop.agents, seed)
        self.oracle = Oracle(pop.queues, pop.agents)
        self.check_fraction = check_fraction
        self.now = 0
        self.next_call = 0
        self.qnames = list(pop.queues)
        self.member_of: dict[str, set[str]] = {a: set() for a in pop.agents}
        for name, spec in pop.queues.items():
            for m in spec.members:
                self.member_of[m].add(name)
        self.qweights = [pop.size[q] for q in self.qnames]
        self.live: list[str] = []                  # waiting call ids (random choice, swap-remove)
        self.live_at: dict[str, int] = {}
        self.busy: dict[str, tuple[str, int] | None] = dict.fromkeys(pop.agents)  # agent -> (queue, talk)
        self.busy_list = list(pop.agents)
        self.ready_list: list[str] = []
        self.ready_at: dict[str, int] = {}
        self.decision_ns: list[int] = []
        self.update_ns: list[int] = []
        self.scan_ns: list[int] = []
        self.checks = 0
        self.mismatches: list[str] = []

    # bookkeeping of the driver's own lists
    @staticmethod
    def _take(lst: list[str], at: dict[str, int], x: str) -> None:
        i = at.pop(x)
        last = lst.pop()
        if last != x:
            lst[i] = last
            at[last] = i

    @staticmethod
    def _put(lst: list[str], at: dict[str, int], x: str) -> None:
        at[x] = len(lst)
        lst.append(x)

    def _timed(self, f: Callable[[], Any], into: list[int]) -> Any:
        t0 = time.perf_counter_ns()
        out = f()
        into.append(time.perf_counter_ns() - t0)
        return out

    def _check(self) -> bool:
        return self.rng.random() < self.check_fraction

    # events
    def arrive(self, decide: bool = True) -> None:
        rng = self.rng
        self.next_call += 1
        cid = f"c{self.next_call}"
        if rng.random() < 0.10:
            qs: list[str] = []
            while len(qs) < 3:
                q = rng.choices(self.qnames, self.qweights)[0]
                if q not in qs:
                    qs.append(q)
        else:
            qs = [rng.choices(self.qnames, self.qweights)[0]]
        x = rng.random()
        prio = 0 if x < PRIORITIES[0][1] else 1 if x < PRIORITIES[0][1] + PRIORITIES[1][1] else 5
        x = rng.random()
        if x < 0.5:
            skills: dict[str, int] = {}
        elif x < 0.9:
            skills = {rng.choice(SKILLS): rng.randint(1, 3)}
        else:
            skills = {s: rng.randint(1, 3) for s in rng.sample(SKILLS, 2)}
        first = self.now - rng.randint(0, 60_000) if len(qs) == 1 and rng.random() < 0.1 else self.now
        w = Waiter(cid, prio, first, tuple(qs), dict(skills))
        self._timed(lambda: self.router.add(w), self.update_ns)
        self.oracle.seq += 1
        self.oracle.waiters[cid] = OWaiter(prio, first, self.oracle.seq, list(qs), dict(skills))
        self._put(self.live, self.live_at, cid)
        if decide:
            self.decide_agents(cid, qs[0])

    def decide_agents(self, cid: str, queue: str) -> None:
        picks: list[str] = self._timed(lambda: self.router.pick_agents(cid, queue), self.decision_ns)
        if self._check():
            t0 = time.perf_counter_ns()
            want = self.oracle.pick_agents(cid, queue)
            self.scan_ns.append(time.perf_counter_ns() - t0)
            self.checks += 1
            ok = (len(picks) == 1 and picks[0] in want) if isinstance(want, set) else picks == want
            if not ok:
                self.mismatches.append(f"pick_agents({cid}, {queue}): {picks} != {sorted(want)}")
        if picks:
            self.answer(cid, queue, picks[0])

    def answer(self, cid: str, queue: str, agent: str) -> None:
        self.router.offered(queue, agent)
        self.oracle.last_offered[queue] = agent
        self.gone(cid)
        self.unready(agent)
        self.busy[agent] = (queue, self.rng.randint(5_000, 300_000))
        self.busy_list.append(agent)

    def gone(self, cid: str) -> None:
        self._timed(lambda: self.router.remove(cid), self.update_ns)
        del self.oracle.waiters[cid]
        self._take(self.live, self.live_at, cid)

    def unready(self, agent: str) -> None:
        self._timed(lambda: self.router.agent_unavailable(agent), self.update_ns)
        del self.oracle.ready[agent]
        self._take(self.ready_list, self.ready_at, agent)

    def agent_freed(self) -> None:
        if not self.busy_list:
            return
        i = self.rng.randrange(len(self.busy_list))
        agent = self.busy_list[i]
        self.busy_list[i] = self.busy_list[-1]
        self.busy_list.pop()
        self.end_call(agent)
        took, took_all = self.free_as_acd(agent)
        self.decision_ns.append(took)
        self.update_ns.append(took_all - took)

    def widen(self) -> None:
        if not self.live:
            return
        cid = self.rng.choice(self.live)
        w = self.oracle.waiters[cid]
        asked = [s for s, m in w.skills.items() if m > 0]
        if not asked:
            return
        s = self.rng.choice(asked)
        m = w.skills[s] - 1
        self._timed(lambda: self.router.widen(cid, s, m), self.update_ns)
        w.skills[s] = m
        self.decide_agents(cid, self.rng.choice(w.queues))

    def abandon(self) -> None:
        if self.live:
            self.gone(self.rng.choice(self.live))

    def not_ready(self) -> None:
        if self.ready_list:
            agent = self.rng.choice(self.ready_list)
            self.unready(agent)
            self.busy[agent] = None
            self.busy_list.append(agent)

    def sticky(self) -> None:
        if not self.live:
            return
        cid = self.rng.choice(self.live)
        w = self.oracle.waiters[cid]
        if w.reserved is not None:
            self._timed(lambda: self.router.unreserve(cid), self.update_ns)
            w.reserved = None
        else:
            agent = self.rng.choice(self.pop.queues[w.queues[0]].members)
            self._timed(lambda: self.router.reserve(cid, agent), self.update_ns)
            w.reserved = agent

    def step(self, target: int) -> None:
        self.now += self.rng.randint(0, 40)
        x = self.rng.random()
        if x < (0.40 if len(self.live) < target else 0.25):
            self.arrive()
        elif x < 0.72:
            self.agent_freed()
        elif x < 0.82:
            self.widen()
        elif x < 0.90:
            self.abandon()
        elif x < 0.97:
            self.not_ready()
        else:
            self.sticky()

    def end_call(self, agent: str) -> None:
        """The agent's call ends (the router counts it; the agent is not ready yet)."""
        call = self.busy.pop(agent)
        if call is not None:
            q, talk = call
            self.router.call_done(q, agent, talk)
            k = (q, agent)
            self.oracle.calls[k] = self.oracle.calls.get(k, 0) + 1
            self.oracle.talk[k] = self.oracle.talk.get(k, 0) + talk

    def free_as_acd(self, agent: str) -> tuple[int, int]:
        """An agent freed, with the router calls the ACD makes (appliance/acd, _dispatch_ready): the
        best waiter first; if there is one, it is offered (removed from the indexes, the offer
        counted for round_robin, the agent not a candidate); else the agent is ready. (ns to pick,
        ns of all its router calls)."""
        r = self.router
        t0 = time.perf_counter_ns()
        w = r.pick_waiter(agent)
        took = time.perf_counter_ns() - t0
        if self._check():
            t0 = time.perf_counter_ns()
            want = self.oracle.pick_waiter(agent)
            self.scan_ns.append(time.perf_counter_ns() - t0)
            self.checks += 1
            got = w.call_id if w is not None else None
            if got != want:
                self.mismatches.append(f"pick_waiter({agent}): {got} != {want}")
        if w is None:
            t1 = time.perf_counter_ns()
            r.agent_ready(agent, self.now)
            took_all = took + time.perf_counter_ns() - t1
            self.oracle.ready[agent] = self.now
            self._put(self.ready_list, self.ready_at, agent)
            return took, took_all
        member_of = self.member_of[agent]
        queue = next(q for q in w.queues if q in member_of)              # as the ACD finds it
        t1 = time.perf_counter_ns()
        r.remove(w.call_id)
        r.offered(queue, agent)
        r.agent_unavailable(agent)
        took_all = took + time.perf_counter_ns() - t1
        del self.oracle.waiters[w.call_id]
        self._take(self.live, self.live_at, w.call_id)
        self.oracle.last_offered[queue] = agent
        self.busy[agent] = (queue, self.rng.randint(5_000, 300_000))
        self.busy_list.append(agent)
        return took, took_all

    def period(self, agents: int, target: int) -> tuple[int, int]:
        """`agents` busy agents freed at once: ns to find their waiters, ns of all the router calls
        the ACD makes for them (see free_as_acd)."""
        self.now += 100
        chosen = self.rng.sample(self.busy_list, min(agents, len(self.busy_list)))
        gone = set(chosen)
        self.busy_list = [a for a in self.busy_list if a not in gone]
        for a in chosen:
            self.end_call(a)
        find = total = 0
        for a in chosen:
            f, t = self.free_as_acd(a)
            find += f
            total += t
        while len(self.live) < target:
            self.arrive(decide=False)
        return find, total


def pct(xs: list[int], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] / 1000.0


def run(*, callers: int, agents: int, queues: int, events: int, periods: int, freed: int = 200,
        check_fraction: float = 0.01, seed: int = SEED) -> dict[str, Any]:
    """Build the population, fill the queues, drive `events` events and `periods` periods."""
    rng = random.Random(seed)
    pop = population(rng, agents, queues)
    d = Drive(pop, seed, check_fraction)
    t0 = time.perf_counter()
    for _ in range(callers):
        d.arrive(decide=False)                      # every agent is busy: they all wait
    d.decision_ns.clear()
    d.update_ns.clear()
    fill_s = time.perf_counter() - t0
    gc.freeze()
    col = Collector()
    for _ in range(events):
        col.period_starts()
        d.step(callers)
        col.period_ends()
    period_find: list[int] = []
    period_all: list[int] = []
    collect_ns: list[int] = []
    checked_periods = 0
    for i in range(periods + periods // (CHECKED_EVERY - 1)):
        checked = i % CHECKED_EVERY == CHECKED_EVERY - 1
        d.check_fraction = min(1.0, CHECKED_EVERY * check_fraction) if checked else 0.0
        col.period_starts()
        f, a = d.period(freed, callers)
        t0 = time.perf_counter_ns()
        col.period_ends()
        collect_ns.append(time.perf_counter_ns() - t0)
        if checked:
            checked_periods += 1
        else:
            period_find.append(f)
            period_all.append(a)
    d.check_fraction = check_fraction
    members = [len(s.members) for s in pop.queues.values()]
    per_agent: dict[str, int] = {}
    for s in pop.queues.values():
        for m in s.members:
            per_agent[m] = per_agent.get(m, 0) + 1
    dec_p99 = pct(d.decision_ns, 99)
    scan_p99 = pct(d.scan_ns, 99)
    return {
        "callers": callers,
        "agents": agents,
        "queues": queues,
        "largest_queue": max(members),
        "queues_per_agent": [min(per_agent.values()), max(per_agent.values())],
        "decisions": len(d.decision_ns),
        "decision_p50_us": pct(d.decision_ns, 50),
        "decision_p99_us": dec_p99,
        "update_p99_us": pct(d.update_ns, 99),
        "scan_p99_us": scan_p99,
        "speedup_vs_scan": round(scan_p99 / dec_p99, 1) if dec_p99 else None,
        "oracle_checks": d.checks,
        "oracle_mismatches": len(d.mismatches),
        "mismatch_examples": d.mismatches[:5],
        "periods": len(period_all),
        "checked_periods": checked_periods,
        "period_p99_ms": round(pct(period_all, 99) / 1000.0, 3),
        "period_p50_ms": round(pct(period_all, 50) / 1000.0, 3),
        "period_find_p99_ms": round(pct(period_find, 99) / 1000.0, 3),
        "collect_p99_ms": round(pct(collect_ns, 99) / 1000.0, 3),
        "collect_max_ms": round(max(collect_ns, default=0) / 1e6, 3),
        "collections": col.collections,
        "waiting_at_end": len(d.live),
        "fill_s": round(fill_s, 2),
    }


def router_bench(quick: bool) -> dict[str, Any]:
    """The router half of the benchmark: the issue's population; --quick drives fewer events."""
    return run(callers=10_000, agents=2_000, queues=200,
               events=20_000 if quick else 80_000, periods=20 if quick else 100)


# -- the sim-card half: whole calls through the appliance in virtual time --------------------------

SIM_CYCLE_MS = 2500
"""A trunk's next caller comes this long after the last: a call (answer on ring 1, 100 ms of ringing
at the agent, 1 s of talk) and the exchange's disconnect signal (800 ms without battery) take about
2 s; a caller offered before the battery is back would find the trunk dead."""
SIM_ANSWER_AFTER_MS = 100
SIM_TALK_MS = 1000


def sim_site_yaml(trunks: int, phones: int) -> str:
    """A site of `trunks` FXO trunks (no caller ID, answered on ring 1), each routed straight to queue
    ``q``, and `phones` agents' phones, every agent a member of ``q`` (longest idle)."""
    members = ", ".join(f"'{1001 + i}'" for i in range(phones))
    out = ["site:", "  name: ACD bench", "  zone: cn", "  law: alaw", '  epoch: "2026-01-01T09:00:00"', "",
           "card:", "  backend: sim", "  k: 5", "", "ports:"]
    out += [f"  - {{kind: fxo, name: t{i}, number: '0755888{i:05d}', callerid: none, answer_on_ring: 1}}"
            for i in range(1, trunks + 1)]
    out += [f"  - {{kind: fxs, name: p{i}, extension: '{8000 + i}'}}" for i in range(1, phones + 1)]
    out += ["", "routes:"] + [f"  - {{trunk: t{i}, queue: q}}" for i in range(1, trunks + 1)]
    out += ["", "queues:", "  q:", f"    agents: [{members}]", "    ring_timeout_ms: 15000",
            "    strategy: longest_idle"]
    out += ["", "agents:"] + [f"  - {{number: '{1001 + i}', name: 'Agent {i + 1}', phone: p{i + 1}}}"
                              for i in range(phones)]
    return "\n".join(out) + "\n"


def sim_run(*, trunks: int, phones: int, calls_per_trunk: int) -> dict[str, Any]:
    """The agents log in (150 ms apart, closer for more than 20, each login done within 5 s), then every trunk takes
    `calls_per_trunk` callers, one every SIM_CYCLE_MS (trunks 37 ms apart); each phone answers
    SIM_ANSWER_AFTER_MS after it starts ringing, each caller talks SIM_TALK_MS and hangs up. Timed
    from the first caller to the end: wall time, CPU by part (the world, the media tier, the control
    tier, the record writer's thread, as bench/virtual_hour.py splits it), the writer's fsyncs."""
    from appliance.config.loader import load_config
    from appliance.engine import Engine
    from appliance.world.world import Caller, PhoneScript, World
    from bench.virtual_hour import _thread_cpu_s, _Timed, _writer_thread_id, cpu_split

    login_step = min(150, 3000 // phones)
    start = 200 + login_step * phones + 5000
    end = start + calls_per_trunk * SIM_CYCLE_MS + 3000
    callers = [Caller(trunk=t, at_ms=start + n * SIM_CYCLE_MS + 37 * t, ani=None, digits="", hold_ms=SIM_TALK_MS,
                      patience_ms=600_000, cid="none")
               for n in range(calls_per_trunk) for t in range(trunks)]
    callers.sort(key=lambda c: c.at_ms)
    phone_scripts = [PhoneScript(port=trunks + i, agent=f"{1001 + i}", login_at_ms=200 + login_step * i,
                                 answer_after_ms=SIM_ANSWER_AFTER_MS) for i in range(phones)]
    with tempfile.TemporaryDirectory(prefix="cicbox-acd-bench-") as tmp:
        site = Path(tmp) / "site.yaml"
        site.write_text(sim_site_yaml(trunks, phones))
        cfg = load_config(site)
        state = Path(tmp) / "state"
        state.mkdir()
        world = World(iter(callers), phone_scripts, zone=cfg.site.zone, trunk_cid=dict.fromkeys(range(trunks), "none"))
        engine = Engine(state, cfg, 1, clock="virtual", world=world)
        engine.run_for(start - 100)                       # the logins
        before, after = _Timed(world.before_period), _Timed(world.after_period)
        step = _Timed(engine.tier_.step)
        world.before_period, world.after_period = before, after   # type: ignore[method-assign]
        engine.tier_.step = step                                   # type: ignore[method-assign]
        writer_tid = _writer_thread_id()
        writer0 = _thread_cpu_s(writer_tid)
        fsyncs0 = engine.writer.stats().get("fsyncs", 0)
        cpu0, t0 = time.thread_time(), time.perf_counter()
        engine.run_for(end - (start - 100))
        wall = time.perf_counter() - t0
        cpu_main = time.thread_time() - cpu0
        writer_cpu = _thread_cpu_s(writer_tid) - writer0
        fsyncs = engine.writer.stats().get("fsyncs", 0) - fsyncs0
        stats = dict(engine.stats)
        engine.close()
    counts = world.counts
    calls = counts["hung_up"]            # connected to an agent, talked, hung up: set up and torn down
    world_cpu, media_cpu, control_cpu, scaled = cpu_split(cpu_main, before.total + after.total, step.total)
    per_call = 1000.0 / max(1, calls)
    virtual_s = (end - (start - 100)) / 1000
    return {
        "sim_trunks": trunks, "sim_agents": phones, "sim_callers": len(callers),
        "sim_calls": calls, "sim_answered": stats.get("answered", 0), "sim_blocked": counts["blocked"],
        "sim_released": counts["released"], "sim_virtual_s": virtual_s, "sim_wall_s": round(wall, 2),
        "setups_per_s": round(calls / wall, 1) if wall else None,
        "cpu_ms_per_call": {"media": round(media_cpu * per_call, 3),
                            "control": round(control_cpu * per_call, 3),
                            "writer": round(writer_cpu * per_call, 3)},
        "world_cpu_ms_per_call": round(world_cpu * per_call, 3),
        "cpu_scaled": scaled,                   # a loaded machine (cpu_split)
        "fsyncs_per_s": round(fsyncs / virtual_s, 2),
        "fsyncs_per_call": round(fsyncs / max(1, calls), 3),
    }


def sim_bench(quick: bool) -> dict[str, Any]:
    """The sim-card half: 32 trunks, 64 agents (so that a caller seldom waits, and its trunk is free
    for the next); --quick takes fewer callers."""
    return sim_run(trunks=32, phones=64, calls_per_trunk=10 if quick else 40)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer events and periods, the same population")
    args = p.parse_args()
    t0 = time.perf_counter()
    out = router_bench(args.quick)
    out.update(sim_bench(args.quick))
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
