"""Media tier benchmark: prints one JSON object on its last line.

Default: the full per-tick chain (G.711 in and out, DTMF detection on every
channel, tone generation, two-party bridges) over 240 channels of seeded
speech-like noise with DTMF bursts on every channel, stepped in 8-sample
ticks on one pinned core, median of 5 runs; beside it, in the same run,
spandsp's dtmf_rx (Debian libspandsp) on the same 240 channels in 8-sample
chunks. Reports channels per core for each, their ratio, whether the detected
digits agree channel by channel, and the instruction set used.

--realtime: 240 channels (10 T1 spans of the sim card) on the realtime clock
for 60 s with a busy Python thread standing in for the control tier, the card
FIFO k ms deep; reports FIFO underflows, p99/p99.9/max wake-up lateness, and
the same for an empty 1 ms loop run alongside as the machine's baseline.

Times here are wall-clock measurements of a benchmark: nothing passes or fails
on them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsp.scheduler import Scheduler, ffi, isa, lib

FS = 8000
KEYS = "0123456789*#ABCD"
ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
KEYPAD = "123A456B789C*0#D"
TARGET = 42000


def speech_like(rng: np.random.Generator, nchan: int, n: int, dbm0: float) -> Any:
    """Noise with a speech-like spectrum (peak near 500 Hz, falling above) and syllabic bursts."""
    white = rng.standard_normal((nchan, n))
    spec = np.fft.rfft(white, axis=1)
    f = np.fft.rfftfreq(n, 1 / FS)
    shape = (f / 500.0) / (1 + (f / 500.0) ** 2.5)
    x = np.fft.irfft(spec * shape, n=n, axis=1)
    # 4 Hz syllables with pauses
    t = np.arange(n) / FS
    phase = rng.uniform(0, 2 * np.pi, (nchan, 1))
    env = np.clip(np.sin(2 * np.pi * 4 * t + phase) + 0.3, 0, None)
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


def make_signal(nchan: int, seconds: int, seed: int) -> tuple[Any, Any, list[str]]:
    """Channel-major A-law octets and the matching linear samples (what both detectors see)."""
    rng = np.random.default_rng(seed)
    n = seconds * FS
    x = speech_like(rng, nchan, n, -25.0)
    d, sent = dtmf_bursts(rng, nchan, n)
    lin = np.clip(np.round(x + d), -32768, 32767).astype(np.int16)
    enc = np.array([lib.cb_lin2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8)
    dec = np.array([lib.cb_alaw2lin(a) for a in range(256)], dtype=np.int16)
    octets = enc[lin.astype(np.int32) + 32768]
    return octets, dec[octets], sent


def to_blocks(octets: Any, k: int) -> Any:
    """Channel-major [nchan][n] to block after block, each block channel-major [nchan][k*8]."""
    nchan, n = octets.shape
    per = k * 8
    nblocks = n // per
    return np.ascontiguousarray(octets[:, : nblocks * per].reshape(nchan, nblocks, per).transpose(1, 0, 2))


def run_ours(blocks: Any, nchan: int, k: int) -> tuple[float, list[str]]:
    m = Scheduler(nchan, "alaw")
    for c in range(nchan):
        m.detect_dtmf(c)
    for c in range(0, nchan // 2, 2):
        m.bridge(c, c + 1)
    tones = ("dial", "ringback", "busy", "congestion")
    for c in range(nchan // 2, nchan):
        m.tone(c, "cn", tones[c % 4])
    rx = ffi.from_buffer(blocks)
    tx = ffi.new("uint8_t[]", blocks.size)
    t0 = time.perf_counter()
    rc = lib.cb_sched_process_blocks(m._m, 0, blocks.shape[0], k, rx, tx)
    wall = time.perf_counter() - t0
    if rc < 0:
        raise SystemExit(f"media tier failed: {rc}")
    digits = [""] * nchan
    for ev in m.events():
        if ev.type == lib.CB_EV_DTMF:
            digits[ev.chan] += chr(ev.value)
    return wall, digits


def run_spandsp(lin: Any) -> tuple[float, list[str]]:
    from tests.peers._spandsp import ffi as sffi
    from tests.peers._spandsp import lib as slib

    nchan, n = lin.shape
    sig = sffi.from_buffer("int16_t[]", np.ascontiguousarray(lin))
    maxd = 256
    buf = sffi.new("char[]", nchan * maxd)
    t0 = time.perf_counter()
    total = slib.cbpeer_dtmf_rx_run(nchan, sig, n, 8, buf, maxd)
    wall = time.perf_counter() - t0
    if total < 0:
        raise SystemExit("spandsp run failed")
    raw = bytes(sffi.buffer(buf))
    return wall, [raw[c * maxd:(c + 1) * maxd].split(b"\0", 1)[0].decode() for c in range(nchan)]


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1]})
    octets, lin, sent = make_signal(args.channels, args.seconds, args.seed)
    blocks = to_blocks(octets, args.k)
    audio_s = blocks.shape[0] * args.k / 1000
    ours, theirs = [], []
    digits_ours: list[str] = []
    digits_sp: list[str] = []
    for _ in range(args.runs):
        w, digits_ours = run_ours(blocks, args.channels, args.k)
        ours.append(args.channels * audio_s / w)
        w, digits_sp = run_spandsp(lin)
        theirs.append(args.channels * audio_s / w)
    ours_med, sp_med = statistics.median(ours), statistics.median(theirs)
    disagree = [c for c in range(args.channels) if digits_ours[c] != digits_sp[c]]
    missed = [c for c in range(args.channels) if digits_ours[c] != sent[c]]
    return {
        "bench": "media_tier",
        "mode": "throughput",
        "channels": args.channels,
        "audio_seconds": audio_s,
        "k": args.k,
        "seed": args.seed,
        "isa": isa(),
        "pinned_core": cores[-1],
        "runs": args.runs,
        "chain": "g711 in+out, dtmf detect on all, tone gen on half, 2-party bridges on a quarter",
        "ours_channels_per_core": round(ours_med),
        "ours_runs": [round(x) for x in ours],
        "spandsp_dtmf_rx_channels_per_core": round(sp_med),
        "spandsp_runs": [round(x) for x in theirs],
        "ratio_vs_spandsp": round(ours_med / sp_med, 3),
        "target_channels_per_core": TARGET,
        "target_ratio_vs_spandsp": 2.0,
        "digits_sent": sum(len(s) for s in sent),
        "digits_ours": sum(len(s) for s in digits_ours),
        "digits_spandsp": sum(len(s) for s in digits_sp),
        "digits_agree": not disagree,
        "channels_disagreeing": disagree[:10],
        "channels_ours_not_as_sent": missed[:10],
    }


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
    args = p.parse_args()
    if args.k is None:
        args.k = 4 if args.realtime else 1
    result = realtime(args) if args.realtime else throughput(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
