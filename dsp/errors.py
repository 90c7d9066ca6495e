"""The dsp layer's exceptions, and the one checker every C status goes through.

::

    DspError
     +-- DspInitError       a kernel or ring could not be made (out of memory, bad size)
     +-- DspCommandError    a media command was refused (bad argument, state)
          +-- RingFullError the command ring is full: the command was not queued
"""

from __future__ import annotations


def _status_text(code: int) -> str:
    """The neutral header's text for a cb_status code (include/cb_records.h)."""
    from dsp._binding import load

    ffi, lib = load()
    return str(ffi.string(lib.cb_status_text(code)).decode())


class DspError(Exception):
    """Base of every error of the dsp layer."""

    def __init__(self, message: str, error_code: int | None = None) -> None:
        self.error_code = error_code
        if error_code is not None:
            message = f"{message} [{_status_text(error_code)} {error_code}]"
        super().__init__(message)


class DspInitError(DspError):
    """A kernel bank or ring could not be made."""


class DspCommandError(DspError):
    """A media command was refused."""


class RingFullError(DspCommandError):
    """The command ring is full; the command was not queued (nothing blocks)."""


def check(rc: int, what: str, error: type[DspError] = DspCommandError) -> int:
    """Raise the matching DspError for a negative C status; return rc otherwise.

    `error` is the class of any other refusal: DspCommandError for a command, DspInitError when
    something is being made (a ring of a size out of range, say)."""
    if rc >= 0:
        return rc
    if rc == -3:
        raise RingFullError(f"{what}: command ring full", rc)
    if rc == -1:
        raise DspInitError(f"{what}: out of memory", rc)
    raise error(what, rc)
