"""Serve the panel under gunicorn, in this process: ``python -m appliance.web.serve --state-dir DIR``.

HTTPS only, on ``--listen ADDR:PORT`` (default ``listen =`` in /etc/cicbox/panel.conf, else
127.0.0.1:8443), or on the sockets systemd hands over (``LISTEN_FDS``, socket activation). The
certificate and key are PANEL_DIR/tls/{cert,key}.pem, made self-signed on the first start
(:mod:`appliance.web.tls`); each start logs their fingerprint.

One ``gthread`` worker with 32 threads: the login throttle's per-address locks and the wallboard's engine
subscriber live in one process. A connection holds a thread only while its request is answered: its TLS
handshake, its request head and a body of up to :data:`PREREAD_BODY_MAX` are read as they come, a thread taking
what has arrived and handing the connection back to the worker's poller (which waits without a thread) whenever
it would wait, so clients that trickle cannot hold the threads, from however many addresses. Each stage is
bounded: a connection silent :data:`READ_TIMEOUT_S` is closed, the TLS handshake has
:data:`HANDSHAKE_DEADLINE_S` in all, the request head :data:`HEAD_DEADLINE_S` from its first byte, the body that
again plus what of it has come at :data:`BODY_MIN_RATE` (a body, whatever length it announces, must keep up that
rate after the grace; one too slow is answered 408). A longer or chunked body is read by the request's thread
within the same bounds, and with a short grace while most threads are busy (:data:`SPARE_THREADS`). One peer
address (an IPv6 one with its /64) holds at most :data:`PEER_CONNECTIONS` connections (more are closed as they
are accepted). A connection's closing linger (waiting for the client's own close) is done in its thread, never
in the worker's main loop, whose heartbeat the arbiter watches.

/etc/cicbox/panel.conf (the path: ``$CICBOX_PANEL_CONF``), lines of ``key = value``, ``#``
comments::

    listen = 0.0.0.0:8443          # the address to serve on
    names = panel.example.net      # host names browsers use for the panel (comma-separated)

Nothing of the panel's own settings is in the site YAML.

The arbiter (this process) writes two rows to the panel's audit log (user and remote empty): ``start``
once it listens, before its worker is forked (detail: ``listen``, the address bound, ``fingerprint``,
the certificate's, and ``pid``, its own), and ``stop`` as it exits (detail: ``reason``, the signal
that stopped it, ``SIGTERM``, ``SIGINT`` or ``SIGQUIT``, or gunicorn's own reason such as the worker
failing to boot (then outcome ``error`` and its ``exit_status``), and ``pid``). A process that is
killed (``kill -9``, the machine losing power, the kernel's out-of-memory killer) writes no ``stop``
row: a ``start`` with no ``stop`` before the next ``start`` is a panel that died without stopping.
A worker gunicorn replaces writes neither.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import ipaddress
import logging
import os
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gunicorn import http as gunicorn_http  # type: ignore[import-untyped]
from gunicorn import sock as gunicorn_sock
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from gunicorn.workers import gthread  # type: ignore[import-untyped]

from appliance.web import PanelError, create_app
from appliance.web.peers import peer_group

DEFAULT_PORT = 8443
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
PANEL_CONF = Path("/etc/cicbox/panel.conf")
PANEL_CONF_ENV = "CICBOX_PANEL_CONF"
THREADS = 32
READ_TIMEOUT_S = 5.0
"""A connection silent this long mid-request (TLS handshake, request line, headers, body) is closed."""
HANDSHAKE_DEADLINE_S = 2.0
"""The whole TLS handshake, from its first byte, gets this long (at most the read timeout)."""
HEAD_DEADLINE_S = 10.0
"""The request line and headers, from their first byte, get this long in all, however steadily they trickle."""
BODY_MIN_RATE = 16 * 1024
"""A request body gets the head's deadline (its grace) plus the bytes of it read so far at this many bytes a
second: a steady 16 KiB/s or more is never cut, a trickle is cut soon after the grace, whatever length it
announced (a body the panel never reads is still read off the connection to keep it alive)."""
PEER_CONNECTIONS = 8
"""Connections one peer address (an IPv6 one with the rest of its /64: appliance.web.peers) may hold open at once
(being read, answered, or kept alive); one more is closed at once, so a single client can never hold every
thread."""
FIRST_BYTE_WAIT_S = 0.1
"""How long a thread waits for a new connection's first byte before handing it back to the worker's poller
(which waits for it without a thread, and closes it after the keep-alive time)."""
HEAD_FIELDS = 32
HEAD_FIELD_SIZE = 8190
"""The request head's limits (gunicorn's ``limit_request_fields`` and ``limit_request_field_size``; its request
line stays at 4094): far more than a browser sends the panel, and small enough that a whole head is read before
the request gets a thread (:data:`HEAD_MAX`)."""
HEAD_MAX = 4096 + HEAD_FIELDS * (HEAD_FIELD_SIZE + 2) + 4 + 8192
"""The most of a head that is read before the request gets a thread: more than the parser takes (its request line
and its fields, with room to spare), so a head that long is refused at once by the parser, never read by a
thread."""
ARRIVE_READS = 16
"""Reads of a connection in one turn of its thread before it is handed back to the poller (which gives it a thread
again at once if more has come): a client sending its request as many tiny TLS records takes turns with the
others, and its deadlines are checked as it goes."""
PREREAD_BODY_MAX = 64 * 1024
"""A request body announced with a Content-Length up to this is read before the request gets a thread, as its
TLS handshake and head are (every form the panel takes is far smaller); a longer or chunked one is read by the
request's thread, at :data:`BODY_MIN_RATE` after its grace."""
SPARE_THREADS = 8
"""Threads kept for prompt clients: once THREADS - SPARE_THREADS threads are busy with a connection at once
(reading a body too long to be read before, or answering), a request starting gets only
:data:`SCARCE_GRACE_S` as its body's grace, so many addresses trickling such bodies together cannot hold every
thread for long."""
SCARCE_GRACE_S = 0.25
"""A body's grace while threads are scarce (SPARE_THREADS): only a body too long to be read before its request
gets a thread is read within it, and no browser sends one to the panel."""
CONF_KEYS = ("listen", "names")
FINGERPRINT_LOG = "TLS certificate SHA-256 fingerprint %s"

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """Split ADDR:PORT ([V6]:PORT for IPv6; the port defaults to 8443) into (address, port).

    ADDR is an IP address (0.0.0.0 or :: for all) or ``localhost``; names are not resolved.
    """
    example = f"expected ADDR:PORT, e.g. {DEFAULT_LISTEN} or [::]:{DEFAULT_PORT}"
    raw = text.strip()
    port_text = str(DEFAULT_PORT)
    if raw.startswith("["):  # [v6] or [v6]:port
        host, close, rest = raw[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise PanelError(f"bad listen address {text!r}: {example}")
        if rest:
            port_text = rest[1:]
    elif raw.count(":") == 1:  # v4:port or localhost:port
        host, _, port_text = raw.partition(":")
    else:  # a bare v4 address, localhost, or a bare v6 address
        host = raw
    if not host:
        raise PanelError(f"bad listen address {text!r}: {example}")
    if host.lower() == "localhost":
        host = "localhost"
    else:
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            raise PanelError(f"bad listen address {text!r}: {host!r} is not an IP address ({example})") from None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise PanelError(f"bad listen address {text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def format_listen(host: str, port: int) -> str:
    """HOST:PORT as gunicorn and URLs write it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class PanelConf:
    """/etc/cicbox/panel.conf: what was given (None or empty where it said nothing)."""

    listen: str | None = None
    names: list[str] = field(default_factory=list)


def conf_path() -> Path:
    return Path(os.environ.get(PANEL_CONF_ENV) or PANEL_CONF)


def read_conf(path: Path | None = None) -> PanelConf:
    """Read panel.conf (a missing file is an empty one); a line it cannot read is a PanelError naming it."""
    path = path or conf_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return PanelConf()
    except (OSError, UnicodeDecodeError) as exc:
        raise PanelError(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    conf = PanelConf()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep or not key:
            raise PanelError(f"{path}:{number}: expected KEY = VALUE, not {raw.strip()!r}")
        if key not in CONF_KEYS:
            raise PanelError(f"{path}:{number}: unknown key {key!r} (known: {', '.join(CONF_KEYS)})")
        if key == "listen":
            try:
                parse_listen(value)
            except PanelError as exc:
                raise PanelError(f"{path}:{number}: {exc}") from None
            conf.listen = value
        else:
            conf.names = [name.strip().lower().rstrip(".") for name in value.split(",") if name.strip()]
    return conf


def systemd_listen_address() -> tuple[str, int] | None:
    """The address of the first socket systemd passed (LISTEN_FDS for this process), or None."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or not os.environ.get("LISTEN_FDS", "").isdigit():
        return None
    if int(os.environ["LISTEN_FDS"]) < 1:
        return None
    with socket.socket(fileno=os.dup(3)) as sock:
        address = sock.getsockname()
    if not isinstance(address, tuple):
        raise PanelError("the socket systemd passed is not an IP socket")
    return str(address[0]), int(address[1])


class PanelWorker(gthread.ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's threaded worker with a read timeout on every connection, deadlines on the handshake, the request
    head and the body, a cap on each peer address's connections, idle connections left to the poller at once (not
    to a thread), and nothing sent to a client that does not speak TLS (plain HTTP on the HTTPS port gets the
    connection closed, no page)."""

    read_timeout_s = READ_TIMEOUT_S
    head_deadline_s = HEAD_DEADLINE_S
    peer_connections = PEER_CONNECTIONS

    def init_process(self) -> None:
        self.log.error_log.addFilter(_quiet_timeouts)
        self._peers: dict[str, int] = {}
        self._peers_lock = threading.Lock()
        self._busy = 0                       # threads busy with a connection now (its request or its answer)
        super().init_process()

    def _start_busy(self, conn: Any) -> None:
        """This connection's thread answers a request from now: a body it reads itself gets the full grace
        unless threads are scarce (SPARE_THREADS)."""
        with self._peers_lock:
            scarce = self._busy >= THREADS - SPARE_THREADS
            self._busy += 1
        conn._cicbox_busy = True
        conn._cicbox_head_s = min(self.head_deadline_s, SCARCE_GRACE_S) if scarce else self.head_deadline_s

    def _stop_busy(self, conn: Any) -> None:
        if getattr(conn, "_cicbox_busy", False):
            conn._cicbox_busy = False
            with self._peers_lock:
                self._busy -= 1

    def accept(self, listener: Any) -> None:
        """gunicorn's accept, but a peer address already holding its share of connections has this one closed."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        peer = peer_group(str(client_addr[0]) if isinstance(client_addr, tuple) else str(client_addr))
        with self._peers_lock:
            held = self._peers.get(peer, 0)
            if held >= self.peer_connections:
                refused = True
            else:
                refused = False
                self._peers[peer] = held + 1
        if refused:
            self.log.debug("%s holds %d connections already: one more closed", peer, held)
            with contextlib.suppress(OSError):
                client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client_sock.close()
            return
        self.nr_conns += 1
        client_sock.setblocking(True)
        conn = _PanelConn(self.cfg, client_sock, client_addr, listener.getsockname())
        conn.release = functools.partial(self._release_peer, peer)
        self.enqueue_req(conn)

    def _release_peer(self, peer: str) -> None:
        with self._peers_lock:
            left = self._peers.get(peer, 0) - 1
            if left > 0:
                self._peers[peer] = left
            else:
                self._peers.pop(peer, None)

    def handle(self, conn: Any) -> Any:
        # gunicorn's own wait here is 5 s: 32 idle connections would hold every thread that long.
        if not conn.initialized and not conn.data_ready and conn.pre is None \
                and not conn.wait_for_data(FIRST_BYTE_WAIT_S):
            return gthread._DEFER
        # What has come of the handshake and the request, without waiting: the rest is waited for in the poller.
        try:
            if not conn.arrive(self):
                return gthread._DEFER
        except (OSError, ValueError) as exc:        # ssl.SSLError and TimeoutError are OSErrors
            self.log.debug("%s: closed before its request was read (%s)", conn.client, exc)
            if isinstance(exc, _MalformedHeadError):     # refused at once, as the parser refuses a bare LF
                with contextlib.suppress(OSError, ValueError):
                    conn.sock.send(BAD_HEAD_ANSWER)
            conn.sock.close()
            conn.release_once()
            conn._cicbox_closed = True
            return False
        self._start_busy(conn)
        try:
            conn.init(self.read_timeout_s)
            conn.reader.deadline = conn.deadline    # a head too long to read before is read within its deadline
            conn.hand_over()
            result = super().handle(conn)
        finally:
            self._stop_busy(conn)
        conn.reader.deadline = None
        if result is False:
            # gunicorn would close it on the worker's main loop, lingering up to 2 s for the client's own
            # close: a client that never closes would stall the loop (and its heartbeat: the arbiter kills a
            # worker whose loop stalls). The linger is done here, in this connection's thread, instead.
            gunicorn_util.close_graceful(conn.sock)
            conn.release_once()
            conn._cicbox_closed = True
        return result

    @property
    def handshake_deadline_s(self) -> float:
        return min(HANDSHAKE_DEADLINE_S, self.read_timeout_s)

    def handle_request(self, req: Any, conn: Any) -> Any:
        if getattr(conn, "continued", False):
            req._expected_100_continue = False      # asked already, and the body read: the parser asks no more
        reader = getattr(conn, "reader", None)
        if reader is not None:   # the head is read: the body must keep up the minimum rate after a grace
            reader.pace(conn.grace_end(getattr(conn, "_cicbox_head_s", self.head_deadline_s)), BODY_MIN_RATE)
        return super().handle_request(req, conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        if getattr(conn, "_cicbox_closed", False):
            self.nr_conns -= 1
            return
        super().finish_request(conn, fs)
        waits = getattr(conn, "waits_until", None)
        if waits is not None and self.pending_conns and self.pending_conns[-1] is conn:
            # Deferred mid-request: it waits in the poller until its stage's deadline or read timeout, not the
            # keep-alive time; the list stays in the order of those times (murder_pending reads it so).
            self.pending_conns.pop()
            conn.timeout = min(conn.timeout, waits)
            at = len(self.pending_conns)
            while at > 0 and self.pending_conns[at - 1].timeout > conn.timeout:
                at -= 1
            self.pending_conns.insert(at, conn)

    def murder_pending(self) -> None:
        """gunicorn's, but a connection whose body came too slowly is answered 408 by a thread, not just closed."""
        now = time.monotonic()  # clock-source: a socket deadline
        while self.pending_conns and self.pending_conns[0].timeout <= now:
            conn = self.pending_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            if getattr(conn, "in_body", False):
                conn.expired = True
                self.enqueue_req(conn)
            else:
                self.nr_conns -= 1
                conn.close()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if isinstance(exc, ssl.SSLError):
            self.log.debug("not TLS, or a failed handshake, from %s: closed (%s)", addr, exc)
            with contextlib.suppress(OSError):
                client.close()
            return
        super().handle_error(req, client, addr, exc)


class _PanelConn(gthread.TConn):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's connection, which gives its peer's slot back once, however it is closed, and whose TLS handshake
    and request (head and a short body) are read as they come (:meth:`arrive`) before a thread answers it."""

    sock: Any          # gunicorn's (untyped): the client's socket, TLS once arrive has wrapped it
    parser: Any
    initialized: bool

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.release: Any = None
        self.reader: _DeadlineReader | None = None
        self._released = False
        self._release_lock = threading.Lock()
        self.handshaken = False
        self.pre: bytearray | None = None       # the request read so far (None: none begun)
        self.deadline: float | None = None      # the stage's: the handshake's, the head's (from its first
                                                # octet) or the body's
        self.head_end: float | None = None      # when the head was all read
        self.body_read = 0                      # octets of its body read with it
        self.in_body = False                    # reading the body (a deadline past is answered 408)
        self.expired = False                    # the body's deadline passed in the poller
        self.waits_until: float | None = None   # deferred mid-request: the deadline or the read timeout
        self.want = 0                           # octets of head and body to read before a thread answers
        self.idle_until = 0.0                   # a request begun: its first octet by then
        self.expects = False                    # its head asks for 100 Continue before the body
        self.continued = False                  # 100 Continue sent (the parser must not send another)
        self.scanned = 0                        # octets of the head searched so far (for its end, odd line ends)
        self.head_len = 0                       # the head's octets, with its blank line
        self.head_s = HEAD_DEADLINE_S           # the head's deadline, and the body's grace

    def release_once(self) -> None:
        with self._release_lock:
            if self._released or self.release is None:
                return
            self._released = True
        self.release()

    def close(self, graceful: bool = False) -> None:
        try:
            super().close(graceful)
        finally:
            self.release_once()

    def init(self, read_timeout_s: float | None = None) -> None:
        """gunicorn's, but the socket is TLS already (its handshake done by :meth:`arrive`), and every read the
        thread makes of the request (a long head or body) goes through one deadline reader; called again for each
        request (by gunicorn too, which sets the socket blocking first: the read timeout is put back)."""
        if not self.initialized:
            self.initialized = True
            self.parser = gunicorn_http.get_parser(self.cfg, self.sock, self.client)
            self.reader = _DeadlineReader(self.sock, read_timeout_s or READ_TIMEOUT_S)
            self.parser.unreader.sock = self.reader
        assert self.reader is not None
        self.sock.settimeout(self.reader.read_timeout_s)

    def arrive(self, worker: PanelWorker) -> bool:
        """Read what has come, without waiting: True once the TLS handshake is done and a whole request head
        (with its body, if announced with a length up to PREREAD_BODY_MAX) is here, or its body's deadline has
        passed (to be answered 408); False to wait in the poller for more. Raises (OSError) to close it: not
        TLS, silent or past a deadline before its body, or closed by the client."""
        now = time.monotonic()  # clock-source: a socket deadline
        self.waits_until = None
        sock: Any = self.sock
        sock.setblocking(False)
        if not self.handshaken:
            if not isinstance(sock, ssl.SSLSocket):
                sock = self.sock = gunicorn_sock.ssl_context(self.cfg).wrap_socket(
                    sock, server_side=True, suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
                    do_handshake_on_connect=False)
                self.deadline = now + worker.handshake_deadline_s
            if self.deadline is not None and now > self.deadline:
                raise TimeoutError("the TLS handshake took longer than its deadline")
            try:
                sock.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                self.waits_until = self._waits(now, worker)
                return False
            self.handshaken = True
        if self.pre is None:                     # a request begins (its head's deadline from its first octet)
            self.pre = bytearray(self.parser.unreader.take_buffered() if self.parser is not None else b"")
            self.head_s = worker.head_deadline_s
            self.deadline = None
            self.idle_until = now + worker.read_timeout_s   # its first octet within the read timeout, in all
            self.head_end, self.body_read, self.in_body, self.expired = None, 0, False, False
            self.continued = False
            self.scanned = self.head_len = 0
        reads = 0
        while True:
            now = time.monotonic()  # clock-source: a socket deadline
            if self.pre and self.deadline is None:
                self.deadline = now + self.head_s        # the head's deadline runs from its first octet
            if not self.pre and now > self.idle_until:
                # (TLS records with no data, a key update say, do not make it wait longer)
                raise TimeoutError("no request within the read timeout")
            if self._whole(now):
                return True
            if self.expects and not self.continued:
                # The client waits to be asked for its body: asked now, the body is read here like any other
                # (the thread's parser then does not ask again).
                sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                self.continued = True
            if self.expired:
                return True                      # the body's deadline passed: a thread answers 408
            if self.deadline is not None and now > self.deadline:
                if self.in_body:
                    return True
                raise TimeoutError("the request head took longer than its deadline")
            if reads >= ARRIVE_READS and not sock.pending():
                self.waits_until = self._waits(now, worker)    # its turn is over: others' come first
                return False
            reads += 1
            try:
                data = sock.recv(16384)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                self.waits_until = self._waits(now, worker)
                return False
            if not data:
                raise ConnectionResetError("closed by the client before its request was read")
            self.pre += data

    def _waits(self, now: float, worker: PanelWorker) -> float:
        """How long it may wait in the poller now: the read timeout, and never past the stage's deadline (nor,
        before its first octet, the bound on that)."""
        silent = now + worker.read_timeout_s
        if self.deadline is None:
            return min(silent, self.idle_until) if self.handshaken else silent
        return min(self.deadline, silent)

    def _whole(self, now: float) -> bool:
        """Whether the request read so far is whole enough for a thread: its head, and its body if short."""
        pre = self.pre
        assert pre is not None
        if self.head_end is None:
            # Only what came since the last look is searched (from 3 octets before it, for a CR LF CR LF or a
            # line end split between reads): a head trickled an octet at a time costs its length, not its square.
            start = max(0, self.scanned - 3)
            end = pre.find(b"\r\n\r\n", start)
            if _ODD_EOL.search(pre, start, end + 1 if end >= 0 else len(pre)) is not None:
                raise _MalformedHeadError("a line of the request head not ended by CR LF")
            self.scanned = len(pre)
            if end < 0:
                return len(pre) > HEAD_MAX           # a head that long: the parser refuses it at once
            self.head_len = end + 4
            self.head_end = now
            head = bytes(pre[:end])
            length = _body_length(head)
            if length is None:                     # none, chunked, too long or unclear: the thread's to read
                return True
            self.in_body = True
            self.want = end + 4 + length
            self.expects = length > 0 and _expects_continue(head)
        self.body_read = len(pre) - self.head_len
        self.deadline = self.head_end + self.head_s + self.body_read / BODY_MIN_RATE
        return len(pre) >= self.want

    def hand_over(self) -> None:
        """What :meth:`arrive` read, to the request parser; the next request starts afresh."""
        if self.pre is not None:
            self.parser.unreader.unread(bytes(self.pre))
        self.pre = None

    def grace_end(self, grace_s: float) -> float:
        """When the body's grace ends: from the end of its head, plus what arrive read of the body at the minimum
        rate (so the thread's own reads are paced as if it had read those too); past already when the body's
        deadline passed in the poller."""
        if self.expired:
            return 0.0
        start = self.head_end if self.head_end is not None else time.monotonic()  # clock-source: socket deadline
        return start + grace_s + self.body_read / BODY_MIN_RATE


class _DeadlineReader:
    """The request parser's view of a connection: each read waits at most the read timeout, and never past the
    deadline (when set), however steadily the bytes trickle."""

    def __init__(self, sock: Any, read_timeout_s: float) -> None:
        self.sock = sock
        self.read_timeout_s = read_timeout_s
        self._deadline: float | None = None
        self._paced: tuple[float, float] | None = None     # (deadline with nothing read, bytes a second)
        self._received = 0

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @deadline.setter
    def deadline(self, at: float | None) -> None:
        """A fixed deadline (the head's), or None for none: ends any pacing."""
        self._deadline = at
        self._paced = None

    def pace(self, grace_end: float, rate: float) -> None:
        """From now the deadline is `grace_end` plus the bytes read since at `rate` bytes a second."""
        self._paced = (grace_end, rate)
        self._received = 0
        self._deadline = grace_end

    def recv(self, size: int) -> bytes:
        if self._deadline is None:
            return bytes(self.sock.recv(size))
        if self._paced is not None:
            grace_end, rate = self._paced
            self._deadline = grace_end + self._received / rate
        left = self._deadline - time.monotonic()  # clock-source: a socket deadline
        if left <= 0:
            raise TimeoutError("the request took longer than its deadline")
        self.sock.settimeout(min(self.read_timeout_s, left))
        try:
            data = bytes(self.sock.recv(size))
        finally:
            self.sock.settimeout(self.read_timeout_s)
        self._received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _body_length(head: bytes) -> int | None:
    """The body length a request head announces, if it is one to read before the request gets a thread: a single
    Content-Length of at most PREREAD_BODY_MAX and no Transfer-Encoding (else None: the parser decides)."""
    lengths = []
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            lengths.append(value.strip())
    if len(lengths) != 1 or not lengths[0].isdigit():
        return None if lengths else 0
    length = int(lengths[0])
    return length if length <= PREREAD_BODY_MAX else None


class _MalformedHeadError(ValueError):
    """A request head the panel refuses before any parser sees it."""


BAD_HEAD_ANSWER = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

_ODD_EOL = re.compile(rb"(?<!\r)\n|\r(?=[^\n])")
"""A line end the pre-read does not take: LF without CR, or CR before anything but LF."""


def _expects_continue(head: bytes) -> bool:
    """Whether an HTTP/1.1 head asks for 100 Continue (as the parser reads it: the value exactly, in any case)."""
    line, _, rest = head.partition(b"\r\n")
    if not line.endswith(b"HTTP/1.1"):
        return False
    for hline in rest.split(b"\r\n"):
        name, sep, value = hline.partition(b":")
        if sep and name.strip().lower() == b"expect" and value.strip().lower() == b"100-continue":
            return True
    return False


def _quiet_timeouts(record: logging.LogRecord) -> bool:
    """Drop gunicorn's traceback for a connection closed on its read timeout: that is the design, not an error."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, TimeoutError)


class PanelArbiter(Arbiter):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's arbiter that remembers why it stops, for the ``stop`` audit row (gunicorn's on_exit hook
    is given the arbiter, not the reason)."""

    stop_reason: str | None = None
    exit_status: int = 0

    def handle_term(self) -> None:
        self.stop_reason = "SIGTERM"
        super().handle_term()

    def handle_int(self) -> None:
        self.stop_reason = "SIGINT"
        super().handle_int()

    def handle_quit(self) -> None:
        self.stop_reason = "SIGQUIT"
        super().handle_quit()

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        if reason is not None:
            self.stop_reason = reason
        self.exit_status = exit_status
        super().halt(reason, exit_status)


def audit_server(panel_dir: Path, log: Any, action: str, detail: Mapping[str, Any], outcome: str = "ok") -> None:
    """One audit row of the server's own (no user, no remote), written by the arbiter. The arbiter's
    database connections are closed after it, so none is carried into a worker it forks. A row that
    cannot be written is logged, and the panel goes on."""
    from sqlalchemy.exc import SQLAlchemyError

    from appliance.web import accounts

    try:
        db = accounts.open_db(panel_dir)
        try:
            accounts.audit(panel_dir, user=None, remote=None, action=action, outcome=outcome, detail=detail)
        finally:
            db.engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        log.error("cannot write the %s row to the audit log: %s", action, exc)


def listening_at(server: Any) -> str:
    """The addresses the arbiter listens on (the port bound, where 0 was asked), comma-separated."""
    addresses = []
    for listener in server.LISTENERS:
        address = listener.getsockname()
        addresses.append(format_listen(str(address[0]), int(address[1])) if isinstance(address, tuple)
                         else str(address))
    return ",".join(addresses)


class PanelServer(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's arbiter with our app object and our settings, no command line or config file."""

    def __init__(self, app: Any, options: Mapping[str, Any]) -> None:
        self.application = app
        self.options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        settings = self.cfg.settings
        for key, value in self.options.items():
            if key in settings:  # a setting this gunicorn does not know is left out, not fatal
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application

    def run(self) -> None:
        try:
            PanelArbiter(self).run()
        except RuntimeError as exc:      # as gunicorn's own run: a bad setting
            print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
            sys.exit(1)


def worker_class(read_timeout_s: float, head_deadline_s: float = HEAD_DEADLINE_S) -> type[PanelWorker]:
    """PanelWorker with this read timeout and request head deadline."""
    if not read_timeout_s > 0:
        raise PanelError(f"the read timeout must be more than 0 s, not {read_timeout_s}")
    if not head_deadline_s > 0:
        raise PanelError(f"the request head deadline must be more than 0 s, not {head_deadline_s}")
    if (read_timeout_s, head_deadline_s) == (PanelWorker.read_timeout_s, PanelWorker.head_deadline_s):
        return PanelWorker
    return type("PanelWorker", (PanelWorker,), {"read_timeout_s": float(read_timeout_s),
                                                "head_deadline_s": float(head_deadline_s)})


def gunicorn_options(bind: str, certfile: Path, keyfile: Path, fingerprint: str,
                     read_timeout_s: float = READ_TIMEOUT_S, notes: Sequence[str] = (),
                     panel_dir: Path | None = None, head_deadline_s: float = HEAD_DEADLINE_S) -> dict[str, Any]:
    """The gunicorn settings the panel runs with; `notes` are logged at start after the fingerprint.
    With `panel_dir`, the start and the stop are audited there (the module's docstring)."""

    def on_starting(server: Any) -> None:
        server.log.info(FINGERPRINT_LOG, fingerprint)
        for note in notes:
            server.log.info("%s", note)

    def when_ready(server: Any) -> None:
        if panel_dir is not None:
            audit_server(panel_dir, server.log, "start",
                         {"listen": listening_at(server), "fingerprint": fingerprint, "pid": server.pid})

    def on_exit(server: Any) -> None:
        if panel_dir is None:
            return
        status = int(getattr(server, "exit_status", 0) or 0)
        detail: dict[str, Any] = {"reason": getattr(server, "stop_reason", None), "pid": server.pid}
        if status:
            detail["exit_status"] = status
        audit_server(panel_dir, server.log, "stop", detail, outcome="error" if status else "ok")

    return {
        "bind": [bind],
        "workers": 1,
        "worker_class": worker_class(read_timeout_s, head_deadline_s),
        "threads": THREADS,
        "certfile": str(certfile),
        "keyfile": str(keyfile),
        "on_starting": on_starting,
        "when_ready": when_ready,
        "on_exit": on_exit,
        "proc_name": "cicbox-panel",
        # Logs go to stderr, so to the journal under systemd.
        "errorlog": "-",
        "loglevel": "info",
        "accesslog": None,
        # No runtime control socket: it would be written under $HOME, which the unit hides.
        "control_socket_disable": True,
        # The worker is replaced if its main loop stops; requests to the engine time out well before this.
        "timeout": 30,
        "keepalive": 5,
        "limit_request_fields": HEAD_FIELDS,
        "limit_request_field_size": HEAD_FIELD_SIZE,
        "graceful_timeout": 5,
    }


@dataclass(frozen=True)
class Listen:
    """Where the panel serves: the address to bind (or the one systemd bound) and the names browsers may use."""

    host: str
    port: int
    names: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return format_listen(self.host, self.port)


def resolve_listen(listen: str | None, conf: PanelConf | None = None) -> Listen:
    """The command line's --listen, else panel.conf's ``listen =``, else 127.0.0.1:8443; systemd's socket wins."""
    conf = conf if conf is not None else read_conf()
    activated = systemd_listen_address()
    if activated is not None:
        host, port = activated
    else:
        host, port = parse_listen(listen or conf.listen or DEFAULT_LISTEN)
    return Listen(host, port, tuple(conf.names))


def check_free(where: Listen) -> None:
    """Refuse an address another process holds (gunicorn would retry it for seconds, then exit 1): a trial bind,
    as gunicorn binds (SO_REUSEADDR), closed at once. Not done on a socket systemd passed."""
    if systemd_listen_address() is not None:
        return
    family = socket.AF_INET6 if ":" in where.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((where.host, where.port))
            sock.listen(1)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PanelError(f"cannot listen on {where.text}: the address is in use "
                                 "(another panel, or another program, listens there)") from None
            raise PanelError(f"cannot listen on {where.text}: {exc.strerror or exc}") from None


def build_app(state_dir: Path, panel_dir: Path, where: Listen, extra: Mapping[str, Any] | None = None) -> Any:
    """The panel app for this start: the command line's directories and address over the instance config's."""
    overrides: dict[str, Any] = {"STATE_DIR": str(state_dir), "PANEL_DIR": str(panel_dir), "LISTEN": where.text}
    if where.names:   # panel.conf's names; else the instance config's, if it has any
        overrides["PANEL_NAMES"] = list(where.names)
    app = create_app(overrides={**overrides, **(extra or {})})
    app.wsgi_app = close_after_event_streams(app.wsgi_app)  # type: ignore[method-assign]
    return app


def close_after_event_streams(wsgi_app: Any) -> Any:
    """`wsgi_app`, with the connection of an event stream closed when the stream ends (``end`` once a session is
    over, a logout, a disabled account), not kept alive for the next request: a client reading the stream sees
    it end at once, not after the keep-alive time. (An application's ``Connection: close`` header is dropped
    by gunicorn as hop-by-hop; its response object, whose bound start_response this is, is told instead.)"""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if any(k.lower() == "content-type" and v.startswith("text/event-stream") for k, v in headers):
                force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return app


def setup_code_note(panel_dir: Path, where: Listen) -> str | None:
    """The line that tells the first installer the setup code (made now if there is none), or None once an
    installer exists (or in a build without setup codes)."""
    import importlib

    from appliance.web import accounts

    try:
        setupcode = importlib.import_module("appliance.web.setupcode")
    except ModuleNotFoundError:
        return None
    if accounts.installer_exists(panel_dir):
        return None
    code = setupcode.ensure_setup_code(panel_dir)
    unspecified = where.host in ("0.0.0.0", "::")
    url = f"https://{format_listen(socket.gethostname(), where.port) if unspecified else where.text}/setup"
    return (f"no installer yet: open {url} and type the setup code {code} "
            "(`cicbox panel setup-code` prints it again)")


def run_panel(state_dir: Path, panel_dir: Path | None = None, listen: str | None = None,
              read_timeout_s: float = READ_TIMEOUT_S, head_deadline_s: float = HEAD_DEADLINE_S) -> None:
    """Serve the panel for the engine in `state_dir` over HTTPS until stopped."""
    from appliance.web import tls

    worker_class(read_timeout_s, head_deadline_s)   # a bad timeout is refused before anything is made
    where = resolve_listen(listen)
    check_free(where)
    panel_dir = Path(panel_dir) if panel_dir is not None else Path(state_dir) / "panel"
    panel_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    certfile, keyfile = tls.ensure_pair(panel_dir, where.host)
    fingerprint = tls.fingerprint(tls.load_cert(certfile))
    app = build_app(state_dir, panel_dir, where, {"TLS_FINGERPRINT": fingerprint})
    note = setup_code_note(panel_dir, where)
    PanelServer(app, gunicorn_options(where.text, certfile, keyfile, fingerprint, read_timeout_s,
                                      [note] if note else [], panel_dir=panel_dir,
                                      head_deadline_s=head_deadline_s)).run()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cicbox panel", description="Serve the web panel over HTTPS.")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/cicbox"),
                   help="the engine's state directory, where control.sock is (default /var/lib/cicbox)")
    p.add_argument("--panel-dir", type=Path,
                   help="the panel's own files: panel.db, tls/, secret_key (default STATE_DIR/panel)")
    p.add_argument("--listen", metavar="ADDR:PORT",
                   help=f"address to serve on (default: panel.conf's listen =, else {DEFAULT_LISTEN})")
    p.add_argument("--read-timeout", type=float, default=READ_TIMEOUT_S, metavar="S",
                   help=f"close a connection silent this long mid-request (default {READ_TIMEOUT_S:g} s)")
    p.add_argument("--head-deadline", type=float, default=HEAD_DEADLINE_S, metavar="S",
                   help="close a connection whose request line and headers take longer than this in all "
                        f"(default {HEAD_DEADLINE_S:g} s)")
    p.add_argument("--die-with-parent", type=int, metavar="PID",
                   help="stop when process PID, the parent that started the panel (the demo), ends")
    return p


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send SIGTERM when the parent ends (prctl PR_SET_PDEATHSIG), however it
    ends; leave now if it already has."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise PanelError(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent_pid:           # the parent ended before the signal was set
        raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.die_with_parent is not None:
            die_with_parent(args.die_with_parent)
        run_panel(args.state_dir, panel_dir=args.panel_dir, listen=args.listen, read_timeout_s=args.read_timeout,
                  head_deadline_s=args.head_deadline)
    except PanelError as exc:
        print(f"cicbox panel: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:   # the panel directory not writable, the address taken...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cicbox panel: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
