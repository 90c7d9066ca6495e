"""The systemd units: `systemd-analyze verify` accepts them, and the engine's unit keeps its watchdog contract."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[1] / "systemd"
NAMES = ("cicbox-engine.service", "cicbox-panel.service")


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}}; keys may repeat (DeviceAllow=, SystemCallFilter=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any section"
        assert not line.endswith("\\"), f"{path.name}: keep each setting on one line: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{key}= given {len(values)} times"
    return values[0]


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (package systemd)")
    true = shutil.which("true")
    assert true is not None
    for name in NAMES:
        text = (UNITS / name).read_text(encoding="utf-8")
        # verify insists that ExecStart's binary exists; /opt/cicbox exists only on the appliance.
        lines = [f"ExecStart={true}" if line.startswith("ExecStart=") else line for line in text.splitlines()]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / name) for name in NAMES)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    # Only lines about our units count; the host's own units may have complaints of their own.
    ours = [line for line in proc.stderr.splitlines() if "cicbox" in line]
    assert ours == [], proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_engine_unit_keeps_the_watchdog_contract() -> None:
    unit = parse(UNITS / "cicbox-engine.service")
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "WatchdogSec") == "10s"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "ExecStart") == "/opt/cicbox/.venv/bin/cicbox run --state-dir /var/lib/cicbox"
    assert one(unit, "Service", "StateDirectory") == "cicbox"
    # The media thread may use SCHED_FIFO and mlockall(): the limits are there, nothing refuses realtime.
    assert "LimitRTPRIO" in unit["Service"] and one(unit, "Service", "LimitMEMLOCK") == "infinity"
    assert "RestrictRealtime" not in unit["Service"]
    # Devices: a closed list that still has DAHDI and serial ports; PrivateDevices= would hide them.
    assert one(unit, "Service", "DevicePolicy") == "closed"
    allowed = {value.split()[0] for value in unit["Service"]["DeviceAllow"]}
    assert {"char-dahdi", "char-dahdi_channels", "char-ttyS", "char-ttyUSB"} <= allowed
    assert "PrivateDevices" not in unit["Service"]


def test_panel_unit() -> None:
    unit = parse(UNITS / "cicbox-panel.service")
    assert one(unit, "Service", "ExecStart") == (
        "/opt/cicbox/.venv/bin/cicbox panel --state-dir /var/lib/cicbox --panel-dir /var/lib/cicbox-panel")
    assert one(unit, "Unit", "After") == "cicbox-engine.service"
    assert one(unit, "Unit", "Wants") == "cicbox-engine.service"
    # The panel must never take the engine down with it.
    assert "Requires" not in unit["Unit"] and "BindsTo" not in unit["Unit"] and "PartOf" not in unit["Unit"]
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "PrivateDevices") == "yes"
    assert "DeviceAllow" not in unit["Service"]
    # Its own state directory, private; the engine's stays read-only to it, never claimed.
    assert one(unit, "Service", "StateDirectory") == "cicbox-panel"
    assert one(unit, "Service", "StateDirectoryMode") == "0700"
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert one(unit, "Service", "ReadOnlyPaths") == "-/var/lib/cicbox"
    assert "ReadWritePaths" not in unit["Service"]
    # It serves the management network (HTTPS, accounts): no loopback-only address filter any more.
    assert "IPAddressAllow" not in unit["Service"] and "IPAddressDeny" not in unit["Service"]
