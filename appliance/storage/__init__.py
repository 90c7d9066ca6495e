"""The engine's records: CDRs and queue/agent events, written by one thread to SQLite."""

from appliance.storage.writer import CdrRecord, QueueEvent, RecordWriter, StorageError, cdr_digest, open_readonly

__all__ = ["CdrRecord", "QueueEvent", "RecordWriter", "StorageError", "cdr_digest", "open_readonly"]
