"""CSRF: every mutating rule of the app (rule x method, from ``app.url_map``) refuses a request whose token
is missing, comes from a logged-out session or from another user's, as a form and as JSON: 400, nothing
changed in panel.db, a ``csrf_refused`` audit row. The Referer check on HTTPS stays on; bodies are capped."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from appliance.web import SECURITY_HEADERS, accounts, create_app
from tests.web.accounts import REFERER, csrf_token, login, make_user, page_token, panel_client
from tests.web.routes import MUTATING, mutating_routes, rule_urls


@pytest.fixture
def app(tmp_path: Any) -> Flask:
    return create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})


def db_state(app: Flask) -> tuple[Any, ...]:
    """What a refused request must not change: the accounts, and which sessions exist."""
    db = accounts.db_of(app)
    with db.engine.connect() as conn:
        users = conn.execute(select(accounts.users).order_by(accounts.users.c.id)).all()
        sess = conn.execute(select(accounts.sessions.c.id_hash, accounts.sessions.c.user_id,
                                   accounts.sessions.c.data)).all()
    return tuple(map(tuple, users)), frozenset(map(tuple, sess))


def refused_rows(app: Flask) -> list[dict[str, Any]]:
    return accounts.audit_rows(app, action="csrf_refused", limit=1000)


def two_installers(app: Flask) -> tuple[FlaskClient, FlaskClient]:
    a = make_user(app, "inst", "installer")
    b = make_user(app, "inst2", "installer")
    ca, cb = panel_client(app), panel_client(app)
    login(ca, "inst", a)
    login(cb, "inst2", b)
    return ca, cb


def test_the_matrix_covers_the_panels_forms(app: Flask) -> None:
    rules = mutating_routes(app)
    for url in ("/login", "/setup", "/logout", "/account/password", "/users", "/users/2/role", "/users/2/disable",
                "/users/2/password"):
        assert (url, "POST") in rules


@pytest.mark.parametrize("how", ["missing", "logged_out", "other_user", "garbled"])
@pytest.mark.parametrize("as_json", [False, True])
def test_every_mutating_rule_refuses_a_bad_token(app: Flask, how: str, as_json: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Every refusal is to have its row here (the per-minute caps on refusals are test_auth_audit's).
    monkeypatch.setattr(accounts, "REFUSALS_PER_MINUTE", 1000)
    monkeypatch.setattr(accounts, "ALL_REFUSALS_PER_MINUTE", 1000)
    victim, other = two_installers(app)
    make_user(app, "sup", "supervisor")
    stale = ""
    if how == "logged_out":
        leaving = panel_client(app)
        login(leaving, "leaver", make_user(app, "leaver", "installer"))
        stale = page_token(leaving)
        assert leaving.post("/logout", data={"csrf_token": stale}).status_code == 303
        victim = leaving                     # the same browser, now logged out, replays its old token
    elif how == "other_user":
        stale = page_token(other)            # a valid token, of another user's session
    elif how == "garbled":
        stale = page_token(victim)[:-4] + "AAAA"
    for url, method in mutating_routes(app):
        before, rows = db_state(app), len(refused_rows(app))
        headers = {"X-CSRFToken": stale} if as_json and stale else {}
        if as_json:
            resp = victim.open(url, method=method, json={"role": "viewer", "disabled": "1"}, headers=headers)
        else:
            data = {"role": "viewer", "disabled": "1", "username": "x", "password": "y"}
            if stale:
                data["csrf_token"] = stale
            resp = victim.open(url, method=method, data=data)
        assert resp.status_code == 400, (url, method, resp.status_code)
        if as_json:
            assert set(resp.get_json()) == {"error"}
        else:
            assert "request refused" in resp.get_data(as_text=True)
        assert db_state(app)[0] == before[0], (url, method)          # no account changed
        assert db_state(app)[1] <= before[1], (url, method)          # no session made or changed
        new = refused_rows(app)
        assert len(new) == rows + 1 and new[0]["target"] == url and new[0]["detail"]["method"] == method
        assert new[0]["outcome"] == "refused"


def test_a_good_token_passes_as_form_and_as_json_header(app: Flask) -> None:
    client, _ = two_installers(app)
    make_user(app, "sup", "supervisor")
    sup = accounts.get_user(app, name="sup")
    assert sup is not None
    token = page_token(client)
    resp = client.post(f"/users/{sup.id}/role", data={"csrf_token": token, "role": "viewer"})
    assert resp.status_code == 303
    resp = client.post(f"/users/{sup.id}/disable", json={"disabled": "1"}, headers={"X-CSRFToken": token})
    assert resp.status_code != 400 and not refused_rows(app)


def test_get_on_a_mutating_only_rule_is_405(app: Flask) -> None:
    client, _ = two_installers(app)
    posts_only = [url for url, methods in rule_urls(app).items() if methods & MUTATING and "GET" not in methods]
    assert "/logout" in posts_only
    for url in posts_only:
        assert client.get(url).status_code == 405, url


@pytest.mark.parametrize("referer", [None, "https://evil.example/", "http://127.0.0.1:8443/"])
def test_the_referer_must_be_this_site_on_https(app: Flask, referer: str | None) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    token = csrf_token(client)
    del client.environ_base["HTTP_REFERER"]
    headers = {"Referer": referer} if referer else {}
    resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password},
                       headers=headers)
    assert resp.status_code == 400
    assert client.get("/").status_code == 303                         # not signed in
    (row,) = refused_rows(app)
    assert "referrer" in row["detail"]["reason"].lower()
    ok = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password},
                     headers={"Referer": REFERER})
    assert ok.status_code == 303


def test_a_body_over_1_mib_is_413(app: Flask) -> None:
    client = panel_client(app)
    token = csrf_token(client, "/setup")
    resp = client.post("/setup", data={"csrf_token": token, "setup_code": "x" * (2 << 20)})
    assert resp.status_code == 413
    assert "larger than 1024 KiB" in resp.get_data(as_text=True)
    resp = client.post("/setup", data=b"x" * (2 << 20), headers={"X-CSRFToken": token},
                       content_type="application/json")
    assert resp.status_code == 413 and "error" in resp.get_json()


def test_referrer_policy_is_same_origin(app: Flask) -> None:
    resp = panel_client(app).get("/setup")
    assert resp.headers["Referrer-Policy"] == "same-origin" == SECURITY_HEADERS["Referrer-Policy"]


def test_pages_give_scripts_the_token_for_the_header(app: Flask) -> None:
    client, _ = two_installers(app)
    make_user(app, "sup", "supervisor")
    sup = accounts.get_user(app, name="sup")
    assert sup is not None
    html = client.get("/account/password").get_data(as_text=True)
    start = html.index('<meta name="csrf-token" content="') + len('<meta name="csrf-token" content="')
    token = html[start:html.index('"', start)]
    resp = client.post(f"/users/{sup.id}/disable", headers={"X-CSRFToken": token})
    assert resp.status_code == 303 and not refused_rows(app)
    assert accounts.get_user(app, user_id=sup.id).disabled  # type: ignore[union-attr]
    assert '<meta name="csrf-token"' not in panel_client(app).get("/login").get_data(as_text=True)
