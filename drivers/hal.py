"""Python names for the HAL's numbers (drivers/include/cb_hal.h).

The C header is the source of truth; tests/drivers/test_hal.py checks that
every member here equals the compiled value.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class EventType(IntEnum):
    """enum cb_event_type."""

    HOOK_OFF = 1
    HOOK_ON = 2
    FLASH = 3
    RING_ON = 4
    RING_OFF = 5
    BATTERY = 6
    POLARITY = 7
    FAR_ERROR = 8
    FAR_UP = 9
    FAR_DOWN = 10
    FAR_LATE = 11
    CMD_DONE = 12
    DTMF = 0x100
    DTMF_DOWN = 0x101
    FSK_BYTE = 0x102
    FSK_CARRIER = 0x103
    FSK_TX_DONE = 0x104
    DTMF_TX_DONE = 0x105
    TONE_DONE = 0x106
    PLAY_DONE = 0x107
    BUSY = 0x108
    MEDIA_ERROR = 0x109


class CmdOp(IntEnum):
    """enum cb_cmd_op."""

    RING = 1
    RING_STOP = 2
    BATTERY = 3
    POLARITY = 4
    HOOK = 5
    FLASH = 6
    FAR_ATTACH = 7
    FAR_DETACH = 8
    LAW = 0x100
    BRIDGE = 0x101
    UNBRIDGE = 0x102
    TONE = 0x103
    DTMF_TX = 0x104
    FSK_TX = 0x105
    PLAY = 0x106
    STOP_PLAY = 0x107
    DETECT = 0x108
    FSK_RX = 0x109
    BUSY_DETECT = 0x10A
    SILENCE = 0x10B


class FarError(IntEnum):
    """enum cb_far_error: why a far-end peer was refused."""

    OK = 0
    SHORT = 1
    BAD_TYPE = 2
    BAD_LENGTH = 3
    BAD_SEQUENCE = 4
    BAD_TICK = 5
    BAD_EVENT = 6
    IO = 7
    TOO_LONG = 8
    BAD_COUNT = 9
    TIMEOUT = 10
    LATE_RUN = 11
    STALLED = 12
    START_MISSED = 13


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
