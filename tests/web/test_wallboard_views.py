"""The wallboard's routes against a real engine in virtual time: the page, /api/wallboard, the event
stream, and a supervisor's actions on agents (POST /api/agents/<number>/state and /logout): who may
press which button, what the engine then says, and the audit row with the state before and after.

Sign-in: with the account views wired (the panel's auth part), a test client logs in through /login;
until then the tests put the account in a signed session cookie under a Flask-Login manager of their
own, so the permission checks (auth.py) run either way."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login import LoginManager
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from appliance.web import accounts, create_app
from appliance.web.wallboard import Hub
from appliance.world import PhoneScript
from tests.e2e.harness import Site, site_yaml
from tests.web import accounts as test_accounts
from tests.web.accounts import BASE_URL, make_user

HOST = BASE_URL.split("//", 1)[1]
_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """Agents 1001 and 1002 log in at once from phone1 and phone2; no callers."""
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0), PhoneScript(port=3, agent="1002", login_at_ms=0)]
    s = Site(tmp_path, site_yaml(agents=2), [], phones, keep_audio=False)
    s.run(4000)
    yield s
    s.close()


def panel_app(state: Path) -> Flask:
    """The panel on the engine state directory `state`, its clients signed in by client_as."""
    app = create_app({"TESTING": True, "STATE_DIR": str(state)})
    wire_login(app)
    return app


def stop_hub(app: Flask) -> None:
    hub = app.extensions.get("cicbox_wallboard_hub")
    if isinstance(hub, Hub):
        hub.stop()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = panel_app(tmp_path)
    yield app
    stop_hub(app)


def wire_login(app: Flask) -> None:
    """Until the account views are wired into the app: a Flask-Login manager of the test's, loading the
    account of the session cookie's user id (client_as puts it there)."""
    if "account.login" not in app.view_functions and not hasattr(app, "login_manager"):
        manager = LoginManager()
        manager.user_loader(lambda uid: accounts.get_user(app, user_id=int(uid)))
        manager.init_app(app)


def client_as(app: Flask, name: str, role: str, agent: str | None = None) -> FlaskClient:
    """A client signed in as a new account `name` with `role` (and agent number)."""
    if "account.login" in app.view_functions:      # the account views are wired: sign in through /login
        signed_in_client = test_accounts.signed_in_client  # type: ignore[attr-defined,unused-ignore]
        client: FlaskClient = signed_in_client(app, role, name, agent=agent)
        return client
    make_user(app, name, role, agent=agent)
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": HOST, "HTTP_REFERER": BASE_URL + "/"})
    user = accounts.get_user(app, name=name)
    assert user is not None
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True
    return client


def token(client: FlaskClient) -> str:
    match = _META.search(client.get("/wallboard").get_data(as_text=True))
    assert match is not None
    return match.group(1)


def post(client: FlaskClient, path: str, body: Any = None) -> Any:
    return client.post(path, data=json.dumps(body if body is not None else {}),
                       headers={"Content-Type": "application/json", "X-CSRFToken": token(client)})


def agent_state(site: Site, number: str) -> tuple[str, str | None]:
    a = site.engine.acd.agents[number]
    return a.state.value, a.reason


def test_the_page_carries_what_its_script_needs(app: Flask) -> None:
    viewer = client_as(app, "vera", "viewer")
    for path in ("/", "/wallboard"):
        resp = viewer.get(path)
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        assert 'data-events-url="/wallboard/events"' in html and "wallboard.js" in html
        assert 'data-act-any=""' in html and 'data-own-agent=""' in html
        assert "<script>" not in html and " on" + "click=" not in html     # CSP: no inline script
    sup = client_as(app, "sam", "supervisor").get("/wallboard").get_data(as_text=True)
    assert 'data-act-any="1"' in sup
    own = client_as(app, "alice", "agent", agent="1001").get("/wallboard").get_data(as_text=True)
    assert 'data-act-any=""' in own and 'data-own-agent="1001"' in own


