"""/users (installers, a fresh login), one's own password, and the audit log's page and rules."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from appliance.config.store import ConfigStore
from appliance.web import accounts, create_app
from appliance.web.admin_views import PAGE_SIZE
from tests.web.accounts import add_probes, csrf_token, login, make_user, page_token, panel_client, random_password
from tests.web.panel_proc import ROOT


@pytest.fixture
def app(tmp_path: Path, clock: time_machine.Traveller) -> Flask:
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    add_probes(app)
    return app


@pytest.fixture
def inst(app: Flask) -> FlaskClient:
    client = panel_client(app)
    login(client, "inst", make_user(app, "inst", "installer"))
    return client


def user(app: Flask, name: str) -> accounts.User:
    u = accounts.get_user(app, name=name)
    assert u is not None, name
    return u


def post(client: FlaskClient, url: str, **form: str) -> Any:
    return client.post(url, data={"csrf_token": page_token(client), **form})


def last(app: Flask, action: str) -> dict[str, Any]:
    return accounts.audit_rows(app, action=action, limit=1)[0]


def can_sign_in(app: Flask, name: str, password: str, addr: str = "127.0.0.3") -> bool:
    client = panel_client(app, addr)
    resp = client.post("/login", data={"csrf_token": csrf_token(client), "username": name, "password": password})
    return bool(resp.status_code == 303)


# --- /users ----------------------------------------------------------------------------------------------------


def test_users_needs_a_login_within_5_minutes(app: Flask, inst: FlaskClient, clock: time_machine.Traveller) -> None:
    assert inst.get("/users").status_code == 200
    clock.shift(timedelta(minutes=5, seconds=1))
    resp = inst.get("/users")
    assert resp.status_code == 303 and resp.headers["Location"] == "/login?next=/users&reauth=1"
    page = inst.get(resp.headers["Location"]).get_data(as_text=True)
    assert "needs a login within the last 5 minutes" in page and 'value="inst"' in page
    assert inst.get("/audit").status_code == 200                    # the audit log needs no fresh login
    assert post(inst, "/users", username="late", role="viewer", password=random_password()).status_code == 303
    assert accounts.get_user(app, name="late") is None              # refused, sent to sign in again


def test_create_a_user_who_must_change_the_first_password(app: Flask, inst: FlaskClient) -> None:
    first = random_password()
    resp = post(inst, "/users", username="ann", role="agent", agent="1002", password=first)
    assert resp.status_code == 303 and resp.headers["Location"] == "/users"
    ann = user(app, "ann")
    assert (ann.role, ann.agent, ann.must_change, ann.disabled) == ("agent", "1002", True, False)
    row = last(app, "user_create")
    assert (row["user"], row["target"], row["outcome"]) == ("inst", "ann", "ok")
    assert row["detail"] == {"before": None,
                             "after": {"agent": "1002", "disabled": False, "must_change": True, "role": "agent"}}
    page = inst.get("/users").get_data(as_text=True)
    assert '<tr data-user="ann">' in page and "must change password" in page

    # Ann signs in: every page but her password sends her there until she has chosen her own.
    client = panel_client(app)
    login(client, "ann", first)
    assert client.get("/").headers["Location"] == "/account/password"
    assert client.get("/api/probe").status_code == 403
    assert "choose your own" in client.get("/account/password").get_data(as_text=True)
    mine = random_password()
    resp = post(client, "/account/password", current_password=first, password=mine, password_confirm=mine)
    assert resp.status_code == 303
    assert client.get("/").status_code == 200
    assert not user(app, "ann").must_change
    assert can_sign_in(app, "ann", mine) and not can_sign_in(app, "ann", first, "127.0.0.4")


@pytest.mark.parametrize(("form", "message"), [
    ({"username": "bob", "role": "viewer", "password": "short"}, "a password has at least 12 characters"),
    ({"username": "bob", "role": "agent", "password": "long-enough-password"},
     "an account with the agent role needs its agent number"),
    ({"username": "bob", "role": "agent", "agent": "12ab", "password": "long-enough-password"},
     "an agent number is 1 to 16 digits"),
    ({"username": "bob", "role": "root", "password": "long-enough-password"}, "unknown role &#39;root&#39;"),
    ({"username": "inst", "role": "viewer", "password": "long-enough-password"}, "a user named &#39;inst&#39; exists"),
    ({"username": " bob", "role": "viewer", "password": "long-enough-password"}, "may not start or end with a space"),
    ({"username": "INST", "role": "viewer", "password": "long-enough-password"},
     "a user named &#39;inst&#39; exists already, and &#39;INST&#39; would read the same"),
    ({"username": "\uff49\uff4e\uff53\uff54", "role": "viewer", "password": "long-enough-password"},
     "would read the same: choose a name that differs in more than case or width"),
])
def test_create_refusals(app: Flask, inst: FlaskClient, form: dict[str, str], message: str) -> None:
    before = accounts.list_users(app)
    resp = post(inst, "/users", **form)
    assert resp.status_code == 400
    assert message in resp.get_data(as_text=True)
    assert accounts.list_users(app) == before
    assert last(app, "user_create")["outcome"] == "failure"


def test_role_change_is_audited_with_before_and_after(app: Flask, inst: FlaskClient) -> None:
    make_user(app, "sam", "viewer")
    sam = user(app, "sam")
    assert post(inst, f"/users/{sam.id}/role", role="supervisor", agent="").status_code == 303
    assert user(app, "sam").role == "supervisor"
    row = last(app, "user_role")
    assert (row["user"], row["target"]) == ("inst", "sam")
    assert row["detail"] == {"before": {"agent": None, "disabled": False, "role": "viewer"},
                             "after": {"agent": None, "disabled": False, "role": "supervisor"}}
    assert post(inst, "/users/999/role", role="viewer").status_code == 404


def test_the_last_installer_can_be_neither_demoted_nor_disabled(app: Flask, inst: FlaskClient) -> None:
    me = user(app, "inst")
    resp = post(inst, f"/users/{me.id}/role", role="viewer")
    assert resp.status_code == 400 and "the last installer" in resp.get_data(as_text=True)
    resp = post(inst, f"/users/{me.id}/disable", disabled="1")
    assert resp.status_code == 400 and "the last installer" in resp.get_data(as_text=True)
    assert user(app, "inst").role == "installer" and not user(app, "inst").disabled
    assert last(app, "user_disable")["outcome"] == "failure"
    # With a second installer, the first may step down.
    make_user(app, "inst2", "installer")
    assert post(inst, f"/users/{me.id}/role", role="supervisor").status_code == 303
    assert user(app, "inst").role == "supervisor"


def test_disable_ends_the_users_sessions_and_enable_lets_them_back(app: Flask, inst: FlaskClient) -> None:
    password = make_user(app, "sup", "supervisor")
    sup_client = panel_client(app)
    login(sup_client, "sup", password)
    sup = user(app, "sup")
    assert post(inst, f"/users/{sup.id}/disable", disabled="1").status_code == 303
    assert sup_client.get("/").status_code == 303
    assert not can_sign_in(app, "sup", password)
    assert last(app, "user_disable")["detail"]["after"]["disabled"] is True
    assert post(inst, f"/users/{sup.id}/disable", disabled="0").status_code == 303
    assert can_sign_in(app, "sup", password)
    assert last(app, "user_enable")["detail"] == {"before": {"agent": None, "disabled": True, "role": "supervisor"},
                                                 "after": {"agent": None, "disabled": False, "role": "supervisor"}}


def test_reset_password_ends_sessions_and_must_be_changed(app: Flask, inst: FlaskClient) -> None:
    old = make_user(app, "sup", "supervisor")
    sup_client = panel_client(app)
    login(sup_client, "sup", old)
    sup = user(app, "sup")
    temporary = random_password()
    assert post(inst, f"/users/{sup.id}/password", password=temporary).status_code == 303
    assert sup_client.get("/").status_code == 303                   # signed out
    assert user(app, "sup").must_change
    assert not can_sign_in(app, "sup", old)
    client = panel_client(app)
    login(client, "sup", temporary)
    assert client.get("/").headers["Location"] == "/account/password"
    row = last(app, "password_reset")
    assert (row["user"], row["target"], row["detail"]["after"]) == ("inst", "sup", {"must_change": True})
    resp = post(inst, f"/users/{sup.id}/password", password="short")
    assert resp.status_code == 400 and "at least 12 characters" in resp.get_data(as_text=True)


# --- one's own password ----------------------------------------------------------------------------------------


def test_own_password_change_ends_the_other_sessions(app: Flask) -> None:
    old = make_user(app, "inst", "installer")
    here, there = panel_client(app), panel_client(app, "127.0.0.2")
    login(here, "inst", old)
    login(there, "inst", old)
    new = random_password()
    for form, message in [
        ({"current_password": "not-" + old, "password": new, "password_confirm": new}, "the current password is wrong"),
        ({"current_password": old, "password": new, "password_confirm": new + "x"}, "the two passwords differ"),
        ({"current_password": old, "password": "short", "password_confirm": "short"}, "at least 12 characters"),
        ({"current_password": old, "password": old, "password_confirm": old}, "must differ from the current one"),
    ]:
        resp = post(here, "/account/password", **form)
        assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert there.get("/").status_code == 200
    resp = post(here, "/account/password", current_password=old, password=new, password_confirm=new)
    assert resp.status_code == 303
    assert here.get("/").status_code == 200                         # this session stays
    assert there.get("/").status_code == 303                        # the other one ended
    assert can_sign_in(app, "inst", new) and not can_sign_in(app, "inst", old, "127.0.0.5")
    ok = [r for r in accounts.audit_rows(app, action="password") if r["outcome"] == "ok"]
    assert len(ok) == 1 and ok[0]["target"] == "inst" and ok[0]["detail"]["by"] == "self"


# --- the audit log ---------------------------------------------------------------------------------------------


def test_audit_page_newest_first_paged_and_filtered(app: Flask, inst: FlaskClient,
                                                    clock: time_machine.Traveller) -> None:
    for i in range(PAGE_SIZE + 10):
        clock.shift(timedelta(seconds=1))
        accounts.audit(app, user="ann" if i % 2 else "bob", remote="127.0.0.1", action="probe", target=f"t{i}")
    page1 = inst.get("/audit?action=probe").get_data(as_text=True)
    targets = re.findall(r"<td>(t\d+)</td>", page1)
    assert targets == [f"t{i}" for i in range(PAGE_SIZE + 9, 9, -1)]  # newest first, one page
    assert 'rel="next" href="/audit?action=probe&amp;page=2"' in page1
    page2 = inst.get("/audit?action=probe&page=2").get_data(as_text=True)
    assert re.findall(r"<td>(t\d+)</td>", page2) == [f"t{i}" for i in range(9, -1, -1)]
    assert 'rel="next"' not in page2 and 'rel="prev"' in page2
    only_ann = inst.get("/audit?action=probe&user=ann").get_data(as_text=True)
    assert re.findall(r"<td>(t\d+)</td>", only_ann) == [f"t{i}" for i in range(PAGE_SIZE + 9, -1, -1) if i % 2]
    assert "2026-03-01T09:01:00.000Z" in page1                        # panel clock, UTC, ms
    assert inst.get("/audit?page=x").status_code == 200
    accounts.audit(app, user="ann", remote=None, action="probe", target="refused-one", outcome="refused")
    refused = inst.get("/audit?action=probe&outcome=refused").get_data(as_text=True)
    assert re.findall(r"<td>(t\d+|refused-one)</td>", refused) == ["refused-one"]


def test_audit_page_is_for_installers(app: Flask) -> None:
    make_user(app, "inst", "installer")
    client = panel_client(app)
    login(client, "sup", make_user(app, "sup", "supervisor"))
    resp = client.get("/audit")
    assert resp.status_code == 403
    assert "Not allowed: your role (supervisor) may not audit.view." in resp.get_data(as_text=True)
    row = last(app, "forbidden")
    assert (row["user"], row["target"], row["outcome"]) == ("sup", "/audit", "refused")


def test_the_audit_log_is_insert_only(app: Flask) -> None:
    accounts.audit(app, user="x", remote=None, action="probe")
    conn = sqlite3.connect(Path(app.config["PANEL_DIR"]) / "panel.db")
    try:
        for sql in ("UPDATE audit SET outcome = 'ok'", "DELETE FROM audit", "UPDATE audit SET detail = '{}'"):
            with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (1,)
    finally:
        conn.close()


def test_audit_detail_never_holds_a_secret(app: Flask) -> None:
    accounts.audit(app, user="x", remote=None, action="probe", detail={
        "password": "p", "new_password": "p", "setup_code": "c", "csrf_token": "t", "session_id": "s",
        "before": {"password_hash": "h", "role": "viewer"}, "after": {"role": "agent"}})
    assert last(app, "probe")["detail"] == {"before": {"role": "viewer"}, "after": {"role": "agent"}}


def test_ids_and_pages_past_sqlites_integers_are_none_that_exist(app: Flask, inst: FlaskClient) -> None:
    accounts.audit(app, user="x", remote=None, action="probe", target="only-row")
    for page in ("999999999999999999", str(2**64), "9" * 40):
        resp = inst.get(f"/audit?page={page}")
        assert resp.status_code == 200, page
        assert "only-row" not in resp.get_data(as_text=True)        # an empty page, not a 500
    huge = "99999999999999999999999"
    for url, form in ((f"/users/{huge}/role", {"role": "viewer"}), (f"/users/{huge}/password",
                      {"password": random_password()}), (f"/users/{huge}/disable", {"disabled": "1"})):
        resp = post(inst, url, **form)
        assert resp.status_code == 404, url
        assert f"no user with id {huge}" in resp.get_data(as_text=True)


def test_insert_or_replace_cannot_rewrite_an_audit_row(app: Flask) -> None:
    accounts.audit(app, user="x", remote=None, action="probe", target="first")
    accounts.audit(app, user="x", remote=None, action="probe", target="second")
    conn = sqlite3.connect(Path(app.config["PANEL_DIR"]) / "panel.db")
    try:
        (row_id,) = conn.execute("SELECT id FROM audit WHERE target = 'second'").fetchone()
        for verb in ("INSERT OR REPLACE", "REPLACE", "INSERT"):
            with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
                conn.execute(f"{verb} INTO audit(id, time, user, remote, action, target, outcome, detail) "
                             "VALUES(?, 't', 'y', NULL, 'probe', 'forged', 'ok', '{}')", (row_id,))
        conn.commit()
        assert conn.execute("SELECT target FROM audit ORDER BY id").fetchall() == [("first",), ("second",)]
    finally:
        conn.close()
    accounts.audit(app, user="x", remote=None, action="probe", target="third")   # new rows still go in
    assert [r["target"] for r in accounts.audit_rows(app, action="probe")] == ["third", "second", "first"]


def test_an_older_database_gets_the_replace_trigger_at_open(tmp_path: Path) -> None:
    panel = tmp_path / "old"
    panel.mkdir()
    conn = sqlite3.connect(panel / "panel.db")
    conn.executescript("""
        CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time VARCHAR(32) NOT NULL, user VARCHAR(64),
            remote VARCHAR(64), action VARCHAR(32) NOT NULL, target TEXT, outcome VARCHAR(16) NOT NULL,
            detail TEXT NOT NULL);
        INSERT INTO audit(time, user, action, target, outcome, detail) VALUES('t', 'x', 'probe', 'old', 'ok', '{}');
    """)
    conn.close()
    accounts.open_db(panel)
    conn = sqlite3.connect(panel / "panel.db")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
            conn.execute("INSERT OR REPLACE INTO audit(id, time, action, target, outcome, detail) "
                         "VALUES(1, 't', 'probe', 'forged', 'ok', '{}')")
        assert conn.execute("SELECT target FROM audit").fetchall() == [("old",)]
    finally:
        conn.close()


# --- input rules -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "password", "message"), [
    ("bob", " " * 12, "a password may not be only spaces"),
    ("bob", "\t" * 12, "a password may not be only spaces"),
    ("inst2", "Inst2Inst2Inst2", "may not be the user name (or the name repeated)"),
    ("Bob", "bobbobbobbob", "may not be the user name (or the name repeated)"),
    ("bob", "  BOBBOBBOBBOB  ", "may not be the user name (or the name repeated)"),
])
def test_weak_passwords_are_refused(app: Flask, inst: FlaskClient, name: str, password: str, message: str) -> None:
    resp = post(inst, "/users", username=name, role="viewer", password=password)
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert accounts.get_user(app, name=name) is None
    with pytest.raises(accounts.AccountError, match="may not"):
        accounts.check_password(name, password)
    if password.isprintable():                              # (tabs are control characters: refused anyway)
        accounts.check_password(name, password + "x")       # one more character and it is not the name repeated


def test_the_own_name_repeated_is_refused_for_a_reset(app: Flask, inst: FlaskClient) -> None:
    resp = post(inst, f"/users/{user(app, 'inst').id}/password", password="InstInstInst")
    assert resp.status_code == 400 and "the name repeated" in resp.get_data(as_text=True)


@pytest.mark.parametrize("agent", ["\u0661\u0660\u0660\u0661", "\uff11\uff10\uff10\uff11", "1001\u00b2", "10 01",
                                   "+1001", "1" * 17])
def test_agent_numbers_are_ascii_digits(app: Flask, inst: FlaskClient, agent: str) -> None:
    resp = post(inst, "/users", username="ann", role="agent", agent=agent, password=random_password())
    assert resp.status_code == 400 and "an agent number is 1 to 16 digits" in resp.get_data(as_text=True)
    assert accounts.get_user(app, name="ann") is None


def test_two_accounts_cannot_share_an_agent_number(app: Flask, inst: FlaskClient) -> None:
    assert post(inst, "/users", username="ann", role="agent", agent="1001", password=random_password()).status_code \
        == 303
    resp = post(inst, "/users", username="bob", role="agent", agent="1001", password=random_password())
    assert resp.status_code == 400 and "agent number 1001 is ann&#39;s already" in resp.get_data(as_text=True)
    assert accounts.get_user(app, name="bob") is None
    make_user(app, "sam", "supervisor")
    resp = post(inst, f"/users/{user(app, 'sam').id}/role", role="supervisor", agent="1001")
    assert resp.status_code == 400 and "is ann&#39;s already" in resp.get_data(as_text=True)
    assert user(app, "sam").agent is None
    # Ann keeps her own number through a role change.
    assert post(inst, f"/users/{user(app, 'ann').id}/role", role="supervisor", agent="1001").status_code == 303
    assert (user(app, "ann").role, user(app, "ann").agent) == ("supervisor", "1001")


@pytest.mark.parametrize(("name", "message"), [
    ("ann\u202egnp", "may not hold control, bidi or other invisible characters"),
    ("ann\u200f", "may not hold control, bidi or other invisible characters"),
    ("a\x00b", "may not hold control, bidi or other invisible characters"),
    ("a\tb", "may not hold control, bidi or other invisible characters"),
    ("ann\u2028", "may not hold control, bidi or other invisible characters"),
    ("\ufffd\ufffd", "the user name is not valid UTF-8 text"),
])
def test_user_names_are_visible_text(app: Flask, inst: FlaskClient, name: str, message: str) -> None:
    with pytest.raises(accounts.AccountError, match=re.escape(message)):
        accounts.check_name(name)
    before = accounts.list_users(app)
    resp = post(inst, "/users", username=name, role="viewer", password=random_password())
    assert resp.status_code == 400
    assert accounts.list_users(app) == before


def test_a_form_that_is_not_utf8_is_refused(app: Flask, inst: FlaskClient) -> None:
    token = page_token(inst)
    body = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k, v) for k, v in (
        (b"csrf_token", token.encode()), (b"username", b"\xff\xfe"), (b"role", b"viewer"),
        (b"password", random_password().encode()))) + b"--b--\r\n"
    resp = inst.post("/users", data=body, content_type="multipart/form-data; boundary=b")
    assert resp.status_code == 400
    assert "the form was not valid UTF-8 text" in resp.get_data(as_text=True)
    assert [u.name for u in accounts.list_users(app)] == ["inst"]


def test_the_first_run_refuses_a_name_that_was_not_utf8(tmp_path: Path) -> None:
    from appliance.web import setupcode

    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    code = setupcode.ensure_setup_code(Path(app.config["PANEL_DIR"]))
    client = panel_client(app)
    token = csrf_token(client, "/setup")
    password = random_password()
    body = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k, v) for k, v in (
        (b"csrf_token", token.encode()), (b"setup_code", code.encode()), (b"username", b"\xc3\x28\xff"),
        (b"password", password.encode()), (b"password_confirm", password.encode()))) + b"--b--\r\n"
    resp = client.post("/setup", data=body, content_type="multipart/form-data; boundary=b")
    assert resp.status_code == 400
    assert "the user name is not valid UTF-8 text" in resp.get_data(as_text=True)
    assert accounts.list_users(app) == []


@pytest.mark.parametrize("bad", ["\x00" * 20, "good-words-here\x00x", "tab\tin-the-middle!", "line\nbreak-password",
                                 "escape\x1b[2J-password", "c1-control\x85-password", "delete\x7f-password!"])
def test_a_password_with_control_characters_is_refused_everywhere(app: Flask, inst: FlaskClient, bad: str) -> None:
    message = "a password may not hold control characters"
    old = make_user(app, "sup", "supervisor")
    sup = user(app, "sup")
    resp = post(inst, f"/users/{sup.id}/password", password=bad)                       # a reset
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert not user(app, "sup").must_change and can_sign_in(app, "sup", old)
    resp = post(inst, "/users", username="newbie", role="viewer", password=bad)         # a new account
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert accounts.get_user(app, name="newbie") is None
    here = panel_client(app, "127.0.0.4")
    login(here, "sup", old)
    resp = post(here, "/account/password", current_password=old, password=bad, password_confirm=bad)  # one's own
    assert resp.status_code == 400 and message in resp.get_data(as_text=True)
    assert can_sign_in(app, "sup", old)
    with pytest.raises(accounts.AccountError, match=message):                         # and the console's way
        accounts.check_password("inst", bad, bad)


# --- agent numbers and the site configuration ------------------------------------------------------------------------


def _site_store(app: Flask) -> ConfigStore:
    """The engine's store of applied configurations under the app's STATE_DIR, with the hotel profile in force
    (agents 1001 to 1006), as an engine leaves it."""
    store = ConfigStore(Path(app.config["STATE_DIR"]))
    store.bootstrap(ROOT / "configs" / "hotel.yaml")
    return store


def test_an_agent_number_the_site_does_not_list_is_refused(app: Flask, inst: FlaskClient) -> None:
    _site_store(app)
    resp = post(inst, "/users", username="ann", role="agent", agent="99999", password=random_password())
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "agent 99999 is not in the site configuration" in page and 'id="agents-unchecked"' not in page
    assert accounts.get_user(app, name="ann") is None
    row = last(app, "user_create")
    assert (row["target"], row["outcome"], row["detail"]) == (
        "ann", "failure", {"reason": "agent 99999 is not in the site configuration"})
    assert post(inst, "/users", username="ann", role="agent", agent="1006", password=random_password()).status_code \
        == 303                                                          # one the site lists: taken
    make_user(app, "sam", "supervisor")
    sam = user(app, "sam")
    resp = post(inst, f"/users/{sam.id}/role", role="supervisor", agent="99999")
    assert resp.status_code == 400 and "agent 99999 is not in the site configuration" in resp.get_data(as_text=True)
    assert user(app, "sam").agent is None
    row = last(app, "user_role")
    assert (row["target"], row["outcome"], row["detail"]) == (
        "sam", "failure", {"reason": "agent 99999 is not in the site configuration"})
    assert post(inst, f"/users/{sam.id}/role", role="supervisor", agent="1003").status_code == 303
    assert user(app, "sam").agent == "1003"


def test_an_account_keeps_a_number_the_site_no_longer_lists(app: Flask, inst: FlaskClient) -> None:
    make_user(app, "old", "agent", agent="4242")          # made before the site configuration was read
    _site_store(app)
    old = user(app, "old")
    assert post(inst, f"/users/{old.id}/role", role="supervisor", agent="4242").status_code == 303
    assert (user(app, "old").role, user(app, "old").agent) == ("supervisor", "4242")
    assert post(inst, f"/users/{old.id}/disable", disabled="1").status_code == 303


def test_without_a_site_configuration_numbers_are_taken_with_a_warning(app: Flask, inst: FlaskClient) -> None:
    state = Path(app.config["STATE_DIR"])
    page = inst.get("/users").get_data(as_text=True)
    assert 'id="agents-unchecked"' in page
    assert "Agent numbers are not checked\n    against the site configuration: no configuration is stored under " \
           f"{state / 'config'} yet (no engine has run on that state directory)." in page
    assert not (state / "config").exists()                              # the panel makes nothing there
    assert post(inst, "/users", username="ann", role="agent", agent="99999", password=random_password()).status_code \
        == 303
    assert user(app, "ann").agent == "99999"
    assert 'id="agents-unchecked"' in inst.get("/users").get_data(as_text=True)
    _site_store(app)
    assert 'id="agents-unchecked"' not in inst.get("/users").get_data(as_text=True)


def test_a_configuration_that_cannot_be_read_is_a_warning_too(app: Flask, inst: FlaskClient) -> None:
    store = _site_store(app)
    (store.dir / "0001.yaml").write_text("agents: [nonsense\n")
    page = inst.get("/users").get_data(as_text=True)
    assert 'id="agents-unchecked"' in page and "cannot be read" in page
    assert post(inst, "/users", username="ann", role="agent", agent="99999", password=random_password()).status_code \
        == 303
