"""A busy hour of the full-size site in virtual time: prints one JSON object on its last line.

The whole appliance runs (media tier in C, control tier, records to SQLite) on the virtual clock, with
the simulated world on the sim card's far side. The default profile is the benchmark site
(configs/bench-240.yaml, bench/bench_site.py: 8 E1 PRI spans, `pri_cpe`, whose 240 B-channels the
world's far exchange fills from its network-side stack, hunting span after span; 120 agents' phones, 8
queues, the spans' echo cancellers off, `echo_taps: 0`): offered load above what the lines carry, so
they run near full. `--profile configs/hotel.yaml` runs the hotel (8 trunks, 0.9 Erlang offered per
trunk).

Reported: wall seconds of each run; busy channels (a trunk channel or a phone port whose line machine is
not idle, as the engine counts them), read every control period: the peak and the mean; the world's
calls on PRI spans (from SETUP to release), the peak and the mean; calls offered, answered, abandoned and
blocked (by the exchange: no free trunk or B-channel), and the calls the appliance answered by the kind
of line (`answered_by_kind`); CPU seconds by part (the world with its far-side media tier and far
exchange, the media tier, the control tier, the record writer's thread); fsyncs per virtual second of the
writer; the control tier's Python time per idle period (`idle_period_us`: an idle engine on the same site
for 10 virtual minutes, the media tier's time taken out); whether runs with one seed store the same
records (`digest_identical_across_runs`).

Beside it, on the bench site: its analog variant (120 FXO trunks hunted as one group, the same phones
and queues, with BENCH_SPANS idle framed E1 spans (CRC-4) added, as the bench ran before its spans
carried the calls): `wall_s_fxo` and its figures under `fxo`; the analog variant without the idle spans
(`wall_s_no_spans`), so `span_overhead_pct` is what framing costs an analog hour (target under 10 %):
`--pairs` runs with and without the spans, in turn with first and without first (`wall_s_fxo_runs`,
`wall_s_no_spans_runs`), each pair's figure in `span_overhead_pct_pairs`, the figure their median and
the walls the median runs, so a machine whose speed drifts or jumps during the bench weighs on both;
`--no-fxo` skips them.
Reference in the same run: the hotel profile for the same minutes (`hotel_wall_s`). Beside the
full-scale figure, which is defined with echo off, the same run with ECHO_ON_TAPS taps on every trunk
channel (each FXO port and each span's timeslots: a call's canceller runs from its answer to its
release): `wall_s_echo_on`, `echo_overhead_pct`, and whether it stored the same records
(`echo_on_digest_identical`: the canceller changes no call's course); `--no-echo-on` skips it. Each run
is made in an interpreter of its own (:func:`fresh`), so none is slowed by what the runs before it left.
The target (reported, never asserted on time): the 240-channel hour in 60 s of wall time on one core,
the world's share under a quarter.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.config.loader import load_config, parse_config
from appliance.config.model import FxoPort, SiteConfig, Span
from appliance.engine import Engine
from appliance.storage import cdr_digest
from appliance.world.traffic import traffic_world
from appliance.world.world import World
from bench.bench_site import B_CHANNELS, analog_site_yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH_SITE = ROOT / "configs" / "bench-240.yaml"
HOTEL = ROOT / "configs" / "hotel.yaml"
DEFAULT_SEED = 20261125
MEAN_HOLD_S = 180.0
MEAN_PATIENCE_S = 240.0
OVERLOAD = 1.25
"""Offered load on a hunted trunk group, as a multiple of its trunks: enough that they run near full."""
PRESS_AFTER_MS = (500, 1500)
"""On the full-size site callers know the menu and press at once: with as many trunks as agents, a phone
is idle while its next caller rings in and chooses, so a short choice keeps the agents busy."""
RUSH_MS, RUSH = 15_000, 10.0
"""The hour opens on a rush (the callers who waited for the lines to open): its first RUSH_MS offer RUSH
times the load, so the trunks are full within seconds and the hour is measured at load."""
IDLE_MINUTES = 10
ECHO_ON_TAPS = 128
"""The trunk channels' echo cancellers in the run measured beside the full-scale figure (wall_s_echo_on)."""
BENCH_SPANS = 8
"""Idle framed E1 spans the analog variant of the bench site runs with, beside its trunks and phones
(their framers run every tick whether a call uses them or not): as many as the bench site's PRI spans."""
PRI_SIGNALLING = ("pri_cpe", "pri_net")
T1_B_CHANNELS = 23


def opening_rush(ms: int) -> float:
    """The bench hour's traffic curve: the rush, then the busy hour's load."""
    return RUSH if ms < RUSH_MS else 1.0


