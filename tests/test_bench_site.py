"""The benchmark site: the committed configs/bench-240.yaml is bench/bench_site.py's output and
validates as a site of 240 channels."""

from __future__ import annotations

from pathlib import Path

from appliance.config.loader import load_config
from appliance.config.model import FxoPort, FxsPort
from bench.bench_site import TARGET, site_yaml

ROOT = Path(__file__).resolve().parent.parent


def test_committed_site_is_the_generators_output() -> None:
    assert TARGET.read_text() == site_yaml(), "run .venv/bin/python bench/bench_site.py"


def test_bench_site_has_120_trunks_120_phones_8_queues() -> None:
    cfg = load_config(ROOT / "configs" / "bench-240.yaml")
    assert sum(isinstance(p, FxoPort) for p in cfg.ports) == 120
    assert sum(isinstance(p, FxsPort) for p in cfg.ports) == 120
    assert len(cfg.queues) == 8
    assert all(len(q.agents) == 120 for q in cfg.queues.values())
    assert {a.phone for a in cfg.agents} == {p.name for p in cfg.ports if isinstance(p, FxsPort)}
