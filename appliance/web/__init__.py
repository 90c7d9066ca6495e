"""The web panel: a Flask app in its own process, talking to the engine only over control.sock.

The panel is a reader: its wallboard follows the engine's snapshots through
:class:`appliance.control.ControlClient` (appliance.web.wallboard) and shows them. It holds no
call state, so a panel crash or restart never drops a call.

Configuration keys (defaults first, then ``config.py`` from the instance folder,
or the ``test_config`` mapping instead of that file):

``STATE_DIR``
    the engine's state directory (default ``$CICBOX_STATE_DIR`` or ``/var/lib/cicbox``)
``CONTROL_SOCKET``
    the engine's socket (default ``STATE_DIR/control.sock``, resolved per request)
``CONTROL_TIMEOUT_S``
    how long one request to the engine may take (default 2 s)
``PANEL_DIR``
    the panel's own files (default ``STATE_DIR/panel``)
``WALLBOARD_CLOCK``
    the wallboard hub's clock (appliance.web.wallboard.HubClock; default the host's monotonic clock)
``SECRET_KEY``
    random for each start unless given
``TESTING``
    Flask's testing flag
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response

from appliance.errors import ApplianceError

DEFAULT_STATE_DIR = "/var/lib/cicbox"
# Site configuration for the panel lives under /etc (the instance folder), never in the venv.
DEFAULT_INSTANCE_DIR = "/etc/cicbox/panel"

# Sent on every response. No inline script or style is used, so 'self' is enough.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class PanelError(ApplianceError, ValueError):
    """The panel was asked to do something it refuses (for example to bind a non-loopback address)."""


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the panel app; `test_config` replaces the instance folder's config.py."""
    instance = os.environ.get("CICBOX_PANEL_INSTANCE", DEFAULT_INSTANCE_DIR)
    app = Flask(__name__, instance_path=os.path.abspath(instance), instance_relative_config=True)
    app.config.from_mapping(
        STATE_DIR=os.environ.get("CICBOX_STATE_DIR") or DEFAULT_STATE_DIR,
        CONTROL_SOCKET=None,
        CONTROL_TIMEOUT_S=2.0,
        SECRET_KEY=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # Nothing is uploaded yet; a cap keeps a stray client from filling a worker's memory.
        MAX_CONTENT_LENGTH=1 << 20,
    )
    if test_config is None:
        # The instance folder is read-only site configuration: load it if present, never create it.
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("PANEL_DIR"):
        app.config["PANEL_DIR"] = str(Path(app.config["STATE_DIR"]) / "panel")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    # /api/wallboard passes the engine's snapshot on in the engine's key order.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    from appliance.web import wallboard_views

    wallboard_views.init_app(app)
    return app


def control_socket(app: Flask) -> Path:
    """The engine's socket for this app: CONTROL_SOCKET, or STATE_DIR/control.sock."""
    explicit = app.config.get("CONTROL_SOCKET")
    if explicit:
        return Path(explicit)
    return Path(app.config["STATE_DIR"]) / "control.sock"
