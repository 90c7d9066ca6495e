"""The records the engine stores, and how readers get at them.

:class:`CdrRecord` and :class:`QueueEvent` check their fields when built, so a
bad record is refused in the control tier with a clear message, never later in
the writer thread where nobody could be told. Two more kinds travel in the same
batches, through the same spool: :class:`CallMark` (the durable mark of a call
in progress, a ``live_call`` row) and :class:`AgentSession` (an agent logged in
or out, an ``agent_session`` row). Times are integer ms of the
scheduler clock; only ``calendar_start`` is a calendar time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from dataclasses import dataclass
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
    cdr,
)


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
    """One of "answered", "abandoned", "no_agent", "ivr_hangup", "failed", "shutdown", "system_restart"."""
    calendar_start: str
    start_ms: int
    queue_entry_ms: int | None
    answer_ms: int | None
    end_ms: int
    wait_ms: int | None
    talk_ms: int | None

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


@dataclass(frozen=True)
class QueueEvent:
    """A queue or agent event ("enter", "connect", "abandon", "agent_state"...) at a scheduler tick."""

    tick_ms: int
    kind: str
    queue: str | None
    agent: str | None
    call_id: str | None
    detail: str = ""

    def __post_init__(self) -> None:
        o = "QueueEvent"
        _check_ms(o, "tick_ms", self.tick_ms, optional=False)
        _check_str(o, "kind", self.kind, KIND_LEN, optional=False)
        for name in ("queue", "agent", "call_id"):
            _check_str(o, name, getattr(self, name), ID_LEN, optional=True)
        if not isinstance(self.detail, str):
            raise RecordError(f"{o}.detail must be a string, not {self.detail!r}")


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


Record = CdrRecord | QueueEvent | CallMark | AgentSession

_KINDS: dict[str, type[Record]] = {"cdr": CdrRecord, "event": QueueEvent, "mark": CallMark, "agent": AgentSession}
_KIND_OF: dict[type, str] = {cls: kind for kind, cls in _KINDS.items()}


def check_record(record: object) -> None:
    """Raise :class:`RecordError` unless `record` is a CdrRecord, QueueEvent, CallMark or AgentSession."""
    if type(record) not in _KIND_OF:
        raise RecordError("only CdrRecord, QueueEvent, CallMark and AgentSession are stored, not "
                          f"{type(record).__name__}: {record!r}")


def record_to_json(record: Record) -> bytes:
    """The record as one line of JSON, tagged with its kind (the spool's format)."""
    kind = _KIND_OF[type(record)]
    return json.dumps({"kind": kind, "fields": dataclasses.asdict(record)}, separators=(",", ":")).encode()


def record_from_json(blob: bytes) -> Record:
    """Inverse of :func:`record_to_json`; raises RecordError on anything else."""
    try:
        obj = json.loads(blob)
        kind, fields = obj["kind"], obj["fields"]
        cls = _KINDS.get(kind)
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
