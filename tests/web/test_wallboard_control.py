"""The agent commands behind the wallboard's buttons (control.sock's agent.state, agent.logout and the
test-only fault.agent_state) refuse arguments of the wrong type with a clear message, and the engine
goes on: the agents' states are unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.control import ControlError
from appliance.world import PhoneScript
from tests.e2e.harness import Site, site_yaml


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0)]
    s = Site(tmp_path, site_yaml(agents=1), [], phones, keep_audio=False, enable_faults=True)
    s.run(4000)
    yield s
    s.close()


def state_of(site: Site, number: str) -> tuple[str, str | None]:
    agent = site.engine.acd.agents[number]
    return agent.state.value, agent.reason


@pytest.mark.parametrize(("cmd", "args", "message"), [
    ("agent.state", {"number": "1001", "state": "not_ready", "reason": ["a"]},
     r"reason must be one of other \(a string\), not \['a'\]"),
    ("agent.state", {"number": "1001", "state": "not_ready", "reason": {"a": 1}},
     r"reason must be one of other \(a string\), not \{'a': 1\}"),
    ("agent.state", {"number": "1001", "state": "not_ready", "reason": 7}, r"reason must be one of other"),
    ("agent.state", {"number": "1001", "state": ["ready"]}, r"state must be ready or not_ready, not \['ready'\]"),
    ("agent.state", {"number": ["1001"], "state": "ready"}, r"number must be a configured agent's number"),
    ("agent.logout", {"number": {"n": "1001"}}, r"number must be a configured agent's number"),
    ("fault.agent_state", {"agent": "1001", "state": "not_ready", "reason": ["a"]},
     r"reason must be one of .*\(a string\), not \['a'\]"),
    ("fault.agent_state", {"agent": "1001", "state": ["ready"]}, r"state must be one of .*, not \['ready'\]"),
    ("fault.agent_state", {"agent": ["1001"], "state": "ready"}, r"agent must be a configured agent's number"),
])
def test_wrong_argument_types_are_refused_clearly(site: Site, cmd: str, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ControlError, match=message) as exc:
        site.request(cmd, **args)
    assert "internal error" not in str(exc.value)
    assert state_of(site, "1001") == ("ready", None)
    assert site.request("agent.state", number="1001", state="not_ready")["state"] == "not_ready"   # it goes on
    assert state_of(site, "1001") == ("not_ready", "other")
