"""The `cicbox` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError
from drivers.base import CardDescription
from drivers.errors import DriverError
from dsp.errors import DspError

log = logging.getLogger("cicbox")


DEFAULT_STATE_DIR = Path("/var/lib/cicbox")
LOCAL_STATE_DIR = Path("state")          # where `make demo` keeps its state, under the project root
STATE_DIR_RULE = ("state directory: --state-dir, else $CICBOX_STATE_DIR, else ./state when it holds a "
                  "control.sock (a demo started here), else /var/lib/cicbox")


def find_state_dir(arg: str | None) -> Path:
    """The state directory by the one rule (STATE_DIR_RULE); creates nothing (read commands)."""
    if arg:
        return Path(arg)
    env = os.environ.get("CICBOX_STATE_DIR")
    if env:
        return Path(env)
    if (LOCAL_STATE_DIR / "control.sock").exists():
        return LOCAL_STATE_DIR.resolve()
    return DEFAULT_STATE_DIR


def _state_dir(arg: str | None) -> Path:
    """The state directory of a command that owns it (the engine, linetest): created if missing."""
    path = find_state_dir(arg)
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
    from appliance.linecard import LineCard
    from drivers.hal import EventType

    desc = CardDescription(
        ports=_kinds(args.ports, ("fxo", "fxs"), "--ports"),  # type: ignore[arg-type]
        spans=_kinds(args.spans, ("e1", "t1"), "--spans"),  # type: ignore[arg-type]
        law=args.law, k=args.k, clock=args.clock,
    )
    state = _state_dir(args.state_dir)
    tier = LineCard(args.card, desc, zone=args.zone, far_socket=state / "sim.sock")
    log.info("far-end socket at %s", state / "sim.sock")
    total = args.duration * 1000
    period = 10 * desc.k
    try:
        if args.clock == "virtual" and tier.far_server is not None:
            log.info("waiting up to %g s for a far-end peer", args.wait_peer)
            tier.wait_far_peer(args.wait_peer)
        elif args.clock == "realtime":
            tier.start_realtime()
        done = 0
        while done < total:
            if args.clock == "virtual":
                tier.poll_far_peers()        # later peers join in lockstep at this block boundary
                evs = tier.step(period)
            else:
                import select

                # The control tier's period, on the media tier's clock: wait for the far-end
                # socket or one period, whichever first (no sleep on the control path); the
                # handshakes advance without blocking.
                fds = tier.far_server.fds() if tier.far_server else []
                select.select(fds, [], [], period / 1000)  # clock-source
                tier.poll_far_peers()
                evs = tier.events()
            done = tier.tick
            for ev in evs:
                if ev.type == EventType.HOOK_OFF:
                    tier.sched.tone(ev.chan, args.zone, "dial")
                    tier.sched.detect_dtmf(ev.chan)
                elif ev.type in (EventType.DTMF_DOWN,):
                    tier.sched.stop_tone(ev.chan)
                elif ev.type == EventType.HOOK_ON:
                    tier.sched.silence(ev.chan)
                    tier.sched.detect_dtmf(ev.chan, False)
                if ev.type in (EventType.HOOK_OFF, EventType.HOOK_ON, EventType.FLASH, EventType.DTMF,
                               EventType.RING_ON, EventType.RING_OFF, EventType.FAR_ERROR):
                    name = EventType(ev.type).name
                    value = chr(ev.value) if ev.type == EventType.DTMF else ev.value
                    print(json.dumps({"tick": ev.tick, "chan": ev.chan, "event": name, "value": value}), flush=True)
    finally:
        tier.close()
    return 0


TEMPLATES = Path(__file__).resolve().parent.parent / "configs"


def _open_engine(args: argparse.Namespace, world_factory: Any = None, enable_faults: bool = False) -> Any:
    """The engine over the stored configuration (bootstrapped from a template the first time).

    Fault commands (``fault.*`` on control.sock) are refused unless `enable_faults`.
    """
    from appliance.lifecycle import StateLock

    state = _state_dir(args.state_dir)
    lock = StateLock(state)               # before the store is touched: another engine's is not ours to change
    try:
        return _engine_over(args, state, lock, world_factory, enable_faults)
    except BaseException:
        lock.release()
        raise


def _engine_over(args: argparse.Namespace, state: Path, lock: Any, world_factory: Any, enable_faults: bool) -> Any:
    from appliance.config.store import ConfigStore
    from appliance.engine import Engine

    store = ConfigStore(state)
    taken = store.take_next()
    if taken is not None:
        log.info("configuration version %d, stored to wait for a restart, is in force", taken)
    if store.current() is None:
        template = Path(args.config) if args.config else TEMPLATES / "hotel.yaml"
        store.bootstrap(template)
    cur = store.current()
    assert cur is not None
    world = world_factory(cur.config) if world_factory else None
    wall = None
    if args.clock == "realtime":
        wall = dt.datetime.now().replace(microsecond=0)  # clock-source: calendar time is read once, at start
    return Engine(state, cur.config, cur.version, clock=args.clock, store=store, world=world, wall_start=wall,
                  enable_faults=enable_faults, state_lock=lock)


def _stop_on_signals() -> Any:
    """SIGTERM (systemd's stop) and SIGINT (Ctrl-C) ask for a clean stop at the end of the period;
    a second one stops at once (appliance.lifecycle)."""
    from appliance.lifecycle import StopSignals

    return StopSignals().install()


def _serve(engine: Any, duration_ms: int | None, stop: Any = None, alive: Any = None) -> None:
    """Run the engine's control loop until `duration_ms` of engine clock (or for ever), until `stop`
    (a StopSignals) is requested, or until `alive()` (checked each period) is false; then stop cleanly:
    every call in progress is released with disposition ``shutdown`` and its record made durable, within
    the stop budget (appliance.lifecycle)."""
    from appliance.lifecycle import stop_budget_s

    def stopping() -> bool:
        return (stop is not None and stop.requested is not None) or (alive is not None and not alive())

    end = None if duration_ms is None else engine.clock.now_ms + duration_ms
    if engine.paused:
        _serve_paused(engine, end, stopping)
        engine.shutdown(stop_budget_s())
        return
    if not engine.stepped:
        engine.tier_.start_realtime()
    try:
        while (end is None or engine.clock.now_ms < end) and not stopping():
            if not engine.stepped:
                # Wait for the media tier's next period, answering control.sock meanwhile.
                due = engine.clock.now_ms + engine.period_ms
                while engine.tier_.tick < due and not stopping():
                    engine.control.wait((due - engine.tier_.tick) / 1000)  # clock-source
                    engine.control.poll()
            engine.run_period()
        engine.shutdown(stop_budget_s())
    finally:
        engine.tier_.stop_realtime()


PAUSED_WAIT_S = 0.5
"""A paused engine waits this long (wall time) at most for a request or a far-end peer, then looks
at its stop flag again."""


def _serve_paused(engine: Any, end: int | None, stopping: Any) -> None:
    """A paused engine (virtual clock): the clock stands still, control.sock is answered and far-end
    peers may attach, until a clock.advance runs that much engine clock (whole control periods)."""
    far = engine.tier_.far_server
    while (end is None or engine.clock.now_ms < end) and not stopping():
        if engine.commands.run_advances():
            continue
        engine.control.wait(PAUSED_WAIT_S, far.fds() if far is not None else ())  # clock-source
        engine.poll_control()
        if far is not None:
            engine.poll_far_peer()


def cmd_run(args: argparse.Namespace) -> int:
    """The engine."""
    if args.paused and args.clock != "virtual":
        print("cicbox: --paused is for the virtual clock (--clock virtual)", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    engine = _open_engine(args, enable_faults=args.enable_faults)
    engine.paused = args.paused
    if args.paused:
        log.info("the clock stands still until `cicbox clock advance MS` (control clock.advance)")
    log.info("engine running (%s clock), state in %s", args.clock, engine.state_dir)
    if args.enable_faults:
        log.warning("fault commands are enabled on control.sock (--enable-faults): not for production")
    try:
        if args.wait_peer is not None:
            if args.clock != "virtual":
                raise SystemExit("cicbox: --wait-peer is for the virtual clock (realtime peers attach at any time)")
            # Lockstep: the clock starts at the first far-end HELLO, or after S s of wall time without one.
            log.info("waiting up to %g s for a far-end peer on %s", args.wait_peer, engine.state_dir / "sim.sock")
            if not engine.wait_far_peer(args.wait_peer):
                log.info("no far-end peer: the clock starts without one")
        _serve(engine, None if args.duration is None else args.duration * 1000, stop)
    except KeyboardInterrupt:
        log.warning("stopped at once: calls in progress are recorded at the next start")
    finally:
        engine.close()
        stop.uninstall()
    return 0


def _check_panel_port(listen: str) -> None:
    """Stop the demo with a clear message when the panel's address is bad or taken (PanelError)."""
    import errno
    import socket

    from appliance.web import PanelError
    from appliance.web.serve import parse_listen

    host, port = parse_listen(listen)
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PanelError(f"the panel's port {port} on {host} is in use (another demo or panel?): stop "
                                 f"it, or give the demo another with --listen {host}:PORT") from None
            raise PanelError(f"the panel cannot listen on {listen}: {exc.strerror or exc}") from None


def _print_setup_code(panel_dir: Path, url: str) -> None:
    """The panel's one-time setup code, alone on a line of stdout after the line saying what it is for, made now
    if there is none (so the panel started next finds this one); once an installer exists, one line instead: setup
    is done, sign in at `url` (the panel's, ending in /), and how to allow one more installer."""
    from appliance.web import PanelError, accounts

    try:
        setup_code_main = _setup_code_main()
    except PanelError as exc:
        log.warning("no setup code: %s", exc)
        return
    panel_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if accounts.installer_exists(panel_dir):
        print(f"panel setup is done (an installer exists): sign in at {url}login; `cicbox panel setup-code --new` "
              "allows one more installer", flush=True)
        return
    print("panel setup code (type it at /setup to create the installer):", flush=True)
    setup_code_main(panel_dir, False)
    sys.stdout.flush()


def _setup_code_main() -> Any:
    """appliance.web.setupcode.setup_code_main(panel_dir, new) -> exit code, imported when used (it is the
    accounts part's: it writes the code, 0600, and prints it alone on a line)."""
    import importlib

    from appliance.web import PanelError

    try:
        return importlib.import_module("appliance.web.setupcode").setup_code_main
    except ModuleNotFoundError:
        raise PanelError("this build has no setup codes yet (appliance.web.setupcode)") from None


def _start_panel(state_dir: Path, listen: str) -> Any:
    """The panel as a child process that dies with this one (a parent-death signal, set in the
    child), so a demo killed any way never leaves its panel behind."""
    import subprocess

    from appliance.web.serve import format_listen, parse_listen

    panel = subprocess.Popen([sys.executable, "-m", "appliance.web.serve", "--state-dir", str(state_dir),
                              "--listen", listen, "--die-with-parent", str(os.getpid())])
    log.info("panel (pid %d) on https://%s/", panel.pid, format_listen(*parse_listen(listen)))
    return panel


def cmd_demo(args: argparse.Namespace) -> int:
    """Engine + traffic generator + panel on the sim card with the hotel profile."""
    from appliance.world.traffic import traffic_world

    stop = _stop_on_signals()
    duration_ms = (args.duration or 86400) * 1000   # traffic for a day when no duration is given
    with_panel = not args.json and not args.no_panel
    died = False
    if with_panel:
        _check_panel_port(args.listen)               # before anything starts
    engine = _open_engine(args, lambda cfg: traffic_world(cfg, duration_ms, args.seed), enable_faults=True)
    log.info("demo running, state in %s", engine.state_dir)
    panel = None
    if with_panel:
        from appliance.web.serve import format_listen, parse_listen

        url = f"https://{format_listen(*parse_listen(args.listen))}/"
        print(f"panel: {url}", flush=True)
        _print_setup_code(engine.state_dir / "panel", url)   # made before the panel starts: one code, not two
        panel = _start_panel(engine.state_dir, args.listen)
    try:
        # A demo whose panel died stops (cleanly) rather than running on with no panel and no word.
        _serve(engine, duration_ms if args.duration else None, stop,
               alive=(lambda: panel.poll() is None) if panel is not None else None)
    except KeyboardInterrupt:
        log.warning("stopped at once: calls in progress are recorded at the next start")
    finally:
        if panel is not None and panel.poll() is not None and stop.requested is None:   # not Ctrl-C's
            log.error("the panel (pid %d) ended with exit code %s: the demo stopped; start it again",
                      panel.pid, panel.returncode)
            died = True
        stats = dict(engine.stats)
        by_kind = dict(engine.world.answered_by_kind) if engine.world is not None else {}
        engine.close()
        stop.uninstall()
        if panel is not None:
            panel.terminate()
            panel.wait()
    if args.json:
        answered = stats["answered"]
        print(json.dumps({"offered": stats["offered"], "answered": answered, "abandoned": stats["abandoned"],
                          "mean_wait_s": round(stats["wait_ms_total"] / answered / 1000, 3) if answered else 0.0,
                          "answered_by_kind": by_kind}))
    return 1 if died else 0


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate FILE; the prompts it names are looked up in the shipped ones and, when there is a
    state directory (--state-dir, or the rule's directory if it exists), the site's."""
    from appliance.config.loader import main_check

    state = find_state_dir(args.state_dir)
    site_prompts = state / "prompts" if args.state_dir or state.is_dir() else None
    return main_check(args.file, site_prompts)


def _ask(args: argparse.Namespace, cmd: str, timeout_s: float | None = 10.0, **fields: Any) -> Any:
    """One request to the running engine, its answer waited for up to `timeout_s` (None: as long as it
    takes); on an error it is printed (each configuration problem as FILE:LINE:COL: message) and None
    returned."""
    from appliance.control import ControlClient, ControlError

    try:
        with ControlClient(find_state_dir(args.state_dir) / "control.sock", timeout_s) as c:
            return c.request(cmd, **fields)
    except ControlError as exc:
        for issue in exc.issues:
            print(f"{issue['file']}:{issue['line']}:{issue['col']}: {issue['message']}", file=sys.stderr)
        if not exc.issues:
            print(f"cicbox: {exc}", file=sys.stderr)
        return None


def cmd_config_get(args: argparse.Namespace) -> int:
    """Write the configuration in force with a first line naming its version (the base of an edit)."""
    from appliance.config.store import HEADER

    doc = _ask(args, "config.get")
    if doc is None:
        return 2
    out = HEADER.format(version=doc["version"]) + str(doc.get("text") or "")   # the engine sends no header
    if args.output:
        path = Path(args.output)
        try:
            path.write_text(out, encoding="utf-8")
        except OSError as exc:
            print(f"cicbox: {path}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"version {doc['version']} written to {path}")
    else:
        sys.stdout.write(out)
    return 0


def cmd_config_apply(args: argparse.Namespace) -> int:
    from appliance.config.store import HEADER_RE

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"cicbox: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"cicbox: {path}: not UTF-8 text ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return 2
    header = HEADER_RE.match(text)
    base = args.base if args.base is not None else int(header.group(1)) if header else None
    if base is None:
        print(f"cicbox: {path} does not say which version it is based on: start from "
              "`cicbox config get` (its first line names the version) or pass --base N", file=sys.stderr)
        return 2
    result = _ask(args, "config.apply", text=text, filename=str(path), author=args.author, base_version=base)
    if result is None:
        return 2
    if result.get("in_force") is False:
        print(f"stored as version {result['version']}; it changes what only a restart can "
              f"({result.get('restart_needed')}): restart the engine to put it in force")
        return 0
    print(f"applied as version {result['version']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from appliance.control.snapshot import echo_text

    snap = _ask(args, "status")
    if snap is None:
        return 2
    if args.json:
        print(json.dumps(snap))
        return 0
    print(f"{snap['site']}  engine clock {snap['tick_ms'] / 1000:.1f} s  ({snap['calendar']})  "
          f"config v{snap['config_version']}")
    print("channels:")
    for p in snap["ports"]:
        print(f"  {p['index']:3d} {p['name']:<12} {p['kind']:<4} {p['state']:<10} echo {echo_text(p.get('echo'))}")
    for t in snap.get("echo_timeslots", []):
        print(f"  {t['channel']:3d} {t['name']:<12} ts   {'':<10} echo {echo_text(t)}")
    print(f"calls: {len(snap['calls'])}")
    for c in snap["calls"]:
        print(f"  {c['id']} {c['ani'] or '-':<14} -> {c['dnis']:<14} {c['state']:<10} "
              f"{c['queue'] or '':<14} {c['agent'] or ''}")
    print("agents:")
    for a in snap["agents"]:
        print(f"  {a['number']} {a['name']:<16} {a['state']:<11} {a['phone'] or ''}")
    print("queues:")
    for q in snap["queues"]:
        print(f"  {q['name']:<16} waiting {q['waiting']}  longest {q['longest_wait_ms'] / 1000:.1f} s")
    print(format_alarms(snap))
    return 0


def format_alarms(snap: dict[str, Any]) -> str:
    """The snapshot's alarms (with how long each has been raised) and loss counters, as text."""
    alarms = snap.get("alarms") or []
    lines = [f"alarms: {len(alarms) or 'none'}"]
    for a in alarms:
        age = (snap["tick_ms"] - a["since_ms"]) / 1000
        lines.append(f"  {a['kind']:<16} since {a['since_ms'] / 1000:.1f} s ({age:.1f} s)  {a['detail']}")
    counters = snap.get("counters") or {}
    lines.append("counters:" + ("" if counters else " none"))
    lines += [f"  {name:<16} {value}" for name, value in sorted(counters.items())]
    return "\n".join(lines)


# -- spans and the paused clock ---------------------------------------------------------------


def format_spans(doc: dict[str, Any]) -> str:
    """`span status`: the sync source, then a line per span (configuration, alarms, counters), and under a
    PRI span a line of its call control (side, switch type, D-channel, calls, B-channels)."""
    lines = [f"sync source: {doc['sync_source']}  (engine clock {doc['tick_ms'] / 1000:.1f} s)"]
    for s in doc["spans"]:
        line = "/".join([s["framing"], s["coding"], *(["crc4"] if s["crc4"] else [])])
        alarms = ",".join(s["alarms"]) or "ok"
        if s["detail"]:
            alarms += f" ({','.join(s['detail'])})"
        counters = " ".join(f"{k} {v}" for k, v in s["counters"].items())
        rai = "  sending RAI" if s["sending_rai"] else ""
        dchan = ""
        if s["dchan"] is not None:
            dchan = "  dchan " + " ".join(f"{k} {v}" for k, v in s["dchan"].items())
        lines.append(f"{s['name']:<10} {s['kind']} {line:<15} ts16 {s['ts16']:<5} timing {s['timing']}  "
                     f"{alarms:<12}{rai}  {counters}{dchan}")
        pri = s.get("pri")
        if pri is not None:
            lines.append(f"{'':<10} pri {pri['side']} {pri['switch']}  D-channel {pri['dchan']}  calls {pri['calls']}"
                         f"  B-channels idle {pri['b_idle']} busy {pri['b_busy']} out of service "
                         f"{pri['b_out_of_service']}")
    if not doc["spans"]:
        lines.append("no spans")
    return "\n".join(lines)


def cmd_span_status(args: argparse.Namespace) -> int:
    doc = _ask(args, "span.status")
    if doc is None:
        return 2
    print(json.dumps(doc) if args.json else format_spans(doc))
    return 0


def cmd_span_fault(args: argparse.Namespace) -> int:
    """A far-side fault on a span of the sim card (the engine must run with --enable-faults)."""
    from appliance.spans import MAX_FAULT_MS

    ms = None
    if args.for_s is not None:
        longest = MAX_FAULT_MS // 1000
        ms = round(args.for_s * 1000) if math.isfinite(args.for_s) and 0 < args.for_s <= longest else 0
        if ms <= 0:
            print(f"cicbox: --for must be a number of seconds from 0.001 to {longest} (a day), not {args.for_s:g}",
                  file=sys.stderr)
            return 2
    result = _ask(args, "span.fault", span=args.span, fault=args.fault, ms=ms)
    if result is None:
        return 2
    until = "" if result["clears_at_ms"] is None else f" until {result['clears_at_ms'] / 1000:.3f} s of engine clock"
    print(f"span {result['span']}: {result['fault']}{until}")
    return 0


def cmd_clock_advance(args: argparse.Namespace) -> int:
    """Run a paused engine's clock MS ms on (whole control periods); prints where it stands."""
    if args.ms <= 0:
        print(f"cicbox: MS must be a positive number of ms, not {args.ms}", file=sys.stderr)
        return 2
    result = _ask(args, "clock.advance", timeout_s=None, ms=args.ms)
    if result is None:
        return 2
    print(f"engine clock {result['tick_ms']} ms")
    return 0


# -- figures -------------------------------------------------------------------------------


class UsageError(ValueError):
    """A report's argument that cannot be used (a date, an interval): said on stderr, exit 2."""


def _when(text: str | None, what: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an ISO 8601 date and time (e.g. 2026-03-02 or "
                         "2026-03-02T09:00)") from None


def _seconds(ms: object) -> str:
    if not isinstance(ms, int):
        return "-"
    s = ms // 1000
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


QUEUE_COLUMNS = ("offered", "answered", "abandoned", "short_abandoned", "withdrawn", "exits", "sl_pct", "asa_ms",
                 "aht_ms", "max_wait_ms")
AGENT_COLUMNS = ("answered", "missed", "talk_ms", "wrap_ms", "ready_ms", "not_ready_ms")
_HEADS = {"short_abandoned": "short", "sl_pct": "SL %", "asa_ms": "ASA", "aht_ms": "AHT", "max_wait_ms": "max wait",
          "talk_ms": "talk", "wrap_ms": "wrap-up", "ready_ms": "ready", "not_ready_ms": "not ready",
          "longest_wait_ms": "longest", "since_ms": "since"}


def format_table(title: str, rows: dict[str, dict[str, Any]], columns: tuple[str, ...]) -> str:
    """One row per queue or agent, times as m:ss (h:mm:ss), a missing figure as '-'."""
    def cell(name: str, value: Any) -> str:
        if name.endswith("_ms"):
            return _seconds(value)
        if name == "sl_pct":
            return "-" if value is None else f"{value:.1f}"
        if isinstance(value, dict):
            return " ".join(f"{k}:{v}" for k, v in sorted(value.items()) if v) or "-"
        return "-" if value is None else str(value)

    table = [[title, *(_HEADS.get(c, c) for c in columns)]]
    table += [[name, *(cell(c, fig.get(c)) for c in columns)] for name, fig in sorted(rows.items())]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths,
                                                                                                  strict=True)))
                     for r in table)


