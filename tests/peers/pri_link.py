"""A PRI span between our stack and libpri, in virtual time: the interop base of the ISDN tests.

:class:`PriLink` is a sim card with one span configured as a site configures it (``signalling:
pri_cpe`` or ``pri_net``, which gives the span its D-channel: E1 TS16, T1 TS24; T1 framed ESF, coded
B8ZS, µ-law), its media tier (a LineCard with the far-end socket), our Q.921 data link
(e1t1.isdn.q921.DataLink) on the D-channel, frames out as CB_CMD_FRAME and in as CB_EV_FRAME, and
pri_peer on the span's far end (tests/peers/pri_peer.py), the other side (user against our network,
network against our user), EuroISDN on E1, NI-2 on T1.

Each :meth:`PriLink.step` is one control period: the card runs `period` ms in lockstep with the peer,
then each D-channel frame goes to the link at its tick and the clock follows the card's. What the
link hands upward is kept: :attr:`PriLink.heard` (every DL primitive) and :attr:`PriLink.received`
(each DL-DATA's octets decoded by e1t1.isdn.q931, sent by the peer's side). The call layer's tests
can put their own sink on the link instead (:attr:`PriLink.on_data`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from appliance.config.loader import parse_config
from appliance.linecard import LineCard
from appliance.spans import span_configs
from drivers.base import CardDescription, Law, SpanKind
from drivers.hal import CmdOp, EventType
from dsp.scheduler import Event
from e1t1.clock import Clock
from e1t1.errors import DecodeError
from e1t1.isdn import q931
from e1t1.isdn.q921 import DataLink, DlDataIndication, DlEvent, Side
from tests.e2e.harness import site_yaml
from tests.peers.pri_peer import PeerWaits, PriPeer

#: the kinds of span and what goes with each: the card's law and the switch type both sides speak
LAW: dict[str, Law] = {"e1": "alaw", "t1": "ulaw"}
SWITCH = {"e1": "euroisdn", "t1": "ni2"}
#: the D-channel's timeslot
DCHAN_TS = {"e1": 16, "t1": 24}


def site_with_span(kind: str, signalling: str, name: str = "span1") -> str:
    """The test site (tests/e2e/harness.py) with one span of `kind` whose signalling is `signalling`."""
    return (site_yaml(agents=1)
            .replace("spans: []\n", f"spans:\n  - {{kind: {kind}, name: {name}, signalling: {signalling}}}\n")
            .replace("law: alaw", f"law: {LAW[kind]}"))


class PriLink(PeerWaits):
    """One PRI span: our data link on the card's D-channel, pri_peer on the far end (see the module)."""

    def __init__(self, tmp_path: Path, kind: SpanKind = "e1", signalling: str = "pri_cpe", *,
                 script: Iterable[Mapping[str, Any]] = (), answer: bool = False, k: int = 5, period: int = 10,
                 establish: bool = True) -> None:
        path = tmp_path / "site.yaml"
        path.write_text(site_with_span(kind, signalling))
        self.cfg = parse_config(path.read_text(), str(path))
        span = self.cfg.spans[0]
        self.kind = kind
        self.law = LAW[kind]
        self.switch = SWITCH[kind]
        self.side = Side.USER if signalling == "pri_cpe" else Side.NETWORK
        self.configs = span_configs(self.cfg)
        self.period = period
        sock = tmp_path / "sim.sock"
        self.lc = LineCard("sim", CardDescription(spans=(kind,), span_configs=self.configs, law=self.law, k=k),
                           far_socket=sock, span_names=(span.name,))
        ts = {c.timeslot: c.index for c in self.lc.card.channels if c.kind == "ts" and c.span == 0}
        self.channel_of: dict[int, int] = {t: i for t, i in ts.items() if t is not None}
        self.dchan = self.channel_of[DCHAN_TS[kind]]
        self.clock = Clock(self.lc.tick)
        self.heard: list[DlEvent] = []
        self.received: list[q931.Message] = []
        self.on_data: Callable[[bytes], None] | None = None
        self.alarms: list[tuple[int, int]] = []          # (tick, alarm bits) of the span's CB_EV_ALARMs
        self.media: list[Event] = []                      # the other events (DTMF, tones, ...), in order
        self.link = DataLink(self.side, self._send_frame, self._sink, self.clock, name=span.name)
        self._peer = PriPeer(sock, span.name, side=self.side.other.value, switch=self.switch, script=script,
                             answer=answer, workdir=tmp_path)
        self._closed = False
        try:
            if not self.lc.wait_far_peer(30):
                raise AssertionError(f"pri_peer did not attach: {self.peer.stderr()}")
        except BaseException:
            self.close()
            raise
        if establish:
            self.link.establish()

    # -- the D-channel ---------------------------------------------------------------------

    def _send_frame(self, octets: bytes) -> None:
        self.lc.sched.send(CmdOp.FRAME, self.dchan, payload=octets)

    def _sink(self, ev: DlEvent) -> None:
        self.heard.append(ev)
        if isinstance(ev, DlDataIndication):
            if self.on_data is not None:
                self.on_data(ev.data)
                return
            try:
                self.received.append(q931.decode(ev.data, self.side.other.value))
            except DecodeError as exc:
                raise AssertionError(f"the peer sent octets q931 cannot read: {ev.data.hex(' ')} ({exc})") from exc

    def send(self, msg: q931.Message) -> None:
        """A Q.931 message to the peer (DL-DATA-REQUEST)."""
        self.link.send(msg.encode())

    # -- the clock -----------------------------------------------------------------------------

    @property
    def peer(self) -> PriPeer:
        return self._peer

    @property
    def now(self) -> int:
        return self.lc.tick

    def step(self) -> None:
        """One control period: the card and the peer in lockstep, then the D-channel's frames at their ticks."""
        for ev in self.lc.step(self.period):
            if ev.type == EventType.FRAME and ev.chan == self.dchan:
                self.clock.advance(max(self.clock.now_ms, ev.tick))
                self.link.receive(ev.payload)
            elif ev.type == EventType.ALARM:
                self.alarms.append((ev.tick, ev.value))
            else:
                self.media.append(ev)
        self.clock.advance(self.lc.tick)

    def run(self, ms: int) -> None:
        end = self.now + ms
        while self.now < end:
            self.step()


    def message(self, cls: type[q931.Message] | None = None, within_ms: int = 5000) -> q931.Message:
        """The next Q.931 message from the peer (of class `cls`: those before it are passed over)."""
        taken: list[q931.Message] = []

        def got() -> bool:
            while self.received:
                msg = self.received.pop(0)
                taken.append(msg)
                if cls is None or isinstance(msg, cls):
                    return True
            return False

        self.until(got, within_ms, f"a {cls.NAME if cls else 'message'} from the peer (passed over: "
                                   f"{[m.NAME for m in taken]})")
        return taken[-1]

    def up(self, within_ms: int = 5000) -> None:
        """Both ends report the link established."""
        self.peer_event("dchan_up", within_ms)
        self.until(lambda: self.link.dchan == "up", within_ms, "our D-channel up")

    # -- media ------------------------------------------------------------------------------------

    def heard_on(self, timeslot: int, ms: int) -> list[int]:
        """What the card received on `timeslot` over the next `ms` (linear samples), the clock run meanwhile."""
        chan = self.channel_of[timeslot]
        tap = self.lc.sched.tap(chan, frames=8 * ms + 1024)
        self.run(ms)
        rx, _ = tap.read(8 * ms + 1024)
        self.lc.sched.tap_stop(chan)
        return rx

    # -- the end ----------------------------------------------------------------------------------

    def close(self) -> int:
        """Close the card (the peer ends with its connection); the peer's exit status."""
        if self._closed:
            return 0
        self._closed = True
        self.lc.close()
        return self.peer.stop()
