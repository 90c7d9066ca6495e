"""Reports from the event log of a running engine (sim card, virtual time; issue 11, Acceptance).

- After a scripted run (answered, abandoned and short-abandoned callers), ``cicbox report queue|agent
  --json`` over the stored events alone equals the live ``cicbox queues|agents --json`` of the engine
  paused at the same instant, and the hand-computed service level, ASA and abandon rate.
- Each CDR equals its call's fold over the stored events, for a caller overflowed from one queue to
  another and for a caller waiting in two queues at once.
- ``engine.stats`` and the demo's ``--json`` summary (``mean_wait_s`` = ASA over all queues) say what the
  report says for the same run.

Expected values are worked out by hand from the script: a trunk answers on the first ring in the tick
the caller comes (its queue entry: straight to the queue, no IVR), so a wait is the tick the agent's
phone went off hook (as the world saw it) less the caller's arrival, and an abandon's is the tick the
caller hung up less its arrival.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from appliance import cli
from appliance.figures import fold_call
from appliance.storage import read_events
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, by_call, cdrs_by_id

EPOCH = dt.datetime(2026, 3, 2, 9, 0, 0)
SL_MS = 10_000
SHORT_MS = 5_000
LIVE_ONLY = {"waiting", "longest_wait_ms", "agents", "state", "retired"}   # `cicbox queues`' now, not figures
AGENT_LIVE_ONLY = {"name", "state", "since_ms", "state_since_ms", "pending", "reason", "queue", "call_id", "phone",
                   "available"}


def site_text(trunks: int, queues: str, agents: list[tuple[str, str]], routes: list[str]) -> str:
    """`trunks` trunks answering on ring 1 without caller ID, each routed as `routes` says; a phone
    per agent (number, phone name); the queues given (YAML lines, indented 2)."""
    trunk_lines = "\n".join(f"  - {{kind: fxo, name: trunk{i + 1}, number: '07558888{i + 1:04d}', callerid: none, "
                            f"answer_on_ring: 1}}" for i in range(trunks))
    phones = "\n".join(f"  - {{kind: fxs, name: {phone}, extension: '80{i + 1:02d}'}}"
                       for i, (_, phone) in enumerate(agents))
    agent_lines = "\n".join(f"  - {{number: '{n}', name: 'Agent {n}', phone: {phone}}}" for n, phone in agents)
    route_lines = "\n".join(f"  - {{trunk: trunk{i + 1}, {r}}}" for i, r in enumerate(routes))
    return textwrap.dedent("""\
        site: {name: Report Hotel, zone: cn, law: alaw, epoch: "2026-03-02T09:00:00"}
        card: {backend: sim, k: 5}
        ports:
        TRUNKS
        PHONES
        spans: []
        routes:
        ROUTES
        ivrs:
          main: {greeting: welcome, language: en, menu: {'1': {queue: front_desk}}}
        queues:
        QUEUES
        agents:
        AGENTS
        """).replace("TRUNKS", trunk_lines).replace("PHONES", phones).replace("ROUTES", route_lines) \
        .replace("QUEUES", textwrap.indent(textwrap.dedent(queues), "  ")).replace("AGENTS", agent_lines)


def caller(trunk: int, at_ms: int, **kw: Any) -> Caller:
    return Caller(trunk=trunk, at_ms=at_ms, ani=f"139{trunk:02d}{at_ms:08d}", cid="none", digits="",
                  press_after_ms=0, **kw)


def stored_cdrs(state: Path) -> dict[str, dict[str, Any]]:
    return cdrs_by_id(state / "cicbox.db")


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


# -- one queue, one agent: answered, abandoned, short-abandoned -----------------------------------------

ONE_QUEUE = f"""\
front_desk: {{agents: ['1001'], ring_timeout_ms: 15000, sl_threshold_ms: {SL_MS}, short_abandon_ms: {SHORT_MS}}}
"""


def scripted() -> tuple[list[Caller], PhoneScript]:
    """One agent (its phone answers 1 s after it rings). A talks 10 s; B, then E wait for the agent; C gives
    up after 3 s (a short abandon), D after 7 s (abandoned, within the service level), G after 12 s
    (abandoned, past it); F comes when the agent is free and talks 20 s."""
    callers = [caller(0, 5000, hold_ms=10_000),                      # A: answered at once
               caller(1, 6000, hold_ms=5000),                        # B: answered after A
               caller(2, 7000, patience_ms=3000),                    # C: short abandon
               caller(3, 8000, patience_ms=7000),                    # D: abandoned at 7 s
               caller(4, 9000, hold_ms=3000, patience_ms=60_000),    # E: answered after B
               caller(5, 30_000, hold_ms=20_000),                    # F: answered at once
               caller(2, 31_500, patience_ms=12_000)]                # G: abandoned at 12 s
    return callers, PhoneScript(port=6, agent="1001", login_at_ms=0, answer_after_ms=1000)


def live_and_stored(site: Site, capsys: pytest.CaptureFixture[str]) -> tuple[Any, ...]:
    """`cicbox queues|agents --json` of the paused engine, and `cicbox report queue|agent --json --to NOW`
    (the window [09:00, NOW) with 15-minute intervals) over the stored events, at the same instant."""
    state = str(site.state)
    now = EPOCH + dt.timedelta(milliseconds=site.engine.clock.now_ms)
    window = ["--from", EPOCH.isoformat(), "--to", now.isoformat(), "--interval", "15m", "--state-dir", state]
    with site.serving():
        queues = cli_json(capsys, "queues", "--json", "--state-dir", state)
        agents = cli_json(capsys, "agents", "--json", "--state-dir", state)
    report_q = cli_json(capsys, "report", "queue", "--json", *window)
    report_a = cli_json(capsys, "report", "agent", "--json", *window)
    return queues, agents, report_q, report_a


def assert_live_equals_report(queues: Any, agents: Any, report_q: Any, report_a: Any) -> None:
    assert {n: {k: v for k, v in q.items() if k not in LIVE_ONLY} for n, q in queues["queues"].items()} == \
        report_q["queues"]
    assert {n: {k: v for k, v in a.items() if k not in AGENT_LIVE_ONLY} for n, a in agents["agents"].items()} == \
        report_a["agents"]
    # The current 15-minute interval (09:00-09:15) live equals the report's one interval.
    (rq,) = report_q["intervals"]
    (ra,) = report_a["intervals"]
    assert (queues["intervals"][-1]["start"], rq["start"]) == ("2026-03-02T09:00:00", "2026-03-02T09:00:00")
    assert queues["intervals"][-1]["queues"] == rq["queues"]
    assert agents["intervals"][-1]["agents"] == ra["agents"]


def test_reports_from_the_log_equal_live_figures_and_hand_computed_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    callers, phone = scripted()
    a, b, c, d, e, f, g = callers
    site = Site(tmp_path, site_text(6, ONE_QUEUE, [("1001", "phone1")], ["queue: front_desk"] * 6),
                callers, [phone], keep_audio=False)
    try:
        site.run(40_000)          # F talks (since its answer), G waits
        assert site.engine.clock.now_ms == 40_000
        queues, agents, report_q, report_a = live_and_stored(site, capsys)
        mid_stats = dict(site.engine.stats)
        site.run(20_000)          # everyone has gone
        end = live_and_stored(site, capsys)
        stats = dict(site.engine.stats)
    finally:
        site.close()
    # What the world saw: the agent answered A, B, E, F in that order; C, D, G hung up unanswered.
    assert [x.connected_ms is not None for x in callers] == [True, True, False, False, True, True, False]
    assert phone.answered == [a.connected_ms, b.connected_ms, e.connected_ms, f.connected_ms]
    wait = {x: (x.connected_ms if x.connected_ms is not None else x.hung_up_ms) - x.at_ms   # type: ignore[operator]
            for x in callers}
    assert wait[c] < SHORT_MS <= wait[d] <= SL_MS < wait[g]
    assert wait[a] <= SL_MS and wait[f] <= SL_MS and wait[b] > SL_MS and wait[e] > SL_MS
    talk = {x: x.hung_up_ms - x.connected_ms for x in (a, b, e, f)}    # type: ignore[operator]
    assert [talk[x] for x in (a, b, e)] == [10_000, 5000, 3000]

    # At 40 s: G still waits (it counts as offered), F's talk so far counts in AHT.
    assert_live_equals_report(queues, agents, report_q, report_a)
    fd = queues["queues"]["front_desk"]
    assert (fd["waiting"], fd["longest_wait_ms"]) == (1, 40_000 - g.at_ms)
    answered_waits = [wait[a], wait[b], wait[e], wait[f]]
    f_talk_so_far = 40_000 - f.connected_ms        # type: ignore[operator]
    assert {k: fd[k] for k in ("offered", "answered", "abandoned", "short_abandoned", "answered_within_sl",
                               "sl_pct", "asa_ms", "aht_ms", "max_wait_ms")} == {
        "offered": 6, "answered": 4, "abandoned": 1, "short_abandoned": 1, "answered_within_sl": 2,
        "sl_pct": 50.0,                                   # 2 / (4 + 1 - 1: D gave up within the SL)
        "asa_ms": round(sum(answered_waits) / 4),
        "aht_ms": round((10_000 + 5000 + 3000 + f_talk_so_far) / 4),
        "max_wait_ms": max([*answered_waits, wait[d]])}
    me = agents["agents"]["1001"]
    assert (me["state"], me["answered"], me["missed"], me["talk_ms"], me["wrap_ms"]) == \
        ("on_call", 4, 0, 10_000 + 5000 + 3000 + f_talk_so_far, 0)
    assert (mid_stats["offered"], mid_stats["answered"], mid_stats["abandoned"]) == (6, 4, 1)

    # At the end: the same, G abandoned past the service level.
    assert_live_equals_report(*end)
    fd = end[0]["queues"]["front_desk"]
    assert {k: fd[k] for k in ("offered", "answered", "abandoned", "short_abandoned", "answered_within_sl",
                               "sl_pct", "asa_ms", "aht_ms", "max_wait_ms", "waiting")} == {
        "offered": 6, "answered": 4, "abandoned": 2, "short_abandoned": 1, "answered_within_sl": 2,
        "sl_pct": 40.0,                                   # 2 / (4 + 2 - 1)
        "asa_ms": round(sum(answered_waits) / 4), "aht_ms": round((10_000 + 5000 + 3000 + 20_000) / 4),
        "max_wait_ms": max([*answered_waits, wait[d], wait[g]]), "waiting": 0}
    assert round(100 * fd["abandoned"] / fd["offered"], 1) == 33.3        # abandon rate: 2 of 6 offered
    me = end[1]["agents"]["1001"]
    assert (me["state"], me["answered"], me["talk_ms"]) == ("ready", 4, 38_000)
    # engine.stats (the demo's figures) say the same: ASA = wait total / answered.
    assert stats == {"offered": 6, "answered": 4, "abandoned": 2, "short_abandoned": 1,
                     "wait_ms_total": sum(answered_waits)}
    stored = end[2]["queues"]["front_desk"]
    assert (stats["offered"], stats["answered"], stats["abandoned"], stats["short_abandoned"]) == \
        (stored["offered"], stored["answered"], stored["abandoned"], stored["short_abandoned"])
    assert round(stats["wait_ms_total"] / stats["answered"]) == stored["asa_ms"]
    # Each CDR is its call's fold over the stored events.
    cdrs = stored_cdrs(tmp_path)
    events = by_call(read_events(tmp_path / "cicbox.db"))
    assert sorted(cdrs) == sorted(events) and len(cdrs) == 7
    for call_id, cdr in cdrs.items():
        assert fold_call(events[call_id]) == cdr, call_id
    assert [cdrs[i]["disposition"] for i in sorted(cdrs)] == \
        ["answered", "answered", "abandoned", "abandoned", "answered", "answered", "abandoned"]
    assert [cdrs[i]["wait_ms"] for i in sorted(cdrs)] == \
        [wait[a], wait[b], None, None, wait[e], wait[f], None]


# -- overflow and a caller in two queues: each CDR is its call's fold ---------------------------------

TWO_QUEUES = """\
front_desk: {agents: ['1001'], max_wait_ms: 4000, on_timeout: {queue: concierge}}
concierge: {agents: ['1002']}
"""


def test_each_cdr_is_its_calls_fold_with_overflow_and_two_queues(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Agent 1001 (front_desk) never logs in; 1002 (concierge) answers after 1 s. X calls front_desk,
    waits 4 s and overflows to concierge, where 1002 answers it; Y asks for both queues at once and is
    answered in concierge (its front_desk stay withdrawn); Z asks for both and hangs up after 0.5 s, while
    1002's phone rings."""
    x = caller(0, 5000, hold_ms=3000)
    y = caller(1, 20_000, hold_ms=2000)
    z = caller(2, 30_000, patience_ms=500)
    phone = PhoneScript(port=4, agent="1002", login_at_ms=0, answer_after_ms=1000)
    text = site_text(3, TWO_QUEUES, [("1001", "phone1"), ("1002", "phone2")],
                     ["queue: front_desk", "queues: [front_desk, concierge]", "queues: [front_desk, concierge]"])
    site = Site(tmp_path, text, [x, y, z], [PhoneScript(port=3, agent=None, login_at_ms=None), phone],
                keep_audio=False)
    try:
        site.run(22_000)                          # 1002 talks to Y
        now = EPOCH + dt.timedelta(milliseconds=site.engine.clock.now_ms)
        with site.serving():
            queues = cli_json(capsys, "queues", "--json", "--state-dir", str(tmp_path))
        report_q = cli_json(capsys, "report", "queue", "--json", "--to", now.isoformat(),
                            "--state-dir", str(tmp_path))
        site.run(18_000)
    finally:
        site.close()
    assert {n: {k: v for k, v in q.items() if k not in LIVE_ONLY} for n, q in queues["queues"].items()} == \
        report_q["queues"]
    assert phone.answered[:2] == [x.connected_ms, y.connected_ms] and z.connected_ms is None
    cdrs = stored_cdrs(tmp_path)
    events = by_call(read_events(tmp_path / "cicbox.db"))
    assert sorted(cdrs) == sorted(events) == ["1-000001", "1-000002", "1-000003"]
    for call_id, cdr in cdrs.items():
        assert fold_call(events[call_id]) == cdr, call_id
    cx, cy, cz = (cdrs[f"1-00000{i}"] for i in (1, 2, 3))
    overflow_at = x.at_ms + 4000
    # X: its first entry kept, its last queue (concierge) and its wait there.
    assert (cx["disposition"], cx["queue"], cx["agent"], cx["queue_entry_ms"], cx["answer_ms"], cx["wait_ms"]) == \
        ("answered", "concierge", "1002", x.at_ms, x.connected_ms, x.connected_ms - overflow_at)  # type: ignore[operator]
    assert cx["talk_ms"] == 3000
    assert (cy["disposition"], cy["queue"], cy["agent"], cy["queue_entry_ms"], cy["wait_ms"]) == \
        ("answered", "concierge", "1002", y.at_ms, y.connected_ms - y.at_ms)      # type: ignore[operator]
    assert (cz["disposition"], cz["agent"], cz["queue_entry_ms"], cz["answer_ms"], cz["wait_ms"]) == \
        ("abandoned", None, z.at_ms, None, None)
    leaves = {(e.call_id, e.queue): e.detail["outcome"] for ev in events.values() for e in ev
              if e.kind == "queue_leave"}
    assert leaves == {("1-000001", "front_desk"): "timeout", ("1-000002", "front_desk"): "withdrawn",
                      ("1-000003", "front_desk"): "abandoned", ("1-000003", "concierge"): "abandoned"}
    # The report at 22 s: front_desk had X (timed out) and Y (withdrawn); concierge answered both.
    fd, cg = report_q["queues"]["front_desk"], report_q["queues"]["concierge"]
    assert (fd["offered"], fd["answered"], fd["withdrawn"], fd["outcomes"]["timeout"], fd["asa_ms"]) == \
        (2, 0, 1, 1, None)
    assert (cg["offered"], cg["answered"]) == (2, 2)
    assert cg["asa_ms"] == round((x.connected_ms - overflow_at + y.connected_ms - y.at_ms) / 2)  # type: ignore[operator]


