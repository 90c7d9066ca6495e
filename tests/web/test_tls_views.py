"""/tls as an installer sees it: the certificate in use, an upload refused with the reason (a mismatched or
expired pair changes nothing), a good one kept for the next start with the old pair in tls/previous/;
audited; other roles refused."""

from __future__ import annotations

import html
import io
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from appliance.web import create_app, tls
from tests.web.accounts import BASE_URL, csrf_token, login, make_user
from tests.web.test_tls import PRIVATE_OID, make_pair


def _app(tmp_path: Path) -> Flask:
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "PANEL_NAMES": ["panel.example.net"]})
    if "account.login" not in app.view_functions:
        pytest.skip("the accounts part's /login is not on this branch yet")
    tls.ensure_pair(Path(app.config["PANEL_DIR"]), "127.0.0.1")
    return app


class _Client(FlaskClient):
    """A browser on the panel's own pages: https to BASE_URL, a same-origin Referer."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if not (args and not isinstance(args[0], str)):
            kwargs.setdefault("base_url", BASE_URL)
        self.environ_base.setdefault("HTTP_REFERER", BASE_URL + "/")
        return super().open(*args, **kwargs)


def _client(app: Flask) -> FlaskClient:
    return _Client(app, app.response_class, use_cookies=True)


def _installer(app: Flask) -> FlaskClient:
    client = _client(app)
    login(client, "inst", make_user(app, "inst", "installer"))
    return client


def _upload(client: FlaskClient, cert_pem: bytes, key_pem: bytes) -> tuple[int, str]:
    token = csrf_token(client, "/tls")
    resp = client.post("/tls", data={"csrf_token": token, "cert": (io.BytesIO(cert_pem), "cert.pem"),
                                     "key": (io.BytesIO(key_pem), "key.pem")},
                       content_type="multipart/form-data")
    return resp.status_code, resp.get_data(as_text=True)


def _tls_rows(app: Flask) -> list[dict[str, object]]:
    from appliance.web import accounts

    return [row for row in accounts.audit_rows(app, action="tls.upload")]


def test_the_installer_sees_the_fingerprint_in_use(tmp_path: Path) -> None:
    app = _app(tmp_path)
    page = _installer(app).get("/tls").get_data(as_text=True)
    cert = tls.load_cert(Path(app.config["PANEL_DIR"]) / "tls" / "cert.pem")
    assert tls.fingerprint(cert) in page and "ECDSA secp256r1" in page


@pytest.mark.parametrize(("case", "reason"), [
    ("mismatched", "the private key does not belong to the certificate"),
    ("expired", "it must be valid at least 30 more days"),
    ("unknown_critical", "carries a critical extension browsers do not know (OID 1.3.6.1.4.1.55555.1)"),
])
def test_a_mismatched_or_expired_upload_is_refused(tmp_path: Path, case: str, reason: str) -> None:
    app = _app(tmp_path)
    client = _installer(app)
    tls_dir = Path(app.config["PANEL_DIR"]) / "tls"
    before = (tls_dir / "cert.pem").read_bytes(), (tls_dir / "key.pem").read_bytes()
    now = datetime.now(UTC)
    if case == "mismatched":
        cert_pem, key_pem = make_pair(start=now - timedelta(days=1), key=ec.generate_private_key(ec.SECP256R1()))
    elif case == "expired":
        cert_pem, key_pem = make_pair(start=now - timedelta(days=400), days=380)
    else:
        unknown = x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00")
        cert_pem, key_pem = make_pair(start=now - timedelta(days=1), extensions=[(unknown, True)])
    status, page = _upload(client, cert_pem, key_pem)
    assert status == 400 and reason in page
    assert ((tls_dir / "cert.pem").read_bytes(), (tls_dir / "key.pem").read_bytes()) == before
    assert not (tls_dir / "previous").exists()
    rows = _tls_rows(app)
    assert [(r["user"], r["outcome"]) for r in rows] == [("inst", "refused")]


def test_a_good_upload_is_kept_for_the_next_start(tmp_path: Path) -> None:
    app = _app(tmp_path)
    client = _installer(app)
    tls_dir = Path(app.config["PANEL_DIR"]) / "tls"
    old = tls.fingerprint(tls.load_cert(tls_dir / "cert.pem"))
    cert_pem, key_pem = make_pair(start=datetime.now(UTC) - timedelta(days=1))
    status, page = _upload(client, cert_pem, key_pem)
    assert status == 200 and "is used from the panel's next start" in page
    assert 'id="tls-warning"' not in page                   # it names panel.example.net, one of names =
    assert (tls_dir / "cert.pem").read_bytes() == cert_pem
    (kept,) = tls.previous_pairs(Path(app.config["PANEL_DIR"]))
    assert tls.fingerprint(tls.load_cert(kept / "cert.pem")) == old
    new = tls.fingerprint(tls.load_cert(tls_dir / "cert.pem"))
    (row,) = _tls_rows(app)
    assert (row["outcome"], row["detail"]) == ("ok", {"before": old, "after": new})
    assert key_pem.decode() not in str(row)


def kept_cert(app: Flask) -> Path:
    (kept,) = tls.previous_pairs(Path(app.config["PANEL_DIR"]))
    return kept / "cert.pem"


def test_a_certificate_for_none_of_the_panels_names_is_taken_with_a_warning(tmp_path: Path) -> None:
    app = _app(tmp_path)
    client = _installer(app)
    cert_pem, key_pem = make_pair(names=["evil.example"], start=datetime.now(UTC) - timedelta(days=1))
    status, page = _upload(client, cert_pem, key_pem)
    assert status == 200 and "is used from the panel's next start" in page
    assert 'id="tls-warning"' in page
    warning = html.unescape(page.split('id="tls-warning">', 1)[1].split("</p>", 1)[0])
    answers = ", ".join(sorted({"127.0.0.1", "localhost", "panel.example.net", socket.gethostname().lower()}))
    assert warning.startswith(f"warning: the certificate names evil.example, none of the names the panel answers "
                              f"to ({answers}): browsers will warn when the panel is opened by any of those.")
    assert (Path(app.config["PANEL_DIR"]) / "tls" / "cert.pem").read_bytes() == cert_pem
    (row,) = _tls_rows(app)
    assert row["outcome"] == "ok"
    assert row["detail"] == {"before": tls.fingerprint(tls.load_cert(kept_cert(app))), "after": tls.fingerprint(
        tls.load_cert(Path(app.config["PANEL_DIR"]) / "tls" / "cert.pem")), "names": ["evil.example"],
        "warning": "none of the certificate's names is one the panel answers to: browsers will warn"}


@pytest.mark.parametrize("role", ["supervisor", "agent", "viewer"])
def test_other_roles_may_not_touch_tls(tmp_path: Path, role: str) -> None:
    app = _app(tmp_path)
    make_user(app, "inst", "installer")
    client = _client(app)
    login(client, "someone", make_user(app, "someone", role, agent="1001" if role == "agent" else None))
    assert client.get("/tls").status_code == 403
