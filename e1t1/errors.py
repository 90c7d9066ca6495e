"""The e1t1 layer's exceptions.

::

    ProtocolError
     +-- DecodeError     octets or digits that do not form a valid message (exact reason in the text)
     +-- EncodeError     a value that cannot be put into a message (too long, bad characters)
     +-- FsmError        a machine tried what its table forbids (a transition not declared, an event
     |    |              of another machine): a bug in the machine, not bad input from a line
     |    +-- FsmTableError  a state table that does not hold together: raised when the class is made
     +-- TimerError      an unknown protocol timer, or a value outside the timer's declared range

Bad input from a line is never an exception: an event a state does not accept is a logged,
counted protocol error with a defined outcome (nothing changes).
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error of the e1t1 layer."""


class DecodeError(ProtocolError):
    """Received octets or digits are not a valid message."""


class EncodeError(ProtocolError):
    """A value cannot be encoded into a message."""


class FsmError(ProtocolError):
    """A state machine was asked to do what its table forbids: a bug, not bad input."""


class FsmTableError(FsmError):
    """A machine's declared table is inconsistent (raised when its class is created)."""


class TimerError(ProtocolError, ValueError):
    """A protocol timer that does not exist, or a value outside its declared range."""
