"""The demo's figure by line kind: the world counts the calls the appliance answered by the kind of the
line that answered them (``fxo``: the trunk went off hook; ``pri``: its CONNECT), and the demo's JSON
reports them as ``answered_by_kind``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance import cli
from appliance.config.loader import load_config
from appliance.engine import Engine
from appliance.world.traffic import traffic_world

ROOT = Path(__file__).resolve().parents[2]


def test_the_hotels_world_counts_the_answered_calls_by_the_answering_lines_kind(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "configs" / "hotel.yaml")
    world = traffic_world(cfg, 60000, 1)
    engine = Engine(tmp_path, cfg, 1, clock="virtual", world=world)
    try:
        engine.run_for(60000)
    finally:
        engine.close()
    by_kind = world.answered_by_kind
    assert set(by_kind) == {"fxo", "pri"}
    assert by_kind["fxo"] >= 2                                  # the first two trunks' callers come at once
    assert sum(by_kind.values()) == world.counts["answered"]
    assert sum(world.connected_by_kind.values()) == world.counts["connected"]


def test_the_demo_answers_pri_calls_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--clock", "virtual", "--duration", "60", "--json", "--state-dir", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    by_kind = summary["answered_by_kind"]
    assert set(by_kind) == {"fxo", "pri"} and by_kind["fxo"] > 0 and by_kind["pri"] > 0, summary
