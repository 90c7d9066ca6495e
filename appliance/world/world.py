"""Callers, phones and the exchange on the far side of the sim card."""

from __future__ import annotations

import logging
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from drivers.hal import EventType
from drivers.sim import SimCard
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


@dataclass
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
    answered_ms: int | None = None     # the trunk went off hook
    connected_ms: int | None = None    # an agent picked up
    hung_up_ms: int | None = None
    heard: bytearray = field(default_factory=bytearray)   # what the caller heard (card's octets), from answer
    # the world's own bookkeeping
    _started: bool = field(default=False, repr=False)
    _ring_plan: list[tuple[int, bool]] = field(default_factory=list, repr=False)
    _cid_at: int | None = field(default=None, repr=False)
    _talk_at: int | None = field(default=None, repr=False)


@dataclass
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
    caller_ids: list[Any] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    battery: list[tuple[int, int]] = field(default_factory=list)
    heard: bytearray = field(default_factory=bytearray)       # what the phone heard while off hook
    line: bytearray = field(default_factory=bytearray)        # everything the card sent to the phone
    line_start: int | None = None                             # tick of line[0]
    off_hook: bool = False
    _ring_started: int | None = None
    _answer_at: int | None = None
    _hangup_at: int | None = None
    _ring_cid_ok: bool = False         # caller ID came during the current ringing


