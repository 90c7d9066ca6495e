"""The records the engine stores, and how readers get at them.

:class:`CdrRecord` and :class:`Event` check their fields when built, so a
bad record is refused in the control tier with a clear message, never later in
the writer thread where nobody could be told. Two more kinds travel in the same
batches, through the same spool: :class:`CallMark` (the durable mark of a call
in progress, a ``live_call`` row), :class:`MarksRefreshed` (every call in progress
was up at a time: each ``live_call`` row's ``mark_ms`` moves to it) and
:class:`AgentSession` (an agent logged in or out, an ``agent_session`` row). Times are integer ms of the
scheduler clock; only ``calendar_start`` is a calendar time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError

from appliance.storage.errors import RecordError, StoreOpenError
from appliance.storage.schema import (
    CALENDAR_LEN,
    CDR_COLUMNS,
    DISPOSITIONS,
    ID_LEN,
    KIND_LEN,
    NAME_LEN,
    SCHEMA_VERSION,
    cdr,
    event_table,
    schema_version,
)

EVENT_DETAIL_MAX = 4096
"""At most this many characters of JSON text in an event's detail."""


def _check_str(owner: str, name: str, value: object, limit: int, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise RecordError(f"{owner}.{name} must be a string{' or None' if optional else ''}, not {value!r}")
    if not optional and not value:
        raise RecordError(f"{owner}.{name} must not be empty")
    if len(value) > limit:
        raise RecordError(f"{owner}.{name} is {len(value)} characters long; at most {limit} are stored")


def _check_ms(owner: str, name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(f"{owner}.{name} must be integer ms{' or None' if optional else ''}, not {value!r}")
    if not -(1 << 63) <= value < (1 << 63):
        raise RecordError(f"{owner}.{name} = {value} does not fit a 64-bit column")


@dataclass(frozen=True)
class CdrRecord:
    """One call's detail record, written once when the call ends.

    All ``*_ms`` fields are integer milliseconds of the scheduler clock;
    ``calendar_start`` is the call's start as an ISO 8601 string.
    """

    call_id: str
    config_version: int
    trunk: str | None
    ani: str | None
    dnis: str | None
    queue: str | None
    agent: str | None
    disposition: str
    """One of schema.DISPOSITIONS: "answered", "abandoned", "no_agent", "ivr_hangup", "failed", "busy",
    "blocked", "exit", "shutdown", "system_restart", "rejected", "line_fault"."""
    calendar_start: str
    start_ms: int
    queue_entry_ms: int | None
    answer_ms: int | None
    end_ms: int
    wait_ms: int | None
    talk_ms: int | None
    # A PRI call's (schema version 4; None for a call on an analog trunk): its B-channel's timeslot, its
    # calling number's type of number, numbering plan, presentation and screening as received (their
    # names), and the cause (Q.850) it was cleared with, ours or the far end's.
    timeslot: int | None = None
    ani_ton: str | None = None
    ani_npi: str | None = None
    ani_presentation: str | None = None
    ani_screening: str | None = None
    cause: int | None = None

    def __post_init__(self) -> None:
        o = "CdrRecord"
        _check_str(o, "call_id", self.call_id, ID_LEN, optional=False)
        _check_ms(o, "config_version", self.config_version, optional=False)
        if self.config_version < 0:
            raise RecordError(f"{o}.config_version must be >= 0, not {self.config_version}")
        for name in ("trunk", "ani", "dnis", "queue", "agent"):
            _check_str(o, name, getattr(self, name), ID_LEN, optional=True)
        if self.disposition not in DISPOSITIONS:
            raise RecordError(f"{o}.disposition {self.disposition!r} is not one of {', '.join(sorted(DISPOSITIONS))}")
        _check_str(o, "calendar_start", self.calendar_start, CALENDAR_LEN, optional=False)
        try:
            datetime.fromisoformat(self.calendar_start)
        except ValueError:
            raise RecordError(f"{o}.calendar_start {self.calendar_start!r} is not an ISO 8601 date and time") from None
        _check_ms(o, "start_ms", self.start_ms, optional=False)
        _check_ms(o, "end_ms", self.end_ms, optional=False)
        for name in ("queue_entry_ms", "answer_ms", "wait_ms", "talk_ms"):
            _check_ms(o, name, getattr(self, name), optional=True)
        if self.end_ms < self.start_ms:
            raise RecordError(f"{o}.end_ms {self.end_ms} is before start_ms {self.start_ms} (call {self.call_id})")
        _check_small(o, "timeslot", self.timeslot, 1, 31)
        for name in ("ani_ton", "ani_npi", "ani_presentation", "ani_screening"):
            _check_str(o, name, getattr(self, name), NAME_LEN, optional=True)
        _check_small(o, "cause", self.cause, 0, 127)


def _check_small(owner: str, name: str, value: object, low: int, high: int) -> None:
    """An optional small integer (a timeslot, a cause) within low-high."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RecordError(f"{owner}.{name} must be None or an integer {low}-{high}, not {value!r}")


def boot_of(call_id: str) -> int:
    """The boot number a call id starts with (``"12-000034"`` -> 12); 0 if it has none."""
    head = call_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _detail_text(owner: str, detail: object) -> str:
    if not isinstance(detail, dict) or not all(isinstance(k, str) for k in detail):
        raise RecordError(f"{owner}.detail must be a dict with string keys, not {detail!r}")
    try:
        text = json.dumps(detail, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"{owner}.detail is not JSON: {exc}") from None
    if len(text) > EVENT_DETAIL_MAX:
        raise RecordError(f"{owner}.detail is {len(text)} characters of JSON; at most {EVENT_DETAIL_MAX} are stored")
    return text


@dataclass(frozen=True)
class Event:
    """One event of the log (table ``event``): a call's, a queue's or an agent's, at a scheduler tick of
    boot `boot`. Kinds and their detail keys: docs/events.md. `detail` is stored as JSON (sorted keys)."""

    boot: int
    tick_ms: int
    kind: str
    call_id: str | None = None
    queue: str | None = None
    agent: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    _json: str = field(default="", init=False, compare=False, repr=False)   # detail as checked, then stored

    def __post_init__(self) -> None:
        o = "Event"
        _check_ms(o, "boot", self.boot, optional=False)
        if not 0 <= self.boot < (1 << 31):
            raise RecordError(f"{o}.boot must be a boot number >= 0, not {self.boot}")
        _check_ms(o, "tick_ms", self.tick_ms, optional=False)
        _check_str(o, "kind", self.kind, KIND_LEN, optional=False)
        for name in ("call_id", "queue", "agent"):
            _check_str(o, name, getattr(self, name), ID_LEN, optional=True)
        object.__setattr__(self, "_json", _detail_text(o, self.detail))

    @property
    def detail_json(self) -> str:
        """The detail as stored: JSON text, sorted keys (made once, when the event was checked)."""
        return self._json


def event_values(ev: Event) -> tuple[Any, ...]:
    """The event's values in the order of the ``event`` table's columns (EVENT_COLUMNS)."""
    return (ev.boot, ev.tick_ms, ev.kind, ev.call_id, ev.queue, ev.agent, ev.detail_json)


V2_KINDS = {"enter": "queue_enter", "connect": "answer", "abandon": "queue_leave"}
"""Version 2's event kinds and what they became; others (agent_state) kept."""
V2_AGENT_STATES = {"ringing": "offered", "talking": "on_call"}
"""Version 2's agent state names and what they became; others (ready, not_ready, logged_out) kept."""


def event_from_v2(tick_ms: int, kind: str, queue: str | None, agent: str | None, call_id: str | None,
                  text: str, boot: int | None = None) -> Event:
    """A version 2 ``queue_event`` row (or spooled QueueEvent) as an Event: the boot `boot`, else from the
    call id's ``<boot>-`` prefix (else 0), the kind mapped (V2_KINDS), the old free text kept as ``detail.text``
    (an agent_state's ``"state: why"`` also split into ``state`` and ``why``, the state names of
    V2_AGENT_STATES renamed, a not_ready's reason ``restart`` or ``missed`` when the why says so, else
    ``other``)."""
    detail: dict[str, Any] = {"text": text}
    new_kind = V2_KINDS.get(kind, kind)
    if kind == "abandon":
        detail.update(outcome="abandoned", to=None)
    elif kind == "enter":
        detail["first"] = True                     # version 2 entered each call into one queue, once
    elif kind == "agent_state":
        state, _, why = text.partition(": ")
        state = V2_AGENT_STATES.get(state, state)
        reason = None
        if state == "not_ready":
            reason = why if why in ("restart", "missed") else "other"
        detail.update(state=state, why=why, reason=reason, call_id=None)
    if boot is None:
        boot = boot_of(call_id) if call_id else 0
    return Event(boot, tick_ms, new_kind, call_id, queue, agent, detail)


@dataclass(frozen=True)
class CallMark:
    """The durable mark of a call in progress: what its CDR would say if the engine died now.

    ``mark_ms`` is the last engine time the call was known to be up (the period the mark
    was taken in). Stored as the call's ``live_call`` row (replacing the previous mark) and
    deleted in the transaction that stores the call's CDR.
    """

    call_id: str
    config_version: int
    trunk: str | None
    ani: str | None
    dnis: str | None
    queue: str | None
    agent: str | None
    calendar_start: str
    start_ms: int
    queue_entry_ms: int | None
    answer_ms: int | None
    mark_ms: int

    def __post_init__(self) -> None:
        o = "CallMark"
        _check_str(o, "call_id", self.call_id, ID_LEN, optional=False)
        _check_ms(o, "config_version", self.config_version, optional=False)
        for name in ("trunk", "ani", "dnis", "queue", "agent"):
            _check_str(o, name, getattr(self, name), ID_LEN, optional=True)
        _check_str(o, "calendar_start", self.calendar_start, CALENDAR_LEN, optional=False)
        for name in ("start_ms", "mark_ms"):
            _check_ms(o, name, getattr(self, name), optional=False)
        for name in ("queue_entry_ms", "answer_ms"):
            _check_ms(o, name, getattr(self, name), optional=True)
        if self.mark_ms < self.start_ms:
            raise RecordError(f"{o}.mark_ms {self.mark_ms} is before start_ms {self.start_ms} (call {self.call_id})")

    def lost_cdr(self, disposition: str = "system_restart") -> CdrRecord:
        """The CDR of a call the engine lost: it ended, as far as is known, at its last mark."""
        end = self.mark_ms
        answer = self.answer_ms if self.answer_ms is not None and self.answer_ms <= end else None
        wait = answer - self.queue_entry_ms if answer is not None and self.queue_entry_ms is not None else None
        return CdrRecord(
            call_id=self.call_id, config_version=self.config_version, trunk=self.trunk, ani=self.ani,
            dnis=self.dnis, queue=self.queue, agent=self.agent, disposition=disposition,
            calendar_start=self.calendar_start, start_ms=self.start_ms, queue_entry_ms=self.queue_entry_ms,
            answer_ms=answer, end_ms=end, wait_ms=wait, talk_ms=end - answer if answer is not None else None)


@dataclass(frozen=True)
class MarksRefreshed:
    """Every call in progress was up at `mark_ms`: each call's mark, as stored when this is applied,
    has its ``mark_ms`` moved to it (never before the call's ``start_ms``, never back). One record
    instead of a CallMark per call whose only change is the time (the marks of calls that changed
    come as CallMarks before it)."""

    mark_ms: int

    def __post_init__(self) -> None:
        _check_ms("MarksRefreshed", "mark_ms", self.mark_ms, optional=False)

    def applied_to(self, mark: CallMark) -> CallMark:
        """`mark` as this refresh leaves it."""
        if mark.mark_ms >= self.mark_ms:
            return mark
        return dataclasses.replace(mark, mark_ms=max(mark.start_ms, self.mark_ms))


@dataclass(frozen=True)
class AgentSession:
    """An agent logged in at `phone` (a durable ``agent_session`` row) or, with `phone` None, logged out."""

    agent: str
    phone: str | None
    tick_ms: int

    def __post_init__(self) -> None:
        o = "AgentSession"
        _check_str(o, "agent", self.agent, ID_LEN, optional=False)
        _check_str(o, "phone", self.phone, ID_LEN, optional=True)
        _check_ms(o, "tick_ms", self.tick_ms, optional=False)


Record = CdrRecord | Event | CallMark | MarksRefreshed | AgentSession

_KINDS: dict[str, type[Record]] = {"cdr": CdrRecord, "event": Event, "mark": CallMark, "refresh": MarksRefreshed,
                                   "agent": AgentSession}
_KIND_OF: dict[type, str] = {cls: kind for kind, cls in _KINDS.items()}


def check_record(record: object) -> None:
    """Raise :class:`RecordError` unless `record` is a CdrRecord, Event, CallMark, MarksRefreshed or
    AgentSession."""
    if type(record) not in _KIND_OF:
        raise RecordError("only CdrRecord, Event, CallMark, MarksRefreshed and AgentSession are stored, not "
                          f"{type(record).__name__}: {record!r}")


def record_to_json(record: Record) -> bytes:
    """The record as one line of JSON, tagged with its kind (the spool's format)."""
    kind = _KIND_OF[type(record)]
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record) if f.init}
    return json.dumps({"kind": kind, "fields": fields}, separators=(",", ":")).encode()


