"""Every rule of a panel app as a URL to request: the route and CSRF matrices iterate ``app.url_map``, so a
view added anywhere (another blueprint, a later issue) is covered without naming it here."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAMPLE_ARGS = {"IntegerConverter": 2, "PathConverter": "panel.css"}
"""Values for a rule's arguments by converter; any other converter gets "1001" (an agent number)."""


@dataclass(frozen=True)
class Route:
    url: str
    method: str
    endpoint: str


def routes(app: Flask) -> list[Route]:
    """(url, method, endpoint) for every rule and method of `app` (HEAD and OPTIONS left out)."""
    out = set()
    with app.test_request_context():
        adapter = app.url_map.bind("127.0.0.1:8443", url_scheme="https")
        for rule in app.url_map.iter_rules():
            args = {name: SAMPLE_ARGS.get(type(conv).__name__, "1001") for name, conv in rule._converters.items()}
            url = adapter.build(rule.endpoint, args, force_external=False) if args else rule.rule
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                out.add(Route(url, method, rule.endpoint))
    return sorted(out, key=lambda r: (r.url, r.method, r.endpoint))


def rule_urls(app: Flask) -> dict[str, set[str]]:
    """Every rule's URL and all the methods the app answers there."""
    out: dict[str, set[str]] = {}
    for r in routes(app):
        out.setdefault(r.url, set()).add(r.method)
    return out


def mutating_routes(app: Flask) -> list[tuple[str, str]]:
    """(url, method) for every rule and method that may change something."""
    return sorted({(r.url, r.method) for r in routes(app) if r.method in MUTATING})
