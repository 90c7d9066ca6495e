"""The panel's certificate: made once (ECDSA P-256, self-signed, the right names, key 0600), never remade;
an upload refused unless key and certificate match, it names a SAN and has 30 more days; the old pair kept."""

from __future__ import annotations

import ipaddress
import re
import socket
import stat
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.web import PanelError, hosts, tls

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PRIVATE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")
"""An extension no browser knows (a private enterprise arc)."""


Own = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def make_pair(*, names: list[str] | None = None, days: int = 365, start: datetime = NOW - timedelta(days=1),
              key: ec.EllipticCurvePrivateKey | None = None, own: Own | None = None,
              eku: list[x509.ObjectIdentifier] | None = None,
              extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
              ips: Sequence[str] = ()) -> tuple[bytes, bytes]:
    """A certificate (signed by its own key) and a key PEM, as an installer's CA might hand them over."""
    own = own or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "panel.example.net")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(own.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start)
               .not_valid_after(start + timedelta(days=days)))
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in (["panel.example.net"] if names is None else names)]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    cert = builder.sign(own, None if isinstance(own, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    given = key or own
    key_pem = given.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_the_first_start_makes_an_ecdsa_p256_pair_with_the_panels_names(tmp_path: Path) -> None:
    cert_path, key_path = tls.ensure_pair(tmp_path, "192.168.1.5")
    assert (cert_path, key_path) == (tmp_path / "tls" / "active" / "cert.pem", tmp_path / "tls" / "active" / "key.pem")
    assert cert_path.read_bytes() == (tmp_path / "tls" / "cert.pem").read_bytes()      # a copy of the pair
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    cert = tls.load_cert(cert_path)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"), ipaddress.ip_address("192.168.1.5")}
    assert san.get_values_for_type(x509.DNSName) == [socket.gethostname()]
    assert cert.issuer == cert.subject                                  # self-signed
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3649) < life < timedelta(days=3651)           # 10 years
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key().public_numbers() == public.public_numbers()
    assert len(tls.fingerprint(cert).split(":")) == 32


def test_the_pair_is_never_regenerated(tmp_path: Path) -> None:
    tls.ensure_pair(tmp_path, "127.0.0.1")
    before = (tmp_path / "tls" / "cert.pem").read_bytes(), (tmp_path / "tls" / "key.pem").read_bytes()
    tls.ensure_pair(tmp_path, "10.0.0.1")                               # another address: the same pair
    assert ((tmp_path / "tls" / "cert.pem").read_bytes(), (tmp_path / "tls" / "key.pem").read_bytes()) == before
    (tmp_path / "tls" / "key.pem").unlink()                             # half a pair: refused, not remade
    with pytest.raises(PanelError, match=r"key\.pem is not: restore it"):
        tls.ensure_pair(tmp_path)
    assert (tmp_path / "tls" / "cert.pem").read_bytes() == before[0]


def test_a_wildcard_listen_address_is_not_a_name(tmp_path: Path) -> None:
    cert_path, _ = tls.ensure_pair(tmp_path, "0.0.0.0")
    assert "0.0.0.0" not in tls.cert_info(tls.load_cert(cert_path)).names


def test_a_good_upload_is_accepted_and_the_old_pair_kept(tmp_path: Path) -> None:
    tls.ensure_pair(tmp_path, "127.0.0.1")
    old_cert, old_key = (tmp_path / "tls" / "cert.pem").read_bytes(), (tmp_path / "tls" / "key.pem").read_bytes()
    cert_pem, key_pem = make_pair()
    cert = tls.check_upload(cert_pem, key_pem, NOW)
    tls.install_upload(tmp_path, cert_pem, key_pem, datetime(2026, 6, 1, 12, tzinfo=UTC))
    assert (tmp_path / "tls" / "cert.pem").read_bytes() == cert_pem
    assert (tmp_path / "tls" / "key.pem").read_bytes() == key_pem
    assert stat.S_IMODE((tmp_path / "tls" / "key.pem").stat().st_mode) == 0o600
    (kept,) = tls.previous_pairs(tmp_path)
    assert kept == tmp_path / "tls" / "previous" / "20260601T120000Z"
    assert (kept / "cert.pem").read_bytes() == old_cert
    assert (kept / "key.pem").read_bytes() == old_key
    assert stat.S_IMODE((kept / "key.pem").stat().st_mode) == 0o600
    assert tls.cert_info(cert).names == ("panel.example.net",)
    tls.ensure_pair(tmp_path, "127.0.0.1")                              # the next start keeps the upload
    assert (tmp_path / "tls" / "cert.pem").read_bytes() == cert_pem


def test_every_earlier_pair_is_kept(tmp_path: Path) -> None:
    tls.ensure_pair(tmp_path, "127.0.0.1")
    made = (tmp_path / "tls" / "cert.pem").read_bytes()
    first_pem, first_key = make_pair()
    second_pem, second_key = make_pair()
    at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    tls.install_upload(tmp_path, first_pem, first_key, at)
    tls.install_upload(tmp_path, second_pem, second_key, at)             # the same second: a new place too
    tls.install_upload(tmp_path, *make_pair(), at + timedelta(days=1))
    kept = [(p.name, (p / "cert.pem").read_bytes()) for p in tls.previous_pairs(tmp_path)]
    assert kept == [("20260601T120000Z", made), ("20260601T120000Z-2", first_pem), ("20260602T120000Z", second_pem)]


def test_rsa_2048_and_p384_are_accepted(tmp_path: Path) -> None:
    for own in (rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())):
        tls.check_upload(*make_pair(own=own), NOW)


