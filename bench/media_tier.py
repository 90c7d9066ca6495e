"""Media tier benchmark: prints one JSON object on its last line.

Default: the full per-tick chain (G.711 in and out, DTMF detection on every
channel, tone generation, two-party bridges) over 240 channels of seeded
speech-like noise with DTMF bursts on every channel, stepped in 8-sample
ticks on one pinned core; the same chain with every channel encoded (bridges
across laws, so no octets pass untouched); and, in the same run, spandsp's
dtmf_rx on the same 240 channels in 8-sample chunks, twice: Debian's shipped
libspandsp, and spandsp rebuilt from its Debian source package with our own
CFLAGS and instruction set (bench/peers/build_spandsp.py, run by `make
bench`), so that the ratio to it is not a compiler-flag lead. Each figure is
the median of 5 runs of at least 1 s of the thread's CPU time. Reports
channels per core for each, the ratios, whether the detected digits agree
channel by channel, and the instruction set used. A case that cannot run
(the rebuild failed, say) reports null and the reason.

--realtime: 240 channels (10 T1 spans of the sim card) on the realtime clock
for 60 s with a busy Python thread standing in for the control tier, the card
FIFO k ms deep; reports FIFO underflows, p99/p99.9/max wake-up lateness, and
the same for an empty 1 ms loop run alongside as the machine's baseline.

Times here are measurements of a benchmark (the thread's CPU time for the
throughput, the realtime clock with --realtime): nothing passes or fails on them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsp.scheduler import Scheduler, ffi, isa, lib

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "build" / "bench"   # the spandsp bindings `make bench` builds (bench/peers/build_spandsp.py)
FS = 8000
TICK = 8                            # samples per 1 ms tick
KEYS = "0123456789*#ABCD"
ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
KEYPAD = "123A456B789C*0#D"
TARGET = 42000


def speech_like(rng: np.random.Generator, nchan: int, n: int, dbm0: float, pauses: bool = True) -> Any:
    """Noise with a speech-like spectrum (peak near 500 Hz, falling above) and syllabic bursts
    (without them, steady, if not `pauses`)."""
    white = rng.standard_normal((nchan, n))
    spec = np.fft.rfft(white, axis=1)
    f = np.fft.rfftfreq(n, 1 / FS)
    shape = (f / 500.0) / (1 + (f / 500.0) ** 2.5)
    x = np.fft.irfft(spec * shape, n=n, axis=1)
    # 4 Hz syllables with pauses
    t = np.arange(n) / FS
    phase = rng.uniform(0, 2 * np.pi, (nchan, 1))
    env = np.clip(np.sin(2 * np.pi * 4 * t + phase) + 0.3, 0, None)
    if pauses:
        x = x * env
    rms = np.sqrt(np.mean(x**2, axis=1, keepdims=True))
    target = 32768 * 10 ** ((dbm0 - 3.14) / 20) / np.sqrt(2)
    return x / rms * target


def dtmf_bursts(rng: np.random.Generator, nchan: int, n: int) -> tuple[Any, list[str]]:
    """Every second, 4 random digits per channel: 60 ms on, 60 ms off, -7 dBm0 per tone."""
    out = np.zeros((nchan, n))
    sent: list[str] = []
    amp = 32768 * 10 ** ((-7 - 3.14) / 20)
    t = np.arange(int(0.060 * FS)) / FS
    for c in range(nchan):
        digits = ""
        start = int(rng.integers(50, 300)) * 8
        while start + 4 * 960 < n:
            for _ in range(4):
                key = KEYS[int(rng.integers(0, 16))]
                i = KEYPAD.index(key)
                burst = amp * (np.sin(2 * np.pi * ROWS[i // 4] * t) + np.sin(2 * np.pi * COLS[i % 4] * t))
                out[c, start:start + len(t)] += burst
                digits += key
                start += 960
            start += FS - 4 * 960
        sent.append(digits)
    return out, sent


@dataclass(frozen=True)
class Signal:
    """The input every case runs on: the same samples as A-law and as µ-law octets, and as the linear
    samples spandsp gets (the A-law octets decoded), all channel-major and cut to whole blocks of k ticks."""

    alaw: Any
    ulaw: Any
    lin: Any
    sent: list[str]
    k: int

    @property
    def nchan(self) -> int:
        return int(self.alaw.shape[0])

    @property
    def audio_s(self) -> float:
        return int(self.alaw.shape[1]) / FS


def make_signal(nchan: int, seconds: int, seed: int, k: int) -> Signal:
    rng = np.random.default_rng(seed)
    n = seconds * FS
    x = speech_like(rng, nchan, n, -25.0)
    d, sent = dtmf_bursts(rng, nchan, n)
    code = np.clip(np.round(x + d), -32768, 32767).astype(np.int32) + 32768   # index of the linear value
    to_a = np.array([lib.cb_lin2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8)
    to_u = np.array([lib.cb_lin2ulaw(v) for v in range(-32768, 32768)], dtype=np.uint8)
    from_a = np.array([lib.cb_alaw2lin(a) for a in range(256)], dtype=np.int16)
    whole = n // (k * TICK) * (k * TICK)
    alaw, ulaw = to_a[code[:, :whole]], to_u[code[:, :whole]]
    return Signal(alaw, ulaw, np.ascontiguousarray(from_a[alaw]), sent, k)


def to_blocks(octets: Any, k: int) -> Any:
    """Channel-major [nchan][n] to block after block, each block channel-major [nchan][k*8]."""
    nchan, n = octets.shape
    per = k * TICK
    nblocks = n // per
    return np.ascontiguousarray(octets[:, : nblocks * per].reshape(nchan, nblocks, per).transpose(1, 0, 2))


# -- cases ---------------------------------------------------------------------
#
# A case makes a fresh Trial for each timed run (set-up is not timed); a timed
# run passes over the signal again and again until the thread has spent
# --min-cpu-s of CPU time in the passes, and the case's figure is the median
# over --runs runs, the cases taking turns run by run. A new case is a
# function returning a Trial and one line in CASES; a new ratio is one line in
# RATIOS.


class Unavailable(Exception):  # noqa: N818 (a state, not an error: the JSON says why)
    """The case cannot run on this machine; str() says why."""


@dataclass
class Trial:
    """One timed run's own state. `step` makes one pass over the signal and returns the thread CPU
    seconds of the pass and the digits heard on each channel; `units` is what one pass carries
    (channel-seconds of audio, or leg-seconds for a conference case)."""

    units: float
    step: Callable[[], tuple[float, list[str]]]


@dataclass(frozen=True)
class Case:
    name: str
    rate_key: str      # the JSON key of the median (units per second of one core)
    runs_key: str      # the JSON key of each run's figure
    start: Callable[[Signal], Trial]


@dataclass(frozen=True)
class Ratio:
    key: str
    numerator: str     # case names
    denominator: str


TONES = ("dial", "ringback", "busy", "congestion")
CHAIN = "g711 in+out, dtmf detect on all, tone gen on 120, 2-party bridges on 120 (60 bridges, one law)"
CHAIN_ALL_ENCODE = ("the same with each bridge across laws (A-law to µ-law): every channel decoded and "
                    "encoded, no same-law pass-through")


def media_chain(sig: Signal, all_encode: bool) -> Trial:
    """The per-tick chain: DTMF detection on every channel, two-party bridges on the first half,
    tones on the second half. On one law a bridge passes the octets untouched (the fast path);
    with `all_encode` the second channel of each bridge runs µ-law, so both ends are encoded."""
    n = sig.nchan
    m = Scheduler(n, "alaw")
    octets = sig.alaw.copy()
    for c in range(n):
        m.detect_dtmf(c)
    for c in range(0, n // 2, 2):
        if all_encode:
            m.set_law(c + 1, "ulaw")
            octets[c + 1] = sig.ulaw[c + 1]
        m.bridge(c, c + 1)
    for c in range(n // 2, n):
        m.tone(c, "cn", TONES[c % 4])
    return _run_blocks(m, sig, octets, n * sig.audio_s)


def ours(sig: Signal) -> Trial:
    return media_chain(sig, all_encode=False)


def _run_blocks(m: Scheduler, sig: Signal, octets: Any, units: float) -> Trial:
    """A trial that passes the signal through `m` block by block and collects the digits."""
    n, k = sig.nchan, sig.k
    blocks = to_blocks(octets, k)
    nblocks = int(blocks.shape[0])
    rx = ffi.from_buffer(blocks)
    tx = ffi.new("uint8_t[]", blocks.size)
    tick = 0

    def step() -> tuple[float, list[str]]:
        nonlocal tick
        t0 = time.thread_time()
        rc = lib.cb_sched_process_blocks(m._m, tick, nblocks, k, rx, tx)
        cpu = time.thread_time() - t0
        if rc < 0:
            raise SystemExit(f"channel scheduler failed: {rc}")
        tick += nblocks * k
        digits = [""] * n
        for ev in m.events():
            if ev.type == lib.CB_EV_DTMF:
                digits[ev.chan] += chr(ev.value)
        return cpu, digits

    return Trial(units, step)


def bridge(sig: Signal) -> Trial:
    """Every channel in a two-party bridge (channels 0-1, 2-3, ...: every pair of all of them), DTMF
    detection on all, one law: each bridge passes its octets untouched (the fast path)."""
    n = sig.nchan
    m = Scheduler(n, "alaw")
    for c in range(n):
        m.detect_dtmf(c)
    for c in range(0, n - 1, 2):
        m.bridge(c, c + 1)
    return _run_blocks(m, sig, sig.alaw, n * sig.audio_s)


def graph(sig: Signal) -> Trial:
    """The `bridge` case with every bridge carried by the media graph instead of the fast path: each
    pair of all the channels hears the other through two one-way edges at +0.01 dB (not unity, so
    the octets are decoded, mixed with a gain and encoded)."""
    n = sig.nchan
    m = Scheduler(n, "alaw")
    for c in range(n):
        m.detect_dtmf(c)
    for c in range(0, n - 1, 2):
        m.listen(c, c + 1, 0.01)
        m.listen(c + 1, c, 0.01)
    return _run_blocks(m, sig, sig.alaw, n * sig.audio_s)


def conference(sig: Signal) -> Trial:
    """Every channel a leg of an 8-leg conference (each hears the other seven), DTMF detection on
    all: leg-seconds per CPU second."""
    n = sig.nchan
    m = Scheduler(n, "alaw")
    for c in range(n):
        m.detect_dtmf(c)
        m.mix_join(c, group=c // 8)
    return _run_blocks(m, sig, sig.alaw, n * sig.audio_s)


def ours_all_encode(sig: Signal) -> Trial:
    return media_chain(sig, all_encode=True)


def peer(module: str) -> Any:
    """A binding built by bench/peers/build_spandsp.py (`make bench`) into build/bench/."""
    if str(PEERS) not in sys.path:
        sys.path.insert(0, str(PEERS))
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(f"{module} not built ({e}); `make bench` builds it") from e


def same_flags_build() -> dict[str, Any]:
    """What build/bench/spandsp_same_flags.json says of the rebuild: its source and flags."""
    path = PEERS / "spandsp_same_flags.json"
    if not path.is_file():
        raise Unavailable("not built: `make bench` rebuilds spandsp from its Debian source package")
    status: dict[str, Any] = json.loads(path.read_text())
    if not status.get("ok"):
        raise Unavailable(str(status.get("reason")))
    if status.get("isa") != isa():
        raise Unavailable(f"built for {status.get('isa')} but the kernels here run {isa()}: "
                          "remove build/bench and run `make bench`")
    return status


def dtmf_rx(binding: Any, sig: Signal) -> Trial:
    """spandsp's DTMF receiver on every channel, 8 samples at a time, the channels interleaved."""
    n, length = sig.lin.shape
    samples = binding.ffi.from_buffer("int16_t[]", sig.lin)
    maxd = 256
    buf = binding.ffi.new("char[]", n * maxd)

    def step() -> tuple[float, list[str]]:
        t0 = time.thread_time()
        total = binding.lib.bench_dtmf_rx_run(n, samples, length, TICK, buf, maxd)
        cpu = time.thread_time() - t0
        if total < 0:
            raise SystemExit("spandsp run failed")
        raw = bytes(binding.ffi.buffer(buf))
        return cpu, [raw[c * maxd:(c + 1) * maxd].split(b"\0", 1)[0].decode() for c in range(n)]

    return Trial(n * sig.audio_s, step)


