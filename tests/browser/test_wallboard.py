"""The wallboard in a real browser (issue 15, Acceptance): the panel under gunicorn + TLS, the engine paused in
the test process and moved by clock.advance. The page is opened before any call and never navigates again
(``framenavigated``): a caller's states in turn with the engine's durations, the agent's time in state, the
queue's waiting callers, the call gone at hang-up; the engine closed: a banner within 2 s; a new engine on
the same state directory: a snapshot, the banner gone. Supervisor actions: Not ready on a ready agent with
the site's reason picked (the next call goes elsewhere, audited; an unknown reason's refusal shown), Log out
on a talking agent (pending, the call goes on, then logged out); an agent's buttons on its own row only (a
POST for another is 403), a viewer's none. The full-scale bench
site (configs/bench-240.yaml) with 240 calls up: 240 rows. The snapshot's alarms: one banner row per kind,
since when. kill -9 of the panel (its arbiter and worker, a stream open) drops no call. Screenshots of
each step: test-artifacts/test_wallboard/."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from appliance import cli
from appliance.config.loader import parse_config
from appliance.config.store import ConfigStore
from appliance.engine import Engine
from appliance.web import accounts, create_app
from appliance.world import Caller, PhoneScript, World
from appliance.world.exchange import pri_spans
from bench.bench_site import DNIS as BENCH_DNIS
from bench.bench_site import TARGET as BENCH_SITE
from tests.browser.conftest import EngineHandle, PanelServer
from tests.e2e.acd_site import heard_at, line_at
from tests.e2e.harness import Site, site_yaml
from tests.peers.spandsp_far import SpandspSignals
from tests.signals import frequency

ANI, DNIS = "13912345678", "075588880002"       # site_yaml: trunk2 is 075588880002
TRUNK2 = 1
PHONES = {"1001": 2, "1002": 3, "1003": 4}      # three agents at phone1..phone3 (ports 2-4)
BANNER_S = 2.0


def _accounts_exist() -> bool:
    with tempfile.TemporaryDirectory(prefix="cicbox-probe-") as tmp:
        return "account.login" in create_app({"TESTING": True, "STATE_DIR": tmp}).view_functions


pytestmark = pytest.mark.skipif(not _accounts_exist(), reason="the accounts part's /login is not on this branch")


def duration(ms: int) -> str:
    """As wallboard.js shows it: m:ss, or h:mm:ss from an hour on."""
    s = max(0, ms) // 1000
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def open_wallboard(page: Page, panel: PanelServer) -> list[str]:
    """Open /wallboard; returns the list the page's later navigations are appended to (it must stay empty)."""
    page.goto(panel.url + "/wallboard")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    return navigations


def latest(page: Page, panel: PanelServer) -> dict[str, Any]:
    """The snapshot the panel holds now (/api/wallboard, the events' data), once the page shows it too."""
    while True:
        resp = page.request.get(panel.url + "/api/wallboard")
        assert resp.status == 200, resp.text()
        snap: dict[str, Any] = resp.json()
        page.wait_for_function("t => Number(document.getElementById('clock').dataset.tick) >= t", arg=snap["tick_ms"])
        if page.get_attribute("#clock", "data-tick") == str(snap["tick_ms"]):
            return snap                                  # (else a later one came meanwhile: ask again)


def row(page: Page, tbody: str, key: str) -> list[str]:
    return [c.strip() for c in page.locator(f"#{tbody} tr[data-key='{key}'] td").all_inner_texts()]


def agent_site(state: Path, callers: list[Caller], logins: tuple[str, ...], *, keep_audio: bool = False,
               answer_after_ms: int = 3000, login_at_ms: int = 0, reasons: str = "") -> Site:
    """site_yaml with three agents; those of `logins` log in at `login_at_ms`; `reasons`: the site's
    acd.not_ready_reasons as YAML (none if empty)."""
    phones = [PhoneScript(port=PHONES[n], agent=n, login_at_ms=login_at_ms, answer_after_ms=answer_after_ms)
              for n in logins]
    text = site_yaml(agents=3)
    if reasons:
        text = text.replace("queues:", f"acd: {{not_ready_reasons: {reasons}}}\nqueues:", 1)
    return Site(state, text, callers, phones, keep_audio=keep_audio)


