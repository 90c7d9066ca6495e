"""control.sock: requests, errors, subscriptions, bad input; the server never blocks the engine."""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control import ControlClient, ControlError, ControlServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControlServer]:
    srv = ControlServer(tmp_path / "control.sock")
    srv.register("status", lambda req: {"tick_ms": 42})

    def fail(req: dict[str, Any]) -> Any:
        raise ControlError("config has 1 problem", [{"file": "x.yaml", "line": 3, "col": 5, "message": "bad"}])

    srv.register("config.apply", fail)
    stop = threading.Event()
    # The engine publishes from its own loop; a test hands publishes to the loop thread.
    pending: queue.Queue[Callable[[], None]] = queue.Queue()
    srv.in_loop = pending.put  # type: ignore[attr-defined]

    def loop() -> None:
        while not stop.is_set():
            srv.wait(0.01)
            while not pending.empty():
                pending.get()()
            srv.poll()

    t = threading.Thread(target=loop)
    t.start()
    yield srv
    stop.set()
    t.join()
    srv.close()


def test_request_reply_and_structured_errors(server: ControlServer) -> None:
    with ControlClient(server.path) as c:
        assert c.request("status") == {"tick_ms": 42}
        with pytest.raises(ControlError) as exc:
            c.request("config.apply", text="")
        assert str(exc.value) == "config has 1 problem"
        assert exc.value.issues[0]["line"] == 3
        with pytest.raises(ControlError, match=r"unknown command 'stats' \(known: config.apply, status, subscribe\)"):
            c.request("stats")


def test_bad_lines_get_an_error_and_the_connection_lives(server: ControlServer) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(server.path)
    s.sendall(b"{not json\n[1,2]\n" + json.dumps({"id": 3, "cmd": "status"}).encode() + b"\n")
    f = s.makefile()
    replies = [json.loads(f.readline()) for _ in range(3)]
    assert replies[0]["ok"] is False and replies[0]["error"]["message"].startswith("not JSON")
    assert replies[1]["error"]["message"] == "a request must be a JSON object"
    assert replies[2] == {"id": 3, "ok": True, "result": {"tick_ms": 42}}
    s.close()


def test_subscribers_get_published_snapshots(server: ControlServer) -> None:
    with ControlClient(server.path) as c:
        stream = c.subscribe()
        server.in_loop(lambda: server.publish({"tick_ms": 10}))  # type: ignore[attr-defined]
        server.in_loop(lambda: server.publish({"tick_ms": 20}))  # type: ignore[attr-defined]
        assert [next(stream)["tick_ms"], next(stream)["tick_ms"]] == [10, 20]


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match=r"cannot reach the engine at .*control.sock"):
        ControlClient(tmp_path / "control.sock")


def test_a_refused_connect_is_retried_until_the_engine_listens(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "control.sock"
    engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    engine.bind(str(path))                          # the socket exists, nobody listens yet: refused
    waits: list[float] = []

    def engine_comes_up(s: float) -> None:          # the client's pause between tries
        waits.append(s)
        engine.listen(1)

    monkeypatch.setattr(time, "sleep", engine_comes_up)
    with ControlClient(path):
        pass
    assert len(waits) == 1
    engine.close()


def test_an_engine_that_keeps_refusing_is_reported_down_after_a_second(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))                            # a stale socket: every connect is refused
    t0 = time.monotonic()  # clock-source: measures the client's own retry
    with pytest.raises(ControlError, match=r"cannot reach the engine at .*control.sock: Connection refused"):
        ControlClient(path)
    assert 1.0 <= time.monotonic() - t0 < 3.0  # clock-source
    dead.close()



@pytest.mark.parametrize("enabled", [False, True])
def test_fault_commands_need_enable_faults(tmp_path: Path, enabled: bool) -> None:
    srv = ControlServer(tmp_path / "control.sock", enable_faults=enabled)
    srv.register("fault.freeze_media", lambda req: {"frozen": True})
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            srv.wait(0.05)
            srv.poll()

    t = threading.Thread(target=loop)
    t.start()
    try:
        with ControlClient(srv.path) as c:
            if enabled:
                assert c.request("fault.freeze_media", on=True) == {"frozen": True}
                with pytest.raises(ControlError, match=r"unknown command 'fault.later'"):
                    c.request("fault.later")
            else:
                for cmd in ("fault.freeze_media", "fault.later"):     # every fault command, known or not
                    with pytest.raises(ControlError) as exc:
                        c.request(cmd, on=True)
                    assert str(exc.value) == "fault commands are disabled: start the engine with --enable-faults"
    finally:
        stop.set()
        t.join()
        srv.close()


@pytest.mark.parametrize("line", [b'{"id": ' + b"9" * 5000 + b', "cmd": "status"}', b'{"id": 1e999, "cmd": "status"}'])
def test_numbers_json_cannot_carry_back_are_refused(server: ControlServer, line: bytes,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(server.path)
    s.sendall(line + b"\n" + json.dumps({"id": 2, "cmd": "status"}).encode() + b"\n")
    f = s.makefile()
    def strict(text: str) -> Any:
        def refuse(name: str) -> Any:
            raise AssertionError(f"the reply carries {name}, which is not JSON")
        return json.loads(text, parse_constant=refuse)

    first, second = strict(f.readline()), strict(f.readline())
    s.close()
    assert first["ok"] is False and first["id"] is None and "not JSON" in first["error"]["message"]
    assert second == {"id": 2, "ok": True, "result": {"tick_ms": 42}}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_request_of_a_million_tiny_arrays_is_refused_before_it_is_parsed(server: ControlServer) -> None:
    # Valid JSON under the 4 MiB bound, but 1.3 million arrays would take the parser seconds on the
    # engine's loop; no command takes more than a few.
    line = b'{"id": 1, "cmd": "status", "x": [' + b",".join([b"[]"] * 1_300_000) + b"]}"
    assert len(line) < 4 << 20
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(server.path)
    s.sendall(line + b"\n" + json.dumps({"id": 2, "cmd": "status"}).encode() + b"\n")
    f = s.makefile()
    first, second = json.loads(f.readline()), json.loads(f.readline())
    s.close()
    assert first["ok"] is False and first["error"]["message"] == (
        "1300002 arrays and objects: a request holds at most 10000")
    assert second == {"id": 2, "ok": True, "result": {"tick_ms": 42}}


def test_a_poll_after_close_does_nothing(tmp_path: Path) -> None:
    """A thread still polling while the engine closes the server finds nothing to do (no error)."""
    server = ControlServer(tmp_path / "control.sock")
    server.close()
    server.poll()