def record_from_json(blob: bytes) -> Record:
    """Inverse of :func:`record_to_json`; raises RecordError on anything else."""
    try:
        obj = json.loads(blob)
        kind, fields = obj["kind"], obj["fields"]
        cls = _KINDS.get(kind)
        if kind == "event" and isinstance(fields.get("detail"), str) and "boot" not in fields:
            # A QueueEvent spooled by a version 2 firmware.
            return event_from_v2(fields["tick_ms"], fields["kind"], fields["queue"], fields["agent"],
                                 fields["call_id"], fields["detail"])
        if cls is not None:
            return cls(**fields)
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"not a stored record: {exc}") from None
    raise RecordError(f"not a stored record: unknown kind {kind!r}")


def open_readonly(db_path: Path) -> Engine:
    """A read-only engine on the record database, for readers (the panel, reports).

    Connections open ``file:<path>?mode=ro``, so a reader can never write, and
    wait briefly rather than fail while the writer checkpoints.
    """
    if not db_path.is_file():
        raise StoreOpenError(f"{db_path}: no record database there")
    uri = f"file:{quote(str(db_path.resolve()))}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=2000")
        cur.close()

    return engine


def read_events(db_path: Path) -> list[Event]:
    """Every stored event in the log's order, read through a read-only connection (the database is never
    written: a report works with the engine up or down). StoreOpenError if there is no database, it is
    not ours, or it is of an older schema (the engine migrates it when it next starts)."""
    engine = open_readonly(db_path)
    try:
        with engine.connect() as conn:
            try:
                version = conn.execute(select(schema_version.c.version)).scalar()
            except SQLAlchemyError:
                raise StoreOpenError(f"{db_path}: not a record database") from None
            if version is None or version < SCHEMA_VERSION:
                raise StoreOpenError(f"{db_path}: the record database is of schema version {version}; the engine "
                                     f"migrates it to version {SCHEMA_VERSION} when it next starts")
            if version > SCHEMA_VERSION:
                raise StoreOpenError(f"{db_path}: schema version {version} is newer than this firmware's "
                                     f"{SCHEMA_VERSION}")
            c = event_table.c
            rows = conn.execute(select(c.boot, c.tick_ms, c.kind, c.call_id, c.queue, c.agent, c.detail)
                                .order_by(c.id)).all()
    except SQLAlchemyError as exc:
        raise StoreOpenError(f"{db_path}: cannot read the events: {exc}") from None
    finally:
        engine.dispose()
    return [event_of_row(r) for r in rows]