def test_api_wallboard_is_the_snapshot(app: Flask, site: Site) -> None:
    viewer = client_as(app, "vera", "viewer")
    with site.serving():
        resp = viewer.get("/api/wallboard")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    snap = resp.get_json()
    assert snap["tick_ms"] == site.engine.clock.now_ms
    assert [(a["number"], a["state"]) for a in snap["agents"]] == [("1001", "ready"), ("1002", "ready")]
    assert "today" in snap and snap["site"] == "Test Hotel"
    assert snap["not_ready_reasons"] == {}                 # the site has none: Not ready means other


def test_api_wallboard_without_an_engine(app: Flask) -> None:
    resp = client_as(app, "vera", "viewer").get("/api/wallboard")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["reachable"] is False and body["error"].startswith("engine not reachable: cannot reach the engine")


def test_the_event_stream_sends_the_snapshot_at_once(app: Flask, site: Site) -> None:
    viewer = client_as(app, "vera", "viewer")
    with site.serving():
        viewer.get("/api/wallboard")                       # the hub has its first snapshot
        resp = viewer.get("/wallboard/events", buffered=False)
        assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
        chunks: Iterator[bytes] = iter(resp.response)  # type: ignore[arg-type]
        assert next(chunks).startswith(b"retry:")
        first = next(chunks).decode()
        resp.close()
    assert first.startswith("event: snapshot\ndata: ")
    snap = json.loads(first.split("data: ", 1)[1])
    assert [a["number"] for a in snap["agents"]] == ["1001", "1002"]


def test_streams_beyond_the_limit_are_refused(app: Flask, site: Site) -> None:
    viewer = client_as(app, "vera", "viewer")
    with site.serving():
        viewer.get("/api/wallboard")
        hub = app.extensions["cicbox_wallboard_hub"]
        hub.max_streams = 1
        first = viewer.get("/wallboard/events", buffered=False)
        second = viewer.get("/wallboard/events")
        assert second.status_code == 503 and "streams at once" in second.get_json()["error"]
        assert second.headers["Retry-After"]
        next(iter(first.response))
        first.close()
        unread = viewer.get("/wallboard/events", buffered=False)   # closed at once: its place is free
        unread.close()
        again = viewer.get("/wallboard/events", buffered=False)
        assert again.status_code == 200
        again.close()
        assert hub.streams == set()


