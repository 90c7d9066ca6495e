"""The engine's command socket from the CLI and the panel, with a real engine in virtual time."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import cli
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml
from tests.web.test_wallboard_views import client_as, panel_app, stop_hub

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Site]:
    caller = Caller(trunk=0, at_ms=1000, ani="13800138000", press_after_ms=500, hold_ms=60000)
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=8000)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone], keep_audio=False)
    yield site
    site.close()


def test_panel_sees_a_live_call_and_an_agent_change(live: Site, tmp_path: Path) -> None:
    app = panel_app(tmp_path)
    client = client_as(app, "vera", "viewer")
    try:
        live.run(9000)                               # queued, the agent's phone ringing
        with live.serving():
            status = client.get("/api/wallboard").get_json()
        (call,) = status["calls"]
        assert (call["ani"], call["dnis"], call["state"]) == ("13800138000", "075588880001", "offered")
        assert status["agents"][0]["state"] == "offered"
        live.run(10000)                              # the agent answered (the hub follows the pushed snapshots)
        with live.serving():
            status = client.get("/api/wallboard").get_json()
        assert status["agents"][0]["state"] == "on_call"
        assert status["calls"][0]["agent"] == "1001"
    finally:
        stop_hub(app)


def test_cli_status_and_config_apply(live: Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live.run(3000)
    good = tmp_path / "v2.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(site_yaml(agents=1).replace("queue: front_desk", "queue: frontdesk").replace("k: 4", "k: 40"))
    with live.serving():
        assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert "Test Hotel" in out and "1001" in out and "front_desk" in out
        assert cli.main(["config", "apply", str(bad), "--base", "1", "--state-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"{bad}:8:6: card.k: must be at most 10, got 40" in err
        assert cli.main(["config", "get", "-o", str(good), "--state-dir", str(tmp_path)]) == 0
        good.write_text(good.read_text().replace("greeting: welcome", "greeting: welcome_evening"))
        assert cli.main(["config", "apply", str(good), "--state-dir", str(tmp_path)]) == 0
        assert "applied as version 2" in capsys.readouterr().out
    assert live.engine.config_version == 2
    assert live.engine.config.ivrs["main"].greeting == "welcome_evening"


@pytest.mark.parametrize(("fname", "rc"), [("hotel.yaml", 0), ("hospital.yaml", 0)])
def test_config_check_templates(fname: str, rc: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["config", "check", str(ROOT / "configs" / fname)]) == rc
    assert "ok (" in capsys.readouterr().out


def test_demo_json_on_the_realtime_clock(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "appliance.cli", "demo", "--duration", "30", "--json",
                          "--state-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) == {"offered", "answered", "abandoned", "mean_wait_s", "answered_by_kind"}
    assert result["answered"] > 0
    assert result["offered"] >= result["answered"]
