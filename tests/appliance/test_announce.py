"""Position and expected-wait announcements: the prompt names, the shipped WAVs behind them, and EWT."""

from __future__ import annotations

import math

import numpy as np
import pytest

from appliance.acd.announce import (
    LANGUAGES,
    ewt_minutes,
    number_prompts,
    position_prompts,
    prompt_names,
    wait_prompts,
)
from appliance.prompts import SHIPPED, read_wav
from dsp.scheduler import lib

# The phrase prompts a caller must be able to tell apart (the numbers are told apart by
# where they fall in an announcement, not by sound alone).
PHRASES = {
    "en": ["position_intro", "wait_intro", "minute", "minutes", "hold_please", "busy", "blocked", "closed",
           "all_busy"],
    "zh": ["position_intro", "position_outro", "wait_intro", "fenzhong", "hold_please", "busy", "blocked",
           "closed", "all_busy"],
}
# "minute" is the start of "minutes" (0.98 correlated): the number before them tells them apart.
ALIKE = {frozenset({"minute", "minutes"})}

ALAW_ENC = np.array([lib.cb_lin2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8)
ALAW_DEC = np.array([lib.cb_alaw2lin(a) for a in range(256)], dtype=np.float64)


def wav(lang: str, name: str) -> np.ndarray:
    return np.array(read_wav(SHIPPED / lang / f"{name}.wav"), dtype=np.float64)


def over_the_line(x: np.ndarray) -> np.ndarray:
    """`x` as the caller hears it: A-law coded and decoded, starting 50 ms late, silence after."""
    coded = ALAW_DEC[ALAW_ENC[x.astype(np.int64) + 32768]]
    return np.concatenate([np.zeros(400), coded, np.zeros(3 * 8000)])


def peak_xcorr(heard: np.ndarray, ref: np.ndarray, max_lag: int) -> float:
    """Peak normalised cross-correlation of `ref` against `heard`, lags 0..max_lag (as tests/e2e/test_call.py)."""
    n = len(ref)
    seg = heard[: n + max_lag]
    size = 1 << (len(seg) + n).bit_length()
    dots = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(ref, size)), size)[: max_lag + 1]
    energy = np.concatenate([[0.0], np.cumsum(seg ** 2)])
    norms = np.sqrt(np.maximum(energy[n:n + max_lag + 1] - energy[: max_lag + 1], 0.0)) * np.linalg.norm(ref)
    ok = norms > 1e-6 * norms.max()
    return float(np.max(dots[ok] / norms[ok]))


# --- numbers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "want"), [
    (0, ["n0"]), (7, ["n7"]), (15, ["n15"]), (19, ["n19"]), (20, ["n20"]), (23, ["n20", "n3"]),
    (40, ["n40"]), (99, ["n90", "n9"]),
])
def test_english_numbers(n: int, want: list[str]) -> None:
    assert number_prompts("en", n) == want


@pytest.mark.parametrize(("n", "want"), [
    (0, ["n0"]), (3, ["n3"]), (10, ["n10"]), (15, ["n10", "n5"]), (20, ["n2", "n10"]),
    (23, ["n2", "n10", "n3"]), (99, ["n9", "n10", "n9"]),
])
def test_chinese_numbers(n: int, want: list[str]) -> None:
    assert number_prompts("zh", n) == want


def test_announcements() -> None:
    assert position_prompts("en", 3) == ["position_intro", "n3"]
    assert position_prompts("en", 42) == ["position_intro", "n40", "n2"]
    assert position_prompts("zh", 3) == ["position_intro", "n3", "position_outro"]
    # 第二位: the ordinal two is er.
    assert position_prompts("zh", 2) == ["position_intro", "n2", "position_outro"]
    assert wait_prompts("en", 2) == ["wait_intro", "n2", "minutes"]
    assert wait_prompts("en", 1) == ["wait_intro", "n1", "minute"]
    assert wait_prompts("en", 21) == ["wait_intro", "n20", "n1", "minutes"]
    # 两分钟: a count of two is liang; 十二 and 二十二 keep er.
    assert wait_prompts("zh", 2) == ["wait_intro", "liang", "fenzhong"]
    assert wait_prompts("zh", 12) == ["wait_intro", "n10", "n2", "fenzhong"]
    assert wait_prompts("zh", 22) == ["wait_intro", "n2", "n10", "n2", "fenzhong"]


