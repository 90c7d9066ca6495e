"""The panel's spans table against a real engine with two spans (the sim card's framer still reports
no alarm and zero counters), and how a span's alarms read."""

from __future__ import annotations

from pathlib import Path

from appliance.web import create_app
from appliance.web.views import span_alarms, span_state
from tests.e2e.harness import Site, site_yaml
from tests.web.accounts import signed_in_client
from tests.web.test_panel import cells, row, rows

TWO_SPANS = site_yaml(agents=1).replace("spans: []\n", """spans:
  - {kind: e1, name: span1, timing: 2}
  - {kind: e1, name: span2, framing: cas, timing: 1}
""")


def test_the_status_page_has_a_row_per_span_and_the_clock_source(tmp_path: Path) -> None:
    site = Site(tmp_path, TWO_SPANS, [], [], keep_audio=False)
    client = signed_in_client(create_app({"TESTING": True, "STATE_DIR": str(tmp_path)}))
    try:
        site.run(100)
        with site.serving():
            html = client.get("/").get_data(as_text=True)
            snap = client.get("/api/status").get_json()
        assert cells(row(html, "spans", "span", "span1")) == ["span1", "e1", "ccs", "2", "ok", "0", "0", "0"]
        assert cells(row(html, "spans", "span", "span2")) == ["span2", "e1", "cas", "1", "ok", "0", "0", "0"]
        assert "clock from span2" in html
        assert [s["name"] for s in snap["spans"]] == ["span1", "span2"] and snap["sync_source"] == "span2"
    finally:
        site.close()


def test_a_site_without_spans_says_so(tmp_path: Path) -> None:
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    client = signed_in_client(create_app({"TESTING": True, "STATE_DIR": str(tmp_path)}))
    try:
        with site.serving():
            html = client.get("/").get_data(as_text=True)
        assert "no spans" in rows(html, "spans") and "clock from internal" in html
    finally:
        site.close()


def test_a_span_s_alarms_read_worst_first() -> None:
    assert (span_alarms({"alarms": [], "detail": []}), span_state({"alarms": []})) == ("ok", "ok")
    red = {"alarms": ["red", "yellow"], "detail": ["los", "lfa"]}
    assert (span_alarms(red), span_state(red)) == ("red, yellow (los, lfa)", "red")
    assert span_state({"alarms": ["yellow", "recover"]}) == "yellow"
    assert span_alarms({"alarms": "red"}) == "ok"           # a malformed entry never breaks the page
