# Only cffi_modules: everything else is in pyproject.toml. `make setup` builds
# the extensions in place itself (it knows when the C changed), and sets
# CICBOX_NO_EXT=1 for the editable install that only registers the package.
import os

from setuptools import setup

setup(
    cffi_modules=[]
    if os.environ.get("CICBOX_NO_EXT")
    else [
        "_cffi_src/build_kernels.py:ffibuilder",
        "_cffi_src/build_card.py:ffibuilder",
    ],
)