def test_a_supervisor_makes_a_ready_agent_not_ready_audited(app: Flask, site: Site) -> None:
    sup = client_as(app, "sam", "supervisor")
    with site.serving():
        resp = post(sup, "/api/agents/1001/state", {"state": "not_ready"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json()["result"] == "done"
        assert agent_state(site, "1001") == ("not_ready", "other")
        (row,) = accounts.audit_rows(app, action="agent.state")
        assert (row["user"], row["target"], row["outcome"]) == ("sam", "agent 1001", "ok")
        assert row["detail"]["before"] == {"state": "ready", "reason": None}
        assert row["detail"]["after"] == {"state": "not_ready", "reason": "other"}
        resp = post(sup, "/api/agents/1002/logout")
        assert resp.status_code == 200 and resp.get_json()["state"] == "logged_out"
        assert agent_state(site, "1002") == ("logged_out", None)
        (row,) = accounts.audit_rows(app, action="agent.logout")
        assert row["detail"]["before"]["state"] == "ready" and row["detail"]["after"]["state"] == "logged_out"


REASONS = "acd: {not_ready_reasons: {'1': break, '2': lunch}}\n"


def test_a_site_reason_is_taken_an_unknown_one_refused_with_the_engines_message(app: Flask, tmp_path: Path) -> None:
    phones = [PhoneScript(port=2, agent="1001", login_at_ms=0), PhoneScript(port=3, agent="1002", login_at_ms=0)]
    site = Site(tmp_path, site_yaml(agents=2).replace("queues:", REASONS + "queues:", 1), [], phones,
                keep_audio=False)
    try:
        site.run(4000)
        sup = client_as(app, "sam", "supervisor")
        with site.serving():
            assert sup.get("/api/wallboard").get_json()["not_ready_reasons"] == {"1": "break", "2": "lunch"}
            resp = post(sup, "/api/agents/1001/state", {"state": "not_ready", "reason": "lunch"})
            assert resp.status_code == 200, resp.get_data(as_text=True)
            assert (resp.get_json()["state"], resp.get_json()["reason"]) == ("not_ready", "lunch")
            assert agent_state(site, "1001") == ("not_ready", "lunch")
            resp = post(sup, "/api/agents/1002/state", {"state": "not_ready", "reason": "nap"})
            assert resp.status_code == 400
            assert resp.get_json() == {"error": "reason must be one of break, lunch, other, not 'nap'"}
            assert agent_state(site, "1002") == ("ready", None)
    finally:
        site.close()
    refused, done = accounts.audit_rows(app, action="agent.state")
    assert (done["user"], done["target"], done["outcome"]) == ("sam", "agent 1001", "ok")
    assert done["detail"] == {"requested": {"state": "not_ready", "reason": "lunch"}, "result": "done",
                              "before": {"state": "ready", "reason": None},
                              "after": {"state": "not_ready", "reason": "lunch"}}
    assert (refused["user"], refused["target"], refused["outcome"]) == ("sam", "agent 1002", "refused")
    assert refused["detail"] == {"requested": {"state": "not_ready", "reason": "nap"},
                                 "error": "reason must be one of break, lunch, other, not 'nap'"}


def test_an_agent_acts_on_its_own_row_only(app: Flask, site: Site) -> None:
    alice = client_as(app, "alice", "agent", agent="1001")
    with site.serving():
        resp = post(alice, "/api/agents/1002/state", {"state": "not_ready"})
        assert resp.status_code == 403 and "own agent number (1001)" in resp.get_json()["error"]
        assert agent_state(site, "1002") == ("ready", None)
        assert accounts.audit_rows(app, action="forbidden")[0]["user"] == "alice"
        assert accounts.audit_rows(app, action="agent.state") == []
        resp = post(alice, "/api/agents/1001/state", {"state": "not_ready"})
        assert resp.status_code == 200 and agent_state(site, "1001") == ("not_ready", "other")


def test_a_viewer_may_not_act(app: Flask, site: Site) -> None:
    vera = client_as(app, "vera", "viewer")
    with site.serving():
        for path in ("/api/agents/1001/state", "/api/agents/1001/logout"):
            assert post(vera, path, {"state": "not_ready"}).status_code == 403
    assert agent_state(site, "1001") == ("ready", None)


@pytest.mark.parametrize(("body", "status", "message"), [
    ("not json", 400, "send a JSON object"),
    ({"reason": "break"}, 400, "send a JSON object"),
    ({"state": "on_call"}, 400, "state must be ready or not_ready"),
    ({"state": "not_ready", "reason": "nap"}, 400, "reason must be one of other, not 'nap'"),
])
def test_bad_requests_get_a_clear_error(app: Flask, site: Site, body: Any, status: int, message: str) -> None:
    sup = client_as(app, "sam", "supervisor")
    with site.serving():
        data = body if isinstance(body, str) else json.dumps(body)
        resp = sup.post("/api/agents/1001/state", data=data,
                        headers={"Content-Type": "application/json", "X-CSRFToken": token(sup)})
    assert resp.status_code == status and message in resp.get_json()["error"]
    assert agent_state(site, "1001") == ("ready", None)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_sent_as_json_is_415(app: Flask, site: Site, content_type: str | None) -> None:
    sup = client_as(app, "sam", "supervisor")
    headers = {"X-CSRFToken": token(sup)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    with site.serving():
        resp = sup.post("/api/agents/1001/state", data='{"state": "not_ready"}', headers=headers)
    assert resp.status_code == 415 and "Content-Type: application/json" in resp.get_json()["error"]
    assert agent_state(site, "1001") == ("ready", None)


def test_an_unknown_agent_and_no_engine(app: Flask, site: Site, tmp_path: Path) -> None:
    sup = client_as(app, "sam", "supervisor")
    with site.serving():
        resp = post(sup, "/api/agents/1999/logout")
    assert resp.status_code == 400 and "configured agent's number" in resp.get_json()["error"]
    assert accounts.audit_rows(app, action="agent.logout")[0]["outcome"] == "refused"
    site.close()
    resp = post(sup, "/api/agents/1001/logout")
    assert resp.status_code == 503 and resp.get_json()["error"].startswith("engine not reachable")


def test_the_event_stream_ends_when_its_session_does(app: Flask, site: Site) -> None:
    if "account.login" not in app.view_functions:
        pytest.skip("server-side sessions come with the account views")
    viewer = client_as(app, "vera", "viewer")
    with site.serving():
        viewer.get("/api/wallboard")
        resp = viewer.get("/wallboard/events", buffered=False)
        chunks: Iterator[bytes] = iter(resp.response)  # type: ignore[arg-type]
        next(chunks)
        assert next(chunks).startswith(b"event: snapshot")
        token = test_accounts.csrf_token(viewer, "/account/password")
        assert viewer.post("/logout", data={"csrf_token": token}).status_code == 303
        end = next(chunks).decode()                   # within a second of the hub's clock
        assert end.startswith("event: end\n") and "sign in again" in end
        with pytest.raises(StopIteration):
            next(chunks)
        resp.close()
    assert app.extensions["cicbox_wallboard_hub"].streams == set()
    assert viewer.get("/wallboard/events").status_code == 401       # and no new one without a login


def test_a_chunked_body_beyond_the_limit_is_413_and_changes_nothing(app: Flask, site: Site) -> None:
    sup = client_as(app, "sam", "supervisor")
    body = b'{"state": "not_ready", "reason": "' + b"x" * (2 << 20) + b'"}'
    headers = {"Content-Type": "application/json", "X-CSRFToken": token(sup), "Transfer-Encoding": "chunked"}
    with site.serving():
        for path in ("/api/agents/1001/state", "/api/agents/1001/logout"):
            environ = EnvironBuilder(path, BASE_URL, method="POST", headers=list(headers.items()),
                                     input_stream=io.BytesIO(body), environ_base=sup.environ_base).get_environ()
            environ["wsgi.input_terminated"] = True
            environ.pop("CONTENT_LENGTH", None)          # as gunicorn hands over a chunked body
            resp = sup.open(Request(environ))              # (an environ dict would lose input_terminated)
            assert resp.status_code == 413, resp.get_data(as_text=True)
            assert "larger than 1024 KiB" in resp.get_json()["error"]
        assert agent_state(site, "1001") == ("ready", None)
        assert post(sup, "/api/agents/1001/state", {"state": "not_ready"}).status_code == 200
    assert [r["outcome"] for r in accounts.audit_rows(app, action="agent.state")] == ["ok"]


def test_one_account_may_not_take_every_stream(app: Flask, site: Site) -> None:
    viewer = client_as(app, "vera", "viewer")
    sup = client_as(app, "sam", "supervisor")
    with site.serving():
        viewer.get("/api/wallboard")
        mine = [viewer.get("/wallboard/events", buffered=False) for _ in range(4)]
        assert [r.status_code for r in mine] == [200] * 4
        fifth = viewer.get("/wallboard/events")
        assert fifth.status_code == 429 and "4 wallboard streams open already" in fifth.get_json()["error"]
        theirs = sup.get("/wallboard/events", buffered=False)        # the supervisor still gets one
        assert theirs.status_code == 200
        mine[0].close()                                             # a closed tab's place is free again
        again = viewer.get("/wallboard/events", buffered=False)
        assert again.status_code == 200
        for r in [*mine[1:], theirs, again]:
            r.close()
        assert app.extensions["cicbox_wallboard_hub"].streams == set()


@pytest.mark.parametrize(("data", "message"), [
    ("[" * 100000, "send a JSON object"),                                   # nested past the parser's depth
    ('{"state": "not_ready", "reason": NaN}', "send a JSON object"),
    ('{"state": "not_ready", "reason": -Infinity}', "send a JSON object"),
    ('{"state": "not_ready", "reason": 1e999}', "send a JSON object"),
    ('{"state": NaN}', "send a JSON object"),
    ('{"state": ["ready"]}', "state must be ready or not_ready"),
    ('{"state": 1}', "state must be ready or not_ready"),
    ('{"state": "not_ready", "reason": {"code": 1}}', "reason must be a string"),
    ('{"state": "not_ready", "reason": 2.5}', "reason must be a string"),
])
def test_odd_json_is_400_before_the_engine_is_asked(app: Flask, site: Site, data: str, message: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.web import wallboard_views

    sup = client_as(app, "sam", "supervisor")
    csrf = token(sup)

    def no_engine(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the engine was asked")

    monkeypatch.setattr(wallboard_views, "ControlClient", no_engine)
    with site.serving():
        resp = sup.post("/api/agents/1001/state", data=data,
                        headers={"Content-Type": "application/json", "X-CSRFToken": csrf})
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    assert message in resp.get_json()["error"]
    assert agent_state(site, "1001") == ("ready", None)
    assert accounts.audit_rows(app, action="agent.state") == []


def test_signing_in_again_does_not_give_an_account_more_streams(app: Flask, site: Site) -> None:
    if "account.login" not in app.view_functions:
        pytest.skip("sign-in comes with the account views")
    if not accounts.installer_exists(app):
        make_user(app, "first-installer", "installer")
    password = make_user(app, "vera", "viewer")
    logins = []
    for _ in range(4):                                   # the same account signed in four times
        client = test_accounts.panel_client(app)
        test_accounts.login(client, "vera", password)
        logins.append(client)
    sup = client_as(app, "sam", "supervisor")
    with site.serving():
        logins[0].get("/api/wallboard")
        opened = [logins[n % 4].get("/wallboard/events", buffered=False) for n in range(4)]
        assert [r.status_code for r in opened] == [200] * 4
        for client in logins:                            # a fifth from any of its sessions is refused
            refused = client.get("/wallboard/events")
            assert refused.status_code == 429
            assert "your account has 4 wallboard streams open already" in refused.get_json()["error"]
        theirs = sup.get("/wallboard/events", buffered=False)
        assert theirs.status_code == 200
        for r in [*opened, theirs]:
            r.close()
    assert app.extensions["cicbox_wallboard_hub"].streams == set()


class _SetClock:
    """A panel clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def test_an_account_sends_at_most_sixty_agent_actions_a_minute(app: Flask, site: Site) -> None:
    # An agent's script toggling its own state: the 61st action within a minute is answered 429 with when to
    # try again, changes nothing and leaves no ok row; a minute after the first, the account acts again.
    alice = client_as(app, "alice", "agent", agent="1001")
    clock = _SetClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    accounts.db_of(app).clock = clock
    with site.serving():
        for n in range(60):
            state = "not_ready" if n % 2 == 0 else "ready"
            assert post(alice, "/api/agents/1001/state", {"state": state}).status_code == 200
            clock.at += timedelta(milliseconds=500)          # 60 actions in 30 s
        assert agent_state(site, "1001") == ("ready", None)
        resp = post(alice, "/api/agents/1001/state", {"state": "not_ready"})
        assert resp.status_code == 429 and resp.headers["Retry-After"] == "30"
        assert "60 a minute at most; try again in 30 s" in resp.get_json()["error"]
        assert agent_state(site, "1001") == ("ready", None)
        sup = client_as(app, "sam", "supervisor")                # another account has its own sixty
        assert post(sup, "/api/agents/1002/state", {"state": "not_ready"}).status_code == 200
        clock.at += timedelta(seconds=30)                     # a minute after alice's first action
        assert post(alice, "/api/agents/1001/state", {"state": "not_ready"}).status_code == 200
        assert agent_state(site, "1001") == ("not_ready", "other")
    rows = accounts.audit_rows(app, action="agent.state", limit=500)
    assert [r["outcome"] for r in rows].count("ok") == 62
    (refused,) = [r for r in rows if r["outcome"] == "refused"]
    assert refused["user"] == "alice" and refused["detail"]["error"] == "too many agent actions"
