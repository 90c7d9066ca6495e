"""Real TLS: the panel under gunicorn on a free loopback port serves the certificate it made (ECDSA P-256, SAN
127.0.0.1, key 0600), logs its fingerprint, serves the same after a restart; plain HTTP gets no page or cookie;
an uploaded pair is served from the next start (not at once); a pair no browser can use stops the start (exit 2)."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from appliance.web import tls
from tests.web.panel_proc import ROOT, PanelProcess
from tests.web.test_tls import make_pair


@pytest.fixture(autouse=True)
def no_site_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CICBOX_PANEL_CONF", str(tmp_path / "panel.conf"))


def served_cert(port: int) -> bytes:
    """The DER certificate the server at 127.0.0.1:`port` presents (not verified: we compare it ourselves)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
          context.wrap_socket(raw, server_hostname="127.0.0.1") as sock):
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return der


def openssl_form(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def test_the_served_certificate_is_the_logged_one_and_survives_a_restart(tmp_path: Path) -> None:
    with PanelProcess(tmp_path) as panel:
        der = served_cert(panel.port)
        assert openssl_form(der) == panel.fingerprint
        cert = x509.load_der_x509_certificate(der)
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
        # A client that trusts just this certificate connects to https://127.0.0.1 with the name checked.
        with (socket.create_connection(("127.0.0.1", panel.port), timeout=10) as raw,
              panel.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as sock):
            sock.sendall(b"GET /static/panel.css HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200 ")
        first = panel.fingerprint
    key = tmp_path / "panel" / "tls" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with PanelProcess(tmp_path) as again:
        assert again.fingerprint == first == openssl_form(served_cert(again.port))


def test_plain_http_gets_no_page_and_no_cookie(tmp_path: Path) -> None:
    with PanelProcess(tmp_path) as panel:
        for path in ("/", "/setup", "/login", "/api/wallboard"):
            with socket.create_connection(("127.0.0.1", panel.port), timeout=10) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
                answer = b""
                try:
                    while chunk := sock.recv(4096):
                        answer += chunk
                except ConnectionResetError:
                    pass
            assert b"HTTP/" not in answer and b"Set-Cookie" not in answer and b"<" not in answer, answer
        assert "Traceback" not in panel.log()


def test_an_uploaded_pair_is_served_from_the_next_start(tmp_path: Path) -> None:
    cert_pem, key_pem = make_pair(names=["127.0.0.1", "panel.example.net"], days=400,
                                  start=datetime.now(UTC).replace(microsecond=0))
    with PanelProcess(tmp_path) as panel:
        made = panel.fingerprint
        assert openssl_form(served_cert(panel.port)) == made
        tls.check_upload(cert_pem, key_pem, datetime.now(UTC))
        tls.install_upload(tmp_path / "panel", cert_pem, key_pem)      # while it runs: not served yet
        assert openssl_form(served_cert(panel.port)) == made
        assert openssl_form(served_cert(panel.port)) == made
    with PanelProcess(tmp_path) as panel:
        uploaded = tls.fingerprint(x509.load_pem_x509_certificate(cert_pem))
        assert panel.fingerprint == uploaded == openssl_form(served_cert(panel.port)) != made
    (kept,) = tls.previous_pairs(tmp_path / "panel")
    previous = tls.load_cert(kept / "cert.pem")
    assert tls.fingerprint(previous) == made


def test_a_pair_no_browser_can_use_stops_the_panel_with_exit_2(tmp_path: Path) -> None:
    panel_dir = tmp_path / "panel"
    (panel_dir / "tls").mkdir(parents=True)
    cert_pem, key_pem = make_pair(own=rsa.generate_private_key(65537, 1024))
    (panel_dir / "tls" / "cert.pem").write_bytes(cert_pem)
    (panel_dir / "tls" / "key.pem").write_bytes(key_pem)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
           "CICBOX_PANEL_CONF": str(tmp_path / "no-panel.conf")}
    for name in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "appliance.web.serve", "--state-dir", str(tmp_path),
                           "--panel-dir", str(panel_dir), "--listen", "127.0.0.1:0"],
                          check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "the panel cannot serve" in done.stderr and "the key is RSA 1024: too small" in done.stderr
    assert "Traceback" not in done.stderr and "Listening at" not in done.stderr
