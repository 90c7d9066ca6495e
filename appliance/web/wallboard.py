"""The live wallboard's hub: one control.sock subscriber per panel process, fanned out to event streams.

One thread per panel process (:class:`Hub`, started on the first wallboard request) holds a
``subscribe`` on control.sock. On each (re)connect it asks for a ``status`` at once (a paused
engine pushes nothing until its clock moves), then takes every snapshot the engine pushes, adds
today's answered and abandoned calls per queue read from the engine's database (opened read-only:
``mode=ro`` and ``PRAGMA query_only``, :func:`open_engine_db`), and keeps the latest. When the
engine cannot be reached or goes away the hub says so (``{"reachable": false, "reason"}``) and tries
again each :data:`RETRY_S` second by its clock (:class:`HubClock`, injectable: tests drive it).

Each browser's ``/wallboard/events`` is one :class:`Stream` (at most :data:`MAX_STREAMS`; then
503): server-sent events ``snapshot`` (the latest at once, then at most :data:`SNAPSHOTS_PER_S`
a second, latest wins), ``engine`` (when it cannot be reached) and a comment line every
:data:`HEARTBEAT_S` seconds; the stream ends when its session does (event ``end``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, current_app

from appliance.control import ControlClient, ControlError

log = logging.getLogger("cicbox.panel.wallboard")

RETRY_S = 1.0
"""How long the hub waits before it tries the engine again."""
MAX_STREAMS = 16
"""Event streams one panel process serves at once; the next is refused (503)."""
MAX_STREAMS_PER_ACCOUNT = 4
"""Event streams one account may hold at once (tabs, over all its sessions); the next is refused (429), so one
account cannot take every place, however many times it signs in."""
GONE_CHECK_S = 1.0
"""How often a stream looks whether its client has closed the connection (its place is freed then)."""
SNAPSHOTS_PER_S = 2
"""Snapshot events per stream and second at most (the latest wins)."""
HEARTBEAT_S = 15.0
"""A comment line this often keeps an idle stream's connection (and its proxies) open."""
SESSION_CHECK_S = 1.0
"""How often a stream asks whether its session is still alive."""
FIRST_STATE_S = 2.0
"""How long /api/wallboard waits for the hub's first word after it started."""

_EXT = "cicbox_wallboard_hub"


class HubClock(Protocol):
    """The hub's time: seconds from any origin, and a wait on a condition (held by the caller) that
    ends at a notify or after `timeout` seconds of this clock."""

    def monotonic(self) -> float: ...
    def wait(self, cond: threading.Condition, timeout: float) -> None: ...


class SystemHubClock:
    """The host's monotonic clock."""

    def monotonic(self) -> float:
        return time.monotonic()  # clock-source: the panel hub's own waits, never the engine's clock

    def wait(self, cond: threading.Condition, timeout: float) -> None:
        cond.wait(max(0.0, timeout))


class WallboardError(Exception):
    """The wallboard cannot serve this request (the message says why; `status` the HTTP status)."""

    status = 503


# -- the engine's database, read-only ----------------------------------------------------------------


def open_engine_db(path: Path) -> sqlite3.Connection:
    """The engine's database at `path`, read-only: opened ``mode=ro`` (never created) with ``query_only``
    on, so any write raises (sqlite3.OperationalError). Raises sqlite3.OperationalError if it is absent."""
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    con.execute("PRAGMA query_only = ON")
    return con


def today_by_queue(con: sqlite3.Connection, day: str) -> dict[str, dict[str, int]]:
    """Calls of calendar day `day` (YYYY-MM-DD) per queue: {queue: {"answered": n, "abandoned": n}}."""
    out: dict[str, dict[str, int]] = {}
    rows = con.execute("SELECT queue, disposition, COUNT(*) FROM cdr WHERE calendar_start >= ? AND "
                       "calendar_start < ? AND queue IS NOT NULL GROUP BY queue, disposition",
                       (day, day + "~"))
    for queue, disposition, n in rows:
        figures = out.setdefault(str(queue), {"answered": 0, "abandoned": 0})
        if disposition in figures:
            figures[str(disposition)] += int(n)
    return out


# -- the hub --------------------------------------------------------------------------------------


class Stream:
    """One open event stream's place at the hub: what it sent last."""

    def __init__(self, owner: str | None = None) -> None:
        self.owner = owner           # the account holding it (None: not counted per account)
        self.sent_version = -1       # the hub's version of the last snapshot sent
        self.sent_engine = -1        # the hub's engine-state version last told
        self.last_snapshot = float("-inf")


