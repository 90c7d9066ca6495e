"""`echo_taps` in the site configuration: on FXO and FXS ports and on spans, 0 (off) or a multiple of 8
from 32 to 512; the defaults (128 on trunks and spans, 0 on phones); a bad value at its FILE:LINE:COL
(found here by searching the text, not from the loader), exit 2 from the CLI's config check."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cli
from appliance.config.loader import parse_config
from appliance.config.model import FxoPort, FxsPort
from tests.config.test_span_config import line_col, with_spans
from tests.e2e.harness import site_yaml

RULE = "echo_taps must be 0 (off) or a multiple of 8 from 32 to 512 (8 per ms)"
BASE = site_yaml(agents=1)
TRUNK1 = "name: trunk1, number: '075588880001', callerid: fsk_bell202, answer_on_ring: 2"
PHONE1 = "name: phone1, extension: '8001'"


def on_trunk1(taps: object) -> str:
    return BASE.replace(TRUNK1, f"{TRUNK1}, echo_taps: {taps}")


def on_phone1(taps: object) -> str:
    return BASE.replace(PHONE1, f"{PHONE1}, echo_taps: {taps}")


def test_defaults_are_128_on_trunks_and_spans_and_off_on_phones() -> None:
    cfg = parse_config(with_spans("{kind: e1, name: span1}", "{kind: e1, name: span2, echo_taps: 0}"), "site.yaml")
    assert [(p.name, p.echo_taps) for p in cfg.ports] == [("trunk1", 128), ("trunk2", 128), ("phone1", 0)]
    assert isinstance(cfg.ports[0], FxoPort) and isinstance(cfg.ports[2], FxsPort)
    assert [(s.name, s.echo_taps) for s in cfg.spans] == [("span1", 128), ("span2", 0)]


@pytest.mark.parametrize("taps", [0, 32, 128, 256, 512])
def test_each_length_the_rule_allows_is_taken_on_every_kind_of_line(taps: int) -> None:
    assert parse_config(on_trunk1(taps), "site.yaml").ports[0].echo_taps == taps
    assert parse_config(on_phone1(taps), "site.yaml").ports[2].echo_taps == taps
    spans = with_spans(f"{{kind: e1, name: span1, echo_taps: {taps}}}")
    assert parse_config(spans, "site.yaml").spans[0].echo_taps == taps


BAD = [
    ("trunk 100", on_trunk1(100), "echo_taps: |100", "ports.0.echo_taps", "100"),
    ("trunk 520", on_trunk1(520), "echo_taps: |520", "ports.0.echo_taps", "520"),
    ("phone 100", on_phone1(100), "echo_taps: |100", "ports.2.echo_taps", "100"),
    ("phone 520", on_phone1(520), "echo_taps: |520", "ports.2.echo_taps", "520"),
    ("span 100", with_spans("{kind: e1, name: span1, echo_taps: 100}"), "echo_taps: |100", "spans.0.echo_taps",
     "100"),
    ("span 520", with_spans("{kind: e1, name: span1, echo_taps: 520}"), "echo_taps: |520", "spans.0.echo_taps",
     "520"),
    ("under 32", on_trunk1(24), "echo_taps: |24", "ports.0.echo_taps", "24"),
    ("negative", on_trunk1(-8), "echo_taps: |-8", "ports.0.echo_taps", "-8"),
]


@pytest.mark.parametrize(("name", "text", "needle", "where", "got"), BAD, ids=[b[0] for b in BAD])
def test_a_length_the_rule_refuses_is_reported_at_its_place_with_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, needle: str, where: str,
        got: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    line, col = line_col(text, needle)
    assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"{path}:{line}:{col}: {where}: {RULE}, got {got}"


def test_taps_must_be_a_number_not_text_or_a_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for value, shown in (("'128'", "'128'"), ("true", "true"), ("[128]", "a list"), ("~", "null")):
        text = on_trunk1(value)
        path = tmp_path / "site.yaml"
        path.write_text(text)
        line, col = line_col(text, f"echo_taps: |{value}")
        assert cli.main(["config", "check", str(path), "--state-dir", str(tmp_path)]) == 2
        assert capsys.readouterr().err.strip() == \
            f"{path}:{line}:{col}: ports.0.echo_taps: must be an integer, got {shown}"


def test_the_shipped_templates_say_what_the_bench_and_the_sites_run_with() -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    from appliance.config.loader import load_config

    bench = load_config(root / "bench-240.yaml")
    # issue 10's bench: echo off on the lines its calls come in on (issue 14's: its PRI spans)
    assert {p.echo_taps for p in bench.ports if isinstance(p, FxoPort)} | {s.echo_taps for s in bench.spans} == {0}
    for name in ("hotel.yaml", "hospital.yaml"):
        cfg = load_config(root / name)
        assert {p.echo_taps for p in cfg.ports if isinstance(p, FxoPort)} == {128}
        assert {p.echo_taps for p in cfg.ports if isinstance(p, FxsPort)} == {0}
        assert all(s.echo_taps == 128 for s in cfg.spans)