def trunk_channels(cfg: SiteConfig) -> int:
    """The channels the site's calls come in on: its FXO trunks and its PRI spans' B-channels."""
    fxo = sum(1 for p in cfg.ports if p.kind == "fxo")
    return fxo + sum(B_CHANNELS if s.kind == "e1" else T1_B_CHANNELS for s in cfg.spans
                     if s.signalling in PRI_SIGNALLING)


def analog_variant() -> SiteConfig:
    """The bench site's analog variant (bench/bench_site.py): 120 FXO trunks instead of its spans."""
    return parse_config(analog_site_yaml(), "bench-240-fxo.yaml")


def make_world(cfg: SiteConfig, duration_ms: int, seed: int) -> World:
    """The profile's traffic: a group (FXO trunks and PRI spans' B-channels) hunted by the exchange for a
    site of many trunk channels, one Poisson stream per trunk (0.9 Erlang each, and per PRI span) for a
    small one like the hotel."""
    trunks = trunk_channels(cfg)
    if trunks >= 24:
        return traffic_world(cfg, duration_ms, seed, offered_erlang=OVERLOAD * trunks,
                             mean_hold_s=MEAN_HOLD_S, mean_patience_s=MEAN_PATIENCE_S, press_after_ms=PRESS_AFTER_MS,
                             curve=opening_rush)
    return traffic_world(cfg, duration_ms, seed, erlang_per_trunk=0.9, mean_hold_s=MEAN_HOLD_S,
                         mean_patience_s=MEAN_PATIENCE_S)


def _thread_cpu_s(native_id: int | None) -> float:
    """CPU seconds (user + system) of one of this process's threads, from /proc."""
    if native_id is None:
        return 0.0
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _writer_thread_id() -> int | None:
    return next((t.native_id for t in threading.enumerate() if t.name == "cicbox-records"), None)


def cpu_split(cpu_main: float, world: float, media: float) -> tuple[float, float, float, bool]:
    """(world, media, control, scaled) of the engine thread's CPU time `cpu_main`, the world's and the
    media tier's parts timed on the monotonic clock (_Timed). Where those exceed the thread's CPU time
    (the core was taken away while they ran: a loaded machine), they are scaled down to it, control
    is 0, never negative, and `scaled` says so."""
    parts = world + media
    if parts > cpu_main > 0:
        k = cpu_main / parts
        return world * k, media * k, 0.0, True
    return world, media, cpu_main - parts, False


class _Timed:
    """Wraps a bound method: adds the time the calling thread spent in it to `total`. The parts it wraps
    (the world's and the media tier's steps) never wait, so their time is the thread's CPU time in them;
    it is read from the monotonic clock, which costs a fraction of the thread CPU clock (a system call
    here): three parts a period read with the CPU clock added 5 % to the hour's wall time."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.total = 0.0

    def __call__(self, *args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kw)
        finally:
            self.total += time.perf_counter() - t0


class _Busy:
    """The busy channels and the world's PRI calls, read after every control period: peaks and sums."""

    def __init__(self, engine: Engine, world: World) -> None:
        self.engine = engine
        self.world = world
        self.periods = self.total = self.peak = self.pri_total = self.pri_peak = 0

    def sample(self) -> None:
        busy = self.engine.busy_channels
        self.total += busy
        self.peak = max(self.peak, busy)
        pri = self.world.pri_calls
        self.pri_total += pri
        self.pri_peak = max(self.pri_peak, pri)
        self.periods += 1


def with_spans(cfg: SiteConfig, n: int) -> SiteConfig:
    """The site with `n` more E1 spans (idle: no route uses them; their echo cancellers off, as the bench
    site's trunks)."""
    extra = tuple(Span.model_validate({"name": f"bench_e1_{i + 1}", "kind": "e1", "echo_taps": 0})
                  for i in range(n))
    return cfg.model_copy(update={"spans": cfg.spans + extra})


def with_echo(cfg: SiteConfig, taps: int) -> SiteConfig:
    """The site with `taps` on every trunk channel's echo canceller: each FXO port and each span."""
    ports = tuple(p.model_copy(update={"echo_taps": taps}) if isinstance(p, FxoPort) else p for p in cfg.ports)
    spans = tuple(s.model_copy(update={"echo_taps": taps}) for s in cfg.spans)
    return cfg.model_copy(update={"ports": ports, "spans": spans})


