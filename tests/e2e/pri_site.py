"""The engine with libpri on a PRI span's far end, in virtual time: the harness of tests/e2e/test_pri_*.py.

:class:`PriSite` is an engine (tests/e2e/harness.py's Site: store, world of scripted phones, virtual
clock) whose configuration has PRI spans, and pri_peer (tests/peers/pri_peer.py, libpri) on the far
end of one of them over the engine's sim.sock, the other side (libpri's network side against our
pri_cpe, its user side against our pri_net; EuroISDN on E1, NI-2 on T1). The peer attaches before the
clock runs and runs in lockstep with it; :meth:`PriSite.step` is one engine period, and each wait is
bounded in engine time. The engine under test is the product's: nothing here reaches into it but to
read (its span status, its calls, its records) and to tap a channel's audio.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from appliance.engine import Engine
from appliance.world import PhoneScript
from tests.e2e.harness import Site, cdrs
from tests.peers.pri_peer import PeerWaits, PriPeer

#: each kind of span: the switch type libpri speaks on it, the site's law
SWITCH = {"e1": "euroisdn", "t1": "ni2"}
LAW = {"e1": "alaw", "t1": "ulaw"}
HOTEL_DNIS = "075588880000"
ANI = "13800138000"


def pri_site_yaml(base: str, kind: str = "e1", signalling: str = "pri_cpe", extra: str = "",
                  dnis: str = HOTEL_DNIS) -> str:
    """`base` (tests/e2e/harness.py's site_yaml) with span1 a PRI span of `kind` (and `extra` keys), and a
    route from `dnis` to the IVR before the trunks' routes."""
    text = base.replace("spans: []\n", f"spans:\n  - {{kind: {kind}, name: span1, signalling: {signalling}{extra}}}\n")
    text = text.replace("routes:\n", f"routes:\n  - {{dnis: '{dnis}', ivr: main}}\n", 1)
    return text.replace("law: alaw", f"law: {LAW[kind]}")


def call(at_ms: int, dnis: str = HOTEL_DNIS, *, ani: str | None = ANI, pres: str = "allowed",
         complete: bool = True, **more: Any) -> dict[str, Any]:
    """A pri_peer script line: a call from ANI (national, ISDN plan, `pres`) to `dnis`."""
    line: dict[str, Any] = {"at_ms": at_ms, "do": "call", "dnis": dnis, "complete": complete, **more}
    if ani is not None:
        line.update(ani=ani, ani_ton="national", ani_npi="isdn", ani_pres=pres)
    return line


class PriSite(PeerWaits):
    """An engine on `text` with pri_peer on span `span`'s far end (see the module)."""

    def __init__(self, tmp: Path, text: str, phones: list[PhoneScript], *, kind: str = "e1",
                 signalling: str = "pri_cpe", script: Iterable[Mapping[str, Any]] = (), answer: bool = False,
                 span: str = "span1", **engine_args: Any) -> None:
        self.tmp = tmp
        self.site = Site(tmp, text, [], phones, keep_audio=True, **engine_args)
        self._peer: PriPeer | None = None
        try:
            self._peer = PriPeer(tmp / "sim.sock", span, side="network" if signalling == "pri_cpe" else "user",
                                 switch=SWITCH[kind], script=script, answer=answer, workdir=tmp)
            if not self.site.engine.wait_far_peer(30):
                raise AssertionError(f"pri_peer did not attach: {self._peer.stderr()}")
        except BaseException:
            self.close()
            raise
        self.span = next(s for s in self.engine.pri.spans.values() if s.name == span)

    @property
    def peer(self) -> PriPeer:
        assert self._peer is not None
        return self._peer

    @property
    def engine(self) -> Engine:
        return self.site.engine

    @property
    def now(self) -> int:
        return int(self.engine.clock.now_ms)

    def chan(self, timeslot: int) -> int:
        """The card channel of the span's B-channel `timeslot`."""
        return self.span.chan_of[timeslot]

    # -- the clock ------------------------------------------------------------------------

    def step(self) -> None:
        self.engine.run_period()

    def run(self, ms: int) -> None:
        self.engine.run_for(ms)


    def up(self, within_ms: int = 5000) -> None:
        """Both ends have the D-channel up."""
        self.peer_event("dchan_up", within_ms)
        self.until(lambda: self.span.link.dchan == "up", within_ms, "our D-channel up")

    def do(self, action: Mapping[str, Any]) -> None:
        """A script line for the peer now (carried out at its next block)."""
        self.peer.do(action)

    # -- what the engine shows -------------------------------------------------------------------

    def pri_status(self) -> dict[str, Any]:
        """``span status``'s ``pri`` of the peer's span, over control.sock as the CLI asks it."""
        doc = self.site.request("span.status")
        return next(s["pri"] for s in doc["spans"] if s["name"] == self.span.name)

    def cdrs(self) -> list[dict[str, Any]]:
        return cdrs(self.tmp)

    def tap(self, timeslot: int, ms: int) -> Any:
        """A tap on the B-channel (what the card receives from the line and sends to it), `ms` long."""
        return self.engine.tier_.sched.tap(self.chan(timeslot), frames=8 * ms + 4096)

    def nothing_leaked(self) -> None:
        """No call anywhere: no call machine, no Q.931 call or call reference, every B-channel idle, no
        echo canceller on, no call layer's hold on a B-channel."""
        engine = self.engine
        assert engine.calls == {}
        assert engine.call_layer.pri_calls == {} and engine.call_layer.by_trunk == {}
        control = self.span.control
        assert control.calls == {}
        assert all(ch.leg is None and not ch.restarting for ch in control.channels.values())
        st = self.span.status()
        assert (st["calls"], st["b_busy"], st["b_idle"]) == (0, 0, len(control.channels))
        assert [c for c in engine.echo.not_off() if c in self.span.timeslot_of] == []

    def close(self) -> int:
        """Close the engine (the peer ends with its connection); the peer's exit status."""
        self.site.close()
        return self._peer.stop() if self._peer is not None else 0
