"""The route matrix: every rule x method of ``app.url_map`` (so every blueprint's views, today's and later
ones) for zero accounts, an anonymous visitor and each role. Public are only /setup, /login and /static;
anyone else gets 303 to /setup or /login (401 for ``/api/...`` and event streams); a role without the
permission 403 and a ``forbidden`` audit row; a rule absent from the permission table fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from appliance.web import accounts, auth, create_app
from tests.web.accounts import login, make_user, page_token, panel_client
from tests.web.routes import MUTATING, Route, routes

PUBLIC = {"static", "account.setup", "account.login"}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "CONTROL_TIMEOUT_S": 0.2})


def undeclared(app: Flask) -> list[str]:
    """Endpoints of the app's rules that declare no permission."""
    with app.test_request_context():
        return sorted({r.endpoint for r in routes(app) if not auth.endpoint_perm(r.endpoint)[0]})


def is_script(url: str) -> bool:
    return url.startswith("/api/") or url.endswith("/events")


def send(client: FlaskClient, route: Route, token: str | None = None) -> Any:
    kwargs: dict[str, Any] = {}
    if route.method in MUTATING and token:
        kwargs["data"] = {"csrf_token": token}
    resp = client.open(route.url, method=route.method, **kwargs)
    resp.close()
    return resp


def test_every_rule_is_in_the_permission_table(app: Flask) -> None:
    assert undeclared(app) == []
    with app.test_request_context():
        perms = {r.endpoint: auth.endpoint_perm(r.endpoint)[1] for r in routes(app)}
    assert {e for e, p in perms.items() if p is None} == PUBLIC
    assert set(perms.values()) - {None} <= auth.PERMISSIONS | {auth.SIGNED_IN}


def test_a_rule_without_a_declaration_is_caught_and_refused(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    app.add_url_rule("/forgotten", "forgotten", lambda: "secret stuff")
    assert undeclared(app) == ["forgotten"]
    assert panel_client(app).get("/forgotten").status_code == 303    # to /setup: nobody gets in
    make_user(app, "inst", "installer")
    assert panel_client(app).get("/forgotten").headers["Location"].startswith("/login")
    client = panel_client(app)
    login(client, "inst2", make_user(app, "inst2", "installer"))
    resp = client.get("/forgotten")
    assert resp.status_code == 403 and b"secret stuff" not in resp.data   # not even an installer
    row = accounts.audit_rows(app, action="forbidden", limit=1)[0]
    assert row["target"] == "/forgotten" and "declares no permission" in row["detail"]["reason"]


def test_zero_accounts(app: Flask) -> None:
    client = panel_client(app)
    token = page_token(client, "/setup")
    for route in routes(app):
        resp = send(client, route, token)
        where = (route.url, route.method)
        if route.endpoint == "static":
            assert resp.status_code == 200, where
        elif route.endpoint == "account.setup":
            assert resp.status_code == (200 if route.method == "GET" else 401), where
        elif is_script(route.url):
            assert resp.status_code == 401 and resp.get_json() == {"error": "sign in first"}, where
        else:
            assert resp.status_code == 303 and resp.headers["Location"] == "/setup", where


def test_anonymous(app: Flask) -> None:
    make_user(app, "inst", "installer")
    client = panel_client(app)
    token = page_token(client, "/login")
    for route in routes(app):
        resp = send(client, route, token)
        where = (route.url, route.method)
        if route.endpoint == "static":
            assert resp.status_code == 200, where
        elif route.endpoint == "account.login":
            assert resp.status_code == (200 if route.method == "GET" else 401), where
        elif route.endpoint == "account.setup" and route.method == "GET":
            assert resp.status_code == 303 and resp.headers["Location"] == "/login", where
        elif route.endpoint == "account.setup":                         # no code pending: refused, audited
            assert resp.status_code == 409, where
        elif is_script(route.url):
            assert resp.status_code == 401 and resp.get_json() == {"error": "sign in first"}, where
        else:
            assert resp.status_code == 303 and resp.headers["Location"].startswith("/login?next="), where
    assert accounts.audit_rows(app, action="forbidden") == []


@pytest.mark.parametrize("role", auth.ROLES)
def test_each_role(app: Flask, role: str) -> None:
    make_user(app, "first-installer", "installer")
    password = make_user(app, "me", role, agent="1002" if role == "agent" else None)
    make_user(app, "other", "viewer")                                 # id 3: a target for /users/<id>/...
    client = panel_client(app)
    login(client, "me", password)
    token = page_token(client)
    allowed_perms = auth.ROLE_PERMS[role] | {auth.SIGNED_IN}
    with app.test_request_context():
        perms = {r.endpoint: auth.endpoint_perm(r.endpoint)[1] for r in routes(app)}
    denied = 0
    for route in routes(app):
        perm = perms[route.endpoint]
        where = (role, route.url, route.method)
        if perm is None:
            continue                                                  # public: covered above
        if perm in allowed_perms:
            # Allowed: nothing refuses it. A change is not made here (it could end this very session).
            if route.method in MUTATING:
                continue
            resp = send(client, route, token)
            assert resp.status_code not in (401, 403), where
            assert not (resp.status_code == 303 and resp.headers["Location"].startswith(("/login", "/setup"))), where
            continue
        denied += 1
        before = accounts.list_users(app)
        rows = len(accounts.audit_rows(app, action="forbidden", limit=10_000))
        resp = send(client, route, token)
        assert resp.status_code == 403, where
        if is_script(route.url):
            assert set(resp.get_json()) == {"error"}, where
        assert accounts.list_users(app) == before, where
        forbidden = accounts.audit_rows(app, action="forbidden", limit=10_000)
        assert len(forbidden) == rows + 1, where
        assert (forbidden[0]["user"], forbidden[0]["target"], forbidden[0]["outcome"]) == ("me", route.url, "refused")
        assert forbidden[0]["detail"]["method"] == route.method
    assert (denied == 0) == (role == "installer")                     # only the installer may do everything
    assert client.get("/account/password").status_code == 200        # still signed in after the denials
