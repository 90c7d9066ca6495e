"""The engine switches the lines' echo cancellers, in virtual time: on (reset) at each answer with the
taps the configuration gives the line, off at the release, as the media tier's own answers
(CB_EV_ECHO) and the snapshot show; and the fax rule: 2100 Hz without phase reversal (a fax's CED,
from spandsp's tone generator) sent by the caller's far side after the answer turns the call's
cancellers off within 1 s for the rest of the call, logged and shown, the octets then passing
bit-exact between the two channels; the next call on the trunk has its canceller again."""

from __future__ import annotations

import logging
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance import cli
from appliance.world import Caller, PhoneScript
from bench import echo_signals
from drivers.hal import EventType
from dsp.scheduler import Event, lib
from tests import signals
from tests.e2e.harness import Site, site_yaml
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib

TRUNK, PHONE = 0, 2
PERIOD_MS = 12          # the harness site's control period (k = 4: 10 ms rounded up to whole blocks)
OFF = {"state": "off", "taps": 0}
ON_BY_COMMAND = (int(lib.CB_ECHO_ON), int(lib.CB_ECHO_BY_COMMAND))
OFF_BY_COMMAND = (int(lib.CB_ECHO_OFF), int(lib.CB_ECHO_BY_COMMAND))


def ced(ms: int, dbm0: int = -12) -> array[int]:
    """A fax's CED: 2100 Hz without phase reversals, `ms` long, from spandsp's tone generator."""
    gen = slib.tonepeer_new(2100, dbm0, 0, 0, ms, 0, 0, 0, 0)
    assert gen != sffi.NULL
    try:
        buf = sffi.new("int16_t[]", ms * 8)
        assert slib.tonepeer_gen(gen, buf, ms * 8) == ms * 8
        return array("h", bytes(sffi.buffer(buf, 2 * ms * 8)))
    finally:
        slib.tonepeer_free(gen)


def speech(seed: int, seconds: float) -> array[int]:
    return array("h", echo_signals.rin_speech(seed, seconds).tobytes())


class Watched:
    """A site whose echo commands (LineCard.echo) and echo events from the media tier are recorded."""

    def __init__(self, tmp: Path, text: str, callers: list[Caller], phones: list[PhoneScript]) -> None:
        self.site = Site(tmp, text, callers, phones)
        self.engine = self.site.engine
        self.commands: list[tuple[int, int, int]] = []      # (engine ms, channel, taps)
        self.events: list[Event] = []
        card, lines = self.engine.tier_, self.engine.echo
        send, take = card.echo, lines.media_event

        def echo(chan: int, taps: int) -> None:
            self.commands.append((self.engine.clock.now_ms, chan, taps))
            send(chan, taps)

        def media_event(ev: Event) -> None:
            self.events.append(ev)
            take(ev)

        card.echo = echo                       # type: ignore[method-assign]
        lines.media_event = media_event        # type: ignore[method-assign]

    def echo(self, chan: int) -> Any:
        return self.engine.snapshot()["ports"][chan]["echo"]

    def answers(self, chan: int) -> list[tuple[int, int, int]]:
        """The media tier's CB_EV_ECHO on `chan`: (tick, state, reason)."""
        return [(e.tick, e.value, e.extra) for e in self.events if e.type == EventType.ECHO and e.chan == chan]

    def run_until(self, ms: int) -> None:
        self.site.run(ms - self.engine.clock.now_ms)

    def close(self) -> None:
        self.site.close()


