"""The site configuration model: one YAML document per site, validated into these types."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Digits = Annotated[str, StringConstraints(pattern=r"^[0-9]+$", min_length=1, max_length=32)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
MenuKey = Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")]


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


class FxsPort(_Model):
    kind: Literal["fxs"]
    name: Name
    extension: Digits


class Span(_Model):
    kind: Literal["e1", "t1"]
    name: Name


class Route(_Model):
    trunk: Name | None = None
    dnis: Digits | None = None
    ivr: Name


class MenuAction(_Model):
    queue: Name | None = None
    hangup: bool = False
    repeat: bool = False


class Ivr(_Model):
    greeting: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] = "en"
    menu: dict[MenuKey, MenuAction] = {}
    timeout_ms: Annotated[int, Field(ge=500, le=60000)] = 5000
    max_repeats: Annotated[int, Field(ge=0, le=10)] = 2


class Queue(_Model):
    agents: tuple[Digits, ...] = ()
    ring_timeout_ms: Annotated[int, Field(ge=1000, le=120000)] = 15000
    strategy: Literal["longest_idle"] = "longest_idle"


class Agent(_Model):
    number: Digits
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    phone: Name | None = None


#: per protocol (fxo, fxs...), timer name -> ms; names and ranges are the protocols' timer tables
#: (e1t1.protocols), checked by the loader
Timers = dict[str, dict[str, int]]


class SiteConfig(_Model):
    site: Site
    card: Card = Card()
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
