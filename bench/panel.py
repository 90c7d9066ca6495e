"""The panel under load: how fast supervisors' wallboards answer while the engine carries 240 calls.

The site: 240 FXO trunks and 24 agents' phones (bench/bench_site.py's generator, one queue). Long-hold
callers ring every trunk; the engine runs on the virtual clock until 240 calls are up (24 talking, the
rest queued), then pauses, serving control.sock from a thread of this process, and its clock is advanced
1000 ms each wall second through control ``clock.advance``. The panel runs as in production: gunicorn,
one threaded worker, HTTPS with its self-signed certificate, in its own process.

Five supervisor clients (each one keep-alive HTTPS connection, signed in as a supervisor when the panel
has accounts) alternate GET of the snapshot (/api/wallboard; /api/status on a panel without the
wallboard) and the page (/wallboard, else /), one request every --interval-ms each; one of them also
holds the wallboard's event stream (/wallboard/events), whose lag is measured for each engine time a
``snapshot`` event carries, from the reply of the clock.advance that ran the engine there (the engine
publishes a snapshot each second of its clock, within the advance) to the event's arrival. A reference client on its own
connection GETs /static/panel.css (no engine, no template) in the same run.

    .venv/bin/python bench/panel.py [--seconds 15] [--clients 5] [--interval-ms 200]

The last line is one JSON object: calls, clients, requests, errors (expected 0), snapshot_p50_ms,
snapshot_p95_ms, page_p50_ms, page_p95_ms, static_p95_ms, ratio_snapshot_p95_vs_static, sse_lag_p95_ms
(null without an event stream), and the paths measured. Target (reported, not asserted): both p95
under 100 ms. The whole run takes well under 45 s.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.config.loader import parse_config
from appliance.control import ControlClient
from appliance.engine import Engine
from appliance.world.world import Caller, PhoneScript, World
from bench.bench_site import site_yaml

ROOT = Path(__file__).resolve().parent.parent
TRUNKS = 240
AGENTS = 24
CALLS = 240
WARMUP_LIMIT_MS = 120_000
ADVANCE_MS = 1000
START_S = 30.0
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def build_engine(state: Path) -> Engine:
    cfg = parse_config(site_yaml(TRUNKS, AGENTS, 1), "bench-panel.yaml")
    callers = [Caller(trunk=i, at_ms=100 + 10 * i, ani=f"139{i:08d}", press_after_ms=500, hold_ms=7_200_000,
                      patience_ms=7_200_000) for i in range(TRUNKS)]
    phones = [PhoneScript(port=TRUNKS + j, agent=f"{1001 + j}", login_at_ms=0, answer_after_ms=1000)
              for j in range(AGENTS)]
    world = World(callers, phones, zone="cn", keep_audio=False)
    return Engine(state, cfg, 1, clock="virtual", world=world)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class PausedEngine:
    """The engine paused, its control.sock answered from a thread (clock.advance runs the periods)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        engine.paused = True
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="engine-control", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            if self.engine.commands.run_advances():
                continue
            self.engine.control.wait(0.02)  # clock-source: how often the paused engine looks at its socket
            self.engine.poll_control()

    def advance(self, ms: int) -> int:
        with ControlClient(self.engine.state_dir / "control.sock", timeout_s=None) as client:
            return int(client.request("clock.advance", ms=ms)["tick_ms"])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.engine.close()


@dataclass(frozen=True)
class Target:
    """Where the panel listens and the certificate to trust (what a client process needs)."""

    port: int
    cafile: str

    def connection(self, timeout: float = 10) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=self.cafile)
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=context)


