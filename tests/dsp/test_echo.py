"""The echo canceller bank (dsp/include/cb_echo.h) on G.168's tests as the issue names them.

Signals are bench/echo_signals.py's: Rin speech-shaped noise without pauses at -16 dBm0, the echo
path a seeded decaying 8 ms response behind a flat delay, ERL 6 dB, Sin the echo plus -60 dBm0 of
white noise (2B) or nothing (2A). The reference for 2B is spandsp's canceller (bench/echo_ref.py);
the disabler's answer tone with phase reversals is spandsp's modem connect tone generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench import echo_ref as er
from bench import echo_signals as es
from dsp.echo import EchoBank, echo_flags
from dsp.errors import DspCommandError
from dsp.scheduler import lib
from tests.peers import spandsp_far
from tests.peers._spandsp import ffi as sp_ffi
from tests.peers._spandsp import lib as sp_lib

FS = es.FS
SEED = 20261202
NLP_OFF = echo_flags(nlp=False, cng=False, disabler=True)
NLP_ONLY = echo_flags(nlp=True, cng=False, disabler=True)
ALL = echo_flags()


def s(seconds: float) -> int:
    """Samples in `seconds`, a whole number of ticks."""
    return round(seconds * 1000) * 8


def erle(sin: Any, sout: Any, a: float, b: float) -> float:
    return es.erle_db(sin[s(a):s(b)], sout[s(a):s(b)])


def levels(x: Any, a: float, b: float, window_ms: int) -> Any:
    w = window_ms * 8
    seg = np.asarray(x[s(a):s(b)], dtype=np.float64)
    return np.array([es.level_dbm0(seg[i:i + w]) for i in range(0, len(seg) - w + 1, w)])


def echo_of(rin: Any, path: Any) -> Any:
    return es.apply_path(rin, path)


def speech(seed: int, seconds: float) -> Any:
    return es.rin_speech(seed, seconds)


def ans_pr() -> Any:
    """spandsp's ANS with phase reversals every 450 ms (G.165's disabling tone), as it makes it:
    200 ms of silence, then 3.3 s of 2100 Hz at -12 dBm0."""
    p = sp_lib.anspeer_new(3)       # MODEM_CONNECT_TONES_ANS_PR
    try:
        buf = sp_ffi.new("int16_t[]", 5 * FS)
        n = sp_lib.anspeer_gen(p, buf, 5 * FS)
        out = np.frombuffer(sp_ffi.buffer(buf, 2 * n), dtype=np.int16).copy()
    finally:
        sp_lib.anspeer_free(p)
    return out


def sine(freq: float, dbm0: float, seconds: float, reversals_ms: int = 0) -> Any:
    """A sine at `dbm0`; with `reversals_ms`, its phase turned by 180 degrees that often."""
    t = np.arange(s(seconds)) / FS
    phase = np.zeros_like(t)
    if reversals_ms:
        phase = np.pi * (np.floor(t * 1000 / reversals_ms) % 2)
    return 32768 * 10 ** ((dbm0 - 3.14) / 20) * np.sin(2 * np.pi * freq * t + phase)


def whole(x: Any) -> Any:
    """Cut to whole ticks."""
    return x[: len(x) // 8 * 8]


# -- 2B: convergence, and the reference --------------------------------------------------------


@pytest.mark.parametrize("taps", [128, 256])
def test_2b_erle_reaches_30_db_by_1_s_and_matches_the_reference(taps: int) -> None:
    rin, sin = es.scenario(SEED, 3.0)
    ours = EchoBank(1, taps, NLP_OFF).process(rin, sin)
    ref = er.run(rin, sin, taps, er.ADAPTION).sout
    for a in (1.0, 2.5):
        assert erle(sin, ours, a, a + 0.5) >= 30, a
        assert erle(sin, ours, a, a + 0.5) >= erle(sin, ref, a, a + 0.5) - 1, a


def test_an_echo_path_that_is_not_there_is_not_made_up() -> None:
    """Sin of near-end noise only (no echo): Sout is Sin within a fraction of a dB."""
    rin = speech(SEED, 3.0)
    near = es.to_int16(es.white(SEED, len(rin), -30.0))
    out = EchoBank(1, 128, NLP_OFF).process(rin, near)
    assert abs(es.level_dbm0(out[s(1):]) - es.level_dbm0(near[s(1):])) < 0.5


def welcome(seconds: float) -> Any:
    """The hotel's shipped greeting (configs/prompts/en/welcome.wav): a real prompt, with pauses."""
    import wave
    from pathlib import Path

    with wave.open(str(Path(__file__).resolve().parents[2] / "configs" / "prompts" / "en" / "welcome.wav")) as w:
        a = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return a[:s(seconds)].copy()


