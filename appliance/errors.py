"""The appliance layer's exceptions.

::

    ApplianceError
     +-- PromptError      a prompt is missing or malformed
     +-- ConfigError      a configuration document has problems (each with FILE:LINE:COL)
     +-- ApplyError       a valid configuration could not be switched to (rolled back)
     |    +-- RestartNeededError   it changes what only a restart can (ports, law...): stored for the next start
     +-- EngineRunningError  another engine holds the state directory
"""

from __future__ import annotations

from dataclasses import dataclass


class ApplianceError(Exception):
    """Base of every error of the appliance layer."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration document, at a 1-based line and column."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ConfigError(ApplianceError):
    """A configuration document has problems; str() lists them as FILE:LINE:COL: message."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line, i.col, i.message))
        super().__init__("\n".join(str(i) for i in self.issues))


class ApplyError(ApplianceError):
    """A valid configuration was not put in force (stale base, or the switch failed and rolled back)."""


class RestartNeededError(ApplyError):
    """A valid configuration changes what a running engine cannot (ports, spans, law, zone, k, the
    card backend): it is stored and put in force when the engine next starts."""


class EngineRunningError(ApplianceError):
    """Another engine (this process or another) holds the state directory's lock: one engine per
    directory, or the two would record each other's calls as lost and remove each other's sockets."""
