"""The panel's tests, and the fake engine they share: a real ControlServer in a thread."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from appliance.control import ControlServer


def snapshot() -> dict[str, Any]:
    """A site with one call queued on front_desk, one ready agent, two ports (docs/control-socket.md)."""
    return {
        "tick_ms": 123450,
        "calendar": "2026-01-01T00:02:03",
        "config_version": 3,
        "ports": [
            {"index": 0, "name": "trunk1", "kind": "fxo", "state": "busy"},
            {"index": 1, "name": "phone1", "kind": "fxs", "state": "idle"},
        ],
        "calls": [
            {"id": "c1", "ani": "13800138000", "dnis": "075588880001", "trunk": "trunk1",
             "state": "queued", "queue": "front_desk", "agent": None, "since_ms": 120000},
        ],
        "agents": [{"number": "1001", "name": "Alice", "phone": "phone1", "state": "ready"}],
        "queues": [{"name": "front_desk", "waiting": 1, "longest_wait_ms": 3450}],
    }


class FakeEngine:
    """The engine's end of control.sock, answering "status" with whatever snapshot the test set last."""

    def __init__(self, path: Path) -> None:
        self.server = ControlServer(path)
        self.path = path
        self.requests = 0
        self._snapshot = snapshot()
        self.server.register("status", self._status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-engine", daemon=True)
        self._thread.start()

    def set(self, snap: dict[str, Any]) -> None:
        """Answer the next "status" requests with a copy of `snap`."""
        self._snapshot = copy.deepcopy(snap)

    def _status(self, req: dict[str, Any]) -> Any:
        self.requests += 1
        return self._snapshot

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.server.wait(0.05)
            self.server.poll()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()