def advance_until(engine: EngineHandle, done: Callable[[dict[str, Any]], bool], step_ms: int = 500,
                  limit_ms: int = 60_000) -> dict[str, Any]:
    """Advance the engine `step_ms` at a time until `done(status)`; the status then."""
    start = engine.now_ms
    while True:
        engine.advance(step_ms)
        status: dict[str, Any] = engine.request("status")
        if done(status):
            return status
        assert engine.now_ms - start < limit_ms, "the engine never got there"


def until_shown(engine: EngineHandle, page: Page, panel: PanelServer, done: Callable[[dict[str, Any]], bool],
                step_ms: int = 100, limit_ms: int = 60_000) -> dict[str, Any]:
    """Advance the engine `step_ms` at a time until the panel's latest snapshot (pushed once a second of
    engine clock) satisfies `done`; that snapshot, once the page shows it."""
    start = engine.now_ms
    while True:
        engine.advance(step_ms)
        resp = page.request.get(panel.url + "/api/wallboard")
        if resp.status == 200 and done(resp.json()):
            return latest(page, panel)
        assert engine.now_ms - start < limit_ms, "the panel never showed it"


def agent_in(snap: dict[str, Any], number: str) -> dict[str, Any]:
    return next(a for a in snap["agents"] if a["number"] == number)


def the_call(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status["calls"] if c["ani"] == ANI), None)


def test_a_call_through_its_states_then_the_engine_gone_and_back(
        state_dir: Path, engine_for: Callable[[Site], EngineHandle], panel_server: PanelServer, page: Page,
        sign_in: Callable[..., str], shot: Callable[[str], Path]) -> None:
    # the caller rings at 1 s, is answered at the second ring and presses 1 (queued: nobody is logged in);
    # 1002 logs in at 12 s (offered) and answers after 4 s (connected); the caller hangs up 15 s later
    caller = Caller(trunk=TRUNK2, at_ms=1000, ani=ANI, press_after_ms=500, hold_ms=15000)
    engine = engine_for(agent_site(state_dir, [caller], ("1002",), answer_after_ms=4000, login_at_ms=12_000))
    sign_in("viewer")
    navigations = open_wallboard(page, panel_server)
    snap = latest(page, panel_server)
    assert snap["calls"] == [] and page.inner_text("#calls").strip() == "no calls"
    shot("before any call")

    def in_state(want: str) -> Callable[[dict[str, Any]], bool]:
        def done(s: dict[str, Any]) -> bool:
            c = the_call(s)
            return c is not None and c["state"] == want
        return done

    seen = []
    for state in ("queued", "offered", "connected"):
        snap = until_shown(engine, page, panel_server, in_state(state))
        call = the_call(snap)
        assert call is not None and call["state"] == state
        cells = row(page, "calls", call["id"])
        assert cells[:6] == ["trunk2", state, ANI, DNIS, "front_desk", "1002" if state != "queued" else ""]
        assert cells[6] == duration(snap["tick_ms"] - call["state_since_ms"])      # the engine's clock
        (q,) = snap["queues"]
        assert row(page, "queues", "front_desk")[1] == str(q["waiting"])
        a = next(a for a in snap["agents"] if a["number"] == "1002")
        assert row(page, "agents", "1002")[2:5] == [a["state"], "", duration(snap["tick_ms"] - a["state_since_ms"])]
        seen.append((state, q["waiting"], a["state"]))
        shot(f"call {state}")
    assert [w for _, w, _ in seen] == [1, 1, 0]              # waiting while queued and offered, 0 once connected
    assert [a for _, _, a in seen] == ["logged_out", "offered", "on_call"]

    until_shown(engine, page, panel_server, lambda s: the_call(s) is None, step_ms=1000)   # the caller hangs up
    assert page.inner_text("#calls").strip() == "no calls"
    shot("hung up")

    engine.close()                                           # the engine goes: a banner within 2 s
    started = time.monotonic()  # clock-source: the wall time a person waits for the banner
    page.wait_for_selector("#banner:not([hidden])", timeout=BANNER_S * 1000)
    assert time.monotonic() - started < BANNER_S  # clock-source: as above
    assert page.inner_text("#banner").startswith("engine not reachable")
    shot("engine gone")

    again = engine_for(Site(state_dir, (state_dir / "site.yaml").read_text(), [], [], keep_audio=False))
    again.advance(1000)
    page.wait_for_selector("#banner", state="hidden")      # the hub found the new engine: a snapshot, no banner
    snap = latest(page, panel_server)
    assert snap["tick_ms"] <= again.now_ms and snap["calls"] == []         # the new engine's clock, from 0
    shot("engine back")
    assert navigations == []                                 # never a reload or another page


