"""The harness itself, in a real browser: the panel is HTTPS only (plain HTTP gets no page), and the engine it
talks to stands still until the test advances it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from tests.browser.conftest import EngineHandle, PanelServer


def test_the_panel_is_https_only_and_the_engine_moves_when_told(engine: EngineHandle, panel_server: PanelServer,
                                                                 page: Page, shot: Callable[[str], Path]) -> None:
    response = page.goto(panel_server.url + "/static/panel.css")
    assert response is not None and response.status == 200
    assert response.security_details() is not None        # it came over TLS
    shot("static over https")
    plain = panel_server.url.replace("https://", "http://") + "/"
    with pytest.raises(PlaywrightError):                    # the browser gets no page at all
        page.goto(plain)
    shot("plain http refused")
    assert engine.now_ms == 0                               # paused: the clock stands still
    now = engine.advance(1000)                              # whole control periods: at least 1000 ms
    assert 1000 <= now < 1100
    assert engine.request("status")["tick_ms"] == now == engine.now_ms
