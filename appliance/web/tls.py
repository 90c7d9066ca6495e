"""The panel's TLS certificate and key: PANEL_DIR/tls/cert.pem and key.pem.

The panel speaks HTTPS only. On the first start (``tls/`` empty or missing) :func:`ensure_pair`
makes an ECDSA P-256 key (``key.pem``, 0600) and a self-signed certificate for it
(``cert.pem``; subject alternative names: the host name, 127.0.0.1, ::1 and the listen
address; valid 10 years). A pair once there is never regenerated: the fingerprint an installer
noted stays true. Each start checks the pair (a key of the certificate, ECDSA P-256/P-384 or RSA 2048+,
loaded by ssl, no critical extension browsers do not know; else the panel refuses to start), copies it to
``tls/active/`` and serves that copy until it stops; it logs its fingerprint as
``TLS certificate SHA-256 fingerprint AB:CD:...``.

An installer may upload a certificate and key of their own (:func:`check_upload`, then
:func:`install_upload`): refused unless the key is the certificate's (ECDSA P-256/P-384 or RSA 2048+, loaded by
ssl as the server will), no certificate of the chain carries a critical extension browsers do not know
(:data:`KNOWN_CRITICAL`: browsers refuse such a certificate), the certificate names at least one subject
alternative name and is valid at least 30 more days. One none of whose names is a name the panel answers to
(:func:`names_warning`) is taken, with a warning: browsers will warn. The pair it replaces goes to
``tls/previous/<UTC time>/`` (every earlier pair is kept); the panel uses the new one from its next start.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from appliance.web import PanelError
from appliance.web.clock import SYSTEM_CLOCK
from appliance.web.files import write_private
from appliance.web.hosts import ip_of

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
PREVIOUS = "previous"
ACTIVE = "active"
VALIDITY = timedelta(days=3650)
MIN_REMAINING = timedelta(days=30)
MAX_PEM_BYTES = 64 * 1024
USABLE_CURVES = ("secp256r1", "secp384r1")
MIN_RSA_BITS = 2048
KNOWN_CRITICAL = frozenset({
    x509.BasicConstraints.oid, x509.KeyUsage.oid, x509.ExtendedKeyUsage.oid, x509.SubjectAlternativeName.oid,
    x509.NameConstraints.oid, x509.PolicyConstraints.oid, x509.CertificatePolicies.oid, x509.InhibitAnyPolicy.oid,
    ExtensionOID.POLICY_MAPPINGS,     # no x509 type of its own; browsers process it (CA certificates)
})
"""The extensions browsers know how to process: one marked critical that is not among them makes the
certificate unusable to them (RFC 5280 4.2: a critical extension not recognised fails the chain)."""


@dataclass(frozen=True)
class CertInfo:
    """What the TLS page shows of a certificate."""

    fingerprint: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]
    key_type: str


def tls_dir(panel_dir: Path) -> Path:
    return Path(panel_dir) / "tls"


def pair_paths(panel_dir: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) under PANEL_DIR/tls."""
    d = tls_dir(panel_dir)
    return d / CERT_NAME, d / KEY_NAME


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint as openssl prints it: upper-case hex pairs joined by colons."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


_PRIVATE_KEY_PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
MAX_CHAIN = 8
"""Certificates an uploaded chain may hold (the server's and its intermediates)."""


_PEM_LABEL = re.compile(rb"-----BEGIN ([^-\r\n]*)-----", re.IGNORECASE)


def holds_private_key(data: bytes) -> bool:
    return _PRIVATE_KEY_PEM.search(data) is not None


