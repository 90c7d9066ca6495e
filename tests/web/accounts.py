"""Test helpers for the panel's accounts: make a user straight in panel.db, sign a test client in.

    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    password = make_user(app, "inst", "installer")
    client = app.test_client(base_url="https://127.0.0.1:8443")  # https: the cookie is Secure
    login(client, "inst", password)

Passwords are random per call unless given, so a test never writes a fixed secret anywhere.
"""

from __future__ import annotations

import re
import secrets

from flask import Flask
from flask.testing import FlaskClient

BASE_URL = "https://127.0.0.1:8443"
"""The test clients' base URL: https, so the Secure session cookie is sent back."""

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def random_password() -> str:
    """A fresh 24-character password."""
    return "pw-" + secrets.token_urlsafe(16)


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
    """Sign `client` in as `name`: fetch the login form's CSRF token, post /login, expect the redirect."""
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"csrf_token": token, "username": name, "password": password})
    assert resp.status_code == 303, f"login as {name} failed: {resp.status_code} {resp.get_data(as_text=True)[:200]}"


def page_token(client: FlaskClient, path: str = "/account/password") -> str:
    """The CSRF token of a signed-in client's session (any page with a form carries it)."""
    return csrf_token(client, path)
