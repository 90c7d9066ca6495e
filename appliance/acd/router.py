"""The ACD router: who waits where, who is ready, and who takes whom. Pure: no I/O, no clock, no
engine objects, no logging; times are passed in, call ids stand for calls.

Definitions (issue 11):

- *Place* of a waiter = (priority descending, first entry, arrival seq); it is kept through
  widening, overflow and reservation. Priority is strict.
- An agent *can serve* a waiter in a queue if it is a member of the queue and, for every skill the
  waiter asks, its level (0 if it lacks the skill) is at least the minimum asked. Its *rank* for the
  waiter is its lowest level over the asked skills (no skills asked: all members rank 0).
- :meth:`Router.pick_agents`: among the ready members able to serve the waiter, those of the best
  rank, chosen by the queue's strategy; ties go to the longest idle, then the lowest number.
- :meth:`Router.pick_waiter`: the best place over all the agent's queues among the waiters it can
  serve and that are not reserved for another agent.

Indexes, so that no decision scans all callers or all agents:

- Waiters: a *skill class* is one requirement (the sorted ``{skill: minimum}`` items). Each queue
  has a list per class present in it, sorted by place (the best last), and a sorted list of the
  heads of those lists (one per non-empty class, by place); the router keeps every queue's first
  head in one list. Each class gets an index in the queue when it first appears there, and a
  set (a bit per agent) of the members able to serve it (computed then, once per (queue, class)
  per configuration). ``pick_waiter`` looks at each of the agent's queues' first head and, only
  where that beats the best found so far but the agent cannot serve it, walks the queue's heads
  in place order to the first it can serve: usually one step per queue.
- A change to a waiter (widened, reserved, left or joined a queue, gone) bumps its version, which
  makes its older entries stale: they are dropped when they come last in their list (a head that
  goes stale is replaced at once), or when a list holds more than twice its live entries.
- The decisions are bound by memory reads (a freed agent's data is out of the cache), not by
  arithmetic: what ``pick_waiter`` reads of the agent is one tuple, the rest is shared by all
  decisions (first heads, served sets), so it stays in the cache.
- Ready agents: per queue and *container* (the asked skill set for a class whose minimums are all
  equal, else the class itself) the ready members, bucketed by rank and each bucket sorted by the
  queue's strategy key. ``pick_agents`` looks at the non-empty bucket of the best rank.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from appliance.collector import freeze_survivors

Strategy = Literal["ring_all", "longest_idle", "round_robin", "fewest_calls", "least_talk_time", "linear", "random"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)

# A place as one integer, smaller = served first: priority (descending), first entry, seq (unique per
# waiter). One int compares with one memory access, a tuple's fields with several.
_PRIO_MAX = 1 << 20
_ENTRY_OFFSET = 1 << 47
_NEVER = 1 << 200


def place_key(priority: int, first_entry_ms: int, seq: int) -> int:
    return ((_PRIO_MAX - priority) << 88) | ((first_entry_ms + _ENTRY_OFFSET) << 40) | seq


# A list entry: (-place, version, record), so the best place sorts last. Places are unique per
# waiter, so entries compare their records only when they are the same waiter's same version.
_Entry = tuple[int, int, "_Rec"]
# A queue's head of one class: one int, (place << _IDX_BITS) | the class's index in the queue. Places
# are unique in a queue, so heads are; one int per head keeps the walk of pick_waiter to one object.
_IDX_BITS = 24
_IDX_MASK = (1 << _IDX_BITS) - 1
_Key = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """What the router needs of one queue: its strategy and its members in configuration order."""

    strategy: Strategy
    members: tuple[str, ...]


@dataclass(slots=True)
class Waiter:
    """One waiting caller (a call id, never an engine object). The router owns it from
    :meth:`Router.add` to :meth:`Router.remove` and keeps ``queues`` and ``skills`` current."""

    call_id: str
    priority: int                  # 0..9, higher served first (strict)
    first_entry_ms: int            # its first queue entry; kept through widening and overflow
    queues: tuple[str, ...]        # the queues it waits in (1 or more)
    skills: dict[str, int]         # skill -> minimum level asked now ({} = any member)
    seq: int = 0                   # set by Router.add (arrival order, the last tiebreak)


def number_key(number: str) -> tuple[int, int, str]:
    """Agent numbers in numeric order (non-numeric ones after, by text)."""
    return (0, int(number), number) if number.isdigit() else (1, 0, number)


class _Class:
    """One skill requirement."""

    __slots__ = ("floor", "items", "key", "skills", "uniform")

    def __init__(self, items: tuple[tuple[str, int], ...]) -> None:
        self.items = items
        self.skills = tuple(s for s, _ in items)
        mins = {m for _, m in items}
        self.uniform = len(mins) <= 1
        self.floor = max(mins) if mins else 0
        # the ready-agent container: shared by all classes asking the same skills at one minimum
        self.key: object = self.skills if self.uniform else items


class _Rec:
    __slots__ = ("at", "cls", "entry", "place", "reserved", "ver", "w")

    def __init__(self, w: Waiter, cls: _Class) -> None:
        self.w = w
        self.cls = cls
        self.place = place_key(w.priority, w.first_entry_ms, w.seq)
        self.ver = 0
        self.entry: _Entry | None = None     # the live entry, None while reserved or in no list
        self.at: tuple[_Line, ...] = ()      # the lists holding the live entry
        self.reserved: str | None = None


class _Line:
    """The waiters of one class in one queue: entries by place, the best last (taken with a pop, no
    sift down a heap), stale ones dropped when they come last or by :meth:`compact`."""

    __slots__ = ("head", "index", "items", "live", "q")

    def __init__(self, q: _Queue, index: int) -> None:
        self.q = q
        self.index = index                   # the class's index in the queue (its bit: 1 << index)
        self.head: int | None = None         # its entry in the queue's heads
        self.items: list[_Entry] = []
        self.live = 0                        # entries in items that are not stale

    def compact(self) -> None:
        self.items[:] = [e for e in self.items if e[1] == e[2].ver]
        self.live = len(self.items)


class _Container:
    """Ready members of one queue for one container key, by rank."""

    __slots__ = ("buckets", "ranks")

    def __init__(self) -> None:
        self.buckets: dict[int, list[_Key]] = {}
        self.ranks: list[int] = []           # descending


class _Agent:
    __slots__ = ("calls", "idle_since", "keys", "number", "order", "pick", "ready", "reserved", "skills", "slot",
                 "slots", "talk")

    def __init__(self, number: str) -> None:
        self.number = number
        self.order = 0
        self.skills: dict[str, int] = {}
        self.ready = False
        self.idle_since = 0
        self.slot: dict[str, int] = {}               # queue -> its number (the queues it is a member of)
        # what pick_waiter reads of the agent, in one object: its byte and bit in the queues' served
        # sets (order // 8, 1 << order % 8), the numbers of its queues
        self.pick: tuple[int, int, tuple[int, ...]] = (0, 0, ())
        self.slots: dict[str, list[list[_Key]]] = {}  # queue -> the rank buckets it sits in
        self.keys: dict[str, _Key] = {}              # queue -> its key in them while ready
        self.reserved: dict[str, _Rec] | None = None  # call id -> waiter reserved for it (None: none)
        self.calls: dict[str, int] = {}              # queue -> calls from it since login
        self.talk: dict[str, int] = {}               # queue -> talk ms from it since login

    def level(self, skill: str) -> int:
        return self.skills.get(skill, 0)

    def serves(self, cls: _Class) -> bool:
        sk = self.skills
        return all(sk.get(s, 0) >= m for s, m in cls.items)

    def rank(self, cls: _Class) -> int:
        sk = self.skills
        return min((sk.get(s, 0) for s in cls.skills), default=0)


class _Queue:
    __slots__ = ("by_index", "containers", "cursor", "heads", "index", "lines", "members", "name", "qi", "rng",
                 "served", "spec", "strategy", "waiters")

    def __init__(self, name: str, spec: QueueSpec, rng: random.Random, qi: int) -> None:
        self.name = name
        self.qi = qi
        self.spec = spec
        self.strategy = spec.strategy
        self.members = tuple(dict.fromkeys(spec.members))
        self.index = {n: i for i, n in enumerate(self.members)}
        self.rng = rng
        self.cursor: str | None = None               # round_robin: the member last offered
        self.waiters: dict[str, _Rec] = {}
        self.lines: dict[int, _Line] = {}            # id(class) -> its waiters here
        self.by_index: list[_Line] = []              # the same, by class index
        # by class index: the members able to serve it, a bit per agent order (a few hundred bytes
        # a class, so the sets of the busy queues stay in cache; an agent's own mask would not)
        self.served: list[bytes] = []
        self.heads: list[int] = []                   # each non-empty line's best, by place
        self.containers: dict[object, _Container] = {}


class Router:
    """Indexes and strategies of the ACD. Every method is one step; none does I/O."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._agents: dict[str, _Agent] = {}
        self._numbers: list[str] = []                # order -> agent number
        self._recs: dict[str, _Rec] = {}
        self._classes: dict[tuple[tuple[str, int], ...], _Class] = {}
        self._seed = 0
        self._seq = 0
        self._best: list[int] = []                   # per queue number: its first head (_NEVER: none)
        self._qlist: list[_Queue] = []               # by queue number

    # -- configuration ---------------------------------------------------------------------------

    def configure(self, queues: Mapping[str, QueueSpec], agents: Mapping[str, Mapping[str, int]], seed: int) -> None:
        """Put a configuration in force. Waiters, ready agents and per-agent statistics are kept; a
        queue no longer configured keeps its old members and strategy while callers wait in it."""
        for spec in queues.values():
            if spec.strategy not in STRATEGIES:
                raise ValueError(f"unknown strategy {spec.strategy!r}")
        old = self._queues
        specs: dict[str, QueueSpec] = dict(queues)
        for name, q in old.items():
            if name not in specs and q.waiters:
                specs[name] = q.spec                 # retired: served to the end
        for number, skills in agents.items():
            self._agent(number).skills = dict(skills)
        for spec in specs.values():
            for m in spec.members:
                self._agent(m)
        ready = [a for a in self._agents.values() if a.ready]
        for a in ready:
            a.ready = False                          # put back once the indexes are rebuilt
        self._numbers = sorted(self._agents, key=number_key)
        for i, n in enumerate(self._numbers):
            a = self._agents[n]
            a.order = i
            a.slot, a.slots, a.keys = {}, {}, {}
        self._queues = {}
        self._qlist = []
        self._best = [_NEVER] * len(specs)
        for name, spec in specs.items():
            prev = old.get(name)
            same_rng = prev is not None and seed == self._seed
            rng = prev.rng if prev is not None and same_rng else random.Random(f"{seed}/{name}")
            q = _Queue(name, spec, rng, len(self._queues))
            if prev is not None:
                q.cursor = prev.cursor
            for m in q.members:
                a = self._agents[m]
                a.slot[name] = q.qi
                a.slots[name] = []
            self._queues[name] = q
            self._qlist.append(q)
        for a in self._agents.values():
            a.pick = (a.order >> 3, 1 << (a.order & 7), tuple(a.slot.values()))
        self._seed = seed
        for rec in self._recs.values():
            for qn in rec.w.queues:
                q = self._queues[qn]
                q.waiters[rec.w.call_id] = rec
                self._ensure(q, rec.cls)
            rec.entry = None
            if rec.reserved is None:
                self._push(rec)
        for a in ready:
            a.ready = True
            self._insert(a)
        freeze_survivors()

    def _agent(self, number: str) -> _Agent:
        a = self._agents.get(number)
        if a is None:
            a = self._agents[number] = _Agent(number)
            a.order = len(self._numbers)
            self._numbers.append(number)
        return a

    def _intern(self, skills: Mapping[str, int]) -> _Class:
        items = tuple(sorted(skills.items()))
        c = self._classes.get(items)
        if c is None:
            c = self._classes[items] = _Class(items)
        return c

    def _ensure(self, q: _Queue, cls: _Class) -> None:
        """Register `cls` in `q` on its first appearance: its index, its list, the set of members
        able to serve it, its ready-agent container."""
        if id(cls) in q.lines:
            return
        index = len(q.by_index)
        if index > _IDX_MASK:
            raise ValueError(f"queue {q.name}: more than {_IDX_MASK + 1} skill requirements")
        h = q.lines[id(cls)] = _Line(q, index)
        q.by_index.append(h)
        served = bytearray((len(self._numbers) + 7) >> 3)
        for m in q.members:
            a = self._agents[m]
            if a.serves(cls):
                served[a.order >> 3] |= 1 << (a.order & 7)
        q.served.append(bytes(served))             # immutable: its bytes inline, one read less
        if cls.key not in q.containers:
            cont = q.containers[cls.key] = _Container()
            for m in q.members:
                a = self._agents[m]
                if not cls.uniform and not a.serves(cls):
                    continue
                r = a.rank(cls)
                bucket = cont.buckets.get(r)
                if bucket is None:
                    bucket = cont.buckets[r] = []
                    cont.ranks = sorted(cont.buckets, reverse=True)
                a.slots[q.name].append(bucket)
                if a.ready:
                    insort(bucket, a.keys[q.name])

    # -- agent availability -----------------------------------------------------------------------

    def agent_ready(self, number: str, idle_since_ms: int) -> None:
        """The agent is now a candidate, idle since `idle_since_ms`."""
        a = self._agent(number)
        if a.ready:
            if a.idle_since == idle_since_ms:
                return
            self._delete(a)
        a.ready = True
        a.idle_since = idle_since_ms
        self._insert(a)

    def agent_unavailable(self, number: str) -> None:
        """Offered, on a call, in wrap-up, not ready or logged out: no longer a candidate."""
        a = self._agents.get(number)
        if a is None or not a.ready:
            return
        self._delete(a)
        a.ready = False

    def agent_logged_in(self, number: str) -> None:
        """A new login: the agent's calls and talk time per queue start again from zero."""
        a = self._agent(number)
        if a.ready:
            self._delete(a)
        a.calls.clear()
        a.talk.clear()
        if a.ready:
            self._insert(a)

    def _key(self, q: _Queue, a: _Agent) -> _Key:
        s = q.strategy
        if s == "longest_idle":
            return (a.idle_since, a.order)
        if s in ("round_robin", "linear"):
            return (q.index[a.number],)
        if s == "fewest_calls":
            return (a.calls.get(q.name, 0), a.idle_since, a.order)
        if s == "least_talk_time":
            return (a.talk.get(q.name, 0), a.idle_since, a.order)
        return (a.order,)                             # ring_all, random

    def _insert(self, a: _Agent) -> None:
        for qn, buckets in a.slots.items():
            k = a.keys[qn] = self._key(self._queues[qn], a)
            for b in buckets:
                insort(b, k)

    def _delete(self, a: _Agent) -> None:
        for qn, buckets in a.slots.items():
            k = a.keys[qn]
            for b in buckets:
                del b[bisect_left(b, k)]

    # -- waiters ---------------------------------------------------------------------------------

    def add(self, w: Waiter) -> None:
        """A caller starts waiting in ``w.queues``; the router sets ``w.seq`` unless it has one (a caller
        coming back after an offer keeps its place)."""
        if w.call_id in self._recs:
            raise ValueError(f"call {w.call_id} already waits")
        for qn in w.queues:
            if qn not in self._queues:
                raise KeyError(qn)
        if not w.seq:
            self._seq += 1
            w.seq = self._seq
        w.queues = tuple(dict.fromkeys(w.queues))
        w.skills = dict(w.skills)
        rec = self._recs[w.call_id] = _Rec(w, self._intern(w.skills))
        for qn in w.queues:
            self._queues[qn].waiters[w.call_id] = rec
        self._push(rec)

    def remove(self, call_id: str) -> Waiter | None:
        """The caller leaves every queue (answered, gone); its stale entries go lazily."""
        rec = self._recs.pop(call_id, None)
        if rec is None:
            return None
        if rec.entry is not None:
            self._invalidate(rec)
        queues = self._queues
        for qn in rec.w.queues:
            q = queues.get(qn)
            if q is not None:
                q.waiters.pop(call_id, None)
        if rec.reserved is not None:
            self._drop_reservation(rec.reserved, call_id)
        return rec.w

    def leave_queue(self, call_id: str, queue: str) -> None:
        """The caller leaves one queue (overflow, exit); it still waits in its others. A waiter in
        no queue stays known (to be joined elsewhere) until removed."""
        rec = self._recs.get(call_id)
        if rec is None or queue not in rec.w.queues:
            return
        self._invalidate(rec)
        rec.w.queues = tuple(qn for qn in rec.w.queues if qn != queue)
        self._left(queue, call_id)
        self._push(rec)

    def join_queue(self, call_id: str, queue: str) -> None:
        """The caller also waits in `queue` (overflow), its place kept."""
        rec = self._recs.get(call_id)
        if rec is None or queue in rec.w.queues:
            return
        q = self._queues[queue]
        self._invalidate(rec)
        rec.w.queues = (*rec.w.queues, queue)
        q.waiters[call_id] = rec
        self._push(rec)

    def widen(self, call_id: str, skill: str, minimum: int) -> None:
        """Lower the minimum asked of `skill` (a skill not asked, or a higher minimum: nothing)."""
        rec = self._recs.get(call_id)
        if rec is None:
            return
        now = rec.w.skills.get(skill)
        if now is None or minimum >= now:
            return
        self._invalidate(rec)
        rec.w.skills = {**rec.w.skills, skill: minimum}
        rec.cls = self._intern(rec.w.skills)
        self._push(rec)

    def reserve(self, call_id: str, agent: str) -> None:
        """Sticky: only `agent` may take the caller until :meth:`unreserve`."""
        rec = self._recs.get(call_id)
        if rec is None:
            return
        self._invalidate(rec)
        if rec.reserved is not None:
            self._drop_reservation(rec.reserved, call_id)
        rec.reserved = agent
        a = self._agent(agent)
        if a.reserved is None:
            a.reserved = {}
        a.reserved[call_id] = rec

    def unreserve(self, call_id: str) -> None:
        """The reservation ends: the caller is routed normally, its place kept."""
        rec = self._recs.get(call_id)
        if rec is None or rec.reserved is None:
            return
        self._drop_reservation(rec.reserved, call_id)
        rec.reserved = None
        self._push(rec)

    def _drop_reservation(self, agent: str, call_id: str) -> None:
        a = self._agents[agent]
        if a.reserved is not None:
            a.reserved.pop(call_id, None)
            if not a.reserved:
                a.reserved = None                    # pick_waiter reads no dict for an agent without

    def _left(self, queue: str, call_id: str) -> None:
        q = self._queues.get(queue)
        if q is not None:
            q.waiters.pop(call_id, None)

    def _push(self, rec: _Rec) -> None:
        if rec.reserved is not None:
            return
        rec.ver += 1
        e: _Entry = (-rec.place, rec.ver, rec)
        rec.entry = e
        at = []
        for qn in rec.w.queues:
            q = self._queues[qn]
            self._ensure(q, rec.cls)
            h = q.lines[id(rec.cls)]
            at.append(h)
            insort(h.items, e)
            h.live += 1
            if h.items[-1] is e:
                self._new_head(q, h)
        rec.at = tuple(at)

    def _invalidate(self, rec: _Rec) -> None:
        if rec.entry is None:
            return
        rec.entry = None
        rec.ver += 1
        for h in rec.at:
            h.live -= 1
            items = h.items
            if h.head is not None and items[-1][2] is rec:
                items.pop()                          # the head leaves: its entry is stale now
                self._new_head(h.q, h)
            elif len(items) > 2 * h.live + 64:
                h.compact()

    def _new_head(self, q: _Queue, h: _Line) -> None:
        """The list's best changed: drop its stale last entries, put its head in order again."""
        items = h.items
        new = None
        while items:
            e = items[-1]
            if e[1] == e[2].ver:
                new = (-e[0] << _IDX_BITS) | h.index
                break
            items.pop()
        heads = q.heads
        old = h.head
        if new == old:
            return
        h.head = new
        if old is not None:
            i = bisect_left(heads, old)
            if new is not None and (i == 0 or heads[i - 1] < new) and (i + 1 == len(heads) or new < heads[i + 1]):
                heads[i] = new                       # same rank among the heads: in place
            else:
                del heads[i]
                old = None
        if old is None and new is not None:
            insort(heads, new)
        self._best[q.qi] = heads[0] if heads else _NEVER

    # -- decisions -------------------------------------------------------------------------------

    def pick_agents(self, call_id: str, queue: str) -> list[str]:
        """The ready agents to offer the caller to now in `queue`: the members able to serve it of
        the best rank, chosen by the queue's strategy (ring_all: all of them, lowest number first;
        any other: one). [] if none (or the caller is reserved for an agent not ready)."""
        rec = self._recs.get(call_id)
        q = self._queues.get(queue)
        if rec is None or q is None or queue not in rec.w.queues:
            return []
        if rec.reserved is not None:
            a = self._agents[rec.reserved]
            return [a.number] if a.ready and queue in a.slot and a.serves(rec.cls) else []
        cls = rec.cls
        cont = q.containers[cls.key]
        floor = cls.floor if cls.uniform else 0
        for r in cont.ranks:
            if r < floor:
                break
            b = cont.buckets[r]
            if b:
                return self._choose(q, b)
        return []

    def _choose(self, q: _Queue, b: list[_Key]) -> list[str]:
        s = q.strategy
        if s == "ring_all":
            n = self._numbers
            return [n[k[0]] for k in b]
        if s == "random":
            return [self._numbers[b[q.rng.randrange(len(b))][0]]]
        if s == "linear":
            return [q.members[b[0][0]]]
        if s == "round_robin":
            last = q.index.get(q.cursor, -1) if q.cursor is not None else -1
            i = bisect_right(b, (last,))
            return [q.members[b[i if i < len(b) else 0][0]]]
        return [self._numbers[b[0][-1]]]

    def pick_waiter(self, agent: str) -> Waiter | None:
        """The waiter the agent should take now: the best place over all its queues among those it
        can serve and not reserved for another agent. It is not removed. The agent need not be
        marked ready."""
        a = self._agents.get(agent)
        if a is None:
            return None
        # Each queue's first head from the router's one list (read by every decision, so in cache);
        # the queue's other heads only where its first beats the best so far but the agent cannot
        # serve it. Everything read here but the agent's own tuple is shared by all decisions.
        best = self._best
        qlist = self._qlist
        byte, bit, qis = a.pick
        bk = _NEVER
        fq: _Queue | None = None
        for qi in qis:
            b = best[qi]
            if b >= bk:
                continue
            q = qlist[qi]
            served = q.served
            if served[b & _IDX_MASK][byte] & bit:
                bk = b
                fq = q
                continue
            for h in q.heads:
                if h >= bk:
                    break
                if served[h & _IDX_MASK][byte] & bit:
                    bk = h
                    fq = q
                    break
        found = fq.by_index[bk & _IDX_MASK].items[-1][2] if fq is not None else None
        for rec in a.reserved.values() if a.reserved is not None else ():
            if (found is None or rec.place < found.place) and a.serves(rec.cls) \
                    and any(qn in a.slot for qn in rec.w.queues):
                found = rec
        return found.w if found is not None else None

    # -- strategy statistics -----------------------------------------------------------------------

    def offered(self, queue: str, agent: str) -> None:
        """An offer was made: round_robin resumes after this member."""
        q = self._queues.get(queue)
        if q is not None and (q.strategy != "round_robin" or agent in q.index):
            q.cursor = agent                         # (only round_robin reads it, and tolerates a stranger)

    def call_done(self, queue: str, agent: str, talk_ms: int) -> None:
        """A call from `queue` ended: one more call and `talk_ms` more talk for the agent there."""
        a = self._agent(agent)
        if a.ready:
            self._delete(a)
        a.calls[queue] = a.calls.get(queue, 0) + 1
        a.talk[queue] = a.talk.get(queue, 0) + talk_ms
        if a.ready:
            self._insert(a)

    # -- views -----------------------------------------------------------------------------------

    def waiting(self, queue: str) -> int:
        q = self._queues.get(queue)
        return len(q.waiters) if q is not None else 0

    def position(self, call_id: str, queue: str) -> int | None:
        """1 = the next served in `queue` (by place; reservations and skills aside)."""
        q = self._queues.get(queue)
        rec = q.waiters.get(call_id) if q is not None else None
        if q is None or rec is None:
            return None
        p = rec.place
        return 1 + sum(1 for r in q.waiters.values() if r.place < p)

    def oldest(self, queue: str) -> Waiter | None:
        """The caller waiting longest in `queue` (earliest first entry, then arrival)."""
        q = self._queues.get(queue)
        if q is None or not q.waiters:
            return None
        return min(q.waiters.values(), key=lambda r: (r.w.first_entry_ms, r.w.seq)).w

    def queues(self) -> tuple[str, ...]:
        """The queues known, configured or retired (kept while callers wait in them)."""
        return tuple(self._queues)
