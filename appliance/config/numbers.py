"""Telephone numbers as the VIP and blacklist rules compare them.

A number loses its spaces and dashes and a leading ``+``: ``+86 139-0000-1111`` is
``8613900001111``. A pattern is such a number, exact, or with a trailing
``*``: a prefix (``139*`` matches every number that starts with 139, and 139 itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: a pattern as written in the site file: digits with spaces and dashes, an optional leading +
#: and an optional trailing * (at least one digit)
PATTERN = re.compile(r"\+?[0-9][0-9 -]*\*?")


def normalise_number(s: str) -> str:
    """`s` without spaces, dashes and a leading ``+``; nothing else changes (a caller ID that is
    not all digits stays as it is and matches no pattern)."""
    s = s.replace(" ", "").replace("-", "")
    return s[1:] if s.startswith("+") else s


def check_pattern(s: str) -> str:
    """A pattern of the site file, normalised; ValueError if it is not one."""
    if not PATTERN.fullmatch(s):
        raise ValueError(f"{s!r} is not a number (digits, spaces, dashes, a leading + and, for a prefix, "
                         "a trailing *)")
    return normalise_number(s)


def number_matches(patterns: Iterable[str], number: str | None) -> bool:
    """Whether `number` (a caller's, normalised here) matches one of `patterns` (normalised here
    too): exactly, or by prefix for a pattern ending in ``*``. No number matches nothing."""
    if not number:
        return False
    n = normalise_number(number)
    for raw in patterns:
        p = normalise_number(raw)
        if p.endswith("*"):
            if n.startswith(p[:-1]):
                return True
        elif n == p:
            return True
    return False
