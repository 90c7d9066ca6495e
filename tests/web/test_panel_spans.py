"""The wallboard's spans against a real engine with two spans (the sim card's framer still reports
no alarm and zero counters): /api/wallboard carries each span with its alarms and the clock source."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from appliance.web import create_app
from tests.e2e.harness import Site, site_yaml
from tests.web.test_wallboard_views import client_as, stop_hub, wire_login

TWO_SPANS = site_yaml(agents=1).replace("spans: []\n", """spans:
  - {kind: e1, name: span1, timing: 2}
  - {kind: e1, name: span2, framing: cas, timing: 1}
""")


def panel(tmp_path: Path) -> Flask:
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    wire_login(app)
    return app


def test_the_wallboard_has_each_span_and_the_clock_source(tmp_path: Path) -> None:
    site = Site(tmp_path, TWO_SPANS, [], [], keep_audio=False)
    app = panel(tmp_path)
    try:
        site.run(100)
        with site.serving():
            snap = client_as(app, "vera", "viewer").get("/api/wallboard").get_json()
        spans = {s["name"]: s for s in snap["spans"]}
        assert list(spans) == ["span1", "span2"] and snap["sync_source"] == "span2"
        assert (spans["span1"]["kind"], spans["span1"]["alarms"]) == ("e1", [])
        assert spans["span2"]["counters"]["crc"] == 0
    finally:
        stop_hub(app)
        site.close()


def test_a_site_without_spans(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    app = panel(tmp_path)
    try:
        with site.serving():
            snap = client_as(app, "vera", "viewer").get("/api/wallboard").get_json()
        assert snap["spans"] == [] and snap["sync_source"] == "internal"
    finally:
        stop_hub(app)
        site.close()
