"""Python's garbage is collected between control periods, never inside one (appliance.collector):
a full collection inside a period lengthened the ACD's decisions of that period tenfold.

What is observed is the collector's own start callback (gc.callbacks), and whether garbage made
inside a period (reference cycles, more than the young generation's threshold) is gone once the
period ends.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.collector import Collector
from appliance.config import load_config
from appliance.engine import Engine
from bench.bench_site import site_yaml


class _Node:
    def __init__(self) -> None:
        self.me = self                      # a reference cycle: only the collector frees it


def _cycles(n: int) -> list[weakref.ref[_Node]]:
    """`n` unreachable cycles, and weak references telling whether each is still there."""
    return [weakref.ref(_Node()) for _ in range(n)]


class Watch:
    """The collections started while it is installed, each as whether it started inside a period."""

    def __init__(self) -> None:
        self.seen: list[bool] = []
        self.inside = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.seen.append(self.inside)


@pytest.fixture
def watch() -> Iterator[Watch]:
    w = Watch()
    gc.collect()
    gc.callbacks.append(w)
    try:
        yield w
    finally:
        gc.callbacks.remove(w)
        gc.enable()


def test_garbage_made_in_a_period_is_collected_at_its_end_not_inside(watch: Watch) -> None:
    col = Collector()
    col.period_starts()
    watch.inside = True
    refs = _cycles(3 * gc.get_threshold()[0])
    watch.inside = False
    assert watch.seen == []                                  # not one collection inside
    assert all(r() is not None for r in refs)
    col.period_ends()
    assert watch.seen == [False]
    assert all(r() is None for r in refs)
    assert col.collections == 1
    assert gc.isenabled()


def test_a_period_with_little_garbage_ends_without_a_collection(watch: Watch) -> None:
    col = Collector()
    col.period_starts()
    _cycles(10)
    col.period_ends()
    assert watch.seen == [] and col.collections == 0
    assert gc.isenabled()


def test_a_period_that_raises_turns_collection_back_on(tmp_path: Path) -> None:
    eng = _engine(tmp_path)
    try:
        def boom() -> None:
            raise RuntimeError("in the period")

        eng._period = boom                  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            eng.run_period()
        assert gc.isenabled()
    finally:
        eng.close()


def _engine(tmp: Path) -> Engine:
    (tmp / "site.yaml").write_text(site_yaml(4, 4, 1))
    return Engine(tmp, load_config(tmp / "site.yaml"), 1, clock="virtual")


def test_the_engine_collects_only_between_its_periods(tmp_path: Path, watch: Watch) -> None:
    """Each period of a running engine makes more garbage than the young generation holds: it is
    collected after every period, never during one (nor on the writer's thread meanwhile)."""
    eng = _engine(tmp_path)
    try:
        period = eng._period
        refs: list[weakref.ref[_Node]] = []
        alive_after: list[int] = []

        def busy_period() -> None:
            watch.inside = True
            try:
                period()
                refs.extend(_cycles(2 * gc.get_threshold()[0]))
            finally:
                watch.inside = False

        eng._period = busy_period           # type: ignore[method-assign]
        for _ in range(20):
            eng.run_period()
            alive_after.append(sum(1 for r in refs if r() is not None))
            refs.clear()
        assert len(watch.seen) >= 20 and not any(watch.seen)
        assert alive_after == [0] * 20
    finally:
        eng.close()


def test_a_period_inside_a_period_leaves_collection_off_until_the_outer_one_ends(watch: Watch) -> None:
    outer, inner = Collector(), Collector()
    outer.period_starts()
    inner.period_starts()
    inner.period_ends()
    assert not gc.isenabled()                   # still inside the outer period
    watch.inside = True
    refs = _cycles(3 * gc.get_threshold()[0])
    watch.inside = False
    assert watch.seen == [] and all(r() is not None for r in refs)
    outer.period_ends()
    assert gc.isenabled() and watch.seen == [False] and all(r() is None for r in refs)


def test_configuration_applied_again_and_again_freezes_no_garbage(tmp_path: Path) -> None:
    """Each apply builds the ACD again and freezes what survives: the last configuration's objects,
    garbage by then, must be collected first, not frozen for ever."""
    eng = _engine(tmp_path)
    try:
        eng.switch_config(load_config(tmp_path / "site.yaml"), 2)
        eng.run_period()
        frozen = gc.get_freeze_count()
        for version in range(3, 23):                    # a configuration read afresh each time
            eng.switch_config(load_config(tmp_path / "site.yaml"), version)
            eng.run_period()
        assert gc.get_freeze_count() <= frozen + 500, (frozen, gc.get_freeze_count())
    finally:
        eng.close()
