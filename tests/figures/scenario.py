"""A hand-written event log and its report, computed by hand (docs/reports.md's definitions).

Boot 1 starts at 2026-03-02T09:00:00. Queues: front (SL 20 s, short abandon 5 s), vip (SL 10 s, short
abandon 3 s). One agent, 1001. Ticks in ms from 09:00:00.

- A: front at 2 s, answered by 1001 at 12 s (wait 10 s, within SL), caller hangs up at 72 s (talk 60 s),
  1001 wraps up until 82 s (10 s).
- B: front at 6 s, gone at 9 s: a short abandon (3 s < 5 s).
- C: front at 11 s, gone at 41 s: abandoned, wait 30 s (> SL).
- D: front at 20 s, gone at 35 s: abandoned, wait 15 s (<= SL).
- E: front at 25 s, presses the exit key at 30 s.
- F: front and vip at 26 s; offered to 1001 in vip at 85 s, answered at 90 s (wait 64 s > 10 s),
  withdrawn from front; 1001 hangs up at 150 s (talk 60 s; the caller's end at 151 s comes later),
  wraps up until 170 s (20 s), then not ready (break) until 230 s.
- G: vip at 95 s, times out at 155 s into front (its first entry there), gone at 160 s: abandoned in
  front, wait 5 s (not short: 5 s is not under 5 s; within SL).
- H: vip at 200 s; offered to 1001 at 231 s, ring timeout at 246 s (a miss: 1001 goes not ready,
  missed); gone at 250 s: abandoned, wait 50 s.

Agent 1001: ready 0-3 s, 82-85 s, 230-231 s (7 s); on_call 12-72 s, 90-150 s (120 s); wrap_up 72-82 s,
150-170 s (30 s); not_ready 170-230 s, 246-250 s (the last event) = 64 s; answered 2, missed 1.
"""

from __future__ import annotations

from typing import Any

from appliance.storage import Event

CALENDAR_START = "2026-03-02T09:00:00"
S = 1000
FRONT: dict[str, Any] = {"sl_threshold_ms": 20 * S, "short_abandon_ms": 5 * S, "priority": 0, "skills": {}}
VIP: dict[str, Any] = {"sl_threshold_ms": 10 * S, "short_abandon_ms": 3 * S, "priority": 0, "skills": {}}


def ev(tick: int, kind: str, call: str | None = None, queue: str | None = None, agent: str | None = None,
       **detail: Any) -> Event:
    return Event(1, tick, kind, f"1-00000{call}" if call else None, queue, agent, detail)


def state(tick: int, st: str, queue: str | None = None, call: str | None = None, reason: str | None = None,
          why: str = "") -> Event:
    return ev(tick, "agent_state", None, queue, "1001", state=st, reason=reason, why=why,
              call_id=f"1-00000{call}" if call else None)


def enter(tick: int, call: str, queue: str, first: bool = True) -> Event:
    return ev(tick, "queue_enter", call, queue, **(FRONT if queue == "front" else VIP), first=first)


def leave(tick: int, call: str, queue: str, outcome: str, to: str | None = None) -> Event:
    return ev(tick, "queue_leave", call, queue, outcome=outcome, to=to)


def start(tick: int, call: str) -> Event:
    return ev(tick, "call_start", call, trunk="trunk1", ani=f"55500{call}", dnis="100", config_version=1,
              calendar_start=f"2026-03-02T09:{tick // S // 60:02d}:{tick // S % 60:02d}")


def end(tick: int, call: str, disposition: str, queue: str | None = None, agent: str | None = None) -> Event:
    return ev(tick, "call_end", call, queue, agent, disposition=disposition)


