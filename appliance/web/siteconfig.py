"""The site configuration in force, as the panel sees it: read from the engine's store of applied versions
(``STATE_DIR/config``, :class:`appliance.config.store.ConfigStore`), which the panel reads but never writes.

The agent numbers an account may be given are the version in force's (:func:`agent_numbers`). Before an engine
first ran on the state directory there is none: the panel then takes agent numbers unchecked, with a warning.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=8)
def _version_agents(config_dir: Path, version: int, stamp: tuple[int, int]) -> frozenset[str]:
    """The agent numbers of one stored version, parsed once (a stored version is never rewritten; `stamp`, its
    file's mtime and size, tells a store made again in the same place from the one before)."""
    return frozenset(agent.number for agent in ConfigStore(config_dir.parent, create=False).get(version).config.agents)


def read_agents(state_dir: Path) -> SiteAgents:
    """The agent numbers of the configuration in force under `state_dir` (read only: nothing is made there)."""
    store = ConfigStore(Path(state_dir), create=False)
    try:
        document = store.document()
        if document is None:
            return SiteAgents(None, f"no configuration is stored under {store.dir} yet (no engine has run on that "
                                    "state directory)")
        version = document[0]
        st = (store.dir / f"{version:04d}.yaml").stat()
        return SiteAgents(_version_agents(store.dir, version, (st.st_mtime_ns, st.st_size)))
    except (OSError, ValueError, KeyError, ConfigError) as exc:
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return SiteAgents(None, f"the configuration in force under {store.dir} cannot be read "
                                f"({text.splitlines()[0]})")


def agent_numbers(app: Flask) -> SiteAgents:
    """The agent numbers of the app's engine (STATE_DIR), read now."""
    return read_agents(Path(app.config["STATE_DIR"]))
