"""The call center's figures: one pure fold over the event log (no I/O, no clock).

The same fold serves three ways:

- live: :class:`LiveFigures`, fed each event as the engine records it, answers today's figures and
  the last 30 minutes in 15-minute intervals (``cicbox queues``, ``cicbox agents``);
- reports: :func:`report` over the stored events (``cicbox report``);
- each CDR: :func:`fold_call` over one call's events.

Time. An event's calendar time is its boot's tick 0 (``detail.calendar_start`` of the boot's ``boot``
event; failing one, a ``call_start``'s calendar start less its tick) plus its ``tick_ms``. Calendar times
are the site's wall-clock time: an offset, if any, is dropped. A boot's events are in tick order; the
log's order is the engine's. When a new boot starts, what was open (agent states, talk, wrap-up) ends at
the last event of the boots before it: the engine's last sign of life.

Definitions (docs/reports.md). A call's *stay* in a queue begins at its first ``queue_enter`` into it.
``wait`` = answer tick - that entry's tick (an abandon: leave tick - entry tick).

- short_abandoned: left with outcome ``abandoned`` less than ``short_abandon_ms`` (from the entry's
  detail) after entry; offered = entered - short_abandoned; abandoned = the other abandons;
- withdrawn, exits (``exit_key``) and ``outcomes`` (timeout, full, no_agents, overflow, blacklist) are
  counted apart; an answered stay counts as answered whatever came before;
- answered_within_sl: answered with wait <= ``sl_threshold_ms``; sl_pct = 100 x answered_within_sl /
  (answered + abandoned - abandoned with wait <= T), null when that is 0;
- asa_ms = sum of waits / answered; aht_ms = (talk + wrap-up) / answered, talk = answer until the call's
  ``call_end`` or the agent's state leaving on_call, whichever first; wrap-up = the agent's ``wrap_up``
  state for that call until its next state; max_wait_ms over answered and abandoned (null: none);
- per agent: answered (``answer`` events), missed (``offer_end`` why ``no_answer``), and the time in
  on_call (talk_ms), wrap_up, ready and not_ready, split at the window's edges; an open state counts
  up to the report's end (live: now).

A window takes the stays whose entry falls in it, with all they did later (up to the report's end).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from appliance.storage.cdr import Event

DEFAULT_SL_THRESHOLD_MS = 20_000
"""The service level threshold of a queue entry that does not name one (version 2's events)."""
DEFAULT_SHORT_ABANDON_MS = 0
"""The short abandon limit of a queue entry that does not name one: no abandon is short."""
OTHER_OUTCOMES = ("timeout", "full", "no_agents", "overflow", "blacklist")
"""Outcomes of a queue_leave counted in ``outcomes`` (abandoned, exit_key and withdrawn have their own)."""
STATE_FIELDS = {"on_call": "talk_ms", "wrap_up": "wrap_ms", "ready": "ready_ms", "not_ready": "not_ready_ms"}
"""The agent states whose time is reported, and under which name."""
INTERVALS = {"15m": dt.timedelta(minutes=15), "1h": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
"""The report's intervals, by the name ``--interval`` takes."""
LIVE_INTERVAL = INTERVALS["15m"]
MAX_INTERVALS = 40_000
"""A report has at most this many intervals (a year of 15-minute ones is 35 040)."""
LIVE_INTERVALS = 2
"""Live figures: the last 30 minutes, as the current 15-minute interval and the one before."""
_EPOCH = dt.datetime(1970, 1, 1)
_MS = dt.timedelta(milliseconds=1)


def _naive(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=None)


def _ms(delta: dt.timedelta) -> int:
    return delta // _MS


def _div(num: int, den: int) -> int | None:
    """num / den rounded half up, None when den is 0."""
    return (2 * num + den) // (2 * den) if den else None


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


@dataclass
class _Stay:
    """One call's stay in one queue."""

    queue: str
    enter_tick: int
    enter_at: dt.datetime
    sl_ms: int
    short_ms: int
    outcome: str | None = None
    leave_tick: int | None = None
    agent: str | None = None
    answer_tick: int | None = None
    answer_at: dt.datetime | None = None
    talk_end_at: dt.datetime | None = None
    wrap_ms: int = 0
    wrap_from: dt.datetime | None = None

    @property
    def done(self) -> bool:
        return self.wrap_from is None and (self.talk_end_at is not None if self.answer_at else self.outcome is not None)


@dataclass
class _Span:
    state: str
    start: dt.datetime
    end: dt.datetime | None = None


@dataclass
class _Agent:
    spans: list[_Span] = field(default_factory=list)
    answered: list[dt.datetime] = field(default_factory=list)
    missed: list[dt.datetime] = field(default_factory=list)
    talking: _Stay | None = None      # the stay whose talk this agent is in
    wrapping: _Stay | None = None     # the stay whose wrap-up this agent is in

    @property
    def state(self) -> str | None:
        return self.spans[-1].state if self.spans and self.spans[-1].end is None else None


class Fold:
    """The fold itself: :meth:`add` each event in the log's order, then ask for figures over a window."""

    def __init__(self) -> None:
        self.calendar: dict[int, dt.datetime] = {}     # boot -> its tick 0 in calendar time
        self.stays: dict[tuple[str, str], _Stay] = {}  # (call id, queue) -> the call's stay there
        self.answered: dict[str, _Stay] = {}           # call id -> the stay it was answered in
        self.agents: dict[str, _Agent] = {}
        self.first: dt.datetime | None = None          # calendar time of the first event and the last
        self.last: dt.datetime | None = None
        self._boot: int | None = None                  # the boot of the last event

    # -- time --------------------------------------------------------------------------------

    def time_of(self, ev: Event) -> dt.datetime:
        """The event's calendar time (its boot's tick 0 + tick_ms)."""
        zero = self.calendar.get(ev.boot)
        if zero is None:
            zero = _zero_of(ev) or _EPOCH
        return zero + dt.timedelta(milliseconds=ev.tick_ms)

    # -- the fold ----------------------------------------------------------------------------

    def add(self, ev: Event) -> None:
        zero = _zero_of(ev)
        if zero is not None and (ev.kind == "boot" or ev.boot not in self.calendar):
            self.calendar[ev.boot] = zero
        at = self.time_of(ev)
        if self._boot is not None and ev.boot != self._boot and self.last is not None:
            self._close_all(self.last)              # a new boot: what was open ended with the last one
        self._boot = ev.boot
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)
        handler = getattr(self, "_on_" + ev.kind, None)
        if handler is not None:
            handler(ev, at)

    def _close_all(self, at: dt.datetime) -> None:
        for agent in self.agents.values():
            self._leave_state(agent, at)
            agent.talking = agent.wrapping = None
        for stay in self.answered.values():
            if stay.talk_end_at is None:
                stay.talk_end_at = max(at, stay.answer_at or at)

    def _on_stop(self, ev: Event, at: dt.datetime) -> None:
        """The engine stopped cleanly: every state, talk and wrap-up open ends here."""
        self._close_all(at)

    def _on_queue_enter(self, ev: Event, at: dt.datetime) -> None:
        if ev.call_id is None or ev.queue is None:
            return
        stay = self.stays.get((ev.call_id, ev.queue))
        if stay is not None:                        # back in a queue it was in: its first entry counts
            stay.outcome = stay.leave_tick = None
            return
        d = ev.detail
        self.stays[(ev.call_id, ev.queue)] = _Stay(
            ev.queue, ev.tick_ms, at, _int(d.get("sl_threshold_ms"), DEFAULT_SL_THRESHOLD_MS),
            _int(d.get("short_abandon_ms"), DEFAULT_SHORT_ABANDON_MS))

    def _on_queue_leave(self, ev: Event, at: dt.datetime) -> None:
        stay = self.stays.get((ev.call_id or "", ev.queue or ""))
        if stay is not None and stay.answer_tick is None:
            stay.outcome = str(ev.detail.get("outcome"))
            stay.leave_tick = ev.tick_ms

    def _on_answer(self, ev: Event, at: dt.datetime) -> None:
        if ev.call_id is None or ev.queue is None:
            return
        stay = self.stays.get((ev.call_id, ev.queue))
        if stay is None:                            # an answer without its entry: waited 0
            stay = self.stays[(ev.call_id, ev.queue)] = _Stay(ev.queue, ev.tick_ms, at, DEFAULT_SL_THRESHOLD_MS,
                                                             DEFAULT_SHORT_ABANDON_MS)
        stay.agent, stay.answer_tick, stay.answer_at = ev.agent, ev.tick_ms, at
        stay.outcome = stay.leave_tick = None
        self.answered[ev.call_id] = stay
        if ev.agent is not None:
            agent = self._agent(ev.agent)
            agent.answered.append(at)
            agent.talking = stay

    def _on_call_end(self, ev: Event, at: dt.datetime) -> None:
        stay = self.answered.get(ev.call_id or "")
        if stay is not None and stay.talk_end_at is None:
            stay.talk_end_at = at

    def _on_offer_end(self, ev: Event, at: dt.datetime) -> None:
        if ev.agent is not None and ev.detail.get("why") == "no_answer":
            self._agent(ev.agent).missed.append(at)

    def _on_agent_state(self, ev: Event, at: dt.datetime) -> None:
        if ev.agent is None:
            return
        agent = self._agent(ev.agent)
        state = str(ev.detail.get("state"))
        self._leave_state(agent, at, state)
        if state != "logged_out":
            agent.spans.append(_Span(state, at))
        if state == "wrap_up":
            call_id = ev.detail.get("call_id")
            stay = self.answered.get(call_id) if isinstance(call_id, str) else None
            if stay is None and agent.talking is not None and agent.talking.queue == (ev.queue or agent.talking.queue):
                stay = agent.talking
            if stay is None and ev.queue is not None:
                last = [s for s in self.answered.values() if s.agent == ev.agent and s.queue == ev.queue]
                stay = last[-1] if last else None
            if stay is not None:
                stay.wrap_from = at
                agent.wrapping = stay
        if state != "on_call":
            agent.talking = None

    def _leave_state(self, agent: _Agent, at: dt.datetime, new: str | None = None) -> None:
        """The agent's open state ends at `at` (and with it talk, when it leaves on_call, and wrap-up)."""
        if agent.spans and agent.spans[-1].end is None:
            span = agent.spans[-1]
            span.end = max(at, span.start)
            talking = agent.talking
            if span.state == "on_call" and new != "on_call" and talking is not None and talking.talk_end_at is None:
                talking.talk_end_at = span.end
        if agent.wrapping is not None:
            stay = agent.wrapping
            if stay.wrap_from is not None:
                stay.wrap_ms += _ms(max(at, stay.wrap_from) - stay.wrap_from)
                stay.wrap_from = None
            agent.wrapping = None

    def _agent(self, number: str) -> _Agent:
        agent = self.agents.get(number)
        if agent is None:
            agent = self.agents[number] = _Agent()
        return agent

    def forget_before(self, when: dt.datetime) -> None:
        """Drop what no window from `when` on can need: finished stays entered before it, agents' closed
        states and counts before it (the live figures call this as a day begins)."""
        self.stays = {k: s for k, s in self.stays.items() if s.enter_at >= when or not s.done}
        self.answered = {k: s for k, s in self.answered.items() if s.enter_at >= when or not s.done}
        for agent in self.agents.values():
            agent.spans = [s for s in agent.spans if s.end is None or s.end > when]
            agent.answered = [t for t in agent.answered if t >= when]
            agent.missed = [t for t in agent.missed if t >= when]

    # -- the figures -------------------------------------------------------------------------

    def queue_names(self, start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[str]:
        return sorted({s.queue for s in self.stays.values() if _inside(s.enter_at, start, end)})

    def queue_figures(self, start: dt.datetime | None, end: dt.datetime | None, until: dt.datetime,
                      names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per queue: the figures of the stays entered in [start, end) (None: unbounded), as of `until`."""
        acc = {name: _QueueAcc() for name in (names if names is not None else self.queue_names(start, end))}
        for stay in self.stays.values():
            if _inside(stay.enter_at, start, end) and stay.queue in acc:
                acc[stay.queue].add(stay, until)
        return {name: a.figures() for name, a in sorted(acc.items())}

    def agent_names(self, start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[str]:
        return sorted(n for n, a in self.agents.items()
                      if any(_overlaps(s, start, end) for s in a.spans)
                      or any(_inside(t, start, end) for t in a.answered + a.missed))

    def agent_figures(self, start: dt.datetime | None, end: dt.datetime | None, until: dt.datetime,
                      names: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        """Per agent: counts in [start, end) and time in states within it (open states up to `until`)."""
        out: dict[str, dict[str, int]] = {}
        for name in sorted(names if names is not None else self.agent_names(start, end)):
            agent = self.agents.get(name, _Agent())
            fig = {"answered": sum(1 for t in agent.answered if _inside(t, start, end)),
                   "missed": sum(1 for t in agent.missed if _inside(t, start, end)),
                   **{f: 0 for f in STATE_FIELDS.values()}}
            for span in agent.spans:
                f = STATE_FIELDS.get(span.state)
                if f is None:
                    continue
                a = span.start if start is None else max(span.start, start)
                b = span.end if span.end is not None else max(until, span.start)
                if end is not None:
                    b = min(b, end)
                if b > a:
                    fig[f] += _ms(b - a)
            out[name] = fig
        return out


def _zero_of(ev: Event) -> dt.datetime | None:
    """The boot's tick 0 as an event says it: a boot event's calendar start, a call_start's less its start
    (its tick, or its detail's start_ms when the call's line had it first)."""
    if ev.kind not in ("boot", "call_start"):
        return None
    text = ev.detail.get("calendar_start")
    if not isinstance(text, str):
        return None
    try:
        when = _naive(dt.datetime.fromisoformat(text))
    except ValueError:
        return None
    start = ev.detail.get("start_ms", ev.tick_ms) if ev.kind == "call_start" else 0
    if not isinstance(start, int):
        start = ev.tick_ms
    return when if ev.kind == "boot" else when - dt.timedelta(milliseconds=start)


def _inside(t: dt.datetime, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    return (start is None or t >= start) and (end is None or t < end)


def _overlaps(span: _Span, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    return (end is None or span.start < end) and (start is None or span.end is None or span.end > start)


class _QueueAcc:
    def __init__(self) -> None:
        self.entered = self.answered = self.abandoned = self.short = self.withdrawn = self.exits = 0
        self.within = self.abandoned_within = self.wait = self.handle = 0
        self.max_wait: int | None = None
        self.outcomes = dict.fromkeys(OTHER_OUTCOMES, 0)

    def add(self, stay: _Stay, until: dt.datetime) -> None:
        self.entered += 1
        if stay.answer_tick is not None and stay.answer_at is not None:
            wait = stay.answer_tick - stay.enter_tick
            self.answered += 1
            self.wait += wait
            self.within += wait <= stay.sl_ms
            talk_end = stay.talk_end_at if stay.talk_end_at is not None else max(until, stay.answer_at)
            wrap = stay.wrap_ms
            if stay.wrap_from is not None:
                wrap += _ms(max(until, stay.wrap_from) - stay.wrap_from)
            self.handle += _ms(talk_end - stay.answer_at) + wrap
            self.max_wait = wait if self.max_wait is None else max(self.max_wait, wait)
        elif stay.outcome == "abandoned":
            wait = (stay.leave_tick if stay.leave_tick is not None else stay.enter_tick) - stay.enter_tick
            if wait < stay.short_ms:
                self.short += 1
                return
            self.abandoned += 1
            self.abandoned_within += wait <= stay.sl_ms
            self.max_wait = wait if self.max_wait is None else max(self.max_wait, wait)
        elif stay.outcome == "withdrawn":
            self.withdrawn += 1
        elif stay.outcome == "exit_key":
            self.exits += 1
        elif stay.outcome in self.outcomes:
            self.outcomes[stay.outcome] += 1

    def figures(self) -> dict[str, Any]:
        den = self.answered + self.abandoned - self.abandoned_within
        return {
            "offered": self.entered - self.short, "answered": self.answered, "abandoned": self.abandoned,
            "short_abandoned": self.short, "withdrawn": self.withdrawn, "exits": self.exits,
            "answered_within_sl": self.within,
            "sl_pct": round(100 * self.within / den, 1) if den else None,
            "asa_ms": _div(self.wait, self.answered), "aht_ms": _div(self.handle, self.answered),
            "max_wait_ms": self.max_wait, "outcomes": dict(self.outcomes),
        }


def no_queue_figures() -> dict[str, Any]:
    """A queue's figures when nothing happened in it."""
    return _QueueAcc().figures()


def no_agent_figures() -> dict[str, int]:
    """An agent's figures when nothing happened to it."""
    return {"answered": 0, "missed": 0, **{f: 0 for f in STATE_FIELDS.values()}}


# -- windows -----------------------------------------------------------------------------------


def floor_to(when: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """The start of the interval of length `step` (15 min, 1 h, a day: aligned on midnight) holding `when`."""
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((when - midnight) // step) * step


def intervals(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """The aligned intervals of `step` covering [start, end) (at least one)."""
    out = []
    a = floor_to(start, step)
    while True:
        out.append((a, a + step))
        a += step
        if a >= end:
            return out


def _report(fold: Fold, what: str, start: dt.datetime | None, end: dt.datetime | None, until: dt.datetime,
            windows: list[tuple[dt.datetime, dt.datetime]]) -> dict[str, Any]:
    if what == "queue":
        names = fold.queue_names(start, end)
        return {"queues": fold.queue_figures(start, end, until, names),
                "intervals": [{"start": a.isoformat(), "end": b.isoformat(),
                               "queues": fold.queue_figures(a, b, until, names)} for a, b in windows]}
    names = fold.agent_names(start, end)
    return {"agents": fold.agent_figures(start, end, until, names),
            "intervals": [{"start": a.isoformat(), "end": b.isoformat(),
                           "agents": fold.agent_figures(a, b, until, names)} for a, b in windows]}


def report(events: Iterable[Event], what: str, start: dt.datetime | None = None, end: dt.datetime | None = None,
           interval: dt.timedelta | None = None) -> dict[str, Any]:
    """The ``cicbox report queue|agent`` document over `events` (in the log's order): the events before
    `end` are folded, the window is [start, end) (None: unbounded), open states count up to `end` (else
    the last event). With `interval`, also the aligned intervals covering the window (else none)."""
    if what not in ("queue", "agent"):
        raise ValueError(f"a report is of queue or agent, not {what!r}")
    start = _naive(start) if start is not None else None
    end = _naive(end) if end is not None else None
    fold = Fold()
    for ev in events:
        if end is not None and fold.time_of(ev) >= end and not (ev.kind == "boot" and ev.boot not in fold.calendar):
            continue
        fold.add(ev)
    until = end if end is not None else fold.last or start or _EPOCH
    windows: list[tuple[dt.datetime, dt.datetime]] = []
    if interval is not None:
        lo = start if start is not None else fold.first
        if lo is not None and lo < until:
            count = (until - floor_to(lo, interval)) / interval
            if count > MAX_INTERVALS:
                raise ValueError(f"{math.ceil(count)} intervals of {interval} from {lo} to {until}: at most "
                                 f"{MAX_INTERVALS} (narrow --from/--to or take a longer --interval)")
            windows = intervals(lo, until, interval)
    return _report(fold, what, start, end, until, windows)


class LiveFigures:
    """Today's figures as the engine records events: :meth:`add` each one, ask :meth:`queues` and
    :meth:`agents` at any time. "Today" is the calendar day of now; the intervals are the current
    15-minute interval and the one before it."""

    def __init__(self) -> None:
        self.fold = Fold()
        self._day: dt.date | None = None

    def add(self, ev: Event) -> None:
        self.fold.add(ev)
        today = self.fold.time_of(ev).date()
        if self._day is None or today > self._day:
            if self._day is not None:    # a new day: what only yesterday's windows needed can go
                midnight = dt.datetime.combine(today, dt.time())
                self.fold.forget_before(midnight - LIVE_INTERVALS * LIVE_INTERVAL)
            self._day = today

    def now(self, now_boot: int, now_ms: int) -> dt.datetime:
        return self.fold.time_of(Event(now_boot, now_ms, "now"))

    def _windows(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime, list[tuple[dt.datetime, dt.datetime]]]:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        current = floor_to(now, LIVE_INTERVAL)
        windows = [(current - k * LIVE_INTERVAL, current - (k - 1) * LIVE_INTERVAL)
                   for k in range(LIVE_INTERVALS - 1, -1, -1)]
        return midnight, midnight + dt.timedelta(days=1), windows

    def queues(self, now_boot: int, now_ms: int) -> dict[str, Any]:
        """``{"queues": {NAME: figures}, "intervals": [...]}`` for today, as of now (boot, tick)."""
        now = self.now(now_boot, now_ms)
        start, end, windows = self._windows(now)
        return _report(self.fold, "queue", start, end, now, windows)

    def agents(self, now_boot: int, now_ms: int) -> dict[str, Any]:
        """``{"agents": {NUMBER: figures}, "intervals": [...]}`` for today, as of now (boot, tick)."""
        now = self.now(now_boot, now_ms)
        start, end, windows = self._windows(now)
        return _report(self.fold, "agent", start, end, now, windows)


class Totals:
    """Over all queues since the engine started, counting calls (a caller who overflows or waits in two
    queues is one), by the reports' definitions: offered (calls that entered a queue, less short
    abandons), answered, abandoned (hung up while waiting, past the short-abandon time of the queue it
    first entered) and the total wait (answer - entry into the answering queue: ASA = wait_ms_total /
    answered). Kept as the events come; memory: the calls still waiting."""

    def __init__(self) -> None:
        self.offered = self.answered = self.abandoned = self.short_abandoned = self.wait_ms_total = 0
        self._open: dict[str, tuple[int, int, dict[str, int]]] = {}   # call id -> (first entry, short ms, entries)

    def add(self, ev: Event) -> None:
        cid, queue = ev.call_id, ev.queue
        if cid is None:
            return
        if ev.kind == "queue_enter" and queue is not None:
            call = self._open.get(cid)
            if call is None:
                call = self._open[cid] = (ev.tick_ms, _int(ev.detail.get("short_abandon_ms"),
                                                           DEFAULT_SHORT_ABANDON_MS), {})
                self.offered += 1
            call[2].setdefault(queue, ev.tick_ms)
        elif ev.kind == "queue_leave" and ev.detail.get("outcome") == "abandoned":
            call = self._open.pop(cid, None)
            if call is not None:
                if ev.tick_ms - call[0] < call[1]:
                    self.short_abandoned += 1
                    self.offered -= 1
                else:
                    self.abandoned += 1
        elif ev.kind == "answer" and queue is not None:
            call = self._open.pop(cid, None)
            self.answered += 1
            if call is not None:
                self.wait_ms_total += ev.tick_ms - call[2].get(queue, call[0])
        elif ev.kind == "call_end":
            self._open.pop(cid, None)

    def figures(self) -> dict[str, int]:
        return {"offered": self.offered, "answered": self.answered, "abandoned": self.abandoned,
                "short_abandoned": self.short_abandoned, "wait_ms_total": self.wait_ms_total}


# -- one call ----------------------------------------------------------------------------------

CDR_FIELDS = ("call_id", "config_version", "trunk", "ani", "dnis", "queue", "agent", "disposition",
              "calendar_start", "start_ms", "queue_entry_ms", "answer_ms", "end_ms", "wait_ms", "talk_ms",
              "timeslot", "ani_ton", "ani_npi", "ani_presentation", "ani_screening", "cause")
#: what a PRI call's call_start adds (its B-channel and its calling number as received)
PRI_START_FIELDS = ("timeslot", "ani_ton", "ani_npi", "ani_presentation", "ani_screening")


def fold_call(events: Iterable[Event]) -> dict[str, Any]:
    """The CDR fields one call's events determine (every CdrRecord field; None where they say nothing):
    call_start gives the call id, trunk, ANI, DNIS, configuration version, calendar start and start_ms
    (its tick, or its detail's start_ms: a PRI call's SETUP before its overlap digits; and a PRI call's
    timeslot and ANI attributes); call_end the cause (a PRI call's);
    queue = the last queue (call_end's, else the last entered), agent = who answered, queue_entry_ms = the
    first entry, answer_ms, end_ms and disposition from call_end, wait_ms = answer - the entry into the
    answering queue, talk_ms = end - answer."""
    out: dict[str, Any] = dict.fromkeys(CDR_FIELDS)
    entries: dict[str, int] = {}
    answered_in: str | None = None
    for ev in events:
        d = ev.detail
        if ev.call_id is not None and out["call_id"] is None:
            out["call_id"] = ev.call_id
        if ev.kind == "call_start":
            out["start_ms"] = d.get("start_ms", ev.tick_ms)       # its line's start, if that came first
            for name in ("trunk", "ani", "dnis", "config_version", "calendar_start", *PRI_START_FIELDS):
                out[name] = d.get(name)
        elif ev.kind == "queue_enter" and ev.queue is not None:
            entries.setdefault(ev.queue, ev.tick_ms)
            if out["queue_entry_ms"] is None:
                out["queue_entry_ms"] = ev.tick_ms
            out["queue"] = ev.queue
        elif ev.kind == "answer":
            out["answer_ms"], out["agent"] = ev.tick_ms, ev.agent
            answered_in = ev.queue
            if ev.queue is not None:
                out["queue"] = ev.queue
        elif ev.kind == "call_end":
            out["end_ms"] = ev.tick_ms
            out["disposition"] = d.get("disposition")
            out["cause"] = d.get("cause")
            if ev.queue is not None:
                out["queue"] = ev.queue
            if ev.agent is not None:
                out["agent"] = ev.agent
    answer, end = out["answer_ms"], out["end_ms"]
    if answer is not None:
        entry = entries.get(answered_in or "", out["queue_entry_ms"])
        out["wait_ms"] = answer - entry if entry is not None else None
        out["talk_ms"] = end - answer if end is not None else None
    return out
