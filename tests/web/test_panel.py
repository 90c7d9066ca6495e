"""The panel app around its wallboard (the polling page and /api/status are gone): the factory's
configuration, what the engine answers badly or not at all as the wallboard tells it, the security
headers, and assets that are local with no inline script. The wallboard itself: test_wallboard*.py."""

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
from tests.e2e.harness import Site
from tests.web import live_site
from tests.web.test_wallboard_views import client_as, panel_app, stop_hub, wire_login


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = live_site(tmp_path)
    s.run(1000)
    yield s
    s.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = panel_app(tmp_path)
    yield app
    stop_hub(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return client_as(app, "vera", "viewer")


def test_factory_config(tmp_path: Path) -> None:
    a = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    b = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    assert a.testing
    # made once, kept in the panel's directory (0600): sessions outlive a restart of the panel
    key = tmp_path / "panel" / "secret_key"
    assert len(a.config["SECRET_KEY"]) >= 32 and a.config["SECRET_KEY"] == b.config["SECRET_KEY"]
    assert key.stat().st_mode & 0o777 == 0o600
    assert create_app({"TESTING": True, "STATE_DIR": str(tmp_path / "other")}).config["SECRET_KEY"] != \
        a.config["SECRET_KEY"]
    assert create_app({"SECRET_KEY": "fixed", "STATE_DIR": str(tmp_path)}).config["SECRET_KEY"] == "fixed"
    assert control_socket(a) == tmp_path / "control.sock"
    assert a.config["PANEL_DIR"] == str(tmp_path / "panel")
    other = create_app({"STATE_DIR": str(tmp_path), "CONTROL_SOCKET": str(tmp_path / "elsewhere.sock")})
    assert control_socket(other) == tmp_path / "elsewhere.sock"


def test_a_malformed_reply_is_a_503_with_why(site: Site, client: FlaskClient) -> None:
    """A status reply the engine never sends (its handler replaced): the wallboard says it cannot use it."""
    site.engine.control.register("status", lambda req: ["not", "a", "snapshot"])
    with site.serving():
        api = client.get("/api/wallboard")
    assert api.status_code == 503
    assert api.get_json()["reason"] == "the engine sent a malformed snapshot: a snapshot is an object, not list"


def test_engine_error_reply_is_a_503(site: Site, client: FlaskClient) -> None:
    def broken(req: dict[str, Any]) -> Any:
        raise ControlError("status is not available while the configuration is applied")

    site.engine.control.register("status", broken)
    with site.serving():
        api = client.get("/api/wallboard")
    assert api.status_code == 503
    assert api.get_json()["reason"] == "status is not available while the configuration is applied"
    assert "Traceback" not in api.get_data(as_text=True)


def test_engine_that_does_not_answer(tmp_path: Path) -> None:
    # A socket that accepts connections (in the kernel's backlog) but never answers.
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(tmp_path / "control.sock"))
    mute.listen(4)
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "CONTROL_TIMEOUT_S": 0.05})
    try:
        wire_login(app)
        api = client_as(app, "vera", "viewer").get("/api/wallboard")
        assert api.status_code == 503
        assert api.get_json()["reason"] in ("the engine did not answer in time", "no word from the engine yet")
    finally:
        stop_hub(app)
        mute.close()


@pytest.mark.parametrize("url", ["/wallboard", "/api/wallboard", "/static/wallboard.js", "/static/panel.css",
                                 "/nowhere"])
def test_security_headers(site: Site, client: FlaskClient, url: str) -> None:
    with site.serving():
        resp = client.get(url)
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers[name] == value
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    resp.close()


def test_assets_are_local_and_no_inline_script(client: FlaskClient) -> None:
    html = client.get("/wallboard").get_data(as_text=True)
    assert '<script src="/static/wallboard.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/static/panel.css">' in html
    assert '<link rel="stylesheet" href="/static/wallboard.css">' in html
    assert "http://" not in html and "https://" not in html and "style=" not in html
    assert html.count("<script") == 1
    for asset in ("/static/wallboard.js", "/static/panel.css", "/static/wallboard.css"):
        resp = client.get(asset)
        assert resp.status_code == 200
        text = resp.get_data(as_text=True)
        assert "http://" not in text and "https://" not in text and "@import" not in text
        resp.close()
    js = client.get("/static/wallboard.js")
    source = js.get_data(as_text=True)
    js.close()
    # cells by textContent only; the one live source is the event stream (nothing polls)
    assert "innerHTML" not in source and "outerHTML" not in source and "insertAdjacentHTML" not in source
    assert "new EventSource(" in source and "setInterval" not in source and "location.reload" not in source
    for tbody in ("calls", "queues", "agents", "spans", "ports", "alarm-rows"):
        assert f'id="{tbody}"' in html


def test_the_polling_page_is_gone(client: FlaskClient) -> None:
    assert client.get("/api/status").status_code == 404
    assert client.get("/static/panel.js").status_code == 404
