"""Reading a site configuration with exact FILE:LINE:COL errors.

YAML is composed into nodes by a loader that keeps every node's position and
refuses tabs in indentation and duplicate keys (which plain YAML loading drops
silently). The node tree becomes plain data plus a map from each path to its
position; the model validates the data, and every problem (type, unknown key,
broken cross-reference) is reported at the position of the key or value at
fault, all of them in one go.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from appliance.config.model import FxoPort, FxsPort, SiteConfig
from appliance.errors import ConfigError, ConfigIssue
from e1t1.protocols import TIMER_TABLES

Pos = tuple[int, int]
PathKey = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps positions."""


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
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or "YAML syntax error"
        if exc.context:
            what = f"{exc.context}: {what}"
        raise ConfigError([ConfigIssue(filename, line, col, f"YAML syntax: {what}")]) from None


def _plain(node: yaml.Node, path: PathKey, pos: dict[PathKey, Pos], keypos: dict[PathKey, Pos],
           issues: list[ConfigIssue], filename: str) -> Any:
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
            out[key] = _plain(v, (*path, key), pos, keypos, issues, filename)
        return out
    if isinstance(node, yaml.SequenceNode):
        return tuple(_plain(v, (*path, i), pos, keypos, issues, filename) for i, v in enumerate(node.value))
    loader = _Loader("")
    return loader.construct_object(node, deep=True)


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
    # drop the discriminator tags pydantic inserts for tagged unions ('fxo', 'fxs')
    out: list[str | int] = []
    for i, p in enumerate(loc):
        if i > 0 and isinstance(loc[i - 1], int) and p in ("fxo", "fxs") and out and out[0] == "ports":
            continue
        out.append(p)
    return tuple(out)


def _message(err: dict[str, Any]) -> str:
    t = err["type"]
    got = err.get("input")
    ctx = err.get("ctx") or {}
    if t == "extra_forbidden":
        return "unknown key"
    if t == "missing":
        return "required key missing"
    if t in ("int_type", "int_parsing"):
        return f"must be an integer, got {got!r}"
    if t == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {got!r}"
    if t == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {got!r}"
    if t == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {got!r}"
    if t == "string_type":
        return f"must be text, got {got!r}"
    if t == "string_pattern_mismatch":
        return f"{got!r} is not valid here (expected {ctx.get('pattern', '')})"
    if t in ("tuple_type", "list_type"):
        return f"must be a list, got {got!r}"
    if t in ("dict_type", "model_type", "model_attributes_type"):
        return f"must be a mapping, got {got!r}"
    if t == "bool_type":
        return f"must be true or false, got {got!r}"
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
    for i, s in enumerate(cfg.spans):
        if s.name in names:
            bad(("spans", i, "name"), f"name '{s.name}' is already used by a port")
    trunks = sorted(p.name for p in cfg.ports if isinstance(p, FxoPort))
    fxs = sorted(p.name for p in cfg.ports if isinstance(p, FxsPort))
    for i, r in enumerate(cfg.routes):
        if (r.trunk is None) == (r.dnis is None):
            bad(("routes", i), "a route matches either a trunk or a dnis, exactly one of them")
        if r.trunk is not None and r.trunk not in trunks:
            bad(("routes", i, "trunk"), f"unknown trunk '{r.trunk}' (known: {', '.join(trunks) or 'none'})")
        if r.ivr not in cfg.ivrs:
            bad(("routes", i, "ivr"), f"unknown ivr '{r.ivr}' (known: {', '.join(sorted(cfg.ivrs)) or 'none'})")
    for name, ivr in cfg.ivrs.items():
        for digit, act in ivr.menu.items():
            chosen = sum([act.queue is not None, act.hangup, act.repeat])
            if chosen != 1:
                bad(("ivrs", name, "menu", digit), "a menu entry needs exactly one of queue, hangup, repeat")
            if act.queue is not None and act.queue not in cfg.queues:
                known = ", ".join(sorted(cfg.queues)) or "none"
                bad(("ivrs", name, "menu", digit, "queue"), f"unknown queue '{act.queue}' (known: {known})")
    agents = {a.number for a in cfg.agents}
    for name, q in cfg.queues.items():
        for j, member in enumerate(q.agents):
            if member not in agents:
                known = ", ".join(sorted(agents)) or "none"
                bad(("queues", name, "agents", j), f"unknown agent '{member}' (known: {known})")
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
    return issues


def parse_config(text: str, filename: str) -> SiteConfig:
    """Validate one site document; raise ConfigError listing every problem."""
    root = _compose(text, filename)
    if root is None:
        raise ConfigError([ConfigIssue(filename, 1, 1, "the document is empty")])
    pos: dict[PathKey, Pos] = {}
    keypos: dict[PathKey, Pos] = {}
    issues: list[ConfigIssue] = []
    data = _plain(root, (), pos, keypos, issues, filename)
    if not isinstance(data, dict):
        line, col = pos.get((), (1, 1))
        raise ConfigError([ConfigIssue(filename, line, col, "the document must be a mapping (site:, card:, ...)")])
    try:
        cfg = SiteConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _pydantic_loc(err["loc"])
            line, col = _where(loc, pos, keypos, key=err["type"] == "extra_forbidden")
            issues.append(ConfigIssue(filename, line, col, f"{_dotted(loc)}: {_message(dict(err))}"))
        raise ConfigError(issues) from None
    issues += _xrefs(cfg, pos, keypos, filename)
    issues += _timer_issues(cfg, pos, keypos, filename)
    if issues:
        raise ConfigError(issues)
    return cfg


def load_config(path: str | Path) -> SiteConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(p), 1, 1, f"cannot read: {exc}")]) from None
    return parse_config(text, str(p))


def main_check(path: str | Path) -> int:
    """`cicbox config check FILE`: 0 and a summary, or each problem on stderr and 2."""
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"{path}: ok ({len(cfg.ports)} ports, {len(cfg.spans)} spans, {len(cfg.queues)} queues, "
          f"{len(cfg.agents)} agents)")
    return 0
