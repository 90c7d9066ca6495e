"""Helpers of the ACD acceptance tests (test_acd_heard.py, test_acd_phones.py): a site YAML with
the queue, agents and ACD settings a test names, and what a caller or a phone heard, measured
against the shipped prompts and the zone's tones (figures from line-signals.md, never the product's)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from appliance.prompts import read_wav
from appliance.storage import Event, read_events
from tests import signals
from tests.e2e.harness import Site, decode
from tests.peers.spandsp_far import dtmf as spandsp_dtmf
from tests.signals import peak_xcorr

PROMPTS = Path(__file__).resolve().parent.parent.parent / "configs" / "prompts" / "en"
FIRST_PHONE = 3          # acd_yaml: three trunks (ports 0-2), then the phones
DIAL_HZ = 450            # cn: dial tone 450 continuous, congestion 450/700,0/700 [line-signals.md]
RINGBACK_ON_MS, RINGBACK_OFF_MS = 1000, 4000     # cn ringback 450/1000,0/4000
PERIOD = 12              # card k 4: the control period, 4 x ceil(10 / 4) ms


def acd_yaml(*, queue: str, agents: list[str] | None = None, acd: str = "{}", trunks: int = 3,
             routes: str | None = None, ivrs: str | None = None, extra_queues: str = "",
             answer_on_ring: int = 1) -> str:
    """A site: `trunks` trunks (answering on ring `answer_on_ring`; caller ID comes after ring 1), one
    phone per agent line of `agents` (YAML flow mappings without the phone, which is phone1, phone2...
    in order), queue front_desk = `queue` (a YAML flow mapping), `acd` the acd: section; routes default
    to every trunk straight to front_desk; ivrs default to main (welcome, key 1: front_desk) and
    evening (welcome_evening, key 1: front_desk)."""
    agents = agents if agents is not None else ["{number: '1001', name: Agent 1}"]
    ports = [f"  - {{kind: fxo, name: trunk{i + 1}, number: '07558888{i + 1:04d}', callerid: fsk_bell202, "
             f"answer_on_ring: {answer_on_ring}}}" for i in range(trunks)]
    ports += [f"  - {{kind: fxs, name: phone{i + 1}, extension: '80{i + 1:02d}'}}" for i in range(len(agents))]
    agent_lines = [f"  - {a[:-1]}, phone: phone{i + 1}}}" for i, a in enumerate(agents)]
    if routes is None:
        routes = "\n".join(f"  - {{trunk: trunk{i + 1}, queue: front_desk}}" for i in range(trunks))
    if ivrs is None:
        ivrs = textwrap.dedent("""\
              main: {greeting: welcome, language: en, menu: {'1': {queue: front_desk}}, timeout_ms: 5000,
                     max_repeats: 2}
              evening: {greeting: welcome_evening, language: en, menu: {'1': {queue: front_desk}},
                        timeout_ms: 5000, max_repeats: 2}""")
    return "\n".join([
        "site: {name: Test Hotel, zone: cn, law: alaw, epoch: '2026-03-01T09:30:00'}",
        "card: {backend: sim, k: 4}",
        f"acd: {acd}",
        "ports:", *ports,
        "spans: []",
        "routes:", routes,
        "ivrs:", textwrap.indent(ivrs, "  "),
        "queues:", f"  front_desk: {queue}", *([extra_queues] if extra_queues else []),
        "agents:", *agent_lines, ""])


def wav(name: str) -> Any:
    return np.array(read_wav(PROMPTS / f"{name}.wav"), dtype=float)


def heard_at(caller: Any, tick: int, ms: int) -> Any:
    """What the caller heard from `tick` for `ms` (linear samples); before its answer it heard nothing."""
    a = (tick - caller.answered_ms) * 8
    before = np.zeros(max(0, -a))
    return np.concatenate([before, decode(caller.heard[max(0, a):a + ms * 8])])


def prompt_heard(caller: Any, name: str, tick: int, lead_ms: int = 60) -> float:
    """The correlation of prompt `name` with what the caller heard from `tick` - `lead_ms`, lags up to
    2 x `lead_ms` (a short window: the prompt must be where the test says)."""
    ref = wav(name)
    heard = heard_at(caller, tick - lead_ms, len(ref) // 8 + 2 * lead_ms)
    return peak_xcorr(heard, ref, 2 * lead_ms * 8)


def ms_of(*names: str) -> int:
    """How long these prompts play one after the other (whole ms)."""
    return sum(len(wav(n)) for n in names) // 8


def loud(x: Any, dbm0: float = -40.0) -> bool:
    return bool(len(x)) and signals.level_dbm0(x) > dbm0


def envelope_ms(x: Any, dbm0: float = -40.0) -> list[tuple[int, int]]:
    """The [start, end) ms of each burst above `dbm0` in `x` (linear samples from its ms 0)."""
    frames = x[: len(x) // 8 * 8].reshape(-1, 8)
    on = np.sqrt(np.mean(frames ** 2, axis=1)) * np.sqrt(2) > 32768 * 10 ** ((dbm0 - 3.14) / 20)
    edges = np.nonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))[0]
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def events(site: Site, kind: str | None = None, **match: Any) -> list[Event]:
    """The stored events (of `kind`, with these fields equal), in order."""
    out = []
    for e in read_events(site.state / "cicbox.db"):
        if kind is not None and e.kind != kind:
            continue
        if all(getattr(e, k) == v for k, v in match.items()):
            out.append(e)
    return out


def line_at(phone: Any, tick: int, ms: int) -> Any:
    """What the card sent the phone from `tick` for `ms` (linear samples)."""
    a = (tick - phone.line_start) * 8
    assert a >= 0
    return decode(phone.line[a:a + ms * 8])


def tone_kind(x: Any) -> str:
    """The cn tone in `x` (from its start), by its cadence [line-signals.md; confirm: tone.c's choice]:
    dial (450 steady), congestion (450/700,0/700), confirm (three 100 ms bursts), silence, or what
    else it was."""
    bursts = [b for b in envelope_ms(x) if b[1] - b[0] >= 20]
    if not bursts:
        return "silence"
    a, b = bursts[0]
    if abs(signals.frequency(x[a * 8:min(b, a + 80) * 8]) - DIAL_HZ) > 3:
        return f"not 450 Hz: {bursts}"
    lengths = [e - s for s, e in bursts]
    if len(bursts) == 3 and all(abs(n - 100) <= 3 for n in lengths):
        return "confirm"
    if abs(lengths[0] - 700) <= 3 and (len(bursts) == 1 or bursts[1][0] - bursts[0][1] >= 690):
        return "congestion"
    if len(bursts) == 1 and bursts[0][1] >= len(x) // 8 - 1 and lengths[0] >= 1000:
        return "dial"
    return f"other: {bursts}"


def dial_code(site: Site, port: int, digits: str) -> tuple[str, str]:
    """The phone at `port` goes off hook, dials `digits` after 600 ms of dial tone, listens 1.5 s, goes
    on hook. (what it heard after the first digit, the phone machine's state then)."""
    far, eng = site.world.far, site.engine
    assert far is not None
    far.hook(port, True, at_tick=eng.clock.now_ms)
    site.run(600)
    start = eng.clock.now_ms
    site.world.dial(port, digits)
    site.run(len(spandsp_dtmf(digits)) // 8 + 1500)
    state = eng.phones[port].state.name
    heard = line_at(site.world.phones[port], start + 150, eng.clock.now_ms - start - 150 - PERIOD)
    far.hook(port, False, at_tick=eng.clock.now_ms)
    site.run(200)
    return tone_kind(heard), state
