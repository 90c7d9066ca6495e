"""Callers, phones and the exchange on the far side of the sim card."""

from __future__ import annotations

import logging
from array import array
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from drivers.hal import EventType
from drivers.sim import FarSide
from dsp import scheduler as dsp_sched
from dsp.scheduler import Scheduler
from e1t1.analog import callerid

log = logging.getLogger("cicbox.world")


def sine(freq: float, ms: int, dbm0: float = -10.0) -> array[int]:
    """A sine of `ms` milliseconds at `dbm0` as 16-bit samples."""
    n = ms * 8
    amp = 32768 * 10 ** ((dbm0 - 3.14) / 20)
    x = np.round(amp * np.sin(2 * np.pi * freq * np.arange(n) / 8000)).astype(np.int16)
    return array("h", x.tobytes())


class CallerIdReader(Protocol):
    """A phone's caller ID receiver, fed what the card sent the phone, a period at a time."""

    def feed(self, octets: bytes) -> list[str | None]:
        """Take G.711 octets; return the caller number of each message completed in them (None: no number)."""
        ...


class FarSignals(Protocol):
    """Another maker and reader of the far side's signals than the world's own far-side media
    tier: the end-to-end tests give spandsp's, so the far end of a measured signal is never the
    product's own kernel. Samples are 16-bit linear at 8 kHz."""

    def dtmf(self, digits: str) -> array[int]:
        """The digits as a phone or a caller sends them."""
        ...

    def caller_id(self, standard: str, cid: callerid.CallerId) -> array[int]:
        """The exchange's caller ID for `cid`: `standard` fsk_bell202, v23 or dtmf."""
        ...

    def busy_tone(self, zone: str, ms: int) -> array[int]:
        """`ms` of the zone's busy tone, as the exchange plays it."""
        ...

    def caller_id_reader(self, standard: str, law: str) -> CallerIdReader:
        """A phone's receiver for FSK caller ID (`standard` bell202 or v23) on a line of `law`."""
        ...


@dataclass(eq=False)
class Caller:
    """A caller on the exchange side of an FXO trunk.

    Rings `trunk` (a port index) at `at_ms` with caller ID `ani` (sent as the
    trunk expects: FSK after ring 1, or DTMF before ring 1; `cid_audio`, if
    set, is sent in its place as made elsewhere), presses `digits`
    `press_after_ms` after the trunk answered, sends `talk_hz` once connected,
    and hangs up `hold_ms` after an agent answered, or `patience_ms` after
    pressing (or after the first ring, if the trunk never answers) if nobody
    answers.
    """

    trunk: int
    at_ms: int
    ani: str | None = "13800138000"
    digits: str = "1"
    press_after_ms: int = 3000
    hold_ms: int = 30000
    patience_ms: int = 600000
    talk_hz: float = 1020.0
    cid: str = "fsk_bell202"       # fsk_bell202 | v23 | dtmf | none
    press_audio: array[int] | None = None   # if set, these samples are sent instead of generated digits
    cid_audio: array[int] | None = None     # if set, these samples are sent instead of generated caller ID
    disconnect: str = "battery"    # how the exchange signals the hang-up: battery | polarity | busy
    # outcome
    blocked: bool = False              # the trunk was busy when the caller came
    rang_ms: list[int] = field(default_factory=list)   # the tick of each ring the exchange sent
    answered_ms: int | None = None     # the trunk went off hook
    connected_ms: int | None = None    # an agent picked up
    hung_up_ms: int | None = None
    heard: bytearray = field(default_factory=bytearray)   # what the caller heard (card's octets), from answer


@dataclass
class _CallerTrack:
    """The world's bookkeeping for one caller."""

    started: bool = False
    ring_plan: list[tuple[int, bool]] = field(default_factory=list)
    cid_at: int | None = None
    talk_at: int | None = None


