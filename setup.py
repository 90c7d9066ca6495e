# Only cffi_modules: everything else is in pyproject.toml.
from setuptools import setup

setup(
    cffi_modules=[
        "_cffi_src/build_kernels.py:ffibuilder",
        "_cffi_src/build_card.py:ffibuilder",
    ],
)
