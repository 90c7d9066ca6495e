"""Configuration work off the control loop.

Parsing and validating a document, storing its version (each file fsynced),
and loading the prompts it names all take time the control loop does not have.
The engine hands each `config.apply` to :class:`ConfigWorker`, one at a time:

1. the worker validates and stores the document (status "pending") and loads
   its prompts; the job comes back to the loop **prepared** (or with its error);
2. the loop switches to it at the end of a control period (memory only) and
   tells the worker whether the switch held;
3. the worker records the outcome (the ``current`` pointer, or "failed") and
   the job comes back **done**; the loop sends the reply.

A job is finished (step 3) before the next one is validated, so the version
check of a later apply always sees the outcome of an earlier one. In virtual
time the loop waits for each hand-off (:meth:`ConfigWorker.settle`), as it does
for records, so a test sees the same periods on every run.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.config.model import SiteConfig
from appliance.config.store import ConfigStore, Prepared
from appliance.errors import ApplianceError

log = logging.getLogger("cicbox.config")

#: loads what a configuration needs from disk (prompts) and returns it for the switch
Preload = Callable[[SiteConfig], Any]


@dataclass
class ApplyJob:
    """One `config.apply`, from request to reply."""

    text: str
    filename: str
    author: str
    base_version: int | None
    tick: int
    reply: Any = None                       # the control server's Deferred
    prepared: Prepared | None = None
    preloaded: Any = None
    error: Exception | None = None          # ConfigError / ApplyError / PromptError: the reply's error
    switch_error: str | None = None         # set by the loop when the switch did not hold
    restart_needed: bool = False            # ... because only a restart can put it in force
    _switched: threading.Event = field(default_factory=threading.Event)


class ConfigWorker:
    """One thread that validates, stores and records configuration versions."""

    def __init__(self, store: ConfigStore, preload: Preload) -> None:
        self.store = store
        self.preload = preload
        self._jobs: queue.Queue[ApplyJob | None] = queue.Queue()
        self._prepared: queue.Queue[ApplyJob] = queue.Queue()
        self._done: queue.Queue[ApplyJob] = queue.Queue()
        self._cv = threading.Condition()
        self._busy = 0                      # hand-offs the worker owes the loop
        self._thread = threading.Thread(target=self._run, name="cicbox-config", daemon=True)
        self._thread.start()

    # -- the loop's side (never blocks, except settle() in virtual time) ----------

    def submit(self, job: ApplyJob) -> None:
        with self._cv:
            self._busy += 1
        self._jobs.put(job)

    def take_prepared(self) -> list[ApplyJob]:
        return _drain(self._prepared)

    def switched(self, job: ApplyJob, error: str | None, restart: bool = False) -> None:
        """The loop's verdict on a prepared job: `error` is None if the switch held; `restart`: it
        could not because only a restart can put it in force (it is kept for the next start)."""
        job.switch_error = error
        job.restart_needed = restart
        with self._cv:
            self._busy += 1
        job._switched.set()

    def take_done(self) -> list[ApplyJob]:
        return _drain(self._done)

    def settle(self) -> None:
        """Wait until the worker owes nothing (virtual time: the clock waits for the hand-off)."""
        with self._cv:
            self._cv.wait_for(lambda: self._busy == 0)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=10)

    # -- the worker ----------------------------------------------------------------

    def _owe_less(self) -> None:
        with self._cv:
            self._busy -= 1
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._one(job)
            except Exception as exc:  # a bug here must still answer the client
                log.exception("config: apply failed")
                job.error = ApplianceError(f"internal error while applying: {exc}")
                self._done.put(job)
                self._owe_less()

    def _one(self, job: ApplyJob) -> None:
        try:
            job.prepared = self.store.prepare(job.text, job.filename, job.author, job.base_version, job.tick)
        except ApplianceError as exc:                   # ConfigError, ApplyError: nothing stored
            job.error = exc
            self._done.put(job)
            self._owe_less()
            return
        try:
            job.preloaded = self.preload(job.prepared.config)
        except ApplianceError as exc:                   # a missing prompt: the version failed
            job.error = self.store.fail(job.prepared, str(exc))
            self._done.put(job)
            self._owe_less()
            return
        self._prepared.put(job)
        self._owe_less()
        job._switched.wait()
        if job.switch_error is not None and job.restart_needed:
            self.store.defer(job.prepared, job.switch_error)
        elif job.switch_error is not None:
            job.error = self.store.fail(job.prepared, job.switch_error)
        else:
            self.store.commit(job.prepared)
        self._done.put(job)
        self._owe_less()


def _drain(q: queue.Queue[ApplyJob]) -> list[ApplyJob]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out
