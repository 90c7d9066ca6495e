"""The wallboard's routes (blueprint ``wallboard``): the page, its event stream, its JSON, and a supervisor's
actions on agents.

- ``/`` and ``/wallboard``: the page; ``static/wallboard.js`` opens ``/wallboard/events`` and fills its
  tables from each ``snapshot`` event (no reload);
- ``/wallboard/events``: the hub's server-sent events (appliance.web.wallboard), not activity for the
  session's idle limit;
- ``/api/wallboard``: the same snapshot as JSON (503 ``{"error", "reachable": false}`` while the engine
  cannot be reached);
- ``POST /api/agents/<number>/state`` (JSON ``{"state": "ready" | "not_ready", "reason"?}``) and
  ``POST /api/agents/<number>/logout``: control.sock's ``agent.state`` and ``agent.logout``; any agent with
  ``agents.act``, one's own agent number with ``agents.self``; audited with the state before and after;
  :data:`ACTIONS_PER_MINUTE` per account in any minute of the panel clock, the rest answered 429.
"""

from __future__ import annotations

import json
import math
import select
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request, session

from appliance.control import ControlClient, ControlError
from appliance.web import control_socket
from appliance.web.auth import can, current_agent_number, forbid, may_act_on_agent, no_touch, requires
from appliance.web.wallboard import WallboardError, hub_of

bp = Blueprint("wallboard", __name__)

ACTIONS_PER_MINUTE = 60
"""Agent actions one account may send in any 60 s of the panel clock (each is an audit row and an ACD
change): a script toggling its own state cannot fill the disk nor churn the queues."""


def init_app(app: Flask) -> None:
    """Register the wallboard; ``url_for("index")`` is its page too."""
    app.register_blueprint(bp)
    app.add_url_rule("/", endpoint="index", view_func=app.view_functions["wallboard.page"])


@bp.route("/")
@bp.route("/wallboard")
@requires("wallboard.view")
def page() -> str:
    """The wallboard; its script fills it from the event stream."""
    return render_template("wallboard/index.html", act_any=can("agents.act"),
                           own_agent=current_agent_number() if can("agents.self") else None)


@bp.route("/wallboard/events")
@requires("wallboard.view")
@no_touch
def events() -> Response:
    """Server-sent events: ``snapshot``, ``engine``, heartbeats; ``end`` when the session is over."""
    hub = hub_of()
    try:
        stream = hub.open_stream(_stream_owner())
    except WallboardError as exc:
        response = jsonify({"error": str(exc)})
        response.status_code = exc.status
        response.headers["Retry-After"] = "5"
        return response
    response = Response(hub.events(stream, _session_check(), _client_gone()), mimetype="text/event-stream")
    # the place is freed when the server closes the response, even one whose stream never started
    response.call_on_close(lambda: hub.close_stream(stream))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.route("/api/wallboard")
@requires("wallboard.view")
def api() -> Response:
    """The latest snapshot (the events' data), or 503 with why the engine cannot be reached."""
    snapshot, engine = hub_of().current_json()
    if engine is not None or snapshot is None:
        reason = (engine or {}).get("reason", "no snapshot yet")
        response = jsonify({"error": f"engine not reachable: {reason}", "reachable": False, "reason": reason})
        response.status_code = 503
    else:
        response = Response(snapshot, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/agents/<number>/state")
@requires("agents.self")
def agent_state(number: str) -> Response:
    """Ready or not ready (with a reason) for agent `number`."""
    refusal = _may_act(number)
    if refusal is not None:
        return refusal
    if not request.is_json:
        return _error("send the body as JSON (Content-Type: application/json)", 415)
    body = _json_body()
    if not isinstance(body, dict) or "state" not in body:
        return _error('send a JSON object {"state": "ready" or "not_ready", "reason": ...}', 400)
    if not isinstance(body["state"], str):
        return _error("state must be ready or not_ready, a string", 400)
    args: dict[str, Any] = {"state": body["state"]}
    if body.get("reason") is not None:
        if not isinstance(body["reason"], str):
            return _error("reason must be a string (a reason code of the site's)", 400)
        args["reason"] = body["reason"]
    return _act("agent.state", number, args)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):          # 1e999
        raise ValueError(f"{text} is too large a number")
    return number


def _json_body() -> Any:
    """The request's JSON body, or None for one that is not JSON: not UTF-8, not well formed, nested too deep
    to parse, or with NaN or Infinity (which JSON has no place for); the engine is never sent those."""
    try:
        return json.loads(request.get_data(cache=True), parse_constant=_refuse_constant,
                          parse_float=_finite)
    except (ValueError, RecursionError):
        return None


