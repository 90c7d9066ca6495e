"""Line echo canceller benchmark: prints one JSON object on its last line.

Throughput: --channels (240) channels of --seconds (4) of the issue's signal (bench/echo_signals.py:
speech-shaped noise without pauses at -16 dBm0 as Rin, each channel its own seed and its own echo
path, --erl dB and --delay-ms behind a decaying 8 ms tail, -60 dBm0 of white noise at Sin), on one
pinned core, through

- our bank (dsp/echo: cb_echo_process per channel over the whole signal, called from one loop here:
  240 calls a pass, never Python per sample) with NLP, CNG and the tone disabler on (the double-talk
  detector and the bulk-delay estimator always run), at 128 and 256 taps;
- spandsp's echo_can_update (tests/peers/echo_ref.c, a subprocess; bench/echo_ref.py) with
  ADAPTION|NLP|CNG on the same channels of the same signal, its per-sample debug printing silenced,
  at 128 and 256 taps; and as shipped (printing to /dev/null) at 128 taps, for reference
  (--shipped-runs, 3, of the runs: it is the slowest case and no target depends on it).

Each figure is the median of --runs runs (the cases taking turns run by run) of channels per core:
channel-seconds of audio over the thread CPU seconds of the processing loop alone (ours: the loop
over cb_echo_process; spandsp: its echo_can_update loop, timed inside the program).

Quality: 8 channels of a 6 s signal (same seed, ERL and delay), NLP off (ours: no NLP, no CNG, the
disabler on; spandsp: ADAPTION only), 128 taps; ERLE over seconds 4-6 of each channel, the median
over the channels reported.

A case that cannot run (our bank not built in this tree, the reference not built) reports null and
the reason. Times are measurements of a benchmark: nothing passes or fails on them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import echo_ref as er
from bench import echo_signals as es
from dsp.scheduler import ffi, isa, lib

FS = es.FS
TARGET_RATIO = 5.0
SPANDSP_MODE = er.ADAPTION | er.NLP | er.CNG


class Unavailable(Exception):  # noqa: N818 (a state, not an error: the JSON says why)
    """The case cannot run here; str() says why."""


def bank_available() -> None:
    if not hasattr(lib, "cb_echo_process"):
        raise Unavailable("dsp._kernels has no cb_echo_process (the echo bank is not in this build)")


def our_flags(nlp: bool) -> int:
    bank_available()
    flags = int(lib.CB_ECHO_DISABLER)
    if nlp:
        flags |= int(lib.CB_ECHO_NLP) | int(lib.CB_ECHO_CNG)
    return flags


def ours_process(rin: Any, sin: Any, taps: int, flags: int) -> tuple[Any, float]:
    """A fresh bank of rin.shape[0] channels, each on with `taps` and `flags`; every channel's whole
    signal through cb_echo_process in turn. Returns Sout and the thread CPU seconds of that loop."""
    bank_available()
    nchan, n = rin.shape
    r = np.ascontiguousarray(rin, dtype=np.int16)
    s = np.ascontiguousarray(sin, dtype=np.int16)
    out = np.zeros_like(s)
    e = lib.cb_echo_new(nchan)
    if e == ffi.NULL:
        raise SystemExit("cb_echo_new failed")
    try:
        for c in range(nchan):
            rc = lib.cb_echo_set(e, c, taps, flags)
            if rc < 0:
                raise SystemExit(f"cb_echo_set({c}, {taps}, {flags}) failed: {rc}")
        pr = ffi.cast("const int16_t *", ffi.from_buffer(r))
        ps = ffi.cast("const int16_t *", ffi.from_buffer(s))
        po = ffi.cast("int16_t *", ffi.from_buffer(out))
        process = lib.cb_echo_process
        t0 = time.thread_time()
        for c in range(nchan):
            rc = process(e, c, pr + c * n, ps + c * n, po + c * n, n, ffi.NULL, 0)
            if rc < 0:
                raise SystemExit(f"cb_echo_process({c}) failed: {rc}")
        cpu = time.thread_time() - t0
    finally:
        lib.cb_echo_free(e)
    return out, cpu


@dataclass(frozen=True)
class Signal:
    rin: Any
    sin: Any
    rin_path: Path
    sin_path: Path

    @property
    def nchan(self) -> int:
        return int(self.rin.shape[0])

    @property
    def channel_seconds(self) -> float:
        return float(self.rin.shape[0] * self.rin.shape[1] / FS)


@dataclass(frozen=True)
class Case:
    name: str
    key: str                           # the JSON key of the median
    run: Callable[[Signal], float]     # one timed pass: thread CPU seconds


def ours_case(taps: int) -> Callable[[Signal], float]:
    def run(sig: Signal) -> float:
        return ours_process(sig.rin, sig.sin, taps, our_flags(nlp=True))[1]
    return run


def spandsp_case(taps: int, silenced: bool) -> Callable[[Signal], float]:
    def run(sig: Signal) -> float:
        try:
            er.program(silenced)
        except er.ReferenceMissingError as e:
            raise Unavailable(str(e)) from e
        return er.run_files(sig.rin_path, sig.sin_path, sig.nchan, taps, SPANDSP_MODE, silenced)
    return run


CASES = [
    Case("ours_128", "ours_ch_per_core_128", ours_case(128)),
    Case("ours_256", "ours_ch_per_core_256", ours_case(256)),
    Case("spandsp_128", "spandsp_ch_per_core_128", spandsp_case(128, silenced=True)),
    Case("spandsp_256", "spandsp_ch_per_core_256", spandsp_case(256, silenced=True)),
    Case("spandsp_shipped_128", "spandsp_shipped_ch_per_core_128", spandsp_case(128, silenced=False)),
]
RATIOS = [("ratio_vs_spandsp_128", "ours_128", "spandsp_128"),
          ("ratio_vs_spandsp_256", "ours_256", "spandsp_256")]


def throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rin, sin = es.bank(args.seed, args.channels, args.seconds, args.delay_ms, args.erl)
    rin.tofile(tmp / "rin")
    sin.tofile(tmp / "sin")
    sig = Signal(rin, sin, tmp / "rin", tmp / "sin")
    cases = [c for c in CASES if not (args.only_spandsp and c.name.startswith("ours"))]
    reasons = {c.name: "not run (--only-spandsp)" for c in CASES if c not in cases}
    rates: dict[str, list[float]] = {c.name: [] for c in CASES}
    for i in range(args.runs):
        for case in cases:
            if case.name in reasons or (case.name == "spandsp_shipped_128" and i >= args.shipped_runs):
                continue
            try:
                cpu = case.run(sig)
            except Unavailable as e:
                reasons[case.name] = str(e)
                continue
            rates[case.name].append(sig.channel_seconds / cpu)
    median = {name: statistics.median(r) for name, r in rates.items() if r}
    out: dict[str, Any] = {}
    for case in CASES:
        out[case.key] = round(median[case.name]) if case.name in median else None
    for case in CASES:
        out[f"{case.name}_runs"] = [round(x) for x in rates[case.name]]
    for key, num, den in RATIOS:
        missing = [n for n in (num, den) if n not in median]
        out[key] = None if missing else round(median[num] / median[den], 3)
        out[f"{key}_reason"] = "; ".join(f"{n}: {reasons.get(n, 'no result')}" for n in missing) or None
    out["reasons"] = reasons or None
    return out


def channel_erle(sin: Any, sout: Any, start_s: float, end_s: float) -> list[float]:
    a, b = round(start_s * FS), round(end_s * FS)
    return [round(es.erle_db(sin[c, a:b], sout[c, a:b]), 2) for c in range(sin.shape[0])]


def quality(args: argparse.Namespace) -> dict[str, Any]:
    rin, sin = es.bank(args.seed, args.quality_channels, 6.0, args.delay_ms, args.erl)
    out: dict[str, Any] = {}
    try:
        if args.only_spandsp:
            raise Unavailable("not run (--only-spandsp)")
        ours = channel_erle(sin, ours_process(rin, sin, 128, our_flags(nlp=False))[0], 4.0, 6.0)
        out.update(erle_db_ours_128=round(statistics.median(ours), 2), erle_db_ours_128_channels=ours,
                   erle_db_ours_128_reason=None)
    except Unavailable as e:
        out.update(erle_db_ours_128=None, erle_db_ours_128_channels=None, erle_db_ours_128_reason=str(e))
    try:
        ref = channel_erle(sin, er.run(rin, sin, 128, er.ADAPTION).sout, 4.0, 6.0)
        out.update(erle_db_spandsp_128=round(statistics.median(ref), 2), erle_db_spandsp_128_channels=ref,
                   erle_db_spandsp_128_reason=None)
    except er.ReferenceMissingError as e:
        out.update(erle_db_spandsp_128=None, erle_db_spandsp_128_channels=None,
                   erle_db_spandsp_128_reason=str(e))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, default=240)
    p.add_argument("--seconds", type=float, default=4.0, help="seconds of audio per channel (throughput)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--erl", type=float, default=6.0, help="echo return loss, dB")
    p.add_argument("--delay-ms", type=float, default=4.0, help="the echo path's flat delay")
    p.add_argument("--shipped-runs", type=int, default=3,
                   help="runs of spandsp as shipped (reference only; at most --runs)")
    p.add_argument("--quality-channels", type=int, default=8)
    p.add_argument("--only-spandsp", action="store_true", help="leave our bank out (it is not built)")
    args = p.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1]})     # the reference subprocesses inherit it
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="echo_bench") as tmp:
        result: dict[str, Any] = {
            "bench": "echo",
            "channels": args.channels,
            "audio_seconds": args.seconds,
            "runs": args.runs,
            "shipped_runs": min(args.runs, args.shipped_runs),
            "seed": args.seed,
            "erl_db": args.erl,
            "delay_ms": args.delay_ms,
            "isa": isa(),
            "pinned_core": cores[-1],
            "timing": "thread CPU time of the processing loop alone; median of runs",
            "ours_flags": "NLP|CNG|DISABLER (double-talk detector and bulk-delay estimator always on)",
            "spandsp_mode": "ADAPTION|NLP|CNG",
            "quality": f"{args.quality_channels} channels, 6 s, 128 taps, NLP off (ours: DISABLER only; "
                       "spandsp: ADAPTION), ERLE over 4-6 s, median of channels",
        }
        result.update(throughput(args, Path(tmp)))
        result.update(quality(args))
    result["target_ratio_vs_spandsp_128"] = TARGET_RATIO
    result["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
