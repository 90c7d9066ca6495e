"""The fuzzer's far side: a seeded exchange behind every FXO trunk and a seeded person at
every FXS phone.

:class:`FuzzWorld` is attached to an :class:`~appliance.engine.Engine` the way
:class:`appliance.world.World` is (``attach``, ``before_period``, ``after_period``) and
reaches the sim card only through ``card.far`` (ring, hook, signal, write, poll), with a
far-side media tier of its own for DTMF, FSK caller ID and tones. Every choice comes
from one ``random.Random``, and the engine runs in virtual time, so a seed replays
tick for tick (``python -m tests.fuzz.test_fuzz --seed N -v`` prints the script).

Only physically possible things happen:

- Callers come one at a time on each trunk, each with a number of its own. The
  exchange sends caller ID as the trunk expects (DTMF ``A``number``C`` before ring 1,
  or Bell 202 / V.23 FSK 500 ms after ring 1), or withholds it, or sends a "private"
  absence code; it rings with the zone's cadence and stops ringing when the trunk
  answers. A caller gives up at any moment before the answer (ringing stops), presses
  digits at legal DTMF timing after it, and hangs up at any moment (the exchange then
  drops battery for 800 ms, reverses polarity for 800 ms or plays busy tone until the
  line is released, by one of the trunk's own disconnect signals), or waits until the
  appliance releases the line. The next caller comes a while after the line is free.
  A trunk that goes off hook with nobody calling gets dial tone, then busy tone.
- People at the phones go off hook, dial feature codes (``*21<agent>#``, ``*22``,
  ``*23``, ``*24``) and garbage, flash (and bounce), hang up at any moment; when the
  phone rings they answer soon, late or never; when the far end goes (open loop) they
  hang up, soon or late.
- At ``active_ms`` every caller leaves and every phone goes on hook; after that the far
  side does nothing (the quiet period) but answer the line: a released trunk ends its
  busy tone.

What happened is in :attr:`FuzzWorld.script` (tick, line, action), the callers in
:attr:`FuzzWorld.callers`, the appliance's seizures of the trunks (far side's HOOK_OFF)
in :attr:`FuzzWorld.answers`.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.config import SiteConfig
from appliance.world.world import sine
from drivers.hal import EventType
from dsp import scheduler as dsp_sched
from dsp.scheduler import Scheduler
from e1t1.analog import callerid

AGENTS = ("1001", "1002", "1003", "1004")
FSK = {"fsk_bell202": "bell202", "v23": "v23"}
MAX_RINGS = 12                 # the exchange stops ringing after this many (a minute in cn)
RESTORE_MS = 800               # battery or polarity back this long after a disconnect signal
PRESSES = ("1", "1", "1", "1", "2", "2", "2", "9", "0", "5", "#", "*", "12", "11")


def fuzz_site(rng: random.Random) -> str:
    """A random small site: 1-3 trunks (mostly 2 or 3; caller ID mode, answer ring and disconnect
    signals drawn), 1-3 phones, one agent more than phones (the extra one without a phone of
    their own), two queues sharing agents, one IVR."""
    ntrunks, nphones = rng.choice([1, 2, 2, 3, 3]), rng.randint(1, 3)
    ports = []
    for i in range(1, ntrunks + 1):
        cid = rng.choice(["fsk_bell202", "v23", "dtmf", "none"])
        disconnect = ", ".join(rng.sample(["battery", "polarity", "busy"], rng.randint(1, 3)))
        ports.append(f"  - {{kind: fxo, name: trunk{i}, number: '07558888000{i}', callerid: {cid}, "
                     f"answer_on_ring: {rng.randint(1, 3)}, disconnect: [{disconnect}]}}")
    ports += [f"  - {{kind: fxs, name: phone{i}, extension: '80{i:02d}'}}" for i in range(1, nphones + 1)]
    agents = list(AGENTS[:nphones + 1])
    concierge = rng.sample(agents, rng.randint(1, len(agents)))
    law, k, ivr_timeout, repeats = rng.choice(["alaw", "ulaw"]), rng.choice([2, 4, 5, 10]), \
        rng.choice([2000, 3500, 5000]), rng.randint(0, 2)
    lines = ["site: {name: Fuzz Hotel, zone: cn, law: " + law + ', epoch: "2026-03-01T09:30:00"}',
             f"card: {{backend: sim, k: {k}}}", "ports:", *ports,
             "spans: []", "routes:", *[f"  - {{trunk: trunk{i}, ivr: main}}" for i in range(1, ntrunks + 1)],
             "ivrs:", "  main:", "    greeting: welcome", "    language: en",
             "    menu: {'1': {queue: front_desk}, '2': {queue: concierge}, '9': {hangup: true}, "
             "'0': {repeat: true}}",
             f"    timeout_ms: {ivr_timeout}", f"    max_repeats: {repeats}",
             "queues:",
             f"  front_desk: {{agents: {agents}, ring_timeout_ms: {rng.randint(4, 15) * 1000}}}",
             f"  concierge: {{agents: {concierge}, ring_timeout_ms: {rng.randint(4, 15) * 1000}}}",
             "agents:"]
    lines += [f"  - {{number: '{a}', name: 'Agent {a}'" + (f", phone: phone{n + 1}}}" if n < nphones else "}")
              for n, a in enumerate(agents)]
    return "\n".join(lines) + "\n"


@dataclass
class FarCaller:
    """One caller, as the exchange saw the call."""

    trunk: int
    ani: str
    came_ms: int
    cid: str                           # what the exchange sends: number | private | withheld
    cid_done_ms: int | None = None     # the whole caller ID had been sent by then
    last_ring_ms: int | None = None    # the end of the last ring (or the moment ringing stopped)
    answered_ms: int | None = None     # the trunk went off hook for this caller
    left_ms: int | None = None
    how: str = ""                      # how the call ended, as the far side saw it


def _cid(c: FarCaller) -> callerid.CallerId:
    if c.cid == "private":
        return callerid.CallerId(month=3, day=1, hour=9, minute=30, number_absent="P")
    return callerid.CallerId(number=c.ani, month=3, day=1, hour=9, minute=30)


class _Actor:
    """The far side of one line: an agenda of (tick, tag, action), run period by period."""

    def __init__(self, world: FuzzWorld, chan: int, name: str) -> None:
        self.w = world
        self.rng = world.rng
        self.chan = chan
        self.name = name
        self._todo: list[tuple[int, int, str, Callable[[int], None]]] = []

    def at(self, tick: int, tag: str, action: Callable[[int], None]) -> None:
        heapq.heappush(self._todo, (tick, next(self.w.seq), tag, action))

    def cancel(self, *tags: str) -> None:
        self._todo = [e for e in self._todo if e[2] not in tags]
        heapq.heapify(self._todo)

    def run(self, now: int, end: int) -> None:
        while self._todo and self._todo[0][0] < end:
            tick, _, _, action = heapq.heappop(self._todo)
            action(max(tick, now))

    def log(self, tick: int, what: str) -> None:
        self.w.script.append((tick, self.name, what))

    def line_event(self, tick: int, typ: int, value: int) -> None:
        raise NotImplementedError

    def media_done(self, tick: int) -> None:
        """The far-side generator on this line finished a DTMF string or an FSK message."""


class Exchange(_Actor):
    """The exchange behind one FXO trunk, and its callers, one after another."""

    def __init__(self, world: FuzzWorld, chan: int, name: str, cid: str, disconnect: tuple[str, ...]) -> None:
        super().__init__(world, chan, name)
        self.cid = cid
        self.disconnect = disconnect
        self.caller: FarCaller | None = None
        self.state = "free"        # free, cid (DTMF before ring 1), ringing, up, gone (hung up), seized
        self.ring_is_on = False
        self.rings = 0
        self.cid_sending = False
        self.polarity = 0
        self.line_free_ms = 0      # battery and polarity are back by then
        self.at(self.rng.randint(300, 8000), "next", self.new_caller)

    def next_caller(self, t: int) -> None:
        r = self.rng.random()
        gap = self.rng.randint(200, 1000) if r < 0.15 else self.rng.randint(1000, 8000) if r < 0.75 \
            else self.rng.randint(8000, 20000)
        self.cancel("next")
        self.at(max(t, self.line_free_ms) + gap, "next", self.new_caller)

    def new_caller(self, t: int) -> None:
        if t >= self.w.active_ms:
            return
        r = self.rng.random()
        kind = "withheld" if self.cid == "none" or r < 0.1 else "private" if r < 0.2 else "number"
        c = FarCaller(self.chan, self.w.next_ani(), t, kind)
        self.w.callers.append(c)
        self.caller = c
        self.rings = 0
        self.log(t, f"caller {c.ani} comes ({'caller ID: ' + c.cid if c.cid != 'withheld' else 'no caller ID'})")
        first = t
        if self.cid == "dtmf" and c.cid != "withheld":
            on, off = self.rng.randint(50, 90), self.rng.randint(50, 90)
            digits = callerid.encode_dtmf_clip(_cid(c))
            self.w.fm.dtmf_tx(self.chan, digits, on, off)
            self.cid_sending = True
            self.state = "cid"
            self.log(t, f"DTMF caller ID {digits} ({on}/{off} ms)")
            first = t + len(digits) * (on + off) + self.rng.randint(300, 1500)
        else:
            self.state = "ringing"
        self.at(first, "ring", self.ring)
        if self.rng.random() < 0.4:     # impatient: gives up at a random moment unless answered first
            self.at(t + self.rng.randint(0, 20000), "giveup", self.give_up)

    def ring(self, t: int) -> None:
        assert self.caller is not None
        self.rings += 1
        if self.rings > MAX_RINGS:
            self.give_up(t, "the exchange stops ringing")
            return
        self.state = "ringing"
        on, off, _, _ = dsp_sched.ring_cadence(self.w.zone)
        self.w.far.ring(self.chan, True, at_tick=t)
        self.ring_is_on = True
        self.log(t, f"ring {self.rings}")
        self.at(t + on, "ring", self.ring_off)
        self.at(t + on + off, "ring", self.ring)
        if self.rings == 1 and self.cid in FSK and self.caller.cid != "withheld":
            self.at(t + on + self.rng.randint(500, 700), "cid", self.send_fsk)

    def ring_off(self, t: int) -> None:
        self.w.far.ring(self.chan, False, at_tick=t)
        self.ring_is_on = False
        if self.caller is not None:
            self.caller.last_ring_ms = t

    def send_fsk(self, t: int) -> None:
        assert self.caller is not None
        self.w.fm.fsk_tx(self.chan, callerid.encode_mdmf(_cid(self.caller)), FSK[self.cid])
        self.cid_sending = True
        self.log(t, f"FSK caller ID ({self.cid})")

    def media_done(self, tick: int) -> None:
        if self.cid_sending and self.caller is not None:
            self.cid_sending = False
            self.caller.cid_done_ms = tick
            self.log(tick, "caller ID sent")

    def _stop_media(self) -> None:
        self.w.fm.silence(self.chan)
        self.cid_sending = False

    def give_up(self, t: int, why: str = "gives up") -> None:
        """The caller goes before the trunk answered: ringing (or the caller ID) stops."""
        if self.state not in ("cid", "ringing") or self.caller is None:
            return
        self.cancel("ring", "cid", "giveup")
        self._stop_media()
        if self.ring_is_on:
            self.ring_off(t)
        self.caller.left_ms, self.caller.how = t, why
        self.log(t, f"caller {self.caller.ani} {why}")
        self.caller, self.state = None, "free"
        self.next_caller(t)

    def answered(self, t: int) -> None:
        self.w.answers.append((self.chan, t))
        if self.state not in ("cid", "ringing") or self.caller is None:
            # Nobody is calling (the caller went as we answered): dial tone, later busy.
            self.state = "seized"
            self.log(t, "trunk seized with nobody calling: dial tone")
            self.w.fm.tone(self.chan, self.w.zone, "dial")
            self.at(t + 10000, "seized", lambda tt: self.w.fm.tone(self.chan, self.w.zone, "busy"))
            return
        c = self.caller
        c.answered_ms = t
        self.state = "up"
        self.cancel("ring", "cid", "giveup")
        self.ring_is_on = False         # ring trip: the exchange stops ringing a line off hook
        if self.cid_sending:
            self._stop_media()
        self.log(t, f"trunk answers caller {c.ani}")
        when = t
        for _ in range(self.rng.choice([0, 1, 1, 1, 1, 2, 3])):
            when += self.rng.randint(300, 6000)
            self.at(when, "press", functools.partial(self.press, self.rng.choice(PRESSES)))
        r = self.rng.random()
        hang = self.rng.randint(0, 1500) if r < 0.1 else self.rng.randint(1500, 15000) if r < 0.45 \
            else self.rng.randint(15000, 40000) if r < 0.85 else None
        if hang is not None:
            self.at(t + hang, "hangup", self.hang_up)

    def press(self, digits: str, t: int) -> None:
        on, off = self.rng.randint(45, 110), self.rng.randint(45, 130)
        self.w.fm.silence(self.chan)
        self.w.fm.dtmf_tx(self.chan, digits, on, off)
        self.log(t, f"presses {digits} ({on}/{off} ms)")
        if self.rng.random() < 0.5:
            self.at(t + len(digits) * (on + off) + 100, "press", self.talk)

    def talk(self, t: int) -> None:
        self.w.fm.play(self.chan, self.w.voice(self.rng.choice([600.0, 800.0, 1020.0])))

    def hang_up(self, t: int) -> None:
        """The caller hangs up after the answer: the exchange signals it."""
        if self.state != "up" or self.caller is None:
            return
        self.cancel("press", "hangup")
        self._stop_media()
        how = self.rng.choice(self.disconnect)
        self.caller.left_ms, self.caller.how = t, f"hung up ({how})"
        self.state = "gone"
        self.log(t, f"caller {self.caller.ani} hangs up: {how}")
        far = self.w.far
        if how == "battery":
            far.signal(self.chan, EventType.BATTERY, 0, at_tick=t)
            self.at(t + RESTORE_MS, "restore", lambda tt: far.signal(self.chan, EventType.BATTERY, 1, at_tick=tt))
        elif how == "polarity":
            self.polarity ^= 1
            far.signal(self.chan, EventType.POLARITY, self.polarity, at_tick=t)
            self.at(t + RESTORE_MS, "restore", self._polarity_back)
        else:
            self.w.fm.tone(self.chan, self.w.zone, "busy")     # until the line is released
        self.line_free_ms = t + RESTORE_MS

    def _polarity_back(self, t: int) -> None:
        self.polarity ^= 1
        self.w.far.signal(self.chan, EventType.POLARITY, self.polarity, at_tick=t)

    def released(self, t: int) -> None:
        """The trunk went on hook: whatever call there was is over."""
        if self.state == "up" and self.caller is not None:
            self.caller.left_ms, self.caller.how = t, "released by the appliance"
            self.log(t, f"trunk releases caller {self.caller.ani}")
        else:
            self.log(t, "trunk on hook")
        self.cancel("press", "hangup", "seized")
        self._stop_media()
        self.caller, self.state = None, "free"
        self.next_caller(t)

    def line_event(self, tick: int, typ: int, value: int) -> None:
        if typ == EventType.HOOK_OFF:
            self.answered(tick)
        elif typ == EventType.HOOK_ON:
            self.released(tick)

    def close(self, t: int) -> None:
        """End of the active part: nobody new calls; whoever is on the line goes."""
        self.cancel("next")
        if self.state in ("cid", "ringing"):
            self.give_up(t, "leaves (end of the run)")
        elif self.state == "up":
            self.hang_up(t)


class Person(_Actor):
    """Whoever is at the phone on one FXS port."""

    def __init__(self, world: FuzzWorld, chan: int, name: str, own_agent: str | None) -> None:
        super().__init__(world, chan, name)
        self.own_agent = own_agent
        self.off_hook = False
        self.last_ring_on: int | None = None
        if own_agent is not None and self.rng.random() < 0.85:
            self.at(self.rng.randint(200, 3000), "episode", functools.partial(self.lift_and_dial, f"*21{own_agent}#"))
        else:
            self.at(self.rng.randint(500, 20000), "episode", self.episode)

    def code(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            s = self.rng.random()
            agent = self.own_agent if s < 0.7 and self.own_agent else self.rng.choice(AGENTS) if s < 0.9 else "9999"
            return f"*21{agent}#"
        for code, p in (("*23", 0.5), ("*24", 0.62), ("*22", 0.7), ("*23#", 0.75)):
            if r < p:
                return code
        return "".join(self.rng.choice("0123456789*#") for _ in range(self.rng.randint(1, 6)))

    def episode(self, t: int) -> None:
        if self.w.closed(t):
            return
        if self.off_hook:
            self.at(t + self.rng.randint(2000, 10000), "episode", self.episode)
            return
        r = self.rng.random()
        if r < 0.65:
            self.lift_and_dial(self.code(), t)
        elif r < 0.85:
            self.go_off_hook(t, "off hook (no digits)")
            stay = self.rng.randint(300, 20000)
            if self.rng.random() < 0.4:
                self.at(t + self.rng.randint(100, stay), "hang", self.flash)
            self.at(t + stay, "hang", self.go_on_hook)
        else:
            self.at(t + self.rng.randint(1000, 15000), "episode", self.episode)

    def lift_and_dial(self, code: str, t: int) -> None:
        if self.off_hook:
            return
        self.go_off_hook(t, "off hook")
        self.at(t + self.rng.randint(200, 1500), "dial", functools.partial(self.dial, code))

    def dial(self, code: str, t: int) -> None:
        on, off = self.rng.randint(45, 110), self.rng.randint(45, 120)
        self.w.fm.dtmf_tx(self.chan, code, on, off)
        self.log(t, f"dials {code} ({on}/{off} ms)")
        after = t + len(code) * (on + off) + self.rng.randint(200, 4000)
        r = self.rng.random()
        if r < 0.7:
            self.at(after, "hang", self.go_on_hook)
        elif r < 0.85:
            self.at(after, "hang", self.flash)
            self.at(after + self.rng.randint(1500, 3000), "dial", functools.partial(self.dial, self.code()))
        else:
            self.at(after + self.rng.randint(10000, 35000), "hang", self.go_on_hook)

    def go_off_hook(self, t: int, why: str) -> None:
        self.w.far.hook(self.chan, True, at_tick=t)
        self.off_hook = True
        self.log(t, why)

    def go_on_hook(self, t: int) -> None:
        if not self.off_hook:
            return
        self.w.far.hook(self.chan, False, at_tick=t)
        self.off_hook = False
        self.w.fm.silence(self.chan)
        self.cancel("dial", "hang", "flash", "episode")
        self.log(t, "on hook")
        quick = self.rng.random() < 0.1       # back off hook inside the flash window: a flash
        self.at(t + (self.rng.randint(300, 1100) if quick else self.rng.randint(1500, 15000)), "episode",
                self.episode)

    def flash(self, t: int) -> None:
        if not self.off_hook:
            return
        ms = self.rng.randint(20, 90) if self.rng.random() < 0.15 else self.rng.randint(150, 1000)
        self.w.far.hook(self.chan, False, at_tick=t)
        self.at(t + ms, "flash", lambda tt: self.w.far.hook(self.chan, True, at_tick=tt))
        self.log(t, f"flash ({ms} ms on hook)")

    def answer(self, t: int) -> None:
        if self.off_hook or self.w.closed(t):
            return
        self.go_off_hook(t, "answers")
        hold = self.rng.randint(500, 40000)
        r = self.rng.random()
        if r < 0.1:
            self.at(t + self.rng.randint(100, hold), "hang", self.flash)
        elif r < 0.2:
            self.at(t + self.rng.randint(100, hold), "dial", functools.partial(self.dial, self.code()))
        self.at(t + hold, "hang", self.go_on_hook)

    def line_event(self, tick: int, typ: int, value: int) -> None:
        if typ == EventType.RING_ON:
            on, off, _, _ = dsp_sched.ring_cadence(self.w.zone)
            new = self.last_ring_on is None or tick - self.last_ring_on > on + off + 500
            self.last_ring_on = tick
            if not new or self.off_hook or self.w.closed(tick):
                return
            r = self.rng.random()
            if r < 0.2:
                self.log(tick, "rings (will not answer)")
                return
            delay = self.rng.randint(200, 5000) if r < 0.8 else self.rng.randint(5000, 25000)
            self.log(tick, f"rings (will answer after {delay} ms)")
            self.cancel("answer")
            self.at(tick + delay, "answer", self.answer)
        elif typ == EventType.BATTERY and value == 0 and self.off_hook:
            late = self.rng.random() < 0.25
            delay = self.rng.randint(2500, 15000) if late else self.rng.randint(100, 2500)
            self.log(tick, f"open loop (hangs up after {delay} ms)")
            self.cancel("hang", "dial")
            self.at(tick + delay, "hang", self.go_on_hook)

    def close(self, t: int) -> None:
        self.cancel("episode", "answer", "dial", "hang", "flash")
        if self.off_hook:
            self.go_on_hook(t)


class FuzzWorld:
    """The far side of every analog port, drawn from `rng`, for an engine on the sim card."""

    def __init__(self, config: SiteConfig, rng: random.Random, active_ms: int) -> None:
        self.config = config
        self.rng = rng
        self.active_ms = active_ms
        self.zone = config.site.zone
        self.seq = itertools.count()
        self.script: list[tuple[int, str, str]] = []
        self.callers: list[FarCaller] = []
        self.answers: list[tuple[int, int]] = []      # (trunk, tick) each time a trunk went off hook
        self.after: list[Callable[[int], None]] = []  # called after each period (observers)
        self._voices: dict[float, array[int]] = {}
        self._anis = itertools.count(1)

    def next_ani(self) -> str:
        return f"1390{next(self._anis):07d}"

    def voice(self, hz: float) -> array[int]:
        if hz not in self._voices:
            self._voices[hz] = sine(hz, 30000, -15.0)
        return self._voices[hz]

    def closed(self, t: int) -> bool:
        return t >= self.active_ms

    # -- the World protocol ---------------------------------------------------------

    def attach(self, engine: Any) -> None:
        far = engine.far_side
        if far is None:
            raise TypeError("the fuzzer's far side needs the sim card's far side in process")
        self.far = far
        self.nports = len(engine.desc.ports)
        self.fm = Scheduler(self.nports, engine.desc.law)
        self._idle = bytes([0xD5 if engine.desc.law == "alaw" else 0xFF])
        agents_at = {a.phone: a.number for a in self.config.agents}
        self.lines: dict[int, Exchange | Person] = {}
        for chan, port in enumerate(self.config.ports):
            if port.kind == "fxo":
                self.lines[chan] = Exchange(self, chan, port.name, port.callerid, tuple(port.disconnect))
            else:
                self.lines[chan] = Person(self, chan, port.name, agents_at.get(port.name))
        for line in self.lines.values():
            line.at(self.active_ms, "close", line.close)

    def before_period(self, now: int, period: int) -> None:
        for line in self.lines.values():
            line.run(now, now + period)
        per = period * 8
        tx = self.fm.process(now, period, self._idle * (per * self.nports))
        for ch in range(self.nports):
            self.far.write(ch, tx[ch * per:(ch + 1) * per])
        for ev in self.fm.events():
            if ev.type in (EventType.FSK_TX_DONE, EventType.DTMF_TX_DONE) and ev.chan in self.lines:
                self.lines[ev.chan].media_done(ev.tick)

    def after_period(self, now: int) -> None:
        for ev in self.far.poll():
            if ev.chan in self.lines:
                self.lines[ev.chan].line_event(ev.tick, ev.type, ev.value)
        for observe in self.after:
            observe(now)

    def script_text(self, start: int = 0, end: int | None = None) -> str:
        return "\n".join(f"{t:>9} ms  {name:<8} {what}" for t, name, what in self.script
                         if t >= start and (end is None or t <= end))
