"""Make the shipped announcement prompts (configs/prompts/<lang>/*.wav) with espeak-ng.

Run by ``make prompts``, once, by whoever changes a prompt's wording; the WAV
files it writes are committed, so neither the appliance nor its tests ever run
espeak-ng. espeak-ng (GPL) is run here as a separate program and is never
linked into anything; sox resamples its 22 050 Hz output to 8 kHz.

Each prompt is then trimmed of leading and trailing silence, brought to
-16 dBFS RMS (relative to a full-scale square wave, i.e. RMS = 32768 * 10**(-16/20))
and kept below -1 dBFS peak by a short look-ahead limiter, so nothing clips,
and written as 8 kHz mono 16-bit PCM WAV, the format appliance/prompts.py reads.

The output is deterministic (no dither), so re-running it on the same
espeak-ng and sox versions changes no file. The welcome prompts already in
configs/prompts/en/ are not made here and are left alone.

    python3 image-build/make_prompts.py [--out configs/prompts] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RATE = 8000
TARGET_RMS_DBFS = -16.0
CEILING_DBFS = -1.0
TRIM_DB = -45.0           # below the prompt's peak: quieter edges are silence
EDGE_MS = 3               # raised-cosine ramps at the cut edges, so no click
LIMIT_MS = 2              # the limiter's look-ahead and release half-window


@dataclass(frozen=True)
class Language:
    voice: str            # an espeak-ng voice name (espeak-ng --voices)
    speed: int            # words per minute
    texts: dict[str, str]


# English: numbers 0-19 and the tens (twenty-three = n20 + n3).
_EN_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
             "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
             "nineteen"]
_EN_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy", 80: "eighty",
            90: "ninety"}

# Mandarin in pinyin with tone digits (the cmn-latn-pinyin voice reads them as
# syllables): digits 0-10, composed by the announcer (23 = er4 shi2 san1).
_ZH_DIGITS = ["ling2", "yi1", "er4", "san1", "si4", "wu3", "liu4", "qi1", "ba1", "jiu3", "shi2"]

LANGUAGES: dict[str, Language] = {
    "en": Language(voice="en-us", speed=160, texts={
        **{f"n{i}": w for i, w in enumerate(_EN_UNITS)},
        **{f"n{t}": w for t, w in _EN_TENS.items()},
        "position_intro": "You are caller number",
        "wait_intro": "Your expected wait is about",
        "minute": "minute",
        "minutes": "minutes",
        "hold_please": "Please hold. Your call is important to us.",
        "busy": "Sorry, every line is busy right now. Please call again later. Goodbye.",
        "blocked": "This number cannot be served. Goodbye.",
        "closed": "We are closed now. Goodbye.",
        "all_busy": "All our agents are busy.",
    }),
    "zh": Language(voice="cmn-latn-pinyin", speed=150, texts={
        **{f"n{i}": w for i, w in enumerate(_ZH_DIGITS)},
        # "two" of a count ("two minutes") is liang3, not er4.
        "liang": "liang3",
        # 您现在排在第 N 位, 请您耐心等待。
        "position_intro": "nin2 xian4 zai4 pai2 zai4 di4",
        "position_outro": "wei4, qing3 nin2 nai4 xin1 deng3 dai4.",
        # 预计等待时间约为 N 分钟
        "wait_intro": "yu4 ji4 deng3 dai4 shi2 jian1 yue1 wei2",
        "fenzhong": "fen1 zhong1",
        # 您的来电对我们很重要, 请稍候。
        "hold_please": "nin2 de5 lai2 dian4 dui4 wo3 men5 hen3 zhong4 yao4, qing3 shao1 hou4.",
        # 所有线路正忙, 请您晚些再打来。再见。
        "busy": "suo3 you3 xian4 lu4 zheng4 mang2, qing3 nin2 wan3 xie1 zai4 da3 lai2. zai4 jian4.",
        # 抱歉, 此号码无法受理。再见。
        "blocked": "bao4 qian4, ci3 hao4 ma3 wu2 fa3 shou4 li3. zai4 jian4.",
        # 现在是非工作时间。再见。
        "closed": "xian4 zai4 shi4 fei1 gong1 zuo4 shi2 jian1. zai4 jian4.",
        # 客服人员都在忙。
        "all_busy": "ke4 fu2 ren2 yuan2 dou1 zai4 mang2.",
    }),
}


def speak(lang: Language, text: str, tmp: Path) -> np.ndarray:
    """espeak-ng's rendering of `text`, resampled by sox to 8 kHz, as float samples (full scale 1)."""
    raw, low = tmp / "raw.wav", tmp / "low.f32"
    subprocess.run(["espeak-ng", "-v", lang.voice, "-s", str(lang.speed), "-z", "-w", str(raw), text],
                   check=True)
    # 6 dB down first, so the resampler's overshoot of espeak-ng's near-full-scale peaks does not
    # clip (the level is set afterwards); raw 32-bit float out; -D: no dither, so the output is the
    # same on every run.
    subprocess.run(["sox", "-D", str(raw), "-t", "raw", "-e", "floating-point", "-b", "32", "-L",
                    "-r", str(RATE), "-c", "1", str(low), "gain", "-6", "rate", "-v"], check=True)
    return np.fromfile(low, dtype="<f4").astype(np.float64)


