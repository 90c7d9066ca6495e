"""Reading a site configuration with exact FILE:LINE:COL errors.

YAML is composed into nodes by a loader that keeps every node's position and
refuses tabs in indentation and duplicate keys (which plain YAML loading drops
silently). The node tree becomes plain data plus a map from each path to its
position; the model validates the data, and every problem (type, unknown key,
broken cross-reference) is reported at the position of the key or value at
fault, all of them in one go.

A document is refused before it can cost time or memory: the composer counts
the nodes the document stands for with every alias expanded and stops at
NODE_BUDGET (the "billion laughs" of nested aliases, and an alias inside the
node it names, whose expansion never ends), and at MAX_DEPTH levels of
nesting, each at the FILE:LINE:COL of the alias or node that tripped it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from appliance.config.model import (
    PRI_KEYS,
    SPAN_CODINGS,
    SPAN_FRAMINGS,
    SPAN_LAW,
    SPAN_SWITCH,
    FxoPort,
    FxsPort,
    SiteConfig,
    Span,
    Target,
)
from appliance.errors import ConfigError, ConfigIssue
from appliance.prompts import PromptError, Prompts
from e1t1.protocols import TIMER_TABLES

Pos = tuple[int, int]
PathKey = tuple[str | int, ...]


#: the protocols whose timers a PRI span's ``timers:`` names (call control, then the data link)
PRI_TIMER_PROTOCOLS = ("q931", "q921")

#: nodes a document may stand for with its aliases expanded (the largest real site is a few 10 000)
NODE_BUDGET = 100_000
#: levels of nested mappings and lists (a site needs 6)
MAX_DEPTH = 64

# What YAML 1.1 reads as an octal integer: 0755 is 493
_OCTAL = re.compile(r"[-+]?0[0-7_]+")


class _Hostile(yaml.YAMLError):
    """The document would cost more than the loader allows (raised while composing)."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.line: int = mark.line + 1 if mark is not None else 1
        self.col: int = mark.column + 1 if mark is not None else 1
        self.message = message


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps positions and refuses documents past the node budget or depth."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0                      # nodes so far, every alias expanded
        self._size: dict[int, int] = {}         # a finished collection's expanded size, by id
        self._height: dict[int, int] = {}       # and its levels of nesting, aliases expanded
        self._open: set[int] = set()            # collections being composed: an alias to one is recursive
        self._depth = 0                         # levels of collections around the node being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if parent is not None:
            self._open.add(id(parent))
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:
                self._alias(event, target)
            return super().compose_node(parent, index)
        self._expanded += 1
        if self._expanded > NODE_BUDGET:
            raise _Hostile(event.start_mark, f"the document has more than the node budget of {NODE_BUDGET} nodes")
        if not isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Hostile(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        before = self._expanded
        node = super().compose_node(parent, index)
        self._depth -= 1
        if node is None:
            return None
        self._open.discard(id(node))
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        self._size[id(node)] = 1 + self._expanded - before
        self._height[id(node)] = 1 + max((self._height.get(id(c), 0) for c in children), default=0)
        return node

    def _alias(self, event: Any, target: yaml.Node) -> None:
        name = f"'*{event.anchor}'"
        if id(target) in self._open:
            raise _Hostile(event.start_mark, f"recursive alias {name} (inside the node it names): its "
                           f"expansion never ends, past the node budget of {NODE_BUDGET} nodes")
        self._expanded += self._size.get(id(target), 1)
        if self._expanded > NODE_BUDGET:
            raise _Hostile(event.start_mark, f"alias {name} expands the document past the node budget of "
                           f"{NODE_BUDGET} nodes (nested aliases)")
        if self._depth + self._height.get(id(target), 0) > MAX_DEPTH:
            raise _Hostile(event.start_mark, f"alias {name} nests the document deeper than {MAX_DEPTH} levels")


def _compose(text: str, filename: str) -> yaml.Node | None:
    issues = []
    for lineno, text_line in enumerate(text.splitlines(), 1):
        stripped = text_line.lstrip(" ")
        if stripped.startswith("\t"):
            issues.append(ConfigIssue(filename, lineno, len(text_line) - len(stripped) + 1,
                                      "tab character in indentation; use spaces"))
    if issues:
        raise ConfigError(issues)
    try:
        return yaml.compose(text, Loader=_Loader)
    except _Hostile as exc:
        raise ConfigError([ConfigIssue(filename, exc.line, exc.col, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or "YAML syntax error"
        if exc.context:
            what = f"{exc.context}: {what}"
        raise ConfigError([ConfigIssue(filename, line, col, f"YAML syntax: {what}")]) from None
    except yaml.reader.ReaderError as exc:
        # A character YAML does not take (a control character): its place from the offset.
        pos = max(0, int(exc.position))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise ConfigError([ConfigIssue(filename, line, col, f"character U+{int(exc.character):04X} is not "
                                       "allowed in a YAML document")]) from None


def _plain(node: yaml.Node, path: PathKey, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos],
           issues: list[ConfigIssue], filename: str, octal: dict[PathKey, str]) -> Any:
    pos[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        first: dict[str, int] = {}
        for k, v in node.value:
            key = str(_Loader.construct_scalar(_Loader(""), k)) if isinstance(k, yaml.ScalarNode) else "?"
            if key in first:
                issues.append(ConfigIssue(filename, k.start_mark.line + 1, k.start_mark.column + 1,
                                          f"duplicate key '{key}' (first at line {first[key]})"))
                continue
            first[key] = k.start_mark.line + 1
            keypos[(*path, key)] = (k.start_mark.line + 1, k.start_mark.column + 1)
            out[key] = _plain(v, (*path, key), pos, keypos, issues, filename, octal)
        return out
    if isinstance(node, yaml.SequenceNode):
        return tuple(_plain(v, (*path, i), pos, keypos, issues, filename, octal)
                     for i, v in enumerate(node.value))
    loader = _Loader("")
    value = loader.construct_object(node, deep=True)
    if (isinstance(node, yaml.ScalarNode) and node.style is None and isinstance(value, int)
            and _OCTAL.fullmatch(node.value)):
        octal[path] = node.value
    return value


def _where(loc: PathKey, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos], key: bool = False) -> Pos:
    if key and loc in keypos:
        return keypos[loc]
    for n in range(len(loc), -1, -1):
        if loc[:n] in pos:
            return pos[loc[:n]]
    return (1, 1)


def _dotted(loc: PathKey) -> str:
    return ".".join(str(p) for p in loc) or "(document)"


def _pydantic_loc(loc: tuple[Any, ...]) -> PathKey:
    # drop the discriminator tags pydantic inserts for tagged unions ('fxo', 'fxs'), and the '[key]'
    # it adds after a mapping's key that is at fault (the key's own position is used then)
    out: list[str | int] = []
    for i, p in enumerate(loc):
        if i > 0 and isinstance(loc[i - 1], int) and p in ("fxo", "fxs") and out and out[0] == "ports":
            continue
        if p == "[key]" and i == len(loc) - 1:
            continue
        out.append(p)
    return tuple(out)


def _as_yaml(value: Any) -> str:
    """A value as the document wrote it, for a message: null, true, 3.5, 'text', a list, a mapping."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple | list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return repr(value)


def _message(err: dict[str, Any]) -> str:
    t = err["type"]
    got = _as_yaml(err.get("input"))
    ctx = err.get("ctx") or {}
    if t == "extra_forbidden":
        return "unknown key"
    if t == "missing":
        return "required key missing"
    if t in ("int_type", "int_parsing"):
        return f"must be an integer, got {got}"
    if t == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {got}"
    if t == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {got}"
    if t == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {got}"
    if t == "string_type":
        return f"must be text, got {got}"
    if t == "string_pattern_mismatch":
        return f"{got} is not valid here (expected {ctx.get('pattern', '')})"
    if t in ("tuple_type", "list_type"):
        return f"must be a list, got {got}"
    if t in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, got {got}"
    if t == "bool_type":
        return f"must be true or false, got {got}"
    if t == "value_error":
        return str(ctx.get("error", err["msg"]))
    if t == "too_short":
        return "must not be empty"
    if t == "union_tag_invalid":
        return f"kind must be 'fxo' or 'fxs', got {ctx.get('tag')!r}"
    return str(err["msg"])


def _xrefs(cfg: SiteConfig, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos],
           filename: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []

    def bad(loc: PathKey, msg: str) -> None:
        line, col = _where(loc, pos, keypos)
        issues.append(ConfigIssue(filename, line, col, f"{_dotted(loc)}: {msg}"))

    names: dict[str, int] = {}
    exts: dict[str, int] = {}
    for i, p in enumerate(cfg.ports):
        if p.name in names:
            bad(("ports", i, "name"), f"port name '{p.name}' is already used by port {names[p.name]}")
        names.setdefault(p.name, i)
        if isinstance(p, FxsPort):
            if p.extension in exts:
                bad(("ports", i, "extension"), f"extension {p.extension} is already used by port {exts[p.extension]}")
            exts.setdefault(p.extension, i)
    spans: dict[str, int] = {}
    for i, s in enumerate(cfg.spans):
        if s.name in names:
            bad(("spans", i, "name"), f"name '{s.name}' is already used by a port")
        elif s.name in spans:
            bad(("spans", i, "name"), f"span name '{s.name}' is already used by span {spans[s.name]}")
        spans.setdefault(s.name, i)
    # a call's trunk: an FXO port, or a PRI span (its calls' trunk name is the span's)
    trunks = sorted([p.name for p in cfg.ports if isinstance(p, FxoPort)] + [s.name for s in cfg.spans if s.pri])
    fxs = sorted(p.name for p in cfg.ports if isinstance(p, FxsPort))
    for i, r in enumerate(cfg.routes):
        if (r.trunk is None) == (r.dnis is None):
            bad(("routes", i), "a route matches either a trunk or a dnis, exactly one of them")
        if r.trunk is not None and r.trunk not in trunks:
            bad(("routes", i, "trunk"), f"unknown trunk '{r.trunk}' (known: {', '.join(trunks) or 'none'})")
        if sum([r.ivr is not None, r.queue is not None, r.queues is not None]) != 1:
            bad(("routes", i), "a route goes to exactly one of ivr, queue, queues")
        if r.ivr is not None and r.ivr not in cfg.ivrs:
            bad(("routes", i, "ivr"), f"unknown ivr '{r.ivr}' (known: {', '.join(sorted(cfg.ivrs)) or 'none'})")
        if r.ivr is not None and (r.skills or r.priority):
            bad(("routes", i, "skills" if r.skills else "priority"),
                "skills and priority go with queue or queues (a route to an IVR asks them in its menu)")
    for name, ivr in cfg.ivrs.items():
        for digit, act in ivr.menu.items():
            chosen = sum([act.queue is not None, act.queues is not None, act.hangup, act.repeat])
            if chosen != 1:
                bad(("ivrs", name, "menu", digit), "a menu entry needs exactly one of queue, queues, hangup, repeat")
            elif not act.queue_names() and (act.skills or act.priority):
                bad(("ivrs", name, "menu", digit, "skills" if act.skills else "priority"),
                    "skills and priority go with queue or queues")
            if act.queue is not None and act.queue not in cfg.queues:
                known = ", ".join(sorted(cfg.queues)) or "none"
                bad(("ivrs", name, "menu", digit, "queue"), f"unknown queue '{act.queue}' (known: {known})")
    agents = {a.number for a in cfg.agents}
    for name, q in cfg.queues.items():
        if not q.agents:
            bad(("queues", name), "a queue needs at least one agent (agents: ['1001', ...]): its callers "
                "would wait for nobody")
        members: dict[str, int] = {}
        for j, member in enumerate(q.agents):
            if member not in agents:
                known = ", ".join(sorted(agents)) or "none"
                bad(("queues", name, "agents", j), f"unknown agent '{member}' (known: {known})")
            elif member in members:
                bad(("queues", name, "agents", j), f"agent {member} is named twice (first at agents.{members[member]})")
            members.setdefault(member, j)
    seen_num: dict[str, int] = {}
    phones: dict[str, str] = {}
    for i, agent in enumerate(cfg.agents):
        if agent.number in seen_num:
            bad(("agents", i, "number"),
                f"agent number {agent.number} is already used by agent {seen_num[agent.number]}")
        seen_num.setdefault(agent.number, i)
        if agent.phone is not None:
            if agent.phone in trunks:
                bad(("agents", i, "phone"), f"'{agent.phone}' is an FXO trunk; an agent's phone is an FXS port")
            elif agent.phone not in fxs:
                bad(("agents", i, "phone"), f"unknown phone '{agent.phone}' (known: {', '.join(fxs) or 'none'})")
            elif agent.phone in phones:
                bad(("agents", i, "phone"), f"phone '{agent.phone}' is already agent {phones[agent.phone]}'s")
            phones.setdefault(agent.phone, agent.number)
    return issues


def _acd_issues(cfg: SiteConfig, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos],
                filename: str) -> list[ConfigIssue]:
    """The call-center core: targets that exist, skills some agent has, overflow without cycles,
    distinct feature codes and reason names, each queue's rules consistent."""
    issues: list[ConfigIssue] = []

    def bad(loc: PathKey, msg: str, key: bool = False) -> None:
        line, col = _where(loc, pos, keypos, key=key)
        issues.append(ConfigIssue(filename, line, col, f"{_dotted(loc)}: {msg}"))

    def known(names: Iterable[str]) -> str:
        return ", ".join(sorted(names)) or "none"

    def target(loc: PathKey, t: Target) -> None:
        if t.queue is not None and t.queue not in cfg.queues:
            bad((*loc, "queue"), f"unknown queue '{t.queue}' (known: {known(cfg.queues)})")
        if t.ivr is not None and t.ivr not in cfg.ivrs:
            bad((*loc, "ivr"), f"unknown ivr '{t.ivr}' (known: {known(cfg.ivrs)})")

    def queue_list(loc: PathKey, names: tuple[str, ...]) -> None:
        for j, q in enumerate(names):
            if q not in cfg.queues:
                bad((*loc, j), f"unknown queue '{q}' (known: {known(cfg.queues)})")
            elif q in names[:j]:
                bad((*loc, j), f"queue '{q}' is named twice")

    skills = {s for a in cfg.agents for s in a.skills}

    def asked(loc: PathKey, wanted: dict[str, int]) -> None:
        for s in wanted:
            if s not in skills:
                bad((*loc, s), f"unknown skill '{s}': no agent has it (agents' skills: {known(skills)})", key=True)

    for i, r in enumerate(cfg.routes):
        queue_list(("routes", i, "queues"), r.queues or ())
        if r.queue is not None and r.queue not in cfg.queues:
            bad(("routes", i, "queue"), f"unknown queue '{r.queue}' (known: {known(cfg.queues)})")
        asked(("routes", i, "skills"), r.skills)
    for name, ivr in cfg.ivrs.items():
        for digit, act in ivr.menu.items():
            queue_list(("ivrs", name, "menu", digit, "queues"), act.queues or ())
            asked(("ivrs", name, "menu", digit, "skills"), act.skills)
    for name, q in cfg.queues.items():
        loc: PathKey = ("queues", name)
        for key, t in q.overflows():
            target((*loc, key), t)
        if q.exit_key is not None:
            target((*loc, "exit_key", "to"), q.exit_key.to)
        for j, w in enumerate(q.widen):
            if w.skill not in skills:
                bad((*loc, "widen", j, "skill"), f"unknown skill '{w.skill}': no agent has it "
                    f"(agents' skills: {known(skills)})")
        for j, state in enumerate(q.empty_when):
            if state in q.empty_when[:j]:
                bad((*loc, "empty_when", j), f"state '{state}' is named twice")
        if (q.max_wait_ms is None) != (q.on_timeout is None):
            bad((*loc, "max_wait_ms" if q.on_timeout is None else "on_timeout"),
                "max_wait_ms and on_timeout go together (how long a caller waits, then where it goes)", key=True)
        if (q.max_callers is None) != (q.on_full is None):
            bad((*loc, "max_callers" if q.on_full is None else "on_full"),
                "max_callers and on_full go together (how many callers wait, then where the next one goes)",
                key=True)
    for loc, msg in _cycles(cfg):
        bad(loc, msg, key=True)
    acd = cfg.acd
    if acd.blacklist is not None:
        target(("acd", "blacklist", "then"), acd.blacklist.then)
    names: dict[str, str] = {}
    for code, reason in acd.not_ready_reasons.items():
        if reason in names:
            bad(("acd", "not_ready_reasons", code), f"reason '{reason}' is already code {names[reason]}")
        names.setdefault(reason, code)
    seen: dict[str, str] = {}
    for feature in ("login", "logout", "ready", "not_ready"):
        code = getattr(acd.features, feature)
        for other_feature, other in seen.items():
            if code == other:
                bad(("acd", "features", feature), f"{code} is already the {other_feature} code")
                break
            if code.startswith(other) or other.startswith(code):
                bad(("acd", "features", feature), f"{code} and the {other_feature} code {other}: one is a prefix "
                    "of the other")
                break
        seen[feature] = code
    return issues


def _cycles(cfg: SiteConfig) -> list[tuple[PathKey, str]]:
    """Overflow from queue to queue (on_timeout, on_full, on_no_agents) that comes back: each cycle
    as (the key that closes it, the message), found in document order."""
    found: list[tuple[PathKey, str]] = []
    grey: list[tuple[str, str]] = []         # (queue, the key it was left by) on the current path
    done: set[str] = set()

    def visit(name: str) -> None:
        for key, t in cfg.queues[name].overflows():
            nxt = t.queue
            if nxt is None or nxt not in cfg.queues:
                continue
            on_path = [q for q, _ in grey]
            if nxt == name or nxt in on_path:
                start = on_path.index(nxt) if nxt in on_path else len(grey)
                hops = [*grey[start:], (name, key)]
                shown = " -> ".join(f"{q} ({k})" for q, k in hops)
                found.append((("queues", name, key), f"overflow cycle: {shown} -> {nxt}"))
            elif nxt not in done:
                grey.append((name, key))
                visit(nxt)
                grey.pop()
        done.add(name)

    for name in cfg.queues:
        if name not in done:
            visit(name)
    return found


_LAW_NAME = {"alaw": "A-law", "ulaw": "mu-law"}


def _a(kind: str) -> str:
    return f"an {kind}" if kind == "e1" else f"a {kind}"


def _span_issues(cfg: SiteConfig, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos],
                 filename: str) -> list[ConfigIssue]:
    """Each span against its kind (framing, coding, crc4, the site's law), its signalling against its
    framing, and the clock priorities: a non-zero timing once (a span without one has its list position)."""
    issues: list[ConfigIssue] = []

    def bad(loc: PathKey, msg: str, key: bool = False) -> None:
        line, col = _where(loc, pos, keypos, key=key)
        issues.append(ConfigIssue(filename, line, col, f"{_dotted(loc)}: {msg}"))

    timings: dict[int, str] = {}
    for i, s in enumerate(cfg.spans):
        loc: PathKey = ("spans", i)
        other = "t1" if s.kind == "e1" else "e1"
        if s.framing is not None and s.framing not in SPAN_FRAMINGS[s.kind]:
            bad((*loc, "framing"), f"framing '{s.framing}' is for {other} spans; {_a(s.kind)} span is framed "
                f"{' or '.join(SPAN_FRAMINGS[s.kind])}")
        if s.coding is not None and s.coding not in SPAN_CODINGS[s.kind]:
            bad((*loc, "coding"), f"coding '{s.coding}' is for {other} spans; {_a(s.kind)} span is coded "
                f"{' or '.join(SPAN_CODINGS[s.kind])}")
        if s.kind == "t1" and "crc4" in s.model_fields_set:
            bad((*loc, "crc4"), "crc4 is for e1 spans only (a t1 span has no CRC-4; ESF has its own CRC-6)",
                key=True)
        cas = s.line_framing == "cas"
        if s.signalling == "mfcr2" and not cas:
            bad((*loc, "signalling"), "mfcr2 signals in TS16's CAS multiframe: it needs framing cas"
                + (" (an e1 span)" if s.kind == "t1" else ""))
        if s.signalling in ("pri_cpe", "pri_net") and cas:
            bad((*loc, "signalling"), f"{s.signalling} needs TS16 as its D-channel, but framing cas gives TS16 "
                "to CAS: use framing ccs")
        if SPAN_LAW[s.kind] != cfg.site.law:
            bad((*loc, "kind"), f"{_a(s.kind).capitalize()} span carries {_LAW_NAME[SPAN_LAW[s.kind]]}, "
                f"but site.law is {cfg.site.law}")
        timing = s.timing_at(i)
        if timing and timing in timings:
            how = "" if s.timing is not None else " (its list position: it has no timing of its own)"
            bad((*loc, "timing") if s.timing is not None else loc,
                f"timing {timing}{how} is already {timings[timing]}'s: each clock priority is given once "
                "(0: never a clock source)")
        timings.setdefault(timing, s.name)
        _pri_issues(s, loc, bad, cfg.timers.get("q921", {}))
    return issues


_SWITCH_NAME = {"euroisdn": "EuroISDN", "national": "NI-2"}


def _pri_issues(s: Span, loc: PathKey, bad: Callable[..., None], site_q921: dict[str, int]) -> None:
    """A span's PRI keys: only on a PRI span; its switch type the kind's; its timers Q.931's and Q.921's
    by name, each in its declared range (ms), T203 longer than T200 (with the site's q921 timers under
    the span's). Each problem goes to `bad` (the span checker's)."""
    if not s.pri:
        for key in PRI_KEYS:
            if key in s.model_fields_set:
                bad((*loc, key), f"{key} is for PRI spans (signalling pri_cpe or pri_net); this span's "
                    f"signalling is {s.signalling}", key=True)
        return
    for key, want in (("switchtype", "one of 'euroisdn' or 'national'"), ("overlap", "true or false"),
                      ("exclusive", "true or false"), ("timers", "a mapping of timer names to ms")):
        if key in s.model_fields_set and getattr(s, key) is None:      # written, but empty: a slip, not a default
            bad((*loc, key), f"must be {want}, got null (leave the key out for the default)")
    if s.switchtype is not None and s.switchtype != SPAN_SWITCH[s.kind]:
        other = "t1" if s.kind == "e1" else "e1"
        bad((*loc, "switchtype"), f"{s.switchtype} ({_SWITCH_NAME[s.switchtype]}) is for {other} spans; "
            f"{_a(s.kind)} span speaks {SPAN_SWITCH[s.kind]} ({_SWITCH_NAME[SPAN_SWITCH[s.kind]]})")
    defs = {d.name: d for proto in PRI_TIMER_PROTOCOLS for d in TIMER_TABLES[proto]}
    ok = True
    for name, value in (s.timers or {}).items():
        d = defs.get(name)
        if d is None:
            bad((*loc, "timers", name), f"unknown timer (known: {', '.join(defs)})", key=True)
        elif value < d.min_ms:
            bad((*loc, "timers", name), f"must be at least {d.min_ms} ms, got {value}")
        elif value > d.max_ms:
            bad((*loc, "timers", name), f"must be at most {d.max_ms} ms, got {value}")
        else:
            continue
        ok = False
    given = s.timers or {}
    if ok and ("T200" in given or "T203" in given):
        t200 = given.get("T200", site_q921.get("T200", defs["T200"].default_ms))
        t203 = given.get("T203", site_q921.get("T203", defs["T203"].default_ms))
        if t203 <= t200:
            bad((*loc, "timers", "T203" if "T203" in given else "T200"),
                f"T203 ({t203} ms) must be longer than T200 ({t200} ms)")


def _timer_issues(cfg: SiteConfig, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos],
                  filename: str) -> list[ConfigIssue]:
    """The ``timers:`` section against the protocols' timer tables: known protocols and timers,
    values (ms) inside each timer's declared range."""
    issues: list[ConfigIssue] = []

    def bad(loc: PathKey, msg: str, key: bool) -> None:
        line, col = _where(loc, pos, keypos, key=key)
        issues.append(ConfigIssue(filename, line, col, f"{_dotted(loc)}: {msg}"))

    for proto, values in cfg.timers.items():
        defs = {d.name: d for d in TIMER_TABLES.get(proto, ())}
        if not defs:
            bad(("timers", proto), f"unknown protocol (known: {', '.join(TIMER_TABLES)})", key=True)
            continue
        for name, value in values.items():
            d = defs.get(name)
            if d is None:
                bad(("timers", proto, name), f"unknown timer (known: {', '.join(defs)})", key=True)
            elif value < d.min_ms:
                bad(("timers", proto, name), f"must be at least {d.min_ms} ms, got {value}", key=False)
            elif value > d.max_ms:
                bad(("timers", proto, name), f"must be at most {d.max_ms} ms, got {value}", key=False)
        if proto == "q921" and ("T200" in values or "T203" in values) and \
                all(defs[n].min_ms <= v <= defs[n].max_ms for n, v in values.items() if n in defs):
            t200 = values.get("T200", defs["T200"].default_ms)
            t203 = values.get("T203", defs["T203"].default_ms)
            if t203 <= t200:        # the data link refuses it at start: every PRI span's, as a span's own
                bad(("timers", proto, "T203" if "T203" in values else "T200"),
                    f"T203 ({t203} ms) must be longer than T200 ({t200} ms)", key=False)
    return issues


def _prompt_issues(cfg: SiteConfig, prompts: Prompts, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos],
                   filename: str) -> list[ConfigIssue]:
    """Each prompt the document names, looked up as the engine does (the site's prompts, then the
    shipped ones): an IVR's greeting in its language; a queue's hold prompt and each ``hangup:``
    target's prompt in every language the site's IVRs speak (en when there are none), as a caller
    from any of them may hear it."""
    issues: list[ConfigIssue] = []
    where = f"{prompts.site_dir} or {prompts.shipped_dir}" if prompts.site_dir else str(prompts.shipped_dir)

    def need(loc: PathKey, language: str, name: str) -> None:
        try:
            prompts.path_of(language, name)
        except PromptError:
            line, col = _where(loc, pos, keypos)
            issues.append(ConfigIssue(filename, line, col, f"{_dotted(loc)}: prompt '{name}' "
                                      f"({language}) not found in {where}"))

    for name, ivr in cfg.ivrs.items():
        need(("ivrs", name, "greeting"), ivr.language, ivr.greeting)
    languages = sorted({ivr.language for ivr in cfg.ivrs.values()}) or ["en"]
    named: list[tuple[PathKey, str]] = []
    for name, q in cfg.queues.items():
        if q.hold != "ringback":
            named.append((("queues", name, "hold"), q.hold))
        targets: list[tuple[PathKey, Target]] = [((key,), t) for key, t in q.overflows()]
        if q.exit_key is not None:
            targets.append((("exit_key", "to"), q.exit_key.to))
        for sub, t in targets:
            if t.hangup is not None:
                named.append((("queues", name, *sub, "hangup"), t.hangup))
    if cfg.acd.blacklist is not None and cfg.acd.blacklist.then.hangup is not None:
        named.append((("acd", "blacklist", "then", "hangup"), cfg.acd.blacklist.then.hangup))
    for loc, prompt in named:
        for language in languages:
            need(loc, language, prompt)
    return issues


