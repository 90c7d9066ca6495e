"""The PRI benchmark (issue 14's Benchmark): prints one JSON object on its last line.

- ``q931_msgs_per_s``: e1t1.isdn.q931.bench_mix, a fixed mix from SETUP to STATUS (each message
  encoded, then decoded), per wall second.
- ``setups_per_s``: setup and teardown cycles per wall second, our user side against our network
  side (the world's far exchange, appliance.world.exchange) on SPANS E1 spans of the sim card in
  virtual time, every frame through the card's framed spans and both HDLC ends: the user side keeps
  INFLIGHT calls per span going, each SETUP answered at once by the network side (CONNECT), cleared
  by the user side as soon as it is answered (DISCONNECT, RELEASE, RELEASE COMPLETE); a cycle is
  counted when the user side's call is released. ``calls_failed``: cycles that ended otherwise than
  answered and cleared with 16. ``speed_vs_realtime``: line seconds run per wall second (a D-channel
  carries about 70 cycles per second of line time, so the figure needs virtual time to outrun real
  time). ``cycles``, ``line_s`` and ``wall_s`` are its raw figures.
- ``libpri_setups_per_s``: the same cycles, libpri against libpri (a CPE and a network pri over an
  in-memory frame queue: bench/peers/pri_pair.c, built here into build/bench/ with gcc and -lpri; a
  separate program, libpri is GPL-2 and never part of the product), in the same run; null with
  ``libpri_reason`` when it cannot be built or run.

The target (reported, never asserted): ``setups_per_s`` >= 500, as the ACD's.

    .venv/bin/python bench/pri.py                # about 30 s
    .venv/bin/python bench/pri.py --seconds 2    # each measurement's wall seconds (default 10)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.linecard import LineCard
from appliance.world.exchange import PriExchange, PriSpan
from drivers.base import CardDescription, SpanConfig, SpanKind
from drivers.hal import CmdOp, EventType
from e1t1.clock import Clock
from e1t1.isdn import q931
from e1t1.isdn.call import Call, CallControl
from e1t1.isdn.events import CallAnswered, CallOffered, CallReleased, PriEvent
from e1t1.isdn.q921 import DataLink, Side

ROOT = Path(__file__).resolve().parent.parent
PAIR_SRC = ROOT / "bench" / "peers" / "pri_pair.c"
PAIR_BIN = ROOT / "build" / "bench" / "pri_pair"
SECONDS = 10.0
SPANS = 4
INFLIGHT = 8
"""Calls each span's user side keeps going at once (enough to keep its D-channel busy)."""
K = 5
PERIOD_MS = 10
TARGET = 500
DCHAN = 16


def q931_rate(seconds: float) -> float:
    """Messages of the fixed mix encoded and decoded per wall second, over `seconds`."""
    q931.bench_mix(20)                      # warm
    done, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        done += q931.bench_mix(50)
    return done / elapsed


class _UserSide:
    """One span's user side: our data link on the card's D-channel, the call control over it, and the
    cycles it runs (place, clear when answered, place again)."""

    def __init__(self, bench: SetupBench, span: int, chan: int) -> None:
        self.bench = bench
        self.chan = chan
        name = f"span{span + 1}"
        self.link = DataLink(Side.USER, self._send, lambda ev: None, bench.clock, name=name)
        self.control = CallControl(self.link, self._report, switch="euroisdn", name=name)
        self.n = 0

    def _send(self, octets: bytes) -> None:
        self.bench.lc.sched.send(CmdOp.FRAME, self.chan, payload=octets)

    def place(self) -> Call:
        self.n += 1
        return self.control.place(ani=f"1380013{self.n % 10000:04d}", dnis="075588880000", ani_ton="national")

    def _report(self, ev: PriEvent) -> None:
        if isinstance(ev, CallAnswered):
            ev.call.hangup()
        elif isinstance(ev, CallReleased):
            self.bench.cycle(self, ev.answered and ev.cause == q931.CAUSE_NORMAL_CLEARING)