def run_once(minutes: int, seed: int, site: Path | SiteConfig, spans: int = 0,
             echo_taps: int | None = None) -> dict[str, Any]:
    """One run of `minutes` of engine clock on `site` (a site file, or its configuration), with `spans`
    idle E1 spans added to it, and with `echo_taps` on every trunk channel if given: its figures and the
    digest of its records."""
    cfg = load_config(site) if isinstance(site, Path) else site
    cfg = with_spans(cfg, spans) if spans else cfg
    if echo_taps is not None:
        cfg = with_echo(cfg, echo_taps)
    duration = minutes * 60000
    with tempfile.TemporaryDirectory(prefix="cicbox-bench-") as tmp:
        state = Path(tmp)
        world = make_world(cfg, duration, seed)
        engine = Engine(state, cfg, 1, clock="virtual", world=world)
        before, after = _Timed(world.before_period), _Timed(world.after_period)
        step = _Timed(engine.tier_.step)
        world.before_period, world.after_period = before, after   # type: ignore[method-assign]
        engine.tier_.step = step                                   # type: ignore[method-assign]
        writer_tid = _writer_thread_id()
        writer0 = _thread_cpu_s(writer_tid)
        busy = _Busy(engine, world)
        cpu0, t0 = time.thread_time(), time.perf_counter()
        engine.run_for(duration, busy.sample)
        wall = time.perf_counter() - t0
        cpu_main = time.thread_time() - cpu0
        writer_cpu = _thread_cpu_s(writer_tid) - writer0
        stats = dict(engine.stats)
        fsyncs = engine.writer.stats().get("fsyncs", 0)
        engine.close()
        digest = cdr_digest(state / "cicbox.db")
    counts = world.counts
    world_cpu, media_cpu, control_cpu, scaled = cpu_split(cpu_main, before.total + after.total, step.total)
    return {
        "wall_s": round(wall, 2), "peak_busy_channels": busy.peak,
        "mean_busy_channels": round(busy.total / max(1, busy.periods), 1),
        "peak_pri_calls": busy.pri_peak, "mean_pri_calls": round(busy.pri_total / max(1, busy.periods), 1),
        "offered": stats["offered"], "answered": stats["answered"], "abandoned": stats["abandoned"],
        "callers": counts.get("offered", 0), "blocked": counts.get("blocked", 0),
        "answered_by_kind": dict(world.answered_by_kind),
        "cpu_s": {"world": round(world_cpu, 2), "media": round(media_cpu, 2),
                  "control": round(control_cpu, 2), "writer": round(writer_cpu, 2)},
        # the parts outgrew the thread's CPU time (cpu_split scaled them): the machine was loaded
        "cpu_s_scaled": scaled,
        "fsyncs_per_s": round(fsyncs / (duration / 1000), 3),
        "cdr_digest": digest,
    }


