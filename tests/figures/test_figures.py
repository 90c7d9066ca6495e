"""The fold's figures equal the hand-computed ones (tests/figures/scenario.py): the whole log, windows cut
by --from / --to, 15-minute intervals split at their edges, the live figures, and each call's CDR fields."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from appliance.figures import INTERVALS, LiveFigures, fold_call, report
from appliance.storage import Event
from tests.figures.scenario import (
    AGENTS,
    AGENTS_TO_1MIN,
    EVENTS,
    NO_OUTCOMES,
    QUEUES,
    QUEUES_FROM_1MIN,
    QUEUES_TO_1MIN,
    S,
    ev,
    state,
)

NINE = dt.datetime(2026, 3, 2, 9, 0)


def test_the_whole_log_gives_the_hand_computed_queue_and_agent_figures() -> None:
    assert report(EVENTS, "queue") == {"queues": QUEUES, "intervals": []}
    assert report(EVENTS, "agent") == {"agents": AGENTS, "intervals": []}


def test_from_and_to_cut_the_window() -> None:
    one = NINE + dt.timedelta(minutes=1)
    assert report(EVENTS, "queue", end=one)["queues"] == QUEUES_TO_1MIN
    assert report(EVENTS, "agent", end=one)["agents"] == AGENTS_TO_1MIN
    assert report(EVENTS, "queue", start=one)["queues"] == QUEUES_FROM_1MIN
    # Before the first event or after the last: nothing happened there.
    assert report(EVENTS, "queue", end=NINE) == {"queues": {}, "intervals": []}


def test_sl_counts_short_abandons_out_and_abandons_within_the_threshold_out_of_the_denominator() -> None:
    q = {"sl_threshold_ms": 20 * S, "short_abandon_ms": 5 * S}
    log = [Event(1, 0, "boot", detail={"boot": 1, "calendar_start": "2026-03-02T09:00:00"})]
    # Answered after 20 s (within: <=) and after 21 s; abandoned after 4.999 s (short), 5 s, 20 s, 21 s.
    for i, (wait, answered) in enumerate([(20_000, True), (21_000, True), (4_999, False), (5_000, False),
                                          (20_000, False), (21_000, False)]):
        call = f"1-{i:06d}"
        log.append(Event(1, 1_000, "queue_enter", call, "q", detail=q))
        if answered:
            log.append(Event(1, 1_000 + wait, "answer", call, "q", "1001"))
            log.append(Event(1, 1_000 + wait + 30_000, "call_end", call, "q", "1001", {"disposition": "answered"}))
        else:
            log.append(Event(1, 1_000 + wait, "queue_leave", call, "q", detail={"outcome": "abandoned", "to": None}))
    fig = report(log, "queue")["queues"]["q"]
    # offered 6 - 1 short = 5; SL = 1 / (2 answered + 3 abandoned - 2 abandoned within 20 s) = 1/3.
    assert fig == {"offered": 5, "answered": 2, "abandoned": 3, "short_abandoned": 1, "withdrawn": 0, "exits": 0,
                   "answered_within_sl": 1, "sl_pct": 33.3, "asa_ms": 20_500, "aht_ms": 30_000,
                   "max_wait_ms": 21_000, "outcomes": NO_OUTCOMES}


def interval_log() -> list[Event]:
    """1001 ready 09:10-09:20; a call entered at 09:14:50, answered at 09:15:10 (wait 20 s), ended 09:16:10;
    a call entered at 09:16:00, gone at 09:16:30."""
    t = 600 * S
    return [
        Event(1, 0, "boot", detail={"boot": 1, "calendar_start": "2026-03-02T09:00:00"}),
        state(t, "ready", why="login"),
        ev(t + 290 * S, "queue_enter", "1", "front", sl_threshold_ms=20 * S, short_abandon_ms=5 * S),
        state(t + 305 * S, "offered", "front", "1"),
        ev(t + 310 * S, "answer", "1", "front", "1001"), state(t + 310 * S, "on_call", "front", "1"),
        ev(t + 360 * S, "queue_enter", "2", "front", sl_threshold_ms=20 * S, short_abandon_ms=5 * S),
        ev(t + 370 * S, "call_end", "1", "front", "1001", disposition="answered"),
        state(t + 370 * S, "ready", why="call ended"),
        ev(t + 390 * S, "queue_leave", "2", "front", outcome="abandoned", to=None),
        state(t + 600 * S, "logged_out", why="logout"),
    ]


def test_intervals_take_calls_by_their_entry_and_split_agent_time_at_their_edges() -> None:
    nine30 = NINE + dt.timedelta(minutes=30)
    doc = report(interval_log(), "queue", start=NINE, end=nine30, interval=INTERVALS["15m"])
    first, second = doc["intervals"]
    assert (first["start"], first["end"], second["start"], second["end"]) == (
        "2026-03-02T09:00:00", "2026-03-02T09:15:00", "2026-03-02T09:15:00", "2026-03-02T09:30:00")
    assert first["queues"]["front"] | {"outcomes": None} == {
        "offered": 1, "answered": 1, "abandoned": 0, "short_abandoned": 0, "withdrawn": 0, "exits": 0,
        "answered_within_sl": 1, "sl_pct": 100.0, "asa_ms": 20 * S, "aht_ms": 60 * S, "max_wait_ms": 20 * S,
        "outcomes": None}
    assert second["queues"]["front"] | {"outcomes": None} == {
        "offered": 1, "answered": 0, "abandoned": 1, "short_abandoned": 0, "withdrawn": 0, "exits": 0,
        # SL 0 / (0 answered + 1 abandoned - 0 abandoned within 20 s): 0 %
        "answered_within_sl": 0, "sl_pct": 0.0, "asa_ms": None, "aht_ms": None, "max_wait_ms": 30 * S,
        "outcomes": None}
    agents = report(interval_log(), "agent", start=NINE, end=nine30, interval=INTERVALS["15m"])
    # Ready 09:10-09:15:05 split at 09:15: 300 s in the first, 5 s in the second; then on_call
    # 09:15:10-09:16:10 and ready 09:16:10-09:20 (230 s) in the second.
    assert [i["agents"]["1001"] for i in agents["intervals"]] == [
        {"answered": 0, "missed": 0, "talk_ms": 0, "wrap_ms": 0, "ready_ms": 300 * S, "not_ready_ms": 0},
        {"answered": 1, "missed": 0, "talk_ms": 60 * S, "wrap_ms": 0, "ready_ms": 235 * S, "not_ready_ms": 0}]
    assert agents["agents"]["1001"]["ready_ms"] == 535 * S
    hours = report(interval_log(), "agent", interval=INTERVALS["1h"])["intervals"]
    assert [(i["start"], i["agents"]["1001"]["ready_ms"]) for i in hours] == [("2026-03-02T09:00:00", 535 * S)]


def test_live_figures_are_todays_report_as_of_now() -> None:
    live = LiveFigures()
    for e in EVENTS:
        live.add(e)
    q = live.queues(1, 250 * S)
    assert q["queues"] == QUEUES
    # The last 30 minutes: the current 15-minute interval (09:00-09:15) and the one before it.
    assert [(i["start"], i["end"]) for i in q["intervals"]] == [
        ("2026-03-02T08:45:00", "2026-03-02T09:00:00"), ("2026-03-02T09:00:00", "2026-03-02T09:15:00")]
    assert q["intervals"][1]["queues"] == QUEUES
    assert q["intervals"][0]["queues"]["front"]["offered"] == 0
    assert live.agents(1, 250 * S)["agents"] == AGENTS
    # Ten seconds on, the open not-ready state has grown by ten seconds.
    assert live.agents(1, 260 * S)["agents"]["1001"]["not_ready_ms"] == 74 * S


def test_live_figures_start_again_each_day() -> None:
    live = LiveFigures()
    live.add(Event(1, 0, "boot", detail={"boot": 1, "calendar_start": "2026-03-02T23:59:00"}))
    live.add(ev(1 * S, "queue_enter", "1", "q"))
    live.add(ev(2 * S, "queue_leave", "1", "q", outcome="exit_key", to="ivr:main"))
    live.add(state(10 * S, "ready", why="login"))
    assert live.queues(1, 30 * S)["queues"]["q"]["exits"] == 1
    live.add(ev(70 * S, "queue_enter", "2", "q"))          # 00:00:10 the next day
    today = live.agents(1, 90 * S)
    assert live.queues(1, 90 * S)["queues"]["q"]["exits"] == 0 and live.queues(1, 90 * S)["queues"]["q"]["offered"] == 1
    assert today["agents"]["1001"]["ready_ms"] == 30 * S    # from midnight, not from the login at 23:59:10
    assert today["intervals"][0]["agents"]["1001"]["ready_ms"] == 50 * S   # 23:59:10-00:00 of 23:45-00:00


def test_a_new_boot_ends_what_the_last_one_left_open_at_its_last_event() -> None:
    log = [Event(1, 0, "boot", detail={"boot": 1, "calendar_start": "2026-03-02T09:00:00"}),
           state(0, "ready", why="login"), ev(60 * S, "queue_enter", "1", "q"),
           # Boot 2 an hour later: the ready state ended with boot 1's last event (60 s), not at boot 2.
           Event(2, 0, "boot", detail={"boot": 2, "calendar_start": "2026-03-02T10:00:00"}),
           Event(2, 0, "agent_state", agent="1001", detail={"state": "not_ready", "reason": "restart",
                                                            "why": "restart", "call_id": None}),
           Event(2, 30 * S, "agent_state", agent="1001", detail={"state": "ready", "why": "*23"})]
    assert report(log, "agent")["agents"]["1001"] | {"answered": None} == {
        "answered": None, "missed": 0, "talk_ms": 0, "wrap_ms": 0, "ready_ms": 60 * S, "not_ready_ms": 30 * S}


def by_call(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for e in events:
        if e.call_id is not None:
            out.setdefault(e.call_id, []).append(e)
    return out


@pytest.mark.parametrize(("call", "want"), [
    ("1-000001", {"queue": "front", "agent": "1001", "disposition": "answered", "start_ms": 1 * S,
                  "queue_entry_ms": 2 * S, "answer_ms": 12 * S, "end_ms": 72 * S, "wait_ms": 10 * S,
                  "talk_ms": 60 * S, "ani": "555001", "calendar_start": "2026-03-02T09:00:01"}),
    ("1-000002", {"queue": "front", "agent": None, "disposition": "abandoned", "start_ms": 5 * S,
                  "queue_entry_ms": 6 * S, "answer_ms": None, "end_ms": 9 * S, "wait_ms": None, "talk_ms": None,
                  "ani": "555002", "calendar_start": "2026-03-02T09:00:05"}),
    # Two queues: answered in vip, wait from its vip entry; talk to the call's end (151 s).
    ("1-000006", {"queue": "vip", "agent": "1001", "disposition": "answered", "start_ms": 25 * S,
                  "queue_entry_ms": 26 * S, "answer_ms": 90 * S, "end_ms": 151 * S, "wait_ms": 64 * S,
                  "talk_ms": 61 * S, "ani": "555006", "calendar_start": "2026-03-02T09:00:25"}),
    # Overflowed from vip to front: the last queue is front, the first entry vip's.
    ("1-000007", {"queue": "front", "agent": None, "disposition": "abandoned", "start_ms": 94 * S,
                  "queue_entry_ms": 95 * S, "answer_ms": None, "end_ms": 160 * S, "wait_ms": None, "talk_ms": None,
                  "ani": "555007", "calendar_start": "2026-03-02T09:01:34"}),
])
def test_each_call_folds_into_its_cdr_fields(call: str, want: dict[str, object]) -> None:
    got = fold_call(by_call(EVENTS)[call])
    # an analog trunk's call: none of a PRI call's fields (timeslot, the ANI's attributes, cause)
    pri = dict.fromkeys(("timeslot", "ani_ton", "ani_npi", "ani_presentation", "ani_screening", "cause"))
    assert got == {"call_id": call, "config_version": 1, "trunk": "trunk1", "dnis": "100", **pri, **want}


def test_a_clean_stop_ends_the_open_states_so_a_later_end_adds_nothing() -> None:
    from tests.figures.scenario import CALENDAR_START
    log = [Event(1, 0, "boot", detail={"boot": 1, "calendar_start": CALENDAR_START}),
           state(0, "ready", why="login"), ev(60 * S, "stop", disposition="shutdown")]
    day_later = dt.datetime.fromisoformat(CALENDAR_START) + dt.timedelta(days=1)
    # ready for the 60 s up to the stop, however far past it the report reaches
    assert report(log, "agent", end=day_later)["agents"]["1001"]["ready_ms"] == 60 * S
    assert report(log[:2], "agent", end=day_later)["agents"]["1001"]["ready_ms"] == 86_400 * S


def test_a_report_refuses_more_intervals_than_it_can_hold() -> None:
    start = dt.datetime(2001, 1, 1)
    with pytest.raises(ValueError, match="intervals"):
        report(EVENTS, "queue", start=start, end=dt.datetime(2100, 1, 1), interval=INTERVALS["15m"])
    year = report(EVENTS, "queue", start=start, end=dt.datetime(2002, 1, 1), interval=INTERVALS["15m"])
    assert len(year["intervals"]) == 365 * 96      # a year of 15-minute intervals is allowed
    assert report(EVENTS, "queue", start=start, end=dt.datetime(2100, 1, 1), interval=None)["intervals"] == []


def test_totals_count_calls_not_stays() -> None:
    from appliance.figures import Totals
    t = Totals()
    # call 1 waits in two queues and is answered in the second 8 s after it entered it (10 s after the
    # first); call 2 enters a, overflows to b, hangs up there; call 3 hangs up within 5 s of entering.
    d: dict[str, Any] = {"short_abandon_ms": 5 * S, "first": True}
    for e in [ev(0, "queue_enter", "1", "a", **d), ev(2 * S, "queue_enter", "1", "b", **d),
              ev(10 * S, "answer", "1", "b", "1001"), ev(10 * S, "queue_leave", "1", "a", outcome="withdrawn"),
              ev(0, "queue_enter", "2", "a", **d), ev(30 * S, "queue_leave", "2", "a", outcome="timeout"),
              ev(30 * S, "queue_enter", "2", "b", **{**d, "first": False}),
              ev(40 * S, "queue_leave", "2", "b", outcome="abandoned"),
              ev(0, "queue_enter", "3", "a", **d), ev(4 * S, "queue_leave", "3", "a", outcome="abandoned")]:
        t.add(e)
    assert t.figures() == {"offered": 2, "answered": 1, "abandoned": 1, "short_abandoned": 1,
                           "wait_ms_total": 8 * S}
