"""Who may do what on the panel: roles, the one permission table, and the one check.

Every view declares its permission, once, with ``@requires(perm)`` (or ``@public`` for the
few pages anyone may open: /setup, /login, /static). The declarations are collected into
:data:`ENDPOINT_PERMS` (endpoint -> permission, ``None`` = public) when the app is built;
the panel refuses (403) an endpoint that declares nothing, and the route-matrix test fails
on it. Templates ask the same question with ``can(perm)``.

Roles and their permissions (``ROLE_PERMS``):

- installer: everything;
- supervisor: ``wallboard.view``, ``agents.act`` (any agent), ``agents.self``;
- agent: ``wallboard.view``, ``agents.self`` (their own agent number only);
- viewer: ``wallboard.view``.

``audit.view``, ``users.manage`` and ``tls.manage`` are the installer's alone;
``users.manage`` and ``tls.manage`` views pass ``fresh=True``: they need a login within
the last :data:`FRESH_S` seconds.

:data:`SIGNED_IN` is not a permission of a role but "any account": logging out and
changing one's own password.

Refusals: a visitor without a session is sent to /setup (no installer yet) or /login
with 303; ``/api/...`` and event streams answer 401 instead, since a script cannot follow
a login page. A signed-in user whose role lacks the permission gets 403 and a
``forbidden`` audit row.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, jsonify, make_response, redirect, request, url_for
from flask_login import current_user

PERMISSIONS = frozenset({
    "wallboard.view", "agents.act", "agents.self", "audit.view", "users.manage", "tls.manage",
})
"""Every permission the panel knows."""

ROLES = ("installer", "supervisor", "agent", "viewer")
"""The roles, most powerful first."""

ROLE_PERMS: dict[str, frozenset[str]] = {
    "installer": PERMISSIONS,
    "supervisor": frozenset({"wallboard.view", "agents.act", "agents.self"}),
    "agent": frozenset({"wallboard.view", "agents.self"}),
    "viewer": frozenset({"wallboard.view"}),
}

SIGNED_IN = "signed_in"
"""The pseudo-permission every account has: log out, change one's own password."""

FRESH_S = 300
"""A ``fresh=True`` view needs a login (password typed) at most this many seconds ago."""

ENDPOINT_PERMS: dict[str, str | None] = {
    "static": None,
}
"""Endpoint -> permission (None = public). Filled from the views' declarations by :func:`collect`."""

FRESH_ENDPOINTS: set[str] = set()
"""Endpoints declared with ``fresh=True``."""

NO_TOUCH_ENDPOINTS: set[str] = set()
"""Endpoints whose requests do not count as activity for the idle limit (event streams)."""

F = TypeVar("F", bound=Callable[..., Any])

_PERM_ATTR = "_cicbox_perm"
_FRESH_ATTR = "_cicbox_fresh"
_NO_TOUCH_ATTR = "_cicbox_no_touch"


