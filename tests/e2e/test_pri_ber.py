"""A PRI span under a bit error rate of 1e-3 for 60 s (the line model between the card's framer and
the far end's), the world's far exchange placing calls on it: survival, not success. Nothing raises or
logs an error, calls may fail but each one the engine made has its record, and once the line is clean
the link comes back by itself, a new call connects, and nothing is left over at either end."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from appliance.config.store import ConfigStore
from appliance.engine import Engine
from appliance.world import Caller, World
from appliance.world.exchange import pri_spans
from drivers.sim import SimCard
from tests.e2e.harness import cdrs, site_yaml
from tests.e2e.pri_site import HOTEL_DNIS, pri_site_yaml
from tests.line import LineModel

BER_FROM, BER_MS = 10_000, 60_000


def caller(at: int, i: int, hold_ms: int = 20000) -> Caller:
    return Caller(trunk=None, span="span1", at_ms=at, ani=f"1380013{i:04d}", dnis=HOTEL_DNIS, digits="",
                  hold_ms=hold_ms, patience_ms=30000)


def test_ber_1e3_for_60_s_is_survived_and_the_span_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    text = pri_site_yaml(site_yaml(agents=1), "e1", "pri_cpe")
    (tmp_path / "site.yaml").write_text(text)
    store = ConfigStore(tmp_path)
    store.bootstrap(tmp_path / "site.yaml")
    cur = store.current()
    assert cur is not None
    before = [caller(2000 + 200 * i, i) for i in range(5)]                       # up when the errors start
    during = [caller(BER_FROM + 3000 + 5000 * i, 10 + i) for i in range(10)]      # placed into the errors
    after = caller(BER_FROM + BER_MS + 1000, 99, hold_ms=3000)
    world = World([*before, *during, after], [], zone="cn", pri_spans=pri_spans(cur.config))
    engine = Engine(tmp_path, cur.config, cur.version, clock="virtual", store=store, world=world)
    model = LineModel(1)
    try:
        card = engine.tier_.card
        assert isinstance(card, SimCard)
        card.set_line_model(model.hook_address)
        engine.run_for(BER_FROM)
        span = next(iter(engine.pri.spans.values()))
        assert span.link.dchan == "up" and len(engine.calls) == 5
        model.set(0, 0, ber=1e-3, seed=11)          # both directions
        model.set(0, 1, ber=1e-3, seed=12)
        engine.run_for(BER_MS)
        model.set(0, 0, ber=0.0)
        model.set(0, 1, ber=0.0)
        # once the line is clean the link comes back by itself and the next caller's call connects
        engine.run_for(8000)
        assert span.link.dchan == "up"
        assert after.answered_ms is not None and after.answered_ms - (BER_FROM + BER_MS) < 8000, after
        engine.run_for(40_000)                      # every call over, its hold or its patience run out
        assert engine.calls == {} and engine.call_layer.pri_calls == {} and engine.call_layer.by_trunk == {}
        assert span.control.calls == {}
        assert all(ch.leg is None and not ch.restarting for ch in span.control.channels.values())
        st = span.status()
        assert (st["dchan"], st["calls"], st["b_busy"], st["b_idle"]) == ("up", 0, 0, 30)
        assert world.exchange is not None and all(not e.control.calls for e in world.exchange.ends.values())
    finally:
        engine.close()
    # each call the engine made has its record (the 5 up before the errors among them)
    rows = cdrs(tmp_path)
    made = {c.ani for c in (*before, *during, after) if c.answered_ms is not None}
    assert {r["ani"] for r in rows} >= made and {c.ani for c in before} <= made
    assert after.ani in {r["ani"] for r in rows if r["disposition"] != "rejected"}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
