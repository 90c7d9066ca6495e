"""/tls: the panel's certificate, and an installer's upload of their own (permission ``tls.manage``,
a login within the last 5 minutes).

An upload is refused, with the reason on the page and a ``tls.upload`` audit row, unless the key
is the certificate's, no certificate of it carries a critical extension browsers do not know (the page names its
OID), the certificate names a subject alternative name and is valid 30 more days
(:func:`appliance.web.tls.check_upload`). Accepted, the old pair goes to tls/previous/<UTC time>/ and the new
one is used from the panel's next start; the audit row has the fingerprints before and after. A certificate that
names none of the names the panel answers to (the Host check's: the listen address, ``names =`` of panel.conf, the
host name) is accepted with a warning on the page, and in the audit row's ``warning``: browsers will warn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, render_template, request

from appliance.web import PanelError, tls
from appliance.web.auth import requires
from appliance.web.clock import panel_clock

bp = Blueprint("tls", __name__)


def _panel_dir() -> Path:
    return Path(current_app.config["PANEL_DIR"])


def _on_disk() -> tls.CertInfo | None:
    cert_path, _ = tls.pair_paths(_panel_dir())
    try:
        return tls.cert_info(tls.load_cert(cert_path))
    except (OSError, ValueError):
        return None


def _page(message: str | None = None, refused: bool = False, status: int = 200,
          warning: str | None = None) -> tuple[str, int]:
    current = _on_disk()
    serving = current_app.config.get("TLS_FINGERPRINT")
    pending = current.fingerprint if current and serving and current.fingerprint != serving else None
    return render_template("tls/index.html", current=current, pending=pending, message=message,
                           refused=refused, warning=warning), status


@bp.get("/tls")
@requires("tls.manage", fresh=True)
def index() -> Any:
    return _page()


@bp.post("/tls")
@requires("tls.manage", fresh=True)
def upload() -> Any:
    from appliance.web import accounts

    before = _on_disk()
    cert_file, key_file = request.files.get("cert"), request.files.get("key")
    cert_pem = cert_file.read() if cert_file else b""
    key_pem = key_file.read() if key_file else b""
    try:
        now = panel_clock().now()
        cert = tls.check_upload(cert_pem, key_pem, now)
    except PanelError as exc:
        accounts.audit_request("tls.upload", target="tls", outcome="refused",
                               detail={"reason": str(exc), "before": before.fingerprint if before else None})
        return _page(f"refused: {exc}", refused=True, status=400)
    tls.install_upload(_panel_dir(), cert_pem, key_pem, now)
    after = tls.fingerprint(cert)
    allowed, any_ip, _port = current_app.extensions["cicbox_hosts"]
    warning = tls.names_warning(cert, allowed, any_ip)
    detail: dict[str, Any] = {"before": before.fingerprint if before else None, "after": after}
    if warning is not None:       # the audit log cuts long strings: the point first, the names apart
        detail["warning"] = "none of the certificate's names is one the panel answers to: browsers will warn"
        detail["names"] = list(tls.cert_info(cert).names[:tls.SHOWN_NAMES])
    accounts.audit_request("tls.upload", target="tls", outcome="ok", detail=detail)
    return _page(f"uploaded: certificate {after} is used from the panel's next start",
                 warning=f"warning: {warning}" if warning else None)
