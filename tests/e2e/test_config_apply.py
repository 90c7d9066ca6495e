"""Applying a configuration: the version it was based on is checked, and the work (YAML, validation,
fsyncs) runs on the configuration worker, never on the control loop."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance import cli
from appliance.config import store as config_store
from appliance.config.loader import parse_config
from appliance.config.store import ConfigStore
from appliance.control import ControlClient
from appliance.engine import TrunkState
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml


def _cli(*argv: str) -> int:
    return cli.main([*argv])


def test_a_stale_base_is_refused_and_get_then_apply_succeeds(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    state = ["--state-dir", str(tmp_path)]
    doc = tmp_path / "doc.yaml"
    try:
        with site.serving():
            for greeting in ("welcome_evening", "welcome"):            # versions 2 and 3
                assert _cli("config", "get", "-o", str(doc), *state) == 0
                doc.write_text(doc.read_text().replace("greeting: welcome\n", f"greeting: {greeting}\n")
                               .replace("greeting: welcome_evening\n", f"greeting: {greeting}\n"))
                assert _cli("config", "apply", str(doc), *state) == 0
            first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
            assert _cli("config", "get", "-o", str(first), *state) == 0
            assert _cli("config", "get", "-o", str(second), *state) == 0
            assert first.read_text().startswith("# cicbox config version 3:")
            capsys.readouterr()
            first.write_text(first.read_text().replace("ring_timeout_ms: 15000", "ring_timeout_ms: 20000"))
            assert _cli("config", "apply", str(first), *state) == 0
            assert capsys.readouterr().out.strip() == "applied as version 4"
            second.write_text(second.read_text().replace("timeout_ms: 5000", "timeout_ms: 7000"))
            assert _cli("config", "apply", str(second), *state) == 2
            err = capsys.readouterr().err
            assert "based on version 3; version 4 is current" in err
            assert site.engine.config_version == 4
            assert site.engine.config.queues["front_desk"].ring_timeout_ms == 20000   # the first edit holds
            assert site.engine.config.ivrs["main"].timeout_ms == 5000
            # --base overrides the header; the refused document was not stored
            assert _cli("config", "apply", str(second), "--base", "4", *state) == 0
            assert capsys.readouterr().out.strip() == "applied as version 5"
            assert _cli("config", "get", *state) == 0
            got = capsys.readouterr().out
            assert got.startswith("# cicbox config version 5:") and got.count("# cicbox config version") == 1
        assert [h.version for h in site.store.history()] == [1, 2, 3, 4, 5]
        assert site.engine.config.ivrs["main"].timeout_ms == 7000
    finally:
        site.close()


def test_a_document_that_names_no_base_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    doc = tmp_path / "edited.yaml"
    doc.write_text(site_yaml(agents=1, greeting="welcome_evening"))
    try:
        with site.serving():
            assert _cli("config", "apply", str(doc), "--state-dir", str(tmp_path)) == 2
        assert "does not say which version it is based on" in capsys.readouterr().err
        assert site.engine.config_version == 1
    finally:
        site.close()


def _big_site(calls: int, filler_agents: int) -> str:
    """`calls` trunks and phones with one agent each, and agents without a phone to reach the size."""
    text = site_yaml(agents=calls)
    trunks = "\n".join(f"  - {{kind: fxo, name: trunk{i + 1}, number: '07558888{i + 1:04d}', "
                       f"callerid: fsk_bell202, answer_on_ring: 2}}" for i in range(calls))
    routes = "\n".join(f"  - {{trunk: trunk{i + 1}, ivr: main}}" for i in range(calls))
    head, rest = text.split("ports:\n", 1)
    rest = "\n".join(line for line in rest.splitlines() if "kind: fxo" not in line and "{trunk: " not in line)
    text = head + "ports:\n" + trunks + "\n" + rest.replace("routes:\n", "routes:\n" + routes + "\n") + "\n"
    return text + "".join(f"  - {{number: '{5000 + i}', name: 'Relief agent {i}'}}\n" for i in range(filler_agents))


def test_a_large_apply_during_calls_runs_off_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 20
    text = _big_site(n, 0)
    big = _big_site(n, 5000 - len(_big_site(n, 0).splitlines()))
    assert len(big.splitlines()) == 5000
    callers = [Caller(trunk=i, at_ms=1000 + 100 * i, ani=f"1380013{i:04d}", digits="1", press_after_ms=500,
                      hold_ms=40000) for i in range(n)]
    phones = [PhoneScript(port=n + i, agent=f"{1001 + i}", login_at_ms=0, answer_after_ms=1000) for i in range(n)]
    site = Site(tmp_path, text, callers, phones, keep_audio=False)
    seen: dict[str, list[int]] = {"yaml": [], "validate": [], "fsync": []}

    def counted(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            seen[kind].append(threading.get_ident())
            return fn(*a, **k)
        return wrapper

    monkeypatch.setattr(yaml, "compose", counted("yaml", yaml.compose))
    monkeypatch.setattr(config_store, "parse_config", counted("validate", parse_config))
    monkeypatch.setattr(os, "fsync", counted("fsync", os.fsync))
    try:
        site.run(15000)
        talking = [c for c in site.engine.snapshot()["calls"] if c["state"] == "connected"]
        assert len(talking) == n
        loop = threading.get_ident()
        result: dict[str, Any] = {}

        def client() -> None:
            with ControlClient(tmp_path / "control.sock", timeout_s=60) as c:
                result["reply"] = c.request("config.apply", text=big, filename="big.yaml", author="t",
                                            base_version=1)

        t = threading.Thread(target=client)
        t.start()
        longest = 0.0
        periods = 0
        while t.is_alive() and periods < 3000:
            t0 = time.perf_counter()
            site.engine.run_period()
            longest = max(longest, time.perf_counter() - t0)
            periods += 1
        t.join(timeout=60)
        print(f"apply took {periods} periods; the longest, waiting for the hand-off as virtual time does, "
              f"{1000 * longest:.1f} ms of wall time")
        assert result["reply"] == {"version": 2}
        assert site.engine.config_version == 2 and len(site.engine.config.agents) > 4900
        assert seen["yaml"] and seen["validate"] and seen["fsync"]          # the counting works
        assert loop not in seen["yaml"] + seen["validate"] + seen["fsync"]
        talking = [c for c in site.engine.snapshot()["calls"] if c["state"] == "connected"]
        assert len(talking) == n                                             # every call continues
        site.run(40000)
        cdrs = site.engine.released_log
        assert sorted(c.ani or "" for c in cdrs) == sorted(f"1380013{i:04d}" for i in range(n))
        assert all(c.disposition == "answered" and c.config_version == 1 for c in cdrs)
        assert all(t.state is TrunkState.IDLE for t in site.engine.trunks.values())
    finally:
        site.close()


def test_a_port_change_is_stored_for_the_next_start(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    renamed = site_yaml(agents=1).replace("name: trunk2", "name: lobby").replace("trunk: trunk2", "trunk: lobby")
    try:
        site.run(100)
        reply = site.request("config.apply", text=renamed, filename="v2.yaml", author="t", base_version=1)
        assert reply["version"] == 2 and reply["in_force"] is False and "ports" in reply["restart_needed"]
        assert site.engine.config_version == 1                        # the running engine keeps version 1
    finally:
        site.close()
    again = ConfigStore(tmp_path)                                     # the next start, as `cicbox run` does it
    assert again.take_next() == 2
    cur = again.current()
    assert cur is not None and cur.version == 2 and [p.name for p in cur.config.ports][:2] == ["trunk1", "lobby"]