@dataclass(eq=False)
class PhoneScript:
    """A phone on an FXS port: an agent who logs in and answers.

    At `login_at_ms` the phone goes off hook and dials *21<agent>#; it answers
    a ring after `answer_after_ms`, sends `talk_hz` while connected, hangs up
    when it hears the far end go (open loop), or `hang_up_after_ms` after
    answering if set.
    """

    port: int
    agent: str | None = None
    login_at_ms: int | None = 0
    answer_after_ms: int = 3000
    talk_hz: float = 587.0
    hang_up_after_ms: int | None = None
    answers: bool = True
    # observed
    rings: list[tuple[int, int]] = field(default_factory=list)      # (tick, RING_ON/OFF)
    cid_reader: callerid.FskMessageReader = field(default_factory=callerid.FskMessageReader, repr=False)
    caller_ids: list[str | None] = field(default_factory=list)      # the number each caller ID showed
    answered: list[int] = field(default_factory=list)
    battery: list[tuple[int, int]] = field(default_factory=list)
    heard: bytearray = field(default_factory=bytearray)       # what the phone heard while off hook
    line: bytearray = field(default_factory=bytearray)        # everything the card sent to the phone
    line_start: int | None = None                             # tick of line[0]
    off_hook: bool = False


@dataclass
class _PhoneTrack:
    """The world's bookkeeping for one phone."""

    ring_started: int | None = None
    answer_at: int | None = None
    hangup_at: int | None = None
    ring_cid_ok: bool = False          # caller ID came during the current ringing


