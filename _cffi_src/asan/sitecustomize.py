"""Loaded at start-up when `make asan` puts this folder on PYTHONPATH: drivers._card and
dsp._kernels are taken from the instrumented build in $CICBOX_ASAN_EXT (build/asan), every
other module as usual. Build-only: never installed."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_DIR = os.environ.get("CICBOX_ASAN_EXT", "")
_NAMES = ("drivers._card", "dsp._kernels")


class _InstrumentedExtensions:
    @staticmethod
    def find_spec(name: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name not in _NAMES or not _DIR:
            return None
        package, module = name.split(".")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            candidate = os.path.join(_DIR, package, module + suffix)
            if os.path.exists(candidate):
                return importlib.util.spec_from_file_location(name, candidate)
        raise ImportError(f"{name}: no instrumented build in {_DIR}; run `make asan`")


sys.meta_path.insert(0, _InstrumentedExtensions)
