"""The panel's pages against a fake engine: live state, changes between requests, engine down, headers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.control import ControlError
from appliance.web import SECURITY_HEADERS, control_socket, create_app
from appliance.web.views import duration
from tests.web import FakeEngine, snapshot


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeEngine]:
    eng = FakeEngine(tmp_path / "control.sock")
    yield eng
    eng.close()


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def rows(html: str, tbody: str) -> str:
    """The text of one table body of the page."""
    start = html.index(f'<tbody id="{tbody}">')
    return html[start:html.index("</tbody>", start)]


def test_factory_config(tmp_path: Path) -> None:
    a = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    b = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    assert a.testing
    assert a.config["SECRET_KEY"] and a.config["SECRET_KEY"] != b.config["SECRET_KEY"]  # random per start
    assert create_app({"SECRET_KEY": "fixed"}).config["SECRET_KEY"] == "fixed"
    assert not create_app().testing
    assert control_socket(a) == tmp_path / "control.sock"
    other = create_app({"STATE_DIR": str(tmp_path), "CONTROL_SOCKET": str(tmp_path / "elsewhere.sock")})
    assert control_socket(other) == tmp_path / "elsewhere.sock"


def test_page_shows_the_live_state(engine: FakeEngine, client: FlaskClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'id="banner"' in html and "engine not reachable" not in html
    calls = rows(html, "calls")
    for text in ("13800138000", "075588880001", "trunk1", "queued", "front_desk", "waiting 0:03"):
        assert text in calls
    assert "None" not in calls  # a call without an agent shows an empty cell
    ports = rows(html, "ports")
    assert "trunk1" in ports and "fxo" in ports and "busy" in ports and "phone1" in ports
    agents = rows(html, "agents")
    assert "1001" in agents and "Alice" in agents and "ready" in agents
    queues = rows(html, "queues")
    assert "<td>front_desk</td>" in queues
    assert '<td class="num">1</td>' in queues and '<td class="num">0:03</td>' in queues
    assert "2026-01-01T00:02:03" in html and "configuration version 3" in html


def test_changes_show_on_the_next_request(engine: FakeEngine, client: FlaskClient) -> None:
    assert client.get("/api/status").get_json()["agents"][0]["state"] == "ready"
    snap = snapshot()
    snap["tick_ms"] = 200000
    snap["agents"][0]["state"] = "talking"
    snap["calls"][0].update(state="talking", agent="1001", since_ms=130000)
    snap["calls"].append({"id": "c2", "ani": "13900139000", "dnis": "075588880001", "trunk": "trunk1",
                          "state": "queued", "queue": "front_desk", "agent": None, "since_ms": 190000})
    snap["queues"][0].update(waiting=2, longest_wait_ms=10000)
    engine.set(snap)

    api = client.get("/api/status")
    assert api.status_code == 200 and api.mimetype == "application/json"
    assert api.headers["Cache-Control"] == "no-store"
    assert api.get_json() == snap  # the engine's snapshot, as is
    assert api.get_json()["agents"][0]["state"] == "talking"

    html = client.get("/").get_data(as_text=True)
    agents = rows(html, "agents")
    assert "talking" in agents and "ready" not in agents
    calls = rows(html, "calls")
    assert "talking 1:10" in calls and "<td>1001</td>" in calls
    assert "13900139000" in calls and "waiting 0:10" in calls
    queues = rows(html, "queues")
    assert '<td class="num">2</td>' in queues and '<td class="num">0:10</td>' in queues


def test_empty_site(engine: FakeEngine, client: FlaskClient) -> None:
    engine.set({"tick_ms": 0, "calendar": "2026-01-01T00:00:00", "config_version": 1,
                "ports": [], "calls": [], "agents": [], "queues": []})
    html = client.get("/").get_data(as_text=True)
    assert "no calls" in rows(html, "calls") and "no agents" in rows(html, "agents")
    assert "no queues" in rows(html, "queues") and "no ports" in rows(html, "ports")


def test_a_partial_or_odd_snapshot_does_not_break_the_page(engine: FakeEngine, client: FlaskClient) -> None:
    engine.set({"calls": [{"ani": "13800138000", "state": ["odd"]}, "junk"], "queues": "junk",
                "agents": [{"number": 1001, "name": None}]})
    resp = client.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "13800138000" in rows(html, "calls") and "no queues" in rows(html, "queues")
    assert "1001" in rows(html, "agents")


def test_everything_the_engine_sends_is_escaped(engine: FakeEngine, client: FlaskClient) -> None:
    snap = snapshot()
    snap["agents"][0]["name"] = "<script>alert(1)</script>"
    snap["agents"][0]["state"] = '"><img src=x onerror=alert(1)>'
    engine.set(snap)
    html = client.get("/").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="state-&#34;&gt;&lt;img' in html


def test_engine_not_reachable(client: FlaskClient, tmp_path: Path) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    banner = html[html.index('id="banner"'):html.index("</p>", html.index('id="banner"'))]
    assert "hidden" not in banner
    assert f"engine not reachable: cannot reach the engine at {tmp_path / 'control.sock'}" in banner
    assert "no calls" in rows(html, "calls")

    api = client.get("/api/status")
    assert api.status_code == 503 and api.mimetype == "application/json"
    body = api.get_json()
    assert set(body) == {"error"} and body["error"].startswith("cannot reach the engine at ")
    assert "Traceback" not in api.get_data(as_text=True)


def test_engine_error_reply_is_a_503(engine: FakeEngine, client: FlaskClient) -> None:
    def broken(req: dict[str, Any]) -> Any:
        raise ControlError("status is not available while the configuration is applied")

    engine.server.register("status", broken)
    api = client.get("/api/status")
    assert api.status_code == 503
    assert api.get_json() == {"error": "status is not available while the configuration is applied"}
    assert "engine not reachable: status is not available" in client.get("/").get_data(as_text=True)


def test_engine_that_does_not_answer(tmp_path: Path) -> None:
    # A socket that accepts connections (in the kernel's backlog) but never answers.
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(tmp_path / "control.sock"))
    mute.listen(4)
    try:
        client = create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "CONTROL_TIMEOUT_S": 0.05}).test_client()
        api = client.get("/api/status")
        assert api.status_code == 503
        assert api.get_json() == {"error": "the engine did not answer in time"}
    finally:
        mute.close()


@pytest.mark.parametrize("url", ["/", "/api/status", "/static/panel.js", "/static/panel.css", "/nowhere"])
def test_security_headers(engine: FakeEngine, client: FlaskClient, url: str) -> None:
    resp = client.get(url)
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    resp.close()


def test_assets_are_local_and_no_inline_script(engine: FakeEngine, client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert '<script src="/static/panel.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/static/panel.css">' in html
    assert 'data-status-url="/api/status"' in html
    assert "http://" not in html and "https://" not in html and "style=" not in html
    assert html.count("<script") == 1
    for asset in ("/static/panel.js", "/static/panel.css"):
        resp = client.get(asset)
        assert resp.status_code == 200
        text = resp.get_data(as_text=True)
        assert "http://" not in text and "https://" not in text and "@import" not in text
        resp.close()
    js = client.get("/static/panel.js")
    source = js.get_data(as_text=True)
    js.close()
    assert "innerHTML" not in source and "POLL_MS = 1000" in source
    for tbody in ("calls", "queues", "agents", "ports"):
        assert f'id="{tbody}"' in html


@pytest.mark.parametrize(("ms", "text"), [(0, "0:00"), (3450, "0:03"), (70_000, "1:10"), (3_725_000, "1:02:05"),
                                          (-5, "0:00"), (None, ""), ("x", ""), (True, "")])
def test_duration(ms: Any, text: str) -> None:
    assert duration(ms) == text