@pytest.mark.parametrize(("case", "message"), [
    ("rsa1024", "the key is RSA 1024: too small"),
    ("ed25519", "the key is Ed25519: browsers cannot use it"),
    ("garbage_key", "the private key is not a PEM private key"),
    ("mismatched", "the private key does not belong to the certificate"),
    ("unknown_critical", "the certificate carries a critical extension browsers do not know (OID "
                         "1.3.6.1.4.1.55555.1): browsers refuse such a certificate"),
])
def test_a_pair_no_browser_can_use_stops_the_start(tmp_path: Path, case: str, message: str) -> None:
    tls.ensure_pair(tmp_path, "127.0.0.1")
    if case == "garbage_key":
        (tmp_path / "tls" / "key.pem").write_bytes(b"garbage")
    else:
        cert_pem, key_pem = bad_pair(case)
        (tmp_path / "tls" / "cert.pem").write_bytes(cert_pem)
        (tmp_path / "tls" / "key.pem").write_bytes(key_pem)
    with pytest.raises(PanelError, match=rf"the panel cannot serve .*cert\.pem and .*key\.pem: {re.escape(message)}.*"
                                         r"move both away to have the panel make a new self-signed pair"):
        tls.ensure_pair(tmp_path, "127.0.0.1")


def bad_pair(case: str) -> tuple[bytes, bytes]:
    if case == "mismatched":
        return make_pair(key=ec.generate_private_key(ec.SECP256R1()))
    if case == "expired":
        return make_pair(start=NOW - timedelta(days=30), days=20)
    if case == "short":
        return make_pair(start=NOW - timedelta(days=1), days=20)
    if case == "no_san":
        return make_pair(names=[])
    if case == "future":
        return make_pair(start=datetime(2026, 4, 1, tzinfo=UTC))
    if case == "garbage":
        return b"not a certificate", make_pair()[1]
    if case == "rsa1024":
        return make_pair(own=rsa.generate_private_key(65537, 1024))
    if case == "ed25519":
        return make_pair(own=ed25519.Ed25519PrivateKey.generate())
    if case == "p521":
        return make_pair(own=ec.generate_private_key(ec.SECP521R1()))
    if case == "key_in_cert":
        cert_pem, key_pem = make_pair()
        return cert_pem + key_pem, key_pem
    if case == "rsa_key_in_cert":
        cert_pem, key_pem = make_pair()
        legacy = b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
        return legacy + cert_pem, key_pem
    if case == "custom_label":
        cert_pem, key_pem = make_pair()
        return cert_pem + key_pem.replace(b"PRIVATE KEY", b"SECRET STUFF"), key_pem
    if case == "lower_label":
        cert_pem, key_pem = make_pair()
        return cert_pem + key_pem.replace(b"PRIVATE KEY", b"private key"), key_pem
    if case == "client_only":
        return make_pair(eku=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION])
    if case == "long_chain":
        cert_pem, key_pem = make_pair()
        return cert_pem + make_pair()[0] * 8, key_pem
    if case == "unknown_critical":
        return make_pair(extensions=[(x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00"), True)])
    if case == "chain_unknown_critical":
        cert_pem, key_pem = make_pair()
        unknown = x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00")
        return cert_pem + make_pair(extensions=[(unknown, True)])[0], key_pem
    if case == "bad_key":
        return make_pair()[0], b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    return make_pair()[0], b""


@pytest.mark.parametrize(("case", "message"), [
    ("mismatched", "the private key does not belong to the certificate"),
    ("expired", "the certificate expires 2026-02-19 (it must be valid at least 30 more days)"),
    ("short", "the certificate expires 2026-03-20 (it must be valid at least 30 more days)"),
    ("no_san", "the certificate names no subject alternative name (browsers need one)"),
    ("future", "the certificate is not valid before 2026-04-01 00:00 UTC"),
    ("garbage", "the certificate is not a PEM certificate"),
    ("bad_key", "the private key is not a PEM private key"),
    ("rsa1024", "the key is RSA 1024: too small for browsers (RSA 2048 bits or more, or ECDSA P-256/P-384)"),
    ("ed25519", "the key is Ed25519: browsers cannot use it for TLS (use ECDSA P-256/P-384 or RSA 2048+)"),
    ("p521", "the key is ECDSA secp521r1: browsers need P-256 or P-384 (or RSA of 2048 bits or more)"),
    ("missing", "give both a certificate and its private key (PEM)"),
    ("key_in_cert", "the certificate field holds a private key: give the key in its own field only"),
    ("rsa_key_in_cert", "the certificate field holds a private key: give the key in its own field only"),
    ("custom_label", 'the certificate field holds a "SECRET STUFF" block: give only CERTIFICATE blocks '
                     "(the key in its own field)"),
    ("lower_label", 'the certificate field holds a "private key" block: give only CERTIFICATE blocks '
                    "(the key in its own field)"),
    ("client_only", "the certificate's extended key usage excludes TLS servers (no serverAuth)"),
    ("long_chain", "the chain holds 9 certificates: 8 at most (the server's and its intermediates)"),
    ("unknown_critical", "the certificate carries a critical extension browsers do not know (OID 1.3.6.1.4.1.55555.1): "
                         "browsers refuse such a certificate"),
    ("chain_unknown_critical", "certificate 2 of the chain carries a critical extension browsers do not know (OID "
                               "1.3.6.1.4.1.55555.1): browsers refuse such a certificate"),
])
def test_a_bad_upload_is_refused_and_changes_nothing(tmp_path: Path, case: str, message: str) -> None:
    tls.ensure_pair(tmp_path, "127.0.0.1")
    before = (tmp_path / "tls" / "cert.pem").read_bytes()
    cert_pem, key_pem = bad_pair(case)
    with pytest.raises(PanelError) as exc:
        tls.check_upload(cert_pem, key_pem, NOW)
    assert str(exc.value) == message
    assert (tmp_path / "tls" / "cert.pem").read_bytes() == before
    assert not (tmp_path / "tls" / "previous").exists()


def test_critical_extensions_browsers_know_and_unknown_ones_not_critical_pass() -> None:
    known: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                       encipher_only=False, decipher_only=False), True),
        (x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), True),
        (x509.UnrecognizedExtension(PRIVATE_OID, b"\x05\x00"), False),
    ]
    tls.check_upload(*make_pair(eku=[ExtendedKeyUsageOID.SERVER_AUTH], extensions=known), NOW)