def certificates_only(chain: list[x509.Certificate]) -> bytes:
    """The chain as PEM CERTIFICATE blocks only: what an uploaded cert field is stored as (any text around
    its blocks, where a key's base64 could hide, is not kept in the world-readable file)."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)


def _write_public(path: Path, data: bytes) -> None:
    """Write a certificate file 0644, or 0600 if it holds a private key after all (never a readable key)."""
    if holds_private_key(data):
        write_private(path, data)
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    seen: set[str] = set()
    for name in names:
        if not name or name in seen:
            continue
        seen.add(name)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def default_names(listen_host: str | None) -> list[str]:
    """The self-signed certificate's names: host name, 127.0.0.1, ::1, and the listen address unless a wildcard."""
    names = [socket.gethostname(), "127.0.0.1", "::1"]
    if listen_host:
        try:
            unspecified = ipaddress.ip_address(listen_host).is_unspecified
        except ValueError:
            unspecified = False
        if not unspecified:
            names.append(listen_host)
    return names


def make_self_signed(names: list[str], now: datetime | None = None) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM): a new ECDSA P-256 key and a self-signed certificate for `names`, 10 years."""
    now = now or SYSTEM_CLOCK.now()
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cicbox panel")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_san_entries(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_pair(panel_dir: Path, listen_host: str | None = None) -> tuple[Path, Path]:
    """The pair this process serves: PANEL_DIR/tls/{cert,key}.pem (made self-signed when tls/ holds
    neither; never replaced), checked as an upload is (a pair no browser can use is a PanelError: the
    panel does not start) and copied to tls/active/, whose paths it returns, so that an upload in the
    meantime is used from the next start only.

    Half a pair (one file without the other) is refused: making a new key would silently change
    the fingerprint installers trust.
    """
    d = tls_dir(panel_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = pair_paths(panel_dir)
    if cert_path.exists() != key_path.exists():
        present, missing = (cert_path, key_path) if cert_path.exists() else (key_path, cert_path)
        raise PanelError(f"{present} is there but {missing} is not: restore it, or move both away to have "
                         "the panel make a new self-signed pair")
    if not cert_path.exists():
        cert_pem, key_pem = make_self_signed(default_names(listen_host))
        write_private(key_path, key_pem)
        _write_public(cert_path, cert_pem)
    return _activate(d, cert_path, key_path)


def _activate(d: Path, cert_path: Path, key_path: Path) -> tuple[Path, Path]:
    """Check the pair a TLS server can use, then copy it to tls/active/: the files the server reads for the
    life of this process (an upload replaces cert.pem and key.pem, used from the next start)."""
    cert_pem, key_pem = cert_path.read_bytes(), key_path.read_bytes()
    try:
        _usable_pair(cert_pem, key_pem)
    except PanelError as exc:
        raise PanelError(f"the panel cannot serve {cert_path} and {key_path}: {exc}. Put a good pair back "
                         f"(earlier ones are kept in {d / PREVIOUS}), or move both away to have the panel "
                         "make a new self-signed pair") from None
    active = d / ACTIVE
    active.mkdir(exist_ok=True, mode=0o700)
    write_private(active / KEY_NAME, key_pem)
    _write_public(active / CERT_NAME, cert_pem)
    return active / CERT_NAME, active / KEY_NAME


def _san_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The certificate's subject alternative names: (its DNS names, its IP addresses as text)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return list(san.get_values_for_type(x509.DNSName)), [str(a) for a in san.get_values_for_type(x509.IPAddress)]


def cert_info(cert: x509.Certificate) -> CertInfo:
    dns, ips = _san_names(cert)
    names = (*dns, *ips)
    public = cert.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        key_type = f"ECDSA {public.curve.name}"
    elif isinstance(public, rsa.RSAPublicKey):
        key_type = f"RSA {public.key_size}"
    else:
        key_type = type(public).__name__
    return CertInfo(fingerprint=fingerprint(cert), subject=cert.subject.rfc4514_string(),
                    issuer=cert.issuer.rfc4514_string(), not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc, names=names, key_type=key_type)


def _public_der(key: object) -> bytes:
    assert hasattr(key, "public_bytes")
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def _usable_pair(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """The pair's certificate if a TLS server and today's browsers can use the pair (a key of the
    certificate, EC P-256/P-384 or RSA 2048+, loaded by ssl as the server loads it); else PanelError why."""
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise PanelError("the certificate is not a PEM certificate") from None
    cert = certs[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise PanelError("the private key is encrypted: upload it without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise PanelError("the private key is not a PEM private key") from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in USABLE_CURVES:
            raise PanelError(f"the key is ECDSA {key.curve.name}: browsers need P-256 or P-384 (or RSA of "
                             f"{MIN_RSA_BITS} bits or more)")
    elif isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise PanelError(f"the key is RSA {key.key_size}: too small for browsers (RSA {MIN_RSA_BITS} bits "
                             "or more, or ECDSA P-256/P-384)")
    elif isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise PanelError(f"the key is {'Ed25519' if isinstance(key, ed25519.Ed25519PrivateKey) else 'Ed448'}: "
                         f"browsers cannot use it for TLS (use ECDSA P-256/P-384 or RSA {MIN_RSA_BITS}+)")
    else:
        raise PanelError("the private key's type is not one a TLS server can use")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise PanelError("the private key does not belong to the certificate")
    for n, each in enumerate(certs, 1):
        _known_critical(each, "the certificate" if n == 1 else f"certificate {n} of the chain")
    with tempfile.TemporaryDirectory(prefix="cicbox-tls-") as tmp:
        cert_file, key_file = Path(tmp) / CERT_NAME, Path(tmp) / KEY_NAME
        write_private(key_file, key_pem)
        _write_public(cert_file, cert_pem)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
        except ssl.SSLError as exc:
            raise PanelError(f"a TLS server cannot load the pair ({exc.reason or exc})") from None
    return cert


def _known_critical(cert: x509.Certificate, which: str) -> None:
    """PanelError if `cert` has an extension marked critical that browsers do not know (:data:`KNOWN_CRITICAL`)."""
    try:
        extensions = list(cert.extensions)
    except ValueError as exc:
        raise PanelError(f"{which}'s extensions cannot be read ({exc})") from None
    for ext in extensions:
        if ext.critical and ext.oid not in KNOWN_CRITICAL:
            raise PanelError(f"{which} carries a critical extension browsers do not know (OID "
                             f"{ext.oid.dotted_string}): browsers refuse such a certificate")


def check_upload(cert_pem: bytes, key_pem: bytes, now: datetime) -> x509.Certificate:
    """The uploaded certificate, if it may replace the panel's; else PanelError saying why."""
    if not cert_pem.strip() or not key_pem.strip():
        raise PanelError("give both a certificate and its private key (PEM)")
    if len(cert_pem) > MAX_PEM_BYTES or len(key_pem) > MAX_PEM_BYTES:
        raise PanelError("the certificate or key is too large (64 KiB at most each)")
    if holds_private_key(cert_pem):
        raise PanelError("the certificate field holds a private key: give the key in its own field only")
    for label in _PEM_LABEL.findall(cert_pem):
        if label != b"CERTIFICATE":
            shown = label.decode("ascii", "replace")[:40]
            raise PanelError(f'the certificate field holds a "{shown}" block: give only CERTIFICATE blocks '
                             "(the key in its own field)")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise PanelError("the certificate is not a PEM certificate") from None
    if len(chain) > MAX_CHAIN:
        raise PanelError(f"the chain holds {len(chain)} certificates: {MAX_CHAIN} at most (the server's and its "
                         "intermediates)")
    cert = _usable_pair(cert_pem, key_pem)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and not {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(
            usages):
        raise PanelError("the certificate's extended key usage excludes TLS servers (no serverAuth)")
    info = cert_info(cert)
    if not info.names:
        raise PanelError("the certificate names no subject alternative name (browsers need one)")
    if info.not_before > now:
        raise PanelError(f"the certificate is not valid before {info.not_before:%Y-%m-%d %H:%M} UTC")
    if info.not_after < now + MIN_REMAINING:
        raise PanelError(f"the certificate expires {info.not_after:%Y-%m-%d} (it must be valid at least "
                         f"{MIN_REMAINING.days} more days)")
    return cert


def _dns_name_matches(pattern: str, host: str) -> bool:
    """Whether the certificate's DNS name `pattern` covers `host` as browsers match it: equal (case and a
    trailing dot aside), or a wildcard ``*.`` as the whole leftmost label standing for exactly one label."""
    pattern = pattern.lower().rstrip(".")
    if ip_of(host) is not None:
        return False                     # browsers match an address only against IP address names
    if pattern == host:
        return True
    if not pattern.startswith("*.") or "*" in pattern[2:]:
        return False
    label, dot, rest = host.partition(".")
    return bool(label and dot) and rest == pattern[2:]


def answers_to(cert: x509.Certificate, allowed: frozenset[str], any_ip: bool) -> bool:
    """Whether one of the certificate's subject alternative names is a name the panel answers to: `allowed`, and
    any IP address if `any_ip` (the Host check's, :func:`appliance.web.hosts.allowed_hosts`)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    for address in san.get_values_for_type(x509.IPAddress):
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address) and (any_ip or str(address) in allowed):
            return True
    return any(_dns_name_matches(pattern, host) for pattern in san.get_values_for_type(x509.DNSName)
               for host in allowed)


SHOWN_NAMES = 4
"""A warning lists this many of a certificate's names (and how many more)."""


def names_warning(cert: x509.Certificate, allowed: frozenset[str], any_ip: bool) -> str | None:
    """None if the certificate names a name the panel answers to (:func:`answers_to`); else the warning for the
    installer: browsers will warn for each name the panel answers to."""
    if answers_to(cert, allowed, any_ip):
        return None
    dns, ips = _san_names(cert)
    # an address written as a DNS name is said so: browsers match an address only against IP address names
    names = [f"{n} (as a DNS name, not an IP address)" if ip_of(n) is not None else n for n in dns] + ips
    shown = ", ".join(names[:SHOWN_NAMES]) + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES
                                              else "")
    # the listen address 0.0.0.0 or :: is no name: it stands for any IP address
    listed = sorted(n for n in allowed if (a := ip_of(n)) is None or not a.is_unspecified)
    panel = ", ".join([*listed, *(["any IP address"] if any_ip else [])])
    return (f"the certificate names {shown}, none of the names the panel answers to ({panel}): browsers will "
            "warn when the panel is opened by any of those. If browsers reach the panel by one of the "
            "certificate's names, add it to names = in /etc/cicbox/panel.conf")