def parse_config(text: str, filename: str, prompts: Prompts | None = None) -> SiteConfig:
    """Validate one site document; raise ConfigError listing every problem. With `prompts`, each
    prompt the document names must be there (the site's or the shipped one)."""
    root = _compose(text, filename)
    if root is None:
        raise ConfigError([ConfigIssue(filename, 1, 1, "the document is empty")])
    pos: dict[PathKey, Pos] = {}
    keypos: dict[PathKey, Pos] = {}
    issues: list[ConfigIssue] = []
    octal: dict[PathKey, str] = {}
    data = _plain(root, (), pos, keypos, issues, filename, octal)
    if not isinstance(data, dict):
        line, col = pos.get((), (1, 1))
        raise ConfigError([ConfigIssue(filename, line, col, "the document must be a mapping (site:, card:, ...)")])
    try:
        cfg = SiteConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _pydantic_loc(err["loc"])
            at_key = err["type"] == "extra_forbidden" or err["loc"][-1:] == ("[key]",)
            line, col = _where(loc, pos, keypos, key=at_key)
            message = f"{_dotted(loc)}: {_message(dict(err))}"
            if loc in octal and err["type"] != "extra_forbidden":
                raw = octal[loc]
                message += (f" (YAML reads {raw} as the octal number {err.get('input')!r}: "
                            f"write '{raw}' in quotes)")
            issues.append(ConfigIssue(filename, line, col, message))
        raise ConfigError(issues) from None
    issues += _xrefs(cfg, pos, keypos, filename)
    issues += _acd_issues(cfg, pos, keypos, filename)
    issues += _span_issues(cfg, pos, keypos, filename)
    issues += _timer_issues(cfg, pos, keypos, filename)
    if prompts is not None:
        issues += _prompt_issues(cfg, prompts, pos, keypos, filename)
    if issues:
        raise ConfigError(issues)
    return cfg


def load_config(path: str | Path, prompts: Prompts | None = None) -> SiteConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(p), 1, 1, f"cannot read: {exc}")]) from None
    return parse_config(text, str(p), prompts)


def main_check(path: str | Path, site_prompts: Path | None = None) -> int:
    """`cicbox config check FILE`: 0 and a summary, or each problem on stderr and 2. The prompts
    the document names are looked up in `site_prompts` (a state directory's prompts/) and the
    shipped ones."""
    try:
        cfg = load_config(path, Prompts(site_prompts))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{path}: ok ({len(cfg.ports)} ports, {len(cfg.spans)} spans, {len(cfg.queues)} queues, "
          f"{len(cfg.agents)} agents)")
    return 0
