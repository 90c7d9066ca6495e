"""Framing benchmark: prints one JSON object on its last line.

The sim card's framer (drivers/src/framer.c, tick/framer_tick.c) transmitting and
receiving 8 E1 spans (CRC-4 multiframe, TS16 an idle D-channel: HDLC flags 0x7E; the
other 30 timeslots A-law speech-like octets with DTMF bursts, bench/media_tier.py's
signal), each span's line into its own receiver, per 1 ms tick, beside the media
chain of bench/media_tier.py on 240 channels (its `ours` case: G.711 in and out, DTMF
detection on all, tones on 120, bridges on 120), in the same run on one pinned core.
The framer loop runs in C (cb_framer_bench: tick after tick, the 8 spans in turn, tx
into rx over a line buffer); Python only times each call with the thread's CPU time.
Each figure is the median of --runs runs of at least --min-cpu-s of CPU time, the
cases taking turns run by run. T1 ESF (24 timeslots, TS24 the D-channel, µ-law) is
reported for information.

framing_pct_of_chain = 8 x framer_ns_per_span_tick / chain_ns_per_tick_240ch x 100
(target 15 %: real cards frame in silicon, so here framing is pure overhead beside the
DSP). Times are measurements of a benchmark: nothing passes or fails on them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.media_tier import Signal, make_signal, ours, timed_run
from drivers._card import ffi, lib
from dsp.scheduler import isa

SPANS = 8
FLAG = 0x7E                 # HDLC flag: the idle D-channel
TARGET_PCT = 15.0
E1, T1 = 0, 1               # enum cb_span_kind
WARMUP_TICKS = 64           # frame and CRC-4 multiframe alignment before the timed ticks


def span_blocks(octets: Any, nts: int, dchan: int) -> Any:
    """Tick blocks [ticks][nts][8] of one span: the signal's channels on the bearers, HDLC flags on
    the D-channel timeslot (1-based)."""
    ticks = int(octets.shape[1]) // 8
    out = np.empty((ticks, nts, 8), np.uint8)
    bearers = [t for t in range(1, nts + 1) if t != dchan]
    for i, t in enumerate(bearers):
        out[:, t - 1, :] = octets[i, : ticks * 8].reshape(ticks, 8)
    out[:, dchan - 1, :] = FLAG
    return np.ascontiguousarray(out)


class FramerCase:
    """8 framer pairs of one framing fed the same span signal; run() times `ticks` ticks in C."""

    def __init__(self, kind: int, framing: int, ts16: int, blocks: Any) -> None:
        self.kind, self.framing, self.ts16 = kind, framing, ts16
        self.blocks = blocks
        self.nblocks = int(blocks.shape[0])
        self.nts = int(blocks.shape[1])
        self.ts_in = ffi.from_buffer(blocks)
        self.ts_out = ffi.new("uint8_t[]", SPANS * self.nts * 8)

    def new_pairs(self) -> tuple[list[Any], Any, Any]:
        cfg = ffi.new("cb_span_config_t *", {"framing": self.framing, "ts16": self.ts16})
        keep = []
        tx = ffi.new("cb_framer_t *[]", SPANS)
        rx = ffi.new("cb_framer_t *[]", SPANS)
        for i in range(SPANS):
            for arr in (tx, rx):
                f = lib.cb_framer_new(self.kind, cfg, 0xD5)
                if f == ffi.NULL:
                    raise SystemExit("cb_framer_new failed")
                keep.append(ffi.gc(f, lib.cb_framer_free))
                arr[i] = f
        return keep, tx, rx

    def run(self, min_cpu_s: float, want: int) -> tuple[float, dict[str, Any]]:
        """ns per span-tick (tx + rx) of one timed run, and the receivers' state after it."""
        keep, tx, rx = self.new_pairs()
        self._call(tx, rx, WARMUP_TICKS)
        for i in range(SPANS):
            if lib.cb_framer_aligned(rx[i]) & want != want:
                raise SystemExit(f"framer {i} not aligned after {WARMUP_TICKS} ticks")
        ticks, cpu, chunk = 0, 0.0, 2000
        while cpu < min_cpu_s:
            t0 = time.thread_time()
            self._call(tx, rx, chunk)
            cpu += time.thread_time() - t0
            ticks += chunk
        st = ffi.new("cb_span_status_t *")
        crc = fas = 0
        for i in range(SPANS):
            lib.cb_framer_status(rx[i], st)
            crc += int(st.counters.crc)
            fas += int(st.counters.fas)
        # the last tick's received octets: 8 consecutive frames of what was sent (the receiver lags
        # by its window and elastic store: at most two ticks)
        got = np.frombuffer(ffi.buffer(self.ts_out), np.uint8).reshape(SPANS, self.nts, 8)
        last = chunk - 1    # each call starts again at block 0
        stream = np.concatenate([self.blocks[(last - k) % self.nblocks] for k in (2, 1, 0)], axis=1)
        intact = all(any((got[i] == stream[:, s:s + 8]).all() for s in range(17)) for i in range(SPANS))
        del keep
        return cpu / (ticks * SPANS) * 1e9, {"crc": crc, "fas": fas, "octets_intact": intact}

    def _call(self, tx: Any, rx: Any, ticks: int) -> None:
        rc = lib.cb_framer_bench(tx, rx, SPANS, ticks, self.ts_in, self.nblocks, self.ts_out)
        if rc != lib.CB_OK:
            raise SystemExit(f"cb_framer_bench failed: {rc}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--min-cpu-s", type=float, default=1.0, help="thread CPU seconds of each timed run")
    p.add_argument("--seconds", type=int, default=2, help="seconds of audio per channel (the chain's signal)")
    p.add_argument("--seed", type=int, default=20261125)
    args = p.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1]})

    chain_sig = make_signal(240, args.seconds, args.seed, 1)
    span_sig: Signal = make_signal(30, 1, args.seed + 1, 1)
    e1 = FramerCase(E1, lib.CB_FRAMING_E1_CRC4, lib.CB_TS16_DCHAN, span_blocks(span_sig.alaw, 31, 16))
    t1 = FramerCase(T1, lib.CB_FRAMING_T1_ESF, lib.CB_TS16_DCHAN, span_blocks(span_sig.ulaw, 24, 24))

    chain_ns: list[float] = []
    e1_ns: list[float] = []
    t1_ns: list[float] = []
    checks: dict[str, dict[str, Any]] = {}
    runs: list[tuple[list[float], Callable[[], float]]] = []

    def chain_run() -> float:
        rate, _, _ = timed_run(ours(chain_sig), args.min_cpu_s)   # channel-seconds per CPU second
        return chain_sig.nchan * 1e-3 / rate * 1e9

    def framer_run(case: FramerCase, name: str, want: int) -> Callable[[], float]:
        def run() -> float:
            ns, state = case.run(args.min_cpu_s, want)
            checks.setdefault(name, state)
            return ns
        return run

    runs = [(chain_ns, chain_run),
            (e1_ns, framer_run(e1, "e1", lib.CB_FRAMER_FRAME | lib.CB_FRAMER_MF)),
            (t1_ns, framer_run(t1, "t1", lib.CB_FRAMER_FRAME))]
    for _ in range(args.runs):
        for out, fn in runs:
            out.append(fn())
    chain = statistics.median(chain_ns)
    framer = statistics.median(e1_ns)
    result = {
        "bench": "framing",
        "spans": SPANS,
        "e1": "CRC-4 multiframe, TS16 an idle D-channel (0x7E), 30 timeslots A-law speech-like octets",
        "t1": "ESF, TS24 an idle D-channel (0x7E), 23 timeslots µ-law speech-like octets",
        "chain": "bench/media_tier.py's `ours` chain on 240 channels, k = 1",
        "isa": isa(),
        "pinned_core": cores[-1],
        "runs": args.runs,
        "timing": f"thread CPU time; each run >= {args.min_cpu_s} s; median of runs",
        "framer_runs_ns": [round(x, 1) for x in e1_ns],
        "framer_t1_runs_ns": [round(x, 1) for x in t1_ns],
        "chain_runs_ns": [round(x) for x in chain_ns],
        "receivers_after_run": checks,
        "target_pct": TARGET_PCT,
        "framer_ns_per_span_tick_t1": round(statistics.median(t1_ns), 1),
        "chain_ns_per_tick_240ch": round(chain),
        "framer_ns_per_span_tick": round(framer, 1),
        "framing_pct_of_chain": round(SPANS * framer / chain * 100, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
