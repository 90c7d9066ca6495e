"""Login throttling by TCP peer, failures only, in panel-clock time: 5 per 15 min, 10 per hour, 20 per day;
beyond them 429 with Retry-After and the password is never looked at; no server-side sleep; the count
survives a restart, and parallel guesses are checked no more than the limit allows."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from appliance.web import accounts, create_app, setupcode
from tests.web.accounts import csrf_token, login, make_user, panel_client, random_password


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def sleep(_s: float) -> None:
        raise AssertionError("time.sleep was called")

    monkeypatch.setattr(time, "sleep", sleep)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password check, by the one function that checks passwords."""
    seen: list[str] = []
    real = accounts.verify_password

    def spy(stored_hash: str, password: str) -> bool:
        seen.append(password)
        return real(stored_hash, password)

    monkeypatch.setattr(accounts, "verify_password", spy)
    return seen


@pytest.fixture
def app(tmp_path: Path, clock: time_machine.Traveller) -> Flask:
    return create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})


def attempt(client: FlaskClient, name: str, password: str, **headers: str) -> Any:
    token = csrf_token(client)
    return client.post("/login", data={"csrf_token": token, "username": name, "password": password},
                       headers=headers)


def test_five_failures_then_429_without_a_password_check(app: Flask, clock: time_machine.Traveller,
                                                          checks: list[str]) -> None:
    password = make_user(app, "inst", "installer")
    here = panel_client(app, "127.0.0.1")
    for i in range(5):
        resp = attempt(here, "inst", f"wrong-password-{i}")
        assert resp.status_code == 401 and "Retry-After" not in resp.headers    # only a 429 has one
    assert len(checks) == 5
    assert "Retry-After" not in here.get("/login").headers

    resp = attempt(here, "inst", password)                          # the right one, too late
    assert resp.status_code == 429
    assert 890 < int(resp.headers["Retry-After"]) <= 901         # the 15-minute window, rounded up
    assert "too many failed attempts" in resp.get_data(as_text=True)
    assert len(checks) == 5                                         # never looked at
    assert here.get("/").status_code == 303                         # not signed in
    # A header the client writes changes nothing: the key is the TCP peer.
    resp = attempt(here, "inst", password, X_Forwarded_For="10.1.2.3")
    assert resp.status_code == 429 and len(checks) == 5
    resp = attempt(here, "inst", password, **{"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"})
    assert resp.status_code == 429 and len(checks) == 5

    # The installer at another address is not locked out.
    there = panel_client(app, "127.0.0.2")
    assert attempt(there, "inst", password).status_code == 303
    assert there.get("/").status_code == 200

    # 15 minutes later by the panel clock, 127.0.0.1 may try again.
    clock.shift(timedelta(minutes=15))
    assert attempt(here, "inst", password).status_code == 303
    assert here.get("/").status_code == 200

    # 10 more failures: the hour's 10 are spent as well, so the wait is the hour's.
    later = panel_client(app, "127.0.0.1")
    statuses = [attempt(later, "inst", f"wrong-again-{i}").status_code for i in range(10)]
    assert statuses == [401] * 5 + [429] * 5
    resp = attempt(later, "inst", password)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 900
    # Each failure that was checked is audited against the account; the refused ones were not checked.
    failures = [r for r in accounts.audit_rows(app, action="login", limit=100) if r["outcome"] == "failure"]
    assert len(failures) == 10 and {r["target"] for r in failures} == {"inst"}
    assert {r["remote"] for r in failures} == {"127.0.0.1"}


def test_the_day_limit(app: Flask, clock: time_machine.Traveller) -> None:
    make_user(app, "inst", "installer")
    client = panel_client(app, "127.0.0.1")
    statuses = []
    for _hour in range(3):
        for _window in range(4):
            statuses += [attempt(client, "inst", "wrong-password-x").status_code for _ in range(3)]
            clock.shift(timedelta(minutes=15))
    # 12 a hour would pass the 15-minute limit, the hour's 10 stop the 11th and 12th; the day's 20 stop all
    # of the third hour.
    assert statuses[:12] == [401] * 10 + [429] * 2
    assert statuses[12:24] == [401] * 10 + [429] * 2
    assert statuses[24:] == [429] * 12


