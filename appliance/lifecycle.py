"""How the engine's process stops: the signals that ask it to, and how long it may take.

systemd stops the engine with SIGTERM and, TimeoutStopSec later, SIGKILL; a person
at a terminal presses Ctrl-C (SIGINT). Either asks for a clean stop: the control
loop finishes its period, then :meth:`appliance.engine.Engine.shutdown` releases
every call in progress (disposition ``shutdown``) and waits for their records to
be durable, within :func:`stop_budget_s`. A second signal stops at once
(KeyboardInterrupt): the calls' marks are in the record database, so the next
start records them as ``system_restart``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from appliance.errors import EngineRunningError

log = logging.getLogger("cicbox")

ENGINE_UNIT = Path(__file__).resolve().parent.parent / "systemd" / "cicbox-engine.service"
DEFAULT_STOP_BUDGET_S = 5.0
"""Without a unit file to read: the records of a stop wait at most this long."""
STOP_SHARE = 2 / 3
"""The share of TimeoutStopSec the records may take; the rest is left for closing the card and the store."""

_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_timespan(text: str) -> float | None:
    """A systemd time span ("15s", "1min 30s", "500ms", "20") in seconds; None if it is not one
    (or is "infinity")."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.strip().lower())
    if not parts or re.sub(r"[\d.\sa-z]", "", text.strip().lower()):
        return None
    total = 0.0
    for number, unit in parts:
        if unit not in _UNITS:
            return None
        total += float(number) * _UNITS[unit]
    return total


def stop_budget_s(unit: Path = ENGINE_UNIT) -> float:
    """How long a stop may wait for its records: STOP_SHARE of the unit's TimeoutStopSec, or
    DEFAULT_STOP_BUDGET_S when the unit (or the setting) is not there."""
    try:
        text = unit.read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_STOP_BUDGET_S
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "TimeoutStopSec":
            span = parse_timespan(value)
            if span is not None and span > 0:
                return span * STOP_SHARE
    return DEFAULT_STOP_BUDGET_S


class StopSignals:
    """SIGTERM and SIGINT set :attr:`requested` (the loop stops at the end of its period); a second
    one raises KeyboardInterrupt (stop now)."""

    def __init__(self) -> None:
        self.requested: int | None = None       # the signal that asked for the stop
        self._before: dict[int, Any] = {}

    def install(self) -> StopSignals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._before[sig] = signal.signal(sig, self._handler)
        return self

    def uninstall(self) -> None:
        """Put back the handlers found by :meth:`install`."""
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        self._before = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = signum
        log.info("%s: stopping at the end of this period", signal.Signals(signum).name)


LOCK_NAME = "engine.lock"


class StateLock:
    """The state directory's engine lock (``engine.lock``, an exclusive flock holding the engine's pid):
    taken before anything in the directory is read or changed, held until :meth:`release` or the
    process ends (a kill -9 frees it with the process)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise EngineRunningError(f"another engine runs on {state_dir}{pid}: stop it first, or give this "
                                     "one another --state-dir") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)                 # the flock goes with the last descriptor
