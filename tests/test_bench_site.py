"""The benchmark site: the committed configs/bench-240.yaml is bench/bench_site.py's output and
validates as a site whose calls come in on 8 E1 PRI spans (240 B-channels) to 120 agents; its analog
variant, 120 FXO trunks instead of the spans, is the site as it was before."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config.loader import load_config, parse_config
from appliance.config.model import FxoPort, FxsPort
from appliance.world.exchange import PriSpan, pri_spans
from bench.bench_site import DNIS, TARGET, analog_site_yaml, pri_site_yaml, site_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_committed_site_is_the_generators_output() -> None:
    assert TARGET.read_text() == pri_site_yaml(), "run .venv/bin/python bench/bench_site.py"


def test_bench_site_has_8_e1_pri_spans_120_phones_8_queues() -> None:
    cfg = load_config(ROOT / "configs" / "bench-240.yaml")
    assert not any(isinstance(p, FxoPort) for p in cfg.ports)
    assert sum(isinstance(p, FxsPort) for p in cfg.ports) == 120
    assert [(s.kind, s.signalling, s.echo_taps) for s in cfg.spans] == [("e1", "pri_cpe", 0)] * 8
    assert [s.timing_at(i) for i, s in enumerate(cfg.spans)] == list(range(1, 9))
    assert [(r.dnis, r.ivr) for r in cfg.routes] == [(DNIS, "main")]
    assert len(cfg.queues) == 8
    assert all(len(q.agents) == 120 for q in cfg.queues.values())
    assert {a.phone for a in cfg.agents} == {p.name for p in cfg.ports if isinstance(p, FxsPort)}
    # the world's far exchange plays the network side of every span and dials the routed DNIS
    assert pri_spans(cfg) == [PriSpan(i, f"span{i + 1}", "e1", "network", "euroisdn", DNIS) for i in range(8)]


def test_the_analog_variant_has_120_trunks_120_phones_8_queues() -> None:
    cfg = parse_config(analog_site_yaml(), "bench-240-fxo.yaml")
    assert sum(isinstance(p, FxoPort) for p in cfg.ports) == 120
    assert sum(isinstance(p, FxsPort) for p in cfg.ports) == 120
    assert {p.echo_taps for p in cfg.ports if isinstance(p, FxoPort)} == {0}
    assert cfg.spans == () and len(cfg.queues) == 8 and pri_spans(cfg) == []


def test_a_bench_site_needs_a_line() -> None:
    with pytest.raises(ValueError, match="trunks or spans"):
        site_yaml(0, 10, 2)
    mixed = parse_config(site_yaml(2, 4, 2, spans=1), "mixed.yaml")
    assert len([p for p in mixed.ports if isinstance(p, FxoPort)]) == 2 and len(mixed.spans) == 1
