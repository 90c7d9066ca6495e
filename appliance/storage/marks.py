"""Durable marks: calls in progress and logged-in agents, kept in the record database.

The engine hands :class:`~appliance.storage.cdr.CallMark` and
:class:`~appliance.storage.cdr.AgentSession` records to the writer in the same
batches as CDRs and events, so they are committed in the same transaction
(or spooled and fsynced with them: the spool carries marks too, in order, and a
replayed spool applies them in order). In that transaction:

- a CallMark replaces its call's ``live_call`` row, unless the same backlog also
  holds the call's CDR (the call has ended: the mark is stale);
- a CdrRecord deletes its call's ``live_call`` row (the call's record and the end of
  its mark are one commit, so a call is never both recorded and in progress);
- a MarksRefreshed moves every ``live_call`` row's ``mark_ms`` up to its time (the
  backlog's last one, applied after its marks: a call marked later in the backlog
  already says a later time, and one that ended has no row);
- an AgentSession with a phone replaces the agent's ``agent_session`` row; without
  one (logged out) it deletes it.

At start the writer reads what is left (:func:`read_startup`): the marks of calls
the engine lost, the logged-in agents, and the highest boot number found among the
stored call ids (ids are ``<boot>-<seq>``) and events' boots, with the spool's records not yet in the
database applied on top.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, func, insert, select, text, update

from appliance.storage.cdr import (
    AgentSession,
    CallMark,
    CdrRecord,
    Event,
    MarksRefreshed,
    Record,
    boot_of,
    event_of_row,
)
from appliance.storage.schema import MARK_COLUMNS, agent_session, delete_ids, event, insert_rows, live_call

_MARK_VALUES = operator.attrgetter(*MARK_COLUMNS)     # a mark's values in live_call's column order


@dataclass
class Startup:
    """What the record database says at start, before the first call of this boot."""

    highest_boot: int = 0
    """The highest boot number among stored call ids and marks (0: none)."""
    live: list[CallMark] = field(default_factory=list)
    """Calls that were up when the engine last stopped without recording them, oldest first."""
    agents: list[AgentSession] = field(default_factory=list)
    """Agents logged in when the engine last stopped, by agent number."""
    events: dict[str, list[Event]] = field(default_factory=dict)
    """The stored events of each call in `live`, in the log's order (its record is their fold)."""


def apply_marks(conn: Connection, backlog: Sequence[Record]) -> None:
    """The backlog's marks and agent sessions, and the end of the marks of its CDRs (see the module)."""
    ended = {r.call_id for r in backlog if isinstance(r, CdrRecord)}
    marks: dict[str, CallMark] = {}
    for r in backlog:
        if isinstance(r, CallMark) and r.call_id not in ended:
            marks[r.call_id] = r                      # the latest mark of each call wins
    delete_ids(conn, live_call, "call_id", sorted(ended | marks.keys()))
    insert_rows(conn, live_call, MARK_COLUMNS, [_MARK_VALUES(m) for m in marks.values()])
    refresh = next((r for r in reversed(backlog) if isinstance(r, MarksRefreshed)), None)
    if refresh is not None:
        c = live_call.c
        conn.execute(update(live_call).where(c.mark_ms < refresh.mark_ms)
                     .values(mark_ms=func.max(c.start_ms, refresh.mark_ms)))
    sessions: dict[str, AgentSession] = {}
    for r in backlog:
        if isinstance(r, AgentSession):
            sessions[r.agent] = r
    for s in sessions.values():
        conn.execute(delete(agent_session).where(agent_session.c.agent == s.agent))
        if s.phone is not None:
            conn.execute(insert(agent_session).values(agent=s.agent, phone=s.phone, since_ms=s.tick_ms))


_MAX_BOOT_SQL = text(
    "SELECT MAX(CAST(substr(call_id, 1, instr(call_id, '-') - 1) AS INTEGER)) FROM cdr "
    "WHERE instr(call_id, '-') > 1")


def read_startup(conn: Connection, pending: Iterable[Record]) -> Startup:
    """Marks, agent sessions and the highest boot in the database, with `pending` (records of the
    spool not yet in the database, in order) applied on top."""
    with conn.begin():
        highest = max(int(conn.execute(_MAX_BOOT_SQL).scalar() or 0),
                      int(conn.execute(select(func.max(event.c.boot))).scalar() or 0))
        cols = [live_call.c[name] for name in MARK_COLUMNS]
        live = {row.call_id: CallMark(**row._asdict()) for row in conn.execute(select(*cols))}
        agents = {row.agent: AgentSession(row.agent, row.phone, row.since_ms)
                  for row in conn.execute(select(agent_session.c.agent, agent_session.c.phone,
                                                 agent_session.c.since_ms))}
        events: dict[str, list[Event]] = {}
        ids = list(live)
        c = event.c
        for i in range(0, len(ids), 500):       # the lost calls' events (by the call id index)
            for row in conn.execute(select(c.boot, c.tick_ms, c.kind, c.call_id, c.queue, c.agent, c.detail)
                                    .where(c.call_id.in_(ids[i:i + 500])).order_by(c.id)):
                events.setdefault(row.call_id, []).append(event_of_row(row))
    for r in pending:
        if isinstance(r, CdrRecord | CallMark):
            highest = max(highest, boot_of(r.call_id))
        elif isinstance(r, Event):
            highest = max(highest, r.boot)
            if r.call_id is not None:
                events.setdefault(r.call_id, []).append(r)
        if isinstance(r, CdrRecord):
            live.pop(r.call_id, None)
        elif isinstance(r, CallMark):
            live[r.call_id] = r
        elif isinstance(r, MarksRefreshed):
            live = {k: r.applied_to(m) for k, m in live.items()}
        elif isinstance(r, AgentSession):
            if r.phone is None:
                agents.pop(r.agent, None)
            else:
                agents[r.agent] = r
    highest = max([highest, *(boot_of(m.call_id) for m in live.values())])
    return Startup(highest, sorted(live.values(), key=lambda m: (m.start_ms, m.call_id)),
                   [agents[k] for k in sorted(agents)], {k: events[k] for k in live if k in events})