def requires(perm: str, *, fresh: bool = False) -> Callable[[F], F]:
    """Declare the permission a view needs (and, with `fresh`, a login within FRESH_S seconds)."""
    if perm != SIGNED_IN and perm not in PERMISSIONS:
        raise ValueError(f"unknown permission {perm!r}; the panel knows {sorted(PERMISSIONS)} and {SIGNED_IN!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            # The app's before_request hook checks first; this second check keeps a view safe
            # even when it is mounted in an app without that hook.
            refusal = check(perm, fresh=fresh)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        setattr(wrapper, _PERM_ATTR, perm)
        setattr(wrapper, _FRESH_ATTR, fresh)
        return cast(F, wrapper)

    return decorate


def public(view: F) -> F:
    """Declare a view open to anyone, signed in or not (only /setup, /login and their kin)."""
    setattr(view, _PERM_ATTR, None)
    return view


def no_touch(view: F) -> F:
    """Declare that requests to a view are not activity: they neither extend nor refresh the session's
    idle limit (an event stream that stays open all day must not keep a session alive)."""
    setattr(view, _NO_TOUCH_ATTR, True)
    return view


def collect(app: Flask) -> dict[str, str | None]:
    """Record every endpoint's declared permission in ENDPOINT_PERMS; return the ones of `app`."""
    out: dict[str, str | None] = {}
    for endpoint, view in app.view_functions.items():
        if hasattr(view, _PERM_ATTR):
            ENDPOINT_PERMS[endpoint] = getattr(view, _PERM_ATTR)
        if getattr(view, _FRESH_ATTR, False):
            FRESH_ENDPOINTS.add(endpoint)
        if getattr(view, _NO_TOUCH_ATTR, False) or getattr(getattr(view, "__wrapped__", None), _NO_TOUCH_ATTR, False):
            NO_TOUCH_ENDPOINTS.add(endpoint)
        if endpoint in ENDPOINT_PERMS:
            out[endpoint] = ENDPOINT_PERMS[endpoint]
    return out


def endpoint_perm(endpoint: str) -> tuple[bool, str | None]:
    """(declared, permission) for `endpoint`; an undeclared endpoint is refused."""
    if endpoint in ENDPOINT_PERMS:
        return True, ENDPOINT_PERMS[endpoint]
    view = current_app.view_functions.get(endpoint)
    if view is not None and hasattr(view, _PERM_ATTR):
        ENDPOINT_PERMS[endpoint] = getattr(view, _PERM_ATTR)
        return True, ENDPOINT_PERMS[endpoint]
    return False, None


def _view_flag(endpoint: str, attr: str) -> bool:
    view = current_app.view_functions.get(endpoint)
    while view is not None:
        if getattr(view, attr, False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False


def is_fresh(endpoint: str | None) -> bool:
    """Whether `endpoint` was declared with ``fresh=True``."""
    if endpoint is None:
        return False
    if endpoint in FRESH_ENDPOINTS:
        return True
    if _view_flag(endpoint, _FRESH_ATTR):
        FRESH_ENDPOINTS.add(endpoint)
        return True
    return False


def is_no_touch(endpoint: str | None) -> bool:
    """Whether requests to `endpoint` are not activity (declared ``@no_touch``)."""
    if endpoint is None:
        return False
    if endpoint in NO_TOUCH_ENDPOINTS:
        return True
    if _view_flag(endpoint, _NO_TOUCH_ATTR):
        NO_TOUCH_ENDPOINTS.add(endpoint)
        return True
    return False


def signed_in() -> bool:
    """Whether this request belongs to a signed-in account."""
    return bool(getattr(current_user, "is_authenticated", False))


def role() -> str | None:
    """The signed-in account's role, or None."""
    return cast(str, current_user.role) if signed_in() else None


def can(perm: str) -> bool:
    """Whether the signed-in account may `perm` (False for anonymous visitors). Also a template global."""
    if not signed_in():
        return False
    if perm == SIGNED_IN:
        return True
    return perm in ROLE_PERMS.get(cast(str, current_user.role), frozenset())


def current_agent_number() -> str | None:
    """The signed-in account's agent number (an agent's own line), or None."""
    if not signed_in():
        return None
    number = current_user.agent
    return cast(str, number) if number else None


def may_act_on_agent(number: str) -> bool:
    """agents.act for any agent, or agents.self for one's own agent number."""
    return can("agents.act") or (can("agents.self") and current_agent_number() == number)


def wants_json() -> bool:
    """Whether this request is a script's (``/api/...`` or an event stream): refusals answer with a status,
    not a page to go to."""
    path = request.path
    return path.startswith("/api/") or path.endswith("/events")


def forbid(reason: str, *, target: str | None = None) -> Response:
    """Refuse a signed-in account with 403 and a ``forbidden`` audit row."""
    from appliance.web import accounts

    accounts.audit_request("forbidden", target=target or request.path, outcome="refused",
                           detail={"method": request.method, "reason": reason})
    if wants_json():
        response = jsonify({"error": reason})
    else:
        from flask import render_template

        response = make_response(render_template("account/error.html", message=f"Not allowed: {reason}."), 403)
    response.status_code = 403
    return response


def unauthenticated() -> Response:
    """The answer to a visitor without a session: 401 for scripts, else 303 to /setup or /login."""
    from appliance.web import accounts

    if wants_json():
        response = jsonify({"error": "sign in first"})
        response.status_code = 401
        return response
    if not accounts.installer_exists(current_app):
        return cast(Response, redirect(url_for("account.setup"), 303))
    nxt = request.full_path if request.method == "GET" and request.query_string else request.path
    # A session that just ran out says so on the login page (the redirect's request has a new session).
    from flask import session

    expired = getattr(session, "expired", None)
    return cast(Response, redirect(url_for("account.login", next=nxt, expired=expired), 303))


def check(perm: str | None, *, fresh: bool = False) -> Response | None:
    """None if this request may go on under `perm`, else the refusal to send."""
    if g.get("_cicbox_checked"):
        return None
    if perm is None:
        return None
    if not signed_in():
        return unauthenticated()
    if perm not in {SIGNED_IN} and not can(perm):
        return forbid(f"your role ({role()}) may not {perm}")
    if fresh:
        from appliance.web import accounts

        if not accounts.login_is_fresh():
            nxt = request.path
            if wants_json():
                response = jsonify({"error": "sign in again: this needs a login within the last 5 minutes"})
                response.status_code = 401
                return response
            return cast(Response, redirect(url_for("account.login", next=nxt, reauth=1), 303))
    g._cicbox_checked = True
    return None


def refuse_undeclared(endpoint: str) -> Response:
    """An endpoint with no declared permission: refused for everyone, so a forgotten decorator fails closed."""
    current_app.logger.error("endpoint %s declares no permission; refused", endpoint)
    if not signed_in():
        return unauthenticated()
    return forbid(f"{endpoint} declares no permission")