class Panel:
    """``python -m appliance.web.serve`` on a free loopback port; its log read by a thread."""

    def __init__(self, state: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(state),
               "CICBOX_PANEL_CONF": str(state / "panel.conf")}
        for name in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "XDG_RUNTIME_DIR"):
            env.pop(name, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.web.serve", "--state-dir", str(state), "--listen", "127.0.0.1:0"],
            cwd=state, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.lines: list[str] = []
        self.port = 0
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                found = re.search(r"Listening at: https://127\.0\.0\.1:(\d+)", line)
                if found:
                    self.port = int(found.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, name="panel-log", daemon=True).start()
        if not ready.wait(START_S) or not self.port:  # clock-source: a bound on a real process's start-up
            self.close()
            raise SystemExit("the panel did not start:\n" + "".join(self.lines))
        self.target = Target(self.port, str(state / "panel" / "tls" / "cert.pem"))

    def connection(self, timeout: float = 10) -> http.client.HTTPSConnection:
        return self.target.connection(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)


def panel_routes(state: Path) -> set[str]:
    from appliance.web import create_app

    app = create_app({"TESTING": True, "STATE_DIR": str(state / "probe")})
    return {rule.rule for rule in app.url_map.iter_rules()}


def sign_in(panel: Panel, name: str, password: str) -> str:
    """Log in over HTTPS as a browser would; the Cookie header value that carries the session."""
    referer = f"https://127.0.0.1:{panel.port}/"
    conn = panel.connection()
    try:
        conn.request("GET", "/login", headers={"Host": f"127.0.0.1:{panel.port}"})
        resp = conn.getresponse()
        page = resp.read().decode()
        cookie = resp.headers.get("Set-Cookie", "").split(";", 1)[0]
        token = _CSRF.search(page)
        if resp.status != 200 or token is None:
            raise SystemExit(f"GET /login: {resp.status}, no CSRF token")
        form = urllib.parse.urlencode({"csrf_token": token.group(1), "username": name, "password": password})
        conn.request("POST", "/login", body=form, headers={
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", "Referer": referer})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 303:
            raise SystemExit(f"POST /login as {name}: {resp.status}")
        return resp.headers.get("Set-Cookie", cookie).split(";", 1)[0]
    finally:
        conn.close()


@dataclass
class Figures:
    snapshot: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)
    static: list[float] = field(default_factory=list)
    sse_events: list[tuple[float, int]] = field(default_factory=list)   # (monotonic time, engine tick)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def timed_get(conn: http.client.HTTPSConnection, path: str, headers: dict[str, str]) -> tuple[int, float]:
    t0 = time.monotonic()
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status, (time.monotonic() - t0) * 1000


def client_loop(panel: Target, paths: list[tuple[str, list[float]]], headers: dict[str, str], interval_s: float,
                until: float, stop: threading.Event, figures: Figures) -> None:
    conn = panel.connection()
    i = 0
    next_at = time.monotonic()
    try:
        while not stop.is_set() and time.monotonic() < until:
            path, into = paths[i % len(paths)]
            i += 1
            try:
                status, ms = timed_get(conn, path, headers)
            except (OSError, http.client.HTTPException) as exc:
                figures.error(f"GET {path}: {exc}")
                conn.close()
                conn = panel.connection()
                continue
            if status != 200:
                figures.error(f"GET {path}: {status}")
            else:
                with figures.lock:
                    into.append(ms)
            next_at += interval_s
            stop.wait(max(0.0, next_at - time.monotonic()))  # clock-source: the client's pace
    finally:
        conn.close()


def find_tick(doc: Any) -> int | None:
    """The engine tick (``tick_ms``) in an event's data, wherever the wallboard puts it."""
    if isinstance(doc, dict):
        if isinstance(doc.get("tick_ms"), int):
            return int(doc["tick_ms"])
        for value in doc.values():
            found = find_tick(value)
            if found is not None:
                return found
    return None


def sse_loop(panel: Target, path: str, headers: dict[str, str], stop: threading.Event, figures: Figures) -> None:
    conn = panel.connection(timeout=30)
    try:
        conn.request("GET", path, headers={**headers, "Accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            figures.error(f"GET {path}: {resp.status}")
            return
        event, data = "", []
        while not stop.is_set():
            raw = resp.fp.readline()
            if not raw:
                if not stop.is_set():
                    figures.error(f"{path}: the stream ended")
                return
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line:
                if event == "snapshot" and data:
                    tick = find_tick(json.loads("\n".join(data)))
                    if tick is not None:
                        with figures.lock:
                            figures.sse_events.append((time.monotonic(), tick))
                event, data = "", []
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if not stop.is_set():
            figures.error(f"{path}: {exc}")
    finally:
        conn.close()


def sse_lags(advances: list[tuple[float, int, int]], events: list[tuple[float, int]]) -> list[float]:
    """For each engine tick a snapshot event carried (its first arrival): ms from the reply of the
    clock.advance that ran the engine to that tick (the engine had that state by then) to the event.

    `advances`: (monotonic time of the reply, tick before, tick after); `events`: (arrival, tick)."""
    first: dict[int, float] = {}
    for at, tick in events:
        first.setdefault(tick, at)
    lags = []
    for tick, arrived in first.items():
        for replied, before, after in advances:
            if before < tick <= after:
                lags.append(max(0.0, (arrived - replied) * 1000))
                break
    return lags


def clients_main(target: Target, headers: dict[str, str], snapshot_path: str, page_path: str,
                 sse_path: str | None, clients: int, interval_s: float, seconds: float) -> dict[str, Any]:
    """The clients, in a process of their own (so the engine's periods never hold their GIL): the figures."""
    figures = Figures()
    stop = threading.Event()
    until = time.monotonic() + seconds
    threads = []
    for n in range(clients):
        order = [(snapshot_path, figures.snapshot), (page_path, figures.page)]
        threads.append(threading.Thread(target=client_loop, name=f"client-{n}", args=(
            target, order if n % 2 == 0 else order[::-1], headers, interval_s, until, stop, figures)))
    threads.append(threading.Thread(target=client_loop, name="reference", args=(
        target, [("/static/panel.css", figures.static)], headers, interval_s, until, stop, figures)))
    sse = None
    if sse_path is not None:
        sse = threading.Thread(target=sse_loop, name="sse", args=(target, sse_path, headers, stop, figures),
                               daemon=True)
        sse.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    if sse is not None:
        sse.join(timeout=2)   # ends at its next event
    with figures.lock:
        return {"snapshot": figures.snapshot, "page": figures.page, "static": figures.static,
                "sse_events": list(figures.sse_events), "errors": list(figures.errors)}


def _clients_entry(out: Any, *args: Any) -> None:
    out.put(clients_main(*args))


def run(seconds: float, clients: int, interval_ms: float, log: Callable[[str], None]) -> dict[str, Any]:
    import multiprocessing

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cicbox-bench-panel-") as tmp:
        state = Path(tmp)
        engine = build_engine(state)
        while len(engine.snapshot()["calls"]) < CALLS and engine.clock.now_ms < WARMUP_LIMIT_MS:
            engine.run_for(1000)
        calls = len(engine.snapshot()["calls"])
        log(f"{calls} calls up at engine {engine.clock.now_ms} ms ({time.monotonic() - t_start:.1f} s)")
        routes = panel_routes(state)
        user = None
        if "/login" in routes:
            from appliance.web import accounts

            # An installer first (until one exists every page leads to /setup), then the supervisor.
            accounts.create_user(state / "panel", "bench-installer", "installer", "pw-" + os.urandom(12).hex())
            user = ("bench-supervisor", "pw-" + os.urandom(12).hex())
            accounts.create_user(state / "panel", user[0], "supervisor", user[1])
        snapshot_path = "/api/wallboard" if "/api/wallboard" in routes else "/api/status"
        page_path = "/wallboard" if "/wallboard" in routes else "/"
        sse_path = "/wallboard/events" if "/wallboard/events" in routes else None
        paused = PausedEngine(engine)
        panel = Panel(state)
        advances: list[tuple[float, int, int]] = []
        last_tick = engine.clock.now_ms
        advance_ms: list[float] = []
        spawn = multiprocessing.get_context("spawn")
        results = spawn.Queue()
        child = None
        try:
            headers = {"Host": f"127.0.0.1:{panel.port}"}
            if user is not None:
                headers["Cookie"] = sign_in(panel, *user)
            child = spawn.Process(target=_clients_entry, name="clients", args=(
                results, panel.target, headers, snapshot_path, page_path, sse_path, clients, interval_ms / 1000,
                seconds))
            child.start()
            next_at = time.monotonic() + 1.0
            got: dict[str, Any] | None = None
            while got is None:
                try:
                    # clock-source: the engine's clock moves 1000 ms each wall second until the clients are done
                    got = results.get(timeout=max(0.0, next_at - time.monotonic()))
                except queue.Empty:
                    next_at += 1.0
                    asked = time.monotonic()
                    tick = paused.advance(ADVANCE_MS)
                    advances.append((time.monotonic(), last_tick, tick))
                    advance_ms.append((time.monotonic() - asked) * 1000)
                    last_tick = tick
                    if not child.is_alive() and results.empty():
                        raise SystemExit(f"the clients' process ended ({child.exitcode}) without figures") from None
        finally:
            if child is not None:
                child.join(timeout=30)
            panel.close()
            paused.close()
    snapshot, page, static = got["snapshot"], got["page"], got["static"]
    errors: list[str] = got["errors"]
    snap95, static95 = pct(snapshot, 0.95), pct(static, 0.95)
    lags = sse_lags(advances, [(t, tick) for t, tick in got["sse_events"]])
    for e in errors[:10]:
        log(f"error: {e}")
    return {
        "calls": calls, "clients": clients, "requests": len(snapshot) + len(page) + len(static),
        "errors": len(errors),
        "snapshot_p50_ms": round(statistics.median(snapshot), 2) if snapshot else None,
        "snapshot_p95_ms": snap95,
        "page_p50_ms": round(statistics.median(page), 2) if page else None,
        "page_p95_ms": pct(page, 0.95),
        "static_p95_ms": static95,
        "ratio_snapshot_p95_vs_static": round(snap95 / static95, 2) if snap95 and static95 else None,
        "sse_lag_p95_ms": pct(lags, 0.95) if sse_path is not None else None,
        "snapshot_path": snapshot_path, "page_path": page_path, "sse_path": sse_path,
        "signed_in": user is not None, "advances": len(advances),
        "advance_wall_p50_ms": round(statistics.median(advance_ms), 1) if advance_ms else None,
        "wall_s": round(time.monotonic() - t_start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=15.0, help="wall seconds of load (default 15)")
    p.add_argument("--clients", type=int, default=5, help="supervisor clients (default 5)")
    p.add_argument("--interval-ms", type=float, default=200.0,
                   help="each client's pace: one request every this many ms (default 200)")
    args = p.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    print(json.dumps(run(args.seconds, args.clients, args.interval_ms, log)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
