"""The echo canceller in the chain's slot: after G.711 decode, before the detectors and the graph.

The test is the line: channel 0 plays speech-shaped noise (what the appliance sends to a trunk);
whatever channel 0 sends comes back on its own receive side one block later through an echo path
(ERL 6 dB, 4 ms flat delay, 8 ms decaying response: bench/echo_signals.py), plus whatever the far
party says. Channel 1 listens to channel 0 at 0 dB: what it sends is what an agent bridged to the
trunk would hear.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench import echo_signals as es
from dsp.errors import DspCommandError
from dsp.scheduler import Scheduler, lib
from tests.peers import spandsp_far
from tests.peers._spandsp import ffi as sp_ffi
from tests.peers._spandsp import lib as sp_lib

K = 4                       # ticks per block
PER = K * 8                 # samples per channel and block
SEED = 20261203
DEC = np.array([lib.cb_alaw2lin(a) for a in range(256)], dtype=np.float64)
ENC = np.array([lib.cb_lin2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8)


class Line:
    """Two channels of a scheduler on A-law; channel 0's line returns its echo."""

    def __init__(self, seconds: float, path: Any | None = None) -> None:
        self.s = Scheduler(2, "alaw", period_ticks=K)
        self.n = round(seconds * 1000) * 8
        self.path = es.echo_path(SEED) if path is None else path
        self.sent = np.zeros(self.n)        # what channel 0 sent, linear
        self.far = np.zeros(self.n)         # what the far party says on channel 0's line
        self.rx0 = np.zeros(self.n, dtype=np.uint8)   # what the line delivered to channel 0
        self.heard = np.zeros(self.n, dtype=np.uint8) # what channel 1 sent
        self.pos = 0
        self.events: list[Any] = []
        self.s.listen(1, 0)

    def run(self, seconds: float) -> None:
        end = min(self.n, self.pos + round(seconds * 1000) * 8)
        while self.pos < end:
            b = self.pos
            # the line: the echo of everything sent before this block, and the far party
            back = np.zeros(PER)
            if b >= PER:
                echo = np.convolve(self.sent[max(0, b - len(self.path) - PER):b], self.path)
                lo = min(b, len(self.path) + PER)
                back = echo[lo - PER:lo]
            line = np.clip(np.round(back + self.far[b:b + PER]), -32768, 32767).astype(np.int32)
            rx = np.full(2 * PER, 0xD5, dtype=np.uint8)
            rx[:PER] = ENC[line + 32768]
            tx = np.frombuffer(self.s.process(b // 8, K, rx.tobytes()), dtype=np.uint8)
            self.rx0[b:b + PER] = rx[:PER]
            self.sent[b:b + PER] = DEC[tx[:PER]]
            self.heard[b:b + PER] = tx[PER:]
            self.events += self.s.events()
            self.pos += PER

    def level(self, which: Any, a: float, b: float) -> float:
        return es.level_dbm0(DEC[which[round(a * 8000):round(b * 8000)]])


def speech_line(taps: int, seconds: float = 3.0) -> Line:
    line = Line(seconds)
    rin = es.rin_speech(SEED, seconds)
    line.s.play(0, rin.astype(np.int16).tobytes())
    if taps:
        line.s.echo(0, taps)
    return line


def test_the_agent_hears_the_trunk_without_the_echo_of_its_own_voice() -> None:
    off, on = speech_line(0), speech_line(128)
    off.run(3.0)
    on.run(3.0)
    echo_off = off.level(off.heard, 2.0, 3.0)
    assert echo_off > -26                            # the echo, at ERL 6 dB, heard in full
    assert np.array_equal(off.heard, off.rx0)        # canceller off: bit-exact
    assert on.level(on.heard, 2.0, 3.0) <= echo_off - 25
    kinds = [(e.type, e.value, e.extra) for e in on.events if e.type == lib.CB_EV_ECHO]
    assert kinds == [(lib.CB_EV_ECHO, lib.CB_ECHO_ON, lib.CB_ECHO_BY_COMMAND)]


def test_off_again_the_line_passes_bit_exact() -> None:
    line = speech_line(128, 4.0)
    line.run(2.0)
    line.s.echo(0, 0)
    line.run(2.0)
    assert [e.value for e in line.events if e.type == lib.CB_EV_ECHO] == [lib.CB_ECHO_ON, lib.CB_ECHO_OFF]
    start = round(2.1 * 8000)
    assert np.array_equal(line.heard[start:], line.rx0[start:])


def test_a_refused_command_leaves_the_canceller_as_it_was() -> None:
    line = speech_line(128)
    line.run(1.0)
    sent = line.s._sent
    with pytest.raises(DspCommandError, match=r"echo_taps must be 0 \(off\) or a multiple of 8"):
        line.s.echo(0, 520)
    assert line.s._sent == sent                     # refused before it was queued
    line.s.send(lib.CB_CMD_ECHO, 0, 520, 0)          # the raw command gets to the chain
    line.run(2.0)
    errors = [(e.value, e.extra) for e in line.events if e.type == lib.CB_EV_MEDIA_ERROR]
    assert errors == [(lib.CB_CMD_ECHO, lib.CB_ERR_INVALID)]
    assert [e.value for e in line.events if e.type == lib.CB_EV_ECHO] == [lib.CB_ECHO_ON]
    echo = line.level(line.rx0, 2.0, 3.0)
    assert line.level(line.heard, 2.0, 3.0) <= echo - 25     # still cancelling, never reset


def test_the_far_party_s_dtmf_is_detected_through_the_canceller() -> None:
    line = speech_line(128, 4.0)
    digits = np.array(spandsp_far.dtmf("159#"), dtype=np.float64)
    at = 2 * 8000
    line.far[at:at + len(digits)] = digits
    line.s.detect_dtmf(0)
    line.run(4.0)
    got = "".join(chr(e.value) for e in line.events if e.type == lib.CB_EV_DTMF)
    assert got == "159#"


@pytest.mark.parametrize("taps", [0, 128])
def test_the_echo_of_our_own_dtmf_does_not_talk_off(taps: int) -> None:
    """After 2 s of speech the canceller knows the line; then we send digits: their echo (at ERL
    6 dB) is heard by our own detector without the canceller, not with it."""
    line = speech_line(taps, 4.0)
    line.run(2.0)
    line.s.stop_play(0)
    line.s.dtmf_tx(0, "2580")
    line.s.detect_dtmf(0)
    line.run(2.0)
    got = "".join(chr(e.value) for e in line.events if e.type == lib.CB_EV_DTMF)
    assert got == ("" if taps else "2580")


def test_ans_with_reversals_from_the_line_tone_disables_it_and_the_line_passes_bit_exact() -> None:
    line = speech_line(128, 6.0)
    p = sp_lib.anspeer_new(3)       # MODEM_CONNECT_TONES_ANS_PR
    buf = sp_ffi.new("int16_t[]", 4 * 8000)
    n = sp_lib.anspeer_gen(p, buf, 4 * 8000)
    sp_lib.anspeer_free(p)
    ans = np.frombuffer(sp_ffi.buffer(buf, 2 * n), dtype=np.int16).astype(np.float64)
    at = 2 * 8000
    line.far[at:at + len(ans)] = ans
    line.run(2.0)
    line.s.stop_play(0)             # a modem answers: we stop talking (both paths go quiet after)
    line.run(4.0)
    evs = [(e.tick, e.value, e.extra) for e in line.events if e.type == lib.CB_EV_ECHO]
    assert [v for _, v, _ in evs] == [lib.CB_ECHO_ON, lib.CB_ECHO_TONE_DISABLED, lib.CB_ECHO_ON]
    onset = (at + int(np.nonzero(ans)[0][0])) // 8
    off_at, back_at = evs[1][0], evs[2][0]
    assert 0 < off_at - onset <= 1000
    assert [e.value for e in line.events if e.type == lib.CB_EV_ANS] == [1]
    end = (at + int(np.nonzero(ans)[0][-1])) // 8 + 1
    assert 100 <= back_at - end <= 400
    # tone-disabled: the line passes to the listener bit-exact
    a, b = (off_at + K + 1) * 8, back_at * 8
    assert b - a > 8000
    assert np.array_equal(line.heard[a:b], line.rx0[a:b])
