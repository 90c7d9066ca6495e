"""The panel's pages against a real engine in virtual time (tests/web/__init__.py has the script):
live state, changes between requests, a quiet site, engine down or answering badly, headers."""

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
from tests.e2e.harness import Site
from tests.web import FIRST_ANI, OFFERED_AT, SECOND_ANI, TALKING_AT, live_site, quiet_site
from tests.web.accounts import signed_in_client


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = live_site(tmp_path)
    yield s
    s.close()


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Signed in with the least role that sees the live page."""
    return signed_in_client(app, "viewer")


def rows(html: str, tbody: str) -> str:
    """The text of one table body of the page."""
    start = html.index(f'<tbody id="{tbody}">')
    return html[start:html.index("</tbody>", start)]


def row(html: str, tbody: str, attr: str, key: str) -> str:
    """The one row of table `tbody` whose data-`attr` is `key`."""
    body = rows(html, tbody)
    start = body.index(f'<tr data-{attr}="{key}">')
    return body[start:body.index("</tr>", start)]


def cells(tr: str) -> list[str]:
    """The cells of a table row, as the page has them."""
    out = []
    pos = tr.find("<td")
    while pos >= 0:
        start = tr.index(">", pos) + 1
        end = tr.index("</td>", start)
        out.append(tr[start:end])
        pos = tr.find("<td", end)
    return out


def test_factory_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    b = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    assert a.testing
    assert a.config["PANEL_DIR"] == str(tmp_path / "panel")
    # Kept across starts in PANEL_DIR/secret_key, which only the panel's user may read.
    key_file = tmp_path / "panel" / "secret_key"
    assert len(a.config["SECRET_KEY"]) == 64 and a.config["SECRET_KEY"] == b.config["SECRET_KEY"]
    assert key_file.read_text().strip() == a.config["SECRET_KEY"] and key_file.stat().st_mode & 0o777 == 0o600
    other_dir = create_app({"STATE_DIR": str(tmp_path), "PANEL_DIR": str(tmp_path / "p2")})
    assert other_dir.config["SECRET_KEY"] != a.config["SECRET_KEY"]
    assert create_app({"SECRET_KEY": "fixed"}).config["SECRET_KEY"] == "fixed"
    monkeypatch.setenv("CICBOX_STATE_DIR", str(tmp_path / "env"))
    default = create_app()
    assert not default.testing and default.config["PANEL_DIR"] == str(tmp_path / "env" / "panel")
    assert control_socket(a) == tmp_path / "control.sock"
    other = create_app({"STATE_DIR": str(tmp_path), "CONTROL_SOCKET": str(tmp_path / "elsewhere.sock")})
    assert control_socket(other) == tmp_path / "elsewhere.sock"


def test_page_shows_the_live_state(site: Site, client: FlaskClient) -> None:
    site.run(OFFERED_AT)          # the first call offered to agent 1001, whose phone rings
    with site.serving():
        resp = client.get("/")
        snap = client.get("/api/status").get_json()
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'id="banner"' in html and "engine not reachable" not in html
    (call,) = snap["calls"]
    tr = row(html, "calls", "call", call["id"])
    # ANI, DNIS, trunk, state, queue, the agent whose phone rings, the time as the engine counts it
    assert cells(tr) == [FIRST_ANI, "075588880001", "trunk1", "offered", "front_desk", "1001",
                         f"waiting {duration(snap['tick_ms'] - call['since_ms'])}"]
    assert "None" not in rows(html, "calls")
    assert cells(row(html, "ports", "port", "trunk1")) == ["trunk1", "fxo", "up", "128 taps"]
    assert cells(row(html, "ports", "port", "trunk2")) == ["trunk2", "fxo", "idle", "off"]
    assert cells(row(html, "ports", "port", "phone1")) == ["phone1", "fxs", "ringing", "off"]
    assert cells(row(html, "agents", "agent", "1001")) == ["1001", "Agent 1", "phone1", "offered"]
    # In the queue since about 6.5 s (the key pressed half a second after the answer at 6 s): 0:02 at 9 s.
    assert cells(row(html, "queues", "queue", "front_desk")) == ["front_desk", "1", "0:02"]
    assert "engine clock 2026-03-01T09:30:09 · configuration version 1" in html


def test_changes_show_on_the_next_request(site: Site, client: FlaskClient) -> None:
    site.run(OFFERED_AT)
    with site.serving():
        assert client.get("/api/status").get_json()["agents"][0]["state"] == "offered"
    site.run(TALKING_AT - OFFERED_AT)      # the agent answered; the second caller waits in the queue
    with site.serving():
        api = client.get("/api/status")
        html = client.get("/").get_data(as_text=True)
    assert api.status_code == 200 and api.mimetype == "application/json"
    assert api.headers["Cache-Control"] == "no-store"
    snap = api.get_json()
    assert snap == site.engine.snapshot()          # the engine's snapshot, as is
    assert snap["tick_ms"] == TALKING_AT
    first, second = snap["calls"]
    assert cells(row(html, "agents", "agent", "1001")) == ["1001", "Agent 1", "phone1", "on_call"]
    assert cells(row(html, "calls", "call", first["id"])) == [
        FIRST_ANI, "075588880001", "trunk1", "connected", "front_desk", "1001",
        f"talking {duration(TALKING_AT - first['since_ms'])}"]
    assert cells(row(html, "calls", "call", second["id"])) == [
        SECOND_ANI, "075588880002", "trunk2", "queued", "front_desk", "",
        f"waiting {duration(TALKING_AT - second['since_ms'])}"]
    assert cells(row(html, "ports", "port", "trunk2")) == ["trunk2", "fxo", "up", "128 taps"]
    assert cells(row(html, "ports", "port", "phone1")) == ["phone1", "fxs", "connected", "off"]
    # The second caller alone waits, in the queue since about 17.5 s: 0:03 at 21 s.
    assert cells(row(html, "queues", "queue", "front_desk")) == ["front_desk", "1", "0:03"]


def test_the_time_shown_is_the_time_in_the_calls_state(site: Site, client: FlaskClient) -> None:
    """Waiting counts from the queue entry (about 17.5 s for the second caller: 0:03 at 21 s), talking
    from the agent's answer (about 14.5 s: 0:06 at 21 s), as the queue's own longest wait does."""
    site.run(TALKING_AT)
    with site.serving():
        html = client.get("/").get_data(as_text=True)
    times = [cells(tr)[-1] for tr in rows(html, "calls").split("</tr>")[:-1]]
    assert times == ["talking 0:06", "waiting 0:03"]


def test_a_quiet_site(tmp_path: Path, client: FlaskClient) -> None:
    site = quiet_site(tmp_path)
    try:
        site.run(1200)
        with site.serving():
            html = client.get("/").get_data(as_text=True)
    finally:
        site.close()
    assert "no calls" in rows(html, "calls") and "no agents" in rows(html, "agents")
    assert "no queues" in rows(html, "queues")
    assert cells(row(html, "ports", "port", "trunk1")) == ["trunk1", "fxo", "idle", "off"]
    assert "engine clock 2026-03-01T09:30:01 · configuration version 1" in html


def test_what_the_engine_reports_is_escaped(tmp_path: Path, client: FlaskClient) -> None:
    site = live_site(tmp_path, agent_name="<script>alert(1)</script>")
    try:
        site.run(100)
        with site.serving():
            html = client.get("/").get_data(as_text=True)
    finally:
        site.close()
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row(html, "agents", "agent", "1001")


def test_a_malformed_or_hostile_reply_does_not_break_the_page(site: Site, client: FlaskClient) -> None:
    """Replies the engine never sends (its status handler replaced): parts missing or of the wrong
    type, and markup where an attribute is written. The page still renders, escaped."""
    site.engine.control.register("status", lambda req: {
        "calls": [{"ani": "13800138000", "state": ["odd"]}, "junk"], "queues": "junk",
        "agents": [{"number": 1001, "name": None, "state": '"><img src=x onerror=alert(1)>'}]})
    with site.serving():
        resp = client.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "13800138000" in rows(html, "calls") and "no queues" in rows(html, "queues")
    assert "1001" in rows(html, "agents") and "no ports" in rows(html, "ports")
    assert "<img" not in html and 'class="state-&#34;&gt;&lt;img' in html


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


def test_engine_error_reply_is_a_503(site: Site, client: FlaskClient) -> None:
    def broken(req: dict[str, Any]) -> Any:
        raise ControlError("status is not available while the configuration is applied")

    site.engine.control.register("status", broken)
    with site.serving():
        api = client.get("/api/status")
        page = client.get("/").get_data(as_text=True)
    assert api.status_code == 503
    assert api.get_json() == {"error": "status is not available while the configuration is applied"}
    assert "engine not reachable: status is not available" in page


def test_engine_that_does_not_answer(tmp_path: Path) -> None:
    # A socket that accepts connections (in the kernel's backlog) but never answers.
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(tmp_path / "control.sock"))
    mute.listen(4)
    try:
        app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "CONTROL_TIMEOUT_S": 0.05})
        client = signed_in_client(app)
        api = client.get("/api/status")
        assert api.status_code == 503
        assert api.get_json() == {"error": "the engine did not answer in time"}
    finally:
        mute.close()


@pytest.mark.parametrize("url", ["/", "/api/status", "/static/panel.js", "/static/panel.css", "/nowhere"])
def test_security_headers(site: Site, client: FlaskClient, url: str) -> None:
    with site.serving():
        resp = client.get(url)
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "same-origin"   # CSRF's Referer check needs same-origin
    resp.close()


def test_assets_are_local_and_no_inline_script(site: Site, client: FlaskClient) -> None:
    with site.serving():
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
