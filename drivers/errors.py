"""The drivers layer's exceptions, and the one checker every C status goes through.

::

    DriverError
     +-- DriverNotFoundError    no backend of that name is registered
     +-- DriverInitError        the card could not be opened (bad description, out of memory)
     |    +-- NoDeviceError     the backend's hardware is absent ("no DAHDI devices found")
     +-- DriverOperationError   an operation on an open card failed
     |    +-- NotSupportedError an optional capability this backend does not have
     +-- FarEndError            a far-end peer was refused (the reason says why)
"""

from __future__ import annotations


def _status_text(code: int) -> str:
    """The neutral header's text for a cb_status code (include/cb_records.h)."""
    from drivers._binding import load

    ffi, lib = load()
    return str(ffi.string(lib.cb_status_text(code)).decode())


class DriverError(Exception):
    """Base of every error of the drivers layer."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        self.error_code = error_code
        if error_code is not None:
            message = f"{message} [{_status_text(error_code)} {error_code}]"
        super().__init__(message)


class DriverNotFoundError(DriverError, NotImplementedError):
    """No backend is registered under that name."""


class DriverInitError(DriverError):
    """The card could not be opened."""


class NoDeviceError(DriverInitError):
    """The backend's hardware is not present on this machine."""


class DriverOperationError(DriverError):
    """An operation on an open card failed."""


class NotSupportedError(DriverOperationError):
    """The backend lacks an optional capability (see ``Card.capabilities``)."""


class FarEndError(DriverError):
    """A far-end peer was refused."""


def check(rc: int, what: str) -> int:
    """Raise DriverOperationError for a negative C status; return rc otherwise."""
    if rc < 0:
        raise DriverOperationError(what, rc)
    return rc
