"""Server-side sessions: the cookie holds a random id, the ``sessions`` row of panel.db decides.

The cookie ``cicbox_session`` is a random 256-bit id (Secure, HttpOnly, SameSite=Strict, no
expiry date); the row is keyed by its SHA-256 (:func:`accounts.session_hash`) and holds the
session's data as JSON. By the panel clock (:mod:`appliance.web.clock`):

- a row not seen for :data:`IDLE_S` (15 min) or older than :data:`ABSOLUTE_S` (8 h, counted from
  the login) is deleted when its cookie comes back; a signed-in one leaves an ``expiry`` audit row;
- every request is activity (it moves ``seen_ms``) except those to ``@no_touch`` endpoints (event
  streams), so a wallboard left open does not keep its session alive;
- a login gets a new id (:meth:`PanelSession.rotate`), logging out deletes the row
  (:meth:`PanelSession.destroy`); a cookie whose row is gone is worth nothing.

Anonymous visitors get no row: what their session stores (the login form's CSRF token) travels in the
cookie itself, signed with the panel's secret key (``a.`` then the signed JSON), with its own created and
seen times by the panel clock; one idle for IDLE_S, or older than ABSOLUTE_S, is worth nothing, and only
:data:`ANON_KEYS` are read from it (never an account). So a flood of anonymous GET /login
neither writes panel.db nor pushes anyone's pending login form out of it. Rows without an account left by
an older panel are still read, and purged once idle.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from flask import Flask, Request, g, request
from flask.sessions import SessionInterface, SessionMixin
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, insert, or_, select, update
from werkzeug.datastructures import CallbackDict
from werkzeug.wrappers import Response as BaseResponse

from appliance.web import PanelError, accounts
from appliance.web.auth import is_no_touch

COOKIE_NAME = "cicbox_session"
IDLE_S = 15 * 60
ABSOLUTE_S = 8 * 3600
ANON_PREFIX = "a."
"""An anonymous session's cookie: this, then its signed data (a row's id never holds a dot)."""
_ANON_SALT = "cicbox-anonymous-session"
ANON_KEYS = ("csrf_token",)
"""What an anonymous session's cookie may carry (anything else in it is dropped as it is read)."""
TOUCH_MS = 1000
"""A session seen this recently is not written again (a page's burst of requests is one write)."""


class PanelSession(CallbackDict[str, Any], SessionMixin):
    """One request's view of a session row (a dict of its data, plus the row's times)."""

    def __init__(self, initial: dict[str, Any] | None = None, *, sid: str | None = None, created_ms: int = 0,
                 login_ms: int | None = None, seen_ms: int = 0) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        """The cookie's id, or None for a session with no row yet."""
        self.created_ms = created_ms
        self.seen_ms = seen_ms
        self.login_ms = login_ms
        """When the password was last typed in this session (panel-clock ms): freshness."""
        self.modified = False
        self.destroyed = False
        self.drop_hash: str | None = None
        """The row to delete when the response goes out (the old id of a rotated or destroyed session)."""
        self.expired: str | None = None
        """Why the cookie this request brought was refused ("idle", "absolute"), for the login page."""

    @property
    def new(self) -> bool:  # type: ignore[override]
        return self.sid is None

    @property
    def id_hash(self) -> str | None:
        return accounts.session_hash(self.sid) if self.sid is not None else None

    def rotate(self, now_ms: int) -> None:
        """Start a new session (new id, empty data) for a login; the old row is deleted."""
        if self.sid is not None:
            self.drop_hash = accounts.session_hash(self.sid)
        self.sid = None
        self.clear()
        self.created_ms = now_ms
        self.login_ms = now_ms
        self.modified = True
        g.pop("csrf_token", None)  # the old session's token, cached for this request

    def destroy(self) -> None:
        """End the session: its row is deleted and the cookie cleared."""
        if self.sid is not None:
            self.drop_hash = accounts.session_hash(self.sid)
        self.sid = None
        self.clear()
        self.destroyed = True