@bp.post("/api/agents/<number>/logout")
@requires("agents.self")
def agent_logout(number: str) -> Response:
    """Log agent `number` out (once its call ends, if it has one)."""
    refusal = _may_act(number)
    if refusal is not None:
        return refusal
    return _act("agent.logout", number, {})


def _may_act(number: str) -> Response | None:
    if may_act_on_agent(number):
        return None
    own = current_agent_number()
    why = f"you may act on your own agent number ({own}) only" if own else "your account has no agent number"
    return forbid(why, target=f"agent {number}")


def _act(cmd: str, number: str, args: dict[str, Any]) -> Response:
    """Send `cmd` for agent `number` to the engine; audit it with what it changed."""
    from appliance.web import accounts

    target = f"agent {number}"
    wait_s = _action_wait_s()
    if wait_s > 0:
        accounts.audit_request(cmd, target=target, outcome="refused",
                               detail={"requested": args, "error": "too many agent actions"})
        response = _error(f"too many agent actions: {ACTIONS_PER_MINUTE} a minute at most; try again in "
                          f"{math.ceil(wait_s)} s", 429)
        response.headers["Retry-After"] = str(math.ceil(wait_s))
        return response
    path = control_socket(current_app)
    try:
        client = ControlClient(path, timeout_s=float(current_app.config["CONTROL_TIMEOUT_S"]))
    except ControlError as exc:
        accounts.audit_request(cmd, target=target, outcome="error", detail={"requested": args, "error": str(exc)})
        return _error(f"engine not reachable: {exc}", 503)
    try:
        result = client.request(cmd, number=number, **args)
    except ControlError as exc:
        accounts.audit_request(cmd, target=target, outcome="refused", detail={"requested": args, "error": str(exc)})
        return _error(str(exc), 400)
    except (OSError, ValueError) as exc:
        accounts.audit_request(cmd, target=target, outcome="error", detail={"requested": args, "error": str(exc)})
        return _error(f"lost the engine: {exc}", 503)
    finally:
        client.close()
    if not isinstance(result, dict):
        return _error("the engine sent a malformed reply", 502)
    outcome = "pending" if result.get("result") == "pending" else "ok"
    accounts.audit_request(cmd, target=target, outcome=outcome, detail={
        "requested": args, "result": result.get("result"), "before": result.get("before"),
        "after": {"state": result.get("state"), "reason": result.get("reason")}})
    return jsonify(result)


class _ActionTimes:
    """Per account, the panel-clock times of its agent actions in the last minute."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, deque[datetime]] = {}


def _action_wait_s() -> float:
    """0 and this action counted, or how long until the account may act again."""
    from flask_login import current_user

    from appliance.web import accounts

    times: _ActionTimes = current_app.extensions.setdefault("cicbox_agent_actions", _ActionTimes())
    now = accounts.db_of(current_app).now()
    window = timedelta(minutes=1)
    with times.lock:
        for name in [n for n, seen in times.times.items() if not seen or seen[-1] <= now - window]:
            del times.times[name]          # accounts idle a minute: nothing kept for them
        seen = times.times.setdefault(str(current_user.name), deque())
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= ACTIONS_PER_MINUTE:
            return max((seen[0] + window - now).total_seconds(), 0.001)
        seen.append(now)
        return 0.0


def _error(message: str, status: int) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


def _session_check() -> Callable[[], bool] | None:
    """Whether this request's session is still alive, for a stream that outlives the request: the
    server-side session's row (appliance.web.sessions), or None where the panel has no such sessions."""
    id_hash = getattr(session, "id_hash", None)
    if not isinstance(id_hash, str):
        return None
    try:
        from appliance.web.sessions import session_alive  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def alive() -> bool:
        with app.app_context():
            return bool(session_alive(app, id_hash))

    return alive


def _stream_owner() -> str:
    """Whose streams count together against the per-account cap: the account, over all its sessions (one
    account signed in four times must not take every place)."""
    from flask_login import current_user

    return f"user {current_user.get_id()}"


def _client_gone() -> Callable[[], bool] | None:
    """Whether the client closed this request's connection, or None where the server gives no socket.

    A browser sends nothing more on an event stream's connection: the socket readable (a TLS close alert,
    or the end of the connection) means the client went away."""
    sock = request.environ.get("gunicorn.socket")
    fileno = getattr(sock, "fileno", None)
    if fileno is None:
        return None
    fd = int(fileno())
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR | _POLLRDHUP)

    def gone() -> bool:
        try:
            return bool(poller.poll(0))
        except OSError:
            return True

    return gone


_POLLRDHUP = getattr(select, "POLLRDHUP", 0)
