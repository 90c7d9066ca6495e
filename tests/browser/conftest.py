"""The browser harness: Playwright drives Debian's chromium (/usr/lib/chromium/chromium, from `make setup`;
Playwright never downloads a browser) against the real panel: gunicorn with TLS on a free loopback port,
talking over control.sock to an engine that runs in the test process on the virtual clock, paused: its
control.sock is answered from a thread while the clock stands still, and the test moves it with
``engine.advance(ms)`` (control ``clock.advance``, as ``cicbox clock advance MS`` does).

Fixtures:

``browser`` (session)
    the Playwright ``Browser``; its version is printed once (``browser: Chromium 156...``).
``state_dir``
    the engine's state directory (the test's tmp_path); the panel's files are in ``state_dir/panel``.
``engine``
    an :class:`EngineHandle` on ``tests.web.live_site`` (two trunks, agent 1001; see tests/web/__init__.py),
    paused at 0 ms: ``engine.advance(ms)`` runs that much engine clock and returns where it stands,
    ``engine.request(cmd, **args)`` is any control request, ``engine.site`` the harness Site,
    ``engine.close()`` stops it (the panel then sees no engine; ``engine_for`` can start another on
    the same state directory).
``engine_for``
    a factory: ``engine_for(site)`` serves any ``tests.e2e.harness.Site`` paused the same way (for a test
    that needs another site; use it instead of ``engine``); each is closed at the end of the test.
``panel_server``
    a :class:`PanelServer`: ``url`` (https://127.0.0.1:PORT), ``panel_dir``, ``state_dir``,
    ``fingerprint`` (the logged certificate fingerprint), ``log()``, ``setup_code(new=False)``
    (``cicbox panel setup-code`` run as an installer would: (exit code, stdout)). Starts with no engine
    unless the test asked for ``engine`` first (list ``engine`` before ``panel_server``).
``page``
    a Playwright ``Page`` in a fresh context (the self-signed certificate accepted, 1280x800), closed
    after the test with a last screenshot.
``sign_in``
    ``sign_in(role, name=None, agent=None)`` makes an account of `role` in the panel's panel.db (and an
    installer first, if there is none, so the panel is past its first run), signs ``page`` in through
    the /login form (fields ``username``, ``password``) and returns the account's name; the page is then
    wherever the panel sent it.
``shot``
    ``shot("name")`` saves a screenshot of ``page`` as test-artifacts/<test>/<NN>-<name>.png (git-ignored);
    take one at every step a person would look at.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from appliance.control import ControlClient
from tests.e2e.harness import Site
from tests.web import live_site
from tests.web.panel_proc import ROOT, PanelProcess

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTIFACTS = ROOT / "test-artifacts"
PAUSED_WAIT_S = 0.02
DEFAULT_TIMEOUT_MS = 10_000


class EngineHandle:
    """An engine on the virtual clock, paused, its control.sock answered from a thread of this process."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.engine = site.engine
        self.engine.paused = True
        self.state_dir = site.state
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="engine-control", daemon=True)
        self._thread.start()
        self.closed = False

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.engine.commands.run_advances():
                continue
            self.engine.control.wait(PAUSED_WAIT_S)  # clock-source: how often the paused engine looks at its socket
            self.engine.poll_control()

    def request(self, cmd: str, **args: Any) -> Any:
        """One control request, as the CLI sends it (no time limit: clock.advance may take a while)."""
        with ControlClient(self.state_dir / "control.sock", timeout_s=None) as client:
            return client.request(cmd, **args)

    def advance(self, ms: int) -> int:
        """Run `ms` ms of engine clock (whole control periods); the engine clock's ms afterwards."""
        result = self.request("clock.advance", ms=ms)
        return int(result["tick_ms"])

    @property
    def now_ms(self) -> int:
        return int(self.engine.clock.now_ms)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        self._thread.join(timeout=30)
        self.site.close()


@dataclass
class PanelServer:
    """The panel under test: a real gunicorn + TLS process on a free loopback port."""

    process: PanelProcess

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def panel_dir(self) -> Path:
        return self.process.panel_dir

    @property
    def state_dir(self) -> Path:
        return self.process.state_dir

    @property
    def fingerprint(self) -> str:
        return self.process.fingerprint

    def log(self) -> str:
        return self.process.log()

    def setup_code(self, new: bool = False) -> tuple[int, str]:
        """``cicbox panel setup-code [--new]`` on this panel's directories: (exit code, stdout)."""
        proc = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "panel", "setup-code", "--state-dir", str(self.state_dir),
             "--panel-dir", str(self.panel_dir), *(["--new"] if new else [])],
            capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        )
        return proc.returncode, proc.stdout


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright, request: pytest.FixtureRequest) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
    line = f"browser: Chromium {browser.version} ({CHROMIUM})"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():   # shown in the run's output, not only on failure
            print(f"\n{line}")
    else:
        print(line)
    yield browser
    browser.close()


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CICBOX_PANEL_CONF", str(tmp_path / "panel.conf"))   # not this machine's /etc
    return tmp_path


@pytest.fixture
def engine_for(state_dir: Path) -> Iterator[Callable[[Site], EngineHandle]]:
    handles: list[EngineHandle] = []

    def start(site: Site) -> EngineHandle:
        handle = EngineHandle(site)
        handles.append(handle)
        return handle

    yield start
    for handle in reversed(handles):
        handle.close()


@pytest.fixture
def engine(state_dir: Path, engine_for: Callable[[Site], EngineHandle]) -> EngineHandle:
    return engine_for(live_site(state_dir))


@pytest.fixture
def panel_server(state_dir: Path) -> Iterator[PanelServer]:
    with PanelProcess(state_dir) as process:
        yield PanelServer(process)


@pytest.fixture
def sign_in(page: Page, panel_server: PanelServer) -> Callable[..., str]:
    from urllib.parse import urlsplit

    from appliance.web import accounts

    def do(role: str, name: str | None = None, agent: str | None = None) -> str:
        panel_dir = panel_server.panel_dir
        if not accounts.installer_exists(panel_dir):   # past the first run
            accounts.create_user(panel_dir, "first-installer", "installer", "pw-" + secrets.token_urlsafe(16))
        name = name or f"{role}-{secrets.token_hex(3)}"
        password = "pw-" + secrets.token_urlsafe(16)
        accounts.create_user(panel_dir, name, role, password, agent=agent)
        page.goto(panel_server.url + "/login")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("form:has(input[name=password]) button[type=submit]")
        assert urlsplit(page.url).path != "/login", f"signing in as {name} ({role}) failed at {page.url}"
        return name

    return do


def _test_dir(request: pytest.FixtureRequest) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return ARTIFACTS / Path(str(request.node.path)).stem / name


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    yield page
    try:
        out = _test_dir(request)
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "99-end.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def shot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    out = _test_dir(request)
    if out.exists():
        for old in out.glob("*.png"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    count = [0]

    def take(name: str) -> Path:
        count[0] += 1
        path = out / f"{count[0]:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