def event_of_row(r: Any) -> Event:
    """A stored event row (boot, tick_ms, kind, call_id, queue, agent, detail) as an Event; a detail
    that is not a JSON object is kept as its text."""
    try:
        detail = json.loads(r.detail)
        return Event(r.boot, r.tick_ms, r.kind, r.call_id, r.queue, r.agent,
                     detail if isinstance(detail, dict) else {"text": r.detail})
    except (ValueError, RecordError):
        return Event(r.boot, r.tick_ms, r.kind, r.call_id, r.queue, r.agent, {"text": str(r.detail)[:1000]})


def cdr_digest(db_path: Path) -> str:
    """sha256 (hex) over every CDR row ordered by call id, every column but the row id.

    Two virtual-time runs of the same scenario give the same digest.
    """
    engine = open_readonly(db_path)
    h = hashlib.sha256()
    try:
        with engine.connect() as conn:
            cols = [cdr.c[name] for name in CDR_COLUMNS]
            for row in conn.execute(select(*cols).order_by(cdr.c.call_id)):
                h.update(json.dumps(list(row), separators=(",", ":")).encode())
                h.update(b"\n")
    except SQLAlchemyError as exc:
        raise StoreOpenError(f"{db_path}: cannot read the CDRs: {exc}") from None
    finally:
        engine.dispose()
    return h.hexdigest()
