"""Python names for the neutral header's numbers (include/cb_records.h).

The enums are made from the compiled extension's constants, so the header is
the only place a kind or a status is defined: ``EventType.HOOK_OFF`` is
``CB_EV_HOOK_OFF``, ``CmdOp.RING`` is ``CB_CMD_RING``, ``FarError.SHORT`` is
``CB_FAR_SHORT``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple

from drivers._binding import load

_ffi, _lib = load()


def _enum(name: str, prefix: str) -> Any:
    """An IntEnum of every constant of the header whose name starts with `prefix`."""
    members = {k[len(prefix):]: int(getattr(_lib, k)) for k in dir(_lib) if k.startswith(prefix)}
    return IntEnum(name, members)


EventType: Any = _enum("EventType", "CB_EV_")
"""enum cb_event_type: the kind of an event record."""
CmdOp: Any = _enum("CmdOp", "CB_CMD_")
"""enum cb_cmd_op: the kind of a command record."""
FarError: Any = _enum("FarError", "CB_FAR_")
"""enum cb_far_error: why a far-end peer was refused."""
Caps: Any = _enum("Caps", "CB_CAP_")
"""enum cb_card_caps: what a card has beyond the required operations."""
Status: Any = _enum("Status", "CB_ERR_")
"""enum cb_status's errors (negative): a DriverError's error_code."""


def status_text(status: int) -> str:
    """The header's text for a cb_status code."""
    return str(_ffi.string(_lib.cb_status_text(status)).decode())


FAR_ERROR_TEXT: dict[int, str] = {
    FarError.SHORT: "connection closed or message cut short",
    FarError.BAD_TYPE: "unknown message type",
    FarError.BAD_LENGTH: "length does not match the block's shape",
    FarError.BAD_SEQUENCE: "sequence number out of order",
    FarError.BAD_TICK: "first tick is not the block's",
    FarError.BAD_EVENT: "event names a channel not claimed, a tick outside the block, or a wrong type",
    FarError.IO: "socket error",
    FarError.TOO_LONG: "message longer than the largest block (20 ticks, 256 events)",
    FarError.BAD_COUNT: "more events than one block may carry (256)",
    FarError.TIMEOUT: "no answer within the dead-peer limit (lockstep)",
    FarError.LATE_RUN: "answers too late for the dead-peer number of blocks in a row",
    FarError.STALLED: "stopped reading: its blocks could not be handed over for the dead-peer number of blocks",
    FarError.START_MISSED: "handed to the card after its first block had passed",
}


class LineEvent(NamedTuple):
    """One event: at `tick`, on channel `chan`."""

    tick: int
    chan: int
    type: int
    value: int
    extra: int = 0
