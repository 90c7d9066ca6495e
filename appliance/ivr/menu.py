"""A caller's walk through one IVR menu (the site YAML's ``ivrs:``).

The call plays the menu's greeting; a key the menu names chooses its action (a
queue, or hang up); a key it does not name plays the greeting again; silence
for the menu's ``timeout_ms`` after the greeting plays it again, up to
``max_repeats`` times, then the call is released. The walk decides; the call
machine (appliance.calls) plays, stops and releases.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from appliance.config.model import Ivr


class Choice(enum.Enum):
    QUEUE = 1       # go to `queue`
    HANG_UP = 2     # release the call
    AGAIN = 3       # play the greeting again


@dataclass(frozen=True)
class MenuChoice:
    choice: Choice
    queues: tuple[str, ...] = ()          # QUEUE: the queues to wait in (first: the call's queue) ...
    skills: dict[str, int] = field(default_factory=dict)   # ... the skills asked, {skill: minimum level}
    priority: int = 0                     # ... and the priority (0..9, higher first)

    @property
    def queue(self) -> str | None:
        return self.queues[0] if self.queues else None


def _queues_of(action: Any) -> tuple[str, ...]:
    names = getattr(action, "queues", None)
    if names:
        return tuple(names)
    one = getattr(action, "queue", None)
    return (one,) if one else ()


def queue_choice(action: Any) -> MenuChoice | None:
    """The QUEUE choice a menu action or a route names (queue or queues, skills, priority); None if none."""
    names = _queues_of(action)
    if not names:
        return None
    return MenuChoice(Choice.QUEUE, names, dict(getattr(action, "skills", None) or {}),
                      int(getattr(action, "priority", 0) or 0))


def route_choice(route: Any) -> MenuChoice | None:
    """A route that names queues instead of an IVR: the call starts in them."""
    return queue_choice(route)


class MenuWalk:
    """One caller's position in one menu."""

    def __init__(self, name: str, ivr: Ivr) -> None:
        self.name = name
        self.ivr = ivr
        self.repeats = 0

    @property
    def greeting(self) -> tuple[str, str]:
        """(language, prompt name) of the greeting."""
        return self.ivr.language, self.ivr.greeting

    @property
    def timeout_ms(self) -> int:
        return self.ivr.timeout_ms

    def key(self, digit: str) -> MenuChoice:
        action = self.ivr.menu.get(digit)
        if action is None:
            return MenuChoice(Choice.AGAIN)
        choice = queue_choice(action)
        if choice is not None:
            return choice
        if action.hangup:
            return MenuChoice(Choice.HANG_UP)
        return MenuChoice(Choice.AGAIN)

    def silence(self) -> MenuChoice:
        """No key for timeout_ms after the greeting."""
        if self.repeats >= self.ivr.max_repeats:
            return MenuChoice(Choice.HANG_UP)
        self.repeats += 1
        return MenuChoice(Choice.AGAIN)
