"""The engine's commands on control.sock (docs/control-socket.md, "Commands").

``status``, ``config.get``, ``config.apply``, ``queues`` and ``agents`` for the CLI and the panel;
``agent.state`` and ``agent.logout``, a supervisor's actions (the panel's wallboard);
``fault.*`` for tests (refused by the server unless the engine runs with
``--enable-faults``). ``config.apply`` is answered later: the configuration
worker validates and stores the document, the engine switches at a period's
end (:meth:`EngineCommands.poll`), and only then does the client get its reply.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from appliance.acd import MISSED, OTHER, RESTART, AgentState
from appliance.acd.agents import Agent, SuperviseError
from appliance.config.store import without_header
from appliance.config.worker import ApplyJob, ConfigWorker
from appliance.control.server import ControlError, Deferred
from appliance.errors import ApplyError, ConfigError, RestartNeededError
from appliance.figures import no_agent_figures, no_queue_figures
from appliance.spans import SpanFaultError
from drivers.errors import DriverError
from drivers.hal import EventType

if TYPE_CHECKING:
    from appliance.engine import Engine

log = logging.getLogger("cicbox.control")

#: clock.advance runs at most this much at once (a day of engine clock)
MAX_ADVANCE_MS = 86_400_000

# fault.drop_event: the card events a test may have the sim card lose
DROPPABLE = {"hook_off": EventType.HOOK_OFF, "hook_on": EventType.HOOK_ON, "flash": EventType.FLASH,
             "ring_on": EventType.RING_ON, "ring_off": EventType.RING_OFF, "battery": EventType.BATTERY,
             "polarity": EventType.POLARITY}


class EngineCommands:
    """Registers the engine's handlers on its control server and finishes deferred replies."""

    def __init__(self, engine: Engine, document: tuple[int, str, str] | None) -> None:
        self.engine = engine
        self.document = document          # the configuration in force: (version, text, author)
        ctl = engine.control
        ctl.register("status", lambda req: engine.snapshot())
        ctl.register("config.get", self.config_get)
        ctl.register("config.apply", self.config_apply)
        ctl.register("queues", self.queues)
        ctl.register("agents", self.agents)
        ctl.register("agent.state", self.agent_set_state)
        ctl.register("agent.logout", self.agent_logout)
        ctl.register("fault.freeze_media", self.freeze_media)
        ctl.register("fault.drop_event", self.drop_event)
        ctl.register("fault.agent_state", self.agent_state)
        ctl.register("span.status", lambda req: engine.spans.status())
        ctl.register("span.fault", self.span_fault, fault=True)
        ctl.register("clock.advance", self.clock_advance)
        # clock.advance on a paused engine: (ms, reply) waiting their turn; the running one's end (engine ms)
        self.advances: list[tuple[int, Deferred]] = []
        self._advance_end: int | None = None

    def poll(self) -> None:
        """Answer control.sock and finish configuration hand-offs (each period; also for a paused engine)."""
        self.engine.control.poll()
        if self.engine.config_worker is not None:
            self.hand_off(self.engine.config_worker)

    # -- configuration -----------------------------------------------------------------

    def config_get(self, req: dict[str, Any]) -> Any:
        doc = self.document
        text = without_header(doc[1]) if doc else None   # not the header it was applied with
        return {"version": self.engine.config_version, "text": text, "author": doc[2] if doc else None}

    def config_apply(self, req: dict[str, Any]) -> Any:
        """Hand the document to the configuration worker; the reply follows once it is in force."""
        worker = self.engine.config_worker
        if worker is None:
            raise ControlError("this engine has no configuration store")
        text, base = req.get("text"), req.get("base_version")
        if not isinstance(text, str):
            raise ControlError("text must be the configuration document as a string")
        if base is not None and (not isinstance(base, int) or isinstance(base, bool) or base < 1):
            raise ControlError(f"base_version must be a version number (1, 2, ...), not {base!r}")
        reply = Deferred()
        worker.submit(ApplyJob(text, str(req.get("filename", "<control>")), str(req.get("author", "unknown")),
                               base, self.engine.clock.now_ms, reply))
        return reply

    def hand_off(self, worker: ConfigWorker) -> None:
        """At the period boundary: switch to what the worker prepared, reply to what it finished.
        In virtual time the clock waits for each hand-off, so every run sees the same periods."""
        virtual = self.engine.mode == "virtual"
        if virtual:
            worker.settle()
        for job in worker.take_prepared():
            p = job.prepared
            try:
                if p is None:
                    raise ApplyError("nothing was prepared")
                self.engine.switch_config(p.config, p.version, job.preloaded)
            except RestartNeededError as exc:
                worker.switched(job, str(exc), restart=True)
            except ApplyError as exc:
                worker.switched(job, str(exc))
            except Exception as exc:      # a bug in the switch: the old version stays, the client hears why
                log.exception("config: switching to version %s failed", p.version if p else "?")
                worker.switched(job, f"internal error while switching: {exc}")
            else:
                self.document = (p.version, p.text, p.author)
                worker.switched(job, None)
        if virtual:
            worker.settle()
        for job in worker.take_done():
            if job.error is None and job.prepared is not None and job.restart_needed:
                job.reply.resolve({"version": job.prepared.version, "in_force": False,
                                   "restart_needed": job.switch_error})
            elif job.error is None and job.prepared is not None:
                job.reply.resolve({"version": job.prepared.version})
            elif isinstance(job.error, ConfigError):
                job.reply.fail(ControlError(
                    f"configuration has {len(job.error.issues)} problem(s)",
                    [{"file": i.file, "line": i.line, "col": i.col, "message": i.message}
                     for i in job.error.issues]))
            else:
                job.reply.fail(ControlError(str(job.error or "nothing was prepared")))

    # -- live figures ------------------------------------------------------------------

    def queues(self, req: dict[str, Any]) -> Any:
        """Each queue now (waiting, longest_wait_ms, agents by state) with today's figures, and the last
        30 minutes' intervals (docs/reports.md)."""
        eng = self.engine
        return _merged("queues", eng.acd.queues_view(), eng.live_figures.queues(eng.boot, eng.clock.now_ms),
                       no_queue_figures(), {"waiting": 0, "longest_wait_ms": 0, "agents": {}})

    def agents(self, req: dict[str, Any]) -> Any:
        """Each agent now (state, since_ms, reason, queue) with today's figures, and the last 30 minutes'
        intervals (docs/reports.md)."""
        eng = self.engine
        return _merged("agents", eng.acd.agents_view(), eng.live_figures.agents(eng.boot, eng.clock.now_ms),
                       no_agent_figures(), {"state": "logged_out", "since_ms": None, "reason": None, "queue": None})

    # -- a supervisor's actions on agents -----------------------------------------------------

    def _agent(self, req: dict[str, Any]) -> Agent:
        number = req.get("number")
        agent = self.engine.acd.agents.get(number) if isinstance(number, str) else None
        if agent is None:
            known = ", ".join(a.number for a in self.engine.acd.agents.values()) or "none"
            raise ControlError(f"number must be a configured agent's number ({known}), not {number!r}")
        return agent

    def _supervise(self, agent: Agent, action: str, reason: str | None) -> Any:
        before = {"state": agent.state.value, "reason": agent.reason}
        try:
            result = self.engine.acd.agents.supervise(agent, action, reason)
        except SuperviseError as exc:
            raise ControlError(str(exc)) from None
        return {"number": agent.number, "result": result, "before": before,
                "state": agent.state.value, "reason": agent.reason}

    def agent_set_state(self, req: dict[str, Any]) -> Any:
        """A supervisor makes an agent ready or not ready (`reason`: one of the site's not-ready reasons,
        or other). A ringing or talking agent changes when the offer or the call ends ("pending")."""
        agent = self._agent(req)
        state, reason = req.get("state"), req.get("reason")
        if not isinstance(state, str) or state not in ("ready", "not_ready"):
            raise ControlError(f"state must be ready or not_ready, not {state!r}")
        if state == "ready":
            if reason is not None:
                raise ControlError(f"a reason goes with not_ready only, not {state}")
            return self._supervise(agent, "ready", None)
        reasons = {*self.engine.acd.settings.not_ready_reasons.values(), OTHER}
        reason = OTHER if reason is None else _reason_text(reason, reasons)
        if reason not in reasons:
            raise ControlError(f"reason must be one of {', '.join(sorted(reasons))}, not {reason!r}")
        return self._supervise(agent, "not_ready", reason)

    def agent_logout(self, req: dict[str, Any]) -> Any:
        """A supervisor logs an agent out; a ringing or talking agent is logged out when the offer or the
        call ends ("pending"), and its call goes on."""
        return self._supervise(self._agent(req), "logout", None)

    # -- spans and the paused clock ---------------------------------------------------------

    def span_fault(self, req: dict[str, Any]) -> Any:
        """What a span's in-process far end does to the line (sim card; refused without --enable-faults)."""
        try:
            return self.engine.spans.fault(req.get("span"), req.get("fault"), req.get("ms"))
        except SpanFaultError as exc:
            raise ControlError(str(exc)) from None

    def clock_advance(self, req: dict[str, Any]) -> Any:
        """A paused engine runs `ms` of engine clock (whole control periods), then replies {tick_ms}."""
        if not self.engine.paused:
            raise ControlError("clock.advance is for a paused engine (cicbox run --clock virtual --paused); "
                               "this one's clock runs by itself")
        ms = req.get("ms")
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 < ms <= MAX_ADVANCE_MS:
            raise ControlError(f"ms must be a number of ms 1-{MAX_ADVANCE_MS}, not {ms!r}")
        reply = Deferred()
        self.advances.append((ms, reply))
        return reply

    def run_advances(self) -> bool:
        """The paused engine's loop: run one control period of the first clock.advance waiting, or
        reply to it once its time has run; False when none waits."""
        eng = self.engine
        while self.advances:
            ms, reply = self.advances[0]
            if self._advance_end is None:
                self._advance_end = eng.clock.now_ms + ms
            if eng.clock.now_ms < self._advance_end:
                eng.run_period()
                return True
            self.advances.pop(0)
            self._advance_end = None
            reply.resolve({"tick_ms": eng.clock.now_ms})
            eng.control.poll()              # the reply goes out now
        return False

    # -- faults (tests only) -------------------------------------------------------------

    def freeze_media(self, req: dict[str, Any]) -> Any:
        on = req.get("on")
        if not isinstance(on, bool):
            raise ControlError(f"on must be true or false, not {on!r}")
        self.engine.tier_.sched.freeze_progress(on)
        return {"frozen": on}

    def drop_event(self, req: dict[str, Any]) -> Any:
        """The card loses the next event of `type` on channel `chan` (its line level still changes)."""
        card = self.engine.tier_.card
        chan, name = req.get("chan"), str(req.get("type", ""))
        if not isinstance(chan, int) or isinstance(chan, bool) or not 0 <= chan < len(card.channels):
            raise ControlError(f"chan must be a channel number 0-{len(card.channels) - 1}, not {chan!r}")
        if name not in DROPPABLE:
            raise ControlError(f"type must be one of {', '.join(DROPPABLE)}, not {name!r}")
        drop = getattr(card, "drop_next_event", None)
        if "fault_drop_event" not in card.capabilities or drop is None:
            raise ControlError(f"the {card.name} card cannot drop events")
        try:
            drop(chan, DROPPABLE[name])
        except DriverError as exc:
            raise ControlError(str(exc)) from None
        return {"chan": chan, "type": name}

    def agent_state(self, req: dict[str, Any]) -> Any:
        """Set an agent's state with nothing behind it (no call, no phone change): the ACD's check of
        agents against their phones must heal it within a second (a test of that check)."""
        acd = self.engine.acd
        number, state, reason = req.get("agent"), req.get("state"), req.get("reason")
        agent = acd.agents.get(number) if isinstance(number, str) else None
        if agent is None:
            raise ControlError(f"agent must be a configured agent's number, not {number!r}")
        try:
            if not isinstance(state, str):
                raise ValueError(state)
            new = AgentState(state)
        except ValueError:
            raise ControlError(f"state must be one of {', '.join(s.value for s in AgentState)}, "
                               f"not {state!r}") from None
        if new is not AgentState.LOGGED_OUT and agent.phone is None:
            raise ControlError(f"agent {number} is logged out: it has no phone to be {new.value} at")
        reasons = {*acd.settings.not_ready_reasons.values(), OTHER, MISSED, RESTART}
        if new is AgentState.NOT_READY:
            reason = OTHER if reason is None else _reason_text(reason, reasons)
            if reason not in reasons:
                raise ControlError(f"reason must be one of {', '.join(sorted(reasons))}, not {reason!r}")
        elif reason is not None:
            raise ControlError(f"a reason goes with not_ready only, not {new.value}")
        wrap = max((q.spec.wrap_up_ms for q in acd.queues.values() if number in q.members), default=0)
        acd.agents.force(agent, new, reason, wrap_ms=wrap or 1000)
        return {"agent": number, "state": new.value}


def _reason_text(reason: object, reasons: set[str]) -> str:
    """`reason` if it is a string; else a ControlError naming the reasons allowed."""
    if not isinstance(reason, str):
        raise ControlError(f"reason must be one of {', '.join(sorted(reasons))} (a string), not {reason!r}")
    return reason


def _merged(key: str, view: dict[str, dict[str, Any]], figs: dict[str, Any], no_figures: dict[str, Any],
            no_view: dict[str, Any]) -> dict[str, Any]:
    """Each name of the live view or of today's figures (`figs[key]`), its figures then its view."""
    today = figs[key]
    return {key: {n: {**today.get(n, no_figures), **view.get(n, no_view)} for n in sorted(set(view) | set(today))},
            "intervals": figs["intervals"]}
