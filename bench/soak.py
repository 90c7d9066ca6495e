"""The soak: virtual hours of the benchmark site on one day's traffic curve, checked every hour.

`make soak` runs 24 virtual hours (midnight to midnight: night low, busy hours at 10:00 and 15:00) of
the benchmark site's analog variant (bench/bench_site.py: 120 FXO trunks and 120 phones; its checks of
stuck and leaked lines know the trunks' and the phones' line machines, not yet PRI B-channels) with the
whole appliance on the virtual clock, then lets the last calls finish; `--profile FILE` runs another site.
Each virtual hour prints one JSON line; the last line is the summary. CI runs one busy hour
(tests/e2e/test_soak.py). Checked:

- memory and descriptors flat: after the warm-up (the first hour; a quarter of a shorter run) resident
  memory grows by at most RSS_BOUND_MIB and open file descriptors by at most FD_BOUND;
- nothing stuck: every call, agent and line has been in its state at most as long as the longest timer
  or scripted wait that can end it: a call in the IVR its menu's
  timeouts, queued its caller's patience (the traffic caps it), offered the queue's ring timeout,
  connected the caller's holding time (capped); an agent ringing the ring timeout, talking the holding
  time; a line the longest call it can carry (all sampled every virtual second). An agent not ready
  counts as stuck (the soak's phones always answer, so nothing should make one not ready);
- no channel leaked (card idle <-> no call): a live call whose trunk's line machine is idle, a trunk up
  with no call, an agent talking whose phone is on hook, or a phone connected with no agent talking,
  seen in two samples a control period apart;
- the record database grows only by its records: its pages in use grow by at most the warm-up's bytes
  per record (x DB_SLACK) times the records added, plus a few pages;
- at the end, with no arrivals, every call ends: no call left, every line idle, nothing not yet durable.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.acd import AgentState
from appliance.calls.call import CallState
from appliance.config.loader import load_config
from appliance.config.model import SiteConfig
from appliance.engine import Engine
from appliance.world.traffic import traffic_world
from bench.virtual_hour import (
    DEFAULT_SEED,
    MEAN_HOLD_S,
    MEAN_PATIENCE_S,
    OVERLOAD,
    PRESS_AFTER_MS,
    analog_variant,
    trunk_channels,
)
from e1t1.analog.fxo import TrunkState
from e1t1.analog.fxs import PhoneState

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
SAMPLE_MS = 1000
RSS_BOUND_MIB = 48
"""Resident memory may grow this much after the warm-up (allocator and database caches settling)."""
FD_BOUND = 2
"""Open descriptors may grow this much after the warm-up (one is seen: the database's read-only
connection the soak opens beside the writer)."""
DB_SLACK = 1.5
DB_PAGES_SLACK = 64 * 4096
"""Pages the database may hold beyond its records' share (a new page per table and index in use)."""
DRAIN_LIMIT_MS = 2 * HOUR_MS
MARGIN_MS = 30_000
"""Added to each state's bound: the line and agent hand-offs around a state change (hang-up delays)."""

# Traffic per hour of the day, as a share of the busy hour (night low, busy at 10:00 and 15:00).
DAY_CURVE = (0.08, 0.05, 0.05, 0.05, 0.08, 0.12, 0.25, 0.45, 0.7, 0.9, 1.0, 0.85,
             0.6, 0.7, 0.9, 1.0, 0.85, 0.6, 0.45, 0.35, 0.25, 0.18, 0.12, 0.1)
MAX_HOLD_S = 5 * MEAN_HOLD_S
MAX_PATIENCE_S = 5 * MEAN_PATIENCE_S


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def db_bytes(state: Path) -> int:
    """Bytes of the record database's pages in use (its free pages and the WAL left out: the WAL is
    reused after each checkpoint, so its size says nothing of the records)."""
    con = sqlite3.connect(f"file:{state / 'cicbox.db'}?mode=ro", uri=True)
    try:
        pages = con.execute("pragma page_count").fetchone()[0] - con.execute("pragma freelist_count").fetchone()[0]
        return int(pages * con.execute("pragma page_size").fetchone()[0])
    finally:
        con.close()