class World:
    """The far side of every analog port, as one scripted world."""

    def __init__(self, callers: list[Caller] | None = None, phones: list[PhoneScript] | None = None,
                 zone: str = "cn", keep_audio: bool = False) -> None:
        self.callers = list(callers or [])
        self.phones = {p.port: p for p in phones or []}
        self.zone = zone
        self.keep_audio = keep_audio
        self.card: SimCard | None = None
        self.fm: Scheduler | None = None
        self.nports = 0
        self._pending_rx: dict[int, bytes] = {}
        self._ringing: dict[int, Caller] = {}    # trunk -> caller being rung
        self._calls: dict[int, Caller] = {}      # trunk -> caller whose call is up
        self._talking: set[int] = set()
        self.log: list[tuple[int, str, int, Any]] = []
        self.sent: dict[int, bytearray] = {}     # what the far side sent on each port (keep_audio)
        self._busy_until_release: set[int] = set()

    # -- wiring ----------------------------------------------------------------

    def attach(self, engine: Any) -> None:
        card = engine.tier_.card
        if not isinstance(card, SimCard):
            raise TypeError("the simulated world needs the sim card")
        self.card = card
        self.law = engine.desc.law
        self.nports = len(engine.desc.ports)
        self.period = engine.period_ms
        self.kinds = list(engine.desc.ports)
        self.fm = Scheduler(max(1, self.nports), self.law)
        for c in range(self.nports):
            card.far.listen(c)
            if self.kinds[c] == "fxs":
                self.fm.fsk_rx(c, callerid.fsk_standard(self.zone))
        # Each agent logs in: off hook, *21<agent># after the dial tone, on hook again.
        self._login_steps: list[tuple[int, str, PhoneScript]] = []
        for p in self.phones.values():
            if p.login_at_ms is not None and p.agent:
                at = p.login_at_ms
                self._login_steps += [(at, "off", p), (at + 600, "dial", p), (at + 3000, "on", p)]
        self._idle = bytes([0xD5 if self.law == "alaw" else 0xFF])

    # -- each period ------------------------------------------------------------

    def before_period(self, now: int, period: int) -> None:
        """Queue the far side's signals and audio for ticks [now, now + period)."""
        assert self.card is not None and self.fm is not None
        far = self.card.far
        end = now + period
        for at, what, p in [s for s in self._login_steps if now <= s[0] < end]:
            if what == "off":
                far.hook(p.port, True, at_tick=at)
                p.off_hook = True
            elif what == "dial":
                self.fm.dtmf_tx(p.port, f"*21{p.agent}#", 70, 80)
            else:
                far.hook(p.port, False, at_tick=at)
                p.off_hook = False
        self._login_steps = [s for s in self._login_steps if s[0] >= end]
        for c in self.callers:
            if c.hung_up_ms is not None or c.at_ms >= end:
                continue
            if now <= c.at_ms < end and not c._started:
                c._started = True
                if c.trunk in self._ringing or c.trunk in self._calls:
                    c.blocked = True
                    c.hung_up_ms = c.at_ms
                    continue
                self._start_ring(c, c.at_ms)
            self._caller_step(c, now, end)
        for p in self.phones.values():
            if p._answer_at is not None and now <= p._answer_at < end:
                far.hook(p.port, True, at_tick=p._answer_at)
                p.off_hook = True
                p._ring_started = None
                p.answered.append(p._answer_at)
                p._answer_at = None
                self.fm.play(p.port, sine(p.talk_hz, 600000))
                if p.hang_up_after_ms is not None:
                    p._hangup_at = p.answered[-1] + p.hang_up_after_ms
                caller = self._caller_for(p)
                if caller is not None:
                    caller.connected_ms = p.answered[-1]
            if p._hangup_at is not None and now <= p._hangup_at < end:
                far.hook(p.port, False, at_tick=p._hangup_at)
                p.off_hook = False
                p._hangup_at = None
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
        assert self.card is not None
        far = self.card.far
        got = {c: far.read(c) for c in range(self.nports)}
        for ev in far.poll():
            self._line_event(ev.tick, ev.chan, ev.type, ev.value)
        for c, octets in got.items():
            self._pending_rx[c] = octets
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

    def _start_ring(self, c: Caller, at: int) -> None:
        assert self.card is not None and self.fm is not None
        self._ringing[c.trunk] = c
        on, off, _, _ = dsp_sched.ring_cadence(self.zone)
        when = at
        if c.cid == "dtmf" and c.ani:
            # DTMF caller ID before the first ring
            if c.cid_audio is not None:
                self.fm.play(c.trunk, c.cid_audio)
                when = at + len(c.cid_audio) // 8 + 500
            else:
                self.fm.dtmf_tx(c.trunk, callerid.encode_dtmf_clip(_cid(c)), 70, 70)
                when = at + 1500 + len(c.ani) * 140
        c._ring_plan = []
        c._cid_at = None
        t = when
        for i in range(40):
            c._ring_plan.append((t, True))
            c._ring_plan.append((t + on, False))
            if i == 0 and c.cid in ("fsk_bell202", "v23") and c.ani:
                c._cid_at = t + on + 500
            t += on + off
        self.log.append((at, "ring", c.trunk, c.ani))

    def _caller_step(self, c: Caller, now: int, end: int) -> None:
        assert self.card is not None and self.fm is not None
        far = self.card.far
        plan = c._ring_plan
        if plan and c.answered_ms is None:
            for t, on in [p for p in plan if now <= p[0] < end]:
                far.ring(c.trunk, on, at_tick=t)
            c._ring_plan = [p for p in plan if p[0] >= end]
            cid_at = c._cid_at
            if cid_at is not None and now <= cid_at < end:
                std = "v23" if c.cid == "v23" else "bell202"
                if c.cid_audio is not None:
                    self.fm.play(c.trunk, c.cid_audio)
                else:
                    frame = callerid.callerid_frame(_cid(c), std)
                    self.fm.fsk_tx(c.trunk, frame.message, frame.standard, frame.seizure_bits, frame.mark_bits)
                c._cid_at = None
        if c.answered_ms is not None and c.hung_up_ms is None:
            press = c.answered_ms + c.press_after_ms
            if c.digits and now <= press < end:
                if c.press_audio is not None:
                    self.fm.play(c.trunk, c.press_audio)
                    c._talk_at = press + len(c.press_audio) // 8
                else:
                    self.fm.dtmf_tx(c.trunk, c.digits, 80, 80)
                    c._talk_at = press + 80 * 2 * len(c.digits)
            talk_at = c._talk_at
            if talk_at is not None and now <= talk_at < end and c.talk_hz:
                self.fm.play(c.trunk, sine(c.talk_hz, 600000))
                c._talk_at = None
        # Patience runs from the menu choice (queue entry); unanswered ringing is given up after it too.
        start = c.answered_ms + c.press_after_ms if c.answered_ms is not None else c.at_ms
        hang = c.connected_ms + c.hold_ms if c.connected_ms is not None else start + c.patience_ms
        if now <= hang < end and c.hung_up_ms is None:
            self._caller_hangs_up(c, hang)

    def _caller_hangs_up(self, c: Caller, at: int) -> None:
        assert self.card is not None and self.fm is not None
        far = self.card.far
        c.hung_up_ms = at
        self.fm.silence(c.trunk)
        if c.answered_ms is None:
            far.ring(c.trunk, False, at_tick=at)
        elif c.disconnect == "polarity":
            far.signal(c.trunk, EventType.POLARITY, 1, at_tick=at)
            far.signal(c.trunk, EventType.POLARITY, 0, at_tick=at + 800)
        elif c.disconnect == "busy":
            self.fm.tone(c.trunk, self.zone, "busy")     # the exchange plays busy until we release
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
        if p.caller_ids and p._ring_cid_ok:
            number = getattr(p.caller_ids[-1], "number", None)
            for c in waiting:
                if c.ani == number:
                    return c
        return waiting[0] if waiting else None

    # -- far-side events ----------------------------------------------------------

    def _line_event(self, tick: int, chan: int, typ: int, value: int) -> None:
        if chan in self.phones:
            p = self.phones[chan]
            if typ in (EventType.RING_ON, EventType.RING_OFF):
                p.rings.append((tick, typ))
                if typ == EventType.RING_ON and p._ring_started is None and not p.off_hook:
                    p._ring_started = tick
                    p._ring_cid_ok = False
                    p.cid_reader.reset()
                    if p.answers:
                        p._answer_at = tick + p.answer_after_ms
            elif typ == EventType.BATTERY:
                p.battery.append((tick, value))
                if value == 0 and p.off_hook:
                    p._hangup_at = tick + 1500     # the agent hears the line go, hangs up
                    if self.fm is not None:
                        self.fm.silence(p.port)
            if typ == EventType.RING_OFF and p.off_hook:
                p._ring_started = None
        elif typ == EventType.HOOK_OFF:
            c = self._ringing.pop(chan, None)
            if c is not None:
                c.answered_ms = tick
                self._calls[chan] = c
        elif typ == EventType.HOOK_ON:
            if chan in self._busy_until_release and self.fm is not None:
                self._busy_until_release.discard(chan)
                self.fm.stop_tone(chan)
            c = self._calls.get(chan)
            if c is not None and c.hung_up_ms is None:
                c.hung_up_ms = tick    # we released the call
                self._calls.pop(chan, None)
                if self.fm is not None:
                    self.fm.silence(chan)
        self.log.append((tick, EventType(typ).name, chan, value))

    def _far_event(self, ev: Any) -> None:
        p = self.phones.get(ev.chan)
        if ev.type == EventType.FSK_BYTE and p is not None:
            msg = p.cid_reader.feed(ev.value)
            if msg is not None:
                try:
                    p.caller_ids.append(callerid.decode_fsk_message(msg))
                    p._ring_cid_ok = p._ring_started is not None
                except Exception as exc:
                    log.info("phone %d: caller ID not understood: %s", ev.chan, exc)


def _cid(c: Caller) -> callerid.CallerId:
    return callerid.CallerId(number=c.ani, name=None, month=1, day=1, hour=0, minute=0, number_absent=None,
                             name_absent=None, call_type=None)
