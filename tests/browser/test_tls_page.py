"""The installer's TLS page in a real browser: the fingerprint it shows is the one the panel logged at start
(and the browser was served); a mismatched certificate and key are refused with the reason, nothing changed."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Page

from appliance.web import create_app
from tests.browser.conftest import PanelServer
from tests.web.test_tls import make_pair


def _login_exists() -> bool:
    with tempfile.TemporaryDirectory(prefix="cicbox-probe-") as tmp:
        return "account.login" in create_app({"TESTING": True, "STATE_DIR": tmp}).view_functions


@pytest.mark.skipif(not _login_exists(), reason="the accounts part's /login is not on this branch yet")
def test_the_tls_page_shows_the_logged_fingerprint_and_refuses_a_mismatched_pair(
        panel_server: PanelServer, page: Page, sign_in: Callable[..., str], shot: Callable[[str], Path]) -> None:
    sign_in("installer")
    page.goto(panel_server.url + "/tls")
    assert page.text_content("#tls-fingerprint") == panel_server.fingerprint
    shot("tls page")
    cert_pem, key_pem = make_pair(key=ec.generate_private_key(ec.SECP256R1()))
    before = (panel_server.panel_dir / "tls" / "cert.pem").read_bytes()
    page.set_input_files("input[name=cert]", {"name": "cert.pem", "mimeType": "application/x-pem-file",
                                              "buffer": cert_pem})
    page.set_input_files("input[name=key]", {"name": "key.pem", "mimeType": "application/x-pem-file",
                                             "buffer": key_pem})
    with page.expect_navigation():
        page.click("#tls-upload button[type=submit]")
    message = page.text_content("#tls-message") or ""
    assert "the private key does not belong to the certificate" in message
    assert (panel_server.panel_dir / "tls" / "cert.pem").read_bytes() == before
    shot("mismatched pair refused")
