"""The Host check: the panel answers only requests that name it.

A page on another site can point its own host name at the panel's address (DNS rebinding) and
then read the panel as if it were its own origin; the browser sends that site's name in
``Host``. So every request's Host must be one of the panel's names, checked before anything
else (before sign-in, so the answer is the same for everyone), or the answer is 400:

- the listen address (LISTEN), or, when the panel listens on all addresses (0.0.0.0, ::),
  any IP address;
- the names configured in PANEL_NAMES (panel.conf's ``names =``);
- this machine's host name (it is in the self-signed certificate), and ``localhost`` when the
  panel listens on a loopback address.

The header is parsed strictly: a host name or IPv4 address (letters, digits, ``-`` and ``.``), or an IPv6
address in brackets (never bare), then at most ``:PORT`` of digits, which must be the listen port (any port
when the panel was asked for port 0). Anything else (``host:abc``, ``host:port@other``, ``[name]``,
``[127.0.0.1]``) is refused like a foreign name.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable

from flask import Flask, Response, current_app, jsonify, make_response, request


def split_host(header: str) -> str:
    """The host part of a Host header, lower-case, without port, brackets or a trailing dot."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    if text.count(":") == 1:
        text = text.partition(":")[0]
    return text.rstrip(".")


_NAME_PORT = re.compile(r"([a-z0-9.-]+)(?::([0-9]{1,5}))?")
_V6_PORT = re.compile(r"\[([0-9a-f:.]+)\](?::([0-9]{1,5}))?")


def parse_host(header: str) -> tuple[str, int | None] | None:
    """(host, port or None) of a Host header, the host lower-case without brackets or a trailing dot; None for a
    header that is not ``NAME[:PORT]``, ``IPV4[:PORT]`` or ``[IPV6][:PORT]``."""
    text = header.strip().lower()
    bracketed = _V6_PORT.fullmatch(text)
    if bracketed is not None:
        try:
            host = str(ipaddress.IPv6Address(bracketed.group(1)))
        except ValueError:
            return None
        port_text = bracketed.group(2)
    else:
        plain = _NAME_PORT.fullmatch(text)
        if plain is None:
            return None
        host, port_text = plain.group(1).rstrip("."), plain.group(2)
        if not host:
            return None
    return host, (int(port_text) if port_text is not None else None)


def ip_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`text` as an IP address, or None if it is not one (a host name)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def allowed_hosts(listen: str, names: Iterable[str]) -> tuple[frozenset[str], bool]:
    """(names allowed, whether any IP address is) for a panel on `listen` with configured `names`."""
    host = split_host(listen) if listen else ""
    allowed = {n.strip().lower().rstrip(".") for n in names if n.strip()}
    allowed.add(socket.gethostname().lower())
    address = ip_of(host)
    any_ip = address is not None and address.is_unspecified
    if address is not None:
        allowed.add(str(address))
        if address.is_loopback:
            allowed.add("localhost")
    elif host:
        allowed.add(host)
        if host == "localhost":
            allowed.update({"127.0.0.1", "::1"})
    return frozenset(allowed), any_ip


def host_allowed(header: str, allowed: frozenset[str], any_ip: bool, port: int = 0) -> bool:
    """Whether `header` names the panel (`port`: the listen port, 0 for any)."""
    parsed = parse_host(header)
    if parsed is None:
        return False
    host, given_port = parsed
    if port and given_port is not None and given_port != port:
        return False
    if host in allowed:
        return True
    address = ip_of(host)
    if address is not None:
        return any_ip or str(address) in allowed
    return False


def init_app(app: Flask) -> None:
    """Check every request's Host first (ahead of any other before-request hook)."""
    allowed, any_ip = allowed_hosts(str(app.config.get("LISTEN") or ""), app.config.get("PANEL_NAMES") or ())
    listen = str(app.config.get("LISTEN") or "")
    port_text = listen.rpartition("]")[2].rpartition(":")[2] if ":" in listen.rpartition("]")[2] else ""
    port = int(port_text) if port_text.isdigit() else 0
    app.extensions["cicbox_hosts"] = (allowed, any_ip, port)

    def check_host() -> Response | None:
        names, wildcard, listen_port = current_app.extensions["cicbox_hosts"]
        header = request.headers.get("Host", "")
        if host_allowed(header, names, wildcard, listen_port):
            return None
        message = (f"this panel does not answer to the host name {split_host(header)!r}: open it by its "
                   "address, or add the name to names = in /etc/cicbox/panel.conf")
        if request.path.startswith("/api/") or request.path.endswith("/events"):
            response = jsonify({"error": message})
            response.status_code = 400
            return response
        response = make_response(message + "\n", 400)
        response.mimetype = "text/plain"
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, check_host)
