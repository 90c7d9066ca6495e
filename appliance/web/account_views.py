"""Accounts on the panel: first run, login, logout, one's own password (blueprint ``account``), and the
wiring that makes every request pass the permission check (:func:`init_app`).

``/setup``
    while no installer exists (or a ``setup-code --new`` code is pending): the setup code, a user
    name and a password twice (``setup_code``, ``username``, ``password``, ``password_confirm``);
    creates an installer, signs them in and deletes the code. A form posted when no code is pending (another
    /setup used it meanwhile) is refused (409, a ``setup`` row with outcome ``refused``), as is one that loses
    the race for the code to another.
``/login``
    ``username``, ``password`` (and ``next``, followed only to a path of this site).
``POST /logout``
    deletes the session row.
``/account/password``
    ``current_password``, ``password``, ``password_confirm``; ends the account's other sessions.

POST /login, /setup and /account/password are throttled by TCP peer (``request.remote_addr``, an IPv6 one with
the rest of its /64: appliance.web.peers; no proxy header is believed), counting failures only (a wrong password
or setup code), all three together: 5 in the last 15 min, 10 in the last hour and 20 in the last day, stacked.
Beyond them the answer is 429 with Retry-After (the seconds until the address may try again) and the password is
not looked at. The failures counted are the audit log's own rows (``login``, ``setup``, ``password`` with outcome
``failure`` and an address of the peer's as ``remote``), so a restart of the panel or its worker forgets none.
One peer's attempts are taken one at a time (a lock per peer around the count, the check and its audit row):
parallel guesses are checked no more than the limit allows. A request answered 503 because every password-hash
slot stayed taken checked no password: it is audited as ``refused`` (capped like every refusal), never counted
as a failure. There is no lockout by account (anyone could lock the installer out): an account's failures are
audited and 20 within 15 minutes show a banner to installers.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import select
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from appliance.web import accounts, auth, setupcode
from appliance.web.clock import iso_ms
from appliance.web.peers import peer_group
from appliance.web.sessions import PanelSession, PanelSessionInterface

bp = Blueprint("account", __name__)

LOGIN_LIMITS: tuple[tuple[int, timedelta], ...] = (
    (5, timedelta(minutes=15)), (10, timedelta(hours=1)), (20, timedelta(days=1)))
"""Failed attempts allowed per TCP peer on POST /login, /setup and /account/password together, stacked:
(failures, in the last ...)."""
GUESS_ACTIONS = ("login", "setup", "password")
"""The audit actions whose failures are password (or setup code) guesses."""

MUST_CHANGE_ALLOWED = frozenset({"account.password", "account.logout", "static"})
"""What an account whose password must change may open before it has."""


# ---------------------------------------------------------------------------------------------------------------
# Wiring


def init_app(app: Flask) -> None:
    """Server-side sessions, Flask-Login, CSRF, login throttling, the permission gate and the account pages."""
    app.session_interface = PanelSessionInterface()

    manager = _SessionOnlyLoginManager()
    manager.session_protection = None  # the session row decides; an address change is no reason to end it
    manager.user_loader(_load_user)
    manager.init_app(app)

    app.before_request(_whole_body)   # before CSRFProtect's check, which reads the form
    CSRFProtect(app)


    app.before_request(_gate)
    app.register_error_handler(CSRFError, _csrf_refused)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(ClientDisconnected, _body_cut_short)
    app.register_error_handler(TimeoutError, _body_cut_short)
    app.register_error_handler(accounts.PanelBusyError, _busy)

    @app.context_processor
    def _templates() -> dict[str, Any]:
        return {"can": auth.can, "current_user": current_user, "login_failures": _banner}

    app.register_blueprint(bp)
    # One count per address for all three: a guess is a guess, whichever form it comes through.
    for endpoint in ("account.login", "account.setup", "account.password"):
        app.view_functions[endpoint] = _throttled(app.view_functions[endpoint])

    from appliance.web import admin_views

    admin_views.init_app(app)


class _SessionOnlyLoginManager(LoginManager):  # type: ignore[misc]  # Flask-Login is untyped
    """Flask-Login with the session row as the only way in: no "remember me" cookie and no auth header,
    which would sign a user in past the idle and absolute limits."""

    def _load_user_from_remember_cookie(self, _cookie: str) -> None:
        return None

    def _load_user_from_header(self, _header: str) -> None:
        return None


def peer_address() -> str:
    """The throttling key: the TCP peer (an IPv6 one as its /64: appliance.web.peers), never a header the client
    wrote."""
    return peer_group(request.remote_addr or "unknown")


class _PeerLocks:
    """One lock per address, held while any request of that address wants it (then dropped)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, peer: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(peer, (threading.Lock(), 0))
            self._locks[peer] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[peer]
                if users == 1:
                    del self._locks[peer]
                else:
                    self._locks[peer] = (lock, users - 1)


