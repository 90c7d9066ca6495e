"""The engine's record store: CDRs and the event log, written to SQLite by one thread.

See :mod:`appliance.storage.writer` for how records stay safe (WAL, synchronous=FULL,
one transaction per control period, a pre-allocated spool when the database cannot
commit), :mod:`appliance.storage.spool` for the spool file's format and how it is
read back, and :mod:`appliance.storage.schema` for the tables.
"""

from appliance.storage.cdr import CdrRecord, Event, cdr_digest, open_readonly, read_events
from appliance.storage.errors import RecordError, StorageError, StoreOpenError, WriterStateError
from appliance.storage.writer import RecordWriter

__all__ = [
    "CdrRecord",
    "Event",
    "RecordError",
    "RecordWriter",
    "StorageError",
    "StoreOpenError",
    "WriterStateError",
    "cdr_digest",
    "open_readonly",
    "read_events",
]