def spandsp(sig: Signal) -> Trial:
    return dtmf_rx(peer("_bench_spandsp_shipped"), sig)


def spandsp_same_flags(sig: Signal) -> Trial:
    same_flags_build()
    return dtmf_rx(peer("_bench_spandsp_same_flags"), sig)


CASES = [
    Case("ours", "ours_channels_per_core", "ours_runs", ours),
    Case("ours_all_encode", "ours_all_encode_channels_per_core", "ours_all_encode_runs", ours_all_encode),
    Case("spandsp", "spandsp_dtmf_rx_channels_per_core", "spandsp_runs", spandsp),
    Case("spandsp_same_flags", "spandsp_same_flags_channels_per_core", "spandsp_same_flags_runs",
         spandsp_same_flags),
    Case("bridge", "bridge_channels_per_core", "bridge_runs", bridge),
    Case("graph", "graph_channels_per_core", "graph_runs", graph),
    Case("conference", "conference_legs_per_core", "conference_runs", conference),
]

RATIOS = [
    Ratio("ratio_vs_spandsp", "ours", "spandsp"),
    Ratio("ratio_vs_spandsp_same_flags", "ours", "spandsp_same_flags"),
    Ratio("graph_ratio_vs_bridge", "graph", "bridge"),
]


def timed_run(trial: Trial, min_cpu_s: float) -> tuple[float, float, list[str]]:
    """Pass over the signal until the passes took min_cpu_s of this thread's CPU time.
    Returns units per CPU second, the CPU seconds, and the digits of the first pass."""
    cpu, passes = 0.0, 0
    first: list[str] | None = None
    while passes == 0 or cpu < min_cpu_s:
        c, digits = trial.step()
        cpu += c
        passes += 1
        if first is None:
            first = digits
    return passes * trial.units / cpu, cpu, first or []


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1]})
    sig = make_signal(args.channels, args.seconds, args.seed, args.k)
    cases = [c for c in CASES if not args.case or c.name in args.case]
    rates: dict[str, list[float]] = {c.name: [] for c in cases}
    cpu_s: dict[str, list[float]] = {c.name: [] for c in cases}
    digits: dict[str, list[str]] = {}
    reasons = {c.name: "not run (--case)" for c in CASES if c not in cases}
    for _ in range(args.runs):
        for case in cases:
            if case.name in reasons:
                continue
            try:
                trial = case.start(sig)
            except Unavailable as e:
                reasons[case.name] = str(e)
                continue
            rate, cpu, heard = timed_run(trial, args.min_cpu_s)
            rates[case.name].append(rate)
            cpu_s[case.name].append(cpu)
            digits.setdefault(case.name, heard)
    median = {name: statistics.median(r) for name, r in rates.items() if r}

    def count(name: str) -> int | None:
        return sum(len(s) for s in digits[name]) if name in digits else None

    def differing(a: str, b: str) -> list[int] | None:
        if a not in digits or b not in digits:
            return None
        return [c for c in range(sig.nchan) if digits[a][c] != digits[b][c]]

    disagree = differing("ours", "spandsp")
    same_flags_disagree = differing("spandsp_same_flags", "spandsp")
    heard_ours = digits.get("ours")
    out: dict[str, Any] = {
        "bench": "media_tier",
        "mode": "throughput",
        "channels": sig.nchan,
        "audio_seconds": sig.audio_s,
        "k": sig.k,
        "seed": args.seed,
        "isa": isa(),
        "pinned_core": cores[-1],
        "runs": args.runs,
        "timing": f"thread CPU time; each run passes over the audio until >= {args.min_cpu_s} s; median of runs",
        "chain": CHAIN,
        "chain_all_encode": CHAIN_ALL_ENCODE,
        "chain_bridge": "g711 in+out, dtmf detect on all, every channel in a 2-party bridge (one law: fast path)",
        "chain_graph": "the bridge chain with every bridge carried by the media graph (edges at +0.01 dB, "
                       "no fast path)",
        "chain_conference": "every channel a leg of an 8-leg conference, dtmf detect on all",
    }
    for case in CASES:
        out[case.rate_key] = round(median[case.name]) if case.name in median else None
        out[case.runs_key] = [round(x) for x in rates.get(case.name, [])]
    for r in RATIOS:
        missing = [name for name in (r.numerator, r.denominator) if name not in median]
        out[r.key] = None if missing else round(median[r.numerator] / median[r.denominator], 3)
        out[f"{r.key}_reason"] = "; ".join(f"{name}: {reasons.get(name, 'no result')}" for name in missing) or None
    try:
        build: dict[str, Any] | None = {k: v for k, v in same_flags_build().items() if k != "ok"}
    except Unavailable:
        build = None
    out.update({
        "spandsp_same_flags_build": build,
        "run_cpu_seconds": {name: [round(x, 2) for x in v] for name, v in cpu_s.items() if v},
        "target_channels_per_core": TARGET,
        "target_ratio_vs_spandsp": 2.0,
        "digits_sent": sum(len(s) for s in sig.sent),
        "digits_ours": count("ours"),
        "digits_spandsp": count("spandsp"),
        "digits_agree": None if disagree is None else not disagree,
        "channels_disagreeing": None if disagree is None else disagree[:10],
        "channels_ours_not_as_sent": None if heard_ours is None else
            [c for c in range(sig.nchan) if heard_ours[c] != sig.sent[c]][:10],
        "digits_ours_all_encode": count("ours_all_encode"),
        "digits_bridge": count("bridge"),
        "digits_graph": count("graph"),
        "digits_conference": count("conference"),
        "digits_spandsp_same_flags": count("spandsp_same_flags"),
        "digits_spandsp_same_flags_agree": None if same_flags_disagree is None else not same_flags_disagree,
    })
    return out