class PanelSessionInterface(SessionInterface):
    """Flask's session interface over panel.db's ``sessions`` table."""

    def open_session(self, app: Flask, request: Request) -> PanelSession:
        db = accounts.db_of(app)
        now = db.now_ms()
        sid = request.cookies.get(COOKIE_NAME)
        if not sid:
            return PanelSession(created_ms=now)
        if sid.startswith(ANON_PREFIX):
            return _open_anonymous(app, sid, now)
        id_hash = accounts.session_hash(sid)
        tbl = accounts.sessions
        with db.read() as conn:
            row = conn.execute(select(tbl).where(tbl.c.id_hash == id_hash)).first()
        if row is None:
            return PanelSession(created_ms=now)
        reason = None
        if now - int(row.seen_ms) >= IDLE_S * 1000:
            reason = "idle"
        elif now - int(row.created_ms) >= ABSOLUTE_S * 1000:
            reason = "absolute"
        if reason is not None:
            with db.engine.begin() as conn:
                conn.execute(delete(tbl).where(tbl.c.id_hash == id_hash))
            fresh = PanelSession(created_ms=now)
            if row.user_id is not None:
                user = accounts.get_user(app, user_id=int(row.user_id))
                accounts.audit(app, user=user.name if user else None, remote=request.remote_addr, action="expiry",
                               target=request.path, outcome="ok",
                               detail={"reason": reason, "idle_s": (now - int(row.seen_ms)) // 1000,
                                       "age_s": (now - int(row.created_ms)) // 1000})
                fresh.expired = reason
            return fresh
        try:
            data = json.loads(row.data)
        except ValueError:
            data = {}
        return PanelSession(data if isinstance(data, dict) else {}, sid=sid, created_ms=int(row.created_ms),
                            login_ms=int(row.login_ms) if row.login_ms is not None else None,
                            seen_ms=int(row.seen_ms))

    def save_session(self, app: Flask, session: SessionMixin, response: BaseResponse) -> None:
        assert isinstance(session, PanelSession)
        db = accounts.db_of(app)
        tbl = accounts.sessions
        now = db.now_ms()
        if session.drop_hash is not None:
            with db.engine.begin() as conn:
                conn.execute(delete(tbl).where(tbl.c.id_hash == session.drop_hash))
            session.drop_hash = None
        had_cookie = COOKIE_NAME in request.cookies
        if session.new:
            if session.destroyed or not session:
                if had_cookie:
                    self._clear_cookie(app, response)
                return
            user_id = _user_id(session)
            if user_id is None:            # anonymous: the data goes in the signed cookie, no row
                if COOKIE_NAME not in request.cookies:
                    _purge_expired(app, now)   # a new visitor: a read, and a write only if a row is past
                if session.modified or now - session.seen_ms >= TOUCH_MS:
                    payload = {"d": dict(session), "c": session.created_ms, "s": now}
                    value = ANON_PREFIX + _anon_serializer(app).dumps(payload)
                    response.set_cookie(
                        COOKIE_NAME, value, domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                        secure=True, httponly=True, samesite="Strict")
                return
            sid = secrets.token_urlsafe(32)  # 256 random bits
            _purge_expired(app, now)
            with db.engine.begin() as conn:
                conn.execute(insert(tbl).values(
                    id_hash=accounts.session_hash(sid), user_id=user_id, created_ms=session.created_ms,
                    seen_ms=now, login_ms=session.login_ms, data=_dump(session)))
            session.sid = sid
            response.set_cookie(
                COOKIE_NAME, sid, domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                secure=True, httponly=True, samesite="Strict")
            return
        values: dict[str, Any] = {}
        if not is_no_touch(request.endpoint) and now - session.seen_ms >= TOUCH_MS:
            values["seen_ms"] = now
        if session.modified:
            values["data"] = _dump(session)
            values["user_id"] = _user_id(session)
        if values:
            with db.engine.begin() as conn:
                conn.execute(update(tbl).where(tbl.c.id_hash == session.id_hash).values(**values))

    def _clear_cookie(self, app: Flask, response: BaseResponse) -> None:
        response.delete_cookie(COOKIE_NAME, domain=self.get_cookie_domain(app), path=self.get_cookie_path(app),
                               secure=True, httponly=True, samesite="Strict")


def _purge_expired(app: Flask, now: int) -> None:
    """Delete the rows past their limits whose cookies never came back (a closed browser); a signed-in one
    leaves an ``expiry`` audit row, as it would have on its return."""
    db = accounts.db_of(app)
    tbl = accounts.sessions
    expired = or_(tbl.c.seen_ms <= now - IDLE_S * 1000, tbl.c.created_ms <= now - ABSOLUTE_S * 1000)
    with db.read() as conn:
        rows = conn.execute(select(tbl.c.id_hash, tbl.c.user_id, tbl.c.seen_ms, tbl.c.created_ms)
                            .where(expired)).all()
    if not rows:
        return
    with db.engine.begin() as conn:           # only those still there: another thread may have purged them
        gone = set(conn.execute(delete(tbl).where(tbl.c.id_hash.in_([r.id_hash for r in rows]))
                                .returning(tbl.c.id_hash)).scalars().all())
    rows = [r for r in rows if r.id_hash in gone]
    for row in rows:
        if row.user_id is None:
            continue
        user = accounts.get_user(app, user_id=int(row.user_id))
        idle = now - int(row.seen_ms) >= IDLE_S * 1000
        accounts.audit(app, user=user.name if user else None, remote=None, action="expiry", target=None,
                       detail={"reason": "idle" if idle else "absolute", "idle_s": (now - int(row.seen_ms)) // 1000,
                               "age_s": (now - int(row.created_ms)) // 1000, "purged": True})


def _anon_serializer(app: Flask) -> URLSafeSerializer:
    key = app.secret_key
    if not key:
        raise PanelError("the panel has no secret key to sign anonymous sessions with")
    return URLSafeSerializer(key, salt=_ANON_SALT)


def _open_anonymous(app: Flask, value: str, now: int) -> PanelSession:
    """The anonymous session a signed cookie carries; a fresh one if it is forged, damaged or idle."""
    try:
        payload = _anon_serializer(app).loads(value[len(ANON_PREFIX):])
        data, created, seen = payload["d"], int(payload["c"]), int(payload["s"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return PanelSession(created_ms=now)
    if not isinstance(data, dict) or not 0 <= now - seen < IDLE_S * 1000 or created > seen \
            or now - created >= ABSOLUTE_S * 1000:
        return PanelSession(created_ms=now)
    # Only what an anonymous session may hold: a cookie signed with the panel's key is never a login.
    kept = {key: data[key] for key in ANON_KEYS if isinstance(data.get(key), str)}
    return PanelSession(kept, created_ms=created, seen_ms=seen)


def current_session_hash() -> str | None:
    """The current request's session row key (for :func:`session_alive`), or None without a row."""
    from flask import session

    return session.id_hash if isinstance(session, PanelSession) else None


def _dump(session: PanelSession) -> str:
    return json.dumps(dict(session), separators=(",", ":"), default=str)


def _user_id(session: PanelSession) -> int | None:
    uid = session.get("_user_id")
    try:
        return int(uid) if uid is not None else None
    except (TypeError, ValueError):
        return None


def session_alive(app: Flask, id_hash: str | None) -> bool:
    """Whether the session row `id_hash` still exists and is within its limits (for a long event stream,
    which does not refresh it, to end when the session does)."""
    if id_hash is None:
        return False
    db = accounts.db_of(app)
    now = db.now_ms()
    tbl = accounts.sessions
    with db.read() as conn:
        row = conn.execute(select(tbl.c.seen_ms, tbl.c.created_ms).where(tbl.c.id_hash == id_hash)).first()
    return row is not None and now - int(row.seen_ms) < IDLE_S * 1000 and now - int(row.created_ms) < ABSOLUTE_S * 1000
