"""A scripted panel session from the first run on: its audit rows, field by field, and no password or code
in any byte the panel wrote (state dir, panel dir, logs) but as an argon2id hash."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask

from appliance.web import accounts, create_app, setupcode
from tests.web.accounts import csrf_token, page_token, panel_client, random_password


@pytest.fixture
def app(tmp_path: Path, clock: time_machine.Traveller) -> Flask:
    return create_app({"TESTING": True, "STATE_DIR": str(tmp_path / "state"), "PANEL_DIR": str(tmp_path / "panel")})


def run_script(app: Flask, clock: time_machine.Traveller) -> dict[str, str]:
    """First run, logins good and bad, a user made, reset and changing their password, logouts, an expiry,
    a forbidden page, a refused CSRF token. Returns the secrets it typed."""
    secrets = {name: random_password() for name in ("inst", "wrong", "ann_first", "ann_reset", "ann_own")}
    code = setupcode.ensure_setup_code(Path(app.config["PANEL_DIR"]))
    secrets["code"] = code
    browser = panel_client(app, "127.0.0.1")
    form = {"csrf_token": csrf_token(browser, "/setup"), "setup_code": "ABCDEFGHJKLM", "username": "inst",
            "password": secrets["inst"], "password_confirm": secrets["inst"]}
    assert browser.post("/setup", data=form).status_code == 401                       # 1 wrong code
    clock.shift(timedelta(seconds=10))
    assert browser.post("/setup", data={**form, "setup_code": code}).status_code == 303  # 2 setup
    clock.shift(timedelta(seconds=10))
    ann = {"csrf_token": page_token(browser), "username": "ann", "role": "agent", "agent": "1002",
           "password": secrets["ann_first"]}
    assert browser.post("/users", data=ann).status_code == 303                         # 3 user_create
    clock.shift(timedelta(seconds=10))
    ann_id = accounts.get_user(app, name="ann").id  # type: ignore[union-attr]
    assert browser.post(f"/users/{ann_id}/password", data={
        "csrf_token": page_token(browser), "password": secrets["ann_reset"]}).status_code == 303  # 4 reset
    clock.shift(timedelta(seconds=10))

    phone = panel_client(app, "192.0.2.7")
    bad = {"csrf_token": csrf_token(phone), "username": "ann", "password": secrets["wrong"]}
    assert phone.post("/login", data=bad).status_code == 401                            # 5 login failure
    clock.shift(timedelta(seconds=1))
    good = {**bad, "password": secrets["ann_reset"]}
    assert phone.post("/login", data=good).status_code == 303                           # 6 login ok
    clock.shift(timedelta(seconds=1))
    assert phone.post("/account/password", data={
        "csrf_token": page_token(phone), "current_password": secrets["ann_reset"], "password": secrets["ann_own"],
        "password_confirm": secrets["ann_own"]}).status_code == 303                      # 7 password
    clock.shift(timedelta(seconds=1))
    assert phone.get("/audit").status_code == 403                                       # 8 forbidden
    clock.shift(timedelta(seconds=1))
    assert phone.post("/logout", data={"csrf_token": "not-a-token"}).status_code == 400  # 9 csrf_refused
    clock.shift(timedelta(seconds=1))
    assert phone.post("/logout", data={"csrf_token": page_token(phone)}).status_code == 303  # 10 logout
    clock.shift(timedelta(minutes=20))
    assert browser.get("/users").status_code == 303                                     # 11 expiry
    return secrets


def test_a_scripted_sessions_audit_rows(app: Flask, clock: time_machine.Traveller) -> None:
    run_script(app, clock)
    rows = [{k: v for k, v in r.items() if k != "id"} for r in reversed(accounts.audit_rows(app, limit=100))]
    ann_after = {"agent": "1002", "disabled": False, "must_change": True, "role": "agent"}
    expected: list[dict[str, Any]] = [
        {"time": "2026-03-01T09:00:00.000Z", "user": None, "remote": "127.0.0.1", "action": "setup",
         "target": None, "outcome": "failure", "detail": {"reason": "wrong setup code"}},
        {"time": "2026-03-01T09:00:10.000Z", "user": "inst", "remote": "127.0.0.1", "action": "setup",
         "target": "inst", "outcome": "ok", "detail": {"first": True, "role": "installer"}},
        {"time": "2026-03-01T09:00:20.000Z", "user": "inst", "remote": "127.0.0.1", "action": "user_create",
         "target": "ann", "outcome": "ok", "detail": {"before": None, "after": ann_after}},
        {"time": "2026-03-01T09:00:30.000Z", "user": "inst", "remote": "127.0.0.1", "action": "password_reset",
         "target": "ann", "outcome": "ok",
         "detail": {"before": {"must_change": True}, "after": {"must_change": True}, "signed_out": True}},
        {"time": "2026-03-01T09:00:40.000Z", "user": None, "remote": "192.0.2.7", "action": "login",
         "target": "ann", "outcome": "failure", "detail": {"known_user": True}},
        {"time": "2026-03-01T09:00:41.000Z", "user": "ann", "remote": "192.0.2.7", "action": "login",
         "target": "ann", "outcome": "ok", "detail": {}},
        {"time": "2026-03-01T09:00:42.000Z", "user": "ann", "remote": "192.0.2.7", "action": "password",
         "target": "ann", "outcome": "ok",
         "detail": {"by": "self", "before": {"must_change": True}, "after": {"must_change": False}}},
        {"time": "2026-03-01T09:00:43.000Z", "user": "ann", "remote": "192.0.2.7", "action": "forbidden",
         "target": "/audit", "outcome": "refused",
         "detail": {"method": "GET", "reason": "your role (agent) may not audit.view"}},
        {"time": "2026-03-01T09:00:44.000Z", "user": "ann", "remote": "192.0.2.7", "action": "csrf_refused",
         "target": "/logout", "outcome": "refused",
         "detail": {"method": "POST", "reason": "The CSRF token is invalid."}},
        {"time": "2026-03-01T09:00:45.000Z", "user": "ann", "remote": "192.0.2.7", "action": "logout",
         "target": "ann", "outcome": "ok", "detail": {}},
        {"time": "2026-03-01T09:20:45.000Z", "user": "inst", "remote": "127.0.0.1", "action": "expiry",
         "target": "/users", "outcome": "ok", "detail": {"reason": "idle", "idle_s": 1215, "age_s": 1235}},
    ]
    assert rows == expected


def test_no_secret_in_any_byte_the_panel_wrote(app: Flask, clock: time_machine.Traveller, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = run_script(app, clock)
    accounts.db_of(app).engine.dispose()                 # everything on disk (WAL included) as it is
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "panel.db" for p in files)
    blob = b"".join(p.read_bytes() for p in files) + caplog.text.encode()
    for name, secret in secrets.items():
        assert secret.encode() not in blob, f"the {name} secret is stored"
    assert not (Path(app.config["PANEL_DIR"]) / "setup_code").exists()
    with accounts.db_of(app).engine.connect() as conn:
        hashes = [r.password_hash for r in conn.execute(accounts.users.select())]
    assert len(hashes) == 2 and all(h.startswith("$argon2id$") for h in hashes)
    # The session cookies' ids are not stored either, only their SHA-256.
    with accounts.db_of(app).engine.connect() as conn:
        stored = {r.id_hash for r in conn.execute(accounts.sessions.select())}
    assert all(len(h) == 64 for h in stored)


def test_an_injected_panel_clock_times_the_audit_and_the_sessions(tmp_path: Path) -> None:
    from tests.web.accounts import login, make_user

    class Clock:
        def __init__(self) -> None:
            self.t = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

        def now(self) -> datetime:
            return self.t

    clock = Clock()
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "PANEL_CLOCK": clock})
    client = panel_client(app)
    login(client, "inst", make_user(app, "inst", "installer"))
    (row,) = accounts.audit_rows(app, action="login")
    assert row["time"] == "2030-01-02T03:04:05.678Z"
    clock.t += timedelta(minutes=15)
    assert client.get("/account/password").status_code == 303       # idle by the injected clock
    assert accounts.audit_rows(app, action="expiry")[0]["time"] == "2030-01-02T03:19:05.678Z"


def test_anonymous_refusals_are_kept_ten_a_minute_per_address(app: Flask, clock: time_machine.Traveller) -> None:
    long_path = "/api/agents/" + "1" * 4000 + "/logout"
    stranger = panel_client(app, "192.0.2.66")
    for _ in range(1000):
        assert stranger.post(long_path, json={}).status_code == 400
    other = panel_client(app, "192.0.2.67")
    for _ in range(3):
        assert other.post("/logout", data={"csrf_token": "x"}).status_code == 400
    kept = accounts.audit_rows(app, action="csrf_refused", limit=2000)
    assert len([r for r in kept if r["remote"] == "192.0.2.66"]) == accounts.REFUSALS_PER_MINUTE
    assert len([r for r in kept if r["remote"] == "192.0.2.67"]) == 3
    assert all(len(r["target"]) <= accounts.TEXT_MAX + 40 for r in kept)
    assert kept[-1]["target"].startswith("/api/agents/111") and kept[-1]["target"].endswith("characters)")

    # Past the cap, the first refusal is written at once as a summary (a killed panel loses no more than the rest
    # of the minute's count), insert-only.
    (first,) = accounts.audit_rows(app, action="refused_more")
    assert (first["remote"], first["user"], first["detail"]["more"]) == ("192.0.2.66", None, 1)

    # The next minute: the 989 counted after it are one more summary row, and the address has its ten again.
    clock.shift(timedelta(seconds=60))
    assert stranger.post(long_path, json={}).status_code == 400
    more, _ = accounts.audit_rows(app, action="refused_more")
    assert (more["remote"], more["user"], more["outcome"]) == ("192.0.2.66", None, "refused")
    assert more["detail"]["more"] == 989 and more["detail"]["summary"] == "989 more refused"
    assert more["detail"]["actions"] == {"csrf_refused": 989}
    assert (more["detail"]["from"], more["detail"]["to"]) == ("2026-03-01T09:00:00.000Z", "2026-03-01T09:01:00.000Z")
    assert len(accounts.audit_rows(app, limit=5000)) < 100


def test_a_signed_in_accounts_refusals_are_kept_ten_a_minute(app: Flask, clock: time_machine.Traveller) -> None:
    from tests.web.accounts import login, make_user

    make_user(app, "inst", "installer")
    viewer = panel_client(app, "192.0.2.70")
    login(viewer, "vic", make_user(app, "vic", "viewer"))
    token = csrf_token(viewer, "/account/password")
    for _ in range(1000):                    # a low role hammering what it may not do, with and without a token
        assert viewer.post("/users", data={"csrf_token": token}).status_code == 403
        assert viewer.post("/logout", data={"csrf_token": "not-a-token"}).status_code == 400
    rows = accounts.audit_rows(app, user="vic", limit=5000)
    kept = [r for r in rows if r["action"] in ("forbidden", "csrf_refused")]
    assert len(kept) == accounts.REFUSALS_PER_MINUTE
    (more,) = [r for r in rows if r["action"] == "refused_more"]
    assert more["detail"]["more"] == 1
    clock.shift(timedelta(seconds=60))
    assert viewer.post("/users", data={"csrf_token": token}).status_code == 403
    total = sum(r["detail"]["more"] for r in accounts.audit_rows(app, action="refused_more", limit=100))
    assert total == 2000 - accounts.REFUSALS_PER_MINUTE
    assert len(accounts.audit_rows(app, limit=5000)) < 40


def test_refusals_from_many_addresses_are_capped_in_all(app: Flask, clock: time_machine.Traveller) -> None:
    for n in range(500):                      # 500 addresses, each within its own ten
        stranger = panel_client(app, f"10.0.{n // 250}.{n % 250 + 1}")
        for _ in range(5):
            assert stranger.post("/logout", data={"csrf_token": "x"}).status_code == 400
    rows = accounts.audit_rows(app, limit=10000)
    assert len([r for r in rows if r["action"] == "csrf_refused"]) == accounts.ALL_REFUSALS_PER_MINUTE
    assert len(rows) <= accounts.ALL_REFUSALS_PER_MINUTE + 5
    clock.shift(timedelta(seconds=60))
    accounts.audit(app, user=None, remote=None, action="probe")
    (everyone, _) = [r for r in accounts.audit_rows(app, action="refused_more", limit=100)]
    assert everyone["user"] is None and everyone["remote"] is None and everyone["detail"]["scope"] == "all"
    total = sum(r["detail"]["more"] for r in accounts.audit_rows(app, action="refused_more", limit=100))
    assert total == 2500 - accounts.ALL_REFUSALS_PER_MINUTE


def test_anonymous_noise_from_many_addresses_does_not_hide_a_signed_in_accounts_refusals(
        app: Flask, clock: time_machine.Traveller) -> None:
    from tests.web.accounts import login, make_user

    make_user(app, "inst", "installer")
    viewer = panel_client(app, "192.0.2.70")
    login(viewer, "vic", make_user(app, "vic", "viewer"))
    token = csrf_token(viewer, "/account/password")
    for n in range(300):                      # the budget for all addresses is spent by strangers first
        stranger = panel_client(app, f"10.1.{n // 250}.{n % 250 + 1}")
        assert stranger.post("/logout", data={"csrf_token": "x"}).status_code == 400
    for _ in range(3):                        # then the account tries what it may not do
        assert viewer.post("/users", data={"csrf_token": token}).status_code == 403
    kept = [r for r in accounts.audit_rows(app, user="vic", limit=100) if r["action"] == "forbidden"]
    assert len(kept) == 3 and all(r["target"] == "/users" for r in kept)
    strangers = [r for r in accounts.audit_rows(app, action="csrf_refused", limit=1000) if r["user"] is None]
    assert len(strangers) == accounts.ALL_REFUSALS_PER_MINUTE


def test_audit_strings_are_escaped_and_cut(app: Flask) -> None:
    accounts.audit(app, user=None, remote="127.0.0.1", action="probe", target="ann\u202egnp.exe\x00\n",
                   detail={"reason": "x" * 5000, "nested": ["\u200f"], "k\x01": 1})
    (row,) = accounts.audit_rows(app, action="probe")
    assert row["target"] == "ann\\u202egnp.exe\\x00\\n"
    assert row["detail"]["reason"] == "x" * accounts.TEXT_MAX + "...(+4800 characters)"
    assert row["detail"]["nested"] == ["\\u200f"] and row["detail"]["k\\x01"] == 1
