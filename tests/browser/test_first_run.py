"""First run in a real browser: / goes to /setup; a wrong setup code is refused; the right one (from
`cicbox panel setup-code`) makes the installer and signs them in; then `cicbox panel setup-code` exits 1.

Form fields (the accounts contract): setup_code, username, password, password_confirm."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from appliance.web import create_app
from tests.browser.conftest import EngineHandle, PanelServer

WRONG_CODE = "ABCDEFGHJKLM"   # 12 characters of the code's alphabet, not the code (one in 31^12 it is)


def _setup_exists() -> bool:
    with tempfile.TemporaryDirectory(prefix="cicbox-probe-") as tmp:
        app = create_app({"TESTING": True, "STATE_DIR": tmp})
        return "account.setup" in app.view_functions


def _fill_setup(page: Page, code: str, username: str, password: str) -> None:
    page.fill("input[name=setup_code]", code)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.fill("input[name=password_confirm]", password)


@pytest.mark.skipif(not _setup_exists(), reason="the accounts part's /setup is not on this branch yet")
def test_first_run_makes_the_installer_with_the_setup_code(engine: EngineHandle, panel_server: PanelServer,
                                                           page: Page, shot: Callable[[str], Path]) -> None:
    page.goto(panel_server.url + "/")
    assert urlsplit(page.url).path == "/setup"               # no installer yet: everything leads to /setup
    shot("setup page")
    password = "pw-" + secrets.token_urlsafe(16)

    code_rc, code_out = panel_server.setup_code()
    assert code_rc == 0
    code = code_out.strip()
    assert len(code) == 12 and code != WRONG_CODE

    _fill_setup(page, WRONG_CODE, "installer", password)
    shot("wrong code typed")
    with page.expect_navigation():
        page.click("form:has(input[name=password]) button[type=submit]")
    assert urlsplit(page.url).path == "/setup"               # refused: still the setup form
    assert page.locator("input[name=setup_code]").count() == 1
    shot("wrong code refused")
    assert panel_server.setup_code() == (0, code_out)        # no installer made; the same code still valid

    _fill_setup(page, code, "installer", password)
    shot("right code typed")
    with page.expect_navigation():
        page.click("form:has(input[name=password]) button[type=submit]")
    assert urlsplit(page.url).path not in ("/setup", "/login")   # the installer exists and is signed in
    shot("signed in")
    rc, out = panel_server.setup_code()
    assert rc == 1 and out.strip() == ""                     # no code any more: an installer exists
    page.goto(panel_server.url + "/setup")
    assert urlsplit(page.url).path != "/setup" or page.locator("input[name=setup_code]").count() == 0
    shot("setup closed")