def test_on_at_each_answer_with_the_lines_taps_off_at_the_release(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = site_yaml(agents=1, echo_taps=256).replace("extension: '8001'}", "extension: '8001', echo_taps: 64}")
    caller = Caller(trunk=TRUNK, at_ms=1000, press_after_ms=1500, hold_ms=5000)
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0, answer_after_ms=2500)
    w = Watched(tmp_path, text, [caller], [phone])
    try:
        w.run_until(5000)                                 # ringing: nothing on
        assert (w.echo(TRUNK), w.echo(PHONE), w.commands) == (OFF, OFF, [])
        w.run_until(8000)                                 # the trunk answered: the IVR, then the queue
        assert caller.answered_ms is not None and not phone.answered
        assert w.echo(TRUNK) == {"state": "on", "taps": 256} and w.echo(PHONE) == OFF
        w.run_until(13000)                                # the agent answered
        assert phone.answered and caller.connected_ms is not None
        assert w.echo(TRUNK) == {"state": "on", "taps": 256} and w.echo(PHONE) == {"state": "on", "taps": 64}
        with w.site.serving():                            # as the CLI's status prints them
            assert cli.main(["status", "--state-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [line.split()[-2:] for line in out if "trunk" in line or "phone" in line][:3] == [
            ["256", "taps"], ["echo", "off"], ["64", "taps"]]
        w.run_until(caller.connected_ms + caller.hold_ms + 3000)   # the caller hung up
        assert caller.hung_up_ms is not None
        assert (w.echo(TRUNK), w.echo(PHONE)) == (OFF, OFF)
    finally:
        w.close()
    answer, connected, gone = caller.answered_ms, phone.answered[0], caller.hung_up_ms
    # One command each way per line, at the answer and at the release (the line events' ticks; the far
    # side sees the trunk's hook a block after the engine's answer).
    assert [(c, taps) for _, c, taps in w.commands] == [(TRUNK, 256), (PHONE, 64), (TRUNK, 0), (PHONE, 0)]
    (t_on, _, _), (p_on, _, _), (t_off, _, _), (p_off, _, _) = w.commands
    assert 0 <= answer - t_on <= PERIOD_MS and p_on == connected and t_off == p_off == gone
    # The media tier took each at its next block and said so.
    trunk, phone_ = w.answers(TRUNK), w.answers(PHONE)
    assert [(v, r) for _, v, r in trunk] == [ON_BY_COMMAND, OFF_BY_COMMAND]
    assert [(v, r) for _, v, r in phone_] == [ON_BY_COMMAND, OFF_BY_COMMAND]
    assert 0 <= trunk[0][0] - t_on <= PERIOD_MS and 0 <= trunk[1][0] - t_off <= PERIOD_MS
    assert 0 <= phone_[0][0] - p_on <= PERIOD_MS and 0 <= phone_[1][0] - p_off <= PERIOD_MS


CED_MS = 3000
REPORT_AFTER_MS = 640     # "report": the media tier's CB_EV_ANS (0, Sin) handed to the engine this long after


@pytest.mark.parametrize("source", ["tone", "report"])
@pytest.mark.parametrize("when", ["talking", "ivr"])
def test_a_fax_tone_turns_the_calls_cancellers_off_for_the_rest_of_the_call(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, when: str, source: str) -> None:
    """The caller's far side sends CED after the answer: while the agent talks ("talking"), or in the IVR
    before the agent answers ("ivr": the phone's canceller then never goes on). Both lines have 128
    taps, so the octets pass bit-exact both ways only if both cancellers are off. "tone": spandsp's
    2100 Hz through the line, the media tier detecting it; "report": no tone, the media tier's report
    of one handed to the engine (the engine's half of the rule alone)."""
    caplog.set_level(logging.INFO, logger="cicbox.echo")
    text = site_yaml(agents=1).replace("extension: '8001'}", "extension: '8001', echo_taps: 128}")
    press = 5000 if when == "ivr" else 1500           # in the IVR, after the tone
    first = Caller(trunk=TRUNK, at_ms=1000, press_after_ms=press, hold_ms=9000, talk_hz=0)
    second = Caller(trunk=TRUNK, at_ms=40000, press_after_ms=1500, hold_ms=3000)
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0, answer_after_ms=2500, talk_audio=speech(21, 20))
    w = Watched(tmp_path, text, [first, second], [phone])
    reports: list[Event] = []
    card = w.engine.tier_
    step = card.step

    def stepped(ticks: int) -> list[Event]:
        evs = step(ticks)
        while reports and reports[0].tick < card.tick:
            evs.append(reports.pop(0))
        return evs

    card.step = stepped                       # type: ignore[method-assign]
    try:
        if when == "talking":
            w.run_until(13000)
            assert first.connected_ms is not None and w.echo(PHONE) == {"state": "on", "taps": 128}
            w.run_until(first.connected_ms + 1000)
        else:
            w.run_until(6500)
            assert first.answered_ms is not None and not phone.answered
        assert w.echo(TRUNK) == {"state": "on", "taps": 128}
        sent_at = w.engine.clock.now_ms
        if source == "tone":
            w.site.world.send(TRUNK, ced(CED_MS))
        else:
            reports.append(Event(sent_at + REPORT_AFTER_MS, TRUNK, int(EventType.ANS), 0, 1))
        w.run_until(sent_at + 1000)
        assert (w.echo(TRUNK)["state"], w.echo(PHONE)["state"]) == ("fax", "fax" if when == "talking" else "off")
        w.run_until(max(sent_at + CED_MS, 14000))           # the agent answers meanwhile ("ivr")
        assert first.connected_ms is not None and first.hung_up_ms is None
        assert (w.echo(TRUNK), w.echo(PHONE)) == ({"state": "fax", "taps": 0}, {"state": "fax", "taps": 0})
        talk_at = w.engine.clock.now_ms
        w.site.world.send(TRUNK, speech(5, 10))             # the caller's side talks again
        w.run_until(30000)
        assert first.hung_up_ms is not None and (w.echo(TRUNK), w.echo(PHONE)) == (OFF, OFF)
        w.run_until(48000)                                   # the next call: its canceller is on again
        assert second.answered_ms is not None and w.echo(TRUNK) == {"state": "on", "taps": 128}
        w.run_until(60000)
        world = w.site.world
    finally:
        w.close()

    # The tone was reported once per line that heard it, without reversal, within 1 s of its start...
    ans = [e for e in w.events if e.type == EventType.ANS]
    assert ans and all(e.value == 0 for e in ans), ans
    assert ans[0].chan == TRUNK and ans[0].extra == 1                 # heard on the trunk's Sin
    assert 600 <= ans[0].tick - sent_at <= 1000
    # ... and both cancellers went off at once, the media tier says, for the rest of that call.
    off_cmds = [(t, c) for t, c, taps in w.commands if taps == 0 and sent_at <= t < first.hung_up_ms]
    chans = [TRUNK, PHONE] if when == "talking" else [TRUNK]
    assert sorted(c for _, c in off_cmds) == chans
    for chan in chans:
        t_off = next(t for t, v, r in w.answers(chan) if t >= sent_at and (v, r) == OFF_BY_COMMAND)
        assert t_off - sent_at <= 1000
    assert not [c for t, c, taps in w.commands if taps and sent_at <= t < first.hung_up_ms]   # never on again
    assert first.connected_ms is not None and first.hung_up_ms is not None
    logged = [r.getMessage() for r in caplog.records if "without phase reversal" in r.getMessage()]
    assert len(logged) == 1 and "off for the rest of the call (trunk1" in logged[0], logged

    # Octets pass bit-exact between the two channels once the cancellers are off: the caller's speech to
    # the phone and the phone's to the caller.
    a = talk_at + 300
    b = first.hung_up_ms - 300
    assert b - a >= 2000
    to_phone = bytes(world.sent[TRUNK][a * 8:b * 8])
    assert phone.line_start == 0 and signals.delay_of(to_phone, bytes(phone.line[a * 8:]), 800) is not None
    assert first.answered_ms is not None
    to_caller = bytes(world.sent[PHONE][a * 8:b * 8])
    heard = bytes(first.heard[(a - first.answered_ms) * 8:])
    assert signals.delay_of(to_caller, heard, 800) is not None
    assert np.std(np.frombuffer(to_phone, dtype=np.uint8)) > 1 and np.std(np.frombuffer(to_caller, dtype=np.uint8)) > 1


