"""One client per IPv4 address or IPv6 /64 (an IPv4-mapped IPv6 address as its IPv4 address), for every cap the
panel keeps per peer: connections held (serve.py), the login throttle and the refusals audited without an
account."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from flask import Flask

from appliance.web import accounts, create_app
from appliance.web.peers import peer_group
from appliance.web.serve import PEER_CONNECTIONS, PanelWorker
from tests.web.accounts import csrf_token, make_user, panel_client
from tests.web.panel_proc import PanelProcess, tls_connect


@pytest.mark.parametrize(("address", "group"), [
    ("192.0.2.7", "192.0.2.7"),
    ("127.0.0.1", "127.0.0.1"),
    ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),             # the same /64
    ("2001:0DB8:0001:0002:0:0:0:0009", "2001:db8:1:2::/64"),               # however it is written
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),                               # the next /64: another client
    ("::1", "::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),                                      # IPv4-mapped: the IPv4 address
    ("::ffff:c000:207", "192.0.2.7"),
    ("console", "console"),                                                 # not an address: itself
    ("unknown", "unknown"),
    ("", ""),
])
def test_peer_groups(address: str, group: str) -> None:
    assert peer_group(address) == group


@pytest.fixture
def app(tmp_path: Path, clock: time_machine.Traveller) -> Flask:
    return create_app({"TESTING": True, "STATE_DIR": str(tmp_path)})


def _login(app: Flask, remote: str, password: str) -> int:
    client = panel_client(app, remote)
    resp = client.post("/login", data={"csrf_token": csrf_token(client), "username": "inst", "password": password})
    return int(resp.status_code)


def test_the_login_throttle_counts_an_ipv6_64_as_one_peer(app: Flask, clock: time_machine.Traveller) -> None:
    password = make_user(app, "inst", "installer")
    for n in range(1, 6):                                       # five wrong guesses, each from its own address
        assert _login(app, f"2001:db8:1:2::{n:x}", f"wrong-password-{n}") == 401
    assert _login(app, "2001:db8:1:2:abcd::99", password) == 429   # a sixth address of that /64: throttled
    assert _login(app, "2001:db8:1:3::1", password) == 303         # the next /64 is another peer
    failures = accounts.audit_rows(app, action="login", outcome="failure")
    assert {r["remote"] for r in failures} == {f"2001:db8:1:2::{n:x}" for n in range(1, 6)}  # each address kept
    clock.shift(timedelta(minutes=15))
    assert _login(app, "2001:db8:1:2::1", password) == 303


def test_an_ipv4_mapped_address_is_throttled_as_its_ipv4_address(app: Flask) -> None:
    password = make_user(app, "inst", "installer")
    for n in range(5):
        remote = "::ffff:192.0.2.7" if n % 2 else "192.0.2.7"     # a dual-stack socket's view, and a plain one
        assert _login(app, remote, f"wrong-password-{n}") == 401
    assert _login(app, "192.0.2.7", password) == 429
    assert _login(app, "::ffff:192.0.2.7", password) == 429
    assert _login(app, "192.0.2.8", password) == 303


def test_anonymous_refusals_from_one_64_share_one_budget(app: Flask) -> None:
    for n in range(accounts.REFUSALS_PER_MINUTE + 5):
        accounts.audit(app, user=None, remote=f"2001:db8:1:2::{n + 1:x}", action="csrf_refused", outcome="refused")
    accounts.audit(app, user=None, remote="2001:db8:1:3::1", action="csrf_refused", outcome="refused")
    rows = accounts.audit_rows(app, limit=100)
    kept = [r["remote"] for r in rows if r["action"] == "csrf_refused"]
    assert len(kept) == accounts.REFUSALS_PER_MINUTE + 1 and "2001:db8:1:3::1" in kept
    (summary,) = [r for r in rows if r["action"] == "refused_more"]
    assert (summary["remote"], summary["detail"]["more"]) == ("2001:db8:1:2::/64", 1)


class _Listener:
    """A listening socket's stand-in: hands out connected sockets as if from each address in turn."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses

    def accept(self) -> tuple[socket.socket, tuple[str, int, int, int]]:
        ours, _theirs = socket.socketpair()
        _theirs.close()
        return ours, (self.addresses.pop(0), 40000, 0, 0)

    def getsockname(self) -> tuple[str, int, int, int]:
        return ("::", 8443, 0, 0)


def test_the_connection_cap_counts_an_ipv6_64_as_one_peer() -> None:
    # What gunicorn's worker does with each accepted connection: enqueued, or closed at once past the cap. Eight
    # addresses of one /64 take its share; a ninth of it is closed; another /64 and an IPv4 peer are not.
    worker: Any = PanelWorker.__new__(PanelWorker)           # the parts of init_process that accept uses
    worker.cfg = SimpleNamespace()
    worker.log = SimpleNamespace(debug=lambda *args: None)
    worker.nr_conns = 0
    worker._peers, worker._peers_lock = {}, threading.Lock()
    queued: list[Any] = []
    worker.enqueue_req = queued.append
    same = [f"2001:db8:1:2::{n + 1:x}" for n in range(PEER_CONNECTIONS + 1)]
    listener = _Listener([*same, "2001:db8:1:3::1", "::ffff:192.0.2.7"])
    for _ in range(PEER_CONNECTIONS + 3):
        worker.accept(listener)
    assert [conn.client[0] for conn in queued] == [*same[:PEER_CONNECTIONS], "2001:db8:1:3::1", "::ffff:192.0.2.7"]
    assert worker._peers == {"2001:db8:1:2::/64": PEER_CONNECTIONS, "2001:db8:1:3::/64": 1, "192.0.2.7": 1}
    queued[0].close()                                          # one closed: its /64 may have another
    assert worker._peers["2001:db8:1:2::/64"] == PEER_CONNECTIONS - 1
    for conn in queued[1:]:
        conn.close()
    assert worker._peers == {}


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback address here")
def test_a_panel_on_ipv6_caps_a_64s_connections(tmp_path: Path) -> None:
    # ::1 is this host's one IPv6 loopback address, so its /64 (::/64) is one peer: it holds at most
    # PEER_CONNECTIONS connections, the next is closed at once; once they close it is answered again.
    with PanelProcess(tmp_path, listen="[::1]:0") as panel:
        context = panel.ssl_context()
        held = [context.wrap_socket(socket.create_connection(("::1", panel.port), timeout=10), server_hostname="::1")
                for _ in range(PEER_CONNECTIONS)]
        try:
            with (pytest.raises(OSError),     # reset before (or during) its handshake
                  tls_connect(context, socket.create_connection(("::1", panel.port), timeout=10), "::1") as extra):
                extra.sendall(b"GET /login HTTP/1.1\r\nHost: [::1]\r\n\r\n")
                assert extra.recv(100) != b""
        finally:
            for sock in held:
                sock.close()
        answered = None
        for _ in range(50):                   # the closes reach the worker soon after
            conn = http.client.HTTPSConnection("::1", panel.port, context=context, timeout=10)
            try:
                conn.request("GET", "/login")
                answered = conn.getresponse().status
                break
            except OSError:
                time.sleep(0.1)  # clock-source: waiting on a real server
            finally:
                conn.close()
        assert answered in (200, 303)