def previous_pairs(panel_dir: Path) -> list[Path]:
    """The directories of tls/previous/, oldest first: one per pair an upload replaced (never overwritten)."""
    previous = tls_dir(panel_dir) / PREVIOUS
    if not previous.is_dir():
        return []
    return sorted(p for p in previous.iterdir() if p.is_dir())


def install_upload(panel_dir: Path, cert_pem: bytes, key_pem: bytes, now: datetime | None = None) -> None:
    """Keep the current pair in tls/previous/<UTC time>/ and put the checked upload in its place (used from
    the next start). Every earlier pair stays: a second upload does not lose the first one's predecessor."""
    d = tls_dir(panel_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = pair_paths(panel_dir)
    if cert_path.exists() or key_path.exists():
        keep = _new_previous_dir(d / PREVIOUS, now or SYSTEM_CLOCK.now())
        if key_path.exists():
            write_private(keep / KEY_NAME, key_path.read_bytes())
        if cert_path.exists():
            _write_public(keep / CERT_NAME, cert_path.read_bytes())
    write_private(key_path, key_pem)
    _write_public(cert_path, certificates_only(x509.load_pem_x509_certificates(cert_pem)))


def _new_previous_dir(previous: Path, now: datetime) -> Path:
    """A new directory tls/previous/20260102T030405Z (a -2, -3... suffix if that second has one already)."""
    previous.mkdir(exist_ok=True, mode=0o700)
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        path = previous / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return path
    raise PanelError(f"{previous} has too many pairs kept at {stamp}")
