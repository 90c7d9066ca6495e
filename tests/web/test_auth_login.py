"""First run, the setup code, login and logout, and the server-side session's limits by the panel clock."""

from __future__ import annotations

import fcntl
import io
import os
import sqlite3
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from appliance.web import accounts, create_app, setupcode
from appliance.web.sessions import COOKIE_NAME, session_alive
from tests.web.accounts import BASE_URL, add_probes, csrf_token, login, make_user, panel_client, random_password


@pytest.fixture
def app(tmp_path: Path, clock: time_machine.Traveller) -> Flask:
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    add_probes(app)
    return app


def panel_dir(app: Flask) -> Path:
    return Path(app.config["PANEL_DIR"])


def audit(app: Flask, action: str | None = None) -> list[dict[str, Any]]:
    return accounts.audit_rows(app, action=action)


def cookie(client: FlaskClient) -> str | None:
    c = client.get_cookie(COOKIE_NAME, domain="127.0.0.1")
    return c.value if c is not None else None


def setup_form(client: FlaskClient, code: str, name: str = "inst", password: str | None = None,
               confirm: str | None = None) -> dict[str, str]:
    password = password or random_password()
    return {"csrf_token": csrf_token(client, "/setup"), "setup_code": code, "username": name, "password": password,
            "password_confirm": confirm if confirm is not None else password}


# --- first run -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "status", "where"), [
    ("/", 303, "/setup"), ("/login", 303, "/setup"), ("/users", 303, "/setup"), ("/audit", 303, "/setup"),
    ("/api/probe", 401, None), ("/probe/events", 401, None)])
def test_until_an_installer_exists_only_setup_answers(app: Flask, path: str, status: int, where: str | None) -> None:
    resp = panel_client(app).get(path)
    assert resp.status_code == status
    assert resp.headers.get("Location") == where
    if status == 401:
        assert resp.get_json() == {"error": "sign in first"}


def test_setup_makes_the_installer_with_the_code_and_signs_them_in(app: Flask) -> None:
    client = panel_client(app)
    page = client.get("/setup")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for field in ("setup_code", "username", "password", "password_confirm", "csrf_token"):
        assert f'name="{field}"' in html
    code = setupcode.ensure_setup_code(panel_dir(app))
    path = panel_dir(app) / "setup_code"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(code) == 12 and not set(code) & set("0O1I")
    assert setupcode.ensure_setup_code(panel_dir(app)) == code     # reused until used
    before = cookie(client)

    password = random_password()
    resp = client.post("/setup", data=setup_form(client, code.lower(), "inst", password))
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert not path.exists()                                        # used: gone
    assert cookie(client) not in (None, before)                     # a new session id for the login
    assert client.get("/").status_code == 200                       # signed in
    user = accounts.get_user(app, name="inst")
    assert user is not None and user.role == "installer" and not user.must_change
    assert accounts.authenticate(app, "inst", password) == user
    (row,) = audit(app, "setup")
    assert (row["user"], row["target"], row["outcome"], row["remote"]) == ("inst", "inst", "ok", "127.0.0.1")
    # Setup is over: /setup now sends to /login, and the code cannot be used again.
    other = panel_client(app)
    assert other.get("/setup").headers["Location"] == "/login"
    assert other.get("/").headers["Location"].startswith("/login")


@pytest.mark.parametrize(("change", "message"), [
    ({"setup_code": "ABCDEFGHJKLM"}, "That is not the setup code"),
    ({"setup_code": ""}, "That is not the setup code"),
    ({"password": "short-pw", "password_confirm": "short-pw"}, "a password has at least 12 characters"),
    ({"username": "installer-one", "password": "Installer-One", "password_confirm": "Installer-One"},
     "the password may not be the user name"),
    ({"password_confirm": "something-else-entirely"}, "the two passwords differ"),
    ({"username": ""}, "a user name is needed"),
])
def test_setup_refusals(app: Flask, change: dict[str, str], message: str) -> None:
    client = panel_client(app)
    code = setupcode.ensure_setup_code(panel_dir(app))
    form = {**setup_form(client, code), **change}
    resp = client.post("/setup", data=form)
    assert resp.status_code in (400, 401)
    assert message in resp.get_data(as_text=True)
    assert not accounts.installer_exists(app)
    assert setupcode.read_setup_code(panel_dir(app)) == code        # still there, still the same
    assert client.get("/").headers["Location"] == "/setup"


