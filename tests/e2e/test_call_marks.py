"""A period's call marks come from the calls that changed, not from a look at every call: through
calls that arrive, queue, ring an agent, are answered, withdrawn and end, each period's marks are
exactly those the rule names (a call that is new, or whose queue, queue entry, answer or agent
changed since its last mark), in the calls' order; a refresh is one record after them, and the
stored marks then all say that time."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from appliance.storage.cdr import CallMark, MarksRefreshed
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml


def test_each_periods_marks_are_those_of_the_calls_that_changed(tmp_path: Path) -> None:
    callers = [Caller(trunk=0, at_ms=1000, press_after_ms=500, hold_ms=6000),
               Caller(trunk=1, at_ms=1200, press_after_ms=500, hold_ms=6000),
               Caller(trunk=2, at_ms=1400, press_after_ms=500, patience_ms=12000)]
    # The second agent's phone rings out once (no answer) before it answers the next offer.
    phones = [PhoneScript(port=3, agent="1001", login_at_ms=0, answer_after_ms=1000),
              PhoneScript(port=4, agent="1002", login_at_ms=200, answer_after_ms=20000)]
    site = Site(tmp_path, site_yaml(agents=2, trunks=3, ring_timeout_ms=4000), callers, phones, keep_audio=False)
    try:
        eng = site.engine
        layer = eng.call_layer
        said: dict[str, tuple[Any, ...]] = {}
        real = layer.take_marks
        marked: list[list[str]] = []
        refreshed: list[int] = []
        last_mark: dict[str, int] = {}

        def take_marks(now_ms: int, refresh: bool) -> Any:
            want = []
            for call in layer.live.values():             # the rule, over every call in arrival order
                now_says = (call.queue, call.queue_entry_ms, call.answer_ms, call.agent)
                if said.get(call.id) != now_says:
                    said[call.id] = now_says
                    want.append(call.id)
            got = real(now_ms, refresh)
            marks = [m for m in got if isinstance(m, CallMark)]
            assert [m.call_id for m in marks] == want, now_ms
            assert all(m.mark_ms == now_ms for m in marks)
            assert [type(m) for m in got[len(marks):]] == ([MarksRefreshed] if refresh else []), now_ms
            if refresh:
                refreshed.append(now_ms)
            if want:
                marked.append(want)
            last_mark.update(dict.fromkeys(want, now_ms))
            return got

        layer.take_marks = take_marks       # type: ignore[method-assign]
        site.run(9000)
        # The calls up: each stored mark says the last refresh's time, or its own mark's if later.
        with sqlite3.connect(eng.state_dir / "cicbox.db") as con:
            stored = dict(con.execute("SELECT call_id, mark_ms FROM live_call").fetchall())
        assert len(layer.live) >= 2 and refreshed
        assert stored == {c: max(refreshed[-1], last_mark[c]) for c in layer.live}
        assert any(last_mark[c] < refreshed[-1] for c in layer.live)
        site.run(30000 - 9000)
        assert all(c.hung_up_ms is not None for c in callers)
        # Three calls: the first and second answered by 1001 in turn, the third abandoned after 1002 let
        # it ring out (withdrawn, 1002 not ready).
        assert sorted((r.call_id[-1], r.disposition, r.agent) for r in eng.released_log) == [
            ("1", "answered", "1001"), ("2", "answered", "1001"), ("3", "abandoned", None)]
        assert eng.acd.agents["1002"].state.value == "not_ready"
        assert {c for m in marked for c in m} == {r.call_id for r in eng.released_log}
    finally:
        site.close()
