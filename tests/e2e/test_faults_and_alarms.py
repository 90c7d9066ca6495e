"""Fault commands only with --enable-faults."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from appliance import cli
from appliance.control import ControlError
from tests.e2e.harness import Site, site_yaml

REFUSAL = "fault commands are disabled: start the engine with --enable-faults"


def test_fault_commands_are_refused_without_enable_faults(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        site.run(100)
        for cmd, args in (("fault.freeze_media", {"on": True}), ("fault.drop_event", {"chan": 2, "type": "hook_on"}),
                          ("fault.not_yet_written", {})):
            with pytest.raises(ControlError) as exc:
                site.request(cmd, **args)
            assert str(exc.value) == REFUSAL
        ticks = site.engine.tier_.media.stats()["ticks"]
        site.run(100)
        assert site.engine.tier_.media.stats()["ticks"] > ticks      # not frozen
        assert site.request("status")["tick_ms"] == site.engine.clock.now_ms
    finally:
        site.close()


def test_fault_commands_work_with_enable_faults(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False, enable_faults=True)
    try:
        site.run(100)
        assert site.request("fault.freeze_media", on=True) == {"frozen": True}
        ticks = site.engine.tier_.media.stats()["ticks"]
        site.run(100)
        assert site.engine.tier_.media.stats()["ticks"] == ticks
    finally:
        site.close()


def test_run_takes_enable_faults_and_demo_passes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["run", "--enable-faults"]).enable_faults is True
    assert parser.parse_args(["run"]).enable_faults is False
    seen: list[bool] = []

    def serve(engine: Any, duration_ms: int | None) -> None:
        seen.append(engine.control.enable_faults)

    monkeypatch.setattr(cli, "_serve", serve)
    for argv in (["run", "--clock", "virtual"], ["run", "--clock", "virtual", "--enable-faults"],
                 ["demo", "--clock", "virtual", "--duration", "1", "--json"]):
        args = parser.parse_args([*argv, "--state-dir", str(tmp_path)])
        assert isinstance(args, argparse.Namespace)
        assert args.func(args) == 0
    assert seen == [False, True, True]
