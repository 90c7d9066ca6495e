"""The site configuration model: one YAML document per site, validated into these types."""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from appliance.config.numbers import check_pattern
from dsp.echo import TAPS_DEFAULT, TAPS_RULE, taps_valid

Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]+$", min_length=1, max_length=32)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
MenuKey = Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")]


def _echo_taps(v: int) -> int:
    if not taps_valid(v):
        raise ValueError(f"{TAPS_RULE}, got {v!r}")
    return v


#: a line's echo canceller: 0 (off), or its filter's length in taps (8 per ms), a multiple of 8 from 32
#: to 512 (dsp.echo.TAPS_RULE); on from the call's answer to its release
EchoTaps = Annotated[int, AfterValidator(_echo_taps)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Site(_Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    zone: Literal["cn", "us", "de"] = "cn"
    law: Literal["alaw", "ulaw"] = "alaw"
    epoch: str | None = None      # ISO 8601: the calendar start of virtual-time runs

    @field_validator("epoch")
    @classmethod
    def _iso(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$", v):
            raise ValueError("must be a date and time like 2026-01-01T00:00:00")
        return v


class Card(_Model):
    backend: Literal["sim", "dahdi"] = "sim"
    k: Annotated[int, Field(ge=1, le=10)] = 4


class BusyCadence(_Model):
    on_ms: Annotated[int, Field(ge=50, le=10000)]
    off_ms: Annotated[int, Field(ge=50, le=10000)]
    count: Annotated[int, Field(ge=1, le=100)] = 3


class FxoPort(_Model):
    kind: Literal["fxo"]
    name: Name
    number: Digits
    callerid: Literal["fsk_bell202", "v23", "dtmf", "none"] = "fsk_bell202"
    answer_on_ring: Annotated[int, Field(ge=1, le=10)] = 2
    disconnect: tuple[Literal["battery", "polarity", "busy"], ...] = ("battery", "polarity", "busy")
    busy_cadence: BusyCadence | None = None
    echo_taps: EchoTaps = TAPS_DEFAULT       # the exchange's line has a 2-wire hybrid: cancelled by default


class FxsPort(_Model):
    kind: Literal["fxs"]
    name: Name
    extension: Digits
    echo_taps: EchoTaps = 0                  # a phone on a short local loop: off unless asked


SpanKind = Literal["e1", "t1"]
SpanFraming = Literal["ccs", "cas", "esf", "d4"]
SpanCoding = Literal["hdb3", "ami", "b8zs"]
Signalling = Literal["none", "pri_cpe", "pri_net", "mfcr2"]
#: a PRI span's switch type: EuroISDN (ETSI EN 300 403, on E1) or national ISDN 2 (NI-2, on T1)
SwitchType = Literal["euroisdn", "national"]
#: the switch type each kind of span speaks
SPAN_SWITCH: dict[str, str] = {"e1": "euroisdn", "t1": "national"}
#: the keys only a PRI span (signalling pri_cpe or pri_net) may have
PRI_KEYS = ("switchtype", "overlap", "exclusive", "timers")
#: what each kind of span may be framed and coded with (the first is the default)
SPAN_FRAMINGS: dict[str, tuple[str, ...]] = {"e1": ("ccs", "cas"), "t1": ("esf", "d4")}
SPAN_CODINGS: dict[str, tuple[str, ...]] = {"e1": ("hdb3", "ami"), "t1": ("b8zs", "ami")}
#: the law each kind of span carries (G.711: E1 A-law, T1 mu-law)
SPAN_LAW: dict[str, str] = {"e1": "alaw", "t1": "ulaw"}
#: the highest clock priority a span may have (1 first, 0 never)
MAX_TIMING = 64


class Span(_Model):
    """An E1 or T1 span. A key left out takes the kind's default (framing ccs / esf, coding hdb3 / b8zs,
    crc4 on for E1; timing the span's list position, 1-based); the loader checks the kind's rules."""

    kind: SpanKind
    name: Name
    framing: SpanFraming | None = None
    coding: SpanCoding | None = None
    crc4: bool | None = None                 # E1 only
    timing: Annotated[int, Field(ge=0, le=MAX_TIMING)] | None = None    # clock priority, 1 first; 0 never
    signalling: Signalling = "none"
    echo_taps: EchoTaps = TAPS_DEFAULT       # every bearer timeslot's canceller
    # PRI spans only (the loader refuses them on others): the switch type (default the kind's), overlap
    # receiving accepted (default true), our SETUPs' channel exclusive (default false: preferred), and
    # the span's Q.931 and Q.921 timers by name (T310, T200...), integer ms, over the site's timers:
    switchtype: SwitchType | None = None
    overlap: bool | None = None
    exclusive: bool | None = None
    timers: dict[str, int] | None = None

    @property
    def line_framing(self) -> str:
        """The framing in force: the one given, else the kind's default."""
        return self.framing or SPAN_FRAMINGS[self.kind][0]

    @property
    def line_coding(self) -> str:
        return self.coding or SPAN_CODINGS[self.kind][0]

    @property
    def line_crc4(self) -> bool:
        """CRC-4 multiframing (E1; on unless crc4: false); never on a T1."""
        return self.kind == "e1" and self.crc4 is not False

    def timing_at(self, index: int) -> int:
        """The clock priority of this span at list position `index` (0-based): the one given, else index + 1."""
        return index + 1 if self.timing is None else self.timing

    @property
    def pri(self) -> bool:
        """A PRI span: the user side (pri_cpe) or the network side (pri_net) of Q.931 over a D-channel."""
        return self.signalling in ("pri_cpe", "pri_net")

    @property
    def pri_switch(self) -> str:
        """The switch type in force: the one given, else the kind's (euroisdn on E1, national on T1)."""
        return self.switchtype or SPAN_SWITCH[self.kind]

    @property
    def pri_overlap(self) -> bool:
        """Overlap receiving accepted (the default), or every SETUP's called number taken as complete."""
        return self.overlap is not False

    @property
    def pri_exclusive(self) -> bool:
        """Our SETUPs name their B-channel exclusive (else preferred, the default)."""
        return self.exclusive is True

    @property
    def ts16(self) -> Literal["clear", "dchan", "cas"]:
        """The signalling timeslot's role (E1 TS16, T1 TS24): a D-channel for PRI, CAS for MFC/R2 and for
        a span without signalling under cas framing, else a clear channel."""
        if self.pri:
            return "dchan"
        if self.signalling == "mfcr2" or self.line_framing == "cas":
            return "cas"
        return "clear"


#: a prompt's file name without .wav (configs/prompts/<language>/<name>.wav, or the site's own)
PromptName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
#: a skill's level: 0 (the same as not having the skill) to 10; a call asks {skill: min level},
#: and a minimum of 0 admits every agent, with the skill or without it
SkillLevel = Annotated[int, Field(ge=0, le=10)]
Skills = dict[Name, SkillLevel]
#: 0 (the default) to 9; a higher priority is served first
Priority = Annotated[int, Field(ge=0, le=9)]

#: how a queue picks among the ready members of the best skill rank
Strategy = Literal["ring_all", "longest_idle", "round_robin", "fewest_calls", "least_talk_time", "linear",
                   "random"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
#: the agent states (not_ready has a reason)
AgentState = Literal["logged_out", "ready", "offered", "on_call", "wrap_up", "not_ready"]
AGENT_STATES: tuple[str, ...] = get_args(AgentState)
#: the states a queue may count as "no agents" (ready never is)
EmptyState = Literal["logged_out", "not_ready", "wrap_up", "on_call", "offered"]
#: not-ready reasons the appliance gives itself: no site may configure them
RESERVED_REASONS = ("other", "missed", "restart")


def _pin(v: str) -> str:
    if not re.fullmatch(r"[0-9]{4,8}", v):
        raise ValueError(f"a PIN is 4 to 8 digits, got {v!r}")
    return v


def _reason_code(v: str) -> str:
    if not re.fullmatch(r"[0-9]{1,2}", v):
        raise ValueError(f"a not-ready reason code is 1 or 2 digits, got {v!r}")
    return v


def _reason_name(v: str) -> str:
    if v in RESERVED_REASONS:
        raise ValueError(f"reason '{v}' is the appliance's own (other, missed and restart cannot be configured)")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,31}", v):
        raise ValueError(f"{v!r} is not a reason name (a letter, then letters, digits, _ or -, at most 32)")
    return v


def _feature(v: str) -> str:
    if not re.fullmatch(r"\*[0-9]{1,3}", v):
        raise ValueError(f"a feature code is * and 1 to 3 digits, got {v!r}")
    return v


Pin = Annotated[str, AfterValidator(_pin)]
ReasonCode = Annotated[str, AfterValidator(_reason_code)]
ReasonName = Annotated[str, AfterValidator(_reason_name)]
FeatureCode = Annotated[str, AfterValidator(_feature)]
#: a number or a prefix (trailing *), normalised (no spaces, dashes or leading +): see numbers.py
NumberPattern = Annotated[str, AfterValidator(check_pattern)]


class Target(_Model):
    """Where a caller goes: exactly one of a queue, an IVR, or a prompt played before hanging up."""

    queue: Name | None = None
    ivr: Name | None = None
    hangup: PromptName | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if sum(v is not None for v in (self.queue, self.ivr, self.hangup)) != 1:
            raise ValueError("a target is exactly one of queue, ivr, hangup")
        return self

    def kind(self) -> Literal["queue", "ivr", "hangup"]:
        return "queue" if self.queue is not None else "ivr" if self.ivr is not None else "hangup"

    def name(self) -> str:
        """The queue's, the IVR's or the prompt's name."""
        return self.queue or self.ivr or self.hangup or ""     # exactly one is set, never empty

    def ref(self) -> str:
        """``queue:NAME``, ``ivr:NAME`` or ``hangup:PROMPT`` (an event's ``to``)."""
        return f"{self.kind()}:{self.name()}"


class Route(_Model):
    """A call from a trunk (or to a DNIS) goes to an IVR or straight to a queue (or several)."""

    trunk: Name | None = None
    dnis: Digits | None = None
    ivr: Name | None = None
    queue: Name | None = None
    queues: Annotated[tuple[Name, ...], Field(min_length=1, max_length=16)] | None = None
    skills: Skills = {}
    priority: Priority = 0

    def queue_names(self) -> tuple[str, ...]:
        """The queues the call enters at once (none for a route to an IVR)."""
        return (self.queue,) if self.queue is not None else self.queues or ()


class MenuAction(_Model):
    """One key of an IVR menu: queue(s) (with the skills and priority the call asks), hang up or repeat."""

    queue: Name | None = None
    queues: Annotated[tuple[Name, ...], Field(min_length=1, max_length=16)] | None = None
    skills: Skills = {}
    priority: Priority = 0
    hangup: bool = False
    repeat: bool = False

    def queue_names(self) -> tuple[str, ...]:
        """The queues the call enters (none for hang up or repeat)."""
        return (self.queue,) if self.queue is not None else self.queues or ()


class Ivr(_Model):
    greeting: PromptName
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] = "en"
    menu: dict[MenuKey, MenuAction] = {}
    timeout_ms: Annotated[int, Field(ge=500, le=60000)] = 5000
    max_repeats: Annotated[int, Field(ge=0, le=10)] = 2


class ExitKey(_Model):
    """A key a waiting caller presses to leave the queue for `to`."""

    key: MenuKey
    to: Target


class Announce(_Model):
    """Position and expected-wait announcements to a waiting caller."""

    first_after_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 15000
    every_ms: Annotated[int, Field(ge=5000, le=3_600_000)] = 30000
    position: bool = True
    wait: bool = True


class Widen(_Model):
    """After `after_ms` in the queue, the call's minimum for `skill` drops to `min`."""

    after_ms: Annotated[int, Field(ge=1, le=86_400_000)]
    skill: Name
    min: SkillLevel = 0


class Queue(_Model):
    agents: tuple[Digits, ...] = ()
    ring_timeout_ms: Annotated[int, Field(ge=1000, le=120000)] = 15000
    strategy: Strategy = "longest_idle"
    wrap_up_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 0
    max_callers: Annotated[int, Field(ge=1, le=100_000)] | None = None     # None: no limit
    max_wait_ms: Annotated[int, Field(ge=1000, le=86_400_000)] | None = None  # None: wait without limit
    empty_when: tuple[EmptyState, ...] = ("logged_out",)
    on_timeout: Target | None = None        # after max_wait_ms
    on_full: Target | None = None           # a caller arriving at max_callers
    on_no_agents: Target | None = None      # every member in an empty_when state (None: wait)
    exit_key: ExitKey | None = None
    hold: PromptName = "ringback"           # ringback, or a prompt played in a loop
    announce: Announce | None = None        # None: no announcements
    sl_threshold_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 20000
    short_abandon_ms: Annotated[int, Field(ge=0, le=600_000)] = 0   # 0: every abandon counts
    expected_aht_ms: Annotated[int, Field(ge=1000, le=86_400_000)] = 180000
    widen: tuple[Widen, ...] = ()

    def overflows(self) -> tuple[tuple[str, Target], ...]:
        """(key, target) of the overflow rules that are set, in the order on_timeout, on_full, on_no_agents."""
        rules = (("on_timeout", self.on_timeout), ("on_full", self.on_full), ("on_no_agents", self.on_no_agents))
        return tuple((k, t) for k, t in rules if t is not None)


class Agent(_Model):
    number: Digits
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    phone: Name | None = None
    pin: Pin | None = None                  # None: log in with *21<agent># (no PIN asked)
    skills: Skills = {}


class Sticky(_Model):
    """A caller answered within `window_days` is first offered to that agent for `reserve_ms`."""

    window_days: Annotated[int, Field(ge=1, le=365)] = 7
    reserve_ms: Annotated[int, Field(ge=1000, le=600_000)] = 20000


class Vip(_Model):
    priority: Priority = 9
    numbers: tuple[NumberPattern, ...]


class Blacklist(_Model):
    numbers: tuple[NumberPattern, ...]
    then: Target


class Features(_Model):
    """The agents' feature codes (dialled from their phones)."""

    login: FeatureCode = "*21"
    logout: FeatureCode = "*22"
    ready: FeatureCode = "*23"
    not_ready: FeatureCode = "*24"

    def codes(self) -> dict[str, str]:
        """code -> feature name (login, logout, ready, not_ready)."""
        return {self.login: "login", self.logout: "logout", self.ready: "ready", self.not_ready: "not_ready"}


class Acd(_Model):
    random_seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0
    max_missed_offers: Annotated[int, Field(ge=1, le=100)] = 1     # unanswered offers in a row -> not ready
    not_ready_reasons: dict[ReasonCode, ReasonName] = {}           # *24<code># -> reason name
    sticky: Sticky | None = None
    vip: Vip | None = None
    blacklist: Blacklist | None = None
    features: Features = Features()


#: per protocol (fxo, fxs...), timer name -> ms; names and ranges are the protocols' timer tables
#: (e1t1.protocols), checked by the loader
Timers = dict[str, dict[str, int]]


class SiteConfig(_Model):
    site: Site
    card: Card = Card()
    acd: Acd = Acd()
    ports: tuple[Annotated[FxoPort | FxsPort, Field(discriminator="kind")], ...] = ()
    spans: tuple[Span, ...] = ()
    routes: tuple[Route, ...] = ()
    ivrs: dict[Name, Ivr] = {}
    queues: dict[Name, Queue] = {}
    agents: tuple[Agent, ...] = ()
    timers: Timers = {}

    def fxo_ports(self) -> list[tuple[int, FxoPort]]:
        return [(i, p) for i, p in enumerate(self.ports) if isinstance(p, FxoPort)]

    def fxs_ports(self) -> list[tuple[int, FxsPort]]:
        return [(i, p) for i, p in enumerate(self.ports) if isinstance(p, FxsPort)]

    def port_index(self, name: str) -> int:
        return next(i for i, p in enumerate(self.ports) if p.name == name)

    def agent_by_phone(self, port_name: str) -> Agent | None:
        return next((a for a in self.agents if a.phone == port_name), None)

    def route_for(self, trunk_name: str, dnis: str | None) -> Route | None:
        for r in self.routes:
            if (r.trunk is not None and r.trunk == trunk_name) or (r.dnis is not None and r.dnis == dnis):
                return r
        return None