def ans_pr(ms: int, dbm0: float = -12.0) -> array[int]:
    """A modem's answer tone with phase reversals (ANS/PR): 2100 Hz, 180 degrees every 450 ms."""
    n = np.arange(ms * 8)
    flip = np.where((n // (450 * 8)) % 2 == 1, np.pi, 0.0)
    amp = 32768 * 10 ** ((dbm0 - 3.14) / 20)
    return array("h", np.round(amp * np.sin(2 * np.pi * 2100 * n / 8000 + flip)).astype(np.int16).tobytes())


def test_a_modems_answer_tone_disables_the_canceller_until_it_ends(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """ANS/PR from the caller's side while the call is up: the trunk's canceller is tone-disabled within
    1 s (logged, shown; the octets then pass bit-exact to the agent), and on again once both paths have
    been quiet for 250 ms after the tone (logged, shown); never the fax rule."""
    caplog.set_level(logging.INFO, logger="cicbox.echo")
    caller = Caller(trunk=TRUNK, at_ms=1000, press_after_ms=1500, hold_ms=12000, talk_hz=0)
    phone = PhoneScript(port=PHONE, agent="1001", login_at_ms=0, answer_after_ms=2500, talk_audio=speech(21, 1))
    w = Watched(tmp_path, site_yaml(agents=1), [caller], [phone])
    try:
        w.run_until(13000)
        assert caller.connected_ms is not None and w.echo(TRUNK) == {"state": "on", "taps": 128}
        sent_at = w.engine.clock.now_ms
        w.site.world.send(TRUNK, ans_pr(3000))
        w.run_until(sent_at + 1000)
        assert w.echo(TRUNK) == {"state": "tone-disabled", "taps": 128}
        w.run_until(sent_at + 3000)
        assert w.echo(TRUNK)["state"] == "tone-disabled"
        w.run_until(sent_at + 3000 + 600)
        assert w.echo(TRUNK) == {"state": "on", "taps": 128}
        world = w.site.world
    finally:
        w.close()
    changes = [(t, v, r) for t, v, r in w.answers(TRUNK) if t >= sent_at]
    assert [(v, r) for _, v, r in changes] == [(int(lib.CB_ECHO_TONE_DISABLED), int(lib.CB_ECHO_BY_TONE)),
                                               (int(lib.CB_ECHO_ON), int(lib.CB_ECHO_BY_TONE_END))]
    (t_dis, _, _), (t_on, _, _) = changes
    assert t_dis - sent_at <= 1000
    assert 100 <= t_on - (sent_at + 3000) <= 400 + PERIOD_MS
    said = [r.getMessage() for r in caplog.records]
    assert any("tone-disabled" in m for m in said) and any("back on" in m for m in said), said
    assert not any("without phase reversal" in m for m in said)
    assert not [c for t, c, taps in w.commands if t >= sent_at]       # the tone's doing, no command
    # While disabled, the caller's octets reach the agent bit-exact.
    a, b = t_dis + 100, sent_at + 2900
    assert phone.line_start == 0
    assert signals.delay_of(bytes(world.sent[TRUNK][a * 8:b * 8]), bytes(phone.line[a * 8:]), 800) is not None