def trim(x: np.ndarray) -> np.ndarray:
    """`x` without the silence before and after it, with short ramps at the cuts."""
    floor = np.max(np.abs(x)) * 10 ** (TRIM_DB / 20)
    loud = np.flatnonzero(np.abs(x) > floor)
    y = x[loud[0]:loud[-1] + 1].copy()
    n = min(len(y) // 2, EDGE_MS * RATE // 1000)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    y[:n] *= ramp
    y[len(y) - n:] *= ramp[::-1]
    return y


def limit(x: np.ndarray, ceiling: float) -> np.ndarray:
    """`x` with its gain lowered smoothly around every sample above `ceiling`.

    The required gain is min-filtered over +-W samples and then averaged over
    +-W samples: at a peak every gain in the average window is at most the one
    that peak needs, so the result never exceeds the ceiling.
    """
    w = LIMIT_MS * RATE // 1000
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(x), 1e-12))
    padded = np.pad(need, w, constant_values=1.0)
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * w + 1)
    held = win.min(axis=1)
    padded = np.pad(held, w, constant_values=1.0)
    gain = np.convolve(padded, np.ones(2 * w + 1) / (2 * w + 1), mode="valid")
    return x * gain


def level(x: np.ndarray) -> np.ndarray:
    """`x` at the target RMS, its peaks limited below the ceiling."""
    target = 10 ** (TARGET_RMS_DBFS / 20)
    ceiling = 10 ** (CEILING_DBFS / 20)
    y = x
    for _ in range(6):   # limiting lowers the RMS a little: raise the gain and limit again
        y = limit(y * (target / np.sqrt(np.mean(y ** 2))), ceiling)
    return y


def write(path: Path, x: np.ndarray) -> None:
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "configs" / "prompts")
    ap.add_argument("--only", nargs="*", default=None, help="make only these prompt names")
    args = ap.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"make_prompts: {tool} is not installed (make prompts installs it)", file=sys.stderr)
            return 2
    voices = subprocess.run(["espeak-ng", "--voices"], check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as d:
        for code, lang in LANGUAGES.items():
            if lang.voice not in voices.split():
                print(f"make_prompts: espeak-ng has no voice {lang.voice}", file=sys.stderr)
                return 2
            for name, text in lang.texts.items():
                if args.only is not None and name not in args.only:
                    continue
                y = level(trim(speak(lang, text, Path(d))))
                write(args.out / code / f"{name}.wav", y)
                rms = 20 * np.log10(np.sqrt(np.mean(y ** 2)))
                peak = 20 * np.log10(np.max(np.abs(y)))
                print(f"{code}/{name}.wav  {len(y) / RATE:5.2f} s  rms {rms:6.1f} dBFS  peak {peak:5.1f} dBFS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