class World:
    """The far side of every analog port, as one scripted world.

    It reaches the card only through the card's far side (:attr:`far`, taken from the
    engine's public ``far_side`` when attached). Its own signals come from a far-side
    media tier of its own (our kernels, for the demo), or from `signals` where it makes
    or reads DTMF, caller ID and the busy tone (the end-to-end tests give spandsp).
    """

    def __init__(self, callers: list[Caller] | None = None, phones: list[PhoneScript] | None = None,
                 zone: str = "cn", keep_audio: bool = False, signals: FarSignals | None = None) -> None:
        self.callers = list(callers or [])
        self.phones = {p.port: p for p in phones or []}
        self.zone = zone
        self.keep_audio = keep_audio
        self.signals = signals
        self.far: FarSide | None = None
        self.fm: Scheduler | None = None
        self.nports = 0
        self._pending_rx: dict[int, bytes] = {}
        self._ringing: dict[int, Caller] = {}    # trunk -> caller being rung
        self._calls: dict[int, Caller] = {}      # trunk -> caller whose call is up
        self._caller_track: dict[Caller, _CallerTrack] = {}
        self._phone_track: dict[PhoneScript, _PhoneTrack] = {}
        self._cid_readers: dict[int, CallerIdReader] = {}
        self.log: list[tuple[int, str, int, Any]] = []
        self.sent: dict[int, bytearray] = {}     # what the far side sent on each port (keep_audio)
        self._busy_until_release: set[int] = set()

    def _track(self, c: Caller) -> _CallerTrack:
        return self._caller_track.setdefault(c, _CallerTrack())

    def _ptrack(self, p: PhoneScript) -> _PhoneTrack:
        return self._phone_track.setdefault(p, _PhoneTrack())

    # -- wiring ----------------------------------------------------------------

    def attach(self, engine: Any) -> None:
        """Take the engine's card description, control period and the card's far side."""
        far = engine.far_side
        if far is None:
            raise TypeError("the simulated world needs a card with a far side in process (the sim card)")
        self.far = far
        self.law = engine.desc.law
        self.nports = len(engine.desc.ports)
        self.period = engine.period_ms
        self.kinds = list(engine.desc.ports)
        self.fm = Scheduler(max(1, self.nports), self.law)
        std = "v23" if self.zone == "de" else "bell202"
        for c in range(self.nports):
            far.listen(c)
            if self.kinds[c] == "fxs":
                if self.signals is not None:
                    self._cid_readers[c] = self.signals.caller_id_reader(std, self.law)
                else:
                    self.fm.fsk_rx(c, std)
        # Each agent logs in: off hook, *21<agent># after the dial tone, on hook again.
        self._login_steps: list[tuple[int, str, PhoneScript]] = []
        for p in self.phones.values():
            if p.login_at_ms is not None and p.agent:
                at = p.login_at_ms
                self._login_steps += [(at, "off", p), (at + 600, "dial", p), (at + 3000, "on", p)]
        self._idle = bytes([0xD5 if self.law == "alaw" else 0xFF])

    # -- what a script or a test may have the far side do at once ---------------

    def dial(self, port: int, digits: str) -> None:
        """The far side of `port` sends DTMF `digits` from the next period on."""
        assert self.fm is not None
        if self.signals is not None:
            self.fm.play(port, self.signals.dtmf(digits))
        else:
            self.fm.dtmf_tx(port, digits, 70, 80)

    def send(self, port: int, samples: array[int]) -> None:
        """The far side of `port` sends these 16-bit linear samples from the next period on."""
        assert self.fm is not None
        self.fm.play(port, samples)

    # -- each period ------------------------------------------------------------

    def before_period(self, now: int, period: int) -> None:
        """Queue the far side's signals and audio for ticks [now, now + period)."""
        assert self.far is not None and self.fm is not None
        far = self.far
        end = now + period
        for at, what, p in [s for s in self._login_steps if now <= s[0] < end]:
            if what == "off":
                far.hook(p.port, True, at_tick=at)
                p.off_hook = True
            elif what == "dial":
                self.dial(p.port, f"*21{p.agent}#")
            else:
                far.hook(p.port, False, at_tick=at)
                p.off_hook = False
        self._login_steps = [s for s in self._login_steps if s[0] >= end]
        for c in self.callers:
            track = self._track(c)
            if c.hung_up_ms is not None or c.at_ms >= end:
                continue
            if now <= c.at_ms < end and not track.started:
                track.started = True
                if c.trunk in self._ringing or c.trunk in self._calls:
                    c.blocked = True
                    c.hung_up_ms = c.at_ms
                    continue
                self._start_ring(c, c.at_ms)
            self._caller_step(c, now, end)
        for p in self.phones.values():
            pt = self._ptrack(p)
            if pt.answer_at is not None and now <= pt.answer_at < end:
                far.hook(p.port, True, at_tick=pt.answer_at)
                p.off_hook = True
                pt.ring_started = None
                p.answered.append(pt.answer_at)
                pt.answer_at = None
                self.fm.play(p.port, sine(p.talk_hz, 600000))
                if p.hang_up_after_ms is not None:
                    pt.hangup_at = p.answered[-1] + p.hang_up_after_ms
                caller = self._caller_for(p)
                if caller is not None:
                    caller.connected_ms = p.answered[-1]
            if pt.hangup_at is not None and now <= pt.hangup_at < end:
                far.hook(p.port, False, at_tick=pt.hangup_at)
                p.off_hook = False
                pt.hangup_at = None
                self.fm.silence(p.port)
        # far-side audio for this period, made from what the card sent last period
        rx = bytearray()
        per = period * 8
        for ch in range(self.fm.nchan):
            rx += self._pending_rx.get(ch, self._idle * per)[:per].ljust(per, self._idle)
        tx = self.fm.process(now, period, bytes(rx))
        for ch in range(self.nports):
            far.write(ch, tx[ch * per:(ch + 1) * per])
            if self.keep_audio:
                self.sent.setdefault(ch, bytearray()).extend(tx[ch * per:(ch + 1) * per])
        for ev in self.fm.events():
            self._far_event(ev)

    def after_period(self, now: int) -> None:
        """Take what the card sent and the line changes the far side saw."""
        assert self.far is not None
        far = self.far
        got = {c: far.read(c) for c in range(self.nports)}
        for ev in far.poll():
            self._line_event(ev.tick, ev.chan, ev.type, ev.value)
        for c, octets in got.items():
            self._pending_rx[c] = octets
            reader = self._cid_readers.get(c)
            if reader is not None:
                for number in reader.feed(octets):
                    self._phone_caller_id(self.phones.get(c), number)
            if not self.keep_audio:
                continue
            start = now - len(octets) // 8          # tick of octets[0]
            p = self.phones.get(c)
            if p is not None:
                if p.line_start is None:
                    p.line_start = start
                p.line += octets
                if p.off_hook:
                    p.heard += octets
            caller = self._calls.get(c)
            if caller is not None and caller.answered_ms is not None:
                skip = max(0, caller.answered_ms - start) * 8    # from the answer on, to the tick
                caller.heard += octets[skip:]

    # -- callers ----------------------------------------------------------------

    def _cid_samples(self, c: Caller) -> array[int] | None:
        """The caller's caller ID as samples (made elsewhere), or None: the world's own modem sends it."""
        if c.cid_audio is not None:
            return c.cid_audio
        if self.signals is not None and c.ani:
            return self.signals.caller_id(c.cid, _cid(c))
        return None

    def _start_ring(self, c: Caller, at: int) -> None:
        assert self.fm is not None
        track = self._track(c)
        self._ringing[c.trunk] = c
        on, off, _, _ = dsp_sched.ring_cadence(self.zone)
        when = at
        if c.cid == "dtmf" and c.ani:
            # DTMF caller ID before the first ring
            audio = self._cid_samples(c)
            if audio is not None:
                self.fm.play(c.trunk, audio)
                when = at + len(audio) // 8 + 500
            else:
                self.fm.dtmf_tx(c.trunk, callerid.encode_dtmf_clip(_cid(c)), 70, 70)
                when = at + 1500 + len(c.ani) * 140
        track.ring_plan = []
        track.cid_at = None
        t = when
        for i in range(40):
            track.ring_plan.append((t, True))
            track.ring_plan.append((t + on, False))
            if i == 0 and c.cid in ("fsk_bell202", "v23") and c.ani:
                track.cid_at = t + on + 500
            t += on + off
        self.log.append((at, "ring", c.trunk, c.ani))

    def _caller_step(self, c: Caller, now: int, end: int) -> None:
        assert self.far is not None and self.fm is not None
        far = self.far
        track = self._track(c)
        plan = track.ring_plan
        if plan and c.answered_ms is None:
            for t, on in [p for p in plan if now <= p[0] < end]:
                far.ring(c.trunk, on, at_tick=t)
                if on:
                    c.rang_ms.append(t)
            track.ring_plan = [p for p in plan if p[0] >= end]
            cid_at = track.cid_at
            if cid_at is not None and now <= cid_at < end:
                audio = self._cid_samples(c)
                if audio is not None:
                    self.fm.play(c.trunk, audio)
                else:
                    frame = callerid.callerid_frame(_cid(c), "v23" if c.cid == "v23" else "bell202")
                    self.fm.fsk_tx(c.trunk, frame.message, frame.standard, frame.seizure_bits, frame.mark_bits)
                track.cid_at = None
        if c.answered_ms is not None and c.hung_up_ms is None:
            press = c.answered_ms + c.press_after_ms
            if c.digits and now <= press < end:
                audio = c.press_audio
                if audio is None and self.signals is not None:
                    audio = self.signals.dtmf(c.digits)
                if audio is not None:
                    self.fm.play(c.trunk, audio)
                    track.talk_at = press + len(audio) // 8
                else:
                    self.fm.dtmf_tx(c.trunk, c.digits, 80, 80)
                    track.talk_at = press + 80 * 2 * len(c.digits)
            talk_at = track.talk_at
            if talk_at is not None and now <= talk_at < end and c.talk_hz:
                self.fm.play(c.trunk, sine(c.talk_hz, 600000))
                track.talk_at = None
        # Patience runs from the menu choice (queue entry); unanswered ringing is given up after it too.
        start = c.answered_ms + c.press_after_ms if c.answered_ms is not None else c.at_ms
        hang = c.connected_ms + c.hold_ms if c.connected_ms is not None else start + c.patience_ms
        if now <= hang < end and c.hung_up_ms is None:
            self._caller_hangs_up(c, hang)

    def _caller_hangs_up(self, c: Caller, at: int) -> None:
        assert self.far is not None and self.fm is not None
        far = self.far
        c.hung_up_ms = at
        self.fm.silence(c.trunk)
        if c.answered_ms is None:
            far.ring(c.trunk, False, at_tick=at)
        elif c.disconnect == "polarity":
            far.signal(c.trunk, EventType.POLARITY, 1, at_tick=at)
            far.signal(c.trunk, EventType.POLARITY, 0, at_tick=at + 800)
        elif c.disconnect == "busy":
            # The exchange plays busy until we release.
            if self.signals is not None:
                self.fm.play(c.trunk, self.signals.busy_tone(self.zone, 60000))
            else:
                self.fm.tone(c.trunk, self.zone, "busy")
            self._busy_until_release.add(c.trunk)
        else:
            # The exchange signals the disconnect: battery drops for a moment.
            far.signal(c.trunk, EventType.BATTERY, 0, at_tick=at)
            far.signal(c.trunk, EventType.BATTERY, 1, at_tick=at + 800)
        self._ringing.pop(c.trunk, None)
        self._calls.pop(c.trunk, None)
        self.log.append((at, "hangup", c.trunk, c.ani))

    def _caller_for(self, p: PhoneScript) -> Caller | None:
        """The caller whose number the phone showed (caller ID) when it rang; without caller
        ID (answered before it came), the longest-waiting caller not yet connected."""
        waiting = sorted((c for c in self._calls.values() if c.connected_ms is None),
                         key=lambda c: c.answered_ms or 0)
        if p.caller_ids and self._ptrack(p).ring_cid_ok:
            number = p.caller_ids[-1]
            for c in waiting:
                if c.ani == number:
                    return c
        return waiting[0] if waiting else None

    # -- far-side events ----------------------------------------------------------

    def _line_event(self, tick: int, chan: int, typ: int, value: int) -> None:
        if chan in self.phones:
            p = self.phones[chan]
            pt = self._ptrack(p)
            if typ in (EventType.RING_ON, EventType.RING_OFF):
                p.rings.append((tick, typ))
                if typ == EventType.RING_ON and pt.ring_started is None and not p.off_hook:
                    pt.ring_started = tick
                    pt.ring_cid_ok = False
                    p.cid_reader.reset()
                    if p.answers:
                        pt.answer_at = tick + p.answer_after_ms
            elif typ == EventType.BATTERY:
                p.battery.append((tick, value))
                if value == 0 and p.off_hook:
                    pt.hangup_at = tick + 1500     # the agent hears the line go, hangs up
                    if self.fm is not None:
                        self.fm.silence(p.port)
            if typ == EventType.RING_OFF and p.off_hook:
                pt.ring_started = None
        elif typ == EventType.HOOK_OFF:
            c = self._ringing.pop(chan, None)
            if c is not None:
                c.answered_ms = tick
                self._calls[chan] = c
        elif typ == EventType.HOOK_ON:
            if chan in self._busy_until_release and self.fm is not None:
                self._busy_until_release.discard(chan)
                if self.signals is not None:
                    self.fm.stop_play(chan)
                else:
                    self.fm.stop_tone(chan)
            c = self._calls.get(chan)
            if c is not None and c.hung_up_ms is None:
                c.hung_up_ms = tick    # we released the call
                self._calls.pop(chan, None)
                if self.fm is not None:
                    self.fm.silence(chan)
        self.log.append((tick, EventType(typ).name, chan, value))

    def _phone_caller_id(self, p: PhoneScript | None, number: str | None) -> None:
        if p is None:
            return
        p.caller_ids.append(number)
        pt = self._ptrack(p)
        pt.ring_cid_ok = pt.ring_started is not None

    def _far_event(self, ev: Any) -> None:
        p = self.phones.get(ev.chan)
        if ev.type == EventType.FSK_BYTE and p is not None:
            msg = p.cid_reader.feed(ev.value)
            if msg is not None:
                try:
                    decoded = callerid.decode_fsk_message(msg)
                except Exception as exc:
                    log.info("phone %d: caller ID not understood: %s", ev.chan, exc)
                else:
                    self._phone_caller_id(p, getattr(decoded, "number", None))


def _cid(c: Caller) -> callerid.CallerId:
    return callerid.CallerId(number=c.ani, name=None, month=1, day=1, hour=0, minute=0, number_absent=None,
                             name_absent=None, call_type=None)