def test_supervisor_not_ready_and_logout(state_dir: Path, engine_for: Callable[[Site], EngineHandle],
                                         panel_server: PanelServer, page: Page, sign_in: Callable[..., str],
                                         shot: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    first = Caller(trunk=0, at_ms=4000, ani="13800000001", press_after_ms=500, hold_ms=30000)
    engine = engine_for(agent_site(state_dir, [first], ("1002", "1003"), answer_after_ms=2000, keep_audio=True,
                                   reasons="{'1': break, '2': lunch}"))
    engine.advance(2000)
    name = sign_in("supervisor")
    navigations = open_wallboard(page, panel_server)
    latest(page, panel_server)
    assert row(page, "agents", "1003")[2] == "ready"
    reason = "#agents tr[data-key='1003'] select[data-reason]"
    options = page.locator(reason + " option")
    assert options.all_inner_texts() == ["other", "break", "lunch"]      # the site's reasons, other first
    assert page.input_value(reason) == "other"
    shot("both ready")

    # a reason the engine does not know (a page older than the configuration): its refusal on the page
    page.eval_on_selector(reason, "s => { const o = document.createElement('option'); o.value = 'nap'; "
                                  "o.textContent = 'nap'; s.appendChild(o); s.value = 'nap'; }")
    page.click("#agents tr[data-key='1003'] button[data-action='Not ready']")
    page.wait_for_selector("#action.failed:not([hidden])")
    assert page.inner_text("#action") == "agent 1003: reason must be one of break, lunch, other, not 'nap'"
    assert agent_in(engine.request("status"), "1003")["state"] == "ready"
    (refused,) = accounts.audit_rows(panel_server.panel_dir, action="agent.state")
    assert (refused["user"], refused["outcome"], refused["detail"]["requested"]) == (
        name, "refused", {"state": "not_ready", "reason": "nap"})
    shot("an unknown reason refused")

    page.select_option(reason, "lunch")
    page.click("#agents tr[data-key='1003'] button[data-action='Not ready']")
    page.wait_for_selector("#action:not(.failed):not([hidden])")
    assert page.inner_text("#action") == "agent 1003: not_ready (lunch)"
    assert cli.main(["status", "--json", "--state-dir", str(state_dir)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in agent_in(status, "1003").items() if k in ("state", "reason")} == {
        "state": "not_ready", "reason": "lunch"}
    audit, _ = accounts.audit_rows(panel_server.panel_dir, action="agent.state")
    assert (audit["user"], audit["target"], audit["outcome"]) == (name, "agent 1003", "ok")
    assert audit["detail"]["requested"] == {"state": "not_ready", "reason": "lunch"}
    assert audit["detail"]["before"]["state"] == "ready" and audit["detail"]["after"] == {
        "state": "not_ready", "reason": "lunch"}
    until_shown(engine, page, panel_server, lambda s: agent_in(s, "1003")["state"] == "not_ready")
    assert row(page, "agents", "1003")[2:4] == ["not_ready", "lunch"]
    assert page.input_value(reason) == "lunch"                 # the choice stays as snapshots come
    shot("1003 not ready: lunch")

    # the next call goes elsewhere: 1002 answers it
    status = advance_until(engine, lambda s: any(c["state"] == "connected" for c in s["calls"]), step_ms=500)
    assert [c["agent"] for c in status["calls"]] == ["1002"]
    until_shown(engine, page, panel_server, lambda s: agent_in(s, "1002")["state"] == "on_call")
    assert row(page, "agents", "1002")[2] == "on_call"
    shot("1002 talking")

    # Log out on the talking agent: pending, the call goes on, then logged out
    page.click("#agents tr[data-key='1002'] button[data-action='Log out']")
    page.wait_for_function("() => document.getElementById('action').textContent.includes('pending')")
    asked = engine.now_ms
    engine.advance(5000)
    # the call goes on: the caller hears the agent's 587 Hz, the agent's phone the caller's 1020 Hz
    assert abs(frequency(heard_at(first, asked + 300, 4000)) - 587) <= 2
    assert abs(frequency(line_at(engine.site.world.phones[PHONES["1002"]], asked + 300, 4000)) - 1020) <= 2
    snap = until_shown(engine, page, panel_server, lambda s: agent_in(s, "1002")["pending"] == "logout")
    assert [c["state"] for c in snap["calls"]] == ["connected"]
    assert row(page, "agents", "1002")[2] == "on_call" and row(page, "agents", "1002")[5] == "logout"
    shot("logout pending")
    snap = until_shown(engine, page, panel_server, lambda s: s["calls"] == [], step_ms=1000)
    assert agent_in(snap, "1002")["state"] == "logged_out"
    assert row(page, "agents", "1002")[2] == "logged_out"
    assert row(page, "agents", "1002")[6] == ""                          # no buttons for a logged-out agent
    shot("1002 logged out")
    (out,) = accounts.audit_rows(panel_server.panel_dir, action="agent.logout")
    assert out["outcome"] == "pending" and out["detail"]["before"]["state"] == "on_call"
    assert navigations == []


def test_an_agent_has_buttons_on_its_own_row_a_viewer_none(
        state_dir: Path, engine_for: Callable[[Site], EngineHandle], panel_server: PanelServer, page: Page,
        sign_in: Callable[..., str], shot: Callable[[str], Path]) -> None:
    engine = engine_for(agent_site(state_dir, [], ("1001", "1002", "1003")))
    engine.advance(2000)
    sign_in("agent", agent="1002")
    open_wallboard(page, panel_server)
    latest(page, panel_server)
    buttons = {n: page.locator(f"#agents tr[data-key='{n}'] button").all_inner_texts() for n in PHONES}
    assert buttons == {"1001": [], "1002": ["Ready", "Not ready", "Log out"], "1003": []}
    shot("agent 1002's own row")
    # a POST for another agent is refused (403), whatever the page shows
    token = page.get_attribute("meta[name=csrf-token]", "content") or ""
    resp = page.request.post(panel_server.url + "/api/agents/1003/state", data=json.dumps({"state": "not_ready"}),
                             headers={"Content-Type": "application/json", "X-CSRFToken": token,
                                      "Referer": panel_server.url + "/wallboard"})
    assert resp.status == 403
    assert engine.request("status")["agents"][2]["state"] == "ready"

    page.context.clear_cookies()
    sign_in("viewer")
    open_wallboard(page, panel_server)
    latest(page, panel_server)
    assert page.locator("#agents button").count() == 0
    shot("viewer: no buttons")


class BenchSite(Site):
    """The full-scale bench site (configs/bench-240.yaml: 8 E1 PRI spans, 120 agents) with the world's far
    exchange on the network side of every span (tests.e2e.harness.Site has FXO callers only)."""

    def __init__(self, tmp: Path, callers: list[Caller], phones: list[PhoneScript]) -> None:
        self.state = tmp
        self.store = ConfigStore(tmp)
        path = tmp / "site.yaml"
        path.write_text(BENCH_SITE.read_text())
        self.store.bootstrap(path)
        cur = self.store.current()
        assert cur is not None
        self.world = World(callers, phones, zone="cn", keep_audio=False, signals=SpandspSignals(),
                           pri_spans=pri_spans(cur.config))
        self.engine = Engine(tmp, cur.config, cur.version, clock="virtual", store=self.store, world=self.world)


def test_the_bench_site_with_240_calls_has_240_rows(state_dir: Path, engine_for: Callable[[Site], EngineHandle],
                                                     panel_server: PanelServer, page: Page,
                                                     sign_in: Callable[..., str],
                                                     shot: Callable[[str], Path]) -> None:
    cfg = parse_config(BENCH_SITE.read_text(), BENCH_SITE.name)
    ports = {p.name: i for i, p in enumerate(cfg.ports)}
    phones = [PhoneScript(port=ports[str(a.phone)], agent=a.number, login_at_ms=100 + 20 * n)
              for n, a in enumerate(cfg.agents)]
    callers = [Caller(trunk=None, span=f"span{1 + i // 30}", dnis=BENCH_DNIS, at_ms=200 + 20 * i, ani=f"139{i:08d}",
                      digits=str(1 + i % 8), press_after_ms=500, hold_ms=3_600_000, patience_ms=3_600_000)
               for i in range(240)]
    engine = engine_for(BenchSite(state_dir, callers, phones))
    sign_in("viewer")
    navigations = open_wallboard(page, panel_server)
    snap = until_shown(engine, page, panel_server,
                       lambda s: sum(c["state"] == "connected" for c in s["calls"]) == 120, step_ms=1000)
    assert len(snap["calls"]) == 240
    assert page.locator("#calls tr[data-key]").count() == 240
    assert page.locator("#agents tr[data-key]").count() == 120
    assert sorted(row(page, "calls", c["id"])[2] for c in snap["calls"]) == sorted(f"139{i:08d}" for i in range(240))
    shot("240 calls")
    assert navigations == []


def test_the_alarms_banner_one_row_per_kind_since_when(state_dir: Path, engine_for: Callable[[Site], EngineHandle],
                                                       panel_server: PanelServer, page: Page,
                                                       sign_in: Callable[..., str],
                                                       shot: Callable[[str], Path]) -> None:
    engine = engine_for(agent_site(state_dir, [], ()))
    sign_in("viewer")
    open_wallboard(page, panel_server)
    latest(page, panel_server)
    assert page.is_hidden("#alarms")
    alarms = engine.engine.alarms                             # (a paused engine: its loop only answers control.sock)
    alarms.raise_alarm("test_alarm", "3 things wrong")
    raised = engine.now_ms
    snap = until_shown(engine, page, panel_server, lambda s: bool(s["alarms"]), step_ms=1000)
    alarms.raise_alarm("test_alarm", "5 things wrong")   # the same kind again
    snap = until_shown(engine, page, panel_server, lambda s: s["alarms"][0]["detail"].startswith("5"), step_ms=1000)
    assert page.is_visible("#alarms")
    (cells,) = [[c.strip() for c in r.split("\t")] for r in page.inner_text("#alarm-rows").splitlines()]
    assert cells == ["test_alarm", duration(snap["tick_ms"] - raised) + " ago",
                     "5 things wrong"]
    shot("alarm raised")
    alarms.clear_alarm("test_alarm")
    until_shown(engine, page, panel_server, lambda s: not s["alarms"], step_ms=1000)
    assert page.is_hidden("#alarms")
    shot("alarm cleared")


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's worker under its arbiter), from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_kill_9_of_the_panel_drops_no_call(state_dir: Path, engine_for: Callable[[Site], EngineHandle],
                                           panel_server: PanelServer, page: Page, sign_in: Callable[..., str],
                                           shot: Callable[[str], Path]) -> None:
    caller = Caller(trunk=0, at_ms=500, ani=ANI, press_after_ms=500, hold_ms=20_000)
    engine = engine_for(agent_site(state_dir, [caller], ("1001",), answer_after_ms=1000, keep_audio=True))
    sign_in("supervisor")
    open_wallboard(page, panel_server)
    until_shown(engine, page, panel_server, lambda s: [c["state"] for c in s["calls"]] == ["connected"])
    shot("talking, wallboard open")
    arbiter = panel_server.process.proc.pid
    workers = _children(arbiter)
    assert workers, "no gunicorn worker under the panel"
    for pid in (arbiter, *workers):                         # kill -9: the panel and its worker, mid-stream
        os.kill(pid, signal.SIGKILL)
    panel_server.process.proc.wait(timeout=30)
    killed = engine.now_ms
    engine.advance(5000)
    status = engine.request("status")                        # the engine never noticed but for a subscriber gone
    assert [(c["ani"], c["state"], c["agent"]) for c in status["calls"]] == [(ANI, "connected", "1001")]
    assert abs(frequency(heard_at(caller, killed + 300, 4000)) - 587) <= 2
    assert abs(frequency(line_at(engine.site.world.phones[PHONES["1001"]], killed + 300, 4000)) - 1020) <= 2
    advance_until(engine, lambda s: s["calls"] == [], step_ms=1000)
    assert caller.connected_ms is not None and caller.hung_up_ms is not None
    assert caller.hung_up_ms - caller.connected_ms >= 20_000               # the caller hung up, nobody cut it
