"""PRI spans in the site configuration: signalling, switchtype, overlap, exclusive and the span's timers;
each error of the issue at its FILE:LINE:COL (found by searching the text, not from the loader), exit 2
from the CLI; the hotel template's span1 is a pri_cpe span whose DNIS has a route."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cli
from appliance.config.loader import load_config, parse_config
from appliance.errors import ConfigError
from tests.config.test_span_config import line_col, with_spans

ROOT = Path(__file__).resolve().parent.parent.parent
KNOWN = "T302, T303, T304, T305, T308, T309, T310, T313, T316, T322, T200, T203"

CASES = [
    ("national on an E1", with_spans("{kind: e1, name: span1, signalling: pri_cpe, switchtype: national}"),
     "national", "spans.0.switchtype: national (NI-2) is for t1 spans; an e1 span speaks euroisdn (EuroISDN)"),
    ("euroisdn on a T1", with_spans("{kind: t1, name: span1, signalling: pri_net, switchtype: euroisdn}",
                                    law="ulaw"),
     "euroisdn", "spans.0.switchtype: euroisdn (EuroISDN) is for e1 spans; a t1 span speaks national (NI-2)"),
    ("an unknown switch type", with_spans("{kind: e1, name: span1, signalling: pri_cpe, switchtype: dms100}"),
     "dms100", "spans.0.switchtype: must be one of 'euroisdn' or 'national', got 'dms100'"),
    ("an unknown timer", with_spans("{kind: e1, name: span1, signalling: pri_cpe, timers: {T399: 3000}}"),
     "T399", f"spans.0.timers.T399: unknown timer (known: {KNOWN})"),
    ("a timer under its range", with_spans("{kind: e1, name: span1, signalling: pri_cpe, timers: {T310: 500}}"),
     "T310: |500", "spans.0.timers.T310: must be at least 1000 ms, got 500"),
    ("a timer over its range", with_spans("{kind: e1, name: span1, signalling: pri_net, timers: {T200: 20000}}"),
     "T200: |20000", "spans.0.timers.T200: must be at most 10000 ms, got 20000"),
    ("a timer not in ms", with_spans("{kind: e1, name: span1, signalling: pri_net, timers: {T303: 4.5}}"),
     "4.5", "spans.0.timers.T303: must be an integer, got 4.5"),
    ("T203 not past T200", with_spans("{kind: e1, name: span1, signalling: pri_cpe, timers: {T203: 1000}}"),
     "T203: |1000", "spans.0.timers.T203: T203 (1000 ms) must be longer than T200 (1000 ms)"),
    ("switchtype without PRI", with_spans("{kind: e1, name: span1, switchtype: euroisdn}"), "switchtype",
     "spans.0.switchtype: switchtype is for PRI spans (signalling pri_cpe or pri_net); this span's signalling "
     "is none"),
    ("overlap on an R2 span", with_spans("{kind: e1, name: span1, framing: cas, signalling: mfcr2, overlap: true}"),
     "overlap", "spans.0.overlap: overlap is for PRI spans (signalling pri_cpe or pri_net); this span's "
     "signalling is mfcr2"),
    ("exclusive without PRI", with_spans("{kind: t1, name: span1, exclusive: false}", law="ulaw"), "exclusive",
     "spans.0.exclusive: exclusive is for PRI spans (signalling pri_cpe or pri_net); this span's signalling "
     "is none"),
    ("timers without PRI", with_spans("{kind: e1, name: span1, timers: {T310: 30000}}"), "timers",
     "spans.0.timers: timers is for PRI spans (signalling pri_cpe or pri_net); this span's signalling is none"),
    ("overlap not a bool", with_spans("{kind: e1, name: span1, signalling: pri_cpe, overlap: 1}"), "overlap: |1",
     "spans.0.overlap: must be true or false, got 1"),
    ("exclusive written null", with_spans("{kind: e1, name: span1, signalling: pri_cpe, exclusive: null}"),
     "exclusive: |null", "spans.0.exclusive: must be true or false, got null (leave the key out for the default)"),
    ("switchtype written empty", with_spans("{kind: e1, name: span1, signalling: pri_cpe, switchtype: }"),
     "switchtype:| }", "spans.0.switchtype: must be one of 'euroisdn' or 'national', got null (leave the key out "
     "for the default)"),
    ("timers written null", with_spans("{kind: e1, name: span1, signalling: pri_net, timers: ~}"),
     "timers: |~", "spans.0.timers: must be a mapping of timer names to ms, got null (leave the key out for the "
     "default)"),
    ("timers as a list", with_spans("{kind: e1, name: span1, signalling: pri_net, timers: [T310]}"),
     "[T310]", "spans.0.timers: must be a mapping, got a list"),
    ("a timer as a flag", with_spans("{kind: e1, name: span1, signalling: pri_net, timers: {T310: true}}"),
     "true", "spans.0.timers.T310: must be an integer, got true"),
]


@pytest.mark.parametrize(("name", "text", "needle", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_pri_rule_at_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
                                    needle: str, message: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    line, col = line_col(text, needle)
    assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"{path}:{line}:{col}: {message}"


def test_every_problem_of_a_pri_span_at_once(tmp_path: Path) -> None:
    text = with_spans("{kind: e1, name: span1, signalling: pri_cpe, switchtype: national, timers: {T1: 1, T309: 0}}",
                      "{kind: e1, name: span2, exclusive: true}")
    with pytest.raises(ConfigError) as err:
        parse_config(text, "site.yaml")
    got = [(i.line, i.col, i.message.split(":")[0]) for i in err.value.issues]
    assert got == [(*line_col(text, "national"), "spans.0.switchtype"), (*line_col(text, "T1:"), "spans.0.timers.T1"),
                   (*line_col(text, "T309: |0"), "spans.0.timers.T309"),
                   (*line_col(text, "exclusive"), "spans.1.exclusive")]


def test_defaults_follow_the_kind() -> None:
    cfg = parse_config(with_spans("{kind: e1, name: span1, signalling: pri_cpe}"), "site.yaml")
    s = cfg.spans[0]
    assert (s.pri, s.pri_switch, s.pri_overlap, s.pri_exclusive, s.timers, s.ts16) == \
        (True, "euroisdn", True, False, None, "dchan")
    cfg = parse_config(with_spans("{kind: t1, name: span1, signalling: pri_net, overlap: false, exclusive: true, "
                                  "timers: {T310: 12000, T203: 20000}}", law="ulaw"), "site.yaml")
    s = cfg.spans[0]
    assert (s.pri, s.pri_switch, s.pri_overlap, s.pri_exclusive, s.timers) == \
        (True, "national", False, True, {"T310": 12000, "T203": 20000})
    plain = parse_config(with_spans("{kind: e1, name: span1}"), "site.yaml").spans[0]
    assert not plain.pri and plain.ts16 == "clear"


def test_a_route_names_a_pri_span_as_its_trunk() -> None:
    text = with_spans("{kind: e1, name: span1, signalling: pri_cpe}", "{kind: e1, name: span2}")
    cfg = parse_config(text.replace("  - {trunk: trunk1, ivr: main}", "  - {trunk: span1, ivr: main}"), "site.yaml")
    assert cfg.route_for("span1", "0755") is not None
    bad = text.replace("  - {trunk: trunk1, ivr: main}", "  - {trunk: span2, ivr: main}")
    with pytest.raises(ConfigError) as err:
        parse_config(bad, "site.yaml")
    assert [i.message for i in err.value.issues] == [
        "routes.0.trunk: unknown trunk 'span2' (known: span1, trunk1, trunk2)"]


def test_the_hotel_template_answers_on_a_pri_cpe_span() -> None:
    cfg = load_config(ROOT / "configs" / "hotel.yaml")
    span1 = cfg.spans[0]
    assert (span1.name, span1.kind, span1.signalling, span1.pri_switch, span1.pri_overlap, span1.pri_exclusive,
            span1.timers) == ("span1", "e1", "pri_cpe", "euroisdn", True, False, {"T310": 30000})
    route = cfg.route_for("span1", "075588880000")
    assert route is not None and route.dnis == "075588880000" and route.ivr == "main"
    assert cfg.route_for("span1", "0755") is None          # no trunk route: only the exact DNIS


@pytest.mark.parametrize(("timers", "needle", "message"), [
    ("{T203: 1000}", "T203: |1000", "timers.q921.T203: T203 (1000 ms) must be longer than T200 (1000 ms)"),
    ("{T200: 10000}", "T200: |10000", "timers.q921.T200: T203 (10000 ms) must be longer than T200 (10000 ms)"),
    ("{T200: 3000, T203: 2000}", "T203: |2000", "timers.q921.T203: T203 (2000 ms) must be longer than T200 "
                                                "(3000 ms)"),
])
def test_the_site_s_q921_timers_must_keep_t203_past_t200(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         timers: str, needle: str, message: str) -> None:
    """The site's own q921 timers, which every PRI span's data link takes, are held to the rule a span's are
    (a data link refuses T203 <= T200 at start: the engine would not start on a document config check passed)."""
    text = with_spans("{kind: e1, name: span1, signalling: pri_cpe}") + f"timers:\n  q921: {timers}\n"
    path = tmp_path / "site.yaml"
    path.write_text(text)
    line, col = line_col(text, needle)
    assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"{path}:{line}:{col}: {message}"
    ok = with_spans("{kind: e1, name: span1, signalling: pri_cpe}") + "timers:\n  q921: {T200: 2000, T203: 20000}\n"
    path.write_text(ok)
    assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path)]) == 0