def _print_figures(doc: dict[str, Any], key: str, columns: tuple[str, ...], title: str) -> None:
    rows = doc[key]
    print(format_table(title, rows, columns) if rows else f"no {key}")
    for i in doc.get("intervals") or []:
        print(f"\n{i['start']} - {i['end']}")
        print(format_table(title, i[key], columns) if i[key] else f"no {key}")


def cmd_report(args: argparse.Namespace) -> int:
    """Queue or agent figures from the stored events (read-only: the engine may be up or not)."""
    from appliance.figures import INTERVALS, report
    from appliance.storage import read_events

    try:
        start, end = _when(args.start, "--from"), _when(args.end, "--to")
        if start is not None and end is not None and end <= start:
            raise UsageError(f"--to {args.end} is not after --from {args.start}")
        if args.interval is not None and args.interval not in INTERVALS:
            raise UsageError(f"--interval must be one of {', '.join(INTERVALS)}, not {args.interval!r}")
    except UsageError as exc:
        print(f"cicbox: {exc}", file=sys.stderr)
        return 2
    events = read_events(find_state_dir(args.state_dir) / "cicbox.db")
    try:
        doc = report(events, args.what, start, end, INTERVALS[args.interval] if args.interval else None)
    except ValueError as exc:
        print(f"cicbox: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc))
    elif args.what == "queue":
        _print_figures(doc, "queues", QUEUE_COLUMNS, "queue")
    else:
        _print_figures(doc, "agents", AGENT_COLUMNS, "agent")
    return 0


def cmd_queues(args: argparse.Namespace) -> int:
    """Each queue of the running engine now, with today's figures."""
    doc = _ask(args, "queues")
    if doc is None:
        return 2
    if args.json:
        print(json.dumps(doc))
    else:
        _print_figures({"queues": doc["queues"]}, "queues",
                       ("waiting", "longest_wait_ms", "agents", *QUEUE_COLUMNS), "queue")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    """Each agent of the running engine now (state, since, reason), with today's figures."""
    doc = _ask(args, "agents")
    if doc is None:
        return 2
    if args.json:
        print(json.dumps(doc))
    else:
        _print_figures({"agents": doc["agents"]}, "agents", ("state", "reason", "queue", *AGENT_COLUMNS), "agent")
    return 0


def cmd_panel(args: argparse.Namespace) -> int:
    state_dir = find_state_dir(args.state_dir)
    if args.panel_command == "setup-code":
        # The one-time code for /setup, alone on a line; exit 1 when an installer exists (unless --new).
        rc: int = _setup_code_main()(Path(args.panel_dir) if args.panel_dir else state_dir / "panel", args.new)
        return rc
    # In this process: under systemd, gunicorn's master must be the service's main process.
    from appliance.web.serve import run_panel

    run_panel(state_dir, panel_dir=Path(args.panel_dir) if args.panel_dir else None, listen=args.listen)
    return 0


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cicbox", description="cicbox call-center appliance")
    p.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                   help="DEBUG, INFO, WARNING or ERROR (default INFO); logs go to stderr")
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
    lt.add_argument("--wait-peer", type=float, default=30.0,
                    help="virtual clock: seconds of wall time to wait for a first far-end peer (later ones join "
                    "in lockstep at a block boundary)")
    lt.add_argument("--state-dir", help=STATE_DIR_RULE)
    lt.set_defaults(func=cmd_linetest)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--state-dir", help=STATE_DIR_RULE)

    def engine_args(sp: argparse.ArgumentParser, duration_help: str) -> None:
        common(sp)
        sp.add_argument("--config", help="template for the first configuration version (default configs/hotel.yaml)")
        sp.add_argument("--clock", default="realtime", choices=("virtual", "realtime"))
        sp.add_argument("--duration", type=int, help=duration_help)

    run = sub.add_parser("run", help="run the engine (cards, both scheduler tiers, the record writer)",
                         description="Run the engine. The first run stores --config (default the hotel "
                         "template) as configuration version 1; later runs use the stored version.")
    engine_args(run, "stop after this many seconds of engine clock")
    run.add_argument("--enable-faults", action="store_true",
                     help="accept the fault.* commands on control.sock (tests and the demo; never in production)")
    run.add_argument("--wait-peer", type=float, metavar="S",
                     help="virtual clock: run in lockstep with far-end peers on STATE_DIR/sim.sock; the clock "
                     "starts at the first peer's HELLO, or after S seconds of wall time without one")
    run.add_argument("--paused", action="store_true",
                     help="virtual clock: the clock stands still (control.sock answers, far-end peers may attach) "
                     "until `cicbox clock advance MS` runs it; combines with --wait-peer")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="engine + traffic generator + panel on the sim card (hotel profile)",
                          description="A living call center on the sim card: callers on the trunks, agents "
                          "at the phones, the panel on https://127.0.0.1:8443 (its setup code printed at start). Fault "
                          "commands are enabled.")
    engine_args(demo, "seconds of engine clock, then stop")
    demo.add_argument("--json", action="store_true",
                      help="print {offered, answered, abandoned, mean_wait_s, answered_by_kind} on stdout at the "
                           "end (no panel): answered by agents; answered_by_kind counts the calls the lines answered "
                           "(the IVR's included) by the kind of line, fxo or pri")
    demo.add_argument("--no-panel", action="store_true", help="do not start the panel")
    demo.add_argument("--listen", default="127.0.0.1:8443", metavar="ADDR:PORT",
                      help="the panel's address (default 127.0.0.1:8443, https)")
    demo.add_argument("--seed", type=int, default=1, help="traffic generator seed")
    demo.set_defaults(func=cmd_demo)

    cfg = sub.add_parser("config", help="check or apply a site configuration")
    csub = cfg.add_subparsers(dest="config_command", required=True)
    chk = csub.add_parser("check", help="validate FILE; errors as FILE:LINE:COL: message, exit 2")
    chk.add_argument("file")
    chk.add_argument("--state-dir", help="look up the site's prompts here too (default: the " + STATE_DIR_RULE
                     + ", when it exists); the shipped prompts are always looked up")
    chk.set_defaults(func=cmd_config_check)
    get = csub.add_parser("get", help="the configuration in force, its first line naming its version")
    common(get)
    get.add_argument("-o", "--output", help="write to this file instead of standard output")
    get.set_defaults(func=cmd_config_get)
    app = csub.add_parser("apply", help="send FILE to the running engine, which validates, stores and switches; "
                          "refused if FILE is based on a version that is no longer current")
    common(app)
    app.add_argument("file")
    app.add_argument("--base", type=int, metavar="N",
                     help="the version FILE was based on (default: its '# cicbox config version N' first line)")
    app.add_argument("--author", default=os.environ.get("USER", "installer"))
    app.set_defaults(func=cmd_config_apply)

    st = sub.add_parser("status", help="channels, calls and agents of the running engine, as text")
    common(st)
    st.add_argument("--json", action="store_true", help="the raw snapshot")
    st.set_defaults(func=cmd_status)

    rp = sub.add_parser("report", help="queue or agent figures from the stored events (read-only)",
                        description="Queue or agent figures over the stored event log (docs/reports.md): all "
                        "events unless --from / --to say otherwise (ISO 8601, the site's calendar time; a window "
                        "takes the calls that entered a queue in it). Reads the database only; the engine may "
                        "be running or not.")
    common(rp)
    rp.add_argument("what", choices=("queue", "agent"))
    rp.add_argument("--from", dest="start", metavar="ISO", help="from this date and time (default: the first event)")
    rp.add_argument("--to", dest="end", metavar="ISO", help="until this date and time (default: the last event)")
    rp.add_argument("--interval", metavar="15m|1h|day", help="also the figures of each interval, aligned on midnight")
    rp.add_argument("--json", action="store_true", help="the report as JSON")
    rp.set_defaults(func=cmd_report)

    qs = sub.add_parser("queues", help="each queue of the running engine now, with today's figures")
    common(qs)
    qs.add_argument("--json", action="store_true", help="as JSON (with the last 30 minutes' intervals)")
    qs.set_defaults(func=cmd_queues)
    ag = sub.add_parser("agents", help="each agent of the running engine now, with today's figures")
    common(ag)
    ag.add_argument("--json", action="store_true", help="as JSON (with the last 30 minutes' intervals)")
    ag.set_defaults(func=cmd_agents)

    sp = sub.add_parser("span", help="the E1/T1 spans of the running engine")
    ssub = sp.add_subparsers(dest="span_command", required=True)
    sst = ssub.add_parser("status", help="alarms, counters and the sync source: a line per span")
    common(sst)
    sst.add_argument("--json", action="store_true", help="as JSON (docs/control-socket.md, span.status)")
    sst.set_defaults(func=cmd_span_status)
    sft = ssub.add_parser("fault", help="a far-side fault on a span of the sim card (the engine must run "
                          "with --enable-faults)")
    common(sft)
    sft.add_argument("span", help="the span's name")
    sft.add_argument("fault", help="cut (no signal either way), los (the far end stops sending), ais, rai "
                     "(it sends them), clear")
    sft.add_argument("--for", dest="for_s", type=float, metavar="SECONDS",
                     help="clear it again after this many seconds of engine clock (default: until cleared)")
    sft.set_defaults(func=cmd_span_fault)

    ck = sub.add_parser("clock", help="the clock of a paused engine (cicbox run --clock virtual --paused)")
    csub2 = ck.add_subparsers(dest="clock_command", required=True)
    adv = csub2.add_parser("advance", help="run MS ms of engine clock (whole control periods), then print it")
    common(adv)
    adv.add_argument("ms", type=int, metavar="MS")
    adv.set_defaults(func=cmd_clock_advance)

    pn = sub.add_parser("panel", help="serve the web panel over HTTPS (talks to the engine over control.sock)",
                        description="Serve the web panel over HTTPS; `cicbox panel setup-code` prints the "
                        "one-time code for its first installer.")
    common(pn)
    panel_dir_help = "the panel's own files: panel.db, tls/, secret_key (default STATE_DIR/panel)"
    pn.add_argument("--panel-dir", help=panel_dir_help)
    pn.add_argument("--listen", metavar="ADDR:PORT",
                    help="address to serve on (default: listen = in /etc/cicbox/panel.conf, else 127.0.0.1:8443)")
    pn.set_defaults(func=cmd_panel, panel_command=None)
    pnsub = pn.add_subparsers(dest="panel_command")
    sc = pnsub.add_parser("setup-code", help="print the one-time setup code for /setup (exit 1: an installer "
                          "exists); --new allows one more installer",
                          description="Print the one-time setup code alone on a line; exit 1 when the panel "
                          "already has an installer. --new makes a new code (audited) that creates one more "
                          "installer: the way back when every installer's password is lost.")
    sc.add_argument("--state-dir", default=argparse.SUPPRESS, help=STATE_DIR_RULE)
    sc.add_argument("--panel-dir", default=argparse.SUPPRESS, help=panel_dir_help)
    sc.add_argument("--new", action="store_true", help="make a new code even though an installer exists")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        rc: int = args.func(args)
    except (DriverError, DspError, ApplianceError) as exc:
        print(f"cicbox: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:        # the state directory read-only, full, not ours...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cicbox: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