EVENTS = [
    Event(1, 0, "boot", detail={"boot": 1, "calendar_start": CALENDAR_START}),
    state(0, "ready", why="login"),
    start(1 * S, "1"), enter(2 * S, "1", "front"),
    ev(3 * S, "offer", "1", "front", "1001"), state(3 * S, "offered", "front", "1"),
    start(5 * S, "2"), enter(6 * S, "2", "front"),
    leave(9 * S, "2", "front", "abandoned"), end(9 * S, "2", "abandoned", "front"),
    start(10 * S, "3"), enter(11 * S, "3", "front"),
    ev(12 * S, "answer", "1", "front", "1001"), state(12 * S, "on_call", "front", "1"),
    start(19 * S, "4"), enter(20 * S, "4", "front"),
    start(24 * S, "5"), enter(25 * S, "5", "front"),
    start(25 * S, "6"), enter(26 * S, "6", "front"), enter(26 * S, "6", "vip", first=False),
    leave(30 * S, "5", "front", "exit_key", "ivr:main"), end(31 * S, "5", "ivr_hangup", "front"),
    leave(35 * S, "4", "front", "abandoned"), end(35 * S, "4", "abandoned", "front"),
    leave(41 * S, "3", "front", "abandoned"), end(41 * S, "3", "abandoned", "front"),
    end(72 * S, "1", "answered", "front", "1001"), state(72 * S, "wrap_up", "front", "1", why="call ended"),
    state(82 * S, "ready", why="wrap-up over"),
    ev(85 * S, "offer", "6", "vip", "1001"), state(85 * S, "offered", "vip", "6"),
    ev(90 * S, "answer", "6", "vip", "1001"), leave(90 * S, "6", "front", "withdrawn"),
    state(90 * S, "on_call", "vip", "6"),
    start(94 * S, "7"), enter(95 * S, "7", "vip"),
    state(150 * S, "wrap_up", "vip", "6", why="agent hung up"), end(151 * S, "6", "answered", "vip", "1001"),
    leave(155 * S, "7", "vip", "timeout", "queue:front"), enter(155 * S, "7", "front", first=False),
    leave(160 * S, "7", "front", "abandoned"), end(160 * S, "7", "abandoned", "front"),
    state(170 * S, "not_ready", reason="break", why="*241#"),
    start(199 * S, "8"), enter(200 * S, "8", "vip"),
    state(230 * S, "ready", why="*23"),
    ev(231 * S, "offer", "8", "vip", "1001"), state(231 * S, "offered", "vip", "8"),
    ev(246 * S, "offer_end", "8", "vip", "1001", why="no_answer"),
    state(246 * S, "not_ready", reason="missed", why="ring timeout"),
    leave(250 * S, "8", "vip", "abandoned"), end(250 * S, "8", "abandoned", "vip"),
]

NO_OUTCOMES = {"timeout": 0, "full": 0, "no_agents": 0, "overflow": 0, "blacklist": 0}

QUEUES = {
    "front": {"offered": 6, "answered": 1, "abandoned": 3, "short_abandoned": 1, "withdrawn": 1, "exits": 1,
              # SL: 1 answered within 20 s / (1 answered + 3 abandoned - 2 abandoned within 20 s: D, G)
              "answered_within_sl": 1, "sl_pct": 50.0, "asa_ms": 10 * S, "aht_ms": 70 * S, "max_wait_ms": 30 * S,
              "outcomes": NO_OUTCOMES},
    "vip": {"offered": 3, "answered": 1, "abandoned": 1, "short_abandoned": 0, "withdrawn": 0, "exits": 0,
            "answered_within_sl": 0, "sl_pct": 0.0, "asa_ms": 64 * S, "aht_ms": 80 * S, "max_wait_ms": 64 * S,
            "outcomes": {**NO_OUTCOMES, "timeout": 1}},
}
AGENTS = {"1001": {"answered": 2, "missed": 1, "talk_ms": 120 * S, "wrap_ms": 30 * S, "ready_ms": 7 * S,
                   "not_ready_ms": 64 * S}}

# --to 09:01:00: only what happened before it; A still talking (12-60 s), F waiting in both queues.
QUEUES_TO_1MIN = {
    "front": {"offered": 5, "answered": 1, "abandoned": 2, "short_abandoned": 1, "withdrawn": 0, "exits": 1,
              "answered_within_sl": 1, "sl_pct": 50.0, "asa_ms": 10 * S, "aht_ms": 48 * S, "max_wait_ms": 30 * S,
              "outcomes": NO_OUTCOMES},
    "vip": {"offered": 1, "answered": 0, "abandoned": 0, "short_abandoned": 0, "withdrawn": 0, "exits": 0,
            "answered_within_sl": 0, "sl_pct": None, "asa_ms": None, "aht_ms": None, "max_wait_ms": None,
            "outcomes": NO_OUTCOMES},
}
AGENTS_TO_1MIN = {"1001": {"answered": 1, "missed": 0, "talk_ms": 48 * S, "wrap_ms": 0, "ready_ms": 3 * S,
                           "not_ready_ms": 0}}

# --from 09:01:00: the calls entered since: G (vip: timeout; front: abandoned 5 s), H (vip: abandoned 50 s).
QUEUES_FROM_1MIN = {
    "front": {"offered": 1, "answered": 0, "abandoned": 1, "short_abandoned": 0, "withdrawn": 0, "exits": 0,
              "answered_within_sl": 0, "sl_pct": None, "asa_ms": None, "aht_ms": None, "max_wait_ms": 5 * S,
              "outcomes": NO_OUTCOMES},
    "vip": {"offered": 2, "answered": 0, "abandoned": 1, "short_abandoned": 0, "withdrawn": 0, "exits": 0,
            "answered_within_sl": 0, "sl_pct": 0.0, "asa_ms": None, "aht_ms": None, "max_wait_ms": 50 * S,
            "outcomes": {**NO_OUTCOMES, "timeout": 1}},
}