@pytest.mark.parametrize("at_ms", range(300, 2600, 70))
def test_a_key_pressed_during_a_prompt_on_a_line_without_echo_passes_untouched(at_ms: int) -> None:
    """The caller's key arrives while our greeting plays and the line returns no echo: the double-talk
    detector sees it in its first ticks, so nothing the filters learn of it is heard over it."""
    rin = welcome(3.5)
    digit = np.array(spandsp_far.dtmf("1"), dtype=np.int16)
    sin = np.zeros_like(rin)
    sin[s(at_ms / 1000):s(at_ms / 1000) + len(digit)] = digit
    out = EchoBank(1, 128, ALL).process(rin, sin)
    w = slice(s(at_ms / 1000), s(at_ms / 1000) + len(digit))
    assert es.level_dbm0(out[w].astype(np.float64) - sin[w]) < -40


def test_an_idle_line_learns_nothing_from_our_prompts() -> None:
    """An A-law line returning no echo decodes to a constant 8: there is nothing to cancel, and
    nothing of what we play comes back in Sout, whatever we play."""
    rin = es.to_int16(np.concatenate([welcome(3.0), sine(587, -10.0, 2.0), speech(SEED, 2.0)]))
    sin = np.full_like(rin, 8)
    out = EchoBank(1, 128, ALL).process(rin, sin)
    assert np.array_equal(out, sin)


def test_our_tone_never_leaks_into_the_far_party_s_tone() -> None:
    """We send 587 Hz, the far party 1020 Hz, the line returns no echo (the foundation's call):
    Sout holds no 587 Hz above -70 dBm0."""
    rin = es.to_int16(np.concatenate([welcome(2.0), sine(587, -10.0, 4.0)]))
    sin = es.to_int16(np.concatenate([np.full(s(2.0), 8.0), sine(1020, -10.0, 4.0)]))
    out = EchoBank(1, 128, ALL).process(rin, sin).astype(np.float64)
    t = np.arange(s(3.0)) / FS
    seg = out[s(3.0):]
    own = 2 * abs(np.mean(seg * np.exp(-2j * np.pi * 587 * t)))      # the 587 Hz amplitude
    assert 20 * np.log10(max(own, 1e-9) / 32768) + 3.14 < -70


