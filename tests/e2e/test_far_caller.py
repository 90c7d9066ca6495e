"""One call through the far-end socket: the caller is a separate process using only the standard library; its
DTMF caller ID and its menu key are spandsp's, handed to it as samples."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from appliance.world import PhoneScript
from tests.e2e.harness import Site, site_yaml
from tests.peers import spandsp_far

PEER = Path(__file__).resolve().parent.parent / "peers" / "far_caller.py"


def test_a_call_from_a_caller_over_the_socket(tmp_path: Path) -> None:
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=3000)
    site = Site(tmp_path, site_yaml(callerid="dtmf", agents=1), [], [phone], keep_audio=False)
    made = tmp_path / "caller-samples.json"
    made.write_text(json.dumps({"cid": list(spandsp_far.caller_id("dtmf", "13800138000")),
                                "press": list(spandsp_far.dtmf("1"))}))
    proc = subprocess.Popen([sys.executable, str(PEER), str(tmp_path / "sim.sock"), "0", "13800138000", str(made)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"},
                            cwd=str(tmp_path))
    try:
        assert site.engine.wait_far_peer(30.0)
        for _ in range(100):                       # at most 100 s of engine clock
            site.run(1000)
            if proc.poll() is not None:
                break
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        site.close()
    assert proc.returncode == 0, err
    heard = json.loads(out.strip().splitlines()[-1])
    assert heard["answered"] is not None and heard["released"] is not None
    assert heard["heard_agent_ms"] >= 2500              # the caller talked with the agent
    con = sqlite3.connect(tmp_path / "cicbox.db")
    rows = con.execute("SELECT ani, dnis, trunk, queue, agent, disposition FROM cdr").fetchall()
    con.close()
    assert rows == [("13800138000", "075588880001", "trunk1", "front_desk", "1001", "answered")]
