"""systemd's notify protocol, written here in a few lines.

Why not a package: the common one silently drops any message that is not
Latin-1 (a STATUS= with a hotel's name in Chinese would vanish), and it does
not read WATCHDOG_USEC. The protocol is one datagram per message to the
socket named by $NOTIFY_SOCKET (an abstract socket when it starts with '@').
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("cicbox.notify")


class Notifier:
    """Sends READY=1, WATCHDOG=1, STATUS=... to systemd; does nothing outside systemd.

    No notify socket ($NOTIFY_SOCKET unset, or naming a path that is not there, or a socket that
    refuses the message) is a warning, once: the engine runs on without notifications."""

    def __init__(self, address: str | None = None) -> None:
        addr = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._addr = "\0" + addr[1:] if addr.startswith("@") else addr
        self._sock: socket.socket | None = None
        if not self._addr:
            log.warning("no systemd notify socket (NOTIFY_SOCKET is not set): running without readiness "
                        "and watchdog notifications")
        elif not self._addr.startswith("\0") and not os.path.exists(self._addr):
            log.warning("no systemd notify socket at %s (NOTIFY_SOCKET): running without readiness and "
                        "watchdog notifications", self._addr)
        else:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    @staticmethod
    def watchdog_usec() -> int | None:
        """The watchdog period systemd asked for, if any (for this process)."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            value = int(usec)
        except ValueError:
            log.warning("WATCHDOG_USEC=%r is not a number of microseconds: running without the watchdog", usec)
            return None
        return value if value > 0 else None

    def notify(self, **fields: str | int) -> bool:
        """Send one message, e.g. notify(READY=1, STATUS="running"); False if not under systemd."""
        if self._sock is None:
            return False
        text = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            self._sock.sendto(text.encode("utf-8"), self._addr)
        except OSError as exc:
            log.warning("systemd notify socket %s: %s: running without readiness and watchdog notifications",
                        addr_text(self._addr), exc.strerror or exc)
            self.close()
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def addr_text(addr: str) -> str:
    """A notify address as $NOTIFY_SOCKET writes it (an abstract one with '@')."""
    return "@" + addr[1:] if addr.startswith("\0") else addr