def all_prompts() -> Any:
    """Every shipped prompt, one after the other (80 s of real recorded speech, with its pauses)."""
    import wave
    from pathlib import Path

    out = []
    for p in sorted((Path(__file__).resolve().parents[2] / "configs" / "prompts").glob("*/*.wav")):
        with wave.open(str(p)) as w:
            out.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
    x = np.concatenate(out)
    return x[: len(x) // 8 * 8].copy()


@pytest.mark.parametrize("erl", [6.0, 10.0])
def test_real_speech_with_its_pauses_keeps_what_was_learnt(erl: float) -> None:
    """Pauses leave nothing to judge the filter on: it is kept (and so is the delay), never thrown
    away for a guess of the correlation's."""
    rin = all_prompts()
    sin = es.sin_signal(SEED, rin, es.echo_path(SEED, 4.0, erl))
    bank = EchoBank(1, 128, NLP_OFF)
    out = bank.process(rin, sin)
    for a in range(4, len(rin) // FS - 1):
        if es.level_dbm0(rin[a * FS:a * FS + FS // 2]) > -35:      # we talk in this half second
            assert erle(sin, out, a, a + 0.5) >= 15, a
    found = bank.bulk_delay_ms(0)
    assert found is not None and abs(found - 4.0) <= 1.0


@pytest.mark.parametrize("near_dbm0", [-22.0, -26.0, -30.0, -34.0])
def test_3b_a_quiet_near_end_under_the_echo_does_not_spoil_it(near_dbm0: float) -> None:
    """3B with the near end quieter than the echo (-22 dBm0 at ERL 6): the double-talk detector
    cannot hear it, the residual's rise above its floor keeps the foreground's taps."""
    rin = speech(SEED, 9.0)
    echo = echo_of(rin, es.echo_path(SEED))
    near = np.zeros(len(rin))
    near[s(2):s(7)] = speech(SEED + 99, 5.0) * 10 ** ((near_dbm0 - es.RIN_DBM0) / 20)
    sin = es.to_int16(echo + near + es.white(SEED, len(rin), -60.0))
    out = EchoBank(1, 128, NLP_OFF).process(rin, sin)
    residual = out.astype(np.float64) - near
    for a in np.arange(2.0, 7.0, 0.2):
        w = slice(s(a), s(a + 0.2))
        assert es.level_dbm0(echo[w]) - es.level_dbm0(residual[w]) >= 10, a


def far_keys(level: float) -> tuple[Any, list[slice]]:
    """Keys of spandsp's DTMF generator scaled to `level` dBm0 per tone, one every 600 ms from 2 s."""
    d = np.array(spandsp_far.dtmf("5"), dtype=np.float64)
    on = np.nonzero(d)[0]
    d = d[on[0]:on[-1] + 1]                                   # the key itself
    d *= 10 ** ((level - es.level_dbm0(d) + 3.0) / 20)        # two tones: each 3 dB under the pair
    x = np.zeros(s(12.0))
    where = []
    for k in range(15):
        o = s(2.0 + 0.6 * k)
        x[o:o + len(d)] = d
        where.append(slice(o, o + len(d)))
    return x, where


@pytest.mark.parametrize("level", [-16.0, -24.0])
def test_the_nlp_never_mutes_a_far_key_under_our_echo(level: float) -> None:
    """We talk (real prompts, echo at ERL 6 dB); the far party's keys, quieter than our echo, go
    through the NLP whole."""
    rin = all_prompts()[:s(12.0)]
    keys, where = far_keys(level)
    sin = es.to_int16(echo_of(rin, es.echo_path(SEED)) + keys + es.white(SEED, len(rin), -60.0))
    out = EchoBank(1, 128, ALL).process(rin, sin)
    for w in where:
        for t in range(w.start, w.stop - 80, 80):          # every 10 ms of the key
            assert abs(es.level_dbm0(out[t:t + 80]) - es.level_dbm0(keys[t:t + 80])) < 3, t


@pytest.mark.parametrize("tone", ["ced", "ans_pr"])
def test_a_far_tone_under_our_echo_is_heard_by_the_disabler(tone: str) -> None:
    """We talk at -16 dBm0 (echo -22); the far side sends CED or ANS/PR at -30 dBm0: the disabler
    hears Sin without our echo, so it reports CED and trips on ANS/PR as it does on a quiet line."""
    rin = speech(SEED, 6.0)
    far = sine(2100, -30.0, 3.5, reversals_ms=450 if tone == "ans_pr" else 0)
    sin_far = np.zeros(len(rin))
    sin_far[s(2.0):s(2.0) + len(far)] = far
    sin = es.to_int16(echo_of(rin, es.echo_path(SEED)) + sin_far + es.white(SEED, len(rin), -60.0))
    bank = EchoBank(1, 128, ALL)
    bank.process(rin, sin)
    evs = events_of(bank)
    if tone == "ced":
        assert [(typ, v, x) for t, typ, v, x in evs] == [(lib.CB_EV_ANS, 0, 1)]
    else:
        disabled = (lib.CB_EV_ECHO, lib.CB_ECHO_TONE_DISABLED, lib.CB_ECHO_BY_TONE)
        assert [(typ, v, x) for t, typ, v, x in evs] == [(lib.CB_EV_ANS, 1, 1), disabled]
        assert bank.state(0) == "tone-disabled"     # held: we still talk


# -- 2A: the NLP, and a change of the echo path ----------------------------------------------


def test_2a_the_nlp_keeps_sout_under_minus_65_dbm0_and_again_after_the_path_changes() -> None:
    rin = speech(SEED, 16.0)
    e1 = echo_of(rin, es.echo_path(SEED, 4.0))
    e2 = echo_of(rin, es.echo_path(SEED + 7, 4.0))
    sin = es.to_int16(np.concatenate([e1[:s(10)], e2[s(10):]]))
    out = EchoBank(1, 128, NLP_ONLY).process(rin, sin)
    assert max(levels(out, 1.0, 10.0, 50)) <= -65
    assert max(levels(out, 11.0, 16.0, 50)) <= -65
    # the change was one: right after it the residual is loud
    assert max(levels(out, 10.0, 10.1, 50)) > -40


# -- 9: comfort noise ----------------------------------------------------------------------------


def test_9_comfort_noise_stays_within_2_db_of_the_background() -> None:
    rin = speech(SEED, 6.0)
    sin = es.sin_signal(SEED, rin, es.echo_path(SEED), noise_dbm0=-50.0)
    bank = EchoBank(1, 128, ALL)
    out = bank.process(rin, sin)
    lv = levels(out, 2.0, 6.0, 500)
    assert max(abs(lv + 50.0)) <= 2.0, lv
    # the NLP is at work: Sout is not the residual the filter leaves
    residual = EchoBank(1, 128, NLP_OFF).process(rin, sin)
    assert np.mean(out[s(2):] != residual[s(2):]) > 0.9
    # and without comfort noise it is silence
    quiet = EchoBank(1, 128, NLP_ONLY).process(rin, sin)
    assert max(levels(quiet, 2.0, 6.0, 500)) < -70


# -- 3B: double talk -------------------------------------------------------------------------------


def test_3b_near_end_speech_does_not_spoil_what_was_learnt() -> None:
    rin = speech(SEED, 9.0)
    echo = echo_of(rin, es.echo_path(SEED))
    near = np.zeros(len(rin))
    near[s(2):s(7)] = speech(SEED + 99, 5.0)       # at the Rin level
    noise = es.white(SEED, len(rin), -60.0)
    sin = es.to_int16(echo + near + noise)
    out = EchoBank(1, 128, NLP_OFF).process(rin, sin)
    residual = out.astype(np.float64) - near
    for a in np.arange(2.0, 7.0, 0.2):
        w = slice(s(a), s(a + 0.2))
        assert es.level_dbm0(echo[w]) - es.level_dbm0(residual[w]) >= 10, a
    before = erle(sin, out, 1.5, 2.0)
    assert erle(sin, out, 7.2, 7.7) >= before - 3


# -- 6: tones ----------------------------------------------------------------------------------------


def test_6_tones_do_not_make_it_diverge() -> None:
    rin_speech = speech(SEED, 9.0)
    dtmf5 = sine(770, -13.0, 5.0) + sine(1336, -13.0, 5.0)
    tones = [sine(f, -10.0, 5.0) for f in (400, 1020, 2000)] + [dtmf5]
    rin = es.to_int16(np.concatenate([rin_speech[:s(2)], *tones, rin_speech[s(2):]]))
    sin = es.sin_signal(SEED, rin, es.echo_path(SEED))
    out = EchoBank(1, 128, NLP_OFF).process(rin, sin)
    end = 2.0 + 5.0 * len(tones)
    ls, lo = levels(sin, 2.0, end, 50), levels(out, 2.0, end, 50)
    assert (lo <= ls).all(), np.max(lo - ls)
    before = erle(sin, out, 1.5, 2.0)
    assert erle(sin, out, end + 0.2, end + 0.7) >= before - 3


# -- the bulk delay ---------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 20, 60, 100])
def test_the_bulk_delay_is_found_to_1_ms_and_cancelled_within_3_s(delay: int) -> None:
    rin, sin = es.scenario(SEED + delay, 3.0, delay_ms=delay)
    bank = EchoBank(1, 128, NLP_OFF)
    out = bank.process(rin, sin)
    found = bank.bulk_delay_ms(0)
    assert found is not None and abs(found - delay) <= 1.0
    assert erle(sin, out, 2.5, 3.0) >= 30


def test_a_jump_of_the_delay_is_found_again_within_3_s() -> None:
    rin = speech(SEED, 7.0)
    e20 = echo_of(rin, es.echo_path(SEED, 20.0))
    e60 = echo_of(rin, es.echo_path(SEED, 60.0))
    sin = es.to_int16(np.concatenate([e20[:s(3.5)], e60[s(3.5):]]) + es.white(SEED, len(rin), -60.0))
    bank = EchoBank(1, 128, NLP_OFF)
    out = bank.process(rin[:s(3.5)], sin[:s(3.5)])
    assert abs((bank.bulk_delay_ms(0) or -9) - 20) <= 1.0
    out = np.concatenate([out, bank.process(rin[s(3.5):], sin[s(3.5):])])
    assert abs((bank.bulk_delay_ms(0) or -9) - 60) <= 1.0
    assert erle(sin, out, 6.0, 6.5) >= 30


# -- the tone disabler ------------------------------------------------------------------------------


def events_of(bank: EchoBank) -> list[tuple[int, int, int, int]]:
    return [(e.tick, e.type, e.value, e.extra) for e in bank.events()]


@pytest.mark.parametrize("path", ["rin", "sin"])
def test_ans_with_phase_reversals_trips_the_disabler_within_1_s_then_sin_passes_bit_exact(path: str) -> None:
    speech_rin = speech(SEED, 2.0)
    echo_path = es.echo_path(SEED)
    tone = ans_pr()
    onset = 2000 + int(np.nonzero(tone)[0][0]) // 8            # the tone's first tick
    tail = np.zeros(s(1.5))
    tone_rin = np.concatenate([tone, tail]) if path == "rin" else np.zeros(len(tone) + len(tail))
    tone_sin = np.concatenate([tone, tail]) if path == "sin" else echo_of(tone_rin, echo_path)
    rin = es.to_int16(whole(np.concatenate([speech_rin, tone_rin])))
    sin = es.to_int16(whole(np.concatenate([echo_of(speech_rin, echo_path), tone_sin])))
    bank = EchoBank(1, 128, ALL)
    out = bank.process(rin, sin)
    evs = events_of(bank)
    off = [t for t, typ, v, x in evs if typ == lib.CB_EV_ECHO and v == lib.CB_ECHO_TONE_DISABLED]
    on = [t for t, typ, v, x in evs if typ == lib.CB_EV_ECHO and v == lib.CB_ECHO_ON]
    assert len(off) == 1 and 0 < off[0] - onset <= 1000
    assert [(v, x) for t, typ, v, x in evs if typ == lib.CB_EV_ANS] == [(1, 0 if path == "rin" else 1)]
    assert [x for t, typ, v, x in evs if typ == lib.CB_EV_ECHO] == [lib.CB_ECHO_BY_TONE, lib.CB_ECHO_BY_TONE_END]
    end = 2000 + int(np.nonzero(tone)[0][-1]) // 8 + 1         # the tick after its last
    assert len(on) == 1 and 100 <= on[0] - end <= 400
    disabled = slice((off[0] + 1) * 8, on[0] * 8)
    assert np.array_equal(out[disabled], sin[disabled])


@pytest.mark.parametrize("freq", [2079.0, 2121.0])
def test_reversals_trip_it_anywhere_within_21_hz(freq: float) -> None:
    rin = es.to_int16(np.concatenate([np.zeros(s(0.5)), sine(freq, -20.0, 2.0, reversals_ms=450)]))
    bank = EchoBank(1, 128, ALL)
    bank.process(rin, np.zeros_like(rin))
    assert bank.state(0) == "tone-disabled"


def test_ans_without_reversals_is_reported_and_does_not_trip_it() -> None:
    speech_rin = speech(SEED, 2.0)
    tone = sine(2100, -12.0, 5.0)
    rin = es.to_int16(np.concatenate([speech_rin, tone]))
    sin = es.sin_signal(SEED, rin, es.echo_path(SEED))
    bank = EchoBank(1, 128, ALL)
    bank.process(rin, sin)
    evs = events_of(bank)
    # reported on Rin; its echo on Sin is cancelled, and the disabler hears Sin without our echo
    assert [(typ, v, x) for t, typ, v, x in evs] == [(lib.CB_EV_ANS, 0, 0)]
    assert all(600 <= t - 2000 <= 700 for t, *_ in evs)
    assert bank.state(0) == "on"


def test_a_minute_of_speech_on_both_paths_never_trips_it() -> None:
    rin = speech(SEED, 60.0)
    sin = es.to_int16(echo_of(rin, es.echo_path(SEED)) + speech(SEED + 1, 60.0) * 0.5)
    bank = EchoBank(1, 128, ALL)
    bank.process(rin, sin)
    assert events_of(bank) == []
    assert bank.state(0) == "on"


def test_without_the_disabler_flag_nothing_is_detected() -> None:
    rin = es.to_int16(np.concatenate([np.zeros(s(0.5)), sine(2100, -12.0, 2.0, reversals_ms=450)]))
    bank = EchoBank(1, 128, echo_flags(disabler=False))
    bank.process(rin, np.zeros_like(rin))
    assert events_of(bank) == [] and bank.state(0) == "on"


# -- the bank's face ----------------------------------------------------------------------------------


def test_off_copies_sin_and_on_resets() -> None:
    rin, sin = es.scenario(SEED, 2.0)
    bank = EchoBank(2, 128, NLP_OFF)
    bank.set(1, 0)
    out = bank.process(np.stack([rin, rin]), np.stack([sin, sin]))
    assert np.array_equal(out[1], sin) and bank.state(1) == "off" and bank.bulk_delay_ms(1) is None
    assert erle(sin, out[0], 1.5, 2.0) >= 30
    bank.set(0, 64, NLP_OFF)                          # reset: it learns again from nothing
    again = bank.process(rin[:s(0.05)], sin[:s(0.05)])
    assert erle(sin, again, 0.0, 0.05) < 10 and bank.taps(0) == 64


@pytest.mark.parametrize("taps", [-8, 8, 24, 100, 520, 1024])
def test_bad_taps_are_refused(taps: int) -> None:
    with pytest.raises(DspCommandError, match=r"echo_taps must be 0 \(off\) or a multiple of 8 from 32 to 512"):
        EchoBank(1, taps)
    bank = EchoBank(1, 128)
    with pytest.raises(DspCommandError):
        bank.set(0, taps)
    assert bank.taps(0) == 128


def test_the_c_api_refuses_what_python_would() -> None:
    from dsp.echo import ffi

    e = ffi.gc(lib.cb_echo_new(2), lib.cb_echo_free)
    assert lib.cb_echo_set(e, 0, 128, lib.CB_ECHO_ALL) == lib.CB_OK
    for chan, taps, flags in ((0, 520, 0), (0, 100, 0), (0, 128, 8), (2, 128, 0), (-1, 128, 0)):
        assert lib.cb_echo_set(e, chan, taps, flags) == lib.CB_ERR_INVALID
    assert lib.cb_echo_taps(e, 0) == 128 and lib.cb_echo_active(e) == 1
    buf = ffi.new("int16_t[]", 12)
    assert lib.cb_echo_process(e, 0, buf, buf, buf, 12, ffi.NULL, 0) == lib.CB_ERR_INVALID


def test_a_signal_must_be_whole_ticks_of_int16() -> None:
    bank = EchoBank(1)
    with pytest.raises(ValueError, match="whole number of 1 ms ticks"):
        bank.process(np.zeros(12, np.int16), np.zeros(12, np.int16))
    with pytest.raises(ValueError, match="rin must be int16 samples, not int32"):
        bank.process(np.full(16, 40000, np.int32), np.zeros(16, np.int16))
    with pytest.raises(ValueError, match="sin must be int16 samples, not float64"):
        bank.process(np.zeros(16, np.int16), np.full(16, 1.7))
