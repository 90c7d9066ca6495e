"""The engine's state as control.sock publishes it (docs/control-socket.md, "Snapshot").

One function over the engine's public state: ports (with each one's echo
canceller), calls, agents, queues, alarms and counters, spans (as span.status
gives them, and the timeslots whose echo canceller is not off), the sync
source and the site's not-ready reasons, stamped with the engine clock. The CLI's `status`, the panel and the wallboard
all read this shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appliance.engine import Engine


#: what a call's row adds for a PRI call (None for an FXO call)
PRI_CALL_KEYS = ("timeslot", "ani_ton", "ani_npi", "ani_presentation", "ani_screening")


def engine_snapshot(engine: Engine) -> dict[str, Any]:
    now = engine.clock.now_ms
    nports = len(engine.config.ports)
    # the call each port is in (its caller's trunk, or the phone of the agent it rings or talks to)
    on_port: dict[int, str] = {}
    for c in engine.calls.values():
        for leg in c.legs:
            if leg.chan < nports:
                on_port.setdefault(leg.chan, c.id)
    ports = []
    for idx, port in enumerate(engine.config.ports):
        line: Any = engine.trunks[idx] if idx in engine.trunks else engine.phones[idx]
        ports.append({"index": idx, "name": port.name, "kind": port.kind, "state": line.state.name.lower(),
                      "state_since_ms": line.state_since_ms, "call_id": on_port.get(idx),
                      "echo": engine.echo.view(idx)})
    # the spans' timeslots whose echo canceller is not off (a port's is in its row)
    echo_timeslots = [{"channel": c, "name": engine.echo.name(c), **engine.echo.view(c)}
                      for c in engine.echo.not_off() if c >= nports]
    # state_since_ms (and since_ms, its older name): when the call entered its current state (the wallboard
    # shows time waiting, talking...); port: the caller's port (an FXO trunk's index; null for a PRI call)
    # a PRI call's caller: its timeslot and its calling number's attributes as received (null for FXO)
    calls = [{"id": c.id, "ani": c.ani, "dnis": c.dnis, "trunk": c.trunk_name, "state": c.state.name.lower(),
              "port": c.caller.chan if c.caller.chan < nports else None,
              "queue": c.queue, "agent": c.agent or c.offered_to, "since_ms": c.state_since_ms,
              "state_since_ms": c.state_since_ms,
              "started_ms": c.start_ms, "line": c.caller.kind.value,
              **{k: c.line.get(k) for k in PRI_CALL_KEYS}}
             for c in engine.calls.values()]
    # an agent's pending: what a supervisor or *24 asked during an offer or a call ("logout", "not_ready")
    agents = [{"number": number, "name": a["name"], "phone": a["phone"], "state": a["state"], "reason": a["reason"],
               "since_ms": a["since_ms"], "state_since_ms": a["since_ms"], "pending": a["pending"],
               "call_id": a["call_id"]}
              for number, a in engine.acd.agents_view().items()]
    queues = [{"name": name, "waiting": q["waiting"], "longest_wait_ms": q["longest_wait_ms"],
               "agents": q["agents"]}
              for name, q in engine.acd.queues_view().items()]
    counters = dict(engine.counter_alarms.counters)
    writer = engine.writer.stats()
    counters["records_spooled"] = writer["records_spooled"]
    counters["records_held"] = writer["held_records"]
    counters["calls_refused"] = engine.call_layer.refused
    counters["records_not_yet_durable"] = engine.records_not_yet_durable
    counters.update(engine.tier_.dropped_by_kind())   # the events_dropped alarm's detail, by kind
    spans = engine.spans.status()                      # span.status's spans and sync source
    return {"tick_ms": now, "calendar": engine.calendar(now).isoformat(timespec="seconds"),
            "config_version": engine.config_version, "site": engine.config.site.name,
            "ports": ports, "calls": calls, "agents": agents, "queues": queues,
            "alarms": engine.alarms.snapshot(), "counters": counters,
            "sync_source": spans["sync_source"], "spans": spans["spans"], "echo_timeslots": echo_timeslots,
            # the site's acd.not_ready_reasons (code -> name), of the configuration in force: what a supervisor
            # may give agent.state besides `other` (the wallboard offers them next to Not ready)
            "not_ready_reasons": dict(engine.acd.settings.not_ready_reasons)}


def echo_text(view: Any) -> str:
    """A channel's echo canceller (a snapshot's ``echo`` object) as the CLI and the panel print it:
    "128 taps" when on, else its state: "off", "tone-disabled" or "fax"; "" for anything else."""
    if not isinstance(view, dict) or not isinstance(view.get("state"), str):
        return ""
    state = view["state"]
    taps = view.get("taps")
    if state == "on":
        return f"{taps} taps" if isinstance(taps, int) and not isinstance(taps, bool) else "on"
    return str(state)