_PEER_LOCKS = _PeerLocks()


def guess_wait_s(peer: str) -> int:
    """Seconds before `peer` (a :func:`~appliance.web.peers.peer_group`) may guess again (0: now), from the failures
    in the audit log of its addresses (:data:`LOGIN_LIMITS`)."""
    db = accounts.db_of()
    now = db.now()
    log = accounts.audit_log
    longest = max(window for _, window in LOGIN_LIMITS)
    q = (select(log.c.time)
         .where(log.c.action.in_(GUESS_ACTIONS), log.c.outcome == "failure", log.c.time > iso_ms(now - longest),
                accounts.peer_group_of(log.c.remote) == peer)
         .order_by(log.c.time.desc()))
    with db.read() as conn:
        times = [datetime.fromisoformat(str(t)) for (t,) in conn.execute(q).all()]   # newest first
    wait = 0.0
    for allowed, window in LOGIN_LIMITS:
        recent = [t for t in times if t > now - window]
        if len(recent) >= allowed:      # another try when the allowed-th newest failure leaves the window
            wait = max(wait, (recent[allowed - 1] + window - now).total_seconds())
    return math.ceil(wait)


def _throttled(view: Callable[..., Any]) -> Callable[..., Any]:
    """`view` with its POSTs throttled by :func:`guess_wait_s`, one at a time per address."""

    @functools.wraps(view)
    def throttled(*args: Any, **kwargs: Any) -> Any:
        if request.method != "POST":
            return view(*args, **kwargs)
        peer = peer_address()
        with _PEER_LOCKS.hold(peer):
            wait = guess_wait_s(peer)
            if wait > 0:
                return _too_many(wait)
            return view(*args, **kwargs)

    return throttled


def _load_user(user_id: str) -> accounts.User | None:
    try:
        uid = int(user_id)
    except ValueError:
        return None
    user = accounts.get_user(current_app, user_id=uid)
    return user if user is not None and not user.disabled else None


def _gate() -> Response | None:
    """Every request: the endpoint's declared permission (undeclared: refused), and a pending password change."""
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: the routing error (404, 405) answers
        return None
    declared, perm = auth.endpoint_perm(endpoint)
    if not declared:
        return auth.refuse_undeclared(endpoint)
    if perm is not None and auth.signed_in() and current_user.must_change and endpoint not in MUST_CHANGE_ALLOWED:
        if auth.wants_json():
            response = jsonify({"error": "change your password first (/account/password)"})
            response.status_code = 403
            return response
        return cast(Response, redirect(url_for("account.password"), 303))
    return auth.check(perm, fresh=auth.is_fresh(endpoint))


def _whole_body() -> None:
    """A POST's body, chunked or not, within MAX_CONTENT_LENGTH; else 413. A chunked body past the limit
    would otherwise be parsed as an empty form (a login as a wrong guess, a form as a missing field). Read
    before any view, so a POST whose body never comes (cut by the server's deadline: 408) changes nothing, even
    one that needs no body (a logout with its CSRF token in X-CSRFToken)."""
    if request.method != "POST":
        return
    request.get_data(cache=True)          # reads up to the limit; a Content-Length beyond it is a 413 here
    if request.stream.read(1):            # a chunked body beyond the limit: 413 (werkzeug raises it)
        raise RequestEntityTooLarge()


def _error(message: str, status: int) -> Response:
    if auth.wants_json() or request.is_json:
        response = jsonify({"error": message})
    else:
        response = make_response(render_template("account/error.html", message=message, bare=True), status)
    response.status_code = status
    return response


