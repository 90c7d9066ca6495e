"""Test helpers for the panel's accounts: make a user straight in panel.db, sign a test client in.

    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    password = make_user(app, "inst", "installer")
    client = panel_client(app)       # https (the cookie is Secure) and a same-origin Referer
    login(client, "inst", password)

Passwords are random per call unless given, so a test never writes a fixed secret anywhere.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
"""Where a test's panel clock starts (the `clock` fixture of tests/web/conftest.py; a Sunday morning, UTC)."""

HOST = "127.0.0.1:8443"
BASE_URL = f"https://{HOST}"
"""The test clients' base URL: https, so the Secure session cookie is sent back."""

REFERER = BASE_URL + "/"
"""What a browser sends on the panel's own forms (Referrer-Policy same-origin); CSRF's strict check on
HTTPS refuses a POST without it."""

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def random_password() -> str:
    """A fresh 24-character password."""
    return "pw-" + secrets.token_urlsafe(16)


class PanelClient(FlaskClient):
    """A test client whose requests go to BASE_URL (https, Host 127.0.0.1:8443) unless told otherwise."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if not (args and not isinstance(args[0], str)):   # not a prepared EnvironBuilder or environ
            kwargs.setdefault("base_url", BASE_URL)
        return super().open(*args, **kwargs)


def panel_client(app: Flask, remote_addr: str = "127.0.0.1") -> FlaskClient:
    """A test client as a browser on the panel's own pages: https, a same-origin Referer, from `remote_addr`."""
    client = PanelClient(app, app.response_class, use_cookies=True)
    client.environ_base.update({"HTTP_REFERER": REFERER, "REMOTE_ADDR": remote_addr})
    return client


def make_user(app: Flask, name: str, role: str, *, agent: str | None = None, password: str | None = None,
              must_change: bool = False) -> str:
    """Create account `name` with `role` (and agent number) in the app's panel.db; return its password."""
    from appliance.web import accounts

    password = password or random_password()
    accounts.create_user(app, name, role, password, agent=agent, must_change=must_change)
    return password


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of the form at `path` (the client's session gets one if it had none)."""
    resp = client.get(path)
    match = _CSRF.search(resp.get_data(as_text=True))
    assert match, f"no csrf_token in GET {path} ({resp.status_code})"
    return match.group(1)


def login(client: FlaskClient, name: str, password: str) -> None:
    """Sign `client` in as `name`: fetch the login form's CSRF token, post /login, expect the redirect.

    The client's later requests carry a same-origin Referer, as a browser's would."""
    client.environ_base.setdefault("HTTP_REFERER", REFERER)
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"csrf_token": token, "username": name, "password": password})
    assert resp.status_code == 303, f"login as {name} failed: {resp.status_code} {resp.get_data(as_text=True)[:200]}"


def page_token(client: FlaskClient, path: str = "/account/password") -> str:
    """The CSRF token of a signed-in client's session (any page with a form carries it)."""
    return csrf_token(client, path)


def signed_in_client(app: Flask, role: str = "viewer", name: str | None = None, *,
                     agent: str | None = None) -> FlaskClient:
    """A panel_client signed in as a new account with `role` (named after it unless `name` is given).

    Until an installer exists the panel only offers /setup, so one (``first-installer``) is made first."""
    from appliance.web import accounts

    name = name or role
    if role != "installer" and not accounts.installer_exists(app):
        make_user(app, "first-installer", "installer")
    password = make_user(app, name, role, agent=agent)
    client = panel_client(app)
    login(client, name, password)
    return client


def add_probes(app: Flask) -> None:
    """Two stand-in views, whoever owns the real ones: ``/api/probe`` (JSON, wallboard.view) and
    ``/probe/events`` (an event stream: declared not to be activity). Call before the app's first request."""
    from flask import jsonify

    from appliance.web.auth import no_touch, requires

    @requires("wallboard.view")
    def probe() -> Any:
        return jsonify({"ok": True})

    @requires("wallboard.view")
    @no_touch
    def events() -> str:
        return "data: {}\n\n"

    app.add_url_rule("/api/probe", "test_probe", probe)
    app.add_url_rule("/probe/events", "test_probe_events", events)