def test_an_encrypted_key_is_refused_with_the_reason() -> None:
    cert_pem, _ = make_pair()
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"passphrase-here"))
    with pytest.raises(PanelError, match="the private key is encrypted: upload it without a passphrase"):
        tls.check_upload(cert_pem, encrypted, NOW)


def test_a_server_auth_usage_passes_and_a_cert_file_holding_a_key_is_never_world_readable(tmp_path: Path) -> None:
    cert_pem, key_pem = make_pair(eku=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    tls.check_upload(cert_pem, key_pem, NOW)
    tls.install_upload(tmp_path, cert_pem, key_pem, NOW)
    assert stat.S_IMODE((tmp_path / "tls" / "cert.pem").stat().st_mode) == 0o644
    # A cert.pem an older panel accepted with a key in it: kept in previous/ 0600, not 0644.
    (tmp_path / "tls" / "cert.pem").write_bytes(cert_pem + key_pem)
    tls.install_upload(tmp_path, cert_pem, key_pem, NOW)
    (kept,) = tls.previous_pairs(tmp_path)
    assert stat.S_IMODE((kept / "cert.pem").stat().st_mode) == 0o600


def test_text_around_the_certificate_blocks_is_not_stored(tmp_path: Path) -> None:
    # A key's bare base64 pasted after the certificate: the upload is taken, but the world-readable cert.pem
    # holds the certificate's own PEM block only, byte for byte as the certificate encodes it.
    cert_pem, key_pem = make_pair()
    bare = b"".join(line + b"\n" for line in key_pem.splitlines() if not line.startswith(b"-----"))
    pasted = b"subject=CN = panel\n" + cert_pem + b"\n" + bare
    tls.check_upload(pasted, key_pem, NOW)
    tls.install_upload(tmp_path, pasted, key_pem, NOW)
    stored = (tmp_path / "tls" / "cert.pem").read_bytes()
    expected = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.PEM)
    assert stored == expected and bare.splitlines()[0] not in stored
    assert stat.S_IMODE((tmp_path / "tls" / "cert.pem").stat().st_mode) == 0o644


