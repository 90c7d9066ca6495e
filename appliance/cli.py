"""The `cicbox` command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from drivers.base import CardDescription
from drivers.errors import DriverError
from dsp.errors import DspError

log = logging.getLogger("cicbox")


def _state_dir(arg: str | None) -> Path:
    path = Path(arg or os.environ.get("CICBOX_STATE_DIR") or "/var/lib/cicbox")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _kinds(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    items = tuple(s.strip() for s in text.split(",") if s.strip())
    for s in items:
        if s not in allowed:
            raise SystemExit(f"cicbox: {what} must be one of {', '.join(allowed)}, not {s!r}")
    return items


def cmd_linetest(args: argparse.Namespace) -> int:
    """Run the card and the media tier: dial tone on off hook, report digits and hook events."""
    from appliance.media_tier import MediaTier
    from drivers.hal import EventType

    desc = CardDescription(
        ports=_kinds(args.ports, ("fxo", "fxs"), "--ports"),  # type: ignore[arg-type]
        spans=_kinds(args.spans, ("e1", "t1"), "--spans"),  # type: ignore[arg-type]
        law=args.law, k=args.k, clock=args.clock,
    )
    state = _state_dir(args.state_dir)
    tier = MediaTier(args.card, desc, zone=args.zone, far_socket=state / "sim.sock")
    log.info("far-end socket at %s", state / "sim.sock")
    total = args.duration * 1000
    period = 10 * desc.k
    try:
        if args.clock == "virtual" and tier.far_server is not None:
            log.info("waiting up to %d s for a far-end peer", args.wait_peer)
            tier.accept_far_peer(timeout=args.wait_peer)
        elif args.clock == "realtime":
            tier.start_realtime()
        done = 0
        while done < total:
            if args.clock == "virtual":
                evs = tier.step(period)
            else:
                import select

                # The control tier's period, on the media tier's clock: wait for the
                # far-end socket or 10 ms, whichever first (no sleep on the control path).
                fds = [tier.far_server.fileno()] if tier.far_server else []
                readable, _, _ = select.select(fds, [], [], period / 1000)  # clock-source
                if readable:
                    tier.accept_far_peer(timeout=1.0)
                evs = tier.events()
            done = tier.tick
            for ev in evs:
                if ev.type == EventType.HOOK_OFF:
                    tier.media.tone(ev.chan, args.zone, "dial")
                    tier.media.detect_dtmf(ev.chan)
                elif ev.type in (EventType.DTMF_DOWN,):
                    tier.media.stop_tone(ev.chan)
                elif ev.type == EventType.HOOK_ON:
                    tier.media.silence(ev.chan)
                    tier.media.detect_dtmf(ev.chan, False)
                if ev.type in (EventType.HOOK_OFF, EventType.HOOK_ON, EventType.FLASH, EventType.DTMF,
                               EventType.RING_ON, EventType.RING_OFF, EventType.FAR_ERROR):
                    name = EventType(ev.type).name
                    value = chr(ev.value) if ev.type == EventType.DTMF else ev.value
                    print(json.dumps({"tick": ev.tick, "chan": ev.chan, "event": name, "value": value}), flush=True)
    finally:
        tier.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cicbox", description="cicbox call-center appliance")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO); logs go to stderr")
    sub = p.add_subparsers(dest="command", required=True)
    lt = sub.add_parser(
        "linetest",
        help="run a card and the media tier: dial tone on off hook, print hook and DTMF events",
        description="Run a card and its media tier. Phones going off hook on FXS ports get the zone's "
        "dial tone; hook, flash and DTMF events are printed as JSON lines. The sim card's far end "
        "is served at STATE_DIR/sim.sock (docs/sim-far-end.md).",
    )
    lt.add_argument("--card", default="sim", help="card backend: sim (default) or dahdi")
    lt.add_argument("--ports", default="fxo,fxo,fxs,fxs", help="analog ports, e.g. fxo,fxs,fxs")
    lt.add_argument("--spans", default="", help="digital spans, e.g. e1,e1")
    lt.add_argument("--law", default="alaw", choices=("alaw", "ulaw"))
    lt.add_argument("--zone", default="cn", help="tone zone (cn, us, de, ...)")
    lt.add_argument("-k", type=int, default=4, help="ticks (ms) per card block, 1-10")
    lt.add_argument("--clock", default="realtime", choices=("virtual", "realtime"))
    lt.add_argument("--duration", type=int, default=60, help="seconds of engine clock to run")
    lt.add_argument("--wait-peer", type=float, default=30.0, help="virtual clock: seconds to wait for a far-end peer")
    lt.add_argument("--state-dir", help="state directory (default $CICBOX_STATE_DIR or /var/lib/cicbox)")
    lt.set_defaults(func=cmd_linetest)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        rc: int = args.func(args)
    except (DriverError, DspError) as exc:
        print(f"cicbox: {exc}", file=sys.stderr)
        return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
