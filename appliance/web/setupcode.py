"""The one-time setup code: the first installer's way in, and the way back when passwords are lost.

Until an installer exists the panel only offers /setup, which asks for this code. It lives in
PANEL_DIR/setup_code (0600): 12 characters from :data:`ALPHABET` (no 0/O/1/I, so it reads back
from a console without doubt), made once and reused until /setup uses it, then deleted.
``cicbox panel setup-code`` prints it; ``--new`` makes a fresh one even when an installer exists,
which allows exactly one more installer (audited).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

from appliance.web.files import write_private

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 12
FILE_NAME = "setup_code"


def code_path(panel_dir: Path) -> Path:
    return Path(panel_dir) / FILE_NAME


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def read_setup_code(panel_dir: Path) -> str | None:
    """The pending setup code, or None when there is none."""
    try:
        text = code_path(panel_dir).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return text if len(text) == LENGTH and all(c in ALPHABET for c in text) else None


def _write(panel_dir: Path, code: str) -> None:
    panel_dir = Path(panel_dir)
    panel_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(code_path(panel_dir), (code + "\n").encode("ascii"))


def ensure_setup_code(panel_dir: Path) -> str:
    """The pending setup code, made (0600) if there is none yet."""
    code = read_setup_code(panel_dir)
    if code is None:
        code = new_code()
        _write(panel_dir, code)
    return code


def startup_setup_code(panel_dir: Path) -> str | None:
    """What the panel prints at start: the setup code while no installer exists (made if needed),
    a pending ``--new`` code, or None."""
    from appliance.web import accounts

    if not accounts.installer_exists(Path(panel_dir)):
        return ensure_setup_code(panel_dir)
    return read_setup_code(panel_dir)


LOCK_NAME = "setup.lock"


@contextlib.contextmanager
def setup_lock(panel_dir: Path) -> Iterator[None]:
    """Held across a /setup's code check, its installer's creation and the code's deletion (an exclusive
    ``flock`` on PANEL_DIR/setup.lock, so threads and processes alike take turns): one code, one installer."""
    fd = os.open(Path(panel_dir) / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)              # closing the descriptor drops the lock


def restore_setup_code(panel_dir: Path, code: str) -> None:
    """Put back a code taken by a /setup that then failed (the name was taken meanwhile)."""
    _write(panel_dir, code)


def setup_code_matches(panel_dir: Path, given: str) -> bool:
    """Whether `given` (case and spaces/dashes ignored) is the pending setup code."""
    code = read_setup_code(panel_dir)
    typed = "".join(ch for ch in given.upper() if ch not in " -\t")
    return code is not None and hmac.compare_digest(typed.encode("utf-8", "replace"), code.encode("ascii"))


def consume_setup_code(panel_dir: Path) -> None:
    """Delete the setup code: it was used."""
    code_path(panel_dir).unlink(missing_ok=True)


def setup_code_main(panel_dir: Path, new: bool) -> int:
    """``cicbox panel setup-code [--new]``: print the setup code alone on a line (exit 0).

    Once an installer exists, only ``--new`` makes one (allowing one more installer; audited);
    without it the exit is 1 with a message on stderr."""
    from appliance.web import accounts

    panel_dir = Path(panel_dir)
    panel_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Under /setup's lock: a code made while a /setup is using the old one is neither deleted by it nor
    # printed as the way in while that /setup makes its installer.
    with setup_lock(panel_dir):
        exists = accounts.installer_exists(panel_dir)
        if exists and not new:
            pending = read_setup_code(panel_dir)
            hint = " (a --new code is pending: it is printed only when made)" if pending else ""
            print(f"an installer exists already, so there is no setup code{hint}; "
                  "`cicbox panel setup-code --new` makes one that allows one more installer", file=sys.stderr)
            return 1
        if new:
            code = new_code()
            _write(panel_dir, code)
            accounts.audit(panel_dir, user=None, remote="console", action="setup_code", target=None,
                           outcome="ok", detail={"new": True, "installer_exists": exists})
        else:
            code = ensure_setup_code(panel_dir)
    print(code)
    return 0
