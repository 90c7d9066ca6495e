"""The web panel: a Flask app in its own process, talking to the engine only over control.sock.

The panel is a reader: its wallboard follows the engine's snapshots through
:class:`appliance.control.ControlClient` (appliance.web.wallboard) and shows them. It holds no
call state, so a panel crash or restart never drops a call.

Configuration keys (defaults first, then ``config.py`` from the instance folder,
or the ``test_config`` mapping instead of that file):

``STATE_DIR``
    the engine's state directory (default ``$CICBOX_STATE_DIR`` or ``/var/lib/cicbox``)
``PANEL_CLOCK``
    the panel's clock (:mod:`appliance.web.clock`; default the system clock)
``CONTROL_SOCKET``
    the engine's socket (default ``STATE_DIR/control.sock``, resolved per request)
``PANEL_DIR``
    the panel's own files: panel.db, secret_key, setup_code, tls/ (default ``STATE_DIR/panel``)
``LISTEN``
    the address the panel serves on, ADDR:PORT (default ``127.0.0.1:8443``); the Host check allows it
``PANEL_NAMES``
    further host names browsers may use for the panel (panel.conf's ``names =``); any other Host: 400
``CONTROL_TIMEOUT_S``
    how long one request to the engine may take (default 2 s)
``WALLBOARD_CLOCK``
    the wallboard hub's clock (appliance.web.wallboard.HubClock; default the host's monotonic clock)
``SECRET_KEY``
    kept in ``PANEL_DIR/secret_key`` (0600, made on first start) unless given
``TESTING``
    Flask's testing flag
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

from appliance.errors import ApplianceError

DEFAULT_STATE_DIR = "/var/lib/cicbox"
# Site configuration for the panel lives under /etc (the instance folder), never in the venv.
DEFAULT_INSTANCE_DIR = "/etc/cicbox/panel"

# Sent on every response. No inline script or style is used, so 'self' is enough.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # CSRF's strict check on HTTPS needs the Referer of same-origin POSTs; other sites get none.
    "Referrer-Policy": "same-origin",
}


class PanelError(ApplianceError, ValueError):
    """The panel was asked to do something it refuses (for example a bad listen address)."""


def create_app(test_config: Mapping[str, Any] | None = None, *, overrides: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the panel app; `test_config` replaces the instance folder's config.py, and
    `overrides` (the server's command line) goes over either."""
    instance = os.environ.get("CICBOX_PANEL_INSTANCE", DEFAULT_INSTANCE_DIR)
    app = Flask(__name__, instance_path=os.path.abspath(instance), instance_relative_config=True)
    app.config.from_mapping(
        STATE_DIR=os.environ.get("CICBOX_STATE_DIR") or DEFAULT_STATE_DIR,
        PANEL_DIR=None,
        LISTEN="127.0.0.1:8443",
        PANEL_NAMES=[],
        CONTROL_SOCKET=None,
        CONTROL_TIMEOUT_S=2.0,
        PANEL_CLOCK=None,
        SECRET_KEY=None,
        SESSION_COOKIE_NAME="cicbox_session",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        WTF_CSRF_TIME_LIMIT=None,   # the token lives as long as its session
        WTF_CSRF_SSL_STRICT=True,
        # A cap keeps a stray client from filling a worker's memory (413 beyond it).
        MAX_CONTENT_LENGTH=1 << 20,
    )
    if test_config is None:
        # The instance folder is read-only site configuration: load it if present, never create it.
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    if overrides:
        app.config.from_mapping(overrides)
    if not app.config.get("PANEL_DIR"):
        app.config["PANEL_DIR"] = str(Path(app.config["STATE_DIR"]) / "panel")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_secret_key(Path(app.config["PANEL_DIR"]))
    # /api/wallboard passes the engine's snapshot on in the engine's key order.
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            # Pages carry callers' numbers and account data: never kept in a cache.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    from appliance.web import account_views, hosts, tls_views, wallboard_views

    # The Host check before anything else: a page another site's name reached gets nothing.
    hosts.init_app(app)
    # Sessions, login, CSRF, throttling, the permission gate, /setup /login /logout /users /audit.
    account_views.init_app(app)
    app.register_blueprint(tls_views.bp)
    # The wallboard: /, /wallboard, its event stream, /api/wallboard, the supervisor's agent actions.
    wallboard_views.init_app(app)
    return app


def load_secret_key(panel_dir: Path) -> str:
    """The key that signs the CSRF tokens: PANEL_DIR/secret_key (0600), made on first use and kept."""
    path = panel_dir / "secret_key"
    for _ in range(2):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise PanelError(f"cannot read the panel's secret key {path}: {exc}") from None
        if len(text) >= 32:
            return text
        key = secrets.token_hex(32)
        try:
            panel_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, (key + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if text:                 # a truncated key (a crash while it was written): replace it
                os.replace(tmp, path)
                return key
            try:
                os.link(tmp, path)   # only if there is none yet: another process may have made one meanwhile
            except FileExistsError:
                continue             # read the other one
            finally:
                os.unlink(tmp)
            return key
        except OSError as exc:
            raise PanelError(f"cannot write the panel's secret key {path}: {exc.strerror or exc} "
                             "(is the panel directory writable?)") from None
    raise PanelError(f"cannot read the panel's secret key {path}")


def control_socket(app: Flask) -> Path:
    """The engine's socket for this app: CONTROL_SOCKET, or STATE_DIR/control.sock."""
    explicit = app.config.get("CONTROL_SOCKET")
    if explicit:
        return Path(explicit)
    return Path(app.config["STATE_DIR"]) / "control.sock"