@pytest.mark.parametrize(("listen", "names", "dns", "ips", "answers"), [
    ("127.0.0.1:8443", ["panel.example.net"], ["panel.example.net"], [], True),
    ("127.0.0.1:8443", ["PANEL.example.net."], ["Panel.Example.NET"], [], True),    # case and a trailing dot aside
    ("127.0.0.1:8443", ["panel.example.net"], ["*.example.net"], [], True),
    ("127.0.0.1:8443", ["a.panel.example.net"], ["*.example.net"], [], False),      # a wildcard is one label
    ("127.0.0.1:8443", ["example.net"], ["*.example.net"], [], False),
    ("127.0.0.1:8443", ["panel.example.net"], ["pan*.example.net"], [], False),     # only a whole label
    ("127.0.0.1:8443", [], ["localhost"], [], True),                                # a loopback listen address
    ("192.168.1.5:8443", [], ["localhost"], [], False),
    ("127.0.0.1:8443", [], [socket.gethostname()], [], True),                        # the host name
    ("127.0.0.1:8443", [], [], ["127.0.0.1"], True),
    ("192.168.1.5:8443", [], ["panel.example.net"], ["10.0.0.9"], False),
    ("0.0.0.0:8443", [], ["panel.example.net"], ["10.0.0.9"], True),                # any IP address answers then
    ("[::]:8443", [], [], ["2001:db8::5"], True),
    ("127.0.0.1:8443", [], ["127.0.0.1"], [], False),                   # an address as a DNS name: browsers warn
    ("127.0.0.1:8443", ["panel.example.net"], ["evil.example"], [], False),
])
def test_whether_a_certificate_names_a_name_the_panel_answers_to(listen: str, names: list[str], dns: list[str],
                                                                 ips: list[str], answers: bool) -> None:
    allowed, any_ip = hosts.allowed_hosts(listen, names)
    cert = x509.load_pem_x509_certificate(make_pair(names=dns, ips=ips)[0])
    assert tls.answers_to(cert, allowed, any_ip) is answers
    assert (tls.names_warning(cert, allowed, any_ip) is None) is answers


def test_the_warning_says_an_address_written_as_a_dns_name_and_lists_no_wildcard_address() -> None:
    allowed, any_ip = hosts.allowed_hosts("127.0.0.1:8443", [])
    cert = x509.load_pem_x509_certificate(make_pair(names=["127.0.0.1"])[0])
    warning = tls.names_warning(cert, allowed, any_ip)
    assert warning is not None and warning.startswith(
        "the certificate names 127.0.0.1 (as a DNS name, not an IP address), none of the names the panel answers "
        f"to ({', '.join(sorted({'127.0.0.1', 'localhost', socket.gethostname().lower()}))}):")
    allowed, any_ip = hosts.allowed_hosts("0.0.0.0:8443", [])
    cert = x509.load_pem_x509_certificate(make_pair(names=["evil.example"])[0])
    warning = tls.names_warning(cert, allowed, any_ip)
    assert warning is not None and "0.0.0.0" not in warning
    assert f"answers to ({socket.gethostname().lower()}, any IP address)" in warning


def test_the_warning_names_the_certificates_names_and_the_panels() -> None:
    allowed, any_ip = hosts.allowed_hosts("192.168.1.5:8443", ["panel.example.net"])
    cert = x509.load_pem_x509_certificate(make_pair(names=["evil.example", "a.example", "b.example", "c.example",
                                                           "d.example"])[0])
    warning = tls.names_warning(cert, allowed, any_ip)
    assert warning == (
        "the certificate names evil.example, a.example, b.example, c.example and 1 more, none of the names the "
        f"panel answers to (192.168.1.5, {', '.join(sorted({socket.gethostname().lower(), 'panel.example.net'}))}): "
        "browsers will warn when the panel is opened by any of those. If browsers reach the panel by one of the "
        "certificate's names, add it to names = in /etc/cicbox/panel.conf")
