"""Spans in the site configuration: framing, coding, crc4, timing and signalling; each rule of the issue
at its FILE:LINE:COL (found here by searching the text, not from the loader), exit 2 from the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cli
from appliance.config.loader import parse_config
from appliance.errors import ConfigError
from tests.e2e.harness import site_yaml

BASE = site_yaml(agents=1)


def with_spans(*lines: str, law: str = "alaw") -> str:
    spans = "spans:\n" + "".join(f"  - {line}\n" for line in lines)
    return BASE.replace("spans: []\n", spans).replace("law: alaw", f"law: {law}")


def line_col(text: str, needle: str) -> tuple[int, int]:
    """Where `needle` starts, or with a '|' in it, where the part after the '|' does."""
    before, _, at = needle.partition("|")
    pos = text.index(before + at) + (len(before) if at else 0)
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


CASES = [
    ("e1 framed esf", with_spans("{kind: e1, name: span1, framing: esf}"), "esf}",
     "spans.0.framing: framing 'esf' is for t1 spans; an e1 span is framed ccs or cas"),
    ("t1 framed cas", with_spans("{kind: t1, name: span1, framing: cas}", law="ulaw"), "cas}",
     "spans.0.framing: framing 'cas' is for e1 spans; a t1 span is framed esf or d4"),
    ("e1 coded b8zs", with_spans("{kind: e1, name: span1, coding: b8zs}"), "b8zs}",
     "spans.0.coding: coding 'b8zs' is for t1 spans; an e1 span is coded hdb3 or ami"),
    ("t1 coded hdb3", with_spans("{kind: t1, name: span1, coding: hdb3}", law="ulaw"), "hdb3}",
     "spans.0.coding: coding 'hdb3' is for e1 spans; a t1 span is coded b8zs or ami"),
    ("crc4 on a t1", with_spans("{kind: t1, name: span1, crc4: false}", law="ulaw"), "crc4",
     "spans.0.crc4: crc4 is for e1 spans only (a t1 span has no CRC-4; ESF has its own CRC-6)"),
    ("mfcr2 without cas", with_spans("{kind: e1, name: span1, framing: ccs, signalling: mfcr2}"), "mfcr2",
     "spans.0.signalling: mfcr2 signals in TS16's CAS multiframe: it needs framing cas"),
    ("mfcr2 on a t1", with_spans("{kind: t1, name: span1, signalling: mfcr2}", law="ulaw"), "mfcr2",
     "spans.0.signalling: mfcr2 signals in TS16's CAS multiframe: it needs framing cas (an e1 span)"),
    ("pri with cas", with_spans("{kind: e1, name: span1, framing: cas, signalling: pri_net}"), "pri_net",
     "spans.0.signalling: pri_net needs TS16 as its D-channel, but framing cas gives TS16 to CAS: use framing ccs"),
    ("timing twice", with_spans("{kind: e1, name: span1, timing: 1}", "{kind: e1, name: span2, timing: 1}"),
     "span2, timing: |1",
     "spans.1.timing: timing 1 is already span1's: each clock priority is given once (0: never a clock source)"),
    # span2 has no timing: its list position (2) is taken by span1
    ("timing taken by a list position", with_spans("{kind: e1, name: span1, timing: 2}", "{kind: e1, name: span2}"),
     "{kind: e1, name: span2}", "spans.1: timing 2 (its list position: it has no timing of its own) is already "
     "span1's: each clock priority is given once (0: never a clock source)"),
    ("e1 on a mu-law site", with_spans("{kind: e1, name: span1}", law="ulaw"), "kind: |e1, name: span1",
     "spans.0.kind: An e1 span carries A-law, but site.law is ulaw"),
    ("t1 on an A-law site", with_spans("{kind: t1, name: span1}"), "kind: |t1, name: span1",
     "spans.0.kind: A t1 span carries mu-law, but site.law is alaw"),
    ("unknown framing", with_spans("{kind: e1, name: span1, framing: g704}"), "g704",
     "spans.0.framing: must be one of 'ccs', 'cas', 'esf' or 'd4', got 'g704'"),
    ("unknown signalling", with_spans("{kind: e1, name: span1, signalling: ss7}"), "ss7",
     "spans.0.signalling: must be one of 'none', 'pri_cpe', 'pri_net' or 'mfcr2', got 'ss7'"),
    ("negative timing", with_spans("{kind: e1, name: span1, timing: -1}"), "-1",
     "spans.0.timing: must be at least 0, got -1"),
    ("span name twice", with_spans("{kind: e1, name: span1}", "{kind: e1, name: span1, timing: 3}"),
     "span1, timing", "spans.1.name: span name 'span1' is already used by span 0"),
]


@pytest.mark.parametrize(("name", "text", "needle", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_span_rule_at_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
                                     needle: str, message: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    line, col = line_col(text, needle)
    assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"{path}:{line}:{col}: {message}"


def test_defaults_follow_the_kind_and_the_list_position() -> None:
    cfg = parse_config(with_spans("{kind: e1, name: span1}", "{kind: e1, name: span2, framing: cas, crc4: false}",
                                  "{kind: e1, name: span3, timing: 0, signalling: pri_cpe}"), "site.yaml")
    got = [(s.line_framing, s.line_coding, s.line_crc4, s.timing_at(i), s.ts16) for i, s in enumerate(cfg.spans)]
    assert got == [("ccs", "hdb3", True, 1, "clear"), ("cas", "hdb3", False, 2, "cas"),
                   ("ccs", "hdb3", True, 0, "dchan")]
    t1 = parse_config(with_spans("{kind: t1, name: span1}", "{kind: t1, name: span2, framing: d4, coding: ami, "
                                 "signalling: pri_net}", law="ulaw"), "site.yaml")
    got = [(s.line_framing, s.line_coding, s.line_crc4, s.timing_at(i), s.ts16) for i, s in enumerate(t1.spans)]
    assert got == [("esf", "b8zs", False, 1, "clear"), ("d4", "ami", False, 2, "dchan")]


def test_mfcr2_under_cas_and_timing_0_twice_are_fine() -> None:
    cfg = parse_config(with_spans("{kind: e1, name: span1, framing: cas, signalling: mfcr2, timing: 0}",
                                  "{kind: e1, name: span2, timing: 0}"), "site.yaml")
    assert [s.ts16 for s in cfg.spans] == ["cas", "clear"]


def test_every_problem_is_reported_at_once() -> None:
    text = with_spans("{kind: e1, name: span1, framing: esf, signalling: mfcr2}",
                      "{kind: t1, name: span2, crc4: true, timing: 1}")
    with pytest.raises(ConfigError) as exc:
        parse_config(text, "site.yaml")
    assert [i.message.split(":")[0] for i in exc.value.issues] == [
        "spans.0.framing", "spans.0.signalling", "spans.1.kind", "spans.1.crc4", "spans.1.timing"]
