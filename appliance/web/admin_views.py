"""The installer's pages: accounts (blueprint ``users``) and the audit log (blueprint ``audit``).

``/users`` (``users.manage``, a login within 5 minutes): the accounts; ``POST /users`` makes one
(``username``, ``role``, ``agent``, ``password``: a first password the user must change at their
first login); ``POST /users/<id>/role`` (``role``, ``agent``), ``POST /users/<id>/disable``
(``disabled`` 1 or 0), ``POST /users/<id>/password`` (``password``, again to be changed at the next
login; the user's sessions end). The last enabled installer can be neither demoted nor disabled.
An agent number given to an account (made, or changed) must be one of the site configuration's agents when the
panel can read it (:mod:`appliance.web.siteconfig`); when it cannot (no engine has run yet), numbers are taken
unchecked and the page says so. Accounts made before keep their numbers. Every change is audited with its before
and after.

``/audit`` (``audit.view``): the audit log newest first, :data:`PAGE_SIZE` rows a page
(``page``), filtered by ``user``, ``action`` and ``outcome``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, make_response, redirect, render_template, request, url_for

from appliance.web import accounts, siteconfig
from appliance.web.auth import ROLES, requires

users_bp = Blueprint("users", __name__)
audit_bp = Blueprint("audit", __name__)

PAGE_SIZE = 50


def init_app(app: Flask) -> None:
    """Register the users and audit blueprints."""
    app.register_blueprint(users_bp)
    app.register_blueprint(audit_bp)


@users_bp.before_request
def _utf8_only() -> Any:
    """A form that was not UTF-8 (the parser's U+FFFD in a field) is refused whole, before anything is made of it."""
    if request.method == "POST" and any("\ufffd" in v for v in request.form.values()):
        return _users_page("the form was not valid UTF-8 text: nothing was changed", 400)
    return None


def _form(name: str) -> str:
    value = request.form.get(name, "")
    return value if isinstance(value, str) else ""


def _users_page(error: str | None = None, status: int = 200, **form: Any) -> Any:
    unchecked = siteconfig.agent_numbers(current_app).unreadable
    page = render_template("users/index.html", users=accounts.list_users(current_app), roles=ROLES, error=error,
                           form=form, agents_unchecked=unchecked)
    return make_response(page, status)


def _unlisted_agent(role: str, agent: str, before: str | None = None) -> str | None:
    """Why `agent` may not be given (a number the site configuration does not list), or None: listed, the
    account's number already (`before`), none, not a number at all (the account check says why), or no
    configuration that can be read."""
    try:
        number = accounts.check_agent(role, agent)
    except accounts.AccountError:
        return None
    if number is None or number == before:
        return None
    listed = siteconfig.agent_numbers(current_app).numbers
    if listed is None or number in listed:
        return None
    return f"agent {number} is not in the site configuration"


def _target(user_id: int) -> accounts.User | None:
    return accounts.get_user(current_app, user_id=user_id)


@users_bp.route("/users", methods=["GET"], endpoint="index")
@requires("users.manage", fresh=True)
def users_index() -> Any:
    """The accounts and the form for a new one."""
    return _users_page()


@users_bp.route("/users", methods=["POST"])
@requires("users.manage", fresh=True)
def create() -> Any:
    """Make an account; its first password must be changed at its first login."""
    name, role, agent = _form("username"), _form("role"), _form("agent")
    unlisted = _unlisted_agent(role, agent)
    if unlisted is not None:
        accounts.audit_request("user_create", target=name or None, outcome="failure", detail={"reason": unlisted})
        return _users_page(unlisted, 400, username=name, role=role, agent=agent)
    try:
        user = accounts.create_user(current_app, name, role, _form("password"), agent=agent or None,
                                    must_change=True)
    except accounts.AccountError as exc:
        accounts.audit_request("user_create", target=name or None, outcome="failure",
                               detail={"reason": exc.message})
        return _users_page(exc.message, 400, username=name, role=role, agent=agent)
    accounts.audit_request("user_create", target=user.name, detail={
        "before": None, "after": {"role": user.role, "agent": user.agent, "disabled": False, "must_change": True}})
    return redirect(url_for("users.index"), 303)


def _change(user_id: int, action: str, **change: Any) -> Any:
    user = _target(user_id)
    if user is None:
        return _users_page(f"no user with id {user_id}", 404)
    if change.get("agent") is not None:
        unlisted = _unlisted_agent(change.get("role") or user.role, change["agent"], user.agent)
        if unlisted is not None:
            accounts.audit_request(action, target=user.name, outcome="failure", detail={"reason": unlisted})
            return _users_page(unlisted, 400)
    try:
        before, after = accounts.update_user(current_app, user_id, **change)
    except accounts.AccountError as exc:
        accounts.audit_request(action, target=user.name, outcome="failure", detail={"reason": exc.message})
        return _users_page(exc.message, 400)
    accounts.audit_request(action, target=user.name, detail={"before": before, "after": after})
    return redirect(url_for("users.index"), 303)


@users_bp.route("/users/<int:user_id>/role", methods=["POST"])
@requires("users.manage", fresh=True)
def role(user_id: int) -> Any:
    """Change an account's role (and agent number)."""
    return _change(user_id, "user_role", role=_form("role"), agent=_form("agent"))


@users_bp.route("/users/<int:user_id>/disable", methods=["POST"])
@requires("users.manage", fresh=True)
def disable(user_id: int) -> Any:
    """Disable (``disabled=1``, the default) or enable (``disabled=0``) an account; disabling ends its sessions."""
    flag = _form("disabled") or "1"
    if flag not in {"0", "1"}:
        return _users_page("disabled is 1 or 0", 400)
    return _change(user_id, "user_disable" if flag == "1" else "user_enable", disabled=flag == "1")


@users_bp.route("/users/<int:user_id>/password", methods=["POST"])
@requires("users.manage", fresh=True)
def reset_password(user_id: int) -> Any:
    """Give an account a new password that it must change at its next login; its sessions end."""
    user = _target(user_id)
    if user is None:
        return _users_page(f"no user with id {user_id}", 404)
    try:
        accounts.set_password(current_app, user_id, _form("password"), must_change=True)
    except accounts.AccountError as exc:
        accounts.audit_request("password_reset", target=user.name, outcome="failure", detail={"reason": exc.message})
        return _users_page(exc.message, 400)
    accounts.audit_request("password_reset", target=user.name, detail={
        "before": {"must_change": user.must_change}, "after": {"must_change": True}, "signed_out": True})
    return redirect(url_for("users.index"), 303)


@audit_bp.route("/audit", endpoint="index")
@requires("audit.view")
def audit_index() -> Any:
    """The audit log, newest first, paged, filtered by user, action and outcome."""
    user = request.args.get("user", "").strip() or None
    action = request.args.get("action", "").strip() or None
    outcome = request.args.get("outcome", "").strip() or None
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    rows = accounts.audit_rows(current_app, user=user, action=action, outcome=outcome, limit=PAGE_SIZE + 1,
                               offset=(page - 1) * PAGE_SIZE)
    more = len(rows) > PAGE_SIZE
    return render_template("audit/index.html", rows=rows[:PAGE_SIZE], page=page, more=more, user=user or "",
                           action=action or "", outcome=outcome or "")
