"""Callers, phones and the exchange on the far side of the sim card.

The world's work per control period follows its events, not its size: what the
callers, phones and the exchange do next waits on an agenda (a heap by tick,
then by the order it was put there), and a period takes only what falls due in
it. The period's far-side audio goes to the card and comes back in one call
each way, through buffers made once; it is made by a far-side media tier of its
own, whose talk is a looped buffer preloaded with its G.711 octets (sample for
sample the sine a whole call's array would hold). A phone's caller ID receiver
runs only while the phone rings (with a margin for the caller ID between rings),
and only then does the world hear what the card sends on that line (on every
line when it keeps the audio, for tests).

Within a period the agenda keeps the order in which the world has always looked
at its parts: the agents' logins first, then the callers (each caller's start,
rings, caller ID, digits, talk and hang-up, in that order), then the phones
(answer, then hang-up), the callers in the order they were given (a list) or,
from a traffic generator, by trunk and arrival; a step scheduled for a point of
the period already passed waits for nothing (as a check made once a period
would not see it either).

On the site's PRI spans the exchange is the world's far exchange (appliance.world.exchange):
its clock follows the periods, its D-channel frames are read at each period's end, and its
callers' audio and digits are the far-side media tier's on their B-channels' card channels
(with PRI spans that tier covers every card channel: the ports, then each span's timeslots).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from appliance.world.exchange import PriExchange, PriSpan
from drivers.hal import EventType
from drivers.sim import FarSide
from dsp import scheduler as dsp_sched
from dsp.scheduler import PlayBuffer, Scheduler, ffi
from e1t1.analog import callerid
from e1t1.isdn.events import CallAlerting, CallAnswered, CallOffered, CallProceeding, CallReleased, PriEvent

log = logging.getLogger("cicbox.world")

TALK_MS = 600000        # a caller's or a phone's talk lasts at most this long (then silence)
LOG_MAX = 10000         # World.log keeps the newest this many entries
HISTORY_MAX = 64        # traffic: a phone keeps at most this many of each observation list
RING_POINTS = 80        # the exchange rings a caller 40 times at most (on and off)
RING_SILENT_MS = 5000   # a phone silent this long has stopped ringing (longer than every zone's ring pause)
NOBODY_HANGUP_MS = 2000  # a person who picks up a call another phone took hangs up this long after


def sine(freq: float, ms: int, dbm0: float = -10.0) -> array[int]:
    """A sine of `ms` milliseconds at `dbm0` as 16-bit samples."""
    n = ms * 8
    amp = 32768 * 10 ** ((dbm0 - 3.14) / 20)
    x = np.round(amp * np.sin(2 * np.pi * freq * np.arange(n) / 8000)).astype(np.int16)
    return array("h", x.tobytes())


@lru_cache(maxsize=64)
def talk_buffer(freq: float, law: str) -> PlayBuffer:
    """What `sine(freq, TALK_MS)` holds, as a buffer to play round: its first whole seconds over
    which it repeats sample for sample (checked against the whole array, once per frequency),
    with their `law` octets; the whole array where no such loop exists."""
    full = np.frombuffer(sine(freq, TALK_MS).tobytes(), dtype=np.int16)
    for secs in (1, 2, 4, 5, 10, 20):
        n = secs * 8000
        if float(freq * secs).is_integer() and len(full) % n == 0 and \
                np.array_equal(full.reshape(-1, n), np.broadcast_to(full[:n], (len(full) // n, n))):
            return PlayBuffer(full[:n].tobytes(), law)
    return PlayBuffer(full.tobytes(), law)


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


class FarLine(Protocol):
    """What the line beyond a port does to the card's signal: a 2-wire hybrid returning part of it as
    echo, say (tests give one; the world's own lines return nothing). Samples are 16-bit linear at 8 kHz."""

    def returns(self, sent: Any) -> Any:
        """Given what the card sent the port in one control period (a numpy int16 array), what the line
        adds to what the far side sends in the next (the same number of samples, any numeric dtype)."""
        ...


@dataclass(eq=False)
class Caller:
    """A caller on the exchange side of an FXO trunk.

    Rings `trunk` (a port index; None: the exchange hunts the trunk group, the
    lowest-numbered free FXO trunk, and the caller is blocked if none is) at
    `at_ms` with caller ID `ani` (sent as the trunk expects: FSK after ring 1,
    or DTMF before ring 1; `cid` None takes the standard of the trunk hunted,
    from the world's `trunk_cid`; `cid_audio`, if set, is sent in its place as
    made elsewhere), presses `digits` `press_after_ms` after the trunk
    answered, sends `talk_hz` once connected, and hangs up `hold_ms` after an
    agent answered, or `patience_ms` after pressing (or after the first ring,
    if the trunk never answers) if nobody answers.

    On a PRI span (`span`, the span's name; or hunted there, `trunk` and `span` None, when no FXO
    trunk is free) the far exchange places the call instead: SETUP with ANI `ani` of type `ani_ton`,
    plan `ani_npi` and presentation `ani_pres`, DNIS `dnis` (None: the span's number) en bloc; the
    call's CONNECT is its answer (`answered_ms`), its digits and talk go on its B-channel
    (`timeslot`), the hang-up is a DISCONNECT (16), and `cause` keeps the cause of the clearing.
    """

    trunk: int | None
    at_ms: int
    ani: str | None = "13800138000"
    digits: str = "1"
    press_after_ms: int = 3000
    hold_ms: int = 30000
    patience_ms: int = 600000
    talk_hz: float = 1020.0
    cid: str | None = "fsk_bell202"       # fsk_bell202 | v23 | dtmf | none; None: as the hunted trunk expects
    press_audio: array[int] | None = None   # if set, these samples are sent instead of generated digits
    cid_audio: array[int] | None = None     # if set, these samples are sent instead of generated caller ID
    disconnect: str = "battery"    # how the exchange signals the hang-up: battery | polarity | busy
    span: str | None = None        # a PRI span's name: the far exchange places the call there
    dnis: str | None = None        # PRI: the called number (None: the span's)
    ani_ton: str = "national"      # PRI: the calling number's type of number, plan and presentation
    ani_npi: str = "isdn"
    ani_pres: str = "allowed"
    # outcome
    blocked: bool = False              # the trunk was busy when the caller came
    rang_ms: list[int] = field(default_factory=list)   # the tick of each ring the exchange sent
    answered_ms: int | None = None     # the trunk went off hook
    connected_ms: int | None = None    # an agent picked up
    hung_up_ms: int | None = None
    heard: bytearray = field(default_factory=bytearray)   # what the caller heard (card's octets), from answer
    timeslot: int | None = None        # PRI: the call's B-channel
    cause: int | None = None           # PRI: the cause of the call's clearing (Q.850)


@dataclass(eq=False)
class OutboundCall:
    """A call the appliance placed toward the far exchange on a PRI span: the exchange takes it
    (CALL PROCEEDING, ALERTING), answers it `pri_answer_ms` later (the world's; None: it rings until
    the appliance gives up) and sends its talk; the appliance clears it."""

    span: str
    call_id: int
    ani: str | None
    dnis: str
    timeslot: int | None
    offered_ms: int
    answered_ms: int | None = None
    released_ms: int | None = None
    cause: int | None = None


@dataclass
class _CallerTrack:
    """The world's bookkeeping for one caller while it is in the world."""

    rank: tuple[int, ...]               # its place among the callers (the order they are looked at)
    started: bool = False
    ring_from: int = 0                  # tick of ring 1
    ring_on: int = 0                    # the zone's ring cadence, ms on and off
    ring_off: int = 0
    talk_at: int | None = None
    chan: int | None = None             # the card channel of the caller's audio (its trunk, or its B-channel)
    call: Any = None                    # PRI: the far exchange's call (e1t1.isdn.call.Call)


@dataclass(eq=False)
class PhoneScript:
    """A phone on an FXS port: an agent who logs in and answers.

    At `login_at_ms` the phone goes off hook and dials `login` (default *21<agent>#); it answers
    a ring after `answer_after_ms`, sends `talk_hz` while connected (or `talk_audio`, once, if
    set: 16-bit linear samples made elsewhere), hangs up when it hears the far end go (open
    loop), or `hang_up_after_ms` after answering if set.
    """

    port: int
    agent: str | None = None
    login_at_ms: int | None = 0
    answer_after_ms: int = 3000
    talk_hz: float = 587.0
    talk_audio: array[int] | None = None    # if set, sent once from the answer instead of talk_hz's sine
    hang_up_after_ms: int | None = None
    answers: bool = True
    login: str | None = None          # the digits dialled to log in (None: *21<agent>#)
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

    rank: int
    ring_started: int | None = None
    answer_at: int | None = None
    hangup_at: int | None = None
    ring_cid_ok: bool = False          # caller ID came during the current ringing
    cid_until: int | None = None       # the caller ID receiver stops then (None: on while ringing)
    cid_on: bool = False               # the caller ID receiver runs
    last_ring_ms: int | None = None    # the last ring on or off the phone had


# The order of the world's looks within a period (see the module's docstring).
_LOGINS, _CALLERS, _PHONES, _RECEIVERS, _OUTBOUND = 0, 1, 2, 3, 4
_START, _RING, _CID, _PRESS, _TALK, _HANG = range(6)       # a caller's steps
_ANSWER, _HANGUP = range(2)                                # a phone's
_Step = Callable[[int, Any], None]
_Order = tuple[Any, ...]


class World:
    """The far side of every analog port, as one scripted world.

    It reaches the card only through the card's far side (:attr:`far`, taken from the
    engine's public ``far_side`` when attached). Its own signals come from a far-side
    media tier of its own (our kernels, for the demo), or from `signals` where it makes
    or reads DTMF, caller ID and the busy tone (the end-to-end tests give spandsp).

    `callers`: a list (a scenario: :attr:`callers` keeps it, every caller with its outcome),
    or an iterator in order of ``at_ms`` (traffic: callers are taken as they come and let go
    once finished, unless `keep_callers`; :attr:`counts` keeps the outcomes). `trunk_cid`:
    the caller ID each FXO trunk expects, for callers hunted onto the trunk group with
    ``cid`` None. `far_lines`: by port, what the line beyond it does to the card's signal
    (:class:`FarLine`: an echo path, in tests); the world hears every such port.

    `pri_spans`: the site's PRI spans (appliance.world.exchange.pri_spans), whose far end the world's
    far exchange plays with our own stack, other side (:attr:`exchange`); its callers are those with
    a ``span``, and those hunted when no FXO trunk is free. A call the appliance places on one is
    taken and answered `pri_answer_ms` later (None: never answered), kept in :attr:`outbound`.
    :attr:`answered_by_kind` counts the callers' calls the appliance answered by the kind of line
    that answered (``fxo``: the trunk went off hook; ``pri``: its CONNECT), :attr:`connected_by_kind`
    those an agent then picked up.
    """

    def __init__(self, callers: Iterable[Caller] | None = None, phones: list[PhoneScript] | None = None,
                 zone: str = "cn", keep_audio: bool = False, signals: FarSignals | None = None, *,
                 trunk_cid: Mapping[int, str] | None = None, keep_callers: bool | None = None,
                 far_lines: Mapping[int, FarLine] | None = None, pri_spans: Sequence[PriSpan] = (),
                 pri_answer_ms: int | None = 2000) -> None:
        scenario = callers is None or isinstance(callers, Sequence)
        self.callers: list[Caller] = list(callers or []) if scenario else []
        self._source: Iterator[Caller] | None = None if scenario else iter(callers or [])
        self._keep = scenario if keep_callers is None else keep_callers
        self.phones = {p.port: p for p in phones or []}
        self.zone = zone
        self.keep_audio = keep_audio
        self.signals = signals
        self.trunk_cid = dict(trunk_cid or {})
        self.far: FarSide | None = None
        self.fm: Scheduler | None = None
        self.far_lines = dict(far_lines or {})
        self.nports = 0
        #: the exchange's view of the callers: offered (came), blocked (no free trunk), answered (a
        #: trunk went off hook), connected (an agent picked up), abandoned (hung up before an agent
        #: did), hung_up (after talking to one), released (the appliance hung up on the caller)
        self.counts = dict.fromkeys(("offered", "blocked", "answered", "connected", "abandoned", "hung_up",
                                     "released"), 0)
        self.answered_by_kind = {"fxo": 0, "pri": 0}
        self.connected_by_kind = {"fxo": 0, "pri": 0}
        self.pri_spans = list(pri_spans)
        self.pri_answer_ms = pri_answer_ms
        self.exchange: PriExchange | None = None
        self.outbound: list[OutboundCall] = []
        self._pri_calls: dict[tuple[str, int], Caller] = {}          # (span, call id) -> its caller
        self._outbound_calls: dict[tuple[str, int], tuple[OutboundCall, Any]] = {}
        self._placing: Caller | None = None
        self._pri_started = False
        self.nchan = 0
        self._ringing: dict[int, Caller] = {}    # trunk -> caller being rung
        self._calls: dict[int, Caller] = {}      # trunk -> caller whose call is up
        self._track: dict[Caller, _CallerTrack] = {}
        self._phone_track: dict[PhoneScript, _PhoneTrack] = {}
        self._cid_readers: dict[int, CallerIdReader] = {}
        self.log: deque[tuple[int, str, int, Any]] = deque(maxlen=LOG_MAX)
        self.sent: dict[int, bytearray] = {}     # what the far side sent on each port (keep_audio)
        self._busy_until_release: set[int] = set()
        self._offhook: set[int] = set()          # FXO trunks the appliance holds off hook
        self._free: set[int] = set()             # FXO trunks the exchange may hunt onto
        # the agenda: (tick, seq, order, step, arg); a period's batch: (order, tick, seq, step, arg)
        self._agenda: list[tuple[int, int, _Order, _Step, Any]] = []
        self._batch: list[tuple[_Order, int, int, _Step, Any]] | None = None
        self._at: tuple[_Order, int, int] = ((), 0, 0)
        self._now = self._end = 0
        self._seq = itertools.count()
        self._arrivals = itertools.count()
        self._next_caller: Caller | None = None

    @property
    def in_world(self) -> int:
        """Callers in the world now: taken from the traffic or given, and not yet finished."""
        return len(self._track)

    @property
    def pri_calls(self) -> int:
        """The callers' calls on PRI spans now, from their SETUP to their release (O(1))."""
        return len(self._pri_calls)

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
        # The far side's audio covers the ports and, with PRI spans, every span's timeslots (the card's
        # channels are the ports, then each span's timeslots).
        self.nchan = self.nports
        if self.pri_spans:
            chans = engine.desc.channels()
            self.nchan = len(chans)
            slots = {(c.span, c.timeslot): c.index for c in chans if c.span is not None and c.timeslot is not None}
            self.exchange = PriExchange(self.pri_spans, far, slots, self._pri_event)
        self.fm = Scheduler(max(1, self.nchan), self.law)
        self._std = "v23" if self.zone == "de" else "bell202"
        on, off, on2, off2 = dsp_sched.ring_cadence(self.zone)
        self._cid_margin = max(off, off2) + 1000      # no ring for this long after one: the ringing stopped
        self._ring_on_ms = min(x for x in (on, on2) if x > 0)   # a ring cut shorter than this was withdrawn
        if self.keep_audio:
            for c in range(self.nchan):
                far.listen(c)       # everything the card sends is kept; else only a ringing phone's is heard
        else:
            for c in self.far_lines:
                far.listen(c)       # a line that returns some of it hears it all
        self._dec = np.array([dsp_sched.lib.cb_alaw2lin(o) if self.law == "alaw" else dsp_sched.lib.cb_ulaw2lin(o)
                              for o in range(256)], dtype=np.int16)
        self._free = {c for c in range(self.nports) if self.kinds[c] == "fxo"}
        self._idle = bytes([0xD5 if self.law == "alaw" else 0xFF])
        self._bufs(self.period)
        for i, p in enumerate(self.phones.values()):
            self._phone_track[p] = _PhoneTrack(rank=i)
            talk_buffer(p.talk_hz, self.law)        # made now, not in the middle of a call
        talk_buffer(Caller.talk_hz, self.law)
        # Each agent logs in: off hook, *21<agent># after the dial tone, on hook again.
        steps: list[tuple[int, str, PhoneScript]] = []
        for p in self.phones.values():
            if p.login_at_ms is not None and p.agent:
                at = p.login_at_ms
                steps += [(at, "off", p), (at + 600, "dial", p), (at + 3000, "on", p)]
        for i, (at, what, p) in enumerate(steps):
            self._push(at, (_LOGINS, i), self._login_step, (what, p))
        for i, caller in enumerate(self.callers):
            self._admit(caller, (i,))
        if self._source is not None:
            self._next_caller = next(self._source, None)

    def _bufs(self, period: int) -> None:
        """The far side's buffers for periods of `period` ticks, made once."""
        per = period * 8
        n = max(1, self.nchan)
        self._per = per
        self._rx: Any = ffi.new("uint8_t[]", n * per)
        ffi.memmove(self._rx, self._idle * (n * per), n * per)
        self._tx: Any = ffi.new("uint8_t[]", n * per)
        self._got: Any = ffi.new("int32_t[]", n)

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

    # -- the agenda --------------------------------------------------------------

    def _push(self, tick: int, order: _Order, step: _Step, arg: Any) -> None:
        """`step(tick, arg)` at `tick`. Within the period being run, only if its place in the
        period's order is still ahead; a point already passed is never reached."""
        seq = next(self._seq)
        if self._batch is not None and tick < self._end:
            if tick >= self._now and (order, tick, seq) > self._at:
                heapq.heappush(self._batch, (order, tick, seq, step, arg))
            return
        heapq.heappush(self._agenda, (tick, seq, order, step, arg))

    def _run_agenda(self, now: int, end: int) -> None:
        """Run the steps due in [now, end), in the period's order."""
        agenda = self._agenda
        batch: list[tuple[_Order, int, int, _Step, Any]] = []
        while agenda and agenda[0][0] < end:
            tick, seq, order, step, arg = heapq.heappop(agenda)
            if tick >= now:          # a step due before the period began was never reached
                heapq.heappush(batch, (order, tick, seq, step, arg))
        self._batch, self._now, self._end = batch, now, end
        try:
            while batch:
                order, tick, seq, step, arg = heapq.heappop(batch)
                self._at = (order, tick, seq)
                step(tick, arg)
        finally:
            self._batch = None

    # -- each period ------------------------------------------------------------

    def before_period(self, now: int, period: int) -> None:
        """Queue the far side's signals and audio for ticks [now, now + period)."""
        assert self.far is not None and self.fm is not None
        end = now + period
        nxt = self._next_caller
        while nxt is not None and nxt.at_ms < end:
            self._admit(nxt, (-1 if nxt.trunk is None else nxt.trunk, next(self._arrivals)))
            nxt = next(self._source, None) if self._source is not None else None
        self._next_caller = nxt
        ex = self.exchange
        if ex is not None:
            ex.advance(now)
            if not self._pri_started:
                self._pri_started = True
                ex.start()          # the far end brings its D-channels up, as the appliance does
        agenda = self._agenda
        if agenda and agenda[0][0] < end:
            self._run_agenda(now, end)
        # far-side audio for this period, made from what the card sent last period
        if period * 8 != self._per:
            self._bufs(period)
        fm = self.fm
        fm.process_into(now, period, self._rx, self._tx)
        if self.far_lines:
            self._line_returns()
        self.far.write_all(self._tx, self.nchan, self._per)
        if self.keep_audio:
            per = self._per
            out = ffi.buffer(self._tx)
            for ch in range(self.nchan):
                self.sent.setdefault(ch, bytearray()).extend(out[ch * per:(ch + 1) * per])
        for ev in fm.events():
            if ev.type == EventType.FSK_BYTE:
                self._far_event(ev)

    def _line_returns(self) -> None:
        """Each far line's return of what the card sent it last period, added to what its far side sends."""
        per = self._per
        rx = np.frombuffer(ffi.buffer(self._rx), dtype=np.uint8)
        tx = np.frombuffer(ffi.buffer(self._tx), dtype=np.uint8)
        law = dsp_sched.LAWS[self.law]
        for port, line in self.far_lines.items():
            part = slice(port * per, (port + 1) * per)
            back = np.asarray(line.returns(self._dec[rx[part]]), dtype=np.float64)
            mixed = np.clip(np.round(self._dec[tx[part]] + back), -32768, 32767).astype(np.int16)
            lin = ffi.from_buffer("int16_t[]", mixed)
            dsp_sched.lib.cb_g711_encode(law, lin, self._tx + port * per, per)

    def after_period(self, now: int) -> None:
        """Take what the card sent and the line changes the far side saw."""
        assert self.far is not None
        far = self.far
        per = self._per
        got: dict[int, bytes] = {}
        if self.keep_audio:
            for c in range(self.nchan):
                got[c] = octets = far.read(c)
                ffi.memmove(self._rx + c * per, octets[:per].ljust(per, self._idle), per)
        else:
            far.read_all(self._rx, self.nchan, per, self._got)
        for ev in far.poll():
            self._line_event(ev.tick, ev.chan, ev.type, ev.value)
        if self.exchange is not None:
            self.exchange.receive(now)      # the D-channel frames of the period, at its end
        if self._cid_readers:
            rx = ffi.buffer(self._rx)
            for c, reader in list(self._cid_readers.items()):
                octets = got[c] if self.keep_audio else rx[c * per:c * per + self._got[c]]
                for number in reader.feed(octets):
                    self._phone_caller_id(self.phones.get(c), number)
        if not self.keep_audio:
            return
        for c, octets in got.items():
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

    # -- logins -----------------------------------------------------------------

    def _login_step(self, at: int, arg: tuple[str, PhoneScript]) -> None:
        assert self.far is not None
        what, p = arg
        if what == "off":
            self.far.hook(p.port, True, at_tick=at)
            p.off_hook = True
        elif what == "dial":
            self.dial(p.port, p.login if p.login is not None else f"*21{p.agent}#")
        else:
            self.far.hook(p.port, False, at_tick=at)
            p.off_hook = False

    # -- callers ----------------------------------------------------------------

    def _admit(self, c: Caller, rank: tuple[int, ...]) -> None:
        """A caller enters the world: its start, and its patience's end."""
        self._track[c] = _CallerTrack(rank=rank)
        if self._source is not None and self._keep:
            self.callers.append(c)
        self._push(c.at_ms, (_CALLERS, rank, _START), self._caller_start, c)
        self._push(c.at_ms + c.patience_ms, (_CALLERS, rank, _HANG), self._caller_hang, c)

    def _step_at(self, c: Caller, tick: int, step: int, fn: _Step) -> None:
        self._push(tick, (_CALLERS, self._track[c].rank, step), fn, c)

    def _in_world(self, c: Caller) -> bool:
        """Its steps run while it has not hung up (nor been let go)."""
        return c.hung_up_ms is None and c in self._track

    def _cid_samples(self, c: Caller) -> array[int] | None:
        """The caller's caller ID as samples (made elsewhere), or None: the world's own modem sends it."""
        if c.cid_audio is not None:
            return c.cid_audio
        if self.signals is not None and c.ani:
            return self.signals.caller_id(c.cid or "none", _cid(c))
        return None

    def _caller_start(self, at: int, c: Caller) -> None:
        track = self._track.get(c)
        if track is None or track.started or c.hung_up_ms is not None:
            return
        track.started = True
        self.counts["offered"] += 1
        if c.trunk is None and c.span is None:
            if self._free:
                # The exchange hunts the trunk group: the lowest-numbered free trunk.
                c.trunk = min(self._free)
                if c.cid is None:
                    c.cid = self.trunk_cid.get(c.trunk, "none")
            elif self.exchange is not None:
                c.span = self.exchange.hunt()       # then the PRI spans, the first with a B-channel free
        if c.span is not None and c.trunk is None:
            self._start_pri_call(c, at)
            return
        if c.trunk is None or c.trunk in self._ringing or c.trunk in self._calls:
            self._blocked(c)
            return
        self._track[c].chan = c.trunk
        self._start_ring(c, c.at_ms)

    def _blocked(self, c: Caller) -> None:
        c.blocked = True
        c.hung_up_ms = c.at_ms
        self.counts["blocked"] += 1
        self._finished(c)

    def _start_pri_call(self, c: Caller, at: int) -> None:
        """The far exchange places the caller's call on its span (blocked if it cannot now: no such
        span, its D-channel not up, an alarm, or no B-channel free)."""
        ex = self.exchange
        assert c.span is not None
        if ex is None or c.span not in ex.spans or not ex.can_place(c.span):
            self._blocked(c)
            return
        ex.advance(at)
        self._placing = c
        try:
            call = ex.place(c.span, ani=c.ani, dnis=c.dnis or ex.spans[c.span].dnis, ani_ton=c.ani_ton,
                            ani_npi=c.ani_npi, ani_pres=c.ani_pres)
        finally:
            self._placing = None
        if c in self._track and c.hung_up_ms is None:
            self._track[c].call = call
            self._pri_calls[(c.span, call.id)] = c
            c.timeslot = call.chan
        self.log.append((at, "setup", -1 if call.chan is None else ex.channel(c.span, call.chan), c.ani))

    def _start_ring(self, c: Caller, at: int) -> None:
        assert self.fm is not None and c.trunk is not None
        track = self._track[c]
        self._ringing[c.trunk] = c
        self._free.discard(c.trunk)
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
        track.ring_from, track.ring_on, track.ring_off = when, on, off
        self._push(when, (_CALLERS, track.rank, _RING), self._caller_ring, (c, 0))
        if c.cid in ("fsk_bell202", "v23") and c.ani:
            self._step_at(c, when + on + 500, _CID, self._caller_cid)
        self.log.append((at, "ring", c.trunk, c.ani))

    def _ring_point(self, track: _CallerTrack, i: int) -> int:
        """The tick of the exchange's i-th ring change (even: on, odd: off)."""
        return track.ring_from + (i // 2) * (track.ring_on + track.ring_off) + (track.ring_on if i % 2 else 0)

    def _caller_ring(self, tick: int, arg: tuple[Caller, int]) -> None:
        """The exchange's i-th ring change (even: ring on, odd: off); the next follows while the
        trunk has not answered."""
        c, i = arg
        assert self.far is not None and c.trunk is not None
        if not self._in_world(c) or c.answered_ms is not None:
            return
        track = self._track[c]
        self.far.ring(c.trunk, i % 2 == 0, at_tick=tick)
        if i % 2 == 0:
            c.rang_ms.append(tick)
        if i + 1 < RING_POINTS:
            self._push(self._ring_point(track, i + 1), (_CALLERS, track.rank, _RING), self._caller_ring, (c, i + 1))

    def _caller_cid(self, tick: int, c: Caller) -> None:
        assert self.fm is not None and c.trunk is not None
        if not self._in_world(c) or c.answered_ms is not None:
            return
        audio = self._cid_samples(c)
        if audio is not None:
            self.fm.play(c.trunk, audio)
        else:
            frame = callerid.callerid_frame(_cid(c), "v23" if c.cid == "v23" else "bell202")
            self.fm.fsk_tx(c.trunk, frame.message, frame.standard, frame.seizure_bits, frame.mark_bits)

    def _caller_press(self, tick: int, c: Caller) -> None:
        assert self.fm is not None
        if not self._in_world(c) or c.answered_ms is None or c.answered_ms + c.press_after_ms != tick:
            return
        chan = self._track[c].chan
        assert chan is not None
        audio = c.press_audio
        if audio is None and self.signals is not None:
            audio = self.signals.dtmf(c.digits)
        if audio is not None:
            self.fm.play(chan, audio)
            talk_at = tick + len(audio) // 8
        else:
            self.fm.dtmf_tx(chan, c.digits, 80, 80)
            talk_at = tick + 80 * 2 * len(c.digits)
        self._track[c].talk_at = talk_at
        self._step_at(c, talk_at, _TALK, self._caller_talk)

    def _caller_talk(self, tick: int, c: Caller) -> None:
        assert self.fm is not None
        track = self._track.get(c)
        if not self._in_world(c) or track is None or track.talk_at != tick or not c.talk_hz or track.chan is None:
            return
        self.fm.play(track.chan, talk_buffer(c.talk_hz, self.law), TALK_MS * 8)
        track.talk_at = None

    def _hang_at(self, c: Caller) -> int:
        """When the caller hangs up, as things stand: patience runs from the menu choice (queue
        entry); unanswered ringing is given up after it too."""
        start = c.answered_ms + c.press_after_ms if c.answered_ms is not None else c.at_ms
        return c.connected_ms + c.hold_ms if c.connected_ms is not None else start + c.patience_ms

    def _caller_hang(self, tick: int, c: Caller) -> None:
        if not self._in_world(c) or self._hang_at(c) != tick:
            return
        if c.trunk is None and self._track[c].call is None:   # it never came (due before the world began)
            c.hung_up_ms = tick
            self.counts["abandoned"] += 1
            self._finished(c)
            return
        self._caller_hangs_up(c, tick)

    def _caller_hangs_up(self, c: Caller, at: int) -> None:
        if c.trunk is None:
            self._pri_caller_hangs_up(c, at)
            return
        assert self.far is not None and self.fm is not None
        far = self.far
        c.hung_up_ms = at
        self.counts["hung_up" if c.connected_ms is not None else "abandoned"] += 1
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
        self._trunk_changed(c.trunk)
        self.log.append((at, "hangup", c.trunk, c.ani))
        self._finished(c)

    def _pri_caller_hangs_up(self, c: Caller, at: int) -> None:
        """A PRI caller hangs up: DISCONNECT (16) on its call (a SETUP not yet answered: its clearing)."""
        assert self.fm is not None and self.exchange is not None and c.span is not None
        track = self._track[c]
        c.hung_up_ms = at
        self.counts["hung_up" if c.connected_ms is not None else "abandoned"] += 1
        if track.chan is not None:
            self.fm.silence(track.chan)
            self._calls.pop(track.chan, None)
        self.exchange.advance(at)
        call = track.call
        if call is not None and (c.span, call.id) in self._pri_calls:
            call.hangup()
        self.log.append((at, "hangup", -1 if track.chan is None else track.chan, c.ani))
        self._finished(c)

    def _finished(self, c: Caller) -> None:
        """A caller is done with the world: a traffic caller is let go (counts keep its outcome)."""
        self._track.pop(c, None)

    def _trunk_changed(self, trunk: int) -> None:
        """An FXO trunk may be hunted onto when no caller is on it and the appliance holds it on hook."""
        if self.kinds[trunk] != "fxo":
            return
        if trunk in self._ringing or trunk in self._calls or trunk in self._offhook \
                or trunk in self._busy_until_release:
            self._free.discard(trunk)
        else:
            self._free.add(trunk)

    def _caller_for(self, p: PhoneScript) -> Caller | None:
        """The caller whose number the phone showed (caller ID) when it rang (None if that caller is
        connected already: another phone took the call); without caller ID (answered before it came),
        the longest-waiting caller not yet connected."""
        waiting = sorted((c for c in self._calls.values() if c.connected_ms is None),
                         key=lambda c: c.answered_ms or 0)
        if p.caller_ids and self._phone_track[p].ring_cid_ok:
            number = p.caller_ids[-1]
            for c in waiting:
                if c.ani == number:
                    return c
            if any(c.ani == number for c in self._calls.values()):
                return None
        return waiting[0] if waiting else None

    def _taken_elsewhere(self, p: PhoneScript) -> bool:
        """The phone showed a caller (caller ID) whom another phone has connected already."""
        if not (p.caller_ids and self._phone_track[p].ring_cid_ok):
            return False
        number = p.caller_ids[-1]
        return any(c.ani == number and c.connected_ms is not None for c in self._calls.values())

    # -- phones -------------------------------------------------------------------

    def _phone_step(self, p: PhoneScript, tick: int, step: int, fn: Callable[[int, PhoneScript], None]) -> None:
        self._push(tick, (_PHONES, self._phone_track[p].rank, step), fn, p)

    def _phone_answer(self, tick: int, p: PhoneScript) -> None:
        assert self.far is not None and self.fm is not None
        pt = self._phone_track[p]
        if pt.answer_at != tick:
            return
        if pt.last_ring_ms is not None and tick - pt.last_ring_ms > RING_SILENT_MS:
            pt.answer_at = pt.ring_started = None       # it stopped ringing: nobody picks up a silent phone
            return
        self.far.hook(p.port, True, at_tick=tick)
        p.off_hook = True
        pt.ring_started = None
        self._note(p.answered, tick)
        pt.answer_at = None
        if p.talk_audio is not None:
            self.fm.play(p.port, p.talk_audio)
        else:
            self.fm.play(p.port, talk_buffer(p.talk_hz, self.law), TALK_MS * 8)
        if p.hang_up_after_ms is not None:
            pt.hangup_at = tick + p.hang_up_after_ms
            self._phone_step(p, pt.hangup_at, _HANGUP, self._phone_hangup)
        caller = self._caller_for(p)
        if caller is not None:
            caller.connected_ms = tick
            self.counts["connected"] += 1
            self.connected_by_kind["fxo" if caller.trunk is not None else "pri"] += 1
            self._step_at(caller, self._hang_at(caller), _HANG, self._caller_hang)
        elif self._taken_elsewhere(p) and p.hang_up_after_ms is None:
            pt.hangup_at = tick + NOBODY_HANGUP_MS     # dial tone: another phone took it; hang up again
            self._phone_step(p, pt.hangup_at, _HANGUP, self._phone_hangup)

        self._cid_until(p, tick + 300)      # what the card sent before the answer is still to be read

    def _phone_hangup(self, tick: int, p: PhoneScript) -> None:
        assert self.far is not None and self.fm is not None
        pt = self._phone_track[p]
        if pt.hangup_at != tick:
            return
        self.far.hook(p.port, False, at_tick=tick)
        p.off_hook = False
        pt.hangup_at = None
        self.fm.silence(p.port)

    def _note(self, observed: list[Any], item: Any) -> None:
        """A phone's observation; in traffic (callers let go), only the newest are kept."""
        observed.append(item)
        if not self._keep and len(observed) > HISTORY_MAX:
            del observed[:HISTORY_MAX // 2]

    # -- a phone's caller ID receiver, while it rings ------------------------------
    # As a phone's: on from the end of a ring (the appliance sends caller ID in the gap after ring 1)
    # until the ringing's caller ID has come, the phone is answered or the ringing stopped.

    def _cid_start(self, p: PhoneScript) -> None:
        pt = self._phone_track[p]
        pt.cid_until = None
        if pt.cid_on:
            return
        pt.cid_on = True
        if not self.keep_audio and self.far is not None:
            self.far.listen(p.port)
            ffi.memmove(self._rx + p.port * self._per, self._idle * self._per, self._per)
        if self.signals is not None:
            self._cid_readers[p.port] = self.signals.caller_id_reader(self._std, self.law)
        elif self.fm is not None:
            self.fm.fsk_rx(p.port, self._std)

    def _cid_until(self, p: PhoneScript, tick: int | None) -> None:
        """The receiver stops at `tick` unless the phone rings again before (None: it does not stop)."""
        pt = self._phone_track[p]
        if pt.cid_on:
            pt.cid_until = tick
            if tick is not None:
                self._push(tick, (_RECEIVERS, pt.rank), self._cid_stop, p)

    def _cid_stop(self, tick: int, p: PhoneScript) -> None:
        pt = self._phone_track[p]
        if pt.cid_on and pt.cid_until == tick:
            self._cid_off(p)

    def _cid_off(self, p: PhoneScript) -> None:
        pt = self._phone_track[p]
        pt.cid_on = False
        pt.cid_until = None
        if not self.keep_audio and self.far is not None:
            self.far.listen(p.port, False)
        if self.signals is not None:
            self._cid_readers.pop(p.port, None)
        elif self.fm is not None:
            self.fm.fsk_rx(p.port, None)

    # -- far-side events ----------------------------------------------------------

    def _line_event(self, tick: int, chan: int, typ: int, value: int) -> None:
        if chan in self.phones:
            p = self.phones[chan]
            pt = self._phone_track[p]
            if typ in (EventType.RING_ON, EventType.RING_OFF):
                self._note(p.rings, (tick, typ))
                if typ == EventType.RING_OFF and pt.last_ring_ms is not None and not p.off_hook and \
                        tick - pt.last_ring_ms < self._ring_on_ms - 50:
                    pt.answer_at = pt.ring_started = None     # a ring cut short: the call was taken away
                pt.last_ring_ms = tick
                if typ == EventType.RING_ON:
                    self._cid_until(p, None)        # it rings again: a receiver on stays on
                elif not p.off_hook:      # off hook, the receiver stops as the answer set it
                    if pt.ring_started is not None and not pt.ring_cid_ok:
                        self._cid_start(p)          # caller ID comes in the gap after a ring
                    self._cid_until(p, tick + self._cid_margin)
                if typ == EventType.RING_ON and pt.ring_started is None and not p.off_hook:
                    pt.ring_started = tick
                    pt.ring_cid_ok = False
                    p.cid_reader.reset()
                    if p.answers:
                        pt.answer_at = tick + p.answer_after_ms
                        self._phone_step(p, pt.answer_at, _ANSWER, self._phone_answer)
            elif typ == EventType.BATTERY:
                self._note(p.battery, (tick, value))
                if value == 0 and p.off_hook:
                    pt.hangup_at = tick + 1500     # the agent hears the line go, hangs up
                    self._phone_step(p, pt.hangup_at, _HANGUP, self._phone_hangup)
                    if self.fm is not None:
                        self.fm.silence(p.port)
            if typ == EventType.RING_OFF and p.off_hook:
                pt.ring_started = None
        elif typ == EventType.HOOK_OFF:
            if self.kinds[chan] == "fxo":
                self._offhook.add(chan)
                self._free.discard(chan)
            c = self._ringing.pop(chan, None)
            if c is not None:
                self._answered(c, chan, tick, "fxo")
        elif typ == EventType.HOOK_ON:
            self._offhook.discard(chan)
            if chan in self._busy_until_release and self.fm is not None:
                self._busy_until_release.discard(chan)
                if self.signals is not None:
                    self.fm.stop_play(chan)
                else:
                    self.fm.stop_tone(chan)
            c = self._calls.get(chan)
            if c is not None and c.hung_up_ms is None:
                c.hung_up_ms = tick    # we released the call
                self.counts["released"] += 1
                self._calls.pop(chan, None)
                if self.fm is not None:
                    self.fm.silence(chan)
                self._finished(c)
            if 0 <= chan < len(self.kinds):
                self._trunk_changed(chan)
        self.log.append((tick, EventType(typ).name, chan, value))

    def _answered(self, c: Caller, chan: int, tick: int, kind: str) -> None:
        """The appliance answered the caller's call on card channel `chan` (a line of `kind`): its
        digits after its pause, its hang-up when its patience or its talk runs out."""
        c.answered_ms = tick
        self._calls[chan] = c
        self.counts["answered"] += 1
        self.answered_by_kind[kind] += 1
        if c in self._track:
            if c.digits:
                self._step_at(c, tick + c.press_after_ms, _PRESS, self._caller_press)
            self._step_at(c, self._hang_at(c), _HANG, self._caller_hang)

    # -- the far exchange's PRI calls ---------------------------------------------

    def _pri_event(self, ev: PriEvent) -> None:
        """A report of a span's call control at the far exchange (its sink)."""
        if not isinstance(ev, CallProceeding | CallAlerting | CallAnswered | CallReleased | CallOffered):
            log.info("far exchange %s: %s", ev.span, ev)
            return
        key = (ev.span, ev.call_id)
        if isinstance(ev, CallOffered) or key in self._outbound_calls:
            self._outbound_event(ev)
            return
        c = self._pri_calls.get(key)
        if c is None and self._placing is not None:
            c = self._placing                   # reported while being placed (released at once)
        if c is None:
            return
        ex = self.exchange
        assert ex is not None and self.fm is not None
        track = self._track.get(c)
        if ev.chan is not None and track is not None and c.hung_up_ms is None:
            c.timeslot = ev.chan
            track.chan = ex.channel(ev.span, ev.chan)
        if isinstance(ev, CallAnswered):
            if track is not None and track.chan is not None and c.hung_up_ms is None:
                self._answered(c, track.chan, ev.tick, "pri")
        elif isinstance(ev, CallReleased):
            self._pri_calls.pop(key, None)
            c.cause = ev.cause
            if c.hung_up_ms is not None:
                return                          # the end of the caller's own clearing
            c.hung_up_ms = ev.tick
            if ev.by_far_end or ev.answered:
                self.counts["released"] += 1    # the appliance (or the line) cleared the caller's call
            else:
                c.blocked = True                # the exchange's own attempt failed (no answer to the SETUP...)
                self.counts["blocked"] += 1
            if track is not None and track.chan is not None:
                self._calls.pop(track.chan, None)
                self.fm.silence(track.chan)
            self.log.append((ev.tick, "released", -1 if track is None or track.chan is None else track.chan,
                             ev.cause))
            self._finished(c)

    def _outbound_event(self, ev: PriEvent) -> None:
        """A call the appliance placed toward the far exchange: taken and alerted at once, answered
        `pri_answer_ms` later, released when the appliance (or the line) clears it."""
        assert self.exchange is not None and self.fm is not None
        key = (ev.span, getattr(ev, "call_id", -1))
        if isinstance(ev, CallOffered):
            out = OutboundCall(ev.span, ev.call_id, ev.ani, ev.dnis, ev.chan, ev.tick)
            self.outbound.append(out)
            if not self._keep and len(self.outbound) > HISTORY_MAX:
                del self.outbound[:HISTORY_MAX // 2]
            self._outbound_calls[key] = (out, ev.call)
            ev.call.accept()
            ev.call.alert()
            if self.pri_answer_ms is not None:
                self._push(ev.tick + self.pri_answer_ms, (_OUTBOUND, ev.span, ev.call_id), self._outbound_answer, key)
            return
        entry = self._outbound_calls.get(key)
        if entry is None:
            return
        out, _ = entry
        if isinstance(ev, CallReleased):
            del self._outbound_calls[key]
            out.released_ms, out.cause = ev.tick, ev.cause
            if out.timeslot is not None:
                self.fm.silence(self.exchange.channel(ev.span, out.timeslot))

    def _outbound_answer(self, tick: int, key: tuple[str, int]) -> None:
        entry = self._outbound_calls.get(key)
        if entry is None or self.exchange is None or self.fm is None:
            return
        out, call = entry
        self.exchange.advance(tick)
        call.answer()
        out.answered_ms = tick
        if out.timeslot is not None:
            self.fm.play(self.exchange.channel(out.span, out.timeslot), talk_buffer(Caller.talk_hz, self.law),
                         TALK_MS * 8)

    def _phone_caller_id(self, p: PhoneScript | None, number: str | None) -> None:
        if p is None:
            return
        self._note(p.caller_ids, number)
        pt = self._phone_track[p]
        pt.ring_cid_ok = pt.ring_started is not None
        if pt.ring_cid_ok and pt.cid_on:
            self._cid_off(p)                        # the ringing's caller ID came: nothing more to hear

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