def _csrf_refused(exc: CSRFError) -> Response:
    accounts.audit_request("csrf_refused", target=request.path, outcome="refused",
                           detail={"method": request.method, "reason": exc.description})
    return _error(f"request refused: {exc.description} Reload the page and try again.", 400)


def _too_large(_exc: RequestEntityTooLarge) -> Response:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return _error(f"request refused: the body is larger than {limit // 1024} KiB", 413)


BUSY_ACTIONS = {"account.login": "login", "account.setup": "setup", "account.password": "password",
                "users.create": "user_create", "users.reset_password": "password_reset"}
"""The audit action of a request answered 503 because every password-hash slot was taken (else ``busy``)."""


def _busy(exc: accounts.PanelBusyError) -> Response:
    # A refusal (capped per address and minute like the others, so a flood cannot grow the log without bound),
    # never a failure: no password was checked, so it is no guess for the throttle to count.
    accounts.audit_request(BUSY_ACTIONS.get(request.endpoint or "", "busy"), target=request.path, outcome="refused",
                           detail={"reason": "busy: every password-hash slot was taken", "status": 503})
    response = _error(str(exc), 503)
    response.headers["Retry-After"] = "5"
    return response


def _body_cut_short(exc: Exception) -> Response:
    """A body that stopped coming: 408 when the server's deadline cut it (serve.py's reader raises
    TimeoutError, which the body's stream may wrap), else the 400 of a
    client that went away."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, TimeoutError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        response = _error("the request's body ended before its announced length", 400)
    else:
        response = _error("request refused: its body came too slowly (the panel waits for a request's "
                          "body at most a few seconds plus its length at 16 KiB/s)", 408)
    return response


def _too_many(wait_s: int) -> Response:
    response = _error("too many failed attempts from your address: wait and try again "
                      "(the Retry-After header says how many seconds)", 429)
    response.headers["Retry-After"] = str(wait_s)
    return response


def _banner() -> list[tuple[str, int]]:
    """Accounts with many recent failed logins, for installers' pages."""
    if not auth.can("users.manage"):
        return []
    return accounts.failure_banner(current_app)


def panel_dir() -> Path:
    return Path(current_app.config["PANEL_DIR"])


