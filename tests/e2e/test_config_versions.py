"""Configuration versions: calls in progress keep theirs; a failed switch rolls back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.errors import ApplyError
from appliance.prompts import read_wav
from appliance.world import Caller
from tests.e2e.harness import Site, decode, site_yaml
from tests.signals import peak_xcorr

PROMPTS = Path(__file__).resolve().parent.parent.parent / "configs" / "prompts" / "en"


def heard_greeting(audio: np.ndarray) -> str:
    v1 = np.array(read_wav(PROMPTS / "welcome.wav"), dtype=float)[:16000]
    v2 = np.array(read_wav(PROMPTS / "welcome_evening.wav"), dtype=float)[:16000]
    a, b = peak_xcorr(audio, v1, 800), peak_xcorr(audio, v2, 800)
    return "v1" if a > 0.9 > b else "v2" if b > 0.9 > a else f"unclear ({a:.2f}, {b:.2f})"


def test_mid_call_apply_keeps_the_call_on_v1_and_the_next_call_hears_v2(tmp_path: Path) -> None:
    # Caller 1 presses nothing: the greeting repeats after the timeout, still in v1.
    first = Caller(trunk=0, at_ms=1000, digits="", hold_ms=0, patience_ms=28000)
    second = Caller(trunk=1, at_ms=30000, digits="", patience_ms=14000)
    third = Caller(trunk=0, at_ms=50000, digits="", patience_ms=14000)
    site = Site(tmp_path, site_yaml(agents=1), [first, second, third], [])
    eng = site.engine
    try:
        site.run(9000)                                    # caller 1 is hearing the greeting
        assert first.answered_ms is not None and first.hung_up_ms is None
        v2 = site_yaml(agents=1, greeting="welcome_evening")
        assert site.store.apply(v2, "v2.yaml", "installer", 1, eng.switch_config, eng.clock.now_ms) == 2
        site.run(40000 - 9000)
        # v3 validates but names a prompt that does not exist: the switch fails and rolls back.
        v3 = site_yaml(agents=1, greeting="no_such_prompt")
        with pytest.raises(ApplyError, match="no_such_prompt"):
            site.store.apply(v3, "v3.yaml", "installer", 2, eng.switch_config, eng.clock.now_ms)
        cur = site.store.current()
        assert cur is not None and cur.version == 2 and eng.config_version == 2
        site.run(25000)
    finally:
        site.close()
    # Caller 1's repeat of the greeting (played after v2 was in force) is still v1.
    heard = decode(first.heard)
    repeat = _repeat_start(heard)
    assert repeat > 8 * 10000
    assert heard_greeting(heard[repeat:repeat + 48000]) == "v1"
    assert heard_greeting(decode(second.heard)[:48000]) == "v2"
    assert heard_greeting(decode(third.heard)[:48000]) == "v2"


def _repeat_start(x: np.ndarray) -> int:
    """Where the second playing of the greeting starts: after the first silence of 4 s or more."""
    quiet = np.abs(x) < 64
    run = 0
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run == 8 * 4000:
            j = i
            while j < len(x) and quiet[j]:
                j += 1
            return max(0, j - 400)
    return 0
