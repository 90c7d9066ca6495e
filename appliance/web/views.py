"""The live view: ports, calls, agents and queues, as the engine reports them.

``/`` renders the engine's status snapshot on the server (so it works without
JavaScript); ``static/panel.js`` then polls ``/api/status`` every second and
re-renders the same tables. When the engine cannot be reached, ``/`` shows a
banner and ``/api/status`` answers 503 with ``{"error": reason}``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from appliance.control import ControlClient, ControlError
from appliance.control.snapshot import echo_text
from appliance.web import control_socket
from appliance.web.auth import requires

bp = Blueprint("status", __name__)

# A call in one of these states has an agent on the line: its time is talking time.
TALKING_STATES = frozenset({"talking", "connected"})


def fetch_status() -> tuple[dict[str, Any] | None, str | None]:
    """Ask the engine for its snapshot; return (snapshot, None) or (None, the reason it failed)."""
    path = control_socket(current_app)
    try:
        with ControlClient(path, timeout_s=float(current_app.config["CONTROL_TIMEOUT_S"])) as client:
            result = client.request("status")
    except ControlError as exc:
        return None, str(exc)
    except OSError as exc:  # the engine went away mid-request (reset, broken pipe, timeout)
        return None, f"lost the engine at {path}: {exc.strerror or exc}"
    except ValueError as exc:  # a reply line that is not JSON
        return None, f"the engine sent a malformed reply: {exc}"
    if not isinstance(result, dict):
        return None, f"the engine sent a malformed status reply ({type(result).__name__}, not an object)"
    return result, None


def duration(ms: Any) -> str:
    """Milliseconds as m:ss, or h:mm:ss from an hour on; empty for anything that is not a number."""
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return ""
    s = max(0, int(ms)) // 1000
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def call_phase(call: dict[str, Any]) -> str:
    """Whether the call's time counts as talking (an agent on the line) or waiting."""
    state = call.get("state")
    return "talking" if isinstance(state, str) and state in TALKING_STATES else "waiting"


def call_time(snapshot: dict[str, Any], call: dict[str, Any]) -> str:
    """How long the call has been in its current state (waiting or talking), by the engine's clock."""
    tick, since = snapshot.get("tick_ms"), call.get("since_ms")
    if isinstance(tick, int) and isinstance(since, int):
        return duration(tick - since)
    return ""


def span_alarms(span: dict[str, Any]) -> str:
    """A span's alarm states and defects as the panel shows them ("ok" when there are none)."""
    alarms, detail = span.get("alarms"), span.get("detail")
    names = [str(a) for a in alarms] if isinstance(alarms, list) else []
    defects = [str(d) for d in detail] if isinstance(detail, list) else []
    out = ", ".join(names) or "ok"
    return f"{out} ({', '.join(defects)})" if defects else out


def span_state(span: dict[str, Any]) -> str:
    """The worst of a span's alarm states (red, blue, yellow, recover), or "ok": the cell's class."""
    alarms = span.get("alarms")
    names = alarms if isinstance(alarms, list) else []
    return next((a for a in ("red", "blue", "yellow", "recover") if a in names), "ok")


def _spans(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's spans, each with a counters mapping (a partial snapshot must not break the page)."""
    out = []
    for span in _rows(snapshot, "spans"):
        counters = span.get("counters")
        out.append({**span, "counters": counters if isinstance(counters, dict) else {}})
    return out


def _rows(snapshot: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The snapshot's list under `key`, keeping only objects (a partial snapshot must not break the page)."""
    items = snapshot.get(key)
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, dict)]


@bp.route("/")
@requires("wallboard.view")
def index() -> str:
    """The site's live state, rendered from one snapshot; panel.js keeps it current."""
    snapshot, error = fetch_status()
    snap = snapshot or {}
    return render_template(
        "status/index.html",
        error=error,
        snap=snap,
        ports=_rows(snap, "ports"),
        calls=_rows(snap, "calls"),
        agents=_rows(snap, "agents"),
        queues=_rows(snap, "queues"),
        spans=_spans(snap),
        span_alarms=span_alarms,
        span_state=span_state,
        duration=duration,
        call_time=call_time,
        call_phase=call_phase,
        echo_text=echo_text,
    )


@bp.route("/api/status")
@requires("wallboard.view")
def api_status() -> tuple[Response, int]:
    """The engine's status snapshot as JSON, or 503 with {"error": reason} when the engine is not reachable."""
    snapshot, error = fetch_status()
    if snapshot is None:
        response, code = jsonify({"error": error}), 503
    else:
        response, code = jsonify(snapshot), 200
    # Live data: never served from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response, code