def fresh(minutes: int, seed: int, site: Path | SiteConfig, spans: int = 0,
          echo_taps: int | None = None) -> dict[str, Any]:
    """:func:`run_once` in an interpreter of its own, one run after another: no run inherits the heap,
    the collector's generations or the frozen objects of the runs before it (in one process a run
    after the busy hour took up to a fifth longer, the parts it does not share with the hour too)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_once, minutes, seed, site, spans, echo_taps).result()


def idle_period_us(profile: Path, minutes: int = IDLE_MINUTES) -> float:
    """The control tier's Python time per idle control period: an engine on the site with no traffic
    and no world, `minutes` of engine clock, the media tier's time taken out (median of 5 slices)."""
    cfg = load_config(profile)
    with tempfile.TemporaryDirectory(prefix="cicbox-idle-") as tmp:
        engine = Engine(Path(tmp), cfg, 1, clock="virtual")
        step = _Timed(engine.tier_.step)
        engine.tier_.step = step                                   # type: ignore[method-assign]
        engine.run_for(1000)     # past the start
        slices = []
        per_slice = max(1, minutes * 60000 // engine.period_ms // 5)
        for _ in range(5):
            step.total = 0.0
            c0 = time.thread_time()
            engine.run_for(per_slice * engine.period_ms)
            slices.append((time.thread_time() - c0 - step.total) / per_slice)
        engine.close()
    return round(sorted(slices)[2] * 1e6, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=int, default=60, help="minutes of engine clock (default: the busy hour)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--runs", type=int, default=1, help="runs with the seed, to compare their digests (default 1)")
    p.add_argument("--profile", default=str(BENCH_SITE), help="site (default configs/bench-240.yaml)")
    p.add_argument("--no-reference", action="store_true", help="skip the hotel reference run")
    p.add_argument("--spans", type=int, default=None,
                   help=f"idle E1 spans added to the analog variant (default {BENCH_SPANS}) or to another "
                        "profile (default 0)")
    p.add_argument("--pairs", type=int, default=3,
                   help="runs of the analog variant with and without its spans, in pairs (default 3)")
    p.add_argument("--no-fxo", action="store_true",
                   help="skip the bench site's analog variant (wall_s_fxo) and its run without spans")
    p.add_argument("--no-echo-on", action="store_true",
                   help=f"skip the run with {ECHO_ON_TAPS} echo canceller taps on every trunk channel (wall_s_echo_on)")
    args = p.parse_args()
    if args.minutes < 1 or args.runs < 1 or args.pairs < 1:
        p.error("--minutes, --runs and --pairs must be at least 1")
    profile = Path(args.profile)
    if not profile.is_file():
        p.error(f"no site file {profile}")
    print(f"seed {args.seed}, profile {profile.name}, {args.minutes} min x {args.runs}", file=sys.stderr)
    bench_site = profile.resolve() == BENCH_SITE.resolve()
    added = 0 if bench_site else (args.spans or 0)
    runs = [fresh(args.minutes, args.seed, profile, added) for _ in range(args.runs)]
    first = runs[0]
    fxo = no_spans = None
    fxo_runs: list[dict[str, Any]] = []
    no_spans_runs: list[float] | None = None
    pair_pcts: list[float] = []
    fxo_spans = BENCH_SPANS if args.spans is None else args.spans
    if bench_site and not args.no_fxo:
        # with and without the spans in pairs, in turn W N, N W, W N, ...: the figure is the median of
        # the pairs' ratios, so a machine whose speed drifts or jumps during the bench weighs on both
        fxo_runs.append(fresh(args.minutes, args.seed, analog_variant(), fxo_spans))
        if fxo_spans:
            no_spans_runs = []
            for i in range(args.pairs):
                if i > 0 and i % 2 == 0:
                    fxo_runs.append(fresh(args.minutes, args.seed, analog_variant(), fxo_spans))
                no_spans_runs.append(fresh(args.minutes, args.seed, analog_variant())["wall_s"])
                if i % 2 == 1:
                    fxo_runs.append(fresh(args.minutes, args.seed, analog_variant(), fxo_spans))
            pair_pcts = [round((float(w["wall_s"]) / n - 1) * 100, 1) for w, n in zip(fxo_runs, no_spans_runs,
                                                                                       strict=True)]
            no_spans = statistics.median(no_spans_runs)
        fxo = sorted(fxo_runs, key=lambda r: float(r["wall_s"]))[(len(fxo_runs) - 1) // 2]
    elif added:
        no_spans_runs = [fresh(args.minutes, args.seed, profile)["wall_s"]]
        no_spans = no_spans_runs[0]
    with_spans_s = fxo["wall_s"] if fxo is not None else first["wall_s"]
    echo_on = None if args.no_echo_on else fresh(args.minutes, args.seed, profile, added, ECHO_ON_TAPS)
    hotel = None
    if not args.no_reference and profile.resolve() != HOTEL.resolve():
        hotel = fresh(args.minutes, args.seed, HOTEL)["wall_s"]
    result = {
        "bench": "virtual_hour",
        "profile": profile.name,
        "seed": args.seed,
        "engine_minutes": args.minutes,
        "wall_s": first["wall_s"],
        "wall_s_runs": [r["wall_s"] for r in runs],
        "wall_s_fxo": fxo["wall_s"] if fxo is not None else None,
        "wall_s_fxo_runs": [r["wall_s"] for r in fxo_runs] if fxo is not None else None,
        "fxo": {k: v for k, v in fxo.items() if k != "cdr_digest"} if fxo is not None else None,
        "spans_added": fxo_spans if fxo is not None else added,
        "wall_s_no_spans": no_spans,
        "wall_s_no_spans_runs": no_spans_runs,
        "span_overhead_pct": (statistics.median(pair_pcts) if pair_pcts
                              else round((with_spans_s / no_spans - 1) * 100, 1) if no_spans else None),
        "span_overhead_pct_pairs": pair_pcts or None,
        "echo_on_taps": ECHO_ON_TAPS if echo_on else None,
        "wall_s_echo_on": echo_on["wall_s"] if echo_on else None,
        "echo_overhead_pct": round((echo_on["wall_s"] / first["wall_s"] - 1) * 100, 1) if echo_on else None,
        "echo_on_cpu_media_s": echo_on["cpu_s"]["media"] if echo_on else None,
        "echo_on_digest_identical": echo_on["cdr_digest"] == first["cdr_digest"] if echo_on else None,
        **{k: v for k, v in first.items() if k not in ("wall_s", "cdr_digest")},
        "idle_period_us": idle_period_us(profile),
        "digest_identical_across_runs": len({r["cdr_digest"] for r in runs}) == 1 if len(runs) > 1 else None,
        "cdr_digest": first["cdr_digest"],
        "hotel_wall_s": hotel,
        "target_wall_s": 60,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