def test_beyond_the_words() -> None:
    # Above 99 is said as 99, below one minute as one minute.
    assert position_prompts("en", 150) == ["position_intro", "n90", "n9"]
    assert wait_prompts("en", 600) == ["wait_intro", "n90", "n9", "minutes"]
    assert wait_prompts("zh", 100) == ["wait_intro", "n9", "n10", "n9", "fenzhong"]
    assert wait_prompts("en", 0) == ["wait_intro", "n1", "minute"]
    assert wait_prompts("zh", 0) == ["wait_intro", "n1", "fenzhong"]


@pytest.mark.parametrize("call", [
    lambda: number_prompts("fr", 3), lambda: position_prompts("de", 1), lambda: wait_prompts("", 2),
    lambda: number_prompts("en", -1), lambda: position_prompts("zh", -2), lambda: wait_prompts("en", -1),
    lambda: position_prompts("en", 0), lambda: number_prompts("zh", 100), lambda: prompt_names("fr"),
])
def test_refused(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


# --- EWT -------------------------------------------------------------------------------------------------------

def test_ewt_caller_3_about_2_minutes() -> None:
    # ceil(3 x 180 s / 5 agents / 60 s) = ceil(1.8) = 2
    assert ewt_minutes(3, 180_000, 5) == 2
    assert wait_prompts("en", 2) == ["wait_intro", "n2", "minutes"]


@pytest.mark.parametrize(("position", "aht_ms", "logged_in", "want"), [
    (5, 180_000, 5, 3),       # exactly 3.0 minutes stays 3
    (3, 100_000, 5, 1),       # exactly 1.0
    (1, 60_001, 1, 2),        # a millisecond over one minute is two
    (1, 1, 10, 1),            # any wait at all is at least one minute
    (10, 240_000, 3, 14),     # 2400 s / 3 = 800 s = 13.3 min
    (1, 90_000.5, 1, 2),      # a fractional AHT (the running mean)
    (0, 180_000, 5, 0),
    (4, 180_000, 0, None),    # nobody logged in: say nothing
])
def test_ewt(position: int, aht_ms: float, logged_in: int, want: int | None) -> None:
    assert ewt_minutes(position, aht_ms, logged_in) == want


@pytest.mark.parametrize(("position", "aht_ms", "logged_in"), [
    (-1, 1000, 1), (1, -1, 1), (1, 1000, -1), (1, math.inf, 1), (1, math.nan, 1),
])
def test_ewt_refused(position: int, aht_ms: float, logged_in: int) -> None:
    with pytest.raises(ValueError):
        ewt_minutes(position, aht_ms, logged_in)


# --- the shipped prompts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_name_is_a_shipped_prompt(lang: str) -> None:
    said: set[str] = set()
    for n in range(100):
        said.update(number_prompts(lang, n), wait_prompts(lang, n))
        if n:
            said.update(position_prompts(lang, n))
    assert said == prompt_names(lang)
    for name in sorted(said):
        x = wav(lang, name)     # read_wav refuses anything but 8 kHz mono 16-bit PCM
        assert 0.2 * 8000 < len(x) < 6 * 8000, name
        rms_db = 20 * math.log10(math.sqrt(float(np.mean(x ** 2))) / 32768)
        assert -17.0 <= rms_db <= -15.0, (name, rms_db)
        assert np.max(np.abs(x)) < 32000, name                  # not clipped
        # Trimmed: sound (above 1 % of the peak) within 5 ms of either end.
        loud = np.flatnonzero(np.abs(x) > 0.01 * np.max(np.abs(x)))
        assert loud[0] < 40 and len(x) - loud[-1] < 40, name


@pytest.mark.parametrize("lang", LANGUAGES)
def test_phrases_are_told_apart(lang: str) -> None:
    names = PHRASES[lang]
    prompts = {name: wav(lang, name) for name in names}
    heard = {name: over_the_line(x) for name, x in prompts.items()}
    for a in names:
        ref = prompts[a][: 2 * 8000 + 4000]
        assert peak_xcorr(heard[a], ref, 800) >= 0.9, a
        for b in names:
            if b != a and frozenset({a, b}) not in ALIKE:
                assert peak_xcorr(heard[b], ref, 800) <= 0.3, (a, b)


def test_the_xcorr_measure_tells_a_prompt_from_its_neighbour() -> None:
    # The measure itself: a prompt found 40 ms late in a longer recording, not found in another prompt.
    busy = wav("en", "busy")
    closed = wav("en", "closed")
    recording = np.concatenate([np.zeros(320), busy, closed])
    assert peak_xcorr(recording, busy, 800) > 0.99
    assert peak_xcorr(recording, closed, 800) < 0.3
