"""Position and expected-wait announcements, as lists of prompt names.

A waiting caller hears "you are caller number three" and "your expected wait
is about two minutes", put together from the shipped recorded prompts
(configs/prompts/<lang>/, made by image-build/make_prompts.py). This module only
chooses the names; playing them is the caller's business. Everything here is
pure: no I/O, no clock.

Numbers 0-99 are composed from words:

- ``en``: ``n0``..``n19`` and the tens ``n20``, ``n30``..``n90``
  (23 = ``n20 n3``, 40 = ``n40``).
- ``zh``: the digits ``n0``..``n10`` (ling, yi, er, ... shi): 10-19 = ``n10`` +
  digit (15 = shi wu), the tens = digit + ``n10`` (20 = er shi, 23 = er shi san).
  A count of exactly two ("two minutes") is ``liang`` (liang fen zhong), not er.

Positions and waits above 99 are said as 99: the announcement is an estimate,
and a caller who hears "ninety-nine minutes" has understood. A wait below one
minute is said as one minute (never "zero minutes"). Positions count from 1.
"""

from __future__ import annotations

import math

LANGUAGES = ("en", "zh")
#: The largest number the prompts can say; larger positions and waits are said as this.
MAX_SAID = 99


def _check(lang: str, n: int, what: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"no announcement prompts for language {lang!r} (have: {', '.join(LANGUAGES)})")
    if n < 0:
        raise ValueError(f"{what} must not be negative, is {n}")


def number_prompts(lang: str, n: int) -> list[str]:
    """The prompts that say `n` (0..99) in `lang`."""
    _check(lang, n, "a number")
    if n > MAX_SAID:
        raise ValueError(f"the prompts say numbers up to {MAX_SAID}, not {n}")
    tens, units = divmod(n, 10)
    if lang == "en":
        if n < 20:
            return [f"n{n}"]
        return [f"n{10 * tens}"] + ([f"n{units}"] if units else [])
    # zh
    if n <= 10:
        return [f"n{n}"]
    head = ["n10"] if tens == 1 else [f"n{tens}", "n10"]
    return head + ([f"n{units}"] if units else [])


def position_prompts(lang: str, position: int) -> list[str]:
    """'You are caller number N' (en) / 'nin xianzai paizai di N wei, ...' (zh); N from 1, said up to 99."""
    _check(lang, position, "a position")
    if position == 0:
        raise ValueError("positions count from 1")
    said = number_prompts(lang, min(position, MAX_SAID))
    if lang == "en":
        return ["position_intro", *said]
    return ["position_intro", *said, "position_outro"]


def wait_prompts(lang: str, minutes: int) -> list[str]:
    """'Your expected wait is about N minutes' for a wait in whole minutes (rounded up by the caller).

    Below 1 is said as 1, above 99 as 99.
    """
    _check(lang, minutes, "a wait")
    said = min(max(minutes, 1), MAX_SAID)
    if lang == "en":
        return ["wait_intro", *number_prompts(lang, said), "minute" if said == 1 else "minutes"]
    return ["wait_intro", *(["liang"] if said == 2 else number_prompts(lang, said)), "fenzhong"]


def prompt_names(lang: str) -> frozenset[str]:
    """Every prompt name the functions above can return for `lang` (to load them all up front)."""
    _check(lang, 0, "")
    names: set[str] = set()
    for n in range(1, MAX_SAID + 1):
        names.update(position_prompts(lang, n), wait_prompts(lang, n))
    names.update(number_prompts(lang, 0))
    return frozenset(names)


def ewt_minutes(position: int, aht_ms: float, logged_in: int) -> int | None:
    """Expected wait of the caller at `position` (from 1) in whole minutes, rounded up.

    EWT = position x AHT / logged-in members: each logged-in member serves one
    call per average handle time. None (say nothing) when no member is logged
    in. ``ewt_minutes(3, 180_000, 5)`` = ceil(3 x 180 s / 5 / 60 s) = ceil(1.8) = 2.
    """
    if position < 0 or logged_in < 0:
        raise ValueError(f"position and logged-in members must not be negative, are {position}, {logged_in}")
    if not (math.isfinite(aht_ms) and aht_ms >= 0):
        raise ValueError(f"the average handle time must be a finite number of ms >= 0, is {aht_ms}")
    if logged_in == 0:
        return None
    # One division, so a whole number of minutes stays whole (3 x 100 s / 5 = exactly 1 minute).
    return math.ceil(position * aht_ms / (logged_in * 60_000))