def test_setup_is_throttled_too(app: Flask, checks: list[str]) -> None:
    code = setupcode.ensure_setup_code(Path(app.config["PANEL_DIR"]))
    client = panel_client(app)
    password = random_password()

    def setup(given: str) -> int:
        form = {"csrf_token": csrf_token(client, "/setup"), "setup_code": given, "username": "inst",
                "password": password, "password_confirm": password}
        return int(client.post("/setup", data=form).status_code)

    assert [setup("WRONGCODEXYZ") for _ in range(5)] == [401] * 5
    assert setup(code) == 429                                       # the right code, too late
    assert not accounts.installer_exists(app)
    assert setupcode.read_setup_code(Path(app.config["PANEL_DIR"])) == code
    elsewhere = panel_client(app, "127.0.0.9")
    form = {"csrf_token": csrf_token(elsewhere, "/setup"), "setup_code": code, "username": "inst",
            "password": password, "password_confirm": password}
    assert elsewhere.post("/setup", data=form).status_code == 303


def test_a_password_typo_burst_for_one_account_shows_installers_a_banner(app: Flask,
                                                                        clock: time_machine.Traveller) -> None:
    sup_password = make_user(app, "sup", "supervisor")
    installer = panel_client(app)
    login(installer, "inst", make_user(app, "inst", "installer"))
    viewer = panel_client(app)
    login(viewer, "view", make_user(app, "view", "viewer"))
    for peer in range(2, 6):                                        # 4 addresses x 5 failures
        client = panel_client(app, f"127.0.0.{peer}")
        for _ in range(5):
            assert attempt(client, "sup", "not-the-password").status_code == 401
    for peer in range(6, 10):                                       # and 20 for names that are no account
        client = panel_client(app, f"127.0.0.{peer}")
        for _ in range(5):
            assert attempt(client, "nobody", "not-the-password").status_code == 401
    page = installer.get("/").get_data(as_text=True)
    assert "20 failed logins for sup in the last 15 minutes" in page
    assert page.count("failed logins for") == 1
    clock.shift(timedelta(minutes=10))
    assert "20 failed logins for sup" in installer.get("/").get_data(as_text=True)
    clock.shift(timedelta(minutes=5, seconds=1))                    # the failures are 15 minutes old
    resp = installer.get("/")
    assert resp.status_code == 200 and "failed logins for" not in resp.get_data(as_text=True)
    assert "failed logins" not in viewer.get("/").get_data(as_text=True)
    # No lockout by account: the supervisor may still sign in, from an address of its own.
    assert attempt(panel_client(app, "127.0.0.20"), "sup", sup_password).status_code == 303


def test_guessing_the_current_password_counts_as_a_failed_login(app: Flask, checks: list[str]) -> None:
    password = make_user(app, "inst", "installer")
    client = panel_client(app)
    login(client, "inst", password)
    for i in range(5):
        form = {"csrf_token": csrf_token(client, "/account/password"), "current_password": f"guess-{i}-xxxxxxx",
                "password": random_password(), "password_confirm": "x"}
        assert client.post("/account/password", data=form).status_code == 400
    n = len(checks)
    new = random_password()
    form = {"csrf_token": csrf_token(client, "/account/password"), "current_password": password,
            "password": new, "password_confirm": new}
    assert client.post("/account/password", data=form).status_code == 429
    assert len(checks) == n and accounts.authenticate(app, "inst", password) is not None
    # The same count as the login form's: this address may not guess there either.
    assert attempt(panel_client(app), "inst", password).status_code == 429


def test_the_count_survives_a_restart_of_the_panel(tmp_path: Path, clock: time_machine.Traveller) -> None:
    """The failures are counted from the audit log: a new app (a restarted worker) on the same panel
    directory still refuses the address."""
    first = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    password = make_user(first, "inst", "installer")
    here = panel_client(first, "127.0.0.7")
    assert [attempt(here, "inst", f"wrong-{i}").status_code for i in range(5)] == [401] * 5
    assert attempt(here, "inst", password).status_code == 429

    restarted = create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})
    resp = attempt(panel_client(restarted, "127.0.0.7"), "inst", password)
    assert resp.status_code == 429 and 890 < int(resp.headers["Retry-After"]) <= 900
    assert attempt(panel_client(restarted, "127.0.0.8"), "inst", password).status_code == 303


def test_parallel_guesses_from_one_address_are_checked_no_more_than_the_limit(app: Flask,
                                                                             checks: list[str]) -> None:
    make_user(app, "inst", "installer")
    clients = [panel_client(app, "127.0.0.81") for _ in range(100)]
    forms = [{"csrf_token": csrf_token(c), "username": "inst", "password": f"wrong-guess-{i}"}
             for i, c in enumerate(clients)]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def guess(client: FlaskClient, form: dict[str, str]) -> None:
        start.wait(timeout=30)
        statuses.append(client.post("/login", data=form).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, forms, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [401] * 5 + [429] * 95
    assert len(checks) == 5
