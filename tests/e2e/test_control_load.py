"""control.sock under load and abuse: every client of a crowd is answered, hostile lines get a
structured error and one log line, and `status` keeps being answered meanwhile (engine in virtual time)."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.control import ControlClient
from tests.e2e.harness import Site, site_yaml

CLIENTS = 256
MAX_PERIODS = 3000          # a bound on each test's run (30 s of engine clock), never reached when it works


def run_until(site: Site, done: Callable[[], bool]) -> int:
    """Step the engine period by period until `done`; the number of periods it took."""
    periods = 0
    while not done():
        site.run(site.engine.period_ms)
        periods += 1
        assert periods < MAX_PERIODS, "the clients were not all answered"
    return periods


def test_256_simultaneous_clients_each_get_status(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    eng = site.engine
    clients: list[ControlClient] = []
    try:
        site.run(100)
        # All connect before the engine accepts any: the listen backlog holds them.
        clients = [ControlClient(tmp_path / "control.sock", timeout_s=60) for _ in range(CLIENTS)]
        waits: list[int] = []
        errors: list[BaseException] = []

        def ask(c: ControlClient) -> None:
            try:
                sent_ms = eng.clock.now_ms
                snap = c.request("status")
                waits.append(snap["tick_ms"] - sent_ms)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        run_until(site, lambda: not any(t.is_alive() for t in threads))
        for t in threads:
            t.join()
        assert errors == []
        assert len(waits) == CLIENTS
        longest = max(waits) // eng.period_ms
        print(f"{CLIENTS} clients answered; the longest wait {longest} engine periods ({max(waits)} ms)")
        assert longest <= 100
    finally:
        for c in clients:
            c.close()
        site.close()


def _raw(path: Path, payload: bytes, out: dict[str, Any], key: str) -> None:
    """Send `payload` on a fresh connection, then a status request; keep both replies."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(str(path))
    try:
        s.sendall(payload + b"\n" + json.dumps({"id": 99, "cmd": "status"}).encode() + b"\n")
        f = s.makefile("rb")
        out[key] = [json.loads(f.readline()), json.loads(f.readline())]
    except BaseException as exc:
        out[key] = exc
    finally:
        s.close()


BAD = {
    "10 MiB line": b'{"id": 1, "cmd": "status", "pad": "' + b"x" * (10 << 20) + b'"}',
    "invalid UTF-8": b'{"id": 2, "cmd": "status", "who": "\xff\xfe"}',
    "NaN": b'{"id": 3, "cmd": "status", "x": NaN}',
    "depth 100": b'{"id": 4, "cmd": "status", "x": ' + b"[" * 100 + b"]" * 100 + b"}",
}
MESSAGE = {
    "10 MiB line": "request line too long (more than 4194304 octets)",
    "invalid UTF-8": "not UTF-8: invalid start byte at octet 35",
    "NaN": "not JSON: NaN is not a number JSON allows",
    "depth 100": "nested deeper than 64 levels",
}


def test_hostile_lines_get_structured_errors_while_status_is_answered(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    eng = site.engine
    sock = tmp_path / "control.sock"
    try:
        site.run(100)
        out: dict[str, Any] = {}
        bad = [threading.Thread(target=_raw, args=(sock, payload, out, name)) for name, payload in BAD.items()]
        waits: list[int] = []

        def keep_asking() -> None:
            with ControlClient(sock, timeout_s=60) as c:
                while any(t.is_alive() for t in bad) or not waits:
                    sent_ms = eng.clock.now_ms
                    waits.append(c.request("status")["tick_ms"] - sent_ms)

        asker = threading.Thread(target=keep_asking)
        for t in [*bad, asker]:
            t.start()
        periods = run_until(site, lambda: not any(t.is_alive() for t in [*bad, asker]))
        for name, replies in out.items():
            assert not isinstance(replies, BaseException), (name, replies)
            refusal, status = replies
            assert refusal == {"id": None, "ok": False, "error": {"message": MESSAGE[name], "issues": []}}, name
            assert status["id"] == 99 and status["ok"] is True, name     # the same connection goes on
        assert set(out) == set(BAD)
        longest = max(waits) // eng.period_ms
        print(f"the hostile lines took {periods} periods; {len(waits)} status requests answered meanwhile, "
              f"the longest wait {longest} engine periods")
        assert longest <= 10
        refused = [r for r in caplog.records if r.name == "cicbox.control"]
        assert sorted(r.getMessage() for r in refused) == sorted(
            f"control: refused a request: {m}" for m in MESSAGE.values())
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    finally:
        site.close()


def test_a_subscriber_that_stops_reading_is_dropped_without_slowing_the_loop(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    eng = site.engine
    try:
        site.run(100)
        eng.snapshot_every_ms = eng.period_ms           # a snapshot each period: the backlog fills fast
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(str(tmp_path / "control.sock"))
        stuck.sendall(b'{"id": 1, "cmd": "subscribe"}\n')
        site.run(eng.period_ms)
        assert eng.control.subscribers == 1
        # Pad each snapshot so 16 MiB piles up within a few hundred periods; it never reads.
        snap = eng.snapshot
        eng.snapshot = lambda: {**snap(), "pad": "x" * (128 << 10)}  # type: ignore[method-assign]
        periods = run_until(site, lambda: eng.control.subscribers == 0)
        assert periods < 400         # 16 MiB of 128 KiB snapshots and what the kernel buffers
        with ControlClient(tmp_path / "control.sock") as c, site.serving():
            assert "tick_ms" in c.request("status")
        assert any("dropping a client that does not read" in r.getMessage() for r in caplog.records)
        stuck.close()
    finally:
        site.close()