def db_rows(state: Path) -> int:
    """Rows of every table of the record database (read-only, beside the writer)."""
    con = sqlite3.connect(f"file:{state / 'cicbox.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        return sum(con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables)
    finally:
        con.close()


LEAVING_MS = 60_000
"""A call routed to a prompt and hang-up is gone within this (the longest shipped prompt is a few s)."""


@dataclass
class Bounds:
    """How long each state may last, ms, from the site's timers and the traffic's caps."""

    call: dict[CallState, int]
    agent: dict[AgentState, int]
    line: int


def bounds_for(engine: Engine) -> Bounds:
    cfg = engine.config
    ivr = max(((i.max_repeats + 1) * (i.timeout_ms + 20_000) for i in cfg.ivrs.values()), default=60_000)
    ring = max((q.ring_timeout_ms for q in cfg.queues.values()), default=15_000)
    hold, patience = int(MAX_HOLD_S * 1000), int(MAX_PATIENCE_S * 1000)
    wrap = max((q.wrap_up_ms for q in cfg.queues.values()), default=0)
    call = {CallState.IVR: ivr, CallState.QUEUED: patience, CallState.OFFERED: ring,
            CallState.CONNECTED: hold, CallState.LEAVING: LEAVING_MS, CallState.ENDED: 0}
    agent = {AgentState.OFFERED: ring, AgentState.ON_CALL: hold, AgentState.WRAP_UP: wrap, AgentState.NOT_READY: 0}
    return Bounds({k: v + MARGIN_MS for k, v in call.items()}, {k: v + MARGIN_MS for k, v in agent.items()},
                  ivr + patience + ring + hold + MARGIN_MS)


@dataclass
class Watch:
    """The states seen at the last sample and since when (engine ms), to find what does not move."""

    agents: dict[str, tuple[tuple[AgentState, int], int]] = field(default_factory=dict)
    lines: dict[int, tuple[str, int]] = field(default_factory=dict)
    stuck: dict[str, str] = field(default_factory=dict)
    """What was found stuck (a call, an agent or a line) -> how, when last seen so."""


def sample_stuck(engine: Engine, b: Bounds, w: Watch) -> None:
    now = engine.clock.now_ms
    for c in engine.calls.values():
        if now - c.state_since_ms > b.call.get(c.state, 0) and c.state is not CallState.ENDED:
            w.stuck[f"call {c.id}"] = f"{c.state.name.lower()} for {now - c.state_since_ms} ms"
    for a in engine.acd.agents.values():
        # An agent's episode: a new one begins at each change of state (since_ms).
        key = (a.state, a.since_ms)
        st, since = w.agents.get(a.number, (key, now))
        if st != key:
            since = now
        w.agents[a.number] = (key, since)
        limit = b.agent.get(a.state)
        if limit is not None and now - since > limit:
            w.stuck[f"agent {a.number}"] = f"{a.state.value} for {now - since} ms"
    lines: dict[int, Any] = {**engine.trunks, **engine.phones}
    for chan, m in lines.items():
        name = m.state.name
        st2, since2 = w.lines.get(chan, (name, now))
        if st2 != name:
            since2 = now
        w.lines[chan] = (name, since2)
        if name != "IDLE" and now - since2 > b.line:
            w.stuck[f"line {chan}"] = f"{name.lower()} for {now - since2} ms"


def leaks(engine: Engine) -> set[str]:
    """What disagrees between calls, agents and lines now (a leak if it still does a period later)."""
    out: set[str] = set()
    with_call = {c.caller.chan for c in engine.calls.values()}
    for c in engine.calls.values():
        if engine.trunks[c.caller.chan].state is TrunkState.IDLE:
            out.add(f"call {c.id} on idle trunk {c.caller.chan}")
    for chan, t in engine.trunks.items():
        if t.state is TrunkState.UP and chan not in with_call:
            out.add(f"trunk {chan} up with no call")
    phone_by_name = {p.phone_name: p for p in engine.phones.values()}
    talking = set()
    for a in engine.acd.agents.values():
        p = phone_by_name.get(a.phone or "")
        if a.state is AgentState.ON_CALL and p is not None:
            talking.add(p.chan)
            if p.state is PhoneState.IDLE:
                out.add(f"agent {a.number} talking on idle phone {p.chan}")
    for chan, p in engine.phones.items():
        if p.state is PhoneState.CONNECTED and chan not in talking:
            out.add(f"phone {chan} connected with no agent talking")
    return out


def soak(hours: int, seed: int = DEFAULT_SEED, profile: Path | None = None, busy_hour_only: bool = False,
         out: Any = None) -> dict[str, Any]:
    """Run `hours` virtual hours of `profile` (None: the bench site's analog variant; the day's curve from
    midnight, or the busy hour throughout); print one JSON line per hour to `out`; return the summary."""
    cfg: SiteConfig = analog_variant() if profile is None else load_config(profile)
    name = "bench-240-fxo.yaml" if profile is None else profile.name
    duration = hours * HOUR_MS
    trunks = trunk_channels(cfg)
    curve = None if busy_hour_only else (lambda ms: DAY_CURVE[(ms // HOUR_MS) % 24])
    warmup_ms = HOUR_MS if hours > 1 else HOUR_MS // 4
    hourly: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cicbox-soak-") as tmp:
        state = Path(tmp)
        world = traffic_world(cfg, duration, seed, offered_erlang=OVERLOAD * trunks, mean_hold_s=MEAN_HOLD_S,
                              mean_patience_s=MEAN_PATIENCE_S, curve=curve, max_hold_s=MAX_HOLD_S,
                              max_patience_s=MAX_PATIENCE_S, press_after_ms=PRESS_AFTER_MS)
        engine = Engine(state, cfg, 1, clock="virtual", world=world)
        b = bounds_for(engine)
        w = Watch()
        leaked: dict[str, None] = {}     # what was found leaked, once each
        base: dict[str, float] | None = None
        next_second, next_minute, next_hour = SAMPLE_MS, MINUTE_MS, HOUR_MS
        t_hour = time.perf_counter()
        busy_sum = periods = peak = 0
        suspects: set[str] = set()
        stats0 = dict(engine.stats)
        while engine.clock.now_ms < duration:
            engine.run_period()
            busy = engine.busy_channels
            busy_sum += busy
            periods += 1
            peak = max(peak, busy)
            now = engine.clock.now_ms
            if suspects:
                leaked.update(dict.fromkeys(sorted(suspects & leaks(engine))))
                suspects = set()
            if now >= next_second:
                # Every second: no line or agent can leave a state and come back to it in less
                # (a call is at least a ring and an answer), so a state seen twice is one stay.
                next_second += SAMPLE_MS
                sample_stuck(engine, b, w)
            if now >= next_minute:
                next_minute += MINUTE_MS
                suspects = leaks(engine)
            if now == warmup_ms or (base is None and now >= warmup_ms):
                base = {"rss": rss_mib(), "fds": open_fds(), "db": db_bytes(state), "rows": db_rows(state)}
            if now >= next_hour:
                next_hour += HOUR_MS
                stats = dict(engine.stats)
                row = {"hour": now // HOUR_MS, "wall_s": round(time.perf_counter() - t_hour, 2),
                       "offered": stats["offered"] - stats0["offered"],
                       "answered": stats["answered"] - stats0["answered"],
                       "abandoned": stats["abandoned"] - stats0["abandoned"],
                       "mean_busy_channels": round(busy_sum / max(1, periods), 1), "peak_busy_channels": peak,
                       "rss_mib": round(rss_mib(), 1), "open_fds": open_fds(), "db_bytes": db_bytes(state),
                       "db_rows": db_rows(state), "stuck": len(w.stuck), "leaked": len(leaked)}
                if base is not None:
                    grown = row["db_bytes"] - base["db"]
                    added = row["db_rows"] - base["rows"]
                    per = base["db"] / max(1.0, base["rows"])
                    row["rss_growth_mib"] = round(row["rss_mib"] - base["rss"], 1)
                    row["fd_growth"] = row["open_fds"] - int(base["fds"])
                    row["db_within_records"] = grown <= added * per * DB_SLACK + DB_PAGES_SLACK
                hourly.append(row)
                print(json.dumps(row), file=out or sys.stdout, flush=True)
                t_hour = time.perf_counter()
                busy_sum = periods = peak = 0
                stats0 = stats
        # The last calls finish: no new caller comes after the run's end.
        drain_end = engine.clock.now_ms + DRAIN_LIMIT_MS
        while engine.calls and engine.clock.now_ms < drain_end:
            engine.run_period()
        engine.run_for(10_000)      # the phones hang up, the lines go idle
        left_calls = len(engine.calls)
        busy_lines = engine.busy_channels
        not_durable = engine.records_not_yet_durable
        engine.close()
    after = [h for h in hourly if "rss_growth_mib" in h]
    summary = {
        "soak": "bench_site", "profile": name, "seed": seed, "hours": hours,
        "curve": "busy_hour" if busy_hour_only else "day",
        "wall_s": round(sum(h["wall_s"] for h in hourly), 1),
        "offered": sum(h["offered"] for h in hourly), "answered": sum(h["answered"] for h in hourly),
        "max_rss_growth_mib": max((h["rss_growth_mib"] for h in after), default=0.0),
        "max_fd_growth": max((h["fd_growth"] for h in after), default=0),
        "rss_bound_mib": RSS_BOUND_MIB, "fd_bound": FD_BOUND,
        "db_within_records": all(h["db_within_records"] for h in after),
        "stuck": len(w.stuck), "stuck_first": [f"{k} {v}" for k, v in list(w.stuck.items())[:5]],
        "leaked": len(leaked), "leaked_first": list(leaked)[:5],
        "calls_left_after_drain": left_calls, "busy_lines_after_drain": busy_lines,
        "records_not_yet_durable": not_durable,
    }
    summary["ok"] = (summary["max_rss_growth_mib"] <= RSS_BOUND_MIB and summary["max_fd_growth"] <= FD_BOUND
                     and summary["db_within_records"] and not w.stuck and not leaked and left_calls == 0
                     and busy_lines == 0 and not_durable == 0)
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--profile", default=None, help="site file (default: the bench site's analog variant)")
    p.add_argument("--busy-hour", action="store_true", help="the busy hour's traffic throughout (no day curve)")
    args = p.parse_args()
    if args.hours < 1:
        p.error("--hours must be at least 1")
    if args.profile is not None and not Path(args.profile).is_file():
        p.error(f"no site file {args.profile}")
    summary = soak(args.hours, args.seed, None if args.profile is None else Path(args.profile),
                   busy_hour_only=args.busy_hour)
    print(json.dumps(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