# -- the demo's summary --------------------------------------------------------------------------------


def test_the_demo_summary_is_the_reports_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`cicbox demo --json` (the hotel: two queues, ten minutes of engine clock): offered, answered and
    abandoned are the report's sums over the queues; mean_wait_s is the ASA over all queues."""
    state = ["--state-dir", str(tmp_path)]
    summary = cli_json(capsys, "demo", "--clock", "virtual", "--duration", "600", "--json", *state)
    doc = cli_json(capsys, "report", "queue", "--json", *state)["queues"]
    assert sorted(doc) == ["front_desk", "housekeeping"]                   # both queues had callers
    assert all(q["answered"] > 0 for q in doc.values())
    total = {k: sum(q[k] for q in doc.values()) for k in ("offered", "answered", "abandoned")}
    assert {k: summary[k] for k in total} == total
    # Each queue's ASA is rounded to the ms: the waits over all queues are known to within half a ms each.
    waits = sum(q["asa_ms"] * q["answered"] for q in doc.values())
    assert abs(summary["mean_wait_s"] * 1000 - waits / total["answered"]) <= 1.0
    # Exactly: the waits of the log's answers (answer - the entry into the answering queue) over all queues.
    events = read_events(tmp_path / "cicbox.db")
    enters: dict[tuple[str | None, str | None], int] = {}
    for e in events:
        if e.kind == "queue_enter":
            enters.setdefault((e.call_id, e.queue), e.tick_ms)
    answered = [e.tick_ms - enters[(e.call_id, e.queue)] for e in events if e.kind == "answer"]
    assert len(answered) == total["answered"]
    assert summary["mean_wait_s"] == round(sum(answered) / len(answered) / 1000, 3)
