"""Serve the panel under gunicorn, in this process: ``python -m appliance.web.serve --state-dir DIR``.

Until the panel has accounts it binds loopback addresses only (127.0.0.0/8,
::1, localhost); anything else is refused with :class:`PanelError`.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from appliance.web import PanelError, create_app

LOOPBACK_ONLY = "the panel binds 127.0.0.1 only until accounts exist"
DEFAULT_PORT = 8080


def check_bind(bind: str) -> tuple[str, int]:
    """Split HOST[:PORT] (or [V6][:PORT]) and check HOST is loopback; raise PanelError otherwise.

    The port defaults to 8080. Host names are not resolved: ``localhost`` is the only name accepted.
    """
    text = bind.strip()
    port_text = str(DEFAULT_PORT)
    if text.startswith("["):  # [v6] or [v6]:port
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise PanelError(f"bad bind address {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
        if rest:
            port_text = rest[1:]
    elif text.count(":") == 1:  # v4:port or name:port
        host, _, port_text = text.partition(":")
    else:  # a bare v4 address or name, or a bare v6 address
        host = text
    if not host:
        raise PanelError(f"bad bind address {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    if host.lower() != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise PanelError(LOOPBACK_ONLY) from None
        if not address.is_loopback:
            raise PanelError(LOOPBACK_ONLY)
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise PanelError(f"bad bind address {bind!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def gunicorn_bind(host: str, port: int) -> str:
    """HOST:PORT as gunicorn reads it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


def gunicorn_options(bind: str, workers: int) -> dict[str, Any]:
    """The gunicorn settings the panel runs with."""
    return {
        "bind": [bind],
        "workers": workers,
        "proc_name": "cicbox-panel",
        # Logs go to stderr, so to the journal under systemd.
        "errorlog": "-",
        "accesslog": None,
        # No runtime control socket: it would be written under $HOME, which the unit hides.
        "control_socket_disable": True,
        # A worker stuck on the engine is replaced; requests to the engine time out well before this.
        "timeout": 30,
        "graceful_timeout": 5,
    }


def run_panel(state_dir: Path, bind: str = "127.0.0.1:8080", workers: int = 2) -> None:
    """Serve the panel for the engine in `state_dir` on `bind` (loopback only) until stopped."""
    host, port = check_bind(bind)
    if workers < 1:
        raise PanelError(f"workers must be at least 1, not {workers}")
    # The command line's state directory wins over the instance config's (and PANEL_DIR follows it).
    app = create_app(overrides={"STATE_DIR": str(state_dir)})
    PanelServer(app, gunicorn_options(gunicorn_bind(host, port), workers)).run()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cicbox panel", description="Serve the web panel (loopback only).")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/cicbox"),
                   help="the engine's state directory, where control.sock is (default /var/lib/cicbox)")
    p.add_argument("--bind", default="127.0.0.1:8080", help="HOST:PORT on a loopback address (default 127.0.0.1:8080)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    p.add_argument("--die-with-parent", type=int, metavar="PID",
                   help="stop when process PID, the parent that started the panel (the demo), ends")
    return p


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel send SIGTERM when the parent ends (prctl PR_SET_PDEATHSIG), however it
    ends; leave now if it already has."""
    import ctypes
    import os
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise PanelError(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent_pid:           # the parent ended before the signal was set
        raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.die_with_parent is not None:
            die_with_parent(args.die_with_parent)
        run_panel(args.state_dir, bind=args.bind, workers=args.workers)
    except PanelError as exc:
        print(f"cicbox panel: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