class Hub:
    """The panel process's one subscriber to control.sock, and the streams it feeds."""

    def __init__(self, socket_path: Path, *, db_path: Path | None = None, clock: HubClock | None = None,
                 connect: Callable[[Path], ControlClient] | None = None, max_streams: int = MAX_STREAMS,
                 retry_s: float = RETRY_S, timeout_s: float = 2.0) -> None:
        self.socket_path = socket_path
        self.db_path = db_path
        self.clock: HubClock = clock or SystemHubClock()
        # the status and the subscribe are answered within timeout_s; the pushes then come when they come
        self._connect = connect or (lambda p: ControlClient(p, timeout_s=timeout_s, connect_retry_s=0.0))
        self.max_streams = max_streams
        self.max_per_account = MAX_STREAMS_PER_ACCOUNT
        self.retry_s = retry_s
        self.cond = threading.Condition()
        self.snapshot: dict[str, Any] | None = None
        self.version = 0                     # grows with every snapshot
        self.engine: dict[str, Any] | None = None   # {"reachable": false, "reason"} while down, else None
        self.engine_version = 0              # grows with every change of `engine`
        self.connects = 0                    # connections made (a test counts the retries)
        self.streams: set[Stream] = set()
        self._event: tuple[int, str] | None = None  # (version, its snapshot event): encoded once for all streams
        self._json: tuple[int, str] | None = None   # (version, the snapshot as JSON): once for all GETs
        self._client: ControlClient | None = None
        self._db: sqlite3.Connection | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    # -- the subscriber thread ----------------------------------------------------------------

    def start(self) -> None:
        with self.cond:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="wallboard-hub", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the thread (tests; a panel process ends with it)."""
        with self.cond:
            self._stopped = True
            client = self._client
            self.cond.notify_all()
        if client is not None:
            client.shutdown()
        if self._thread is not None:
            self._thread.join(10)
        if self._db is not None:
            self._db.close()

    def _run(self) -> None:
        while True:
            with self.cond:
                if self._stopped:
                    return
            reason = self._follow()
            with self.cond:
                if self._stopped:
                    return
                self._down(reason)
                deadline = self.clock.monotonic() + self.retry_s
                while not self._stopped and self.clock.monotonic() < deadline:
                    self.clock.wait(self.cond, deadline - self.clock.monotonic())

    def _follow(self) -> str:
        """Connect, take the engine's status and then its pushed snapshots until it goes; return why."""
        try:
            client = self._connect(self.socket_path)
        except ControlError as exc:
            return str(exc)
        with self.cond:
            self.connects += 1
            if self._stopped:
                client.close()
                return "stopped"
            self._client = client
        try:
            first = client.request("status")
            self.publish(first)
            snapshots = client.subscribe()
            client.set_timeout(None)        # a paused engine pushes nothing until its clock moves
            for snap in snapshots:
                self.publish(snap)
        except ControlError as exc:
            return str(exc)
        except OSError as exc:
            return f"lost the engine at {self.socket_path}: {exc.strerror or exc}"
        except ValueError as exc:
            return f"the engine sent a malformed snapshot: {exc}"
        finally:
            with self.cond:
                self._client = None
            client.close()
        return "the engine stopped sending snapshots"

    def publish(self, snap: Any) -> None:
        """A snapshot from the engine: the latest now, with today's figures per queue."""
        if not isinstance(snap, dict):
            raise ValueError(f"a snapshot is an object, not {type(snap).__name__}")
        snap = dict(snap)
        snap["today"] = self._today(snap)
        with self.cond:
            self.snapshot = snap
            self.version += 1
            if self.engine is not None:
                self.engine = None
                self.engine_version += 1
            self.cond.notify_all()

    def _down(self, reason: str) -> None:
        """(cond held) The engine cannot be reached: say so once (the reason may change)."""
        state = {"reachable": False, "reason": reason}
        if self.engine != state:
            if self.engine is None:
                log.warning("wallboard: engine not reachable: %s", reason)
            self.engine = state
            self.engine_version += 1
            self.cond.notify_all()

    def _today(self, snap: dict[str, Any]) -> dict[str, dict[str, int]]:
        calendar = snap.get("calendar")
        if self.db_path is None or not isinstance(calendar, str) or len(calendar) < 10:
            return {}
        try:
            if self._db is None:
                self._db = open_engine_db(self.db_path)
            return today_by_queue(self._db, calendar[:10])
        except sqlite3.Error as exc:         # no database yet, or it is being replaced: no figures now
            log.debug("wallboard: engine database not readable: %s", exc)
            if self._db is not None:
                self._db.close()
                self._db = None
            return {}

    # -- what the views ask ----------------------------------------------------------------------

    def current(self, wait_s: float = FIRST_STATE_S) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(latest snapshot, engine state); waits up to `wait_s` for the first word after a start."""
        with self.cond:
            deadline = self.clock.monotonic() + wait_s
            while self.snapshot is None and self.engine is None and self.clock.monotonic() < deadline:
                self.clock.wait(self.cond, deadline - self.clock.monotonic())
            if self.snapshot is None and self.engine is None:
                return None, {"reachable": False, "reason": "no word from the engine yet"}
            return self.snapshot, self.engine

    def current_json(self, wait_s: float = FIRST_STATE_S) -> tuple[str | None, dict[str, Any] | None]:
        """:meth:`current` with the snapshot as JSON text, encoded once per snapshot (what /api/wallboard sends)."""
        snapshot, engine = self.current(wait_s)
        if snapshot is None:
            return None, engine
        with self.cond:
            if self._json is None or self._json[0] != self.version:
                self._json = (self.version, json.dumps(self.snapshot, separators=(",", ":")))
            return self._json[1], engine

    def _snapshot_event(self) -> str:
        """(cond held) The latest snapshot as an event, encoded once per snapshot whatever the streams."""
        if self._event is None or self._event[0] != self.version:
            self._event = (self.version, sse("snapshot", self.snapshot))
        return self._event[1]

    def open_stream(self, owner: str | None = None) -> Stream:
        """A new stream's place for account `owner`; raises WallboardError when MAX_STREAMS are open, or
        (status 429) when `owner` holds max_per_account already."""
        with self.cond:
            if owner is not None and sum(s.owner == owner for s in self.streams) >= self.max_per_account:
                error = WallboardError(f"your account has {self.max_per_account} wallboard streams open "
                                       "already (the most one account may have, over all its sign-ins): "
                                       "close another tab")
                error.status = 429
                raise error
            if len(self.streams) >= self.max_streams:
                raise WallboardError(f"the wallboard serves {self.max_streams} streams at once; "
                                     "close another tab or try again later")
            stream = Stream(owner)
            self.streams.add(stream)
            return stream

    def close_stream(self, stream: Stream) -> None:
        with self.cond:
            self.streams.discard(stream)

    def events(self, stream: Stream, alive: Callable[[], bool] | None = None,
               gone: Callable[[], bool] | None = None) -> Iterator[str]:
        """The server-sent events of `stream`, as text: the latest snapshot (or the engine's absence) at
        once, then changes, at most SNAPSHOTS_PER_S snapshots a second, a heartbeat every HEARTBEAT_S;
        ends (event ``end``) once `alive` says the session is over, and at once (every GONE_CHECK_S) when
        `gone` says the client closed the connection. Closing it frees its place."""
        gap = 1.0 / SNAPSHOTS_PER_S
        try:
            last_out = self.clock.monotonic()
            last_check = last_out
            yield "retry: 1000\n\n"
            while True:
                with self.cond:
                    while True:
                        now = self.clock.monotonic()
                        if self._stopped or (gone is not None and gone()):
                            return
                        engine_news = self.engine_version != stream.sent_engine and self.engine is not None
                        snap_news = (self.version != stream.sent_version and self.snapshot is not None
                                     and self.engine is None)
                        snap_due = snap_news and now - stream.last_snapshot >= gap
                        if engine_news or snap_due or now - last_out >= HEARTBEAT_S or \
                                (alive is not None and now - last_check >= SESSION_CHECK_S):
                            break
                        wake = [last_out + HEARTBEAT_S]
                        if snap_news:
                            wake.append(stream.last_snapshot + gap)
                        if alive is not None:
                            wake.append(last_check + SESSION_CHECK_S)
                        if gone is not None:
                            wake.append(now + GONE_CHECK_S)
                        self.clock.wait(self.cond, min(wake) - now)
                    out: list[str] = []
                    if engine_news:
                        stream.sent_engine = self.engine_version
                        out.append(sse("engine", self.engine))
                    elif snap_due:
                        stream.sent_version = self.version
                        stream.sent_engine = self.engine_version
                        stream.last_snapshot = now
                        out.append(self._snapshot_event())
                if alive is not None and now - last_check >= SESSION_CHECK_S:
                    last_check = now
                    try:
                        live = alive()
                    except Exception:       # cannot tell: close the stream; the browser reconnects and the
                        log.exception("wallboard: checking a stream's session failed")   # login is checked
                        return
                    if not live:
                        yield sse("end", {"reason": "your session is over: sign in again"})
                        return
                if not out and now - last_out >= HEARTBEAT_S:
                    out.append(": heartbeat\n\n")
                if out:
                    last_out = now
                    yield from out
        finally:
            self.close_stream(stream)


def sse(event: str, data: Any) -> str:
    """One server-sent event: its name and its data as one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def hub_of(app: Flask | None = None) -> Hub:
    """The app's hub, its thread started (made on first use: one per panel process, since the panel runs
    one app; started in the process that serves, never in a parent that forks)."""
    app = app or current_app
    hub = app.extensions.get(_EXT)
    if hub is None:
        with _hubs_lock:
            hub = app.extensions.get(_EXT)
            if hub is None:
                from appliance.web import control_socket

                clock = app.config.get("WALLBOARD_CLOCK")
                hub = Hub(control_socket(app), db_path=Path(app.config["STATE_DIR"]) / "cicbox.db", clock=clock,
                          timeout_s=float(app.config["CONTROL_TIMEOUT_S"]))
                app.extensions[_EXT] = hub
    assert isinstance(hub, Hub)
    hub.start()
    return hub


_hubs_lock = threading.Lock()