class SetupBench:
    """Our user side against our network side on `spans` E1 spans of the sim card, in virtual time."""

    def __init__(self, spans: int = SPANS, inflight: int = INFLIGHT) -> None:
        configs = tuple(SpanConfig("e1", "ccs", "hdb3", True, "dchan", i + 1) for i in range(spans))
        kinds: tuple[SpanKind, ...] = tuple("e1" for _ in range(spans))
        desc = CardDescription(spans=kinds, span_configs=configs, law="alaw", k=K)
        self.lc = LineCard("sim", desc, period_ticks=PERIOD_MS)
        self.clock = Clock(self.lc.tick)
        self.inflight = inflight
        chans = self.lc.card.channels
        at = {(c.span, c.timeslot): c.index for c in chans if c.span is not None and c.timeslot is not None}
        self.users = [_UserSide(self, i, at[(i, DCHAN)]) for i in range(spans)]
        self.dchan = {u.chan: u for u in self.users}
        far = self.lc.far_side
        assert far is not None
        self.network = PriExchange([PriSpan(i, f"span{i + 1}", "e1", "network", "euroisdn") for i in range(spans)],
                                   far, at, self._network_report, self.clock.now_ms)
        self.cycles = self.failed = 0
        self.running = False

    def _network_report(self, ev: PriEvent) -> None:
        if isinstance(ev, CallOffered):
            ev.call.answer()

    def cycle(self, user: _UserSide, ok: bool) -> None:
        """A user-side call is over: counted, and the next placed while the run goes on."""
        self.cycles += 1
        self.failed += not ok
        if self.running:
            user.place()

    def step(self) -> None:
        self.network.advance(self.clock.now_ms)
        for ev in self.lc.step(PERIOD_MS):
            if ev.type == EventType.FRAME and ev.chan in self.dchan:
                self.clock.advance(max(self.clock.now_ms, ev.tick))
                self.dchan[ev.chan].link.receive(ev.payload)
        self.clock.advance(self.lc.tick)
        self.network.receive(self.clock.now_ms)

    def until(self, cond: Callable[[], bool], within_ms: int, what: str) -> None:
        end = self.clock.now_ms + within_ms
        while not cond():
            if self.clock.now_ms >= end:
                raise RuntimeError(f"{what} not within {within_ms} ms: {self.network.status()}")
            self.step()

    def run(self, seconds: float) -> dict[str, Any]:
        """The links up, then cycles for `seconds` of wall time; then the calls in flight finish (at both
        ends)."""
        for u in self.users:
            u.control.start()
        self.network.start()
        self.until(lambda: all(u.control.ready for u in self.users) and
                   all(self.network.can_place(n) for n in self.network.order), 5000, "the links up")
        self.running = True
        for u in self.users:
            for _ in range(self.inflight):
                u.place()
        line0, t0 = self.clock.now_ms, time.perf_counter()
        while (wall := time.perf_counter() - t0) < seconds:
            self.step()
        line_s = (self.clock.now_ms - line0) / 1000
        cycles, failed = self.cycles, self.failed
        self.running = False
        self.until(lambda: all(not u.control.calls for u in self.users) and
                   all(not end.control.calls for end in self.network.ends.values()), 10000, "the last calls cleared")
        return {"setups_per_s": round(cycles / wall, 1), "calls_failed": failed,
                "speed_vs_realtime": round(line_s / wall, 2), "cycles": cycles, "line_s": round(line_s, 2),
                "wall_s": round(wall, 2), "setups_per_line_s": round(cycles / line_s, 1) if line_s else None}

    def close(self) -> None:
        self.lc.close()


def build_pair() -> str | None:
    """Build bench/peers/pri_pair.c into build/bench/pri_pair when it is older; None, or why not."""
    if PAIR_BIN.exists() and PAIR_BIN.stat().st_mtime >= PAIR_SRC.stat().st_mtime:
        return None
    if shutil.which("gcc") is None:
        return "no gcc"
    PAIR_BIN.parent.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(PAIR_BIN),
                          str(PAIR_SRC), "-lpri"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return f"pri_pair did not build (libpri-dev missing?): {out.stderr.strip()[-300:]}"
    return None


def libpri_rate(seconds: float) -> tuple[float | None, str | None]:
    """libpri against libpri over an in-memory frame queue: cycles per wall second, or None and why."""
    why = build_pair()
    if why is not None:
        return None, why
    try:
        out = subprocess.run([str(PAIR_BIN), "--seconds", str(seconds)], capture_output=True, text=True,
                             check=False, timeout=seconds + 60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pri_pair did not run: {exc}"
    if out.returncode != 0:
        return None, f"pri_pair failed ({out.returncode}): {out.stderr.strip()[-300:]}"
    try:
        result = json.loads(out.stdout.strip().splitlines()[-1])
        return float(result["setups_per_s"]), None
    except (IndexError, KeyError, ValueError) as exc:
        return None, f"pri_pair's output not understood: {exc}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=SECONDS,
                   help=f"wall seconds of each measurement (default {SECONDS:g}; the Q.931 mix takes a third)")
    p.add_argument("--spans", type=int, default=SPANS, help=f"E1 spans of the setup run (default {SPANS})")
    args = p.parse_args()
    if args.seconds <= 0 or args.spans < 1:
        p.error("--seconds must be positive and --spans at least 1")
    msgs = q931_rate(args.seconds / 3)
    print(f"q931 mix: {msgs:.0f} messages/s", file=sys.stderr)
    bench = SetupBench(args.spans)
    try:
        setups = bench.run(args.seconds)
    finally:
        bench.close()
    print(f"setups: {setups}", file=sys.stderr)
    libpri, why = libpri_rate(args.seconds / 2)
    result = {
        "bench": "pri",
        "q931_msgs_per_s": round(msgs),
        "spans": args.spans,
        "inflight_per_span": INFLIGHT,
        **setups,
        "libpri_setups_per_s": None if libpri is None else round(libpri, 1),
        "libpri_reason": why,
        "target_setups_per_s": TARGET,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
