"""The site configuration in force, as the panel sees it: read from the engine's store of applied versions
(``STATE_DIR/config``, :class:`appliance.config.store.ConfigStore`), which the panel reads but never writes.

The agent numbers an account may be given are the version in force's (:func:`agent_numbers`). Before an engine
first ran on the state directory there is none: the panel then takes agent numbers unchecked, with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from appliance.config.store import ConfigStore
from appliance.errors import ConfigError


@dataclass(frozen=True)
class SiteAgents:
    """The agent numbers of the configuration in force, or None and why it cannot be read (`unreadable`)."""

    numbers: frozenset[str] | None
    unreadable: str | None = None


def read_agents(state_dir: Path) -> SiteAgents:
    """The agent numbers of the configuration in force under `state_dir` (read only: nothing is made there)."""
    store = ConfigStore(Path(state_dir), create=False)
    try:
        stored = store.current()
    except (OSError, ValueError, KeyError, ConfigError) as exc:
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return SiteAgents(None, f"the configuration in force under {store.dir} cannot be read "
                                f"({text.splitlines()[0]})")
    if stored is None:
        return SiteAgents(None, f"no configuration is stored under {store.dir} yet (no engine has run on that "
                                "state directory)")
    return SiteAgents(frozenset(agent.number for agent in stored.config.agents))


def agent_numbers(app: Flask) -> SiteAgents:
    """The agent numbers of the app's engine (STATE_DIR), read now."""
    return read_agents(Path(app.config["STATE_DIR"]))