def realtime(args: argparse.Namespace) -> dict[str, Any]:
    from appliance.linecard import LineCard
    from drivers.base import CardDescription

    nspans = args.channels // 24
    desc = CardDescription(spans=("t1",) * nspans, law="alaw", k=args.k, clock="realtime")
    tier = LineCard("sim", desc)
    n = len(tier.card.channels)
    for c in range(n):
        tier.sched.detect_dtmf(c)
    for c in range(0, n // 2, 2):
        tier.sched.bridge(c, c + 1)
    for c in range(n // 2, n):
        tier.sched.tone(c, "cn", "ringback")
    stop = threading.Event()
    busy_iterations = [0]

    def control_tier() -> None:
        # Busy Python work holding the GIL most of the time, taking events as it goes.
        while not stop.is_set():
            sum(i * i for i in range(20000))
            tier.events()
            busy_iterations[0] += 1

    probe_hist = ffi.new("uint32_t[]", lib.CB_SCHED_LATE_BUCKETS)
    probe_max = ffi.new("uint64_t *")

    def probe() -> None:
        lib.cb_clock_probe(args.duration * 1000, probe_hist, probe_max)

    flags = tier.start_realtime()
    threads = [threading.Thread(target=control_tier), threading.Thread(target=probe)]
    for t in threads:
        t.start()
    threads[1].join()
    stop.set()
    threads[0].join()
    tier.stop_realtime()
    media_stats = tier.sched.stats()
    card_stats = tier.card.stats() if hasattr(tier.card, "stats") else {}
    hist = tier.sched.lateness()
    tier.close()

    def pct(h: list[int], q: float) -> int:
        total = sum(h)
        acc = 0
        for i, v in enumerate(h):
            acc += v
            if acc >= q * total:
                return i
        return len(h) - 1

    base = list(probe_hist)
    return {
        "bench": "media_tier",
        "mode": "realtime",
        "channels": n,
        "k": args.k,
        "card_fifo_ms": args.k,
        "seconds": args.duration,
        "isa": isa(),
        "sched_fifo": bool(flags & lib.CB_RT_FIFO),
        "memory_locked": bool(flags & lib.CB_RT_MLOCK),
        "fifo_underflows": card_stats.get("underflows", -1),
        "late_blocks": card_stats.get("late_blocks", -1),
        "blocks": media_stats["blocks"],
        "media_seconds": round(media_stats["blocks"] * args.k / 1000, 1),   # set-up to tear-down, all measured
        "lateness_us": {"p99": pct(hist, 0.99), "p99_9": pct(hist, 0.999), "max": media_stats["late_max_us"]},
        "baseline_1ms_loop_lateness_us": {"p99": pct(base, 0.99), "p99_9": pct(base, 0.999),
                                          "max": int(probe_max[0])},
        "control_tier_busy_loops": busy_iterations[0],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--realtime", action="store_true", help="run on the realtime clock instead")
    p.add_argument("--channels", type=int, default=240)
    p.add_argument("--seconds", type=int, default=4, help="seconds of audio per channel (throughput)")
    p.add_argument("--duration", type=int, default=60, help="seconds on the realtime clock (--realtime)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("-k", type=int, default=None, help="ticks per block (default 1; realtime 4)")
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--min-cpu-s", type=float, default=1.0, help="thread CPU seconds of each timed run (throughput)")
    p.add_argument("--case", action="append", choices=[c.name for c in CASES],
                   help="run only this case (repeatable; default all)")
    args = p.parse_args()
    if args.k is None:
        args.k = 4 if args.realtime else 1
    result = realtime(args) if args.realtime else throughput(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