def safe_next(value: str | None) -> str:
    """`value` if it is a path of this site (no scheme, no host, no //), else "/"."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _start_session(user: accounts.User) -> None:
    """Sign `user` in with a new session id (the one before the login is dropped)."""
    sess = cast(PanelSession, session._get_current_object())  # type: ignore[attr-defined]
    sess.rotate(accounts.db_of().now_ms())
    login_user(user)


def _form(name: str) -> str:
    value = request.form.get(name, "")
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------------------------------------------
# Pages


@bp.route("/setup", methods=["GET", "POST"])
@auth.public
def setup() -> Any:
    """Make an installer with the setup code (the first one, or one more after ``setup-code --new``)."""
    pdir = panel_dir()
    exists = accounts.installer_exists()
    over = exists and setupcode.read_setup_code(pdir) is None
    if over and request.method != "POST":       # GET or HEAD: reads change nothing
        return redirect(url_for("account.login"), 303)
    if request.method != "POST":
        return render_template("account/setup.html", first=not exists, username="")
    name = _form("username")
    password, confirm = _form("password"), _form("password_confirm")

    def refuse(message: str, status: int) -> Response:
        return make_response(render_template("account/setup.html", first=not exists, username=name,
                                             error=message), status)

    if over:
        # Too late: another /setup used the code since this form was opened (or no code is pending at all).
        # No name stored: no account was made, and what was typed there may be a password in the wrong field.
        accounts.audit_request("setup", outcome="refused",
                               detail={"reason": "no setup code pending (used by another /setup)"})
        return refuse("That setup code has been used already: no installer was made. Sign in, or make a new code "
                      "with `cicbox panel setup-code --new` on the console.", 409)

    if not setupcode.setup_code_matches(pdir, _form("setup_code")):
        accounts.audit_request("setup", outcome="failure", detail={"reason": "wrong setup code"})
        return refuse("That is not the setup code. `cicbox panel setup-code` on the appliance's console "
                      "prints it.", 401)
    try:
        accounts.check_name(name)
        accounts.check_password(name, password, confirm)
    except accounts.AccountError as exc:
        return refuse(exc.message, 400)
    with setupcode.setup_lock(pdir):
        # Checked again under the lock: another /setup may have used the code since (one code, one installer).
        if not setupcode.setup_code_matches(pdir, _form("setup_code")):
            accounts.audit_request("setup", outcome="refused", detail={"reason": "setup code used meanwhile"})
            return refuse("That setup code has just been used by another /setup: no installer was made. Sign "
                          "in, or make a new code with `cicbox panel setup-code --new` on the console.", 409)
        if accounts.get_user(current_app, name=name) is not None:
            return refuse(f"a user named {name!r} exists already", 400)
        try:
            user = accounts.create_user(current_app, name, "installer", password)
        except accounts.AccountError as exc:
            return refuse(exc.message, 400)
        setupcode.consume_setup_code(pdir)
    _start_session(user)
    accounts.audit_request("setup", target=name, outcome="ok", user=name,
                           detail={"role": "installer", "first": not exists})
    return redirect(url_for("index"), 303)


@bp.route("/login", methods=["GET", "POST"])
@auth.public
def login() -> Any:
    """Sign in with a user name and password."""
    if not accounts.installer_exists():
        return redirect(url_for("account.setup"), 303)
    nxt = safe_next(request.values.get("next"))
    reauth = bool(request.values.get("reauth"))
    sess = cast(PanelSession, session._get_current_object())  # type: ignore[attr-defined]
    if request.method != "POST":                # GET or HEAD: never a sign-in attempt
        if auth.signed_in() and not reauth:
            return redirect(nxt, 303)
        username = current_user.name if auth.signed_in() else ""
        expired = sess.expired or request.args.get("expired")
        return render_template("account/login.html", next=nxt, reauth=reauth, username=username,
                               expired=expired if expired in ("idle", "absolute") else None)
    name, password = _form("username"), _form("password")
    user = accounts.authenticate(current_app, name, password)
    if user is None:
        known = accounts.get_user(current_app, name=name) is not None
        # An unknown name is not written down: it may be a password typed in the wrong field.
        accounts.audit_request("login", target=name if known else None, outcome="failure",
                               detail={"known_user": known})
        return make_response(render_template("account/login.html", next=nxt, reauth=reauth, username=name,
                                             error="wrong user name or password"), 401)
    _start_session(user)
    accounts.audit_request("login", target=name, outcome="ok", user=name)
    if user.must_change:
        return redirect(url_for("account.password"), 303)
    return redirect(nxt, 303)


@bp.route("/logout", methods=["POST"])
@auth.requires(auth.SIGNED_IN)
def logout() -> Any:
    """End this session (its row is deleted; the cookie is worthless from now on)."""
    accounts.audit_request("logout", target=current_user.name)
    logout_user()
    cast(PanelSession, session._get_current_object()).destroy()  # type: ignore[attr-defined]
    return redirect(url_for("account.login"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@auth.requires(auth.SIGNED_IN)
def password() -> Any:
    """Change one's own password; the account's other sessions end."""
    user = cast(accounts.User, current_user._get_current_object())
    if request.method != "POST":
        return render_template("account/password.html", must_change=user.must_change)
    current, new, confirm = _form("current_password"), _form("password"), _form("password_confirm")

    def refuse(message: str, status: int) -> Response:
        return make_response(render_template("account/password.html", must_change=user.must_change,
                                             error=message), status)

    if accounts.authenticate(current_app, user.name, current) is None:
        # guessing the current password is throttled like a login (by this failure row)
        accounts.audit_request("password", target=user.name, outcome="failure",
                               detail={"reason": "wrong current password"})
        return refuse("the current password is wrong", 400)
    if new == current:
        return refuse("the new password must differ from the current one", 400)
    try:
        accounts.check_password(user.name, new, confirm)
        sess = cast(PanelSession, session._get_current_object())  # type: ignore[attr-defined]
        accounts.set_password(current_app, user.id, new, must_change=False, keep_session=sess.id_hash)
    except accounts.AccountError as exc:
        return refuse(exc.message, 400)
    accounts.audit_request("password", target=user.name, outcome="ok",
                           detail={"by": "self", "before": {"must_change": user.must_change},
                                   "after": {"must_change": False}})
    return redirect(url_for("index"), 303)
