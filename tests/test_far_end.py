"""A separate process plays a phone over the far-end socket (standard library only)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from appliance.linecard import LineCard
from drivers.base import CardDescription
from drivers.hal import EventType, FarError
from drivers.sim import SimCard
from dsp.scheduler import lib

PEER = Path(__file__).resolve().parent / "peers" / "far_phone.py"
PHONE = 1          # FXS port the peer plays
OTHER = 3          # an FXS port left to the in-process far side


Call = tuple[list[tuple[int, int, int, int]], dict[str, float], list[str], bytes]


def run_call(tmp_path: Path, digits: str, bad: str | None = None) -> Call:
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxo", "fxs", "fxs", "fxs"), k=4), zone="cn", far_socket=sock)
    args = [sys.executable, str(PEER), str(sock), str(PHONE), digits] + (["--bad", bad] if bad else [])
    # The peer must not see this project: it uses the standard library and the framing document only.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path))
    log: list[tuple[int, int, int, int]] = []
    got_digits: list[str] = []
    prompt = (np.arange(16000) % 200 * 50 - 5000).astype(np.int16)
    other_heard = b""
    try:
        assert tier.accept_far_peer(timeout=30) is not None
        card = tier.card
        assert isinstance(card, SimCard)
        card.far.listen(OTHER)
        tier.sched.play(OTHER, prompt.tobytes())
        for _ in range(200):
            for ev in tier.step(40):
                log.append((ev.tick, ev.chan, ev.type, ev.value))
                if ev.chan == PHONE and ev.type == EventType.HOOK_OFF:
                    tier.sched.tone(PHONE, "cn", "dial")
                    tier.sched.detect_dtmf(PHONE)
                elif ev.chan == PHONE and ev.type == EventType.DTMF_DOWN:
                    tier.sched.stop_tone(PHONE)
                elif ev.chan == PHONE and ev.type == EventType.DTMF:
                    got_digits.append(chr(ev.value))
            other_heard += card.far.read(OTHER)
            if bad is None and any(e[2] == EventType.HOOK_ON for e in log):
                break
            if bad is not None and tier.tick >= 2600:   # well past the refusal and the whole prompt
                break
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        tier.close()
    assert proc.returncode == 0, err
    heard = json.loads(out.strip().splitlines()[-1])
    return log, heard, got_digits, other_heard


def test_phone_over_the_socket_gets_dial_tone_and_dials(tmp_path: Path) -> None:
    log, heard, digits, _ = run_call(tmp_path, "2580#")
    kinds = [(chan, typ) for _, chan, typ, _ in log]
    assert (0, EventType.FAR_UP) not in kinds  # attach is silent: the HELLO is the record
    assert (PHONE, EventType.HOOK_OFF) in kinds
    assert "".join(digits) == "2580#"
    assert heard["tone_hz"] == 450                   # cn dial tone
    assert abs(heard["tone_dbm0"] - -10.0) <= 1.0
    hook_on = [t for t, chan, typ, _ in log if chan == PHONE and typ == EventType.HOOK_ON]
    assert len(hook_on) == 1
    assert not [e for e in log if e[2] == EventType.FAR_ERROR]


def test_the_lockstep_run_repeats_tick_for_tick(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_call(tmp_path / "a", "159")
    second = run_call(tmp_path / "b", "159")
    assert first[0] == second[0]
    assert first[1] == second[1]


@pytest.mark.parametrize(
    ("bad", "code", "reason"),
    [
        ("seq", FarError.BAD_SEQUENCE, "sequence number out of order"),
        ("tick", FarError.BAD_TICK, "first tick is not the block's"),
        ("type", FarError.BAD_TYPE, "unknown message type"),
        ("length", FarError.BAD_LENGTH, "length does not match the block's shape"),
        ("event", FarError.BAD_EVENT, "event names a channel not claimed"),
    ],
)
def test_a_bad_block_is_refused_logged_and_closed_without_disturbing_others(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: str, code: int, reason: str
) -> None:
    caplog.set_level(logging.WARNING, logger="cicbox.sched")
    log, _, _, other_heard = run_call(tmp_path, "1", bad=bad)
    errors = [(t, v) for t, _, typ, v in log if typ == EventType.FAR_ERROR]
    assert [v for _, v in errors] == [code]
    downs = [t for t, _, typ, _ in log if typ == EventType.FAR_DOWN]
    assert downs == [errors[0][0]]
    assert any(reason in r.getMessage() and "connection closed" in r.getMessage() for r in caplog.records)
    # The other phone heard its prompt without a gap, before, during and after the refusal.
    prompt = (np.arange(16000) % 200 * 50 - 5000).astype(np.int16)
    enc = bytes(lib.cb_lin2alaw(int(v)) for v in prompt)
    assert enc in other_heard
