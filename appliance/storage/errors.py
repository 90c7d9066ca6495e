"""The record store's exceptions.

::

    StorageError
     +-- RecordError        a record is malformed (also a ValueError)
     +-- StoreOpenError     the database cannot be opened, or its schema is not ours
     +-- WriterStateError   the writer is used out of order (not started, closed, unknown batch)

A database that stops committing while the writer runs is not an exception for
the caller: records go to the spool and the writer raises an alarm instead.
"""

from __future__ import annotations

from appliance.errors import ApplianceError


class StorageError(ApplianceError):
    """Base of every error of the record store."""


class RecordError(StorageError, ValueError):
    """A CDR or queue event has a missing, mistyped or out-of-range field."""


class StoreOpenError(StorageError):
    """The record database cannot be opened or created, or has a schema this firmware does not know."""


class WriterStateError(StorageError):
    """A writer call made in the wrong state: before start(), after close(), or for a batch never submitted."""
