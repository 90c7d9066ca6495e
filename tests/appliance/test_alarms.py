"""The alarm registry and counter alarms, on a stepped clock."""

from __future__ import annotations

from appliance.alarms import QUIET_MS, AlarmRegistry, CounterAlarms


class Now:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


def test_raise_keeps_since_and_updates_detail_clear_by_kind() -> None:
    now = Now()
    reg = AlarmRegistry(now)
    now.ms = 100
    reg.raise_alarm("span_los", "span 0: no signal")
    now.ms = 250
    reg.raise_alarm("span_los", "span 0: no signal for 150 ms")
    reg.raise_alarm("disk_full", "state directory full")
    assert reg.snapshot() == [
        {"kind": "span_los", "since_ms": 100, "detail": "span 0: no signal for 150 ms"},
        {"kind": "disk_full", "since_ms": 250, "detail": "state directory full"},
    ]
    assert reg.clear_alarm("span_los") is True
    assert reg.clear_alarm("span_los") is False
    assert "span_los" not in reg and "disk_full" in reg
    now.ms = 300
    reg.raise_alarm("span_los", "again")
    assert reg.get("span_los") is not None and reg.get("span_los").since_ms == 300  # type: ignore[union-attr]


def test_counter_alarm_raises_on_growth_and_clears_after_the_quiet_time() -> None:
    now = Now()
    reg = AlarmRegistry(now)
    ca = CounterAlarms(reg, now, lambda name: {"far_late": "far-end answers late"}.get(name, name))
    ca.update({"far_late": 0, "far_refused": 0})
    assert reg.snapshot() == [] and ca.counters == {"far_late": 0, "far_refused": 0}
    now.ms = 1000
    ca.update({"far_late": 3, "far_refused": 0})
    now.ms = 2000
    ca.update({"far_late": 5, "far_refused": 0, "far_new_counter": 1})     # a counter added later
    assert reg.snapshot() == [
        {"kind": "far_late", "since_ms": 1000, "detail": "5 far-end answers late (last at 2000 ms; 5 in total)"},
        {"kind": "far_new_counter", "since_ms": 2000, "detail": "1 far_new_counter (last at 2000 ms; 1 in total)"},
    ]
    now.ms = 2000 + QUIET_MS - 1
    ca.update({"far_late": 5, "far_new_counter": 1})
    assert "far_late" in reg
    now.ms = 2000 + QUIET_MS
    ca.update({"far_late": 5, "far_new_counter": 1})
    assert reg.snapshot() == []
    assert ca.counters["far_late"] == 5
    now.ms = 100000
    ca.update({"far_late": 6})              # a new alarm counts from where the last one left off
    assert reg.snapshot() == [
        {"kind": "far_late", "since_ms": 100000, "detail": "1 far-end answers late (last at 100000 ms; 6 in total)"}]


def test_counter_alarms_say_when_a_raised_alarm_may_clear() -> None:
    """clear_due_ms: until then, with no counter changed, an update has nothing to do (the engine
    skips it); None while no counter alarm is raised."""
    now = Now()
    reg = AlarmRegistry(now)
    ca = CounterAlarms(reg, now, lambda name: name)
    ca.update({"far_late": 0, "events_dropped": 0})
    assert ca.clear_due_ms is None
    now.ms = 1000
    ca.update({"far_late": 2, "events_dropped": 0})
    assert ca.clear_due_ms == 1000 + QUIET_MS
    now.ms = 5000
    ca.update({"far_late": 2, "events_dropped": 1})
    assert ca.clear_due_ms == 1000 + QUIET_MS            # the first to clear
    now.ms = 1000 + QUIET_MS
    ca.update({"far_late": 2, "events_dropped": 1})
    assert "far_late" not in reg and ca.clear_due_ms == 5000 + QUIET_MS
    now.ms = 5000 + QUIET_MS
    ca.update({"far_late": 2, "events_dropped": 1})
    assert reg.snapshot() == [] and ca.clear_due_ms is None
