"""libpri as a PRI span's far end, for tests: tests/peers/bin/pri_peer (built by `make setup`) as a subprocess.

The program (tests/peers/pri_peer.c says what it does and what it prints) attaches to the card's far-end
socket and runs in lockstep with it: it answers each block only after it has written the block's events
on its standard output, so once the card's clock has been stepped every event of those ticks can be
read without waiting. :meth:`PriPeer.wait_for` steps the clock (the test's `step`: its own control
period, our stack included) until an event comes, bounded in virtual time; nothing here sleeps.

    peer = PriPeer(sock, "span1", side="network", switch="euroisdn", script=[{"at_ms": 3000, "do": "call", ...}])
    lc.wait_far_peer(30)
    peer.wait_for("dchan_up", step, within_ms=5000)
    peer.do({"do": "hangup", "call": 1, "cause": 16})      # at once: read before its next block
    peer.stop()
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

BIN = Path(__file__).resolve().parent / "bin" / "pri_peer"

#: one event line, as the program printed it
PeerEvent = dict[str, Any]


class PeerError(AssertionError):
    """The peer did not do what the test waited for (its events and its standard error say what it did)."""


class PriPeer:
    """One pri_peer process on span `span` of the card behind `sock`."""

    def __init__(self, sock: Path, span: str, side: str, switch: str,
                 script: Iterable[Mapping[str, Any]] = (), answer: bool = False, debug: bool = False,
                 workdir: Path | None = None) -> None:
        if not BIN.exists():
            raise FileNotFoundError(f"{BIN} is not built: run `make setup`")
        self.span = span
        self.events: list[PeerEvent] = []
        self._seen = 0                       # events already handed out by next_event / wait_for
        self._buf = b""
        cmd = [str(BIN), "--socket", str(sock), "--span", span, "--side", side, "--switch", switch]
        lines = [json.dumps(dict(a)) for a in script]
        if lines:
            path = (workdir or sock.parent) / f"pri_peer_{span}_{os.getpid()}_{id(self)}.jsonl"
            path.write_text("\n".join(lines) + "\n")
            cmd += ["--script", str(path)]
        if answer:
            cmd.append("--answer")
        if debug:
            cmd.append("--debug")
        self._err_path = (workdir or sock.parent) / f"pri_peer_{span}_{os.getpid()}_{id(self)}.err"
        self._err = self._err_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
                                     env={"PATH": "/usr/bin:/bin"}, cwd=str(workdir or sock.parent))
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)

    # -- events ---------------------------------------------------------------------------

    def poll(self) -> list[PeerEvent]:
        """The events printed since the last poll (never waits)."""
        assert self.proc.stdout is not None
        while True:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._buf += chunk
        new: list[PeerEvent] = []
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if line.strip():
                new.append(json.loads(line))
        self.events += new
        return new

    def next_event(self, match: Callable[[PeerEvent], bool] | str | None = None) -> PeerEvent | None:
        """The first event after the last one handed out that matches (an event name, or a test), or None;
        the events before it are passed over."""
        self.poll()
        test = _matcher(match)
        while self._seen < len(self.events):
            ev = self.events[self._seen]
            self._seen += 1
            if test(ev):
                return ev
        return None

    def wait_for(self, match: Callable[[PeerEvent], bool] | str, step: Callable[[], Any], within_ms: int,
                 now: Callable[[], int]) -> PeerEvent:
        """Step the clock (`step()`, one control period) until an event matching `match` arrives, at most
        `within_ms` of the clock (`now()` in ms); PeerError if it does not."""
        end = now() + within_ms
        while True:
            ev = self.next_event(match)
            if ev is not None:
                return ev
            if now() >= end:
                raise PeerError(f"no {match if isinstance(match, str) else 'matching'} event from pri_peer "
                                f"within {within_ms} ms (until {now()} ms); its events: {self.events}; "
                                f"its stderr: {self.stderr()[-2000:]}")
            if self.proc.poll() is not None:
                raise PeerError(f"pri_peer exited ({self.proc.returncode}); its events: {self.events}; "
                                f"its stderr: {self.stderr()[-2000:]}")
            step()

    def named(self, event: str) -> list[PeerEvent]:
        """Every event of that name so far."""
        self.poll()
        return [e for e in self.events if e["event"] == event]

    # -- commands ---------------------------------------------------------------------------

    def do(self, action: Mapping[str, Any]) -> None:
        """A script line sent now: without `at_ms` the peer carries it out when it takes its next block
        (the line is in its pipe before the test steps the clock), with `at_ms` at that time."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(dict(action)) + "\n").encode())
        self.proc.stdin.flush()

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self._err_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 10.0) -> int:
        """The exit status: 0 when it ended with the card's connection (close the card first); a process
        still attached to a card is terminated (-15)."""
        try:
            rc = self.proc.wait(2.0)     # clock-source: a bound on a process's exit, not a wait for time
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait(timeout_s)
        self.poll()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()
        self._err.close()
        return rc


def _matcher(match: Callable[[PeerEvent], bool] | str | None) -> Callable[[PeerEvent], bool]:
    if match is None:
        return lambda ev: True
    if isinstance(match, str):
        return lambda ev: ev.get("event") == match
    return match


class PeerWaits:
    """Waiting in virtual time on a run with a pri_peer: a harness gives `peer`, `now` (ms) and
    `step()` (one period, the peer in lockstep), and gets `until` and `peer_event`."""

    @property
    def peer(self) -> PriPeer:
        raise NotImplementedError

    @property
    def now(self) -> int:
        raise NotImplementedError

    def step(self) -> None:
        raise NotImplementedError

    def until(self, cond: Callable[[], bool], within_ms: int, what: str = "the condition") -> None:
        end = self.now + within_ms
        while not cond():
            if self.now >= end:
                raise AssertionError(f"{what} not met within {within_ms} ms (at {self.now} ms); peer events: "
                                     f"{self.peer.events}; peer stderr: {self.peer.stderr()[-2000:]}")
            self.step()

    def peer_event(self, match: Callable[[PeerEvent], bool] | str, within_ms: int = 5000) -> PeerEvent:
        """The peer's next event that matches, the run stepped until it comes (at most within_ms)."""
        return self.peer.wait_for(match, self.step, within_ms, lambda: self.now)
