"""The wallboard's cards show every column: none is clipped (scrolled out of its card) at a common width."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page

from tests.browser.conftest import EngineHandle, PanelServer
from tests.browser.test_wallboard import agent_site, latest, open_wallboard
from tests.e2e.harness import Site


def test_the_queues_card_shows_all_its_columns(state_dir: Path, engine_for: Callable[[Site], EngineHandle],
                                               panel_server: PanelServer, page: Page,
                                               sign_in: Callable[..., str]) -> None:
    engine = engine_for(agent_site(state_dir, [], ("1001",)))
    engine.advance(2000)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in("viewer")
    open_wallboard(page, panel_server)
    latest(page, panel_server)
    card = page.locator("section:has(#queues)")
    widths = card.evaluate("s => [s.scrollWidth, s.clientWidth]")
    assert widths[0] <= widths[1], f"the Queues card scrolls: {widths}"
    header = page.locator("section:has(#queues) th", has_text="abandoned today")
    box, card_box = header.bounding_box(), card.bounding_box()
    assert box is not None and card_box is not None
    assert box["x"] + box["width"] <= card_box["x"] + card_box["width"]
