"""End-to-end harness: an engine on the sim card with a scripted world, in virtual time."""

from __future__ import annotations

import sqlite3
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config.loader import parse_config
from appliance.config.store import ConfigStore
from appliance.control import ControlClient
from appliance.engine import Engine
from appliance.world import Caller, PhoneScript, World
from dsp.scheduler import lib
from tests.peers.spandsp_far import SpandspSignals

DEC = {
    "alaw": np.array([lib.cb_alaw2lin(a) for a in range(256)], dtype=np.int16),
    "ulaw": np.array([lib.cb_ulaw2lin(a) for a in range(256)], dtype=np.int16),
}


def decode(octets: bytes | bytearray, law: str = "alaw") -> Any:
    return DEC[law][np.frombuffer(bytes(octets), dtype=np.uint8)].astype(float)


def site_yaml(callerid: str = "fsk_bell202", agents: int = 2, greeting: str = "welcome",
              ring_timeout_ms: int = 15000, trunks: int = 2, answer_on_ring: int = 2,
              echo_taps: int | None = None) -> str:
    """A small hotel: `trunks` trunks (two by default), `agents` phones with one agent each, one IVR, one queue.
    The trunks' echo cancellers have `echo_taps` (None: the default, 128)."""
    echo = "" if echo_taps is None else f", echo_taps: {echo_taps}"
    trunk_lines = "\n".join(
        f"  - {{kind: fxo, name: trunk{i + 1}, number: '07558888{i + 1:04d}', callerid: CID, "
        f"answer_on_ring: AOR{echo}}}" for i in range(trunks))
    routes = "\n".join(f"  - {{trunk: trunk{i + 1}, ivr: main}}" for i in range(trunks))
    phones = "\n".join(f"  - {{kind: fxs, name: phone{i + 1}, extension: '80{i + 1:02d}'}}" for i in range(agents))
    agent_lines = "\n".join(f"  - {{number: '{1001 + i}', name: 'Agent {i + 1}', phone: phone{i + 1}}}"
                            for i in range(agents))
    members = ", ".join(f"'{1001 + i}'" for i in range(agents))
    return textwrap.dedent("""\
        site:
          name: Test Hotel
          zone: cn
          law: alaw
          epoch: "2026-03-01T09:30:00"
        card:
          backend: sim
          k: 4
        ports:
        TRUNKS
        PHONES
        spans: []
        routes:
        ROUTES
        ivrs:
          main:
            greeting: GREETING
            language: en
            menu: {'1': {queue: front_desk}}
            timeout_ms: 5000
            max_repeats: 2
        queues:
          front_desk:
            agents: [MEMBERS]
            ring_timeout_ms: RTO
        agents:
        AGENTS
        """).replace("TRUNKS", trunk_lines).replace("ROUTES", routes).replace("CID", callerid) \
        .replace("AOR", str(answer_on_ring)).replace("PHONES", phones).replace("AGENTS", agent_lines) \
        .replace("MEMBERS", members).replace("GREETING", greeting).replace("RTO", str(ring_timeout_ms))


class Site:
    """An engine, its store and its world, stepped in virtual time. The world's DTMF, caller ID
    and busy tone are spandsp's (made and read by the independent peer, never our kernels)."""

    def __init__(self, tmp: Path, text: str, callers: list[Caller], phones: list[PhoneScript],
                 keep_audio: bool = True, **engine_args: Any) -> None:
        self.state = tmp
        self.store = ConfigStore(tmp)
        path = tmp / "site.yaml"
        path.write_text(text)
        self.store.bootstrap(path)
        cur = self.store.current()
        assert cur is not None
        self.world = World(callers, phones, zone="cn", keep_audio=keep_audio, signals=SpandspSignals())
        self.engine = Engine(tmp, cur.config, cur.version, clock="virtual", store=self.store, world=self.world,
                             **engine_args)

    def run(self, ms: int) -> None:
        self.engine.run_for(ms)

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Answer control.sock while the engine's clock stands still (a paused engine). Nested (a request
        inside a serving block) it adds no second thread: two would poll one server at once."""
        if getattr(self, "_serving", False):
            yield
            return
        self._serving = True
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.engine.control.wait(0.02)
                self.engine.poll_control()

        t = threading.Thread(target=loop)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join()
            self._serving = False

    def request(self, cmd: str, **args: Any) -> Any:
        """One request over control.sock, as the CLI sends it; raises ControlError as the client does."""
        with self.serving(), ControlClient(self.state / "control.sock") as c:
            return c.request(cmd, **args)

    def close(self) -> None:
        self.engine.close()


def cdrs(state: Path) -> list[dict[str, Any]]:
    """The CDRs in STATE/cicbox.db, by call id, as dicts of their columns."""
    con = sqlite3.connect(state / "cicbox.db")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM cdr ORDER BY call_id")]
    con.close()
    return rows


def cdrs_by_id(db: Path) -> dict[str, dict[str, Any]]:
    """The CDRs in the record database `db` by call id, each as a dict of its columns (after an
    integrity check of the database)."""
    from appliance.storage.schema import CDR_COLUMNS
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0]: dict(zip(CDR_COLUMNS, row, strict=True))
                for row in con.execute(f"SELECT {', '.join(CDR_COLUMNS)} FROM cdr")}
    finally:
        con.close()


def by_call(events: list[Any]) -> dict[str, list[Any]]:
    """Events by their call id (events of no call left out), in order."""
    out: dict[str, list[Any]] = {}
    for e in events:
        if e.call_id is not None:
            out.setdefault(e.call_id, []).append(e)
    return out


def check_config(text: str) -> Any:
    return parse_config(text, "site.yaml")
