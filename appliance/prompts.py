"""Prompts: 8 kHz mono 16-bit WAV files, read once into memory.

A site's own prompt (STATE_DIR/prompts/<language>/<name>.wav) takes precedence
over the shipped one (configs/prompts/<language>/<name>.wav). Prompts a
configuration names are all loaded when that configuration is switched to, so
no control period ever waits for the disk, and a missing or malformed prompt
fails the switch (which rolls back) instead of a call.
"""

from __future__ import annotations

import wave
from array import array
from pathlib import Path

from appliance.errors import ApplianceError

SHIPPED = Path(__file__).resolve().parent.parent / "configs" / "prompts"


class PromptError(ApplianceError):
    """A prompt is missing or not 8 kHz mono 16-bit PCM."""


def read_wav(path: Path) -> array[int]:
    """The samples of an 8 kHz mono 16-bit PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
                raise PromptError(
                    f"{path}: must be 8000 Hz mono 16-bit PCM, is {w.getframerate()} Hz, "
                    f"{w.getnchannels()} channel(s), {8 * w.getsampwidth()}-bit"
                )
            data = w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise PromptError(f"{path}: cannot read prompt: {exc}") from None
    samples = array("h")
    samples.frombytes(data)
    return samples


class Prompts:
    """Prompts by (language, name), loaded up front."""

    def __init__(self, site_dir: Path | None, shipped_dir: Path = SHIPPED) -> None:
        self.site_dir = site_dir
        self.shipped_dir = shipped_dir
        self._cache: dict[tuple[str, str], array[int]] = {}

    def path_of(self, language: str, name: str) -> Path:
        for base in (self.site_dir, self.shipped_dir):
            if base is not None:
                p = base / language / f"{name}.wav"
                if p.is_file():
                    return p
        raise PromptError(f"prompt '{name}' ({language}) not found in the site's or the shipped prompts")

    def load(self, language: str, name: str) -> array[int]:
        key = (language, name)
        if key not in self._cache:
            self._cache[key] = read_wav(self.path_of(language, name))
        return self._cache[key]

    def read(self, language: str, name: str) -> array[int]:
        """Read one prompt from disk (on the configuration worker; the loop never reads)."""
        return read_wav(self.path_of(language, name))

    def install(self, loaded: dict[tuple[str, str], array[int]]) -> None:
        """Make prompts read by :meth:`read` available to :meth:`get` (memory only)."""
        self._cache.update(loaded)

    def get(self, language: str, name: str) -> array[int]:
        """A prompt loaded earlier by :meth:`load` (never touches the disk)."""
        return self._cache[(language, name)]
