"""The e1t1 layer's exceptions.

::

    ProtocolError
     +-- DecodeError   octets or digits that do not form a valid message (exact reason in the text)
     +-- EncodeError   a value that cannot be put into a message (too long, bad characters)
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error of the e1t1 layer."""


class DecodeError(ProtocolError):
    """Received octets or digits are not a valid message."""


class EncodeError(ProtocolError):
    """A value cannot be encoded into a message."""