def test_simultaneous_setups_with_the_right_code_make_one_installer(app: Flask,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    code = setupcode.ensure_setup_code(panel_dir(app))
    checked = setupcode.setup_code_matches

    def slow_check(pdir: Path, given: str) -> bool:
        result = checked(pdir, given)
        time.sleep(0.05)                  # widen the window between the check and what follows it
        return result

    monkeypatch.setattr(setupcode, "setup_code_matches", slow_check)
    clients = [panel_client(app, f"192.0.2.{n + 1}") for n in range(20)]     # 20 browsers, 20 addresses
    forms = [setup_form(client, code, f"inst{n}") for n, client in enumerate(clients)]
    start = threading.Barrier(len(clients))

    def post(n: int) -> Any:
        start.wait()
        return clients[n].post("/setup", data=forms[n])

    with ThreadPoolExecutor(len(clients)) as pool:
        answers = list(pool.map(post, range(len(clients))))
    made = [u for u in (accounts.get_user(app, name=f"inst{n}") for n in range(20)) if u is not None]
    assert len(made) == 1                                                  # one code, one installer
    assert sorted(r.status_code for r in answers) == [303] + [409] * 19
    for answer in answers:
        if answer.status_code == 409:                                      # a clear refusal, not a redirect
            assert "has just been used by another /setup" in answer.get_data(as_text=True)
    assert setupcode.read_setup_code(panel_dir(app)) is None
    rows = audit(app, "setup")
    assert [r["outcome"] for r in rows].count("ok") == 1
    assert [r["outcome"] for r in rows].count("refused") == 19
    assert all(r["target"] is None for r in rows if r["outcome"] == "refused")   # no account, no name kept


def test_a_setup_posted_after_the_code_was_used_is_refused_and_audited(app: Flask) -> None:
    # Two browsers open /setup; the first makes the installer (the code is deleted), the second posts its form
    # after that: a clear 409 and a refused setup row, not a bare redirect.
    code = setupcode.ensure_setup_code(panel_dir(app))
    first, late = panel_client(app, "192.0.2.1"), panel_client(app, "192.0.2.2")
    late_form = setup_form(late, code, "inst2")
    assert first.post("/setup", data=setup_form(first, code, "inst1")).status_code == 303
    resp = late.post("/setup", data=late_form)
    assert resp.status_code == 409
    assert "That setup code has been used already: no installer was made" in resp.get_data(as_text=True)
    assert accounts.get_user(app, name="inst2") is None
    row = audit(app, "setup")[0]
    assert (row["user"], row["remote"], row["target"], row["outcome"], row["detail"]) == (
        None, "192.0.2.2", None, "refused", {"reason": "no setup code pending (used by another /setup)"})
    assert late.get("/setup").headers["Location"] == "/login"          # a GET is still sent to sign in


def test_setup_code_command(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    pdir = panel_dir(app)
    assert setupcode.setup_code_main(pdir, new=False) == 0
    code = capsys.readouterr().out
    assert code == f"{setupcode.read_setup_code(pdir)}\n"          # alone on a line
    assert setupcode.setup_code_main(pdir, new=False) == 0
    assert capsys.readouterr().out == code                          # the same until used
    client = panel_client(app)
    assert client.post("/setup", data=setup_form(client, code.strip())).status_code == 303

    assert setupcode.setup_code_main(pdir, new=False) == 1          # an installer exists
    captured = capsys.readouterr()
    assert captured.out == "" and "an installer exists already" in captured.err and "--new" in captured.err

    # --new: the way back when passwords are lost, for exactly one more installer.
    assert setupcode.setup_code_main(pdir, new=True) == 0
    second = capsys.readouterr().out.strip()
    assert len(second) == 12 and second != code.strip()
    (row,) = audit(app, "setup_code")
    assert (row["remote"], row["outcome"], row["detail"]) == ("console", "ok", {"installer_exists": True, "new": True})
    other = panel_client(app)
    assert other.get("/setup").status_code == 200
    assert other.post("/setup", data=setup_form(other, second, "inst2")).status_code == 303
    assert accounts.get_user(app, name="inst2") is not None
    assert panel_client(app).get("/setup").headers["Location"] == "/login"


def test_a_new_code_waits_for_a_setup_in_progress(app: Flask, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`setup-code --new` while a /setup holds the lock (between its check and the old code's deletion) makes
    its code after that /setup: the new code is not deleted with the old one, it is the pending code."""
    pdir = panel_dir(app)
    setupcode.ensure_setup_code(pdir)
    settled = threading.Event()                      # the command asks for the lock, or has finished
    real_flock = fcntl.flock

    def flock(fd: int, op: int) -> None:
        settled.set()
        real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with setupcode.setup_lock(pdir):
        settled.clear()

        def new_code() -> None:
            setupcode.setup_code_main(pdir, new=True)
            settled.set()

        worker = threading.Thread(target=new_code)
        worker.start()
        assert settled.wait(10)
        setupcode.consume_setup_code(pdir)           # what the /setup does last under its lock
    worker.join(10)
    assert not worker.is_alive()
    code = capsys.readouterr().out.strip()
    assert setupcode.read_setup_code(pdir) == code   # the console's code is the one pending


def test_the_secret_key_and_setup_code_stay_private(app: Flask) -> None:
    setupcode.ensure_setup_code(panel_dir(app))
    panel_client(app).get("/setup")
    assert stat.S_IMODE(panel_dir(app).stat().st_mode) == 0o700
    for name in ("secret_key", "setup_code", "panel.db"):
        assert stat.S_IMODE((panel_dir(app) / name).stat().st_mode) == 0o600, name


def test_the_databases_wal_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    # Outside its unit (no UMask=), the panel runs under the shell's 022: panel.db's -wal and -shm, which
    # hold the same rows (session hashes, the audit log), are made 0600 all the same.
    old = os.umask(0o022)
    try:
        app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
        pdir = panel_dir(app)
        password = make_user(app, "inst", "installer")
        assert accounts.authenticate(app, "inst", password) is not None
    finally:
        os.umask(old)
    names = {p.name for p in pdir.iterdir()}
    assert {"panel.db", "panel.db-wal", "panel.db-shm"} <= names
    for name in ("panel.db", "panel.db-wal", "panel.db-shm"):
        assert stat.S_IMODE((pdir / name).stat().st_mode) == 0o600, name


# --- login and logout ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/setup", "/account/password"])
def test_a_head_request_is_a_read_never_an_attempt(app: Flask, path: str) -> None:
    # HEAD is GET without the body (Flask adds it to every GET route): with a form of the right name and password
    # it signs nobody in, checks no password, audits nothing and counts for no throttle.
    password = random_password()
    make_user(app, "inst", "installer", password=password)
    client = panel_client(app, "192.0.2.9")
    if path == "/account/password":
        login(client, "inst", password)
    before = audit(app)
    form = {"username": "inst", "password": password, "current_password": "wrong" * 3, "setup_code": "ABCDEFGHJKLM",
            "password_confirm": password}
    for _ in range(12):
        resp = client.head(path, data=form)
        assert resp.status_code in (200, 303) and resp.get_data() == b""
    assert audit(app) == before
    if path == "/login":
        assert client.get("/").headers["Location"].startswith("/login")     # still signed out
    other = panel_client(app, "192.0.2.9")
    assert other.post("/login", data={"username": "inst", "password": password,
                                      "csrf_token": csrf_token(other)}).status_code == 303   # not throttled


def test_login_wrong_then_right(app: Flask) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    token = csrf_token(client)
    resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": "wrong-" + password})
    assert resp.status_code == 401 and "wrong user name or password" in resp.get_data(as_text=True)
    resp = client.post("/login", data={"csrf_token": token, "username": "nobody", "password": password})
    assert resp.status_code == 401
    assert client.get("/").status_code == 303
    resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    ok, unknown, wrong = audit(app, "login")
    assert (wrong["target"], wrong["outcome"], wrong["user"]) == ("inst", "failure", None)
    # A name that is no account is not written down (it may be a password typed in the wrong field).
    assert (unknown["target"], unknown["outcome"], unknown["detail"]) == (None, "failure", {"known_user": False})
    assert (ok["target"], ok["outcome"], ok["user"]) == ("inst", "ok", "inst")


def test_a_disabled_account_cannot_sign_in(app: Flask) -> None:
    make_user(app, "inst", "installer")
    password = make_user(app, "sup", "supervisor")
    user = accounts.get_user(app, name="sup")
    assert user is not None
    accounts.update_user(app, user.id, disabled=True)
    client = panel_client(app)
    resp = client.post("/login", data={"csrf_token": csrf_token(client), "username": "sup", "password": password})
    assert resp.status_code == 401


@pytest.mark.parametrize(("nxt", "where"), [
    ("/audit?user=x", "/audit?user=x"), ("/users", "/users"), ("https://evil.example/", "/"),
    ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), ("", "/")])
def test_login_follows_next_only_to_a_local_path(app: Flask, nxt: str, where: str) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    resp = client.post("/login", data={"csrf_token": csrf_token(client), "username": "inst", "password": password,
                                       "next": nxt})
    assert resp.status_code == 303 and resp.headers["Location"] == where


def test_a_refused_page_sends_to_login_and_back(app: Flask) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    resp = client.get("/audit?action=login")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/login?next=/audit?action%3Dlogin"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/audit?action=login"' in page
    resp = client.post("/login", data={"csrf_token": csrf_token(client), "username": "inst", "password": password,
                                       "next": "/audit?action=login"})
    assert resp.headers["Location"] == "/audit?action=login"


def test_login_cookie_attributes(app: Flask) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    token = csrf_token(client)
    resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
    (header,) = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME + "=")]
    parts = [p.strip() for p in header.split(";")]
    value = parts[0].split("=", 1)[1]
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= set(parts)
    assert not any(p.lower().startswith(("expires", "max-age")) for p in parts)
    assert len(value) == 43                                          # 32 random bytes, base64url
    # The database keeps only the id's SHA-256, never the id itself.
    with accounts.db_of(app).engine.connect() as conn:
        hashes = {r.id_hash for r in conn.execute(accounts.sessions.select())}
    assert accounts.session_hash(value) in hashes and value not in hashes


def test_logout_deletes_the_session_and_the_old_cookie_fails(app: Flask) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    login(client, "inst", password)
    old = cookie(client)
    assert old is not None
    borrowed = panel_client(app)
    borrowed.set_cookie(COOKIE_NAME, old, domain="127.0.0.1")
    assert borrowed.get("/").status_code == 200                        # the cookie alone carries the session
    token = csrf_token(client, "/account/password")
    assert client.get("/logout").status_code == 405                   # no state change on GET
    resp = client.post("/logout", data={"csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"] == "/login"
    assert client.get("/").status_code == 303
    # The cookie as it was before the logout, replayed: worth nothing.
    replay = panel_client(app)
    replay.set_cookie(COOKIE_NAME, old, domain="127.0.0.1")
    assert replay.get("/").status_code == 303
    assert replay.get("/api/probe").status_code == 401
    (row,) = audit(app, "logout")
    assert (row["user"], row["target"], row["outcome"]) == ("inst", "inst", "ok")


def test_the_row_decides_not_the_cookie(app: Flask) -> None:
    make_user(app, "inst", "installer")
    client = panel_client(app)
    client.set_cookie(COOKIE_NAME, "made-up-" + "x" * 35, domain="127.0.0.1")
    assert client.get("/").status_code == 303
    assert client.get("/api/probe").status_code == 401


# --- session limits by the panel clock -------------------------------------------------------------------------


def signed_in(app: Flask) -> FlaskClient:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    login(client, "inst", password)
    return client


def test_idle_1459_stays_1501_goes_to_login(app: Flask, clock: time_machine.Traveller) -> None:
    client = signed_in(app)
    clock.shift(timedelta(minutes=14, seconds=59))
    assert client.get("/").status_code == 200
    clock.shift(timedelta(minutes=14, seconds=59))                    # each request is activity
    assert client.get("/").status_code == 200
    clock.shift(timedelta(minutes=15, seconds=1))
    resp = client.get("/")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/login")
    (row,) = audit(app, "expiry")
    assert (row["user"], row["outcome"], row["detail"]["reason"]) == ("inst", "ok", "idle")
    assert row["detail"]["idle_s"] == 901
    assert row["time"] == "2026-03-01T09:44:59.000Z"
    assert client.get("/").status_code == 303                        # gone for good


def test_expired_login_page_says_why(app: Flask, clock: time_machine.Traveller) -> None:
    client = signed_in(app)
    clock.shift(timedelta(minutes=16))
    resp = client.get("/audit")
    assert resp.status_code == 303 and resp.headers["Location"] == "/login?next=/audit&expired=idle"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "no activity for 15 minutes" in page and 'name="next" value="/audit"' in page
    assert "session ended" not in client.get("/login?expired=bogus").get_data(as_text=True)


def test_active_every_10_minutes_ends_at_8_hours(app: Flask, clock: time_machine.Traveller) -> None:
    client = signed_in(app)
    for _ in range(47):                                              # 7 h 50 min of activity
        clock.shift(timedelta(minutes=10))
        assert client.get("/").status_code == 200
    clock.shift(timedelta(minutes=10))                               # 8 h after the login
    resp = client.get("/")
    assert resp.status_code == 303 and resp.headers["Location"] == "/login?next=/&expired=absolute"
    assert "8 hours since the login" in client.get(resp.headers["Location"]).get_data(as_text=True)
    (row,) = audit(app, "expiry")
    assert row["detail"]["reason"] == "absolute" and row["detail"]["age_s"] == 8 * 3600


def test_an_event_stream_is_not_activity(app: Flask, clock: time_machine.Traveller) -> None:
    client = signed_in(app)
    for _ in range(3):                                               # 3 x 4 min of the stream alone
        clock.shift(timedelta(minutes=4))
        assert client.get("/probe/events").status_code == 200
    clock.shift(timedelta(minutes=2, seconds=59))                    # 14:59 since the last page
    assert client.get("/probe/events").status_code == 200
    clock.shift(timedelta(seconds=2))                                # 15:01
    assert client.get("/probe/events").status_code == 401
    assert [r["detail"]["reason"] for r in audit(app, "expiry")] == ["idle"]


def test_a_session_never_seen_again_is_purged_and_audited(app: Flask, clock: time_machine.Traveller) -> None:
    signed_in(app)                                                   # then the browser is closed
    clock.shift(timedelta(hours=1))
    panel_client(app).get("/login")                                  # any new visitor's session
    with accounts.db_of(app).engine.connect() as conn:
        users = [r.user_id for r in conn.execute(accounts.sessions.select())]
    assert users == []                         # the new visitor's session is in its cookie, not a row
    (row,) = audit(app, "expiry")
    assert (row["user"], row["remote"], row["target"]) == ("inst", None, None)
    assert row["detail"] == {"reason": "idle", "idle_s": 3600, "age_s": 3600, "purged": True}


def test_pages_are_not_cached(app: Flask) -> None:
    client = panel_client(app)
    assert client.get("/setup").headers["Cache-Control"] == "no-store"
    static = client.get("/static/panel.css")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()


def test_a_truncated_secret_key_is_replaced(tmp_path: Path) -> None:
    pdir = tmp_path / "panel"
    pdir.mkdir()
    (pdir / "secret_key").write_text("abc")
    key = create_app({"STATE_DIR": str(tmp_path)}).config["SECRET_KEY"]
    assert len(key) == 64 and (pdir / "secret_key").read_text().strip() == key
    assert stat.S_IMODE((pdir / "secret_key").stat().st_mode) == 0o600
    assert create_app({"STATE_DIR": str(tmp_path)}).config["SECRET_KEY"] == key
    assert sorted(p.name for p in pdir.iterdir()) == ["secret_key"]


def test_an_unwritable_panel_dir_is_a_clear_error(tmp_path: Path) -> None:
    from appliance.web import PanelError

    (tmp_path / "panel").write_text("not a directory")
    with pytest.raises(PanelError, match=r"cannot .* the panel's secret key"):
        create_app({"STATE_DIR": str(tmp_path)})


def test_a_remember_me_cookie_is_no_way_in(app: Flask) -> None:
    from flask_login.utils import encode_cookie

    make_user(app, "inst", "installer")
    client = panel_client(app)
    with app.test_request_context():
        forged = encode_cookie("1")                                   # even signed with the panel's own key
    client.set_cookie("remember_token", forged, domain="127.0.0.1")
    assert client.get("/").status_code == 303
    assert client.get("/api/probe", headers={"Authorization": "1"}).status_code == 401


def test_a_burst_of_requests_is_one_write(app: Flask, clock: time_machine.Traveller) -> None:
    client = signed_in(app)

    def seen() -> int:
        with accounts.db_of(app).engine.connect() as conn:
            (row,) = conn.execute(accounts.sessions.select()).all()
        return int(row.seen_ms)

    t0 = seen()
    clock.shift(timedelta(milliseconds=600))
    for _ in range(5):
        assert client.get("/account/password").status_code == 200
    assert seen() == t0                                              # within a second of the last write
    clock.shift(timedelta(milliseconds=400))
    client.get("/account/password")
    assert seen() == t0 + 1000


def test_a_flood_of_anonymous_visits_writes_no_row_and_breaks_no_pending_login(app: Flask) -> None:
    password = make_user(app, "inst", "installer")
    signed_in = panel_client(app, "127.0.0.9")
    login(signed_in, "inst", password)
    victim = panel_client(app, "192.0.2.10")
    token = csrf_token(victim)                       # the installer opens the login form, then types
    for _ in range(1200):                            # a flood of anonymous GET /login, each a new cookie-less visitor
        assert panel_client(app, "192.0.2.66").get("/login").status_code == 200
    db = sqlite3.connect(panel_dir(app) / "panel.db")
    try:
        anonymous = db.execute("SELECT count(*) FROM sessions WHERE user_id IS NULL").fetchone()[0]
        indexes = {r[1] for r in db.execute("PRAGMA index_list(sessions)")}
    finally:
        db.close()
    assert anonymous == 0                                               # the flood wrote no row
    assert {"sessions_seen_ms", "sessions_created_ms"} <= indexes     # the purge's look-ups by time
    assert signed_in.get("/").status_code == 200                        # the signed-in session is kept
    resp = victim.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"  # the pending form still works


def test_an_anonymous_cookie_cannot_be_forged_or_kept_past_idle(app: Flask, clock: time_machine.Traveller) -> None:
    from appliance.web import sessions

    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    token = csrf_token(client)
    value = cookie(client)
    assert value is not None and value.startswith(sessions.ANON_PREFIX)
    forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    other = panel_client(app)
    other.set_cookie(COOKIE_NAME, forged, domain="127.0.0.1")
    resp = other.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    clock.shift(timedelta(minutes=15, seconds=1))    # the form left open past the idle limit
    resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
    assert resp.status_code == 400
    login(client, "inst", password)                  # a reload gives a new form that works


def test_an_anonymous_cookie_signed_with_the_panel_key_is_never_a_login_nor_kept_past_8_hours(
        app: Flask, clock: time_machine.Traveller) -> None:
    from itsdangerous import URLSafeSerializer

    from appliance.web import sessions

    make_user(app, "inst", "installer")
    user = accounts.get_user(app, name="inst")
    assert user is not None
    signer = URLSafeSerializer(app.secret_key or "", salt="cicbox-anonymous-session")
    now_ms = accounts.db_of(app).now_ms()
    forged = panel_client(app)
    forged.set_cookie(COOKIE_NAME, sessions.ANON_PREFIX + signer.dumps(
        {"d": {"_user_id": str(user.id), "_fresh": True, "csrf_token": "x"}, "c": now_ms, "s": now_ms}),
        domain="127.0.0.1")
    assert forged.get("/users").status_code == 303                 # to /login: not signed in
    with accounts.db_of(app).read() as conn:
        assert conn.execute(accounts.sessions.select()).all() == []  # and no row made for it
    # A login form kept open and used every few minutes: still a form after 7 h 50 min, not after 8 h.
    def created() -> int:
        value = cookie(client)
        assert value is not None
        return int(signer.loads(value[len(sessions.ANON_PREFIX):])["c"])

    client = panel_client(app)
    csrf_token(client)
    first = created()
    for _ in range(47):
        clock.shift(timedelta(minutes=10))
        assert client.get("/login").status_code == 200
    assert created() == first                                       # 7 h 50 min: the same session
    clock.shift(timedelta(minutes=20))                              # 8 h 10 min after it was made
    assert client.get("/login").status_code == 200
    assert created() == accounts.db_of(app).now_ms()                # a new one


# --- many logins at once ---------------------------------------------------------------------------------------


def test_logins_are_read_while_another_writer_holds_the_database(app: Flask) -> None:
    # A writer holding panel.db's lock (a long audit write, another process) holds up no reader: the login
    # form, the account's password check, the session's liveness and the account list are all answered at
    # once, not after the busy wait nor as "database is locked" 500s.
    password = make_user(app, "inst", "installer")
    member = panel_client(app, "127.0.0.8")
    login(member, "inst", password)
    sid = cookie(member)
    assert sid is not None
    client = panel_client(app, "127.0.0.9")
    token = csrf_token(client)
    writer = sqlite3.connect(panel_dir(app) / "panel.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        assert client.get("/login").status_code == 200
        assert accounts.get_user(app, name="inst") is not None
        assert accounts.authenticate(app, "inst", password) is not None
        assert [u.name for u in accounts.list_users(app)] == ["inst"]
        assert session_alive(app, accounts.session_hash(sid))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
    assert resp.status_code == 303


def test_a_login_waits_for_a_password_slot_and_is_answered_503_past_the_wait(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each password check takes 64 MiB: at most HASH_SLOTS run at once. With every slot taken past the wait,
    # a login is answered 503 with a Retry-After, audited as refused but not counted as a wrong guess, and works
    # once a slot frees. A flood of them is audited within the refusals' cap.
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    token = csrf_token(client)
    monkeypatch.setattr(accounts, "HASH_WAIT_S", 0.0)
    held = 0
    try:
        while accounts._hash_slots.acquire(blocking=False):
            held += 1
        assert held == accounts.HASH_SLOTS == 2
        resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
        assert "busy checking other passwords" in resp.get_data(as_text=True)
        (row,) = audit(app, "login")
        assert (row["user"], row["remote"], row["target"], row["outcome"], row["detail"]) == (
            None, "127.0.0.1", "/login", "refused", {"reason": "busy: every password-hash slot was taken",
                                                     "status": 503})
        for _ in range(3 * accounts.REFUSALS_PER_MINUTE):
            assert client.post("/login", data={"csrf_token": token, "username": "inst",
                                               "password": "wrong-" + password}).status_code == 503
    finally:
        for _ in range(held):
            accounts._hash_slots.release()
    rows = audit(app)
    assert [r["outcome"] for r in rows if r["action"] == "login"] == ["refused"] * accounts.REFUSALS_PER_MINUTE
    assert [r["detail"]["more"] for r in rows if r["action"] == "refused_more"] == [1]    # the rest: counted
    resp = client.post("/login", data={"csrf_token": token, "username": "inst", "password": password})
    assert resp.status_code == 303                       # 31 refusals, no failure: the next try is not throttled


def _chunked_post(client: FlaskClient, path: str, body: bytes) -> Any:
    """POST `body` to `path` as gunicorn hands over a chunked form: no Content-Length, input terminated."""
    headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Transfer-Encoding", "chunked")]
    environ = EnvironBuilder(path, BASE_URL, method="POST", headers=headers, input_stream=io.BytesIO(body),
                             environ_base=client.environ_base).get_environ()
    environ["wsgi.input_terminated"] = True
    environ.pop("CONTENT_LENGTH", None)
    return client.open(Request(environ))       # (an environ dict would lose input_terminated)


def test_a_chunked_form_beyond_the_limit_is_413_not_a_wrong_guess_or_a_missing_field(app: Flask) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    token = csrf_token(client)
    big = f"csrf_token={token}&username=inst&password={password}&pad=".encode() + b"x" * (2 << 20)
    resp = _chunked_post(client, "/login", big)
    assert resp.status_code == 413 and "larger than 1024 KiB" in resp.get_data(as_text=True)
    assert audit(app, "login") == []                     # not counted as a failed login
    small = f"csrf_token={token}&username=inst&password={password}".encode()
    assert _chunked_post(client, "/login", small).status_code == 303   # a chunked form within the limit works
    form = f"csrf_token={token}&username=newbie&role=viewer&pad=".encode() + b"x" * (2 << 20)
    resp = _chunked_post(client, "/users", form)
    assert resp.status_code == 413
    assert [u.name for u in accounts.list_users(app)] == ["inst"]
